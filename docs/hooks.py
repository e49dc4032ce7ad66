"""mkdocs hooks: pages generated from the code, so the site cannot drift from it.

* ``reference/config.md`` is rendered from the typed config (:mod:`lm_eval_it.config.reference`);
  a config key without a ``Field(description=…)`` is a warning, which fails ``mkdocs build --strict``.
* The example plots tracked under ``results/examples/`` are served as ``img/<name>``.
* ``reference/layout.md``'s ``<!-- modules -->`` marker becomes the package's tree, each module with the first
  line of its docstring, read from the source (so the layout page lists every module as it is).
"""

from __future__ import annotations

import ast
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


def module_tree(package: Path = ROOT / "lm_eval_it") -> str:
    """Every module of the package by folder, with the first line of its docstring."""
    def first(p: Path) -> str:
        return (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "").split("\n")[0].rstrip(".")

    lines = [f"{package.name}/"]
    for folder in sorted({p.parent for p in package.rglob("*.py")}, key=lambda d: (d != package, str(d))):
        depth = len(folder.relative_to(package).parts)
        if depth:
            lines.append("  " * depth + f"{folder.relative_to(package).as_posix()}/  {first(folder / '__init__.py')}")
        for p in sorted(folder.glob("*.py")):
            if p.name != "__init__.py":
                lines.append("  " * (depth + 1) + f"{p.name:<22} {first(p)}")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "reference/layout.md":
        return markdown.replace("<!-- modules -->", "```\n" + module_tree() + "\n```")
    return markdown
