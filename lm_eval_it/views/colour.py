"""The colour scales of the token-level views (pure): surprisal in bits, and Δ bits centred at 0.

* **Surprisal** (bits per token, sequential): matplotlib's ``cividis``, in :data:`SEQ_BINS` steps of
  :data:`SEQ_STEP` bits from 0 to :data:`SEQ_CLIP` (16 bits or more: the top colour). cividis was designed
  (Nuñez, Anderton & Renslow, PLOS ONE 2018) to look nearly the same to readers with red-green colour
  vision deficiency as to others, and its lightness rises monotonically, so it still reads in grey: the
  luminance of every step is larger than the one before (tested, computed with the WCAG formula).
* **Δ bits** (per character, B − A, diverging): ColorBrewer's ``PuOr`` (via matplotlib), one of ColorBrewer's
  diverging schemes marked colour-blind safe: purple where B needs fewer bits, orange where it needs more,
  near-white at 0, in steps of :data:`DELTA_STEP` to ±:data:`DELTA_CLIP`. Its luminance falls monotonically
  away from 0 on each side, so the size of a Δ reads in grey, but not its sign: characters where B is worse
  are also **underlined** (:func:`css`), which the legend says.

The hex values are matplotlib's samples, kept here so that drawing a page loads no matplotlib (a test checks
them against ``matplotlib.colormaps``). Text on a coloured background is black or white, whichever contrasts
more; the contrast is at least 4.5 (WCAG AA) on every step of both scales (tested).

Example::

    >>> seq_index(0.2), seq_index(7.9), seq_index(40.0)
    (0, 16, 32)
    >>> delta_index(-9.0), delta_index(0.1), delta_index(0.6)
    (0, 16, 18)
    >>> text_colour(SEQ[0]), text_colour(SEQ[-1])
    ('#fff', '#000')
    >>> round(contrast("#000000", "#ffffff"), 1)
    21.0
"""

from __future__ import annotations

SEQ_CLIP, SEQ_STEP = 16.0, 0.5
DELTA_CLIP, DELTA_STEP = 4.0, 0.25
SEQ_BINS = int(SEQ_CLIP / SEQ_STEP) + 1        # 33: 0, 0.5, …, 16 bits
DELTA_BINS = 2 * int(DELTA_CLIP / DELTA_STEP) + 1  # 33: −4, −3.75, …, +4 bits
DELTA_ZERO = DELTA_BINS // 2

# cividis(k / 32), k = 0 … 32
SEQ = ('#00224e', '#00285b', '#002e6a', '#053371', '#1a386f', '#273e6e', '#32436d', '#3b496c', '#434e6c', '#4b546c',
       '#535a6d', '#5a5f6e', '#61656f', '#686a71', '#6f7073', '#767676', '#7d7c78', '#848279', '#8c8878', '#938e78',
       '#9b9476', '#a39a74', '#aba072', '#b4a76f', '#bcae6c', '#c4b468', '#cdbb63', '#d5c25e', '#dec958', '#e7d150',
       '#f0d846', '#f9e03a', '#fee838')
# PuOr(0.5 − k / 32), k = −16 … 16: purple (B better) … white … orange (B worse)
DELTA = ('#2d004b', '#380b5c', '#44176f', '#502382', '#5d3790', '#6b4f9b', '#7967a6', '#887cb2', '#988dbe', '#a79fca',
         '#b6b0d4', '#c2bedc', '#cecde4', '#d9dbeb', '#e3e4ef', '#ededf3', '#f6f6f7', '#f9f0e4', '#fbe9cf', '#fde2bb',
         '#fed7a2', '#fdca88', '#fdbd6e', '#f8ae55', '#ef9e3c', '#e68d23', '#db7d12', '#cd700e', '#be630a', '#b05606',
         '#a04d07', '#8f4407', '#7f3b08')


def seq_index(bits: float) -> int:
    """The surprisal step of ``bits`` (rounded to the nearest :data:`SEQ_STEP`, clipped to 0 … :data:`SEQ_CLIP`)."""
    return min(max(int(round(bits / SEQ_STEP)), 0), SEQ_BINS - 1)


def delta_index(delta: float) -> int:
    """The Δ step of ``delta`` bits: :data:`DELTA_ZERO` ± its nearest multiple of :data:`DELTA_STEP`, clipped."""
    return min(max(int(round(delta / DELTA_STEP)), -DELTA_ZERO), DELTA_ZERO) + DELTA_ZERO


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(hex_colour: str) -> float:
    """WCAG relative luminance (0 black … 1 white) of ``#rrggbb`` (or ``#rgb``)."""
    h = hex_colour.lstrip("#")
    h = "".join(c * 2 for c in h) if len(h) == 3 else h
    r, g, b = (_linear(int(h[i: i + 2], 16) / 255) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 … 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: str) -> str:
    """``#000`` or ``#fff``, whichever contrasts more with ``background`` (always ≥ 4.58: the worst case)."""
    return "#000" if contrast(background, "#000") >= contrast(background, "#fff") else "#fff"


def css() -> str:
    """The CSS classes of both scales: ``.s0`` … ``.s32`` (surprisal), ``.d0`` … ``.d32`` (Δ; B worse underlined)."""
    rules = [f".s{k}{{background:{c};color:{text_colour(c)}}}" for k, c in enumerate(SEQ)]
    for k, c in enumerate(DELTA):
        worse = ";text-decoration:underline;text-decoration-thickness:2px" if k > DELTA_ZERO else ""
        rules.append(f".d{k}{{background:{c};color:{text_colour(c)}{worse}}}")
    return "".join(rules)


def _gradient(colours) -> str:
    n = len(colours) - 1
    return "linear-gradient(to right," + ",".join(f"{c} {100 * k / n:.2f}%" for k, c in enumerate(colours)) + ")"


def seq_legend() -> dict:
    """The surprisal legend: a CSS gradient, ticks ``[(position %, label, colour)]`` and its caption."""
    ticks = [(100 * v / SEQ_CLIP, f"{v:g}" if v < SEQ_CLIP else f"≥ {v:g}", SEQ[seq_index(v)])
             for v in (0, 4, 8, 12, 16)]
    return {"gradient": _gradient(SEQ), "ticks": ticks, "unit": "bits per token",
            "caption": f"NLL of each token in bits, in steps of {SEQ_STEP:g} bits; {SEQ_CLIP:g} bits or more: "
                       "the brightest colour (cividis: colour-blind safe, lightness rises with the bits)."}


def delta_legend(a: str, b: str) -> dict:
    """The Δ legend for B = ``b`` against A = ``a``: gradient, ticks, caption (the underline cue explained)."""
    ticks = [(50 + 50 * v / DELTA_CLIP, (f"≤ {v:g}" if v == -DELTA_CLIP else f"≥ +{v:g}" if v == DELTA_CLIP
                                         else f"{v:+g}" if v else "0").replace("-", "−"), DELTA[delta_index(v)])
             for v in (-4, -2, 0, 2, 4)]
    return {"gradient": _gradient(DELTA), "ticks": ticks, "unit": "Δ bits per character",
            "caption": f"Δ bits = bits({b}) − bits({a}) on each character, in steps of {DELTA_STEP:g} bits, clipped "
                       f"at ±{DELTA_CLIP:g}: purple where {b} needs fewer bits, orange and underlined where it needs "
                       "more (the underline keeps the sign in grey; PuOr is colour-blind safe)."}
