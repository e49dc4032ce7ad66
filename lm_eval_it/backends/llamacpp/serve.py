"""The command that starts llama-cpp-python's OpenAI-compatible server on a GGUF, its model loaded as the
llama.cpp backend loads it (for backend openai's tests and ``benchmarks/three_backends.py``).

The server has no ``--no-repack``: on a CPU where ``llama_cpp.repack: auto`` turns llama.cpp's extra weight
buffers off (AMX, whose kernels segfault), the command patches llama-cpp-python's default model parameters
the same way before the server starts. It asks for prompt log-probs (``--logits_all``) and flash attention
(the backend's ``auto`` on CPU).

Example::

    >>> cmd = server_command("m.gguf", 8000, threads=1, n_ctx=256, repack=False)
    >>> cmd[1], cmd[cmd.index("--port") + 1], "use_extra_bufts = False" in cmd[2]
    ('-c', '8000', True)
"""

from __future__ import annotations

import sys

from lm_eval_it.backends.llamacpp.backend import cpu_flags, repack_enabled

LAUNCHER = """
import runpy, llama_cpp.llama_cpp as ll
if {no_extra_buffers}:
    default = ll.llama_model_default_params
    def no_extra_buffers():
        params = default()
        params.use_extra_bufts = False
        return params
    ll.llama_model_default_params = no_extra_buffers
runpy.run_module("llama_cpp.server", run_name="__main__")
"""


def server_command(gguf: str, port: int, threads: int, n_ctx: int, repack: bool | None = None) -> list[str]:
    """``python -c LAUNCHER --model GGUF …`` on 127.0.0.1:``port``; ``repack`` None: as ``repack: auto``."""
    repack = repack_enabled("auto", cpu_flags()) if repack is None else repack
    return [sys.executable, "-c", LAUNCHER.format(no_extra_buffers=not repack), "--model", gguf,
            "--host", "127.0.0.1", "--port", str(port), "--logits_all", "true", "--n_ctx", str(n_ctx),
            "--n_threads", str(threads), "--flash_attn", "true"]
