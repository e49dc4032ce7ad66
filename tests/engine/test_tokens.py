"""The token cache: an entry is written whole or not at all, read back a window at a time, rebuilt if damaged."""

import numpy as np
import pytest

from lm_eval_it.engine.tokens import CacheEntry, MemoryStore, blocks

DOCS = [np.array([5, 6, 7], np.int32), np.array([], np.int32), np.array([8, 9], np.int32)]


def written(folder, key="k"):
    entry = CacheEntry(key, folder)
    for ids in DOCS:
        entry.write(ids)
    return entry.close()


def test_an_entry_reads_back_every_document_and_window(tmp_path):
    store = written(tmp_path)
    assert store.bounds.tolist() == [0, 3, 3, 5]
    assert [store.read(d, 0, store.length(d)).tolist() for d in range(3)] == [[5, 6, 7], [], [8, 9]]
    assert store.read(0, 1, 10).tolist() == [6, 7] and store.read(2, 1, 2).tolist() == [9]
    again = CacheEntry("k", tmp_path)
    assert again.store is not None and again.store.bounds.tolist() == [0, 3, 3, 5]
    assert again.close() is again.store  # a hit writes nothing
    assert CacheEntry("other", tmp_path).store is None  # another key, another entry


def test_a_damaged_entry_is_rebuilt(tmp_path):
    store = written(tmp_path)
    store.path.write_bytes(store.path.read_bytes()[:-4])  # a truncated id file
    assert CacheEntry("k", tmp_path).store is None
    written(tmp_path)
    CacheEntry("k", tmp_path).bpath.write_bytes(b"not numpy")
    assert CacheEntry("k", tmp_path).store is None


def test_an_aborted_entry_leaves_nothing_behind(tmp_path):
    entry = CacheEntry("k", tmp_path)
    entry.write(DOCS[0])
    entry.abort()
    assert list(tmp_path.iterdir()) == []
    assert CacheEntry("k", tmp_path).store is None


def test_an_empty_dataset_is_an_empty_entry(tmp_path):
    store = CacheEntry("k", tmp_path).close()
    assert store.bounds.tolist() == [0] and CacheEntry("k", tmp_path).store.bounds.tolist() == [0]


@pytest.mark.parametrize("size,chars,want", [(2, 1000, [2, 2, 1]), (10, 5, [2, 1, 2]), (1, 1, [1, 1, 1, 1, 1])])
def test_blocks_are_bounded_by_documents_and_characters(size, chars, want):
    texts = ["ab", "cde", "fghij", "k", "lmnopq"]
    got = list(blocks(iter(texts), size, chars))
    assert [len(b) for b in got] == want and sum(got, []) == texts


def test_a_memory_store_reads_like_a_file_store():
    store = MemoryStore([[5, 6, 7], [], [8, 9]])
    assert store.bounds.tolist() == [0, 3, 3, 5] and store.length(2) == 2
    assert store.read(0, 1, 10).tolist() == [6, 7] and store.read(0, 0, 3).dtype == np.int32
