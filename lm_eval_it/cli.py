"""Command line: ``lm-eval-it run CONFIG [key=value ...]``.

Errors the user can fix print one line and exit with code 2 (``--debug``
shows the traceback instead).

Example::

    $ lm-eval-it run configs/quickstart.yaml eval.stride=256 models.0.dtype=bfloat16
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lm-eval-it", description="Evaluate how well language models predict text.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the evaluation a YAML config describes")
    r.add_argument("config", help="path to a YAML config")
    r.add_argument("overrides", nargs="*", metavar="key=value",
                   help="override config keys, e.g. eval.stride=256 models.0.dtype=bfloat16")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    import datasets

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    unknown = [x for x in extra if x.startswith("-") or "=" not in x]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = list(getattr(args, "overrides", [])) + extra
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        from .config import load_config
        from .runner import run

        cfg, raw = load_config(args.config, args.overrides)
        _quiet_libraries()
        run(cfg, raw, show_progress=not args.quiet)
        return 0
    except UserError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print("interrupted; no results were written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
