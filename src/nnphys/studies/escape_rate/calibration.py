"""Synthetic results with a known truth for every escape-rate claim (its calibration).

``CALIBRATION[claim][scenario](rng, spec) -> list[Result]`` builds only the jobs that claim reads,
in the study's own ``params`` / ``metrics`` format (the keys ``run`` writes). Scenarios:

- ``effect``: the claim is true (identity: deviations at round-off; equivalence: no difference;
  directional: an effect well above the SESOI);
- ``none``: equivalence: the true difference sits exactly on the margin (holds must stay <= alpha);
  directional: no effect at all;
- ``opposite``: equivalence: the difference is three margins away; directional: the effect has the
  other sign; identity: one check misses its tolerance by a factor 100;
- ``floor``: the data cannot decide (one seed, no between-seed spread): ``uninformative``;
- ``noisy`` (reported, not checked): an equivalence with a useless s.e. must not hold (the protocol
  judges any equivalence cell with a finite s.e., so it comes out ``inconclusive``);
- ``diverged`` (T7, reported): every SGD run diverged, counted as the worst value.

The numbers are written from the claims' own laws here (power laws in c, Student-t exponents,
geometric spectra), never copied from a run.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from nnphys.studies._shared.digits_calibration import mlp_results
from nnphys.studies.base import Result

Gen = Callable[[np.random.Generator, Any], list[Result]]


def _res(kind: str, metrics: dict[str, Any], status: str = "done", **params: Any) -> Result:
    return Result(key=f"{kind}{sorted(params.items())}", params={"kind": kind, **params}, status=status,  # type: ignore[arg-type]
                  metrics={"kind": kind, **metrics})


def _est(mean: float, se_log: float, censored: float = 0.0) -> dict[str, float]:
    """A first-passage estimate whose 95% CI is ``mean·exp(±1.96 se_log)`` (the study's ``_ci`` inverts it)."""
    return {"mean": mean, "lo": mean * math.exp(-1.96 * se_log), "hi": mean * math.exp(1.96 * se_log),
            "censored_fraction": censored, "n": 1000}


# ---------------------------------------------------------------- identities (T1, T2, T4)


def _theory(rng, spec, **over: Any) -> Result:
    """A complete ``theory`` job (T1, T2, T4, T5 read it): identities at round-off, Tables 1-2 at
    their reference values, eq. 16 slopes, the family-A stand-in quadrature; ``over`` replaces keys."""
    from nnphys.studies.escape_rate.claims import TABLE1, TABLE2

    ids = {k: abs(rng.normal(0, 1e-16)) for k in ("n1", "scale", "tau")}
    ids["arrhenius_lead"] = abs(rng.normal(0, 1e-8))
    m = {"identities": ids, "d17": -6.25, "d_arrhenius": -6.25, "lead_exponent": -6.25,
         "table1": {k: v + rng.normal(0, 2e-4) for k, v in TABLE1.items()},
         "table2": {n: [x + rng.normal(0, 2e-3) for x in v] for n, v in TABLE2.items()},
         "quad_slopes": {f"{r:g}": [(0.5 + r) * (1 + rng.normal(0, 1e-3)) for _ in range(2)] for r in (5.0, 10.0, 20.0)},
         "sym_spread": 1e-13, "a_quad": {f"{c:g}": _quad_a(c) for c in spec.a_cs}}
    return _res("theory", m | over)


def _t1(bad: float) -> Gen:
    def gen(rng, spec):
        th = _theory(rng, spec)
        if bad:
            th.metrics["identities"]["tau"] = bad  # e.g. a determinant computed with the wrong Hessian
        return [th]
    return gen


def _t2(shift: float) -> Gen:
    def gen(rng, spec):
        th = _theory(rng, spec)
        th.metrics["table1"] = {k: v * (1 + shift) for k, v in th.metrics["table1"].items()}
        return [th]
    return gen


def _t4(frac_differing: float) -> Gen:
    def gen(rng, spec):
        th = _theory(rng, spec)
        m = {"identical_fraction": 1 - frac_differing, "sgd_identical_fraction": 1.0, "delta_Ls": [0.1, 1.0, 10.0],
             "estimates": [_est(24.2, 0.01)] * 3, "n_sgd": 200}
        return [th, _res("symmetry", m)]
    return gen


# ---------------------------------------------------------------- Monte Carlo against exact (T3, T5, T6, T7sde)


def _t3(log_ratio: float, se: float) -> Gen:
    def gen(rng, spec):
        quad = 35.63
        out = []
        for dt, corr in ((0.02, False), (0.01, False), (0.005, True)):
            bias = 0.0 if corr else 3 * math.sqrt(dt)  # uncorrected runs: O(sqrt(dt)) bias
            mean = quad * math.exp(log_ratio + bias + rng.normal(0, se))
            out.append(_res("levelset", {"estimate": _est(mean, se), "quad": quad, "dt": dt, "correction": corr},
                            dt=dt, correction=corr))
        return out
    return gen


def _quad_a(c: float) -> float:
    """A smooth stand-in for the family-A quadrature at B/(eta h*) = 2: t ∝ c^(2.5 + small curvature)."""
    return 3.0 * c ** (2.5 + 0.2 / c)


def _t5(delta: float, se: float) -> Gen:
    def gen(rng, spec):
        cs = list(spec.a_cs)
        th = _theory(rng, spec)
        # log t_MC = (1 + delta) log t_quad: every local slope is (1 + delta) x the quadrature's
        return [th] + [_res("family_a", {"c": c, "estimate": _est(_quad_a(c) ** (1 + delta) * math.exp(rng.normal(0, se)), se)}, c=c)
                       for c in cs]
    return gen


def _t6(per_n: float, se: float) -> Gen:
    def gen(rng, spec):
        r = spec.b_ratio
        out = []
        for n in spec.b_ns:
            for c in spec.b_cs:
                t = 2.0 * c ** (r + 1 - 0.5 * min(spec.b_ns) + per_n * (n - min(spec.b_ns)))
                out.append(_res("family_b", {"n": n, "c": c, "estimate": _est(t * math.exp(rng.normal(0, se)), se), "pred17": t},
                                n=n, c=c))
        return out
    return gen


def _t7sde(rel: float, se: float) -> Gen:
    def gen(rng, spec):
        fits = []
        for ratio in spec.phi_ratios:
            phi = 1 + ratio
            fit = phi * (1 + rel + rng.normal(0, se))
            fits.append({"ratio": ratio, "phi": phi, "phi_fit": fit, "phi_lo": fit - 1.96 * se * phi,
                         "phi_hi": fit + 1.96 * se * phi, "n": 400_000})
        return [_res("phi_sde", {"fits": fits})]
    return gen


# ---------------------------------------------------------------- genuine SGD (T7, T10)


def _phi_cells(kind: str, e: float, se: float, diverge: bool, cell) -> Gen:
    """One ``kind`` result per eta holding one fit per (eta, B): ``cell(ref, inv, ee)`` with the
    cell's reference values ``ref``, ``inv(x) = phi / (1 + x)`` (inf where 1 + x <= 0, as for a
    Gaussian-like bulk) and the drawn deviation ``ee = e + N(0, se)``; ``diverge``: every cell
    diverged (no draw)."""
    def gen(rng, spec):
        out = []
        for eta in spec.sgd_etas:
            fits = []
            for B in spec.sgd_Bs:
                phi = 1 + B / eta
                ref = {"B": B, "eta": eta, "phi": phi, "phi_disc": B / eta + (1 - B) / 2, "phi_kesten": phi - 1,
                       "h_star": 1.0}
                if diverge:
                    fits.append({**ref, "phi_fit": math.nan, "phi_tail": math.nan, "diverged": True})
                    continue
                ee = e + rng.normal(0, se)
                fits.append({**ref, **cell(ref, lambda x, phi=phi: phi / (1 + x) if 1 + x > 0 else math.inf, ee)})
            out.append(_res(kind, {"fits": fits}, eta=eta))
        return out
    return gen


def _t7(e: float, se: float, diverge: bool = False) -> Gen:
    """phi/phi_fit - 1 = e in every (eta, B) cell; the profile CI of phi_fit from e ± 1.96 se
    (open above when 1 + e - 1.96 se <= 0, as for a Gaussian-like bulk)."""
    return _phi_cells("phi_sgd", e, se, diverge, lambda ref, inv, ee: {
        "phi_fit": inv(ee), "phi_lo": inv(ee + 1.96 * se), "phi_hi": inv(ee - 1.96 * se), "n": 10_000})


def _t7tail(e: float, se: float, diverge: bool = False) -> Gen:
    """phi/phi_tail - 1 = e in every (eta, B) cell, bootstrap CI of phi_tail from e ± 1.96 se; the
    Student-t bulk next to it sits at phi_disc (it is reported, not judged)."""
    return _phi_cells("phi_tail", e, se, diverge, lambda ref, inv, ee: {
        "phi_fit": ref["phi_disc"], "phi_lo": 0.9 * ref["phi_disc"], "phi_hi": 1.1 * ref["phi_disc"],
        "phi_tail": inv(ee), "phi_tail_lo": inv(ee + 1.96 * se), "phi_tail_hi": inv(ee - 1.96 * se),
        "k": 100, "n": 10_000})


def _t10(delta: float, se: float, prefactor: float = 1.0) -> Gen:
    """S5 times ``prefactor x`` the Eq. 13 stand-in at the paper's exponent x (1 + delta): the claim
    is about the exponent, so a constant factor (SGD slower than the SDE) must not matter."""
    def gen(rng, spec):
        h = 1.0
        pred = spec.gap_B / (spec.gap_eta * h) + 0.5
        out = []
        for c in spec.gap_cs:
            t = prefactor * 0.1 * c ** (pred * (1 + delta))
            m = {"S5": _est(t * math.exp(rng.normal(0, se)), se), "quad_eq13": 0.1 * c ** pred,
                 "quad_exact_population": 0.05 * c ** (pred - 2), "h_star": h, "L_star": 0.5, "c": c}
            for sim in ("S4", "S4_exact", "S4_rademacher", "S4_pool", "S1", "S2", "S3"):
                m[sim] = _est(0.08 * c ** (pred - 1), 0.05)
            out.append(_res("gap", m, c=c))
        return out
    return gen


def _nd(spec, exponent, se: float, rng) -> list[Result]:
    """escape_nd results for every d of ``spec`` on a stand-in c grid (three c per d spanning about
    three decades of t), S5 times ``0.1 c^exponent(d)`` with log-normal noise of s.e. ``se``;
    h* = 1 and B/(eta h*) = gap_B / gap_eta."""
    r = spec.gap_B / spec.gap_eta
    out = []
    for d in spec.nd_ds:
        pred = r + 1 - d / 2
        x = exponent(d, pred)
        for j, tgt in enumerate(spec.nd_targets):
            c = float(np.exp(np.log(10.0 * tgt) / pred))  # t_quad ~ 0.1 c^pred: c spans the targets
            m = {"estimate": _est(0.1 * c ** x * math.exp(rng.normal(0, se)), se), "quad_eq13": 0.1 * c ** (pred - 2),
                 "d": d, "c": c, "target": tgt, "h_star": 1.0, "L_star": 0.5, "paper_exponent": pred,
                 "B": spec.gap_B, "eta": spec.gap_eta}
            out.append(_res("escape_nd", m, d=d, c=c))
    return out


def _t11(delta: float, se: float) -> Gen:
    """Every d's SGD exponent is the paper's x (1 + delta)."""
    return lambda rng, spec: _nd(spec, lambda d, pred: pred * (1 + delta), se, rng)


def _t12(per_d: float, se: float) -> Gen:
    """SGD exponent B/(eta h*) + 1 + per_d x d: the paper's -1/2 per dimension is per_d = -0.5."""
    return lambda rng, spec: _nd(spec, lambda d, pred: pred + d / 2 + per_d * d, se, rng)


# ---------------------------------------------------------------- SDE instability (T8)


def _t8(growth_unstable: float) -> Gen:
    def gen(rng, spec):
        r = spec.nc_ratio
        nc = 2 * (r + 1)
        rows = []
        for n in spec.nc_ns:
            g = (growth_unstable * (1 + 0.5 * (n - nc)) if n >= nc else 0.0) + rng.normal(0, 0.05)
            rows.append({"n": n, "growth": g, "growth_se": 0.05, "mean_logL": [0.3, 0.3 + g], "se_logL": [0.02, 0.03],
                         "mean_L_theory": 1.0, "finite": True})
        return [_res("instability", {"rows": rows, "n_c": nc})]
    return gen


# ---------------------------------------------------------------- digits MLP (T9, T9b)


def _t9b(level: float, seeds: int = 4) -> Gen:
    """Spectra whose RMS log ratio after training is about ``level``."""
    return mlp_results(seeds, 0.0, 0.05, level)


MARGIN_DEC = math.log(1.5)

CALIBRATION: dict[str, dict[str, Gen]] = {
    "T1": {"effect": _t1(0.0), "opposite": _t1(1e-10)},
    "T2": {"effect": _t2(0.0), "opposite": _t2(0.06)},
    "T3": {"effect": _t3(0.0, 0.007), "none": _t3(0.05, 0.007), "opposite": _t3(0.15, 0.007), "noisy": _t3(0.0, 0.2)},
    "T4": {"effect": _t4(0.0), "opposite": _t4(0.02)},
    "T5": {"effect": _t5(0.0, 0.007), "none": _t5(0.10, 0.007), "opposite": _t5(0.30, 0.007), "noisy": _t5(0.0, 0.3)},
    "T6": {"effect": _t6(-0.5, 0.01), "none": _t6(-0.35, 0.01), "opposite": _t6(0.0, 0.01), "noisy": _t6(-0.5, 0.3)},
    "T7sde": {"effect": _t7sde(0.0, 0.005), "none": _t7sde(0.03, 0.005), "opposite": _t7sde(0.09, 0.005),
              "noisy": _t7sde(0.0, 0.05)},
    "T7": {"effect": _t7(0.0, 0.03), "none": _t7(0.20, 0.03), "opposite": _t7(-0.6, 0.03), "noisy": _t7(0.0, 0.6),
           "diverged": _t7(0.0, 0.03, diverge=True)},
    "T7tail": {"effect": _t7tail(0.0, 0.05), "none": _t7tail(0.20, 0.05), "opposite": _t7tail(-0.6, 0.05),
               "noisy": _t7tail(0.0, 0.6), "diverged": _t7tail(0.0, 0.05, diverge=True)},
    "T8": {"effect": _t8(2.0), "none": _t8(0.0), "opposite": _t8(-1.0)},
    "T9": {"effect": mlp_results(4, 0.0, 0.05, 0.1), "none": mlp_results(4, 0.2, 0.05, 0.1),
           "opposite": mlp_results(4, -0.6, 0.05, 0.1), "floor": mlp_results(1, 0.0, 0.05, 0.1)},
    "T9b": {"effect": _t9b(0.2), "none": _t9b(MARGIN_DEC), "opposite": _t9b(3 * MARGIN_DEC),
            "floor": _t9b(0.1, seeds=1)},
    "T11": {"effect": _t11(0.0, 0.05), "none": _t11(0.10, 0.05), "opposite": _t11(0.4, 0.05), "noisy": _t11(0.0, 1.0)},
    "T12": {"effect": _t12(-0.5, 0.05), "none": _t12(-0.35, 0.05), "opposite": _t12(0.0, 0.05), "noisy": _t12(-0.5, 2.0)},
    "T10": {"effect": _t10(0.0, 0.03, prefactor=1.3), "none": _t10(0.10, 0.03), "opposite": _t10(0.4, 0.03), "noisy": _t10(0.0, 0.5)},
}
