"""The views' recording: every document whole while the budget holds, the tokens' byte spans tile the text,
the recorded NLLs are the scored ones; beyond the budget only the documents a view can show, cut."""

import math

import numpy as np
import pytest
from conftest import corpus

from lm_eval_it.views.store import load

TEXTS = [t for t in corpus()[:40] if t.strip()][:8]


def _views(run):
    (row,) = run.results["results"]
    return row, load(run.folder / row["views"]["file"])


@pytest.mark.parametrize("prefix", ["auto", "none"])
def test_every_document_is_recorded_whole_and_its_tokens_tile_its_text(run_config, tiny_model_dir, prefix):
    run = run_config({"tiny": tiny_model_dir}, TEXTS, eval={"window": 64, "stride": 32, "prefix": prefix,
                                                            "temperatures": [0.7]})
    row, vs = _views(run)
    assert vs.complete and row["views"]["complete"] and sorted(vs.docs) == list(range(len(TEXTS)))
    for d in row["per_document"]:
        v = vs.docs[d["index"]]
        assert v.text == TEXTS[d["index"]] and v.aligned and not v.cut
        assert math.isclose(v.bits * math.log(2), d["nll"], rel_tol=1e-9)
        assert len(v.nll) == d["tokens"] and v.entropy is not None and len(v.entropy) == len(v.nll)
        ends = v.start + v.length
        assert (v.start[1:] == ends[:-1]).all() and ends[-1] == len(v.text.encode())  # contiguous, to the end
        assert (v.start[0] > 0) == (prefix == "none")  # without a prefix the first token is context only
        assert v.context.min() >= (1 if prefix == "none" else 0) and v.context.max() <= 64


def test_beyond_the_budget_only_the_shown_documents_are_kept_cut_to_their_drawn_part(run_config, tiny_model_dir):
    texts = [t for t in corpus() if len(t) > 400][:30]
    run = run_config({"tiny": tiny_model_dir}, texts, eval={"window": 64, "stride": 64},
                     output={"views": {"record_tokens": 500, "show": 1, "max_chars": 150, "documents": [7]}})
    row, vs = _views(run)
    assert not vs.complete and not row["views"]["complete"]
    bpb = {d["index"]: d["nll"] / math.log(2) / d["bytes"] for d in row["per_document"]}
    ranked = sorted(bpb, key=bpb.get)
    assert 7 in vs.docs and ranked[0] in vs.docs and ranked[-1] in vs.docs
    assert len(vs.docs) < len(texts)
    for d, v in vs.docs.items():
        assert v.cut and v.text == texts[d][:150]
        assert (v.start < len(v.text.encode())).all()
        assert math.isclose(v.bits_per_byte, bpb[d], rel_tol=1e-9)  # the whole document's, not the cut part's
    assert "named" in vs.docs[7].reasons and "lowest" in vs.docs[ranked[0]].reasons


def test_views_can_be_switched_off(run_config, tiny_model_dir):
    run = run_config({"tiny": tiny_model_dir}, TEXTS[:2], eval={"window": 64, "stride": 64},
                     output={"views": {"enabled": False}})
    (row,) = run.results["results"]
    assert row.get("views") is None and not list(run.folder.glob("views-*.npz"))
