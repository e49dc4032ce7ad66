"""Command line: ``lm-eval-it run|sweep|kl|context CONFIG [key=value ...]``, ``lm-eval-it compare RUN ...`` and
``lm-eval-it show RUN [--doc N] [--compare OTHER]``, ``lm-eval-it compress FILE -m MODEL`` and
``lm-eval-it decompress FILE.lmz``.

Errors the user can fix print one line and exit with code 2 (``--debug``
shows the traceback instead).

A run prints one compact table and where the files are; ``--details`` adds the
other tables. ``show`` prints a run's token-level views (surprisal, or the difference from
another run) in colour on a terminal, plain in a log. ``--model``/``--data`` stand in for a config on the
config commands; ``--device``, ``--dtype``, ``--batch-size``, ``--backend``,
``--window``, ``--stride``, ``--limit``, ``--name`` and ``--out`` set config keys
(:data:`lm_eval_it.config.shorthands.KEY_FLAGS`), as ``key=value`` overrides do.

Example::

    $ lm-eval-it run configs/quickstart.yaml eval.stride=256 models.0.dtype=bfloat16
    $ lm-eval-it run --model HuggingFaceTB/SmolLM2-135M --data pydoc_topics --dtype bf16 --device cpu --details
    $ lm-eval-it sweep configs/quickstart.yaml --temperatures 0.2:2.0:0.1
    $ lm-eval-it kl configs/kl_smollm2.yaml --reference fp32 --candidate int8
    $ lm-eval-it context configs/quickstart.yaml
    $ lm-eval-it compare results/runA results/runB --baseline modelA
    $ lm-eval-it show results/runA --doc 3
    $ lm-eval-it show results/runA --compare results/runB
    $ lm-eval-it compress notes.txt -m HuggingFaceTB/SmolLM2-135M     # notes.txt.lmz
    $ lm-eval-it decompress notes.txt.lmz -o notes.copy.txt
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import shutil
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

from lm_eval_it import __version__
from lm_eval_it.compress import command as compress_command
from lm_eval_it.config.load import finish_config
from lm_eval_it.config.shorthands import (
    add_flags,
    command_line_origins,
    context_protocol,
    kl_names,
    raw_for_run,
    select_kl_pair,
    sweep_temperatures,
)
from lm_eval_it.errors import UserError, did_you_mean
from lm_eval_it.report.compare.runs import protocol_text, rows_from_runs
from lm_eval_it.report.compare.tables import weights_text
from lm_eval_it.report import show as views_show


def _config_command(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand that runs a config (or --model/--data): overrides, the key flags, --quiet, --resume, --debug."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("config", nargs="?", help="path to a YAML config, or - for stdin (or use --model/--data)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="override config keys, e.g. eval.stride=256 models.0.dtype=bfloat16")
    add_flags(p, name)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", metavar="RUN_FOLDER", help="continue an interrupted run (the same command also does)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lm-eval-it", description="Evaluate how well language models predict text.")
    p.add_argument("--version", action="version", version=f"lm-eval-it {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = _config_command(sub, "run", "run the evaluation a YAML config describes, or one model on one dataset")
    r.add_argument("--temperatures", help="also sweep these temperatures (start:stop:step or a comma list)")
    w = _config_command(sub, "sweep", "run a config with a temperature sweep (shorthand for eval.temperatures=...)")
    w.add_argument("--temperatures", help="start:stop:step or a comma list (default: the config's "
                   "eval.temperatures, else 0.2:2.0:0.1)")
    k = _config_command(sub, "kl", "KL divergence, top-1 agreement and Δp of a candidate model against a reference")
    k.add_argument("--reference", required=True, help="name of the reference model (without a config: a variant "
                   "of --model such as fp32, or a model)")
    k.add_argument("--candidate", required=True, help="name of the candidate model (without a config: a variant "
                   "of --model such as int8 or bf16, or a model)")
    _config_command(sub, "context", "NLL by context length: run a config with stride = window, so that every "
                    "context length from 1 to the window is observed")
    c = sub.add_parser("compare", help="compare the results of earlier runs in one table")
    c.add_argument("runs", nargs="+", help="run folders (results/<run>/<timestamp>) or run names (newest run)")
    c.add_argument("--baseline", help="model that Δ bits per byte is measured against (default: the first)")
    c.add_argument("--out", help="output folder (default: <dir>/compare/<timestamp>)")
    c.add_argument("--dir", default="results", help="where run names are looked up (output.dir; default results)")
    c.add_argument("--allow-protocol-mismatch", action="store_true",
                   help="compare runs scored with different window/stride/prefix/window unit (the table says so); "
                   "a model's dtype, quantisation or backend never needs it")
    c.add_argument("--views", action="store_true", help="require the difference views in comparison.html: refuse "
                   "runs whose views are missing or are not of the same documents (default: a note says why)")
    c.add_argument("--debug", action="store_true", help="show tracebacks")
    _show_parser(sub)
    compress_command.add_parsers(sub)
    return p


def _show_parser(sub) -> None:
    s = sub.add_parser("show", help="print a run's token-level views: each token coloured by its surprisal, or "
                       "(--compare) each character by the difference from another run's model")
    s.add_argument("run", help="run folder (results/<run>/<timestamp>) or run name (newest complete run)")
    s.add_argument("--doc", type=int, metavar="N", help="only document N (0-based; it must be recorded)")
    s.add_argument("--compare", metavar="OTHER_RUN", help="the difference view: B = OTHER_RUN's model on the same "
                   "dataset against A = RUN's, then the top lists")
    s.add_argument("--model", help="the row of RUN to show (A with --compare)")
    s.add_argument("--dataset", help="the dataset to show")
    s.add_argument("--other-model", help="with --compare: B's model in OTHER_RUN")
    s.add_argument("--plain", action="store_true", help="no colour (also when NO_COLOR is set or stdout is not a "
                   "terminal): each line of text is followed by a line of glyphs")
    s.add_argument("--dir", default="results", help="where run names are looked up (output.dir; default results)")
    s.add_argument("--debug", action="store_true", help="show tracebacks")


def _show(args) -> None:
    """``show RUN``: the surprisal views of RUN, or with ``--compare`` the difference views; paged on a terminal."""
    if args.overrides:
        raise UserError(f"show takes run folders, not overrides: {' '.join(args.overrides)}")
    views_show.show(args.run, doc=args.doc, compare=args.compare, model=args.model, dataset=args.dataset,
                    other_model=args.other_model, plain=args.plain, base=args.dir)


def _compress(args) -> None:
    """``compress FILE -m MODEL`` / ``decompress FILE.lmz``: arithmetic coding with the model."""
    if args.overrides:
        raise UserError(f"{args.command} takes a file, not overrides: {' '.join(args.overrides)}")
    _quiet_libraries()
    # Deferred, like the runner: the codec imports torch and transformers, which `--help` must not pay for.
    from lm_eval_it.compress import api as compress_api

    getattr(compress_command, args.command)(args, compress_api)


def _compare(args) -> None:
    """``compare RUN ...``: one line per run saying how it was scored, then the tables, written to a new folder."""
    # Deferred, like the runner below: the comparison walks the statistics' registry, whose per-token halves
    # import torch (about 1 s) that `--help` and a config error must not pay for. Nothing it imports imports the CLI.
    from lm_eval_it.report.compare import build as compare_build

    if args.overrides:
        raise UserError(f"compare takes run folders, not overrides: {' '.join(args.overrides)}")
    rows = rows_from_runs(args.runs, args.dir)
    shared = {r["dataset"] for r in rows if sum(x["dataset"] == r["dataset"] for x in rows) > 1}
    if len(args.runs) > 1 and not shared:
        scored = "; ".join(f"{r['run']}: {r['dataset']}" for r in rows)
        raise UserError(f"nothing to compare: no dataset is scored by more than one model ({scored})")
    names = sorted({r["model"] for r in rows})
    if args.baseline and args.baseline not in names:
        raise UserError(f"--baseline: got {args.baseline!r}, expected one of {names}{did_you_mean(args.baseline, names)}")
    _print_protocols(rows)
    tables = compare_build.build_comparison(rows, args.baseline, args.allow_protocol_mismatch)
    out = Path(args.out or Path(args.dir) / "compare" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    _write_comparison_folder(out, tables, "lm_eval_it: " + " vs ".join(args.runs), compare_build, rows, args.views)
    print(compare_build.comparison_markdown(tables))
    print(f"comparison: {out}")


def _print_protocols(rows: list[dict]) -> None:
    """``run: window … | … · model (weights), …`` for each run compared."""
    seen, kinds = {}, {}
    for r in rows:
        seen.setdefault(r["run"], set()).add(protocol_text(r["protocol"]))
        kinds.setdefault(r["run"], {})[r["model"]] = weights_text(r["model_facts"])
    for run_label, texts in seen.items():
        who = ", ".join(f"{m} ({k})" for m, k in kinds[run_label].items())
        print(f"{run_label}: {' | '.join(sorted(texts))} · {who}")


def _write_comparison_folder(out: Path, tables, title: str, compare_build, rows=(), views: bool = False) -> None:
    """Write the comparison (with the rows' difference views) into ``out``; on any failure remove the folders made
    here (none left half-written). ``views``: refuse views that are missing or do not match."""
    made = next((p for p in [*reversed(out.parents), out] if not p.exists()), None)  # the first folder made here
    out.mkdir(parents=True, exist_ok=True)
    try:
        compare_build.write_comparison(out, tables, title=title, views=compare_build.view_sources(rows),
                                       strict=views)
    except BaseException:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        raise


class _Once(logging.Filter):
    """Let each distinct warning through once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _setup_logging() -> None:
    """``warning: …`` lines on stderr, each once; library deprecation chatter stays off the terminal."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Once) for f in handler.filters):
            handler.addFilter(_Once())
    for category in (DeprecationWarning, FutureWarning, UserWarning):
        for lib in ("torch", "transformers", "datasets", "huggingface_hub", "accelerate"):
            warnings.filterwarnings("ignore", category=category, module=rf"{lib}(\.|$)")


def _quiet_libraries() -> None:
    """transformers and datasets: errors only, no progress bars (imported here: they are heavy, and only a run
    needs them)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.utils.logging.disable_progress_bar()


def resume_command(argv: list[str], folder) -> str:
    """The shell-quoted command that resumes: the original argv, any old ``--resume`` dropped, plus ``--resume FOLDER``."""
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--resume":
            skip = True
        elif not a.startswith("--resume="):
            kept.append(a)
    return shlex.join([_program(), *kept, "--resume", str(folder)])


def _program() -> str:
    """``lm-eval-it``, or the path it was started by when that is not what PATH finds (``.venv/bin/lm-eval-it``
    run by ``make demo`` without an activated venv)."""
    a0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(a0) == "lm-eval-it" and os.sep in a0:
        found = shutil.which("lm-eval-it")
        if found is None or os.path.realpath(found) != os.path.realpath(a0):
            return a0
    return "lm-eval-it"


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit code: 0, 2 for a user error, 130 for Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = _parse(argv)
    if unknown:
        print(f"error: unrecognized argument {unknown!r}; overrides are key=value (e.g. eval.stride=256), "
              f"see lm-eval-it {args.command} --help", file=sys.stderr)
        return UserError.exit_code
    _setup_logging()
    try:
        if args.command == "compare":
            _compare(args)
        elif args.command == "show":
            _show(args)
        elif args.command in ("compress", "decompress"):
            _compress(args)
        else:
            _run_config(args)
        return 0
    except UserError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt as e:
        print(_interrupted_text(e, argv), file=sys.stderr)
        return UserError.exit_code if getattr(e, "reason", None) else 130


def _parse(argv: list[str]) -> tuple[argparse.Namespace, str | None]:
    """The parsed command line and the first unrecognised flag (None when all were understood).

    Words that argparse leaves over are ``key=value`` overrides; ``run --model M key=value`` puts the first
    override where the config would be, so it is moved back to the overrides.
    """
    args, extra = _parser().parse_known_args(argv)
    unknown = [x for x in extra if x.startswith("-") or "=" not in x]
    if unknown:
        return args, unknown[0]
    args.overrides = list(getattr(args, "overrides", [])) + extra
    if getattr(args, "config", None) and "=" in args.config and not os.path.exists(args.config):
        args.overrides.insert(0, args.config)
        args.config = None
    return args, None


def _run_config(args) -> None:
    """A config command (run, sweep, kl, context): the raw config, the command's shorthands, validate, run."""
    raw = raw_for_run(args)
    if args.command == "sweep":
        sweep_temperatures(raw, args.temperatures)
    if args.command == "kl":
        select_kl_pair(raw, *kl_names(args, raw))
    if args.command == "context":
        context_protocol(raw)
    cfg = finish_config(raw, args.config, command_line_origins(args, raw))
    if args.command == "context":  # its own run name, so `compare NAME` finds the plain run
        cfg.output.run_name = f"{cfg.output.run_name}-context"
    _quiet_libraries()
    # Deferred (with the comparison's, above): the runner pulls in torch and transformers (about 1 s), which
    # `lm-eval-it --help`, `compare` and a config error must not pay for. It imports nothing that imports the CLI.
    from lm_eval_it.run import runner

    kwargs = {"show_progress": not args.quiet, "resume": args.resume, "details": args.details}
    if not args.json:
        runner.run(cfg, raw, **kwargs)
        return
    with contextlib.redirect_stdout(sys.stderr):
        folder = runner.run(cfg, raw, **kwargs)
    sys.stdout.write((folder / "results.json").read_text(encoding="utf-8"))
    sys.stdout.flush()


def _interrupted_text(e: KeyboardInterrupt, argv: list[str]) -> str:
    """What Ctrl-C leaves: the checkpoint and the command that resumes it, or that nothing was written."""
    folder = getattr(e, "folder", None)
    reason = getattr(e, "reason", None)
    head = f"error: {reason}; stopped" if reason else "\ninterrupted"  # reason: errors.RunStopped
    if folder is not None:  # a checkpoint exists: always say how to resume it
        partial = getattr(e, "partial", 0)
        what = f"{e.documents} finished and {partial} partly scored" if partial else f"{e.documents}"
        return (f"{head}: {what} documents are checkpointed in {folder}; "
                f"resume with: {resume_command(argv, folder)}")
    if hasattr(e, "folder"):  # the run had begun (rundir.RunInterrupted) and kept nothing
        return f"{head} before any token was scored; nothing was written"
    return "\ninterrupted before the run began; nothing new was written"


if __name__ == "__main__":
    sys.exit(main())
