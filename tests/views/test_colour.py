"""The views' colour scales: matplotlib's samples, monotone luminance (readable in grey), legible text on every
step, and the legends' ticks and clip values."""

import re

import numpy as np
import pytest

from lm_eval_it.views import colour


def test_the_scales_are_matplotlibs_cividis_and_puor_samples():
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    n = colour.SEQ_BINS - 1
    assert list(colour.SEQ) == [to_hex(colormaps["cividis"](k / n)) for k in range(colour.SEQ_BINS)]
    z = colour.DELTA_ZERO
    assert list(colour.DELTA) == [to_hex(colormaps["PuOr"](0.5 - (k - z) / (2 * z))) for k in range(colour.DELTA_BINS)]


def test_surprisal_luminance_rises_at_every_step():
    lum = np.array([colour.luminance(c) for c in colour.SEQ])
    assert (np.diff(lum) > 0).all() and lum[0] < 0.02 and lum[-1] > 0.75


def test_delta_luminance_falls_away_from_zero_on_each_side():
    lum = np.array([colour.luminance(c) for c in colour.DELTA])
    z = colour.DELTA_ZERO
    assert lum.argmax() == z
    assert (np.diff(lum[: z + 1]) > 0).all() and (np.diff(lum[z:]) < 0).all()


def test_text_contrast_is_at_least_wcag_aa_on_every_class():
    rules = re.findall(r"\.([sd]\d+)\{background:(#[0-9a-f]{6});color:(#[0-9a-f]{3})", colour.css())
    assert len(rules) == colour.SEQ_BINS + colour.DELTA_BINS
    worst = min(colour.contrast(bg, fg) for _, bg, fg in rules)
    assert worst >= 4.5, worst


def test_only_characters_where_b_is_worse_are_underlined():
    under = set(re.findall(r"\.d(\d+)\{[^}]*underline", colour.css()))
    assert under == {str(k) for k in range(colour.DELTA_ZERO + 1, colour.DELTA_BINS)}


@pytest.mark.parametrize("bits, step", [(0.0, 0), (0.24, 0), (0.26, 1), (15.8, 32), (16.0, 32), (99.0, 32), (-1.0, 0)])
def test_surprisal_steps_round_to_half_bits_and_clip(bits, step):
    assert colour.seq_index(bits) == step


@pytest.mark.parametrize("delta, step", [(0.0, 16), (0.12, 16), (-0.13, 15), (1.0, 20), (4.0, 32), (-40.0, 0)])
def test_delta_steps_are_centred_at_zero_and_clip(delta, step):
    assert colour.delta_index(delta) == step


def test_legends_state_the_clip_and_the_underline():
    seq, dl = colour.seq_legend(), colour.delta_legend("A", "B")
    assert [t[1] for t in seq["ticks"]] == ["0", "4", "8", "12", "≥ 16"]
    assert [t[1] for t in dl["ticks"]] == ["≤ −4", "−2", "0", "+2", "≥ +4"]
    assert [t[0] for t in dl["ticks"]] == [0, 25, 50, 75, 100]
    assert "16 bits or more" in seq["caption"] and "underlined where it needs more" in dl["caption"]
    assert "bits(B) − bits(A)" in dl["caption"]
    assert seq["gradient"].startswith("linear-gradient(to right,#00224e 0.00%,") and "#fee838 100.00%" in seq["gradient"]
