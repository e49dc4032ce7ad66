"""The in-place KV cache gives attention the same keys and values as transformers' DynamicCache, and refuses to
grow past its capacity."""

import pytest
import torch
from conftest import tiny_llama
from transformers import DynamicCache

from lm_eval_it.compress.kvcache import in_place_cache


def decode_steps(model, cache, x: torch.Tensor, prefill: int) -> list[torch.Tensor]:
    """Logits of a prefill of ``prefill`` tokens, then of one token a step."""
    with torch.inference_mode():
        out = [model(input_ids=x[:, :prefill], past_key_values=cache, use_cache=True).logits[:, -1]]
        for i in range(prefill, x.shape[1]):
            out.append(model(input_ids=x[:, i: i + 1], past_key_values=cache, use_cache=True).logits[:, -1])
    return out


@pytest.mark.parametrize("prefill", [1, 7])
def test_in_place_cache_logits_equal_the_dynamic_caches(prefill):
    model = tiny_llama(64)
    x = torch.randint(0, 64, (5, 40), generator=torch.Generator().manual_seed(1))
    want = decode_steps(model, DynamicCache(), x, prefill)
    got = decode_steps(model, in_place_cache(model.config.num_hidden_layers, capacity=40), x, prefill)
    assert len(got) == len(want) == 41 - prefill
    for g, w in zip(got, want):
        assert torch.equal(g, w)  # bit for bit, as the docs say
        assert not torch.equal(g, torch.zeros_like(g))


def test_in_place_cache_refuses_positions_past_its_capacity():
    model = tiny_llama(64)
    x = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(2))
    cache = in_place_cache(model.config.num_hidden_layers, capacity=8)
    decode_steps(model, cache, x[:, :8], prefill=3)
    assert cache.get_seq_length() == 8
    with pytest.raises(RuntimeError, match="exceed its capacity of 8"):
        decode_steps(model, cache, x[:, 8:], prefill=1)
