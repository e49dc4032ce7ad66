"""Which documents the views show: the extremes in bits per byte, the flagged and named ones, each once; the
largest Δ each way among documents both runs recorded; views of different documents are refused."""

import numpy as np
import pytest

from lm_eval_it.errors import UserError
from lm_eval_it.views.select import check_same_documents, difference_documents, surprisal_documents, top_lists
from lm_eval_it.views.store import DocView, ViewSet


def views(bpb: dict, model="A", complete=True, texts=None, fingerprint="f") -> ViewSet:
    docs = {}
    for d, x in bpb.items():
        text = (texts or {}).get(d, f"document {d}")
        n = len(text.encode())
        docs[d] = DocView(d, text, np.array([0]), np.array([n]), np.array([x * n * np.log(2)]), np.array([0]))
    return ViewSet(model, "d", docs, complete, 10, dataset_fingerprint=fingerprint)


def test_surprisal_view_shows_the_extremes_then_flagged_then_named_each_once_with_every_reason():
    vs = views({0: 1.0, 1: 3.0, 2: 2.0, 3: 0.5, 4: 2.5, 5: 1.5})
    got = surprisal_documents(vs, show=2, flagged=[3, 2, 9], named=[5, 1])
    assert got == [(1, "highest bits/byte; named in output.views.documents"), (4, "highest bits/byte"),
                   (3, "lowest bits/byte; flagged by the memorisation signals"), (0, "lowest bits/byte"),
                   (2, "flagged by the memorisation signals"), (5, "named in output.views.documents")]


def test_a_small_dataset_is_never_called_both_highest_and_lowest():
    vs = views({0: 1.0, 1: 3.0, 2: 2.0})
    assert surprisal_documents(vs, show=3) == [(1, "highest bits/byte"), (2, "highest bits/byte"),
                                               (0, "highest bits/byte")]
    assert surprisal_documents(views({0: 1.0, 1: 3.0, 2: 2.0, 3: 0.5}), show=2) == [
        (1, "highest bits/byte"), (2, "highest bits/byte"), (3, "lowest bits/byte"), (0, "lowest bits/byte")]


def test_difference_view_shows_the_largest_delta_each_way_among_common_documents():
    a = views({0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0})
    b = views({0: 1.5, 1: 0.2, 2: 1.1, 3: 0.9, 5: 9.0}, model="B")  # 5 is not in A: never chosen
    assert difference_documents(a, b, show=2) == [(0, "B worse"), (2, "B worse"), (1, "B better"), (3, "B better")]


def test_views_of_different_documents_are_refused_in_one_line():
    a = views({0: 1.0})
    with pytest.raises(UserError, match="datasets differ"):
        check_same_documents(a, views({0: 1.0}, fingerprint="g"))
    with pytest.raises(UserError, match="document 0's text differs") as e:
        check_same_documents(a, views({0: 1.0}, texts={0: "another text"}))
    assert "\n" not in str(e.value)


def test_top_lists_say_when_they_are_not_over_the_whole_dataset():
    a, b = views({0: 1.0, 1: 2.0}), views({0: 1.5, 1: 2.0}, model="B", complete=False)
    lists = top_lists(a, b, by="tokens")
    assert not lists["complete"] and lists["over"] == "the drawn parts of the 2 documents both runs recorded (of 10)"
    assert [x["string"] for x in lists["up"]] == ["document 0"] and lists["down"] == []
