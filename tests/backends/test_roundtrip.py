"""roundtrip_report counts bytes the tokenizer drops and bytes it adds."""

from lm_eval_it.backends.tokenizer import roundtrip_report


def test_inserted_bytes_are_counted():
    r = roundtrip_report(["Hello"], [" Hello"])
    assert (r["lossy_documents"], r["deleted_bytes"], r["inserted_bytes"], r["lossy_bytes"]) == (1, 0, 1, 1)
    assert r["sample"] == {"document": 0, "offset": 0, "text": "Hello", "decoded": " Hello"}


def test_deleted_replaced_and_multibyte():
    r = roundtrip_report(["a  b", "café", "same"], ["a b", "cafe", "same"])
    # "  "→" " deletes 1 byte; "é" (2 bytes) → "e" (1 byte) deletes 2 and inserts 1
    assert (r["lossy_documents"], r["deleted_bytes"], r["inserted_bytes"], r["lossy_bytes"]) == (2, 3, 1, 4)


def test_lossless_is_zero():
    r = roundtrip_report(["x y", ""], ["x y", ""])
    assert r == {"lossy_documents": 0, "lossy_bytes": 0, "deleted_bytes": 0, "inserted_bytes": 0, "sample": None}
