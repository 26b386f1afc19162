"""Tests of nnphys.targets against hand-checked values, exact enumeration and Monte Carlo (reference
values: the study guide ``docs/studies/depth-locality.md``, "Definitions")."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nnphys.errors import ConfigError
from nnphys.targets import (
    duplicate_counts,
    k_global,
    k_local,
    label_stats,
    make_dataset,
    sample_inputs,
    sign_labels,
    window_sum_counts,
)


def _cube(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([1.0, -1.0], repeat=d)), dtype=torch.float64)


def _naive_global(x: torch.Tensor, k: int) -> torch.Tensor:
    """Python loop over windows, the module docstring's formula verbatim (1-based cyclic indices)."""
    d = x.shape[-1]
    out = torch.zeros(x.shape[:-1], dtype=torch.float64)
    for i in range(1, d + 1):
        term = torch.ones(x.shape[:-1], dtype=torch.float64)
        for j in range(k):
            term = term * x[..., (i + j - 1) % d]
        out = out + term
    return out


# ---------------------------------------------------------------- hand-checked values


def test_hand_checked_values():
    x = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0]], dtype=torch.float64)  # d = 5
    # windows (k=2): x1x2=-1, x2x3=-1, x3x4=1, x4x5=-1, x5x1=-1  -> sum -3
    assert k_global(x, 2, "none").item() == -3.0
    assert k_global(x, 2).item() == pytest.approx(-3 / math.sqrt(5), rel=1e-15)
    # k=3: x1x2x3=-1, x2x3x4=-1, x3x4x5=-1, x4x5x1=-1, x5x1x2=1 -> -3
    assert k_global(x, 3, "none").item() == -3.0
    assert k_local(x, 2).item() == -1.0
    assert k_local(x, 3, block_start=3).item() == -1.0  # x3 x4 x5
    assert k_local(x, 3, block_start=4).item() == -1.0  # x4 x5 x1 (cyclic)
    assert k_local(x, 2, block_start=5).item() == -1.0  # x5 x1 (cyclic)
    assert k_local(x, 2, block_start=3).item() == 1.0  # x3 x4
    assert k_local(x, 1, block_start=5).item() == -1.0
    g = torch.tensor([[0.5, 2.0, -1.0]], dtype=torch.float64)  # Gaussian-like values
    assert k_local(g, 2).item() == 1.0
    assert k_global(g, 2, "none").item() == pytest.approx(0.5 * 2.0 + 2.0 * (-1.0) + (-1.0) * 0.5)


def test_global_matches_naive_loop_and_batch_shapes():
    x = sample_inputs(50, 9, "gauss", torch.Generator().manual_seed(3))
    for k in (1, 2, 3, 8):
        torch.testing.assert_close(k_global(x, k, "none"), _naive_global(x, k), rtol=1e-13, atol=1e-13)
    # arbitrary leading shape and float32
    x3 = x.reshape(5, 10, 9).float()
    assert k_global(x3, 2).shape == (5, 10)
    assert k_global(x3, 2).dtype == torch.float32


def test_sign_labels_and_tie_rule():
    f = torch.tensor([-2.0, 0.0, 3.0])
    assert sign_labels(f).tolist() == [-1.0, 1.0, 1.0]
    assert sign_labels(f, -1).tolist() == [-1.0, -1.0, 1.0]
    x = torch.tensor([[1.0, -1.0, 1.0, -1.0]])  # d=4: all bonds negative, sum -4
    with pytest.raises(ConfigError, match="tie_break"):
        k_global(x, 2, sign=True)
    x_tie = torch.tensor([[1.0, 1.0, 1.0, -1.0]])  # bonds 1,1,-1,-1 -> tie
    assert k_global(x_tie, 2, sign=True, tie_break=1).item() == 1.0
    assert k_global(x_tie, 2, sign=True, tie_break=-1).item() == -1.0
    x5 = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0]])
    assert k_global(x5, 2, sign=True).item() == -1.0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: k_local(torch.ones(3, 4), 4),  # k > d-1
        lambda: k_global(torch.ones(3, 4), 0),
        lambda: k_global(torch.ones(3, 1), 1),  # d < 2
        lambda: k_global(torch.ones(3, 5), 2, norm="l2"),
        lambda: k_local(torch.ones(3, 5), 2, block_start=0),
        lambda: k_local(torch.ones(3, 5), 2, block_start=6),
        lambda: k_local(torch.ones(3, 5, dtype=torch.int64), 2),
        lambda: k_global(torch.ones(3, 5), 2, sign=True, tie_break=0.5),
        lambda: sample_inputs(3, 5, "uniform", torch.Generator()),
        lambda: make_dataset(10, 10, 5, 5),
        lambda: make_dataset(10, 10, 1, 1),
        lambda: make_dataset(10, 10, 8, 2, law="sphere"),
        lambda: make_dataset(10, 10, 8, 2, target="middle"),
        lambda: make_dataset(10, 10, 8, 2, variant="sign"),  # even d, no tie_break
        lambda: make_dataset(-1, 10, 8, 2),
        lambda: label_stats(5, 5),
    ],
)
def test_bad_input_raises_config_error(call):
    with pytest.raises(ConfigError):
        call()


# ---------------------------------------------------------------- normalisation E f = 0, E f^2 = 1


@pytest.mark.parametrize("d,k", [(3, 2), (6, 3), (10, 1), (10, 9)])
def test_exact_moments_on_the_cube(d, k):
    """d >= k+1: distinct windows -> orthonormal monomials -> E f = 0, E f^2 = 1 exactly."""
    x = _cube(d)
    for f in (k_local(x, k), k_global(x, k), k_local(x, k, block_start=d)):
        assert abs(f.mean().item()) < 1e-14
        assert f.pow(2).mean().item() == pytest.approx(1.0, abs=1e-13)


def test_second_moment_gauss_monte_carlo():
    """Gaussian law: E f^2 = 1. n = 2e5 draws; tolerance 4 s.e. of the sample mean of f^2."""
    g = torch.Generator().manual_seed(11)
    x = sample_inputs(200_000, 7, "gauss", g)
    for f in (k_local(x, 3), k_global(x, 3), k_global(x, 2), k_local(x, 1)):
        f2 = f.pow(2)
        se = f2.std().item() / math.sqrt(len(f2))
        assert abs(f2.mean().item() - 1.0) < 4 * se
        assert abs(f.mean().item()) < 4 * f.std().item() / math.sqrt(len(f))


def test_sample_inputs_law_and_determinism():
    x1 = sample_inputs(1000, 16, "cube", torch.Generator().manual_seed(5))
    x2 = sample_inputs(1000, 16, "cube", torch.Generator().manual_seed(5))
    assert torch.equal(x1, x2) and x1.dtype == torch.float64
    assert set(x1.unique().tolist()) == {-1.0, 1.0}
    # P(+1) = 1/2: 16000 draws, 4 s.e. = 4 * 0.5 / sqrt(16000)
    assert abs((x1 > 0).double().mean().item() - 0.5) < 4 * 0.5 / math.sqrt(16000)
    xg = sample_inputs(4000, 4, "gauss", torch.Generator().manual_seed(5), dtype=torch.float32)
    assert xg.dtype == torch.float32 and abs(xg.var().item() - 1) < 4 * math.sqrt(2 / 16000)


# ---------------------------------------------------------------- tie rates and class priors (reference table)


@pytest.mark.parametrize("d,k", [(5, 2), (7, 3), (6, 1), (8, 4), (6, 5), (9, 2)])
def test_window_sum_counts_vs_enumeration(d, k):
    s = k_global(_cube(d), k, "none").round().long()
    brute: dict[int, int] = {}
    for v in s.tolist():
        brute[v] = brute.get(v, 0) + 1
    assert window_sum_counts(d, k) == brute


@pytest.mark.parametrize("d,k", [(15, 2), (17, 2), (17, 3), (16, 2), (16, 1), (16, 3)])
def test_label_stats_exact_enumeration(d, k):
    """Exact enumeration of the 2^d cube points vs the transfer-matrix counts."""
    f = k_global(_cube(d), k, "none")
    tie = (f == 0).double().mean().item()
    p_plus = (sign_labels(f) > 0).double().mean().item()
    st = label_stats(d, k)
    assert st["tie_rate"] == pytest.approx(tie, abs=1e-15)
    assert st["p_plus"] == pytest.approx(p_plus, abs=1e-15)


def test_spec_tie_rates_and_priors():
    """Reference table (guide, "Definitions"; 4 decimals at d <= 17, 3 s.f. at d = 32) and class priors."""
    for d, k, tie in [(16, 2, 0.3928), (16, 1, 0.1964), (16, 3, 0.1964)]:
        assert label_stats(d, k)["tie_rate"] == pytest.approx(tie, abs=5e-5)
    for d, k, tie in [(32, 2, 0.280), (32, 1, 0.140), (32, 3, 0.140)]:
        assert label_stats(d, k)["tie_rate"] == pytest.approx(tie, abs=5e-4)
    for d, p in [(17, 0.5982), (33, 0.5700), (15, 0.3953), (31, 0.4278)]:
        st = label_stats(d, 2)
        assert st["tie_rate"] == 0.0
        assert st["p_plus"] == pytest.approx(p, abs=5e-5)
        assert st["trivial_error"] == pytest.approx(min(p, 1 - p), abs=5e-5)
    for d, k in [(17, 1), (17, 3), (33, 3), (15, 5)]:  # odd k: f(-x) = -f(x) -> balanced
        assert label_stats(d, k)["p_plus"] == 0.5
    assert label_stats(17, 2, "local")["p_plus"] == 0.5


def test_local_label_is_balanced_exactly():
    x = _cube(9)
    for k in (1, 2, 3, 8):
        assert (k_local(x, k, sign=True) > 0).double().mean().item() == 0.5


# ---------------------------------------------------------------- data sets


def test_make_dataset_deterministic_and_shared_inputs():
    a = make_dataset(300, 200, 12, 2, target="local", seed=7, n_val=50)
    b = make_dataset(300, 200, 12, 2, target="global", seed=7)
    c = make_dataset(300, 200, 12, 2, target="local", seed=7, n_val=50)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.y_train, c.y_train) and torch.equal(a.x_val, c.x_val)
    assert a.x_val.shape == (50, 12) and b.x_val.shape == (0, 12)
    torch.testing.assert_close(a.y_train, k_local(a.x_train, 2))
    torch.testing.assert_close(b.y_test, k_global(b.x_test, 2))
    d = make_dataset(300, 200, 12, 2, target="local", seed=8)
    assert not torch.equal(a.x_train, d.x_train)


def test_make_dataset_sign_variant_info():
    ds = make_dataset(4000, 4000, 17, 2, target="global", variant="sign", seed=1)
    assert set(ds.y_train.unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(ds.y_train, sign_labels(ds.f_train))
    p = label_stats(17, 2)["p_plus"]
    se = math.sqrt(p * (1 - p) / 4000)
    assert abs(ds.info["p_plus_train"] - p) < 4 * se
    assert ds.info["tie_rate_train"] == 0.0
    assert ds.info["trivial_error_test"] == pytest.approx(min(ds.info["p_plus_test"], 1 - ds.info["p_plus_test"]))
    # even d with explicit tie break: tie rate near the exact 0.3928 (4 s.e.)
    ev = make_dataset(4000, 10, 16, 2, target="global", variant="sign", tie_break=1, seed=2)
    se = math.sqrt(0.3928 * 0.6072 / 4000)
    assert abs(ev.info["tie_rate_train"] - label_stats(16, 2)["tie_rate"]) < 4 * se


def test_duplicate_counts_vs_naive():
    g = torch.Generator().manual_seed(0)
    xt, xs = sample_inputs(400, 6, "cube", g), sample_inputs(100, 6, "cube", g)
    rows = [tuple(r) for r in xt.tolist()]
    pairs = sum(1 for i in range(len(rows)) for j in range(i) if rows[i] == rows[j])
    inside = sum(1 for r in xs.tolist() if tuple(r) in set(rows))
    assert duplicate_counts(xt, xs) == (pairs, inside)
    # generic (non-cube) path: 3 repeated rows, 2 test rows from the training set
    xg = sample_inputs(10, 4, "gauss", g)
    assert duplicate_counts(torch.cat([xg, xg[:3]]), torch.cat([xg[5:7], sample_inputs(4, 4, "gauss", g)])) == (3, 2)
    xt3 = torch.cat([xt, xt[:1], xt[:1]])  # a triple adds 3 pairs, not 2
    assert duplicate_counts(xt3, xs)[0] == duplicate_counts(xt, xs)[0] + sum(
        1 for r in rows if r == rows[0]) * 2 + 1
    ds = make_dataset(2000, 2000, 16, 2, seed=3)
    # about N^2/2^(d+1) = 30.5 duplicate pairs (Poisson, 5 sd = 28) and a fraction
    # 1-(1-2^-d)^N = 3.0% of the test points in the training set (mean 60.2, binomial 5 sd = 38)
    assert abs(ds.info["n_dup_train_pairs"] - 2000 * 1999 / 2 / 2**16) < 28
    assert abs(ds.info["n_test_in_train"] - 2000 * (1 - (1 - 2**-16) ** 2000)) < 38
