"""The escape-rate claims: one function per claim, named after its id, registered in the order the
report lists them.

Each function's docstring is the claim's statement (first paragraph) and its rule in words; the
``rule=`` object pre-registers the rule's parameters (:mod:`nnphys.studies.protocol`), and the
function judges it with ``P.judge`` from the same numbers it puts in the evidence. The SDE checks
(S1 against Eq. 13's quadrature and closed forms: T1-T6, T7sde, T8) are [derived] consistency
claims; the paper's headlines are judged on genuine SGD (T7: the stationary exponent per (eta, B);
T9, T9b: the digits MLP with seeds as the unit; T10: the exponent of the level-set time in c).
Escape-time estimates report the censored fraction; a run with censored chains is estimated by the
censored-exponential MLE, never by a plain mean.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnphys import escape as E
from nnphys.studies import protocol as P
from nnphys.studies._kit import ClaimBook, Missing, by_kind
from nnphys.studies._shared.claim_cells import WORST, equivalence_rule, exact as _exact, identity_cells, identity_rule, judged
from nnphys.studies._shared.digits_claims import decoupling_cell, noise_loss_cell
from nnphys.studies._shared.digits_mlp import (BULK_FRACTION, DECOUPLING_MARGIN, GAUSS_NEWTON_RULE, NOISE_LOSS_MARGIN,
                                               decoupling_by_epoch, decoupling_rms, final_epoch, hessian_evidence,
                                               late_slope, rms_by_epoch)
from nnphys.studies.base import Claim, Result

_identity = identity_rule
_equiv = equivalence_rule

# T10 / T7 margins are [default]s fixed from the claims (why: in each rule's params).
T10_MARGIN = 0.10
T7_MARGIN = 0.20

BOOK = ClaimBook()


def context(spec, results: list[Result]) -> dict[str, list[Result]]:
    """What every claim reads: the results grouped by kind (failed and diverged ones included)."""
    return by_kind(results, ok_only=False)


def analyse(spec, results: list[Result]) -> list[Claim]:
    """Every claim from the done jobs, each judged by its pre-registered rule. Missing data (a
    :class:`~nnphys.studies._kit.Missing`) makes a claim ``inconclusive`` naming what is missing;
    any other exception is a bug and propagates."""
    return BOOK.analyse(spec, context(spec, results))


def _ci(est: dict) -> tuple[float, float]:
    """s.e. of log(mean) from a 95% CI."""
    return (math.log(est["hi"]) - math.log(est["lo"])) / (2 * 1.96) if est["lo"] > 0 and math.isfinite(est["hi"]) else float("nan")


def _done(k, kind: str) -> list[Result]:
    """The done results of ``kind`` (:class:`Missing` when there are none)."""
    rs = [r for r in k.get(kind, []) if r.ok]
    if not rs:
        raise Missing(f"{kind} jobs (none done)")
    return rs


def _theory(k) -> dict:
    return _done(k, "theory")[0].metrics


def _identity_cells(cid: str, checks: dict[str, tuple[float, float]]) -> list:
    return identity_cells(BOOK.claims[cid].rule, checks)


def _judged(cid: str, cells: list, evidence: dict[str, Any], summary: str) -> Claim:
    return judged(BOOK, cid, cells, evidence, summary)


@BOOK.claim("T1", tag="derived", rule=_identity("a relative error above 1e-12 (exact identities) or 1e-5 (the c -> 1+ limit, "
                                                "taken by finite differences)", tol_identities=1e-12, tol_limit=1e-5))
def t1(spec, k) -> Claim:
    """Formula identities: eq. 17 at n=1 is eq. 16; kappa depends on c only; kappa_tau +
    determinants give eq. 17; frozen Arrhenius shares eq. 17's leading exponent as c -> 1+

    Rule: identity. Each formula identity's relative error must be at most 1e-12, the c -> 1+ limit
    (taken by finite differences) at most 1e-5; every check is measured in units of its own
    tolerance and the claim holds when all are within 1 (from the theory job).
    """
    th = _theory(k)
    ids = th["identities"]
    checks = {"eq17(n=1) = eq16": (ids["n1"], 1e-12), "kappa depends on c only": (ids["scale"], 1e-12),
              "kappa_tau + determinants = eq17": (ids["tau"], 1e-12),
              # the c -> 1+ comparison is a limit taken by finite differences, hence its looser tolerance
              "frozen Arrhenius leading exponent": (ids["arrhenius_lead"], 1e-5)}
    ev = {**ids, "coef_of_r_eq17": th["d17"], "coef_of_r_arrhenius": th["d_arrhenius"], "exact_coef": th["lead_exponent"]}
    return _judged("T1", _identity_cells("T1", checks), ev,
                   f"identities max rel. err {max(ids['n1'], ids['scale'], ids['tau']):.1e}; leading coefficient at "
                   f"c->1+: eq.17 {th['d17']:.4f}, frozen Arrhenius {th['d_arrhenius']:.4f}, exact {th['lead_exponent']:.4f}")


TABLE1 = {"5|2": 1.049, "5|4": 0.971, "5|8": 0.952, "10|2": 1.016, "10|4": 0.983, "10|8": 0.975,
          "20|2": 1.005, "20|4": 0.991, "20|8": 0.987}
TABLE2 = {"1": [9.66, 10.06, 10.29, 10.40, 10.46, 10.48], "5": [5.38, 6.31, 7.38, 8.00, 8.27, 8.40],
          "10": [3.32, 3.19, 3.88, 4.88, 5.51, 5.79]}


@BOOK.claim("T2", tag="derived", rule=_identity("any MFPT x kappa16 or quadrature slope off eq. 16 by > 5% in the regime; a Table 1 "
                                                "entry off by > 0.002, a Table 2 slope by > 0.02; MFPTs at fixed c spread by > 1e-10",
                                                tol_eq16=0.05, tol_table1=0.002, tol_table2=0.02, tol_scale_symmetry=1e-10))
def t2(spec, k) -> Claim:
    """Eq. 16 matches the exact MFPT quadrature of Eq. 13 on family A within 5% (and its local
    slopes within 5% of 1/2 + B/(eta h*)) for B/(eta h*) >= 5, c >= 2; Tables 1 and 2 reproduced

    Rule: identity. In the regime B/(eta h*) >= 5, c >= 2 every MFPT x kappa16 and every quadrature
    local slope lies within 5 % of eq. 16; Table 1 entries within 0.002 and Table 2 slopes within
    0.02 of the paper's; the MFPTs at fixed c agree over dL to 1e-10 (from the theory job).
    """
    th = _theory(k)
    t1 = th["table1"]
    regime = {key: v for key, v in t1.items() if float(key.split("|")[0]) >= 5 and float(key.split("|")[1]) >= 2}
    slopes = {r: [s / (0.5 + float(r)) - 1 for s in v] for r, v in th["quad_slopes"].items() if float(r) >= 5}
    checks: dict[str, tuple[float, float]] = {}
    for key, v in regime.items():
        checks[f"MFPT x kappa16 - 1 at r|c = {key}"] = (v - 1, 0.05)
    for r, v in slopes.items():
        checks[f"quadrature slopes / eq.16 - 1 at r = {r}"] = (max(abs(x) for x in v), 0.05)
    for key in TABLE1:
        if key in t1:
            checks[f"Table 1 {key}"] = (t1[key] - TABLE1[key], 0.002)
    for n, ref in TABLE2.items():
        if n in th["table2"]:
            checks[f"Table 2 n={n}"] = (max(abs(a - b) for a, b in zip(th["table2"][n], ref)), 0.02)
    checks["MFPT spread over dL at fixed c"] = (th["sym_spread"], 1e-10)
    ev = {"mfpt_x_kappa16": t1, "quad_slope_rel_dev_from_eq16": slopes,
          "table2_local_slopes": {n: [round(a, 3) for a in v] for n, v in th["table2"].items()},
          "max_rel_spread_over_dL": th["sym_spread"]}
    worst = max((abs(v - 1) for v in regime.values()), default=math.nan)
    return _judged("T2", _identity_cells("T2", checks), ev,
                   f"MFPT x kappa16 in [{min(t1.values()):.3f}, {max(t1.values()):.3f}], worst |dev| in regime {worst:.3f}")


@BOOK.claim("T3", tag="default", rule=_equiv(0.05, "log(MC mean / quadrature)", "log ratio",
                                             "[default] 5 %: the spec's measured residual discretisation bias at dt = 1e-3 "
                                             "(36.6 vs 35.6, 3 %) rounded up; a larger gap is a simulator defect"))
def t3(spec, k) -> Claim:
    """Euler-Maruyama S1 (continuity-corrected, smallest dt) reproduces the exact level-set MFPT of
    Eq. 13 within 5%

    Rule: equivalence (TOST) on log(MC mean / quadrature) of the continuity-corrected run at the
    smallest dt, margin 5 % (from the levelset jobs; the uncorrected runs' trend in dt is reported).
    """
    rows = sorted(_done(k, "levelset"), key=lambda r: (r.metrics["correction"], -r.metrics["dt"]))
    quad = rows[0].metrics["quad"]
    tab = [{"dt": r.metrics["dt"], "correction": r.metrics["correction"], **r.metrics["estimate"]} for r in rows]
    corr = [t for t in tab if t["correction"]]
    if not corr:
        raise Missing("a continuity-corrected levelset run")
    best = min(corr, key=lambda t: t["dt"])
    se = _ci(best)
    cell = P.cell(f"dt={best['dt']:g} corrected", P.known(math.log(best["mean"] / quad), se), BOOK.claims["T3"].rule,
                  room=None if math.isfinite(se) else (False, "no finite CI (all chains censored)"),
                  extra={"mean": best["mean"], "quadrature": quad, "censored_fraction": best["censored_fraction"]})
    unc = [t for t in tab if not t["correction"]]
    ev = {"quadrature": quad, "runs": tab,
          "uncorrected_decreasing_with_dt": all(a["mean"] >= b["mean"] for a, b in zip(unc, unc[1:]))}
    return _judged("T3", [cell], ev, f"quadrature {quad:.2f}; S1 dt={best['dt']:g} corrected {best['mean']:.2f} "
                   f"[{best['lo']:.2f}, {best['hi']:.2f}]; uncorrected " + ", ".join(f"dt={t['dt']:g}: {t['mean']:.1f}" for t in unc))


@BOOK.claim("T4", tag="derived", rule=_identity("fewer than 99.9% identical hitting steps (S1 or SGD), or quadrature MFPTs at fixed c "
                                                "spread by > 1e-10", tol_fraction_differing=1e-3, tol_quadrature=1e-10))
def t4(spec, k) -> Claim:
    """Scale symmetry: at fixed c and Hessians, escape does not depend on dL (S1 and genuine SGD
    with common random numbers: >= 99.9% identical hitting steps; quadrature MFPTs equal)

    Rule: identity. At most a fraction 1e-3 of the hitting steps differ between the dL values, for
    S1 and for genuine SGD, and the quadrature MFPTs at fixed c spread by at most 1e-10 (from the
    symmetry and theory jobs).
    """
    m = _done(k, "symmetry")[0].metrics
    th = _theory(k)
    checks = {"S1 fraction of differing hitting steps": (1 - m["identical_fraction"], 1e-3),
              "SGD fraction of differing hitting steps": (1 - m["sgd_identical_fraction"], 1e-3),
              "quadrature MFPT spread over dL": (th["sym_spread"], 1e-10)}
    ests = {f"{dl:g}": round(e["mean"], 6) for dl, e in zip(m["delta_Ls"], m["estimates"])}
    ev = {"S1_identical_fraction": m["identical_fraction"], "S5_identical_fraction": m["sgd_identical_fraction"],
          "S1_mean_times_by_dL": ests, "c": spec.sym_c, "ratio": spec.a_ratio, "n_sgd_chains": m["n_sgd"]}
    return _judged("T4", _identity_cells("T4", checks), ev,
                   f"identical hitting steps: S1 {m['identical_fraction']:.4f}, SGD {m['sgd_identical_fraction']:.4f}; "
                   f"mean t by dL {ests}")


@BOOK.claim("T5", tag="derived", rule=_equiv(0.10, "MC local slope / quadrature slope - 1", "relative slope deviation",
                                             "[default] 10 % of the slope: well inside the gap to the frozen-Arrhenius rival "
                                             "(its slopes differ from eq. 16's by r (c2 - c1)/log(c2/c1) - 1/2 - r, >= 29 % on "
                                             "the quick c grid at B/(eta h*) = 2)"))
def t5(spec, k) -> Claim:
    """Eq. 13 (S1 Monte Carlo, family A): the local slopes of log t in log c equal the exact
    quadrature's (log barrier), not the frozen-Arrhenius slopes (linear barrier)

    Rule: equivalence on every local slope of log t in log c, as MC slope / quadrature slope - 1,
    margin 10 %, Holm over the c intervals (from the family_a jobs and the theory job's quadrature).
    """
    th = _theory(k)
    rows = sorted(_done(k, "family_a"), key=lambda r: r.metrics["c"])
    if len(rows) < 2:
        raise Missing(f"family_a jobs at two or more c (have {len(rows)})")
    cs = np.array([r.metrics["c"] for r in rows])
    est = [r.metrics["estimate"] for r in rows]
    t = np.array([e["mean"] for e in est])
    se = np.array([_ci(e) for e in est])
    q = np.array([th["a_quad"][f"{c:g}"] for c in cs])
    lc = np.log(cs)
    mc_sl = np.diff(np.log(t)) / np.diff(lc)
    mc_se = np.sqrt(se[1:] ** 2 + se[:-1] ** 2) / np.diff(lc)
    q_sl = np.diff(np.log(q)) / np.diff(lc)
    arr_sl = spec.a_ratio * np.diff(cs) / np.diff(lc)  # frozen Arrhenius: log t = r (c - 1) + const
    cells = []
    for i in range(len(mc_sl)):
        ok = bool(np.isfinite(mc_se[i]))
        cells.append(P.cell(f"c {cs[i]:g}->{cs[i + 1]:g}", P.known(mc_sl[i] / q_sl[i] - 1, mc_se[i] / q_sl[i]),
                            BOOK.claims["T5"].rule, room=None if ok else (False, "no finite CI (censored chains)"),
                            extra={"mc_slope": mc_sl[i], "quad_slope": q_sl[i], "arrhenius_slope": arr_sl[i]}))
    ev = {"c": cs.tolist(), "mc_mean_t": t.tolist(), "mc_se_log": se.tolist(), "quad_t": q.tolist(),
          "mc_local_slopes": mc_sl.tolist(), "mc_slope_se": mc_se.tolist(), "quad_local_slopes": q_sl.tolist(),
          "eq16_slope": 0.5 + spec.a_ratio, "frozen_arrhenius_slopes": arr_sl.tolist(),
          "censored_fraction": [e["censored_fraction"] for e in est], "ratio_mc": spec.a_ratio}
    return _judged("T5", cells, ev, f"MC slopes {np.round(mc_sl, 2).tolist()} vs quadrature {np.round(q_sl, 2).tolist()} "
                   f"(eq. 16: {0.5 + spec.a_ratio:g}; frozen Arrhenius {np.round(arr_sl, 2).tolist()})")


def _wls_slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of ``y`` on ``x`` (weights ``1/se²``) and its standard error."""
    w = 1 / se ** 2
    A = np.stack([np.ones_like(x), x], 1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    beta = cov @ (A.T @ (w * y))
    return float(beta[1]), float(math.sqrt(cov[1, 1]))


@BOOK.claim("T6", tag="derived", rule=_equiv(0.15, "d slope / d n + 1/2", "slope per dimension",
                                             "[default] the spec's T6 tolerance (±0.15, under a third of the effect -1/2)"))
def t6(spec, k) -> Claim:
    """Eq. 13 (S1 Monte Carlo, family B): the slope of log t in log c changes by -1/2 per outlier
    dimension (eq. 17)

    Rule: equivalence on d slope / d n + 1/2, where the slope in log c is fitted per n by weighted
    least squares and its change per dimension likewise, margin 0.15 (from the family_b jobs).
    """
    rows = _done(k, "family_b")
    ns = sorted({r.metrics["n"] for r in rows})
    per_n = {n: sum(r.metrics["n"] == n for r in rows) for n in ns}
    if len(ns) < 2 or min(per_n.values()) < 2:
        raise Missing(f"family_b jobs at two or more c for two or more n (have {per_n})")
    slopes, ses, table = [], [], {}
    for n in ns:
        rr = sorted((r for r in rows if r.metrics["n"] == n), key=lambda r: r.metrics["c"])
        sl, se = _wls_slope(np.log([r.metrics["c"] for r in rr]), np.log([r.metrics["estimate"]["mean"] for r in rr]),
                            np.array([_ci(r.metrics["estimate"]) for r in rr]))
        slopes.append(sl)
        ses.append(se)
        table[str(n)] = {"c": [r.metrics["c"] for r in rr], "t": [r.metrics["estimate"]["mean"] for r in rr],
                         "eq17": [r.metrics["pred17"] for r in rr],
                         "censored": [r.metrics["estimate"]["censored_fraction"] for r in rr]}
    d, d_se = _wls_slope(np.array(ns, float), np.array(slopes), np.array(ses))
    regime_ok = spec.b_ratio >= 10 and max(ns) <= E.n_critical(spec.b_ratio, 1, 1) / 2
    cell = P.cell("family B n-sweep", P.known(d + 0.5, d_se), BOOK.claims["T6"].rule,
                  room=None if math.isfinite(d_se) else (False, "no finite CI (censored chains)"),
                  extra={"d_slope_dn": d, "regime_ratio>=10_n<=n_c/2": regime_ok})
    ev = {"n": ns, "slope_in_log_c": slopes, "slope_se": ses, "eq17_slope": [spec.b_ratio + 1 - n / 2 for n in ns],
          "d_slope_dn": d, "d_slope_dn_se": d_se, "ratio": spec.b_ratio, "runs": table,
          "spec_regime_(ratio>=10, n<=n_c/2)": regime_ok}
    return _judged("T6", [cell], ev, f"slope per n: {d:.3f} +- {d_se:.3f} (eq. 17: -0.5); slopes {np.round(slopes, 2).tolist()} "
                   f"vs eq. 17 {[spec.b_ratio + 1 - n / 2 for n in ns]}" + ("" if regime_ok else "; outside B/(eta h*) >= 10"))


@BOOK.claim("T7sde", tag="derived", rule=_equiv(0.03, "phi_fit / phi - 1", "relative deviation",
                                                "[default] the spec's T7 tolerance for the SDE (3 %)"))
def t7sde(spec, k) -> Claim:
    """Eq. 13 (S1 Monte Carlo): the stationary law is P ~ L^-phi with phi = 1 + B/(eta h*)
    (Student-t MLE)

    Rule: equivalence on phi_fit / phi - 1 at every ratio (profile-likelihood CI widened by the
    samples' design effect), margin 3 % (from the phi_sde job).
    """
    fits = _done(k, "phi_sde")[0].metrics["fits"]
    cells = []
    for f in fits:
        se = (f["phi_hi"] - f["phi_lo"]) / (2 * 1.96 * f["phi"])
        cells.append(P.cell(f"B/(eta h*)={f['ratio']:g}", P.known(f["phi_fit"] / f["phi"] - 1, se, f.get("n", 1)),
                            BOOK.claims["T7sde"].rule, room=None if math.isfinite(se) else (False, "open profile CI"),
                            extra={"phi_fit": f["phi_fit"], "phi": f["phi"], "ci": [f["phi_lo"], f["phi_hi"]]}))
    ev = {"S1": fits, "S1_rel_dev": [f["phi_fit"] / f["phi"] - 1 for f in fits]}
    return _judged("T7sde", cells, ev, "S1 phi_fit/phi - 1: " + ", ".join(
        f"{f['ratio']:g}: {f['phi_fit'] / f['phi'] - 1:+.3f}" for f in fits))


def _sgd_phi_cell(f: dict, cid: str = "T7") -> Any:
    """One (eta, B) cell of T7 on the scale e = phi/phi_fit - 1 (finite at phi_fit = inf). The
    profile CI [lo, hi] of phi_fit maps to [phi/hi - 1, phi/lo - 1]; the s.e. is its larger
    half-width about the estimate / 1.96 (conservative for the skewed profile interval, and
    finite when the interval is open above). A diverged run is the worst value (intention to
    treat): phi_fit = 1/2, the edge of normalisability of L^-phi in 1-D."""
    rule = BOOK.claims[cid].rule
    name = f"eta={f['eta']:g},B={f['B']}"
    if f.get("diverged"):
        phi = f.get("phi", math.nan)
        worst = 2 * phi - 1 if math.isfinite(phi) else WORST
        return P.cell(name, _exact(worst), rule, n_diverged={"sgd": 1}, extra={"diverged": True})
    phi, fit, lo, hi = f["phi"], f["phi_fit"], f["phi_lo"], f["phi_hi"]
    inv = lambda v: 0.0 if math.isinf(v) else phi / v  # noqa: E731
    e = inv(fit) - 1
    se = max(inv(lo) - 1 - e, e - (inv(hi) - 1)) / 1.96 if lo > 0 else math.inf
    return P.cell(name, P.known(e, se, f.get("n", 1)), rule,
                  room=None if math.isfinite(se) and se > 0 else (False, "no usable profile CI"),
                  extra={"phi_fit": fit, "ci": [lo, hi], "phi": phi, "phi_disc": f.get("phi_disc"),
                         "phi_kesten": f.get("phi_kesten")})


@BOOK.claim("T7", tag="paper", rule=_equiv(T7_MARGIN, "phi / phi_fit - 1", "relative deviation of 1/phi",
                                           "[default] the paper's 'fairly good' agreement read as within 20 % of phi: on the "
                                           "log axes of Fig. 3a a factor 1.2 is the smallest gap a reader sees. Measured on "
                                           "1/phi (phi/phi_fit - 1) so that phi_fit = inf (a Gaussian-like bulk) is the finite "
                                           "value -1; a diverged run counts as phi_fit = 1/2 (not normalisable)"))
def t7(spec, k) -> Claim:
    """Genuine SGD (linear regression, Fig. 3a setting): the stationary law is P ~ L^-phi with phi =
    1 + B/(eta h*) (Student-t MLE per (eta, B))

    Rule: equivalence on phi / phi_fit - 1 for every (eta, B), margin 20 %, Holm over the cells; a
    diverged run counts as phi_fit = 1/2 (from the phi_sgd jobs).
    """
    sgd = [f for r in _done(k, "phi_sgd") for f in r.metrics["fits"]]
    cells = [_sgd_phi_cell(f) for f in sgd]
    s5 = "; ".join(f"eta={f['eta']:g},B={f['B']}: {f['phi_fit']:.3g} [{f.get('phi_lo', math.nan):.3g}, "
                   f"{f.get('phi_hi', math.nan):.3g}] (phi {f.get('phi', math.nan):.2f}, disc "
                   f"{f.get('phi_disc', math.nan):.2f}, Kesten {f.get('phi_kesten', math.nan):.2f})" for f in sgd)
    return _judged("T7", cells, {"S5": sgd}, f"SGD phi_fit [95% CI]: {s5}")


def _inside(v: float, lo: float, hi: float) -> bool:
    return bool(math.isfinite(v) and lo <= v <= hi)


@BOOK.claim("T7tail", tag="paper", rule=_equiv(T7_MARGIN, "phi / phi_tail - 1", "relative deviation of 1/phi",
                                               "[default] T7's margin (20 % of phi, the smallest gap visible on Fig. 3a's "
                                               "log axes), on the tail's exponent: P ~ L^-phi is a statement about the "
                                               "density, tail included; a diverged run counts as phi_tail = 1/2",
                                               k_rule="Hill on L - L*, k = floor(sqrt(n)) top order statistics; "
                                                      "raw phi_tail = alpha + 1/2 (1-D); 95 % percentile bootstrap over chains",
                                               debiasing="[default] the raw Hill number reads far below phi even on the "
                                                         "paper's own law (n = 1e4: phi = 4.4 reads 3.2, a Gaussian about "
                                                         "4.6); the judged phi_tail is the phi of the L^-phi law whose mean "
                                                         "Hill estimate at the same n, k equals the raw one (CI ends mapped "
                                                         "the same way; nnphys.escape.hill_phi_debiased)"))
def t7tail(spec, k) -> Claim:
    """Genuine SGD (linear regression, Fig. 3a setting): the tail of the stationary density is
    L^-phi with phi = 1 + B/(eta h*) (Hill estimate of the loss tail per (eta, B); the Student-t
    bulk fit, the discrete-time phi_disc and Kesten's exact tail reported next to it)

    Rule: equivalence on phi / phi_tail - 1 for every (eta, B), margin 20 %, Holm over the cells;
    phi_tail is the Hill index of L - L* (k = floor(sqrt(n)) top order statistics) + 1/2, CI by a
    bootstrap over chains, both mapped through the Hill estimator's reading of the L^-phi law at
    the same n, k (its raw value is reported); a diverged run counts as phi_tail = 1/2 (from the
    phi_tail jobs).
    """
    fits = [f for r in _done(k, "phi_tail") for f in r.metrics["fits"]]
    cells = []
    support = []
    for f in fits:
        g = dict(f)
        if not f.get("diverged"):
            g.update(phi_fit=f["phi_tail"], phi_lo=f["phi_tail_lo"], phi_hi=f["phi_tail_hi"])
            lo, hi = f["phi_tail_lo"], f["phi_tail_hi"]
            blo, bhi = f.get("phi_lo", math.nan), f.get("phi_hi", math.nan)
            support.append({"eta": f["eta"], "B": f["B"],
                            "tail_ci_contains": {r: _inside(f.get(r, math.nan), lo, hi) for r in ("phi", "phi_disc", "phi_kesten")},
                            "bulk_ci_contains": {r: _inside(f.get(r, math.nan), blo, bhi) for r in ("phi", "phi_disc", "phi_kesten")}})
        cells.append(_sgd_phi_cell(g, "T7tail"))
    txt = "; ".join(
        f"eta={f['eta']:g},B={f['B']}: tail {f.get('phi_tail', math.nan):.3g} [{f.get('phi_tail_lo', math.nan):.3g}, "
        f"{f.get('phi_tail_hi', math.nan):.3g}] (raw Hill {f.get('raw_phi_tail', math.nan):.3g}; the paper's law reads "
        f"{f.get('raw_hill_of_paper_law', math.nan):.3g}), bulk {f.get('phi_fit', math.nan):.3g} [{f.get('phi_lo', math.nan):.3g}, "
        f"{f.get('phi_hi', math.nan):.3g}] (phi {f['phi']:.2f}, disc {f.get('phi_disc', math.nan):.2f}, "
        f"Kesten {f.get('phi_kesten', math.nan):.2f})" for f in fits)
    return _judged("T7tail", cells, {"S5": fits, "which_reference_the_CIs_contain": support},
                   f"SGD phi from the Hill tail and from the Student-t bulk [95% CI]: {txt}")


@BOOK.claim("T8", tag="derived", rule=P.Rule(kind="directional", direction="greater", sesoi=0.5,
                                             null="<log L> grows as much at n >= n_c as at the largest stable n",
                                             alternative="<log L> grows more at every n >= n_c than at the largest n < n_c",
                                             fails_if="the pooled growth difference is significantly negative, or its upper "
                                                      "bound is below 0.5",
                                             unit="growth of <log L> between t1 and t2, minus that at the largest n < n_c",
                                             params={"sesoi_why": "[default] 0.5 in log L = a factor 1.65 in the typical loss "
                                                                  "between the two read-out times: the old 'stable: no growth "
                                                                  "> 0.5' threshold"}))
def t8(spec, k) -> Claim:
    """Eq. 13 (S1 Monte Carlo): instability for n >= n_c = 2(B/(eta h*) + 1): <log L> grows with run
    length above n_c, not below

    Rule: directional. For every n >= n_c the growth of <log L> between the two read-out times,
    minus that at the largest n < n_c, must be greater than 0; it fails when the pooled difference
    is significantly negative or its upper bound is below the smallest effect of interest, 0.5 (from
    the instability job).
    """
    m = _done(k, "instability")[0].metrics
    nc = m["n_c"]
    rows = m["rows"]
    stable = [r for r in rows if r["n"] < nc]
    unstable = [r for r in rows if r["n"] >= nc]
    if not stable or not unstable:
        raise Missing(f"instability rows on both sides of n_c = {nc:g}")
    ref = max(stable, key=lambda r: r["n"])
    cells = [P.cell(f"n={r['n']} vs n={ref['n']}", P.known(r["growth"] - ref["growth"], math.hypot(r["growth_se"], ref["growth_se"])),
                    BOOK.claims["T8"].rule, extra={"growth": r["growth"], "reference_growth": ref["growth"]}) for r in unstable]
    ev = {"n_c": nc, "rows": rows, "reference_n": ref["n"]}
    return _judged("T8", cells, ev, f"n_c = {nc:g}; growth of <log L> between t1 and t2 by n: "
                   + ", ".join(f"{r['n']}: {r['growth']:.2f}+-{r['growth_se']:.2f}" for r in rows))


def _mlps(k) -> list[dict]:
    """The MLP runs, one per seed. A diverged run has no late slope or spectrum: it cannot be
    counted as a value, so the claim names it and is judged on the others (reported in n_diverged)."""
    return [r.metrics for r in _done(k, "mlp")]


def _n_div(k, kind: str) -> int:
    return sum(r.status == "diverged" for r in k.get(kind, []))


@BOOK.claim("T9", tag="paper", rule=_equiv(NOISE_LOSS_MARGIN, "late slope - 1", "slope",
                                           "[default] the spec's T9 band [0.8, 1.2] (nnphys.digits_noise.NOISE_LOSS_MARGIN)"))
def t9(spec, k) -> Claim:
    """Gradient noise is proportional to the loss late in training: the log-log slope of N = tr C_1
    against L over the last half of the epochs is 1 (seeds as the unit; minibatch-noise C3)

    Rule: equivalence over seeds (one-sample t, seeds as the unit) on late slope - 1, margin 0.2;
    one seed is uninformative and a diverged seed enters at five margins (from the mlp jobs).
    """
    runs = _mlps(k)
    fits = [late_slope(m["loss"], m["trace_cov"]) for m in runs]
    ev = {"per_seed": [{"slope": f["slope"], "ols_se_over_epochs": f["se"], "r2": f["r2"], "loss_range": f["loss_range"],
                        "slope_first_half": f["slope_early"]} for f in fits],
          "data": "digits (sklearn), y = +-1 even/odd, MLP 64-w-w-1 (Glorot uniform), MSE, SGD (nnphys.digits_noise)",
          "epochs": len(runs[0]["loss"]) - 1, "seeds": len(runs)}
    return _judged("T9", [noise_loss_cell(runs, BOOK.claims["T9"].rule, _n_div(k, "mlp"))], ev,
                   "late log-log slope of tr C vs L by seed: " + ", ".join(f"{f['slope']:.3f}" for f in fits))


@BOOK.claim("T9b", tag="paper", rule=_equiv(DECOUPLING_MARGIN, "RMS log eigenvalue ratio", "log ratio",
                                            "[default] a factor 1.5 on the typical rank (nnphys.digits_noise.DECOUPLING_MARGIN); "
                                            f"bulk: decoupled eigenvalue < {BULK_FRACTION:g} x the largest"))
def t9b(spec, k) -> Claim:
    """Decoupling after training: the top-k (bulk excluded) eigenvalues of (1/N) sum l C_f and L
    (1/N) sum C_f agree (RMS log ratio, seeds as the unit; init reported, not judged;
    minibatch-noise C12)

    Rule: equivalence over seeds on the RMS log ratio of coupled to decoupled top-k eigenvalues
    (Gauss-Newton probe, bulk excluded) after training, margin log 1.5; the full-Hessian probe is
    evidence only (from the mlp jobs).
    """
    runs = _mlps(k)
    per = [decoupling_by_epoch(m) for m in runs]
    rms = {ep: [decoupling_rms(m, ep) for m in runs] for ep in per[0]}
    hess = hessian_evidence(runs, judged_epochs=[final_epoch(runs[0])])
    ev = {"hessian_rms_log_ratio_by_seed": [rms_by_epoch(m, "hessian") for m in runs], "rms_log_ratio_by_epoch": {ep: [v["rms"] for v in vs] for ep, vs in rms.items()},
          "worst_factor_by_epoch": {ep: [p[ep]["max_ratio"] for p in per] for ep in per[0]},
          "k_used": {ep: [v["k_used"] for v in vs] for ep, vs in rms.items()},
          "judged_epoch": final_epoch(runs[0]), "top_k": spec.mlp_top_k, "bulk_fraction": BULK_FRACTION,
          "by_epoch": per, "comparison": "Gauss-Newton (decides); full Hessian next to it (evidence)",
          "verdict_probe_rule": GAUSS_NEWTON_RULE, "hessian": hess}
    return _judged("T9b", [decoupling_cell(runs, BOOK.claims["T9b"].rule, _n_div(k, "mlp"))], ev,
                   "RMS log eigenvalue ratio by epoch (init and mid reported, end judged): "
                   + ", ".join(f"{ep}: " + "/".join(f"{v['rms']:.2f}" for v in vs) for ep, vs in rms.items()))


@BOOK.claim("T10", tag="paper", rule=_equiv(T10_MARGIN, "SGD slope / (B/(eta h*) + 1 - n/2) - 1", "relative slope deviation",
                                            "[default] 10 % of the exponent: over the plotted range c in [1, 2] it changes t_p "
                                            "by a factor 2^(0.1 x 10.5) = 2, the smallest gap visible on Fig. 3b's log-log axes"))
def t10(spec, k) -> Claim:
    """Genuine SGD (Fig. 3b setting): the slope of log t_p in log c equals the paper's exponent
    B/(eta h*) + 1 - n/2 (absolute times against the Eq. 13 quadrature reported, not judged)

    Rule: equivalence on SGD slope / (B/(eta h*) + 1 - n/2) - 1, the weighted least-squares slope of
    log t_p (S5) in log c, margin 10 % (from the gap jobs).
    """
    rows = sorted((r.metrics for r in _done(k, "gap")), key=lambda m: m["c"])
    if len(rows) < 2:
        raise Missing(f"gap jobs at two or more c (have {len(rows)})")
    sims = ["S5", "S4", "S4_exact", "S4_rademacher", "S4_pool", "S1", "S2", "S3"]
    tab = {f"{m['c']:g}": {**{s: m[s]["mean"] for s in sims if s in m}, "quad_eq13": m["quad_eq13"],
                          "quad_exact_population": m["quad_exact_population"],
                          "S5_censored": m["S5"]["censored_fraction"], "S5_ci": [m["S5"]["lo"], m["S5"]["hi"]]} for m in rows}
    cs = np.array([m["c"] for m in rows])
    s5 = np.array([m["S5"]["mean"] for m in rows])
    se = np.array([_ci(m["S5"]) for m in rows])
    q = np.array([m["quad_eq13"] for m in rows])
    n = 1  # the Fig. 3b setting here is d = 1
    pred = spec.gap_B / (spec.gap_eta * rows[0]["h_star"]) + 1 - n / 2
    if np.all(np.isfinite(se)):
        slope, slope_se = _wls_slope(np.log(cs), np.log(s5), se)
        room = None
    else:
        slope, slope_se, room = math.nan, math.nan, (False, "an S5 estimate without a finite CI")
    cell = P.cell(f"d={n}", P.known(slope / pred - 1, slope_se / pred, rows[0]["S5"].get("n", 1)), BOOK.claims["T10"].rule,
                  room=room, extra={"sgd_slope": slope, "sgd_slope_se": slope_se, "paper_exponent": pred})
    q_slope = float(np.polyfit(np.log(cs), np.log(q), 1)[0])
    ev = {"table3": tab, "S5_over_quad_(reported)": {c: v["S5"] / v["quad_eq13"] for c, v in tab.items()},
          "S5_local_slopes": (np.diff(np.log(s5)) / np.diff(np.log(cs))).tolist(),
          "sgd_slope": slope, "sgd_slope_se": slope_se, "paper_exponent": pred, "quadrature_slope_same_c": q_slope,
          "quad_local_slopes": (np.diff(np.log(q)) / np.diff(np.log(cs))).tolist(),
          "h_star": rows[0]["h_star"], "L_star": rows[0]["L_star"], "B": spec.gap_B, "eta": spec.gap_eta,
          "note": "the level-set slope approaches the paper's exponent only for c >> 1 (spec Sec. 6): the Eq. 13 "
                  "quadrature's own slope over the same c is reported next to it"}
    last = tab[f"{rows[-1]['c']:g}"]
    return _judged("T10", [cell], ev, f"SGD slope {slope:.2f} +- {slope_se:.2f} vs paper {pred:.2f} (Eq. 13 quadrature "
                   f"over the same c: {q_slope:.2f}); SGD / quadrature by c: "
                   + ", ".join(f"{c}: {v['S5'] / v['quad_eq13']:.2f}" for c, v in tab.items())
                   + f"; at c={rows[-1]['c']:g}: S5 {last['S5']:.1f}, S4 Gaussian {last['S4']:.1f}, S1 {last['S1']:.1f}")


# T12's margin: a [default] fixed from the claim (why: in its rule's params).
T12_MARGIN = 0.15


def _nd_rows(k) -> dict[int, list[dict]]:
    """The escape_nd results by d, each sorted by c."""
    by: dict[int, list[dict]] = {}
    for r in _done(k, "escape_nd"):
        by.setdefault(int(r.metrics["d"]), []).append(r.metrics)
    return {d: sorted(v, key=lambda m: m["c"]) for d, v in sorted(by.items())}


def _nd_fit(rows: list[dict]) -> dict[str, Any]:
    """One d's fitted exponent: the WLS slope of log t_p (S5) on log c, weights from each c's CI over
    chains (s.e. of log mean), next to the paper's exponent and the Eq. 13 quadrature's slope over
    the same c (the level-set slope reaches the exponent only for c >> 1)."""
    cs = np.array([m["c"] for m in rows])
    t = np.array([m["estimate"]["mean"] for m in rows])
    se = np.array([_ci(m["estimate"]) for m in rows])
    q = np.array([m["quad_eq13"] for m in rows])
    h = float(np.mean([m["h_star"] for m in rows]))
    d = int(rows[0]["d"])
    B, eta = rows[0].get("B", 1), rows[0].get("eta", 0.1)
    pred = float(np.mean([m["paper_exponent"] for m in rows]))
    if len(rows) >= 2 and np.all(np.isfinite(se)) and np.all(se > 0) and np.all(t > 0):
        slope, slope_se = _wls_slope(np.log(cs), np.log(t), se)
    else:
        slope, slope_se = math.nan, math.nan
    q_slope = float(np.polyfit(np.log(cs), np.log(q), 1)[0]) if len(rows) >= 2 else math.nan
    return {"d": d, "c": cs.tolist(), "t_sgd": t.tolist(), "se_log_t": se.tolist(), "t_quad_eq13": q.tolist(),
            "sgd_over_quad": (t / q).tolist(), "sgd_slope": slope, "sgd_slope_se": slope_se, "paper_exponent": pred,
            "quad_slope_same_c": q_slope, "h_star": h, "ratio": pred - 1 + d / 2,
            "sgd_local_slopes": (np.diff(np.log(t)) / np.diff(np.log(cs))).tolist() if len(rows) >= 2 else [],
            "censored_fraction": [m["estimate"]["censored_fraction"] for m in rows],
            "n_chains": int(rows[0]["estimate"].get("n", 1)), "B": B, "eta": eta}


@BOOK.claim("T11", tag="paper", rule=_equiv(T10_MARGIN, "SGD slope / (B/(eta h*) + 1 - d/2) - 1", "relative slope deviation",
                                            "[default] T10's margin, 10 % of the exponent: over the plotted range it changes "
                                            "t_p by a factor 2^(0.1 x 10.5) = 2 at d = 1, the smallest gap visible on Fig. 3b's "
                                            "log-log axes", aggregation="Holm over d"))
def t11(spec, k) -> Claim:
    """Genuine SGD (Fig. 3b: linear regression, B = 1, eta = 0.1, N = 1e4) in d dimensions: the
    slope of log t_p in log c equals the paper's exponent B/(eta h*) + 1 - d/2 at every d

    Rule: equivalence per d on SGD slope / (B/(eta h*) + 1 - d/2) - 1, the weighted least-squares
    slope of log t_p in log c over that d's c grid (each c's s.e. from its chains), margin 10 %, Holm
    over the d values; h* = tr A / d of the drawn data set. The Eq. 13 quadrature's slope over the
    same c is reported next to it (from the escape_nd jobs).
    """
    fits = [_nd_fit(rows) for rows in _nd_rows(k).values()]
    rule = BOOK.claims["T11"].rule
    cells = []
    for f in fits:
        ok = math.isfinite(f["sgd_slope_se"])
        cells.append(P.cell(f"d={f['d']}", P.known(f["sgd_slope"] / f["paper_exponent"] - 1,
                                                   f["sgd_slope_se"] / f["paper_exponent"], f["n_chains"]), rule,
                            room=None if ok else (False, "an S5 estimate without a finite CI"),
                            extra={"sgd_slope": f["sgd_slope"], "sgd_slope_se": f["sgd_slope_se"],
                                   "paper_exponent": f["paper_exponent"], "quad_slope_same_c": f["quad_slope_same_c"]}))
    return _judged("T11", cells, {"per_d": fits}, "exponent by d, SGD [s.e.] vs paper (Eq. 13 quadrature, same c): " + "; ".join(
        f"d={f['d']}: {f['sgd_slope']:.2f} [{f['sgd_slope_se']:.2f}] vs {f['paper_exponent']:.2f} ({f['quad_slope_same_c']:.2f})"
        for f in fits))


@BOOK.claim("T12", tag="paper", rule=_equiv(T12_MARGIN, "d (SGD slope - B/(eta h*) - 1) / d d + 1/2", "exponent change per dimension",
                                            "[default] T6's margin for the same law on the SDE: ±0.15, under a third of the "
                                            "effect -1/2, so a holding verdict excludes both 0 (no dimension dependence) and -1"))
def t12(spec, k) -> Claim:
    """Genuine SGD (Fig. 3b): the exponent of t_p in c falls by 1/2 per dimension (the -n/2 of
    B/(eta h*) + 1 - n/2, with n = d for the isotropic level set)

    Rule: equivalence on the weighted least-squares slope, over d, of SGD slope - B/(eta h*) - 1
    (each data set's own h*, so the 1-3 % spread of h* over d does not enter), plus 1/2, margin
    0.15; the per-d slopes and their s.e. are T11's. The Eq. 13 quadrature's change per dimension
    over the same c grids is reported (from the escape_nd jobs).
    """
    fits = [f for f in (_nd_fit(rows) for rows in _nd_rows(k).values())]
    use = [f for f in fits if math.isfinite(f["sgd_slope_se"]) and f["sgd_slope_se"] > 0]
    if len({f["d"] for f in use}) < 2:
        raise Missing(f"escape_nd fits at two or more d (have {[f['d'] for f in use]})")
    ds = np.array([f["d"] for f in use], float)
    y = np.array([f["sgd_slope"] - f["ratio"] - 1 for f in use])
    ys = np.array([f["sgd_slope_se"] for f in use])
    if len(use) == 2:  # two points: the slope and its s.e. directly
        per, per_se = float((y[1] - y[0]) / (ds[1] - ds[0])), float(math.hypot(*ys) / abs(ds[1] - ds[0]))
    else:
        per, per_se = _wls_slope(ds, y, ys)
    yq = np.array([f["quad_slope_same_c"] - f["ratio"] - 1 for f in use])
    q_per = float(np.polyfit(ds, yq, 1)[0])
    cell = P.cell("d sweep", P.known(per + 0.5, per_se, len(use)), BOOK.claims["T12"].rule,
                  extra={"per_dimension": per, "per_dimension_se": per_se, "quad_per_dimension": q_per})
    ev = {"d": ds.astype(int).tolist(), "sgd_slope_minus_ratio_minus_1": y.tolist(), "se": ys.tolist(),
          "per_dimension": per, "per_dimension_se": per_se, "paper": -0.5,
          "quad_eq13_per_dimension_same_c": q_per, "quad_slope_minus_ratio_minus_1": yq.tolist()}
    return _judged("T12", [cell], ev, f"exponent change per dimension: SGD {per:.3f} +- {per_se:.3f} vs paper -0.5 "
                   f"(Eq. 13 quadrature over the same c: {q_per:.3f})")
