"""The token-level views drawn for a terminal: 24-bit ANSI background colours, or plain text for a log.

A document is laid out as characters (control characters shown as their Unicode pictures, so a
document cannot send escape codes of its own), wrapped at the terminal's width. With colour each
character's background is its value on a scale: the NLL in bits of the token that covers it (the
surprisal view, 0 to 16 bits on cividis, a perceptually uniform and colour-blind-safe sequential map)
or Δ bits = bits(B) − bits(A) on the character (the difference view, −4 to +4 bits on PuOr, a diverging
colour-blind-safe map centred at 0: purple where B needs fewer bits, orange and underlined where it needs
more, so the sign survives in grey); the scales and ranges of report.html and comparison.html. The
foreground is black or white, whichever contrasts more with the background. Both maps are the HTML pages' own
33-point samples of matplotlib's (:mod:`lm_eval_it.views.colour`; :data:`CIVIDIS`, :data:`PUOR_R`), interpolated.
Without colour each line of text is followed by a line of glyphs, one under each character: shading
``" ░▒▓█"`` by the quintile of the token's bits, or ``▼ - + ▲`` by the sign (and size) of Δ.

Example::

    >>> import numpy as np
    >>> from lm_eval_it.views.store import DocView
    >>> v = DocView(0, "to be", np.array([0, 2]), np.array([2, 3]), np.array([0.7, 4.2]), np.array([0, 1]))
    >>> s = surprisal_scale([v])
    >>> print("\\n".join(surprisal_lines(v, s, colour=False, width=40)))
    to be
      ███
    >>> line = surprisal_lines(v, s, colour=True, width=40)[0]   # one 24-bit background per token
    >>> line.count("\\x1b[48;2;"), line.endswith(RESET)
    (2, True)
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import numpy as np

from lm_eval_it.views import colour
from lm_eval_it.views.align import LN2, char_byte_lengths, char_delta, token_of_byte

# the HTML's scales (lm_eval_it.views.colour), as RGB: the terminal and the pages cannot drift apart
CIVIDIS = tuple(tuple(int(h[i: i + 2], 16) for i in (1, 3, 5)) for h in colour.SEQ)
PUOR_R = tuple(tuple(int(h[i: i + 2], 16) for i in (1, 3, 5)) for h in colour.DELTA)
SHADES = " ░▒▓█"
RESET = "\x1b[0m"
TAB = 4  # columns a tab is drawn as
BITS_CLIP, DELTA_CLIP = colour.SEQ_CLIP, colour.DELTA_CLIP  # the ends of the two colour scales


@dataclass
class Scale:
    """How values become colours (``lo``..``hi`` on ``cmap``) and glyphs (``edges`` between the glyph levels)."""

    lo: float
    hi: float
    cmap: tuple
    edges: list[float]
    diverging: bool = False


def rgb(cmap, x: float) -> tuple[int, int, int]:
    """The colour at ``x`` in [0, 1] of a sampled map, linearly interpolated."""
    t = min(max(float(x), 0.0), 1.0) * (len(cmap) - 1)
    i = min(int(t), len(cmap) - 2)
    f = t - i
    return tuple(int(round(a + (b - a) * f)) for a, b in zip(cmap[i], cmap[i + 1]))


def luminance(c: tuple[int, int, int]) -> float:
    """WCAG relative luminance of an sRGB colour (0 black … 1 white)."""
    lin = [(v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def foreground(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever has the higher contrast ratio with ``bg``."""
    lum = luminance(bg)
    return (0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else (255, 255, 255)


def paint(text: str, bg: tuple[int, int, int], underline: bool = False) -> str:
    """``text`` on a 24-bit background with a readable foreground, underlined or not (no reset)."""
    fg = foreground(bg)
    return (f"\x1b[{4 if underline else 24}m\x1b[48;2;{bg[0]};{bg[1]};{bg[2]}m"
            f"\x1b[38;2;{fg[0]};{fg[1]};{fg[2]}m{text}")


def colour_of(scale: Scale, v: float) -> tuple[int, int, int]:
    return rgb(scale.cmap, (v - scale.lo) / (scale.hi - scale.lo))


def painted(scale: Scale, v: float, text: str = "") -> str:
    """``text`` in the colour of ``v``; on the diverging scale underlined where ``v`` > 0 (B needs more bits)."""
    return paint(text, colour_of(scale, v), underline=scale.diverging and v > 0)


def glyph_of(scale: Scale, v: float | None) -> str:
    """The plain view's glyph for one character's value (a space where no token covers it)."""
    if v is None or not math.isfinite(v):
        return " "
    if not scale.diverging:
        return SHADES[int(np.searchsorted(scale.edges, v, side="right"))]
    zero, strong = scale.edges
    if abs(v) < zero:
        return " "
    return ("▲" if abs(v) >= strong else "+") if v > 0 else ("▼" if abs(v) >= strong else "-")


# ---------------------------------------------------------------- characters, laid out in lines
def shown(c: str) -> tuple[str, int]:
    """What a character is drawn as, and its width in columns (control characters as their pictures)."""
    if c == "\t":
        return " " * TAB, TAB
    if unicodedata.category(c) == "Cc":
        return (chr(0x2400 + ord(c)) if ord(c) < 32 else "␡" if c == "\x7f" else "�"), 1
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return c, 0
    return c, 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def layout(text: str, values: list, width: int) -> list[list[tuple[str, int, object]]]:
    """Lines of ``(drawn, columns, value)`` cells: the text split at newlines, wrapped at ``width`` columns
    (after the last space when there is one in the line's second half)."""
    lines, line, used = [], [], 0
    for c, v in zip(text, values):
        if c == "\n":
            lines.append(line)
            line, used = [], 0
            continue
        drawn, w = shown(c)
        if used + w > width and line:
            spaces = [i for i, cell in enumerate(line) if cell[0] == " "]
            cut = spaces[-1] + 1 if spaces and spaces[-1] + 1 > len(line) // 2 else len(line)
            lines.append(line[:cut])
            line = line[cut:]
            used = sum(cell[1] for cell in line)
        line.append((drawn, w, v))
        used += w
    lines.append(line)
    return lines


def draw(lines, scale: Scale, colour: bool) -> list[str]:
    """Colour: each line's runs of equal value painted, reset at the line's end. Plain: each line, then its
    glyph line (left out where every glyph is a space)."""
    out = []
    for line in lines:
        if colour:
            parts, prev = [], object()
            for drawn, _, v in line:
                if v != prev:
                    parts.append(RESET if v is None else painted(scale, v))
                    prev = v
                parts.append(drawn)
            out.append("".join(parts) + (RESET if line else ""))
        else:
            out.append("".join(d for d, _, _ in line).rstrip())
            glyphs = "".join(glyph_of(scale, v) * w for _, w, v in line).rstrip()
            if glyphs:
                out.append(glyphs)
    return out


# ---------------------------------------------------------------- the two views
def token_values(view) -> list:
    """Per character: the bits of the token that covers its first byte (None where none does)."""
    widths = char_byte_lengths(view.text)
    first = np.r_[0, np.cumsum(widths)[:-1]].astype(np.int64) if len(widths) else np.zeros(0, np.int64)
    owner = token_of_byte(view.start, view.length, view.n_bytes)[first]
    bits = np.asarray(view.nll, np.float64) / LN2
    return [None if o < 0 else float(bits[o]) for o in owner.tolist()]


def surprisal_scale(views: list) -> Scale:
    """Colours: 0 to :data:`BITS_CLIP` bits; glyphs: at the quintiles of the tokens' bits in ``views``."""
    bits = np.concatenate([np.asarray(v.nll, np.float64) / LN2 for v in views] or [np.zeros(0)])
    bits = bits[np.isfinite(bits)]
    edges = np.quantile(bits, [0.2, 0.4, 0.6, 0.8]).tolist() if len(bits) else [0.2, 0.4, 0.6, 0.8]
    return Scale(0.0, BITS_CLIP, CIVIDIS, [float(q) for q in edges])


def surprisal_lines(view, scale: Scale, colour: bool, width: int) -> list[str]:
    """The document's text, each token coloured (or shaded) by its NLL in bits."""
    return draw(layout(view.text, token_values(view), width), scale, colour)


def top_tokens(view, k: int = 5) -> str:
    """The ``k`` tokens with the most bits among those drawn, most first: ``'tok' 14.2`` each."""
    bits = np.asarray(view.nll, np.float64) / LN2
    raw = view.text.encode("utf-8")
    items = []
    for i in np.argsort(-bits, kind="stable")[:k].tolist():
        s, n = int(view.start[i]), int(view.length[i])
        items.append(f"{quoted(raw[s: s + n].decode('utf-8', 'replace'), 16)} {bits[i]:.1f}")
    return "most surprising tokens (bits): " + (", ".join(items) or "none")


def difference_values(va, vb) -> np.ndarray:
    """(characters,) Δ bits = bits(B) − bits(A) on each character; they sum to ``vb.bits − va.bits``."""
    return char_delta(va, vb)


def difference_scale(deltas: list[np.ndarray]) -> Scale:
    """Colours: ±:data:`DELTA_CLIP` bits about 0; glyphs: none below 0.01 bits, ▲▼ from |Δ|'s 90th percentile."""
    a = np.abs(np.concatenate(list(deltas) or [np.zeros(0)]))
    a = a[np.isfinite(a)]
    strong = max(float(np.quantile(a, 0.9)), 0.01) if len(a) else 1.0
    return Scale(-DELTA_CLIP, DELTA_CLIP, PUOR_R, [0.01, strong], diverging=True)


def difference_lines(va, vb, scale: Scale, colour: bool, width: int) -> list[str]:
    """The document's text, each character coloured (or marked) by Δ bits."""
    return draw(layout(va.text, difference_values(va, vb).tolist(), width), scale, colour)


# ---------------------------------------------------------------- legends and the top lists
def legend(scale: Scale, colour: bool, unit: str, b: str = "B") -> str:
    """One line: 9 painted cells labelled in bits, or what each glyph stands for."""
    if colour:
        marks = np.linspace(scale.lo, scale.hi, 9).tolist()
        labels = ([f"≤{marks[0]:g}", *(f"{m:+g}" if m else "0" for m in marks[1:-1]), f"≥+{marks[-1]:g}"]
                  if scale.diverging else [*(f"{m:g}" for m in marks[:-1]), f"≥{marks[-1]:g}"])
        cells = "".join(painted(scale, m, f" {t} ") for m, t in zip(marks, labels))
        tail = f" (underlined: {b} needs more bits)" if scale.diverging else ""
        return f"{unit}: {cells}{RESET}{tail}"
    if scale.diverging:
        zero, strong = scale.edges
        return (f"{unit}: '▼' ≤ −{strong:.2f} < '-' ≤ −{zero:.2f} < ' ' < +{zero:.2f} ≤ '+' < "
                f"+{strong:.2f} ≤ '▲'")
    e = scale.edges
    return (f"{unit}: ' ' < {e[0]:.2f} ≤ '░' < {e[1]:.2f} ≤ '▒' < {e[2]:.2f} ≤ '▓' < {e[3]:.2f} ≤ '█' "
            f"(quintiles of the tokens shown)")


def quoted(s: str, n: int = 24) -> str:
    """A string for a table cell: control characters as pictures, at most ``n`` characters, in quotes."""
    s = "".join(shown(c)[0] if c != "\t" else "␉" for c in s)
    return repr(s if len(s) <= n else s[: n - 1] + "…")


def top_table(tops: dict, a: str, b: str, k: int = 10) -> list[str]:
    """The top lists side by side: where B needs more bits than A, and where fewer, with counts."""
    what = "words" if tops["by"] == "words" else f"tokens of {a}"
    head = f"top {what} by total Δ bits ({b} − {a}), over {tops['over']}:"
    rows = [f"  {f'{b} needs more bits':<28} {'Δ bits':>9} {'n':>5}   {f'{b} needs fewer bits':<28} "
            f"{'Δ bits':>9} {'n':>5}"]
    up, down = tops["up"][:k], tops["down"][:k]
    for i in range(max(len(up), len(down))):
        cell = lambda xs: (f"{quoted(xs[i]['string']):<28} {xs[i]['total']:>+10.2f} {xs[i]['count']:>5}"  # noqa: E731
                           if i < len(xs) else " " * 45)
        rows.append(f"  {cell(up)}   {cell(down)}".rstrip())
    if not up and not down:
        rows.append("  (no differences)")
    return [head, *rows]
