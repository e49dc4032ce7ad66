#!/usr/bin/env bash
# The whole GPU check (≤ 8 min on one H200), one JSON:
#   fp32 per-document parity vs lm-eval on the GPU, bf16 tok/s + MFU + peak memory for
#   SmolLM2-135M and Gemma-3-270M at window 2048 and 4096, lm-eval's peak memory, and the 9-temperature
#   sweep's overhead on SmolLM2 scoring (fused kernel "auto" and "eager", best of 2, sized for ~30 s).
# Needs a CUDA torch, lm-eval and the Gemma GGUF (`make models`) in $PYTHON's environment.
#   benchmarks/gpu.sh [--dry-run] [OUT.json]      (--dry-run: CPU, tiny random model, seconds; default OUT
#                                                  under $TMPDIR, not benchmarks/data/gpu.json)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DRY=()
if [[ "${1:-}" == "--dry-run" ]]; then DRY=(--dry-run); shift; fi
if [[ ${#DRY[@]} -eq 0 ]]; then OUT=${1:-benchmarks/data/gpu.json}; else OUT=${1:-${TMPDIR:-/tmp}/lm_eval_it_gpu_dry_run.json}; fi
echo "figures: $OUT" >&2  # a dry run never writes over the GPU figures in benchmarks/data
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ ${#DRY[@]} -eq 0 ]]; then
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
  "$PYTHON" -c "import lm_eval" || { echo "pip install lm-eval first" >&2; exit 1; }
fi
exec timeout 480 "$PYTHON" benchmarks/gpu_check.py "${DRY[@]}" --out "$OUT"
