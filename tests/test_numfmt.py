"""A missing value is a dash: None, NaN and ±inf, in every format the reports use."""

import math

import numpy as np

from lm_eval_it.numfmt import interval, missing, num
from lm_eval_it.report.compare.tables import gain_text


def test_missing_values_print_as_a_dash():
    for x in (None, math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf")):
        assert missing(x) and num(x) == "–" and num(x, "+.4f") == "–"
    assert num(np.float32(0.5), "+.2f") == "+0.50" and num(0, "d") == "0" and not missing(0.0)
    assert interval([1.0, math.nan], "+.1f") == "[+1.0, –]" and interval([]) == "–"


def test_gain_text_shows_a_dash_for_a_missing_gain():
    ranges = {"lo_range": [64, 127], "hi_range": [256, 511]}
    assert gain_text({"gain": None, "interval": None, **ranges}) == "–"        # from results.json (null)
    assert gain_text({"gain": math.nan, "interval": None, **ranges}) == "–"    # in the run that computed it
    assert gain_text({"gain": 0.25, "interval": [0.125, 0.5], **ranges}) == "+0.2500 [+0.1250, +0.5000] " \
                                                                            "(64–127 → 256–511)"
    assert gain_text({"gain": 0.25, "interval": None, "lo_range": [64, 127], "hi_range": [512, 1023]}) == "+0.2500"
