"""Noise theory of NE (nnphys.noise_enhancement.noise): the exact per-sample Gram matrix against a per-sample
loop and against gradnoise, the Gram-space subspace overlaps against a parameter-space
computation, the finite-population toy's table, and the SGD factor against its closed forms."""

from __future__ import annotations

import pytest
import torch

from nnphys.noise_enhancement.stacked import member_losses
from nnphys.gradnoise import noise_factor
from nnphys.noise_enhancement.noise import ne_trace_ratio, noise_shape, per_sample_gram, probe_noise
from nnphys.nets import MLPEnsemble
from nnphys.noise_enhancement.sampling import draw_pairs


@pytest.mark.parametrize("kind,param", [("classification", "standard"), ("regression", "ntk")])
def test_per_sample_gram_equals_loop(kind, param):
    g = torch.Generator().manual_seed(0)
    net = MLPEnsemble(1, 5, 7, 2, 3 if kind == "classification" else 1, param=param, seeds=[4],
                      sigma_b=0.3, dtype=torch.float64)
    x = torch.randn(9, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g) if kind == "classification" else torch.randn(9, generator=g, dtype=torch.float64)
    K, losses = per_sample_gram(net, x, y, kind)
    params = list(net.parameters())
    rows = []
    for i in range(9):
        li = member_losses(net(x[i : i + 1]), y[i : i + 1], kind)[0]
        rows.append(torch.cat([gi.reshape(-1) for gi in torch.autograd.grad(li, params)]))
    G = torch.stack(rows)
    torch.testing.assert_close(K, G @ G.T, rtol=1e-10, atol=1e-12)
    assert losses.shape == (9,)


def test_gram_trace_agrees_with_gradnoise():
    """tr C from the centred Gram matrix equals gradient_noise's trace_cov (an independent code path)."""
    from nnphys.gradnoise import gradient_noise

    g = torch.Generator().manual_seed(1)
    net = MLPEnsemble(1, 4, 6, 2, 3, seeds=[2], dtype=torch.float64)
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=g)
    K, _ = per_sample_gram(net, x, y, "classification")
    Kc = K - K.mean(0, keepdim=True)
    Kc = Kc - Kc.mean(1, keepdim=True)
    seq = net.to_modules()[0]
    gn = gradient_noise(seq, lambda out, t: torch.nn.functional.cross_entropy(out, t, reduction="none"), x, y)
    assert float(torch.diagonal(Kc).mean()) == pytest.approx(gn.trace_cov, rel=1e-9)


def test_noise_shape_equals_parameter_space_computation():
    """The Gram-space subspace overlaps equal those of explicit P x P sample covariances of g_B and
    g_NE built from per-sample gradients (no truncation: m >= rank)."""
    g = torch.Generator().manual_seed(2)
    N, P, B, R = 30, 12, 5, 300
    G = torch.randn(N, P, generator=g, dtype=torch.float64) * torch.linspace(3, 0.2, P, dtype=torch.float64)
    Gc = G - G.mean(0)
    ia, ib = draw_pairs(N, B, R, "split", g)
    res = noise_shape(Gc @ Gc.T, ia, ib, [0.0, 1.5], m=N)
    da, db = Gc[ia].mean(1), Gc[ib].mean(1)  # (R, P): g_B - gbar, g_B' - gbar

    def top5(d):
        return torch.linalg.eigh(d.T @ d / R)[1].flip(1)[:, :5]

    e_sgd = top5(da)
    _, vec_c = torch.linalg.eigh(Gc.T @ Gc / N)
    exact = vec_c.flip(1)[:, :5]
    for a in (0.0, 1.5):
        e_ne = top5((1 + a) * da - a * db)
        assert res["overlap_sgd"][a] == pytest.approx(float((e_ne.T @ e_sgd).pow(2).sum() / 5), abs=1e-8)
        assert res["overlap_exact"][a] == pytest.approx(float((e_ne.T @ exact).pow(2).sum() / 5), abs=1e-8)
    assert res["overlap_sgd"][0.0] == pytest.approx(1.0)
    assert res["trace_fraction"] == pytest.approx(1.0)


@pytest.mark.parametrize("alpha,split,indep", [(0.5, 2.667, 2.5), (1.0, 5.444, 5.0), (2.0, 14.333, 13.0)])
def test_ratio_theory_table_spec13(alpha, split, indep):
    assert ne_trace_ratio(alpha, 20, 200, "split") == pytest.approx(split, abs=5e-4)
    assert ne_trace_ratio(alpha, 20, 200, "independent") == indep
    assert ne_trace_ratio(alpha, 20, 200, "replacement") == indep


@pytest.mark.parametrize("b,n", [(20, 200), (1, 7), (7, 7), (128, 3000)])
def test_gradnoise_noise_factor_is_the_old_sgd_var_factor(b, n):
    """gradnoise.noise_factor, which the study calls for tr Cov[g_B] / tr C, is the quantity its old
    sgd_var_factor(b, n, mode) computed: 1/B with replacement, (N - B)/(B (N - 1)) without."""
    assert noise_factor(n, b, replacement=True) == pytest.approx(1.0 / b, rel=1e-15)
    assert noise_factor(n, b, replacement=False) == pytest.approx((n - b) / (b * (n - 1)), rel=1e-15, abs=1e-300)


def test_noise_factor_equals_the_exact_subset_variance():
    """Var of a batch mean of N scalars, exact over every B-subset (N = 7, B = 3, 35 subsets)."""
    import itertools

    x = torch.tensor([0.3, -1.2, 2.0, 0.7, 0.0, -0.4, 1.1], dtype=torch.float64)
    C = float(x.var(correction=0))
    means = torch.tensor([float(x[list(s)].mean()) for s in itertools.combinations(range(7), 3)], dtype=torch.float64)
    assert float(((means - x.mean()) ** 2).mean()) == pytest.approx(noise_factor(7, 3, replacement=False) * C, rel=1e-12)


def test_probe_noise_on_random_gram_matches_theory():
    """On a random full-rank Gram matrix with 4000 draws the measured ratio's 99% CI holds the theory
    (a probabilistic test at fixed seed: the CI covers with 99% by construction)."""
    g = torch.Generator().manual_seed(5)
    G = torch.randn(60, 20, generator=g, dtype=torch.float64)
    res = probe_noise(G @ G.T, 6, 4000, "split", [1.0], 300, g)
    a = res["per_alpha"][0]
    assert a["ci99"][0] <= a["theory"] <= a["ci99"][1]
    assert res["sgd_trace"] == pytest.approx(res["sgd_trace_theory"], rel=0.1)
