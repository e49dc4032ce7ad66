"""The llama.cpp scorer's decode plan and the lockstep merge of two scorers' slices (no model needed)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lm_eval_it.backends.llamacpp.backend import cpu_flags, repack_enabled
from lm_eval_it.backends.llamacpp.scorer import plan_decodes
from lm_eval_it.backends.logits import lockstep


@pytest.mark.parametrize("lengths,n_batch", [([512] * 4, 2048), ([512] * 5, 2048), ([300, 700, 2000, 5], 1024),
                                             ([4096], 2048), ([1, 1, 1], 1)])
def test_every_token_is_decoded_once_in_row_order_and_no_decode_is_over_n_batch(lengths, n_batch):
    decodes = plan_decodes(np.array(lengths), n_batch)
    runs = [r for d in decodes for r in d]
    assert all(sum(b - a for _, a, b in d) <= n_batch for d in decodes)
    for row, length in enumerate(lengths):
        mine = [(a, b) for r, a, b in runs if r == row]
        assert mine[0][0] == 0 and mine[-1][1] == length
        assert all(x[1] == y[0] for x, y in zip(mine, mine[1:]))  # contiguous, in order
    assert [r for r, _, _ in runs] == sorted(r for r, _, _ in runs)


def test_a_window_that_fits_is_never_split_across_decodes():
    decodes = plan_decodes(np.array([512, 512, 512, 512, 512]), 2048)
    assert [len(d) for d in decodes] == [4, 1]
    assert all(a == 0 and b == 512 for d in decodes for _, a, b in d)


def _slices(values: torch.Tensor, cuts: list[int]):
    edges = [0, *cuts, len(values)]
    for a, b in zip(edges, edges[1:]):
        yield a, b, values[a:b].unsqueeze(1).repeat(1, 3), None, values[a:b]


@pytest.mark.parametrize("mine,theirs", [([], []), ([3], [3]), ([2, 5], [1, 4, 6]), ([1, 2, 3, 4, 5, 6], [])])
def test_lockstep_pairs_every_position_with_its_reference_whatever_the_cuts(mine, theirs):
    own, ref = torch.arange(7.0), torch.arange(7.0) * 10
    merged = list(lockstep(_slices(own, mine), _slices(ref, theirs)))
    assert [m[0] for m in merged] == sorted({0, *mine, *theirs})  # pieces between both sides' cuts
    assert torch.equal(torch.cat([m[4] for m in merged]), own)
    assert torch.equal(torch.cat([m[3][:, 0] for m in merged]), ref)
    assert torch.equal(torch.cat([m[2][:, 0] for m in merged]), own)


@pytest.mark.parametrize("option,flags,expected", [
    ("auto", {"avx512f", "amx_tile", "amx_int8"}, False),  # AMX: llama.cpp's AMX buffers can segfault
    ("auto", {"avx2", "fma"}, True),
    ("auto", set(), True),
    ("on", {"amx_int8"}, True),  # asked for: the user's call
    ("off", {"avx2"}, False),
])
def test_extra_weight_buffers_are_off_by_default_only_on_a_cpu_with_amx(option, flags, expected):
    assert repack_enabled(option, flags) is expected


def test_cpu_flags_are_read_from_proc_cpuinfo_where_there_is_one():
    flags = cpu_flags()
    if Path("/proc/cpuinfo").is_file():
        assert "fpu" in flags or "sse2" in flags or "fp" in flags  # x86 or arm: some basic flag is always there
    else:
        assert flags == set()
