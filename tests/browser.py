"""Headless chromium for the layout tests: find it (skip without it, fail in CI), load a page, run a probe.

``FIT_CHECK`` is a script that, appended to a page, writes what overflows the window into ``<pre id="fit">``;
:func:`browse` runs chromium on a file (``--dump-dom``, ``--screenshot=…``) and returns its stdout;
:func:`fit` reads the probe's answer back from a dumped DOM.

Example::

    exe = chromium()
    probe.write_text(page.replace("</body>", FIT_CHECK + "</body>"))
    report = fit(browse(exe, tmp_path, probe, 800, "--dump-dom"))
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

FIT_CHECK = """<script>
window.addEventListener("load", () => {
  const w = window.innerWidth, bad = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(".scroll") && !el.classList.contains("scroll")) continue;  // clipped by its scroll box
    const r = el.getBoundingClientRect();
    if (r.right > w + 0.5) bad.push(el.tagName + "." + el.className + " right=" + Math.round(r.right));
  }
  const pre = document.createElement("pre");
  pre.id = "fit";
  pre.textContent = JSON.stringify({innerWidth: w, scrollWidth: document.documentElement.scrollWidth,
    images: [...document.images].map(i => i.getBoundingClientRect().width), overflowing: bad.slice(0, 10),
    scrolled: [...document.querySelectorAll(".scroll")].map(d => d.scrollWidth - d.clientWidth)});
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    exe = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed in CI (`make chromium` installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe


def browse(exe, tmp_path, html_file, width, *args, height: int = 1600) -> str:
    proc = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
                           f"--window-size={width},{height}", "--virtual-time-budget=5000", *args,
                           html_file.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def probe_result(dom: str, element_id: str = "fit") -> dict:
    """The JSON a probe script wrote into ``<pre id=element_id>`` of a dumped DOM."""
    text = re.search(rf'<pre id="{element_id}">(.*?)</pre>', dom, re.S).group(1)
    return json.loads(text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
