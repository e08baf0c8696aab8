"""Feature bank: exact float32 rows, float16 within its precision, seeded JL projection, tensor-only
checkpoints, and the cover reading a bank as it reads a tensor."""

from __future__ import annotations

import pytest
import torch

from rlselector.bank import FeatureBank
from rlselector.cover import cover, epsilon
from rlselector.errors import InputError


def features(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.relu(torch.randn(n, d, generator=torch.Generator().manual_seed(seed))) * 7.0


def test_float32_rows_round_trip_exactly_by_index():
    bank = FeatureBank(10, 6, dtype="float32")
    x = features(4, 6)
    bank.update(torch.tensor([7, 2, 9, 0]), x)
    assert torch.equal(bank.rows(torch.tensor([7, 2, 9, 0])), x)
    assert torch.equal(bank.rows(slice(3, 7)), torch.zeros(4, 6))  # never written
    bank.update([2], x[3:] + 1.0)  # a later epoch overwrites
    assert torch.equal(bank.rows(torch.tensor([2])), x[3:] + 1.0)
    assert bank.all().shape == (10, 6) and bank.all().dtype == torch.float32
    assert bank.nbytes == 10 * 6 * 4


def test_float16_rows_within_half_precision_and_half_the_bytes():
    bank = FeatureBank(200, 64)  # float16 is the default
    x = features(200, 64)
    bank.update(torch.arange(200), x)
    got = bank.all()
    assert got.dtype == torch.float32
    error = (got - x).abs()
    assert float((error - x.abs() * 2.0**-11).max()) <= 1e-7  # round-to-nearest: half an ulp of float16
    assert float(error.max()) > 0  # it really is stored in float16
    assert bank.nbytes == 200 * 64 * 2


def test_projection_is_seeded_reproducible_and_keeps_distances():
    x = features(300, 512, seed=1)
    rows = []
    for seed in (3, 3, 4):
        bank = FeatureBank(300, 512, dtype="float32", projection_dim=256, seed=seed)
        bank.update(torch.arange(300), x)
        rows.append(bank.all())
    assert rows[0].shape == (300, 256)
    assert torch.equal(rows[0], rows[1]) and not torch.allclose(rows[0], rows[2])
    # Johnson–Lindenstrauss scaling: squared distances unbiased, each within a few 1/√256.
    first, second = torch.arange(150), torch.arange(150, 300)
    ratio = (rows[0][first] - rows[0][second]).pow(2).sum(1) / (x[first] - x[second]).pow(2).sum(1)
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.03)
    assert 0.6 < float(ratio.min()) and float(ratio.max()) < 1.4
    assert bank.project(x[:5]).shape == (5, 256)


def test_state_dict_loads_with_weights_only(tmp_path):
    bank = FeatureBank(50, 32, projection_dim=8, seed=5)
    bank.update(torch.arange(50), features(50, 32))
    torch.save(bank.state_dict(), tmp_path / "bank.pt")
    state = torch.load(tmp_path / "bank.pt", weights_only=True)
    assert all(torch.is_tensor(value) for value in state.values())
    restored = FeatureBank(50, 32, projection_dim=8, seed=99)  # another seed: the checkpoint's matrix wins
    restored.load_state_dict(state)
    assert torch.equal(restored.all(), bank.all())
    assert torch.equal(restored.project(features(3, 32)), bank.project(features(3, 32)))
    with pytest.raises(InputError, match="expected keys"):
        FeatureBank(50, 32).load_state_dict(state)
    with pytest.raises(InputError, match="'rows' must be"):
        FeatureBank(50, 32, dtype="float32", projection_dim=8).load_state_dict(state)


def test_cover_reads_a_bank_as_the_same_rows_in_a_tensor():
    bank = FeatureBank(120, 16)
    bank.update(torch.arange(120), features(120, 16, seed=2))
    labels = torch.arange(120) % 3
    eps = epsilon(bank, labels)
    assert eps == epsilon(bank.all(), labels)
    from_bank, from_tensor = cover(bank, labels, eps), cover(bank.all(), labels, eps)
    assert torch.equal(from_bank.degree, from_tensor.degree) and torch.equal(from_bank.nn_index, from_tensor.nn_index)
    assert float(from_bank.degree.mean()) > 0
    with pytest.raises(InputError, match="one entry per feature row"):
        cover(bank, labels[:-1], eps)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda b: b.update(torch.tensor([0]), torch.full((1, 4), 1e5)), "float16's range"),
        (lambda b: b.update(torch.tensor([0]), torch.full((1, 4), float("nan"))), "NaN or inf"),
        (lambda b: b.update(torch.tensor([5]), torch.ones(1, 4)), r"indices must lie in \[0, 5\)"),
        (lambda b: b.update(torch.tensor([0, 1]), torch.ones(1, 4)), "need 1 indices"),
        (lambda b: b.update(torch.tensor([0]), torch.ones(1, 3)), r"shape \(rows, 4\)"),
    ],
)
def test_bad_updates_raise_input_error(call, message):
    with pytest.raises(InputError, match=message):
        call(FeatureBank(5, 4))


def test_bad_settings_raise_input_error():
    with pytest.raises(InputError, match="dtype"):
        FeatureBank(5, 4, dtype="bfloat16")
    with pytest.raises(InputError, match="projection_dim"):
        FeatureBank(5, 4, projection_dim=4)
    with pytest.raises(InputError, match="n and d"):
        FeatureBank(0, 4)
