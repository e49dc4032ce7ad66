"""mkdocs hooks: pages generated from the code, so the site cannot drift from it.

* ``reference/config.md`` is rendered from the typed config (:mod:`lm_eval_it.config.reference`);
  a config key without a ``Field(description=…)`` is a warning, which fails ``mkdocs build --strict``.
* The example plots tracked under ``results/examples/`` are served as ``img/<name>``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.structure.files import File

from lm_eval_it.config.reference import config_reference_md, undocumented

log = logging.getLogger("mkdocs.hooks.lm_eval_it")
ROOT = Path(__file__).resolve().parent.parent


def on_files(files, config):
    for key in undocumented():
        log.warning("config key %s has no Field(description=...) in lm_eval_it/config/ (schema.py, eval.py)", key)
    stub = files.get_file_from_path("reference/config.md")  # the placeholder that GitHub shows
    if stub is not None:
        files.remove(stub)
    files.append(File.generated(config, "reference/config.md", content=config_reference_md()))
    for png in sorted((ROOT / "results" / "examples").glob("*.png")):
        files.append(File.generated(config, f"img/{png.name}", abs_src_path=str(png)))
    return files
