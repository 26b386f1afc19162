"""Synthetic results with a known truth for every minibatch-noise claim (its calibration).

``CALIBRATION[claim][scenario](rng, spec) -> list[Result]`` builds only the jobs that claim reads,
in the study's own ``params`` / ``metrics`` format. Scenarios (as in
:mod:`nnphys.studies.escape_rate.calibration`): ``effect`` (the claim is true), ``none`` (equivalence:
the true deviation sits on the margin; directional: no effect), ``opposite`` (three margins off;
the other sign; an identity missed by a factor 100), ``floor`` (the data cannot decide: a
heavy-tailed Monte Carlo regime, one seed or one draw, or a useless s.e.).

The closed forms used for the "true" values are the study's own formulas where they are cheap
(1-D Σ, Kesten indices); everything else is a stand-in number with the right structure.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from nnphys.studies._shared.digits_calibration import mlp_results
from nnphys.studies.base import Result

Gen = Callable[[np.random.Generator, Any], list[Result]]


def _res(kind: str, metrics: dict[str, Any], **params: Any) -> Result:
    return Result(key=f"{kind}{sorted(params.items())}", params={"kind": kind, **params}, status="done",
                  metrics={"kind": kind, **metrics})


def _mc(theory: float, rel: float, se_rel: float, rng) -> list[float]:
    """A Monte Carlo mean whose truth is ``theory·(1 + rel)``, and its s.e. ``se_rel·theory``."""
    return [theory * (1 + rel + rng.normal(0, se_rel)), se_rel * theory]


# Σ diagonals and training losses of the online rows (stand-ins with the rows' magnitudes); beta is the
# Kesten index the runner attaches (> 4 except where a scenario puts the row near the edge)
_ROWS = {"row2": ([0.069, 0.026], 0.541), "row3": ([0.844, 0.252], 0.985), "row5": ([0.169, 0.143], 0.620),
         "row6": ([0.125], 0.5625)}


def _online_row(case: str, diag: list[float], train: float | None, rel: float, se_rel: float, beta: float, rng,
                **extra: Any) -> Result:
    sims = [_mc(t, rel, se_rel, rng) for t in diag]
    m = {"case": case, "theory": np.diag(diag).tolist(), "sim_diag": [s[0] for s in sims], "sim_se": [s[1] for s in sims],
         "tail_beta": beta, "n_diverged": 0, "theory_vs_oracle": abs(rng.normal(0, 1e-14)), "s_ratio": 0.3,
         "continuous": [d / 5 for d in diag], "hessian_approx": [d / 2 for d in diag], **extra}
    if train is not None:
        m |= {"train_theory": train, "oracle_train": train * (1 + rng.normal(0, 1e-15)), "sim_train": _mc(train, rel, se_rel, rng),
              "thm3_vs_oracle": abs(rng.normal(0, 1e-14)), "thm5_lead_rel": 0.05}
    return _res("online", m, case=case)


# ---------------------------------------------------------------- identities


def _c0(bad: float) -> Gen:
    def gen(rng, spec):
        out = [_online_row(c, d, t, 0.0, 0.003, 8.0, rng) for c, (d, t) in _ROWS.items()]
        if bad:
            out[0].metrics["theory_vs_oracle"] = bad  # a closed form that misses the oracle
        out += _c4(False)(rng, spec) + _c11(False)(rng, spec)
        return out
    return gen


def _c4(bad: bool) -> Gen:
    def gen(rng, spec):
        table = []
        for D in (2, 8, 32):
            for S in (1, 4, 16):
                f = 2 * S / (D + S + 1)
                table.append({"D": D, "S": S, "bisect": f * (1 + rng.normal(0, 1e-12)), "formula": f,
                              "rho_below": 0.97, "rho_above": 0.99 if bad else 1.03})
        sims = [{"frac": 0.8, "sim_trace": [2.46, 0.009], "theory_trace": 2.46, "sim_median_trace": 2.43, "frac_diverged": 0.0},
                {"frac": 1.25, "sim_trace": [math.inf, math.nan], "theory_trace": math.inf, "sim_median_trace": math.inf,
                 "frac_diverged": 1.0}]
        return [_res("edge", {"table": table, "sims": sims, "sim_D": 8, "sim_S": 4})]
    return gen


def _c5(bad: float) -> Gen:
    def gen(rng, spec):
        refs = [(1.8, 10, -0.170, True), (0.7, 1, 0.354, False), (0.5, 1, 0.0, False), (1.2, 4, 0.0, False)]
        rows = [{"lam": lam, "S": S, "gamma_star": g + bad + rng.normal(0, 1e-12), "predicted_negative": neg, "L_star": 0.1,
                 "gamma0_stable": not neg} for lam, S, g, neg in refs]
        return [_res("l2", {"rows": rows})]
    return gen


def _hd_draw(rng, draw: int, *, over_bad: float = 0.0, far_err: float = 0.006, near_err: float = -0.1,
             res_rel: float = 0.0, res_sd: float = 0.08) -> Result:
    D = 100
    under = 0.75
    far = {"N": 400, "S": 8, "oracle": 0.34, "thm6_realised": 0.34 * (1 + far_err + rng.normal(0, 1e-3)),
           "thm6_sigma": 0.34 * (1 + rng.normal(0, 0.04)), "residual_var": under * (1 + res_rel + rng.normal(0, res_sd)),
           "sigma_under": under, "sim": [0.34, 0.001], "thm6_plus_variant": 0.345}
    near = {"oracle": 3.3, "thm6_realised": 3.3 * (1 + near_err + rng.normal(0, 0.01))}
    near_small = {"oracle": 2.0, "thm6_realised": 2.0 * (1 + near_err + rng.normal(0, 0.01))}
    over = {"N": 80, "S": 8, "oracle": abs(rng.normal(0, 1e-29)) + over_bad * 1e-10}
    if draw == 0:
        over |= {"sim_train_max": 1e-12 + over_bad * 1e-4, "rel_dist_min_norm_max": 3e-6 + over_bad * 1e-1}
    return _res("highdim", {"D": D, "draw": draw, "far": far, "near": near, "near_small": near_small, "over": over}, draw=draw)


def _hd(draws: int, **kw: Any) -> Gen:
    return lambda rng, spec: [_hd_draw(rng, d, **kw) for d in range(draws)]


def _c11(bad: bool) -> Gen:
    def gen(rng, spec):
        off = 0.0 if bad else 0.002  # bad: a printed formula that is right (the defect claim must then fail)
        m = {"eq12": [[0.0343, 0.00323 + off], [0.00323, 0.0209]], "oracle": [[0.0343, 0.00323], [0.00323, 0.0209]],
             "eq12_asym": off, "eq12_diag_err": abs(rng.normal(0, 1e-17)), "eq12_offdiag_err": off,
             "l2_sigma_err": abs(rng.normal(0, 1e-16))}
        return [_res("defects", m | _defects_mc(0.0, 0.01, rng))]
    return gen


# ---------------------------------------------------------------- Monte Carlo against closed forms


def _c1(rel: float, se_rel: float) -> Gen:
    def gen(rng, spec):
        m = {"N": 20, "S": 8, "draws": 50_000}
        for key, th in (("wr", 0.915), ("wor", 0.578)):
            mc, se = _mc(th, rel, se_rel, rng)
            m[key] = {"mc_trace": mc, "mc_se": se, "theory_trace": th, "naive_wr_trace": 0.915}
        return [_res("prop1", m)]
    return gen


def _c2(rel: float, se_rel: float, beta: float = 8.0) -> Gen:
    return lambda rng, spec: [_online_row(c, d, t, rel, se_rel, beta, rng) for c, (d, t) in _ROWS.items()]


def _c10(rel: float, se_rel: float, beta: float = 6.0) -> Gen:
    return lambda rng, spec: [_online_row("row12", [0.165, 0.0888], None, rel, se_rel, beta, rng, sigma2_eff=0.30077)]


def _c13(rel: float, se_rel: float, beta: float = 6.0) -> Gen:
    def gen(rng, spec):
        out = []
        for case, th, g in (("row9a", 0.0335, 0.1), ("row9b", 0.1304, -0.1), ("row9c", 0.0988, 0.3)):
            r = _online_row(case, [0.03, 0.02], None, 0.0, se_rel, beta, rng, gamma=g, thm4_test=th, oracle_test=th)
            r.metrics["sim_test"] = _mc(th, rel, se_rel, rng)
            out.append(r)
        return out
    return gen


def _c14(rel: float, se_rel: float, beta: float = 23.0) -> Gen:
    return lambda rng, spec: [_online_row("row17", [0.03704, 0.07407], 0.537, rel, se_rel, beta, rng)]


def _defects_mc(rel: float, se_rel: float, rng) -> dict[str, float]:
    mc, se = _mc(0.525, rel, se_rel, rng)
    return {"mc_C00": mc, "mc_C00_se": se, "exact_C00": 0.525, "thm5_C00": 0.025}


def _c11s(rel: float, se_rel: float) -> Gen:
    def gen(rng, spec):
        r = _c11(False)(rng, spec)[0]
        r.metrics.update(_defects_mc(rel, se_rel, rng))
        return [r]
    return gen


def _c8(kind: str, se_rel: float = 0.003) -> Gen:
    """Σ at fixed c = λ/S: ``grow`` (the exact 1-D law c σ²/(2 - c a (S + 2))), ``flat`` (the
    linear rule c σ²/2) or ``shrink`` (Σ falling with S)."""
    def gen(rng, spec):
        c, rows = 0.1, []
        for S in (1, 4, 8, 12, 16):
            th = {"grow": c / (2 - c * (S + 2)), "flat": c / 2, "shrink": c / 2 * (1.6 - 0.04 * S)}[kind]
            rows.append({"S": S, "lam": c * S, "theory": c / (2 - c * (S + 2)), "continuous": c / 2,
                         "sim": [th * (1 + rng.normal(0, se_rel)), th * se_rel]})
        return [_res("scaling", {"c": c, "rows": rows, "S_div": 18.0, "stable_below": True, "unstable_above": True})]
    return gen


def _tail(hill_from: str, shift: float = 0.0, se: float = 0.05) -> Gen:
    """Hill indices at aλ = 1, S = 1..4: around the Kesten index (``kesten``) or the continuous
    index (``continuous``), shifted by ``shift``, with s.e. ``se`` over 5 chain groups."""
    kesten = {1: 1.0908, 2: 2.0, 3: 2.7807, 4: 3.5047}

    def gen(rng, spec):
        rows = []
        for S, k in kesten.items():
            cont = 2 * S + 1.0
            base = k if hill_from == "kesten" else cont
            rows.append({"S": S, "hill": base + shift + rng.normal(0, se), "hill_se": se, "kesten": k, "paper": float(S),
                         "continuous": cont, "n_diverged": 0})
        return [_res("tail", {"rows": rows, "frac": 0.005})]
    return gen


# ---------------------------------------------------------------- Fig. 1 (C15, C15f, C16)

_WIDTHS = (25, 200, 800)
_L0 = 0.05  # a stand-in initial loss (the digits runs: ~0.05)
_K = 100.0  # the divergence factor of the spec's default
_CAP = math.log10(_K**2 / 4)


def _arm(y: np.ndarray, lr: float) -> dict[str, Any]:
    """An arm with per-seed log10(Var/L0²) ``y``; ``y >= cap`` means the seed diverged."""
    div = [bool(v >= _CAP) for v in y]
    var = [math.inf if d else float(10**v * _L0**2) for v, d in zip(y, div)]
    return {"lr": lr, "var": var, "L0": [_L0] * len(y), "L1": [0.03] * len(y), "diverged": div}


def _width(fixed: dict[int, tuple[float, float]], scaled: dict[int, tuple[float, float]], n: int = 5) -> Gen:
    """Width results: per width, (mean, sd) over seeds of log10(Var/L0²) in each arm (a mean at or
    above the cap: every seed diverged). A seed's own offset is shared by its widths (pairing)."""
    def gen(rng, spec):
        off = rng.normal(0, 0.05, n)
        out = []
        for d in _WIDTHS:
            ys = {}
            for arm, tab in (("fixed", fixed), ("scaled", scaled)):
                mu, sd = tab.get(d, (-1.75, 0.05))
                ys[arm] = np.minimum(mu + off + rng.normal(0, sd, n), _CAP) if mu < _CAP else np.full(n, _CAP)
            m = {"width": d, "steps": 46, "batch": 32, "div_factor": _K,
                 "arms": {"fixed": _arm(ys["fixed"], 0.5), "scaled": _arm(ys["scaled"], 0.5 * 25 / d)}}
            out.append(_res("width", m, width=d))
        return out
    return gen


_GAMMAS = [-0.02, -0.01, -0.005, -0.002, -0.001, 0.0, 0.001, 0.002, 0.005, 0.01, 0.02]


def _sweep(rng, gamma0: float, noise: float, n: int, diverge_below: float | None) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(_GAMMAS)[:, None]
    loss = 0.14 + 300 * (g - gamma0) ** 2 + rng.normal(0, 0.01, (1, n)) + rng.normal(0, noise, (len(_GAMMAS), n))
    err = 0.03 + 2 * (loss - 0.14) + rng.normal(0, 0.003, loss.shape)
    if diverge_below is not None:
        loss[g[:, 0] < diverge_below] = math.nan
        err[g[:, 0] < diverge_below] = math.nan
    return loss, err


def _logreg(gamma0: float, noise: float, n: int = 5, diverge_below: float | None = None,
            control_gamma0: float = 0.0, control_noise: float = 1e-4) -> Gen:
    """Test losses 0.14 + 300 (γ - γ0)² + a per-seed shift + independent noise ``noise`` per
    (γ, seed); members with γ < ``diverge_below`` diverged (nan). Errors: a noisy copy. The control
    sweep (C16c) is the same with its own optimum ``control_gamma0``."""
    def gen(rng, spec):
        loss, err = _sweep(rng, gamma0, noise, n, diverge_below)
        closs, cerr = _sweep(rng, control_gamma0, control_noise, n, None)
        m = {"gammas": _GAMMAS, "lr": 1.5, "batch": 32, "epochs": 10, "test_loss": loss.tolist(),
             "test_err": err.tolist(), "train_loss": loss.tolist(), "n_test": 297,
             "control": {"lr": 0.1, "epochs": 150, "test_loss": closs.tolist(), "test_err": cerr.tolist(),
                         "train_loss": closs.tolist()}}
        return [_res("logreg", m)]
    return gen


MARGIN_DEC = math.log(1.5)

CALIBRATION: dict[str, dict[str, Gen]] = {
    "C0": {"effect": _c0(0.0), "opposite": _c0(1e-6)},
    "C1": {"effect": _c1(0.0, 0.004), "none": _c1(0.02, 0.004), "opposite": _c1(0.06, 0.004), "noisy": _c1(0.0, 0.05)},
    "C2": {"effect": _c2(0.0, 0.003), "none": _c2(0.02, 0.003), "opposite": _c2(0.06, 0.003), "floor": _c2(0.0, 0.003, beta=3.0)},
    "C3": {"effect": mlp_results(3, 0.0, 0.05, 0.2), "none": mlp_results(3, 0.2, 0.05, 0.2),
           "opposite": mlp_results(3, -0.6, 0.05, 0.2), "floor": mlp_results(1, 0.0, 0.05, 0.2)},
    "C4": {"effect": _c4(False), "opposite": _c4(True)},
    "C5": {"effect": _c5(0.0), "opposite": _c5(0.5)},
    "C6": {"effect": _hd(2), "opposite": _hd(2, over_bad=1.0)},
    "C6u": {"effect": _hd(6, res_sd=0.02), "none": _hd(6, res_rel=0.05, res_sd=0.02),
            "opposite": _hd(6, res_rel=0.15, res_sd=0.02), "floor": _hd(1)},
    "C7": {"effect": _hd(2), "opposite": _hd(2, far_err=0.1)},
    "C8": {"effect": _c8("grow"), "none": _c8("flat"), "opposite": _c8("shrink"), "floor": _c8("grow", se_rel=2.0)},
    "C9": {"effect": _tail("kesten"), "none": _tail("continuous"), "opposite": _tail("continuous", 2.0),
           "floor": _tail("kesten", se=5.0)},
    "C9k": {"effect": _tail("kesten", 0.0, 0.02), "none": _tail("kesten", 0.15, 0.02),
            "opposite": _tail("kesten", 0.45, 0.02), "noisy": _tail("kesten", 0.0, 1.0)},
    "C10": {"effect": _c10(0.0, 0.002), "none": _c10(0.01, 0.002), "opposite": _c10(0.03, 0.002),
            "floor": _c10(0.0, 0.002, beta=3.2)},
    "C11": {"effect": _c11(False), "opposite": _c11(True)},
    "C11s": {"effect": _c11s(0.0, 0.01), "none": _c11s(0.10, 0.01), "opposite": _c11s(0.30, 0.01),
             "noisy": _c11s(0.0, 0.3)},
    "C12": {"effect": mlp_results(3, 0.0, 0.05, 0.2), "none": mlp_results(3, 0.0, 0.05, MARGIN_DEC),
            "opposite": mlp_results(3, 0.0, 0.05, 3 * MARGIN_DEC), "floor": mlp_results(1, 0.0, 0.05, 0.2)},
    "C13": {"effect": _c13(0.0, 0.002), "none": _c13(0.01, 0.002), "opposite": _c13(0.03, 0.002),
            "floor": _c13(0.0, 0.002, beta=2.9)},
    "C14": {"effect": _c14(0.0, 0.002), "none": _c14(0.01, 0.002), "opposite": _c14(0.03, 0.002),
            "floor": _c14(0.0, 0.002, beta=3.0)},
    # C15: the rise of log10(Var/L0²) from the smallest to the largest width at fixed λ
    "C15": {"effect": _width({800: (0.25, 0.4)}, {}), "diverged": _width({800: (_CAP, 0.0)}, {}),
            "none": _width({}, {}), "opposite": _width({800: (-3.75, 0.3)}, {}),
            "floor": _width({25: (_CAP, 0.0), 200: (_CAP, 0.0), 800: (_CAP, 0.0)}, {})},
    # C15f: flat at λ ∝ 1/width, within one decade
    "C15f": {"effect": _width({}, {200: (-1.75, 0.1), 800: (-1.75, 0.1)}),
             "none": _width({}, {200: (-1.75, 0.1), 800: (-0.75, 0.1)}),
             "opposite": _width({}, {200: (-1.75, 0.1), 800: (1.25, 0.1)}),
             "diverged": _width({}, {800: (_CAP, 0.0)}),
             "floor": _width({}, {200: (-1.75, 3.0), 800: (-1.75, 3.0)})},
    # C16: the grid argmin of the test loss against 0
    "C16": {"effect": _logreg(-0.0015, 1e-4), "diverged": _logreg(-0.0015, 1e-4, diverge_below=-0.007),
            "none": _logreg(0.0, 3e-4), "opposite": _logreg(0.002, 1e-4), "floor": _logreg(0.0, 1.0)},
    # C16c: γ*(control λ) - γ*(λ), paired over seeds
    "C16c": {"effect": _logreg(-0.0015, 1e-4, control_gamma0=0.002),
             "none": _logreg(-0.0015, 1e-4, control_gamma0=-0.0015),
             "opposite": _logreg(0.0, 1e-4, control_gamma0=-0.004),
             "floor": _logreg(-0.0015, 1.0, control_gamma0=0.0005, control_noise=1.0)},
}
