"""The terminal drawing of the views: matplotlib's maps sampled, readable foregrounds, characters laid out in
columns (wide, control and tab characters), glyph lines under the text, 24-bit escapes only with colour.

(Named test_terminal_views.py: tests/report/test_terminal.py already holds the module name test_terminal.)"""

import re

import numpy as np
import pytest
from conftest import has_module

from lm_eval_it.report import views_terminal as terminal
from lm_eval_it.views.store import DocView

BG = re.compile(r"\x1b\[48;2;(\d+);(\d+);(\d+)m")


def _view(text, spans, bits, doc=0):
    start, length = np.array([s for s, _ in spans]), np.array([n for _, n in spans])
    return DocView(doc, text, start, length, np.array(bits, np.float64) * terminal.LN2, np.arange(len(spans)))


@pytest.mark.skipif(not has_module("matplotlib"), reason="matplotlib is not installed")
@pytest.mark.parametrize("name, table", [("cividis", terminal.CIVIDIS), ("PuOr_r", terminal.PUOR_R)])
def test_the_sampled_maps_are_matplotlibs_within_six_levels(name, table):
    from matplotlib import colormaps

    cmap = colormaps[name]
    for x in np.linspace(0, 1, 401):
        want = np.array(cmap(float(x))[:3]) * 255
        assert np.abs(np.array(terminal.rgb(table, x)) - want).max() <= 6, x


def test_the_foreground_is_black_on_light_and_white_on_dark_backgrounds():
    assert terminal.foreground(terminal.CIVIDIS[-1]) == (0, 0, 0)        # yellow
    assert terminal.foreground(terminal.CIVIDIS[0]) == (255, 255, 255)   # dark blue
    assert terminal.foreground(terminal.PUOR_R[16]) == (0, 0, 0)         # the diverging map's near-white centre
    assert terminal.luminance((255, 255, 255)) == pytest.approx(1.0) and terminal.luminance((0, 0, 0)) == 0.0


def test_colour_paints_each_token_with_its_own_24_bit_background_and_keeps_the_text():
    v = _view("ab cd", [(0, 2), (2, 3)], [0.0, 10.0])
    scale = terminal.Scale(0.0, 10.0, terminal.CIVIDIS, [2, 4, 6, 8])
    (line,) = terminal.surprisal_lines(v, scale, colour=True, width=80)
    assert [tuple(map(int, m)) for m in BG.findall(line)] == [terminal.CIVIDIS[0], terminal.CIVIDIS[-1]]
    assert re.sub(r"\x1b\[[0-9;]*m", "", line) == "ab cd" and line.endswith(terminal.RESET)


def test_plain_shades_each_character_by_its_tokens_quintile_and_leaves_uncovered_ones_blank():
    v = _view("ab cd ef", [(0, 2), (3, 2)], [1.0, 9.0])  # " ef" is covered by no token
    scale = terminal.Scale(0.0, 10.0, terminal.CIVIDIS, [2, 4, 6, 8])
    assert terminal.surprisal_lines(v, scale, colour=False, width=80) == ["ab cd ef", "   ██"]
    assert "\x1b" not in terminal.legend(scale, False, "bits per token")
    assert BG.search(terminal.legend(scale, True, "bits per token"))


def test_a_documents_own_escape_codes_and_control_characters_are_drawn_as_pictures():
    text = "a\x1b[31mb\tc\r"
    v = _view(text, [(0, len(text))], [3.0])
    scale = terminal.surprisal_scale([v])
    for colour in (True, False):
        out = "\n".join(terminal.surprisal_lines(v, scale, colour=colour, width=80))
        assert "\x1b[31m" not in out and "\r" not in out and "\t" not in out
        assert "a␛[31mb" in out and "␍" in out


def test_wide_characters_take_two_glyphs_and_combining_ones_none():
    text = "日x\u0301"  # a wide character, then x with a combining acute accent
    v = _view(text, [(0, 3), (3, 3)], [9.0, 1.0])
    scale = terminal.Scale(0.0, 10.0, terminal.CIVIDIS, [2, 4, 6, 8])
    assert terminal.surprisal_lines(v, scale, colour=False, width=80) == [text, "██"]


def test_long_lines_wrap_after_a_space_within_the_width_and_every_line_keeps_its_glyphs():
    text = "alpha beta gamma delta"
    v = _view(text, [(0, len(text))], [9.0])
    scale = terminal.Scale(0.0, 10.0, terminal.CIVIDIS, [2, 4, 6, 8])
    lines = terminal.surprisal_lines(v, scale, colour=False, width=12)
    assert lines == ["alpha beta", "█" * 11, "gamma delta", "█" * 11]


def test_the_difference_is_marked_by_its_sign_without_colour():
    a = _view("xy", [(0, 1), (1, 1)], [1.0, 5.0])
    b = _view("xy", [(0, 2)], [2.0])  # B: one token, 1 bit on each character
    delta = terminal.difference_values(a, b)
    assert delta.tolist() == [0.0, -4.0] and delta.sum() == pytest.approx(b.bits - a.bits, abs=1e-12)
    scale = terminal.Scale(-4.0, 4.0, terminal.PUOR_R, [0.01, 3.0], diverging=True)
    assert terminal.difference_lines(a, b, scale, colour=False, width=80) == ["xy", " ▼"]
    assert [terminal.glyph_of(scale, x) for x in (-1.0, 0.0, 1.0, 3.5)] == ["-", " ", "+", "▲"]
    assert terminal.colour_of(scale, 0.0) == terminal.PUOR_R[16]  # 0 sits at the diverging map's centre
    b2 = _view("xy", [(0, 1), (1, 1)], [3.0, 1.0])  # B worse on x, better on y
    (line,) = terminal.difference_lines(a, b2, scale, colour=True, width=80)
    assert line.startswith("\x1b[4m") and "\x1b[24m" in line  # underlined where B needs more bits: the sign in grey


def test_the_colour_scales_span_those_of_the_html_views():
    v = _view("ab", [(0, 2)], [3.0])
    assert (terminal.surprisal_scale([v]).lo, terminal.surprisal_scale([v]).hi) == (0.0, 16.0)
    assert (terminal.difference_scale([np.array([0.5])]).lo, terminal.difference_scale([]).hi) == (-4.0, 4.0)
    assert terminal.legend(terminal.surprisal_scale([v]), True, "bits").count("\x1b[48;2;") == 9


def test_the_top_table_lists_both_directions_with_totals_and_counts():
    tops = {"up": [{"string": "foo", "total": 12.5, "count": 3}],
            "down": [{"string": "\nbar", "total": -4.25, "count": 1}, {"string": "baz", "total": -1.0, "count": 2}],
            "over": "the dataset (2 documents)", "by": "words", "complete": True}
    head, cols, first, second = terminal.top_table(tops, "A", "B")
    assert head == "top words by total Δ bits (B − A), over the dataset (2 documents):"
    assert "B needs more bits" in cols and "B needs fewer bits" in cols
    assert first.split() == ["'foo'", "+12.50", "3", "'␊bar'", "-4.25", "1"]
    assert second.split() == ["'baz'", "-1.00", "2"]


def test_the_most_surprising_tokens_are_listed_most_first_with_their_bits():
    v = _view("to be or", [(0, 2), (2, 3), (5, 3)], [1.0, 7.0, 3.5])
    assert terminal.top_tokens(v, k=2) == "most surprising tokens (bits): ' be' 7.0, ' or' 3.5"
