"""nnphys.linreg: closed forms against the exact second-moment oracle (machine precision), the
oracle against Monte Carlo (tolerance = z · s.e. over independent chains), and the spec's
reference numbers (specs/minibatch-noise.md §13, σ² = 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnphys import linreg as L
from nnphys.errors import ConfigError

A2 = np.diag([1.0, 0.5])
A9 = np.diag([1.0, 0.4])
U9 = np.array([1.0, 1.0])




def close(a, b, rtol):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)) <= rtol


# ----------------------------------------------------------------------------- reference numbers


def test_reference_numbers_thm2_rows_2_to_7():
    # row 2, 3 (Thm 2, μ = 0), row 5 (momentum), row 6 (1-D), row 7 (L_train); printed to 4-5 digits
    assert close(np.diag(L.thm2_sigma(A2, 1.5, 50)), [0.06908, 0.02629], 2e-4)
    assert close(np.diag(L.thm2_sigma(A2, 1.5, 10)), [0.8443, 0.2515], 2e-4)
    assert close(np.diag(L.thm2_sigma(A2, 0.5, 5, mu=0.5)), [0.1692, 0.1432], 3e-4)
    assert close(L.sigma_1d(1, 1, 10), 0.125, 1e-12)
    assert close(L.max_lr(np.eye(1), 10), 5 / 3, 1e-9)
    assert close(L.train_loss(A2, 1.5, 50), 0.5411, 1e-4)
    assert close(L.train_loss(A2, 0.5, 5, mu=0.5), 0.6204, 1e-4)
    # row 4 baselines
    assert close(np.diag(L.continuous_sigma(A2, 1.5, 10)), [0.075, 0.075], 1e-12)
    assert close(np.diag(L.hessian_approx_sigma(A2, 1.5, 10)), [0.30, 0.12], 1e-12)


def test_row8_outside_stability_is_flagged():
    assert math.isinf(L.sigma_1d(1.5, 1, 4))
    assert not L.is_stable(np.eye(1) * 1.5, 1, 4)
    assert np.all(np.isinf(L.thm2_sigma(np.eye(1) * 1.5, 1, 4)))
    assert math.isinf(L.train_loss(np.eye(1) * 1.5, 1, 4))
    orc = L.moment_oracle_online(np.eye(1) * 1.5, 1, 4)
    assert not orc.stable and orc.rho >= 1


def test_reference_numbers_l2_rows_9_10_11():
    for (lam, S, g), ref in zip([(0.5, 1, 0.1), (0.5, 1, -0.1), (0.6, 2, 0.3)], [0.03348, 0.13039, 0.09876]):
        th = L.thm4_test_loss(A9, g, U9, lam, S)
        orc = L.moment_oracle_online(A9, lam, S, sigma2=0.0, Gamma=g, u=U9)
        assert close(th, ref, 2e-4)
        assert close(th, orc.extra["test_loss"], 1e-10)
        assert np.allclose(L.l2_sigma(A9, g, U9, lam, S), orc.Sigma, rtol=1e-10, atol=1e-14)
    # row 10: Eq. 12 right on the diagonal, wrong (and asymmetric) off it
    orc = L.moment_oracle_online(A9, 0.5, 1, sigma2=0.0, Gamma=0.1, u=U9)
    eq12 = L.eq12_sigma(A9, 0.1, U9, 0.5, 1)
    assert close(np.diag(orc.Sigma), [0.03435, 0.02087], 2e-4) and close(orc.Sigma[0, 1], 0.00323, 1e-3)
    assert close(np.diag(eq12), np.diag(orc.Sigma), 1e-10)
    assert abs(eq12[0, 1] - 0.0052) < 5e-5 and abs(eq12[1, 0] - 0.0029) < 5e-5
    # row 11 (Cor. 1) and the §6 examples
    g, Ls = L.optimal_weight_decay_1d(1, 1, 1.8, 10)
    assert abs(g + 0.170) < 0.005 and abs(Ls - 0.147) < 0.001
    assert abs(L.optimal_weight_decay_1d(1, 1, 0.7, 1)[0] - 0.354) < 0.005
    assert abs(L.optimal_weight_decay_1d(1, 1, 0.5, 1)[0]) < 0.005


def test_l2_1d_closed_form_matches_thm4_and_stability():
    for lam, S, g in [(0.5, 1, 0.3), (1.8, 10, -0.17), (0.9, 3, 0.05)]:
        assert close(L.l2_test_loss_1d(1.0, g, 1.0, lam, S), L.thm4_test_loss(np.eye(1), g, [1.0], lam, S), 1e-12)
    assert not L.l2_stable_1d(1.0, 0.0, 1.8, 10) and L.l2_stable_1d(1.0, 0.0, 1.6, 10)
    # S = 1: no stable γ once λa > 1/sqrt(2)
    assert math.isnan(L.optimal_weight_decay_1d(1, 1, 0.72, 1)[0])


def test_reference_numbers_input_noise_row12():
    B = np.diag([0.3, 0.2])
    u = np.array([1.0, -0.7])
    assert close(L.input_noise_sigma_eff(A2, B, u), 0.30077, 2e-5)
    # Tr[A K^-1 B U] form (no commutation needed)
    K = A2 + B
    assert close(L.input_noise_sigma_eff(A2, B, u), np.trace(A2 @ np.linalg.inv(K) @ B @ np.outer(u, u)), 1e-12)
    assert close(np.diag(L.input_noise_sigma(A2, B, u, 0.8, 4)), [0.16498, 0.08883], 1e-4)


def test_reference_kesten_tail_indices_row16():
    ref = {1: 1.09, 2: 2.00, 3: 2.78, 4: 3.51, 10: 7.51}
    for S, b in ref.items():
        assert abs(L.kesten_tail_index(1, 1, S) - b) < 0.006
        assert L.tail_exponent_paper(1, 1, S) == S
    assert L.tail_exponent_continuous(1, 1, 3) == 7


# ----------------------------------------------------------------------------- formulas vs oracle


@pytest.mark.parametrize("lam,S,mu", [(1.5, 50, 0.0), (1.5, 10, 0.0), (0.5, 5, 0.5), (0.3, 1, 0.9), (1.2, 3, 0.2)])
def test_thm2_thm3_losses_equal_oracle(lam, S, mu):
    A = np.diag([1.0, 0.5, 0.2])
    orc = L.moment_oracle_online(A, lam, S, mu=mu)
    assert orc.stable == L.is_stable(A, lam, S, mu)
    if not orc.stable:
        return
    assert np.allclose(L.thm2_sigma(A, lam, S, mu=mu), orc.Sigma, rtol=1e-10, atol=0)
    assert np.allclose(L.thm3_noise(A, lam, S, mu=mu), orc.C, rtol=1e-10, atol=1e-15)
    assert close(L.train_loss(A, lam, S, mu=mu), orc.extra["train_loss"], 1e-10)
    assert close(L.test_loss(A, lam, S, mu=mu), orc.extra["test_loss"], 1e-10)
    # noise in terms of the loss (spec §4): C = 2 L_train A / S + AΣA / S
    assert np.allclose(orc.C, 2 * orc.extra["train_loss"] * A / S + A @ orc.Sigma @ A / S, rtol=1e-10)
    # Thm 1 (fluctuation–noise relation) solved for Σ with the exact C
    assert np.allclose(L.thm1_sigma(A, lam, orc.C, mu), orc.Sigma, rtol=1e-9)


def test_oracle_equals_literal_recursion_and_stability_edge():
    assert np.allclose(L.iterate_moments_online(A2, 1.5, 10, n_steps=4000), L.thm2_sigma(A2, 1.5, 10), rtol=1e-10)
    # the moment stability edge: ρ crosses 1 where s_μ crosses 1, also with momentum
    for mu in (0.0, 0.5):
        lm = L.max_lr(A2, 4, mu)
        assert L.moment_oracle_online(A2, 0.999 * lm, 4, mu=mu).rho < 1
        assert L.moment_oracle_online(A2, 1.001 * lm, 4, mu=mu).rho >= 1 or not L.moment_oracle_online(
            A2, 1.001 * lm, 4, mu=mu).stable
    for D, S in [(2, 1), (8, 4), (32, 16)]:
        assert close(L.max_lr(np.eye(D), S), L.max_lr_isotropic(1.0, D, S), 1e-9)
        assert close(L.max_lr(np.eye(D), S), 2 * S / (D + S + 1), 1e-9)
    assert close(L.sigma_1d(1, 1, 4, mu=0), 1 / (8 - 6), 1e-12)


def test_damped_newton_and_ngd():
    Lam = 0.5 * np.linalg.inv(A2)
    orc = L.moment_oracle_online(A2, Lam, 10)
    assert np.allclose(L.damped_newton_sigma(A2, 0.5, 10), orc.Sigma, rtol=1e-10)
    assert np.allclose(L.damped_newton_sigma(A2, 0.5, 10, mu=0.3), L.moment_oracle_online(A2, Lam, 10, mu=0.3).Sigma,
                       rtol=1e-10)
    # stable iff S > λD/g
    assert np.all(np.isinf(L.damped_newton_sigma(A2, 1.5, 2)))
    # NGD: Λ = λ/S C^-1 with C from Lemma 1 (σ = 0) is a self-consistent solution of Thm 1
    for mu in (0.0, 0.4):
        Sg = L.ngd_sigma(A2, 0.3, 4, mu)
        C = L.lemma1_noise(A2, Sg, 0.0, 4)
        Lam = 0.3 / 4 * np.linalg.inv(C)
        assert np.allclose(L.thm1_sigma(A2, Lam, C, mu), Sg, rtol=1e-9)


def test_fixed_ratio_scaling():
    c = 0.1
    for S in (1, 2, 8, 16):
        assert close(L.fixed_ratio_sigma_1d(1.0, c, S), L.sigma_1d(1.0, c * S, S), 1e-12)
        assert close(L.fixed_ratio_sigma(np.eye(1), c, S)[0, 0], L.sigma_1d(1.0, c * S, S), 1e-12)
    assert L.fixed_ratio_divergence_S(1.0, c) == pytest.approx(18.0)
    assert math.isinf(L.fixed_ratio_sigma_1d(1.0, c, 18)) and math.isfinite(L.fixed_ratio_sigma_1d(1.0, c, 17))


def test_thm5_sign_and_exact_regression_noise():
    z = np.array([0.7, -0.4])
    s2, S = 0.3, 3
    L0 = 0.5 * (s2 + z @ A2 @ z)
    exact = L.lemma1_noise(A2, np.outer(z, z), s2, S)  # Lemma 1 with M = z zᵀ
    assert np.allclose(L.regression_noise_exact(A2, L0, A2 @ z, S), exact, rtol=1e-12)
    assert not np.allclose(L.thm5_noise(L0, A2, A2 @ z, S), exact, rtol=1e-3)


# ----------------------------------------------------------------------------- high dimension


def test_thm6_far_and_near_edge_row13_row14():
    rng = np.random.default_rng(0)
    N, D, S = 400, 100, 8
    X = rng.standard_normal((N, D))
    y = X @ (rng.standard_normal(D) / 10) + rng.standard_normal(N)
    far = L.moment_oracle_finite(X, y, 0.05, S)
    th = L.thm6_trace(far.extra["A_hat"], 0.05, S, residual_var=far.extra["residual_var"])
    assert abs(th / far.extra["tr_A_Sigma"] - 1) < 0.03  # row 13 tolerance
    near = L.moment_oracle_finite(X, y, 0.12, S)
    th = L.thm6_trace(near.extra["A_hat"], 0.12, S, residual_var=near.extra["residual_var"])
    assert th < 0.97 * near.extra["tr_A_Sigma"]  # row 14: low near the edge
    # over-parameterised (row 15): zero fluctuation
    Xo = rng.standard_normal((80, D))
    over = L.moment_oracle_finite(Xo, rng.standard_normal(80), 0.1, S)
    assert over.stable and over.extra["tr_A_Sigma"] < 1e-20
    assert L.thm6_trace(over.extra["A_hat"], 0.1, S, alpha=0.8) == 0.0
    assert close(L.max_lr_highdim(np.eye(10) * 2.0, 4), L.max_lr_highdim_isotropic(2.0, 10, 4), 1e-9)


def test_prop4_matches_exact_finite_noise_up_to_kurtosis():
    """Prop. 4 replaces (1/N)Σ(xᵀΣx)xxᵀ by Tr[ÂΣ]Â (Gaussian, large D): close, not exact."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 100))
    y = rng.standard_normal(400)
    orc = L.moment_oracle_finite(X, y, 0.05, 8)
    approx = L.prop4_noise(orc.extra["A_hat"], orc.Sigma, 1.0, 8, alpha=4.0)
    rel = abs(np.trace(approx) - np.trace(orc.C)) / np.trace(orc.C)
    assert rel < 0.1


# ----------------------------------------------------------------------------- Monte Carlo


def test_prop1_monte_carlo_both_schemes():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((12, 3)) + np.array([1.0, 0, 0])
    gbar = G.mean(0)
    gen = L.SimRng(1, torch.device("cpu"))
    for repl in (True, False):
        idx = L.sample_batches(40000, 12, 5, repl, gen).numpy()
        if not repl:
            assert all(len(set(r)) == 5 for r in idx[:200])
        d = G[idx].mean(1) - gbar
        d2 = (d**2).sum(1)
        th = np.trace(L.prop1_noise(G, 5, replacement=repl))
        assert abs(d2.mean() - th) < 4 * d2.std() / math.sqrt(len(d2))


def test_without_replacement_sampler_is_uniform():
    gen = L.SimRng(3, torch.device("cpu"))
    for N, S in [(10, 3), (20, 15)]:  # Floyd branch and sort branch
        idx = L.sample_batches(20000, N, S, False, gen).numpy()
        assert all(len(set(r)) == S for r in idx[:500])
        counts = np.bincount(idx.ravel(), minlength=N)
        exp = 20000 * S / N
        chi2 = ((counts - exp) ** 2 / exp).sum()
        assert chi2 < 3 * N  # mean N - 1, generous


@pytest.mark.slow
def test_online_simulation_matches_oracle_rows_2_5():
    """Rows 2 and 5: MC within 4 s.e. (over independent chains) of the exact Σ and L_train."""
    for lam, S, mu, seed in [(1.5, 50, 0.0, 0), (0.5, 5, 0.5, 1)]:
        orc = L.moment_oracle_online(A2, lam, S, mu=mu)
        sim = L.simulate_online(A2, lam, S, 1.0, mu=mu, n_chains=800, n_steps=1500, seed=seed)
        m, h = sim.sigma_ci(z=4.0)
        assert np.all(np.abs(np.diag(m) - np.diag(orc.Sigma)) <= np.diag(h))
        tr = sim.chain_train
        assert abs(tr.mean() - orc.extra["train_loss"]) <= 4 * tr.std(ddof=1) / math.sqrt(len(tr))


@pytest.mark.slow
def test_online_simulation_l2_and_input_noise():
    orc = L.moment_oracle_online(A9, 0.6, 2, sigma2=0.0, Gamma=0.3, u=U9)
    sim = L.simulate_online(A9, 0.6, 2, 0.0, Gamma=0.3, u=U9, n_chains=800, n_steps=1500, seed=2)
    te = sim.chain_test
    assert abs(te.mean() - orc.extra["test_loss"]) <= 4 * te.std(ddof=1) / math.sqrt(len(te))
    B = np.diag([0.3, 0.2])
    u = np.array([1.0, -0.7])
    th = L.input_noise_sigma(A2, B, u, 0.8, 4)
    sim = L.simulate_online(A2, 0.8, 4, 0.0, B_input=B, u=u, n_chains=800, n_steps=1500, seed=3)
    m, h = sim.sigma_ci(z=4.0)
    assert np.all(np.abs(np.diag(m) - np.diag(th)) <= np.diag(h))


@pytest.mark.slow
@pytest.mark.parametrize("replacement,mu", [(True, 0.0), (False, 0.0), (True, 0.5)])
def test_finite_simulation_matches_finite_oracle(replacement, mu):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 3)) * np.array([1.0, 0.7, 0.4])
    y = X @ np.array([0.5, -1.0, 0.2]) + rng.standard_normal(30)
    orc = L.moment_oracle_finite(X, y, 0.3, 4, mu=mu, replacement=replacement)
    sim = L.simulate_finite(X, y, 0.3, 4, mu=mu, replacement=replacement, n_chains=600, n_steps=1500, seed=7)
    m, h = sim.sigma_ci(z=4.0)
    assert np.all(np.abs(m - orc.Sigma) <= h + 1e-12)
    tr = sim.chain_train
    assert abs(tr.mean() - orc.extra["train_loss"]) <= 4 * tr.std(ddof=1) / math.sqrt(len(tr))


def test_hill_estimator_on_pareto():
    rng = np.random.default_rng(0)
    x = rng.pareto(2.5, 400000) + 1  # P(X > x) = x^-2.5
    b = L.hill_estimator(x, 0.01)
    assert abs(b - 2.5) < 4 * 2.5 / math.sqrt(4000)


def test_overparameterised_sgd_reaches_min_norm_interpolator():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 20))
    y = rng.standard_normal(10)
    lam = 0.5 * L.max_lr_highdim(X.T @ X / 10, 2)
    sim = L.simulate_finite(X, y, lam, 2, n_chains=8, n_steps=50, burn_in=3000, w0=np.zeros(20), seed=0)
    w = sim.v_final + sim.w_star
    assert np.allclose(w, np.linalg.pinv(X) @ y, atol=1e-8)
    assert sim.chain_train.max() < 1e-15


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_config_errors():
    with pytest.raises(ConfigError, match="lam"):
        L.thm2_sigma(A2, 0.0, 4)
    with pytest.raises(ConfigError, match="lam"):
        L.simulate_online(A2, -0.1, 4, n_chains=2, n_steps=2)
    with pytest.raises(ConfigError, match="S"):
        L.thm2_sigma(A2, 0.1, 0)
    with pytest.raises(ConfigError, match="mu"):
        L.thm2_sigma(A2, 0.1, 4, mu=1.0)
    with pytest.raises(ConfigError, match="Lam"):
        L.thm2_sigma(A2, np.array([[1.0, 0.3], [0.3, 1.0]]), 4)  # does not commute with A
    with pytest.raises(ConfigError, match="S"):
        L.prop1_noise(np.ones((3, 2)), 4, replacement=False)
    with pytest.raises(ConfigError, match="S"):
        L.simulate_finite(np.ones((3, 2)), np.ones(3), 0.1, 4, replacement=False, n_chains=2, n_steps=2)
    with pytest.raises(ConfigError, match="y"):
        L.moment_oracle_finite(np.ones((3, 2)), np.ones(4), 0.1, 2)
    with pytest.raises(ConfigError, match="Gamma"):
        L.thm4_test_loss(A2, -2.0, [1, 1], 0.1, 2)
