"""The int8 benchmark's fake quantisers round to the grids they name, and match torch's dynamic kernel."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from int8_check import FakeQuant, fq_per_channel, fq_per_row, fq_per_tensor_affine  # noqa: E402


def test_per_channel_weights_round_each_row_to_its_own_127_steps():
    w = torch.tensor([[1.0, -0.5, 0.26], [10.0, 3.0, -7.0]])
    got = fq_per_channel(w)
    s0, s1 = 1.0 / 127, 10.0 / 127
    want = torch.tensor([[1.0, -64 * s0, 33 * s0], [10.0, 38 * s1, -89 * s1]])
    assert torch.allclose(got, want, atol=1e-7)


def test_per_tensor_affine_uses_one_scale_from_min_to_max_with_zero_exact():
    x = torch.tensor([-1.0, 0.0, 0.3, 3.0])
    got = fq_per_tensor_affine(x, levels=128)  # 7 bits: 127 steps over [-1, 3]
    step = 4.0 / 127
    zero = round(1.0 / step)  # 32
    want = (torch.tensor([-1.0, 0.0, 0.3, 3.0]) / step).round().add(zero).clamp(0, 127).sub(zero) * step
    assert torch.equal(got, want) and got[1] == 0.0
    assert abs(got[2] - 0.3) <= step / 2


def test_per_row_blocks_have_their_own_scale():
    x = torch.tensor([[100.0, 1.0, 0.5, 0.3]])
    per_row, blocks = fq_per_row(x), fq_per_row(x, block=2)
    assert per_row[0, 3] == 0.0  # 0.3 is below half a step of 100/127
    assert torch.allclose(blocks[0, 2:], torch.tensor([0.5, 76 * 0.5 / 127]), atol=1e-7)  # 0.3 / (0.5/127) = 76.2


def test_fake_per_channel_weights_with_7_bit_per_tensor_inputs_track_torch_dynamic_int8():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32)
    x = torch.randn(8, 64)
    x[0, 0] = 40.0  # an outlier: one scale for the whole tensor
    ref = lin(x)
    fake = FakeQuant(lin, "channel", "tensor7")(x)
    qconfig = {"0": torch.ao.quantization.per_channel_dynamic_qconfig}
    torch_int8 = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), qconfig, dtype=torch.qint8)(x)
    err_fake, err_torch = (fake - ref).norm() / ref.norm(), (torch_int8 - ref).norm() / ref.norm()
    assert err_torch > 0.01  # the outlier costs something real
    assert abs(err_fake - err_torch) < 0.1 * err_torch  # 8-bit inputs (0.027 here) would not match 0.047
