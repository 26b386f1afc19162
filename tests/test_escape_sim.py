"""Simulators S1-S5 of the escape-rate study: fast paths against naive float64 loops, Monte Carlo
against the exact quadrature (95% CIs stated per test), the scale symmetry with common random
numbers, and the censoring-aware estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnphys import escape as E
from nnphys.escape import kernels as escape_kernels
from nnphys.errors import ConfigError
from nnphys.escape.landscapes import LinearRegression, QuadraticWell, family_a, family_b
from nnphys.escape.simulate import (FirstPassage, minibatch_indices, sample_sde, sample_sgd, simulate_sde,
                               simulate_sgd, simulate_sgd_oracle)

needs_numba = pytest.mark.skipif(not escape_kernels.available(), reason="numba not installed")


# ------------------------------------------------------------------ fast path vs naive oracle
def _naive_hits(land, r, dt, R, seed, block, t_max, thr):
    """Python loop over chains and steps, float64 scalars, the simulator's noise stream (crn)."""
    g = torch.Generator().manual_seed(seed)
    z = [-land.w] * R
    hit = [None] * R
    step = 0
    n_steps = int(math.ceil(t_max / dt - 1e-9))
    while any(h is None for h in hit) and step < n_steps:
        K = min(block, n_steps - step)
        xi = torch.randn((block, R, 1), generator=g, dtype=torch.float64)[:K, :, 0].tolist()
        for i in range(R):
            if hit[i] is not None:
                continue
            zi = z[i]
            for k in range(K):
                u = zi / land.w
                L = land.L_star + land.delta_L * (u * u - 1) ** 2
                grad = land.delta_L * 4 * u * (u * u - 1) / land.w
                zi = zi - grad * dt + math.sqrt(2 * L / r * dt) * xi[k][i]
                if zi >= thr:
                    hit[i] = (step + k + 1) * dt
                    break
            z[i] = zi
        step += K
    return hit


@pytest.mark.parametrize("fused", [True, False])
def test_s1_hitting_times_match_naive_loop(fused):
    A = family_a(1.0, 1.5)
    fp = simulate_sde(A, B=2.0, eta=1.0, dt=0.02, n_chains=6, t_max=200.0, seed=3, crn=True, block=16, fused=fused,
                      engine="torch")
    ref = _naive_hits(A, 2.0, 0.02, 6, 3, 16, 200.0, A.w)
    assert all(h is not None for h in ref) and fp.event.all()
    np.testing.assert_allclose(fp.times, ref, rtol=0, atol=1e-9)


def test_torch_engine_keeps_a_crossing_when_the_chain_diverges_later_in_its_block():
    """dt = 0.5 on family A: Euler-Maruyama overshoots and many chains reach nan a few steps
    after crossing, inside the same block; each must still be an event at its first crossing."""
    A, dt = family_a(1.0, 1.5), 0.5
    fp = simulate_sde(A, B=1.0, eta=1.0, dt=dt, n_chains=60, t_max=100 * dt, seed=0, crn=True, block=64,
                      engine="torch")
    ref = _naive_hits(A, 1.0, dt, 60, 0, 64, 100 * dt, A.w)
    assert all(h is not None for h in ref) and fp.event.all()
    np.testing.assert_allclose(fp.times, ref, rtol=0, atol=1e-9)


def test_levelset_fused_vs_generic_same_stream():
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 1.3)
    a = simulate_sde(q, B=1.0, eta=0.25, dt=0.01, n_chains=300, t_max=200.0, seed=5, crn=True, engine="torch")
    b = simulate_sde(q, B=1.0, eta=0.25, dt=0.01, n_chains=300, t_max=200.0, seed=5, crn=True, fused=False,
                     engine="torch")
    assert np.mean(np.isclose(a.times, b.times, atol=1e-9)) >= 0.99  # rounding may move a rare threshold crossing


def test_bulk_coordinates_stay_frozen():
    Bw = family_b(2, 1.0, 1.5, n_bulk=3)
    z0 = Bw.start(50)
    z0[:, 2:] = 0.37
    fp = simulate_sde(Bw, B=2.0, eta=1.0, dt=0.02, n_chains=50, t_max=2.0, seed=1, start=z0)
    assert fp.n == 50
    zs = sample_sde(Bw, B=2.0, eta=1.0, dt=0.02, n_chains=50, burn_in=1.0, n_samples=2, every=1.0, seed=1, start=z0)
    assert torch.all(zs[:, :, 2:] == 0.37)  # zero curvature: zero drift and zero noise (Eq. 13)
    assert torch.all(zs[:, :, 1] != 0)


# ------------------------------------------------------------------ Monte Carlo vs quadrature (T3)
@pytest.mark.slow
def test_s1_levelset_matches_quadrature_within_ci():
    """S1 with the continuity correction at dt = 0.005 vs the exact radial quadrature: the 95%
    Student-t CI over 3000 chains must contain the quadrature value (B/(eta h*) = 4, c = 2)."""
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 2.0)
    quad = E.mfpt_levelset(1, 2.0, 4.0, 1.0)
    fp = simulate_sde(q, B=4.0, eta=1.0, dt=0.005, n_chains=3000, t_max=10 * quad, seed=11, correction=True)
    est = fp.estimate()
    assert est["censored_fraction"] == 0
    assert est["lo"] <= quad <= est["hi"], (est, quad)
    # without the correction the grid-monitoring bias is visible (biased high, Sec. 10)
    raw = simulate_sde(q, B=4.0, eta=1.0, dt=0.02, n_chains=3000, t_max=10 * quad, seed=11).estimate()
    assert raw["lo"] > quad


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["torch", pytest.param("compiled", marks=needs_numba)])
def test_s1_family_a_escape_matches_quadrature_within_ci(engine):
    """Escape to the other minimum of family A (B/(eta h*) = 2, c = 1.5): 95% CI of 2000 chains
    (dt = 0.01, corrected) contains the exact MFPT, on both engines."""
    A = family_a(1.0, 1.5)
    quad = E.mfpt_eq13_1d(A.loss_np, -A.w, A.w, -6 * A.w, B=2.0, eta=1.0, h_star=1.0)
    est = simulate_sde(A, B=2.0, eta=1.0, dt=0.01, n_chains=2000, t_max=8 * quad, seed=2, correction=True,
                       engine=engine).estimate()
    assert est["lo"] <= quad <= est["hi"], (est, quad)


def test_s3_exact_covariance_matches_its_quadrature():
    """S3 (exact regression covariance) vs the exact-covariance quadrature (B=1, eta=0.1, c=1.2):
    95% CI over 2000 chains, dt = 0.005, corrected."""
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 1.2)
    quad = E.mfpt_levelset(1, 1.2, 1.0, 0.1, noise="exact")
    est = simulate_sde(q, B=1.0, eta=0.1, dt=0.005, n_chains=2000, t_max=20 * quad, seed=4, noise="exact",
                       correction=True).estimate()
    assert est["lo"] <= quad <= est["hi"], (est, quad)
    # and it is distinguishable from Eq. 13's value at this precision
    assert not (est["lo"] <= E.mfpt_levelset(1, 1.2, 1.0, 0.1) <= est["hi"])


def test_s2_tau_sde_agrees_with_quadrature():
    """S2 (Eq. 15 in tau, t = int dtau / L) at dtau = 0.004 with the continuity correction vs the
    quadrature: the 95% CI over 1500 chains contains it (B/(eta h*) = 4, c = 1.5)."""
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 1.5)
    quad = E.mfpt_levelset(1, 1.5, 4.0, 1.0)
    est = simulate_sde(q, B=4.0, eta=1.0, dt=0.004, n_chains=1500, t_max=20 * quad, seed=9, clock="tau",
                       correction=True).estimate()
    assert est["censored_fraction"] == 0
    assert est["lo"] <= quad <= est["hi"], (est, quad)


# ------------------------------------------------------------------ scale symmetry (T4)
@pytest.mark.parametrize("engine", ["torch", pytest.param("compiled", marks=needs_numba)])
def test_scale_symmetry_s1_shared_seed(engine):
    """Eq. 13 on family A at fixed c: hitting steps identical for dL in {0.1, 1, 10} (>= 99.9%)."""
    steps = []
    for dL in (0.1, 1.0, 10.0):
        fp = simulate_sde(family_a(dL, 1.5), B=2.0, eta=1.0, dt=0.02, n_chains=1000, t_max=400.0, seed=7, crn=True,
                          engine=engine)
        steps.append(np.rint(fp.times / 0.02))
    same = np.all(np.stack(steps) == steps[0], axis=0)
    assert same.mean() >= 0.999


def test_scale_symmetry_genuine_sgd_common_random_numbers():
    """Genuine SGD on linear regression is exactly invariant under y -> sqrt(lambda) y."""
    steps = []
    for lam in (0.1, 1.0, 10.0):
        lr = LinearRegression.sample(2000, 2, seed=1, scale=lam)
        fp = simulate_sgd(lr, B=2, eta=0.1, n_chains=200, max_steps=2000, seed=4, crn=True,
                          event=lambda th, lr=lr: lr.loss(th) >= 1.3 * lr.L_star, start=lr.theta_star)
        steps.append(np.where(fp.event, np.rint(fp.times / 0.1), -1))
    assert np.mean(np.all(np.stack(steps) == steps[0], axis=0)) >= 0.999


# ------------------------------------------------------------------ S4 / S5
@pytest.mark.parametrize("engine", ["torch", pytest.param("compiled", marks=needs_numba)])
def test_s4_gaussian_is_euler_maruyama_at_dt_eta(engine):
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 1.5)
    a = simulate_sgd_oracle(q, B=1, eta=0.1, n_chains=200, max_steps=5000, seed=2, engine=engine)
    b = simulate_sde(q, B=1, eta=0.1, dt=0.1, n_chains=200, t_max=500.0, seed=2, engine=engine)
    np.testing.assert_array_equal(a.times, b.times)


def test_s4_rademacher_noise_moments():
    from nnphys.escape.simulate import _Noise

    for B in (1, 3):
        xi = _Noise(20000, 1, 8, 0, torch.float64, "cpu", False, "rademacher", B).draw(torch.arange(20000))
        x = xi.reshape(-1)
        assert abs(float(x.mean())) < 4 / math.sqrt(x.numel())
        assert float(x.var()) == pytest.approx(1.0, abs=4 * math.sqrt(2 / x.numel()))
        assert set(np.unique(x.numpy()).round(6)) <= {round((2 * k - B) / math.sqrt(B), 6) for k in range(B + 1)}


def test_s4_pool_of_two_points_is_the_rademacher_law():
    """A pool {-1, +1} (B = 3): each draw is (2 Bin(3, 1/2) - 3) / sqrt(3); frequencies of the four
    values within 5 binomial s.e. over 20000 x 8 draws."""
    from scipy import stats

    from nnphys.escape.simulate import _Noise

    nz = _Noise(20000, 1, 8, 0, torch.float64, "cpu", False, "pool", 3, pool=torch.tensor([[-1.0], [1.0]]))
    x = nz.draw(torch.arange(20000)).reshape(-1).numpy()
    n = x.size
    for k in range(4):
        p = stats.binom.pmf(k, 3, 0.5)
        f = np.mean(np.isclose(x, (2 * k - 3) / math.sqrt(3)))
        assert abs(f - p) < 5 * math.sqrt(p * (1 - p) / n), (k, f, p)


def test_s4_pool_is_whitened():
    """A correlated, shifted 2-D pool: draws have mean 0 and identity covariance (5 s.e.)."""
    from nnphys.escape.simulate import _Noise

    g = torch.Generator().manual_seed(3)
    pool = torch.randn(500, 2, generator=g, dtype=torch.float64) @ torch.tensor([[2.0, 0.0], [1.5, 0.3]], dtype=torch.float64) + 7.0
    xi = _Noise(4000, 2, 16, 1, torch.float64, "cpu", False, "pool", 2, pool=pool).draw(torch.arange(4000))
    x = xi.reshape(-1, 2).numpy()
    n = x.shape[0]
    assert np.all(np.abs(x.mean(0)) < 5 / math.sqrt(n))
    np.testing.assert_allclose(np.cov(x.T), np.eye(2), atol=5 * math.sqrt(2 / n))


def test_s4_pool_of_gaussian_samples_matches_gaussian_s4():
    """A pool of 5000 standard normals behaves like Gaussian noise: mean level-set passage times of
    the two oracles (2000 chains each, uncensored) within 3.5 combined s.e."""
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 1.5)
    pool = torch.randn(5000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kw = dict(B=1, eta=0.1, n_chains=2000, max_steps=20000, seed=5)
    a = simulate_sgd_oracle(q, noise_kind="pool", pool=pool, **kw)
    b = simulate_sgd_oracle(q, **kw)
    assert a.n_events == b.n_events == 2000
    se = math.sqrt(a.times.var() / a.n + b.times.var() / b.n)
    assert abs(a.times.mean() - b.times.mean()) < 3.5 * se


def test_minibatch_indices_distinct_and_uniform():
    g = torch.Generator().manual_seed(0)
    idx = minibatch_indices(g, 5000, 20, 6)
    srt = idx.sort(1).values
    assert not bool((srt[:, 1:] == srt[:, :-1]).any())
    counts = np.bincount(idx.reshape(-1).numpy(), minlength=20)
    exp = idx.numel() / 20
    chi2 = ((counts - exp) ** 2 / exp).sum()
    assert chi2 < 43.8  # chi2_19 0.999 quantile
    with pytest.raises(ConfigError):
        minibatch_indices(g, 2, 5, 6)


def test_sgd_step_matches_naive_loop():
    lr = LinearRegression.sample(50, 3, seed=2)
    th0 = lr.theta_star + 0.1
    out = sample_sgd(lr, B=4, eta=0.05, n_chains=3, burn_in_steps=0, n_samples=2, every=1, seed=8, start=th0)
    g = torch.Generator().manual_seed(8)
    idx = minibatch_indices(g, 3, 50, 4)
    for i in range(3):
        grad = sum(float(lr.X[j] @ th0 - lr.y[j]) * lr.X[j] for j in idx[i].tolist()) / 4
        torch.testing.assert_close(out[1, i], th0 - 0.05 * grad, rtol=0, atol=1e-14)


# ------------------------------------------------------------------ estimators
def test_censoring_aware_estimators_on_exponential_data():
    """Exponential times (mean 10) censored at 15: the chi2 CI of the MLE and the restricted-mean
    + exponential-tail CI both contain 10; the plain mean refuses censored data."""
    rng = np.random.default_rng(0)
    t = rng.exponential(10.0, 4000)
    ev = t <= 15.0
    fp = FirstPassage(times=np.minimum(t, 15.0), event=ev, dt=0.01, t_max=15.0)
    assert fp.censored_fraction == pytest.approx(1 - ev.mean())
    m, lo, hi = fp.exp_mle()
    assert lo <= 10.0 <= hi and hi / lo < 1.2
    m2, lo2, hi2 = fp.km_tail()
    assert lo2 <= 10.0 <= hi2
    assert math.isnan(fp.mean_ci()[0])
    assert fp.estimate()["method"] == "km_exp_tail"


@pytest.mark.slow
def test_stationary_student_t_phi_within_3_percent():
    """T7 for S1: Student-t MLE of 4000 x 10 stationary samples (B/(eta h*) = 2, dt = 0.005)
    gives phi within 3% of 1 + B/(eta h*)."""
    q = QuadraticWell.isotropic(1, 0.5, 1.0, 2.0)
    z = sample_sde(q, B=2.0, eta=1.0, dt=0.005, n_chains=4000, burn_in=10.0, n_samples=10, every=1.0, seed=6)
    f = E.fit_phi_student_t(z.reshape(-1).numpy())
    assert f["phi"] == pytest.approx(3.0, rel=0.03)
    assert f["phi_lo"] <= 3.0 <= f["phi_hi"]
    assert f["scale"] == pytest.approx(E.student_t_params(0.5, 1.0, 2.0, 1.0)[1], rel=0.03)


@pytest.mark.parametrize("kw", [dict(dt=0.0), dict(eta=0.0), dict(eta=-0.1), dict(B=0.0), dict(n_chains=0),
                                dict(noise="bogus"), dict(clock="x"), dict(engine="jit"),
                                dict(noise_kind="pool"), dict(noise_kind="pool", pool=torch.ones(5, 1)),
                                dict(noise_kind="pool", pool=torch.randn(5, 2))])
def test_simulator_bad_input(kw):
    base = dict(B=1.0, eta=0.1, dt=0.01, n_chains=10, t_max=1.0, seed=0)
    with pytest.raises(ConfigError):
        simulate_sde(QuadraticWell.isotropic(1), **{**base, **kw})
    with pytest.raises(ConfigError):
        simulate_sde(family_a(1.0, 2.0), **{**base, "noise": "exact"})
