"""Shared fixtures: tiny random causal LMs and tokenizers, built in-process in seconds; a config written and run.

``REPO``, ``WIKITEXT`` and the plain helpers (``corpus``, ``byte_level_tokenizer``, ``tiny_llama``,
``write_config``, ``run_path``) are imported with ``from conftest import ...`` from any test folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml

from lm_eval_it.cli import main

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"


def needs(present: bool, what: str, how: str) -> None:
    """Skip the calling test module when ``what`` is missing, but fail it in CI (``CI=true``), which installs it."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI ({how} installs it)", pytrace=False)
    pytest.skip(f"{what} is missing ({how} installs it)", allow_module_level=True)


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def corpus() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def byte_level_tokenizer(vocab_size: int = 400):
    """A small byte-level BPE (lossless on any text) with BOS/EOS/PAD tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus()[:20], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_llama(vocab_size: int, seed: int = 0, max_positions: int = 512):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                      bos_token_id=0, eos_token_id=1, pad_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger weights than the init, so predictions are far from uniform
        for p in model.parameters():
            p.mul_(8.0) if p.dim() > 1 else None
    return model


def perturbed_copy(tiny_model_dir: Path, folder: Path, seed: int, scale: float = 0.02) -> Path:
    """The tiny model with every weight nudged by ``scale`` noise (seeded): same vocabulary, slightly different
    predictions, saved to ``folder`` with the tokenizer (a KL candidate for the tiny model)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + scale * torch.randn_like(p))
    model.save_pretrained(folder)
    byte_level_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny Llama + byte-level tokenizer folder, loadable with from_pretrained."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = byte_level_tokenizer()
    tiny_llama(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def word_level_tokenizer(vocab_size: int = 3000):
    """A word-level tokenizer: coarse (one token per word) and lossy (whitespace is not kept)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>", "<unk>"],
                                        show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


@pytest.fixture(scope="session")
def word_model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-word")
    tok = word_level_tokenizer()
    tiny_llama(len(tok), seed=1).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# ---- every results.json a test writes (schema 2: what the runner and evaluate() write) matches results/schema.json
@pytest.fixture(scope="session")
def results_schema_check():
    """A check of one results.json against the checked-in schema (jsonschema, a test dependency)."""
    schema = json.loads((REPO / "results" / "schema.json").read_text())
    return jsonschema.Draft202012Validator(schema).validate


@pytest.fixture(autouse=True)
def _results_json_matches_the_schema(request, results_schema_check):
    """After each test that used ``tmp_path``: every schema-2 results.json under it validates.

    Hand-made results.json files of report tests (no ``schema: 2``) are left alone."""
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is None:
        return
    for path in tmp.rglob("results.json"):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("schema") == 2:
            results_schema_check(data)


def fake_hub_cache(root, repo_id, source, commit="0123456789abcdef0123456789abcdef01234567"):
    """A Hugging Face cache holding ``repo_id`` at ``commit`` (refs/main), its files copied from ``source``."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(source, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


@dataclass
class Run:
    """One finished run: its results folder (``results/<run_name>/<stamp>``), parsed results.json, config path."""

    folder: Path
    results: dict
    config: Path


def write_config(folder: Path, models, texts=None, *, name: str = "t", eval: dict | None = None,
                 output: dict | None = None, datasets: list | None = None, dataset: str = "d") -> Path:
    """Write ``texts`` (strings, or row dicts) to ``<folder>/<name>.jsonl`` as dataset ``dataset`` (unless
    ``datasets`` is given) and a config to ``<folder>/<name>.yaml``; results go under ``<folder>/results/<name>``.
    ``models`` is ``{name: path}`` or a list of model dicts. Returns the config's path."""
    if isinstance(models, dict):
        models = [{"name": k, "path": str(v)} for k, v in models.items()]
    if datasets is None:
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(t if isinstance(t, dict) else {"text": t}) + "\n" for t in texts))
        datasets = [{"name": dataset, "path": str(data)}]
    cfg = {"models": models, "datasets": datasets, "eval": dict(eval or {}),
           "output": {"dir": str(folder / "results"), "run_name": name, **(output or {})}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_path(path: Path, *args: str, command: str = "run", latest: bool = False) -> Run:
    """Run a written config through the CLI (``--quiet``), assert exit 0, and read what it wrote. The run's
    folder must be the only one under its run name, unless ``latest`` (then the newest is read)."""
    assert main([command, str(path), "--quiet", *args]) == 0
    out = yaml.safe_load(path.read_text())["output"]
    runs = sorted((Path(out["dir"]) / out["run_name"]).iterdir())
    if not latest:
        (folder,) = runs
    folder = runs[-1]
    return Run(folder, json.loads((folder / "results.json").read_text()), path)


@pytest.fixture
def run_config(tmp_path):
    """``run_config(models, texts, name=, eval=, output=, datasets=, args=(), command="run", latest=False)``:
    write a config under ``tmp_path`` (see ``write_config``), run it, return the ``Run``."""

    def run(models, texts=None, *, args=(), command="run", latest=False, **kw) -> Run:
        return run_path(write_config(tmp_path, models, texts, **kw), *args, command=command, latest=latest)

    return run
