"""Screenshots of a run's token-level views: report.html's surprisal sections and comparison.html's difference
sections, each page at each width, cropped to the views (headless chromium).

For each page a probe copy (in a temporary folder: the pages are self-contained) hides everything but the
views and is measured once (``--dump-dom``) so that the screenshot's window is exactly as tall as the views, up
to ``--max-height``.
A page without views is skipped with a message.

Example::

    .venv/bin/python benchmarks/screenshots.py results/compare_small/<stamp> /tmp/shots
    .venv/bin/python benchmarks/screenshots.py RUN_DIR OUT_DIR --widths 1280 --max-height 1800 --documents 1
    # OUT_DIR/report-views-1280.png, report-views-800.png, comparison-views-1280.png, comparison-views-800.png
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAGES = {"report.html": "report-views", "comparison.html": "comparison-views"}

# Keep the views only: report.html's sections with a legend whole; in comparison.html's dataset sections, the
# dataset's heading and what follows the first "Where … differs" heading. Then keep the first N documents of each
# view (N < 0: all) and report the height of the page as it is now.
ONLY_VIEWS = """<script>
window.addEventListener("load", () => {
  const keep = %d;
  document.querySelector("h1").style.display = "none";
  for (const el of document.body.children) {
    if (el.tagName !== "SECTION" || !el.querySelector(".vlegend")) { el.style.display = "none"; continue; }
    let on = !el.querySelector("h3");  // report.html's views sections have no h3: all of them
    for (const c of el.children) {
      if (c.tagName === "H3" && c.textContent.startsWith("Where ")) on = true;
      if (c.tagName !== "H2" && !on) c.style.display = "none";
    }
    if (keep >= 0) {
      let n = 0;
      for (const c of el.children) {
        if (c.tagName === "H3" || c.tagName === "H2") n = 0;
        if (c.classList.contains("vhead")) n += 1;
        if (n > keep && (c.classList.contains("vhead") || c.classList.contains("vdoc"))) c.style.display = "none";
      }
    }
  }
  const pre = document.createElement("pre");
  pre.id = "height";
  pre.textContent = JSON.stringify({height: Math.ceil(document.documentElement.scrollHeight)});
  document.body.appendChild(pre);
  pre.style.display = "none";
});
</script>"""


def chromium() -> str:
    exe = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if exe is None:
        sys.exit("chromium is not installed (`make chromium` installs it)")
    return exe


def browse(exe: str, profile: Path, page: Path, width: int, height: int, *args: str) -> str:
    proc = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--force-device-scale-factor=1",
                           f"--window-size={width},{height}", "--virtual-time-budget=5000", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        sys.exit(f"chromium failed on {page}: {proc.stderr[-500:]}")
    return proc.stdout


def shoot(exe: str, run: Path, out: Path, widths: list[int], max_height: int, documents: int) -> list[Path]:
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, stem in PAGES.items():
            page = run / name
            if not page.is_file() or 'class="vlegend"' not in page.read_text():
                print(f"{page}: no views, skipped")
                continue
            probe = Path(tmp) / name
            probe.write_text(page.read_text().replace("</body>", ONLY_VIEWS % documents + "</body>"))
            for width in widths:
                dom = browse(exe, Path(tmp) / "profile", probe, width, 1000, "--dump-dom")
                height = json.loads(re.search(r'<pre id="height"[^>]*>(.*?)</pre>', dom, re.S).group(1)
                                    .replace("&quot;", '"'))["height"]
                shot = out / f"{stem}-{width}.png"
                browse(exe, Path(tmp) / "profile", probe, width, min(height, max_height), f"--screenshot={shot}")
                print(f"{shot} ({width}×{min(height, max_height)} px)")
                made.append(shot)
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="run folder (holds report.html and, with several models, comparison.html) "
                   "or a `compare` output folder")
    p.add_argument("out", type=Path, help="folder for the PNGs")
    p.add_argument("--widths", type=int, nargs="+", default=[1280, 800])
    p.add_argument("--max-height", type=int, default=2400, help="crop each shot to at most this many px")
    p.add_argument("--documents", type=int, default=-1, help="documents kept per view (default: all)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    made = shoot(chromium(), args.run, args.out, args.widths, args.max_height, args.documents)
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
