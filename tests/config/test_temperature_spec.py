"""``--temperatures`` text → floats (config/temperatures.py), and config reading it without the statistics."""

import subprocess
import sys

import pytest

from lm_eval_it.config.shorthands import sweep_temperatures
from lm_eval_it.config.temperatures import parse_temperatures
from lm_eval_it.errors import UserError


def test_range_includes_its_stop_and_rounds_float_steps():
    assert parse_temperatures("0.2:2.0:0.1") == [round(0.2 + 0.1 * i, 10) for i in range(19)]
    assert parse_temperatures("0.2:2.0:0.1")[1] == 0.3  # not 0.30000000000000004
    assert parse_temperatures("0.5:1.2:0.5") == [0.5, 1.0]  # stop not on the grid: the last step below it
    assert parse_temperatures("1:1:0.1") == [1.0]


def test_comma_list_is_taken_as_written():
    assert parse_temperatures("2, 0.5,,1") == [2.0, 0.5, 1.0]


@pytest.mark.parametrize("spec", ["2:1:0.1", "0:1:0.1", "0.5:1:0", "0.5:1:-0.1"])
def test_bad_range_is_an_error(spec):
    with pytest.raises(ValueError, match="expected start:stop:step with 0 < start <= stop and step > 0"):
        parse_temperatures(spec)


def test_sweep_shorthand_names_the_flag_on_a_bad_range():
    raw = {"eval": {}}
    sweep_temperatures(raw, "0.5:1.0:0.25")
    assert raw["eval"]["temperatures"] == [0.5, 0.75, 1.0]
    with pytest.raises(UserError, match=r"--temperatures: got '2:1:0.1', expected start:stop:step"):
        sweep_temperatures({"eval": {}}, "2:1:0.1")


def test_config_imports_no_statistics_and_no_torch():
    code = ("import sys, lm_eval_it.config, lm_eval_it.config.shorthands, lm_eval_it.config.reference; "
            "print(sorted(m for m in sys.modules if m.startswith('lm_eval_it.stats') or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
