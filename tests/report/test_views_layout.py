"""The views as a person sees them, in headless chromium at 1280 and 800 px: nothing overflows, the legends are
visible with ticks of at least 11 px, their ticks stay distinct in a grayscale screenshot, and characters where B
is worse are underlined (the sign in grey)."""

import pytest
from browser import FIT_CHECK, browse, chromium, probe_result
from views_run import views_run

LEGEND_CHECK = """<script>
window.addEventListener("load", () => {
  const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height});
  const legends = [...document.querySelectorAll(".vlegend")].map(lg => ({
    bar: box(lg.querySelector(".vbar").getBoundingClientRect()),
    ticks: [...lg.querySelectorAll(".vticks span")].map(s => ({text: s.textContent, px: parseFloat(getComputedStyle(s).fontSize),
      colour: getComputedStyle(s).color, ...box(s.getBoundingClientRect())}))}));
  const runs = [...document.querySelectorAll(".vdoc i")].filter(e => /^d\\d+$/.test(e.className));
  const under = e => getComputedStyle(e).textDecorationLine.includes("underline");
  const pre = document.createElement("pre");
  pre.id = "legend";
  pre.textContent = JSON.stringify({legends, runs: runs.length,
    worse_plain: runs.filter(e => +e.className.slice(1) > 16 && !under(e)).length,
    other_underlined: runs.filter(e => +e.className.slice(1) <= 16 && under(e)).length,
    worse: runs.filter(e => +e.className.slice(1) > 16).length});
  document.body.appendChild(pre);
});
</script>"""

# the page's first legend, copied to the top so that a screenshot of the window holds it
LEGEND_FIRST = """<script>
window.addEventListener("load", () => {
  const lg = document.querySelector(".vlegend").cloneNode(true);
  lg.style.margin = "40px 0";
  document.body.prepend(lg);
});
</script>"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, word_model_dir):
    return views_run(tmp_path_factory, tiny_model_dir, word_model_dir)


@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("name", ["report.html", "comparison.html"])
def test_views_fit_and_their_legends_are_readable(run, tmp_path, name, width):
    exe = chromium()
    page = (run / name).read_text()
    assert 'class="vlegend"' in page
    probe = tmp_path / name
    probe.write_text(page.replace("</body>", FIT_CHECK + LEGEND_CHECK + "</body>"))
    dom = browse(exe, tmp_path, probe, width, "--dump-dom")
    fit, lg = probe_result(dom, "fit"), probe_result(dom, "legend")
    assert fit["innerWidth"] == width and fit["scrollWidth"] <= width and fit["overflowing"] == [], fit
    assert len(lg["legends"]) == (2 if name == "report.html" else 1)
    for legend in lg["legends"]:
        bar, ticks = legend["bar"], legend["ticks"]
        assert bar["width"] >= 200 and bar["height"] >= 10 and 0 <= bar["left"] and bar["right"] <= width
        assert len(ticks) == 5 and all(t["px"] >= 11 and t["height"] > 0 for t in ticks)
        assert all(0 <= t["left"] and t["right"] <= width and t["top"] >= bar["bottom"] for t in ticks)
        assert all(a["right"] < b["left"] for a, b in zip(ticks, ticks[1:]))  # no two labels overlap
    if name == "comparison.html":
        assert lg["runs"] > 0 and lg["worse"] > 0 and lg["worse_plain"] == 0 and lg["other_underlined"] == 0


def _greys(shot, legend) -> list[float]:
    """The grey level (0–255) of the legend's bar under each tick, from a screenshot (a 5×5 patch's mean)."""
    from PIL import Image

    grey = Image.open(shot).convert("L")
    bar = legend["bar"]
    y = round((bar["top"] + bar["bottom"]) / 2)
    out = []
    for t in legend["ticks"]:
        x = round(min(max((t["left"] + t["right"]) / 2, bar["left"] + 4), bar["right"] - 4))
        patch = [grey.getpixel((x + dx, y + dy)) for dx in range(-2, 3) for dy in range(-2, 3)]
        out.append(sum(patch) / len(patch))
    return out


@pytest.mark.parametrize("name", ["report.html", "comparison.html"])
def test_legend_ticks_stay_distinct_in_a_grayscale_screenshot(run, tmp_path, name):
    pytest.importorskip("PIL")
    exe = chromium()
    probe = tmp_path / name
    probe.write_text((run / name).read_text().replace("</body>", LEGEND_FIRST + LEGEND_CHECK + "</body>"))
    legend = probe_result(browse(exe, tmp_path, probe, 1280, "--dump-dom", "--force-device-scale-factor=1"),
                          "legend")["legends"][0]
    shot = tmp_path / "shot.png"
    browse(exe, tmp_path, probe, 1280, f"--screenshot={shot}", "--force-device-scale-factor=1")
    g = _greys(shot, legend)
    steps = [b - a for a, b in zip(g, g[1:])]
    if name == "report.html":  # surprisal: lighter at every tick
        assert all(s >= 20 for s in steps), g
    else:  # Δ: lightest at 0, darker each way (the sign is the underline's)
        assert steps[0] >= 20 and steps[1] >= 20 and steps[2] <= -20 and steps[3] <= -20, g
