"""The compiled first-passage kernel (nnphys.escape.kernels): its normals against the exact law,
its hitting steps against a naive float64 Python loop fed the same per-chain streams, and the
independence of each chain's path from threads, chunking and the number of chains."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nnphys.escape import kernels as K
from nnphys.escape.landscapes import QuadraticWell, family_a, family_b
from nnphys.escape.simulate import simulate_sde

pytestmark = pytest.mark.skipif(not K.available(), reason="numba not installed")


def test_ziggurat_tables_cover_equal_areas():
    """Layer i (1..255) has area x_i (f(x_{i-1}) - f(x_i)) = V; the base strip r f(r) + tail = V."""
    k, w, f = K.ziggurat_tables()
    x = w * 2.0 ** 52
    areas = x[1:255] * (f[:254] - f[1:255])  # layers 1..254 use the edge above them
    np.testing.assert_allclose(areas[1:], K._ZIG_V, rtol=1e-9)
    r = K._ZIG_R
    base = r * math.exp(-r * r / 2) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    assert base == pytest.approx(K._ZIG_V, rel=1e-9)
    # the inner (always accepted) part of layer i is the fraction x_{i-1}/x_i of its width
    assert k[1] == 0 and np.all((k[2:] > 0) & (k[2:] < 2**52))
    np.testing.assert_allclose(k[2:].astype(np.float64), x[1:255] / x[2:] * 2.0**52, rtol=1e-12)


def test_normals_follow_the_standard_law():
    """4e6 draws of one stream: chi-square over 400 equiprobable bins (p > 1e-4 for a fixed seed;
    a wrong layer moves ~1/256 of the mass and gives p ~ 0), moments within 5 s.e., and the tail
    beyond r (drawn by the slow branch) at its exact frequency within 5 s.e."""
    n = 4_000_000
    x = K.normals(n, seed=123, chain=7)
    edges = stats.norm.ppf(np.linspace(0, 1, 401))
    counts = np.histogram(x, edges)[0]
    chi2 = ((counts - n / 400) ** 2 / (n / 400)).sum()
    assert stats.chi2.sf(chi2, 399) > 1e-4, chi2
    assert abs(x.mean()) < 5 / math.sqrt(n)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.kurtosis(x)) < 5 * math.sqrt(24 / n)
    p = 2 * stats.norm.sf(K._ZIG_R)
    assert abs((np.abs(x) > K._ZIG_R).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_streams_of_different_chains_are_uncorrelated():
    a, b = K.normals(200_000, 1, 0), K.normals(200_000, 1, 1)
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(200_000)
    assert not np.array_equal(K.normals(10, 2, 0), K.normals(10, 3, 0))


def _naive_double_well(A, ratio, dt, seed, chain, n_steps, thr):
    xi = K.normals(n_steps, seed, chain)
    z = -A.w
    for k in range(n_steps):
        u = z / A.w
        L = A.L_star + A.delta_L * (u * u - 1) ** 2
        z = z - 4 * A.delta_L * u * (u * u - 1) / A.w * dt + math.sqrt(2 * L / ratio * dt) * xi[k]
        if z >= thr:
            return k + 1
    return -1


def test_double_well_hitting_steps_match_naive_loop():
    A, ratio, dt, n_steps = family_a(1.0, 1.5), 2.0, 0.02, 4000
    fp = simulate_sde(A, B=ratio, eta=1.0, dt=dt, n_chains=12, t_max=n_steps * dt, seed=3, engine="compiled")
    ref = [_naive_double_well(A, ratio, dt, 3, i, n_steps, A.w) for i in range(12)]
    got = np.where(fp.event, np.rint(fp.times / dt), -1).astype(int)
    assert sum(r > 0 for r in ref) >= 6  # most chains escape, some may be censored
    assert got.tolist() == ref


def test_quadratic_levelset_hitting_steps_match_naive_loop():
    q, ratio, dt, n_steps = QuadraticWell.isotropic(1, 0.5, 1.0, 1.3), 4.0, 0.01, 3000
    fp = simulate_sde(q, B=ratio, eta=1.0, dt=dt, n_chains=10, t_max=n_steps * dt, seed=5, engine="compiled")
    thr = 1.3 * q.L_star
    ref = []
    for i in range(10):
        xi, z, L, hit = K.normals(n_steps, 5, i), 0.0, q.L_star, -1
        for k in range(n_steps):
            z = z - q.h[0] * z * dt + math.sqrt(2 * L / ratio * q.h[0] * dt) * xi[k]
            L = q.L_star + 0.5 * q.h[0] * z * z
            if L >= thr:
                hit = k + 1
                break
        ref.append(hit)
    got = np.where(fp.event, np.rint(fp.times / dt), -1).astype(int)
    assert got.tolist() == ref


def test_chain_paths_do_not_depend_on_threads_chunks_or_chain_count():
    A = family_a(1.0, 1.5)
    kw = dict(B=2.0, eta=1.0, dt=0.02, t_max=100.0, seed=9, engine="compiled")
    full1 = simulate_sde(A, n_chains=3000, threads=1, **kw)
    full2 = simulate_sde(A, n_chains=3000, threads=2, **kw)
    head = simulate_sde(A, n_chains=700, threads=2, **kw)
    np.testing.assert_array_equal(full1.times, full2.times)
    np.testing.assert_array_equal(full1.times[:700], head.times)
    assert 0 < full1.n_events < 3000  # both events and censoring are exercised


def test_family_b_hitting_steps_match_naive_loop():
    """n = 3 outlier coordinates, anisotropic h_perp, and a frozen bulk of 2 (never simulated):
    the kernel draws xi_0, xi_1, xi_2 per step from the chain's stream."""
    Bw = family_b(3, 1.0, 1.5, h_perp=(0.5, 2.0), n_bulk=2)
    ratio, dt, n_steps = 2.0, 0.02, 3000
    fp = simulate_sde(Bw, B=ratio, eta=1.0, dt=dt, n_chains=8, t_max=n_steps * dt, seed=4, engine="compiled")
    h = Bw.curvatures
    a = 4.0 * h[1:] / Bw.h_star
    ref = []
    for c in range(8):
        xi = K.normals(3 * n_steps, 4, c).reshape(n_steps, 3)
        z = np.array([-Bw.w, 0.0, 0.0])
        hit = -1
        for k in range(n_steps):
            u = z / Bw.w
            L = Bw.L_star + Bw.delta_L * ((u[0] ** 2 - 1) ** 2 + (a * u[1:] ** 2).sum())
            g = np.concatenate([[4 * Bw.delta_L * u[0] * (u[0] ** 2 - 1) / Bw.w], 2 * Bw.delta_L * a * u[1:] / Bw.w])
            z = z - g * dt + np.sqrt(2 * L / ratio * dt * h) * xi[k]
            if z[0] >= Bw.w:
                hit = k + 1
                break
        ref.append(hit)
    got = np.where(fp.event, np.rint(fp.times / dt), -1).astype(int)
    assert sum(r > 0 for r in ref) >= 4
    assert got.tolist() == ref


def test_family_b_compiled_agrees_with_torch_engine():
    """Same law, different generators: mean escape times (n = 2, B/(eta h*) = 2, c = 2, 4000 chains
    each, uncensored) within 3.5 combined standard errors."""
    Bw = family_b(2, 1.0, 2.0)
    kw = dict(B=2.0, eta=1.0, dt=0.02, n_chains=4000, t_max=4000.0, seed=1)
    a = simulate_sde(Bw, engine="compiled", **kw)
    b = simulate_sde(Bw, engine="torch", **kw)
    assert a.n_events == b.n_events == 4000
    se = math.sqrt(a.times.var() / a.n + b.times.var() / b.n)
    assert abs(a.times.mean() - b.times.mean()) < 3.5 * se, (a.times.mean(), b.times.mean(), se)


def test_compiled_engine_refuses_what_it_does_not_cover():
    from nnphys.errors import ConfigError

    kw = dict(B=2.0, eta=1.0, dt=0.02, n_chains=10, t_max=1.0, seed=0, engine="compiled")
    with pytest.raises(ConfigError, match="engine"):
        simulate_sde(family_a(1.0, 1.5), noise_kind="rademacher", **kw)
    with pytest.raises(ConfigError, match="engine"):
        simulate_sde(family_a(1.0, 1.5), clock="tau", **kw)


def test_kernel_leaves_torch_threads_as_pinned():
    """numba's OpenMP layer shares the process's thread count with torch: a kernel call must hand
    back torch's pinned count (the runner records it as part of a result's identity)."""
    import torch

    from nnphys.escape import kernels as K

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        K.first_passage_steps("quadratic", n_chains=64, seed=0, n_steps=10, thr=10.0, dt=0.01,
                              noise=np.array([0.1]), L_star=1.0, curv=np.array([1.0]), threads=1)
        K.normal_throughput(10_000)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
