"""The escape-rate kinds escape_nd and phi_tail against naive oracles: the d-dimensional genuine-SGD first
passage (escape_nd, T11/T12) against a per-chain Python loop in float64, and the Hill tail estimator
(phi_tail, T7tail) against a loop and against laws with a known tail index."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from nnphys import escape as E
from nnphys.studies.escape_rate.spec import Spec

J = importlib.import_module("nnphys.studies.escape_rate.jobs")


def _naive_escape_steps(X, y, theta0, A, L_star, c, eta, R, max_steps, rng):
    """Per chain, per step: theta <- theta - eta (x.theta - y) x with one sample drawn uniformly."""
    out = []
    N = X.shape[0]
    for _ in range(R):
        th = theta0.copy()
        hit = max_steps
        for k in range(1, max_steps + 1):
            i = rng.integers(N)
            th = th - eta * (X[i] @ th - y[i]) * X[i]
            z = th - theta0
            if L_star + 0.5 * z @ A @ z >= c * L_star:
                hit = k
                break
        out.append(hit)
    return np.array(out, float)


def test_escape_nd_matches_a_naive_per_chain_loop():
    job = J.EscapeND(d=2, c=1.25, target=30.0, B=1, eta=0.1, N=200, chains=600, max_steps=5000, seed=11, data_seed=12)
    m = job.run()
    est = m["estimate"]
    assert est["censored_fraction"] == 0.0
    lr = E.LinearRegression.sample(200, 2, seed=12)
    X, y = lr.X.numpy(), lr.y.numpy()
    steps = _naive_escape_steps(X, y, lr.theta_star.numpy(), lr.A.numpy(), lr.L_star, 1.25, 0.1, 600, 5000,
                                np.random.default_rng(0))
    fast = est["mean"] / 0.1
    se = math.hypot((est["hi"] - est["lo"]) / (2 * 1.96 * 0.1), steps.std(ddof=1) / math.sqrt(steps.size))
    assert abs(fast - steps.mean()) < 4 * se, (fast, steps.mean(), se)
    assert m["paper_exponent"] == pytest.approx(1 / (0.1 * m["h_star"]) + 1 - 1.0)
    assert m["h_star"] == pytest.approx(np.trace(lr.A.numpy()) / 2)


def test_nd_c_solves_for_the_quadrature_target():
    for d, tgt in ((1, 100.0), (5, 1000.0)):
        c = J.nd_c(d, tgt, 1, 0.1)
        assert E.mfpt_levelset(d, c, 1, 0.1) / 0.1 == pytest.approx(tgt, rel=0.02)


def test_new_kinds_are_planned_once_per_cell_with_distinct_seeds():
    jobs = J.jobs(Spec())
    nd = [j for j in jobs if j.KIND == "escape_nd"]
    assert len(nd) == len(Spec().nd_ds) * len(Spec().nd_targets)
    assert len({j.seed for j in nd}) == len(nd)
    assert len({j.data_seed for j in nd}) == len(Spec().nd_ds)  # one data set per d, shared by its c grid
    tails = [j for j in jobs if j.KIND == "phi_tail"]
    sgd = {j.eta: j.seed for j in jobs if j.KIND == "phi_sgd"}
    assert {j.eta: j.sample_seed for j in tails} == sgd  # the same samples as T7's fits
    assert len({j.seed for j in jobs}) == len(jobs)


def _naive_hill(x, k):
    s = sorted(x, reverse=True)
    return 1.0 / (sum(math.log(s[i] / s[k]) for i in range(k)) / k)


def test_hill_index_matches_a_naive_loop_and_the_linreg_estimator():
    rng = np.random.default_rng(1)
    x = rng.pareto(3.0, 5000) + 1
    for k in (10, 70, 400):
        assert E.hill_index(x, k) == pytest.approx(_naive_hill(list(x), k), rel=1e-12)
    from nnphys.linreg.closed_forms import hill_estimator
    assert E.hill_index(x, 50) == pytest.approx(hill_estimator(x, frac=50 / 5000), rel=1e-12)


@pytest.mark.parametrize("alpha", [1.5, 4.0])
def test_hill_phi_recovers_a_known_tail_and_covers_it(alpha):
    """Loss excess with an exact Pareto tail of index alpha: phi_tail = alpha + 1/2 inside its
    bootstrap CI (chains as the unit) in most of 20 draws; a wrong tail is excluded."""
    cover, excl = 0, 0
    for s in range(20):
        rng = np.random.default_rng(100 + s)
        ell = rng.pareto(alpha, (40, 200)) + 1.0
        f = E.hill_phi(ell, dim=1, n_boot=150, seed=s)
        assert f["k"] == int(math.isqrt(ell.size))
        cover += f["phi_tail_lo"] <= alpha + 0.5 <= f["phi_tail_hi"]
        excl += not (f["phi_tail_lo"] <= 1.5 * alpha + 0.5 <= f["phi_tail_hi"])
    assert cover >= 16 and excl >= 16, (cover, excl)


def test_phi_tail_student_t_is_the_phi_sgd_fit_of_the_same_samples():
    kw = dict(eta=0.3, Bs=(1,), N=2000, chains=40, samples=20)
    a = J.PhiSGD(**kw, seed=5).run()["fits"][0]
    b = J.PhiTail(**kw, n_boot=50, sample_seed=5, seed=6).run()["fits"][0]
    assert b["phi_fit"] == a["phi_fit"] and b["phi_kesten"] == a["phi_kesten"]
    assert b["phi_tail_lo"] <= b["phi_tail"] <= b["phi_tail_hi"]


def test_hill_debiasing_recovers_the_paper_law_and_round_trips():
    """On iid samples of P ~ L^-phi itself (a Student-t, nu = 2 phi - 1) the raw Hill phi is far
    below phi, the debiased one is not; the reference curve inverts its own values."""
    phi, n = 4.38, 10_000
    k = E.hill_k(n)
    curve = E.hill_reference_curve(n, k, reps=16, seed=1)
    raw, deb = [], []
    for s in range(12):
        z = np.random.default_rng(200 + s).standard_t(2 * phi - 1, n)
        r = E.hill_index(z * z / 2, k) + 0.5
        raw.append(r)
        deb.append(E.hill_phi_debiased([r], n, curve=curve)[0])
    assert np.mean(raw) < 0.85 * phi
    assert abs(np.median(deb) / phi - 1) < 0.15, (np.median(deb), phi)
    phis, cur = curve
    i = 20
    assert E.hill_phi_debiased([cur[i]], n, curve=curve)[0] == pytest.approx(phis[i], rel=1e-6) or cur[i] == cur[i - 1]
    assert E.hill_phi_debiased([cur[-1] + 1], n, curve=curve)[0] == math.inf


def test_new_figures_draw_from_real_runs_with_legends_in_words():
    """fig3b_dimensions, escape_survival and stationary_tail from tiny real runs; the analysis of the
    same results judges T11/T12/T7tail (any verdict) and no legend shows an internal code (S1-S5)."""
    import re

    from nnphys.studies.base import Result
    from nnphys.studies.escape_rate import analyse, figures

    spec = Spec(nd_ds=[1, 2], nd_targets=[10.0, 40.0], nd_chains=60, sgd_etas=[0.3], sgd_Bs=[1], sgd_chains=20,
                sgd_samples=10)
    jobs = [j for j in J.jobs(spec) if j.KIND in ("escape_nd", "phi_tail")]
    res = [Result.from_output(j, j.run(), key=str(i)) for i, j in enumerate(jobs)]
    figs = {f.name: f for f in figures(spec, res)}
    assert {"fig3b_dimensions", "escape_survival", "stationary_tail"} <= set(figs)
    for name in ("fig3b_dimensions", "escape_survival", "stationary_tail"):
        for ax in figs[name].figure.axes:
            leg = ax.get_legend()
            texts = [t.get_text() for t in leg.get_texts()] if leg else []
            assert not any(re.search(r"\bS[1-5]\b", t) for t in texts), texts
    verdicts = {c.id: c.verdict for c in analyse(spec, res)}
    assert {"T7tail", "T11", "T12"} <= set(verdicts)
