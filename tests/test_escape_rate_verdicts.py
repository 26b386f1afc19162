"""Known-answer tests of escape-rate's verdict logic (T5-T10), through the claim protocol.

Each test builds a small synthetic result set where the claim must come out ``holds`` (the
theory's law, with tight intervals) and a mirrored one where it must come out ``fails`` (the rival
law the claim rejects, or an effect of the wrong size). No job is run; the numbers are written from
the formulas here, not copied from the study's output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnphys.studies.escape_rate import claims as ER
from nnphys.studies import get_study
from nnphys.studies._kit import by_kind
from nnphys.studies.base import Result

STUDY = get_study("escape-rate")
SPEC = STUDY.make_spec("quick")


def _res(kind: str, metrics: dict, **params) -> Result:
    return Result(key=f"{kind}{params}", params={"kind": kind, **params}, status="done", metrics=metrics)


def _est(mean: float, rel: float = 0.01, censored: float = 0.0) -> dict:
    """A first-passage estimate with a 95% CI of relative half-width ``rel`` (in log)."""
    return {"mean": mean, "lo": mean * math.exp(-rel), "hi": mean * math.exp(rel), "censored_fraction": censored}


def _claim(results, cid: str):
    """Claim ``cid``'s function on the synthetic set, through the study's Missing guard."""
    return ER.BOOK.guard(cid, ER.BOOK.functions[cid], SPEC, by_kind(results, ok_only=False))


# ---------------------------------------------------------------- T5: log barrier (eq. 16)


def _t5_results(law: str) -> list[Result]:
    r = SPEC.a_ratio
    cs = [1.5, 2.0, 3.0]
    power = {f"{c:g}": 3.0 * c ** (0.5 + r) for c in cs}  # eq. 16: log t linear in log c, slope 1/2 + r
    theory = {"a_quad": power, "quad_slopes": {"5": [5.5, 5.5], "10": [10.5, 10.5]}}
    mc = power if law == "eq16" else {f"{c:g}": 3.0 * math.exp(r * (c - 1)) for c in cs}  # frozen Arrhenius
    return [_res("theory", theory)] + [_res("family_a", {"c": c, "estimate": _est(mc[f"{c:g}"])}, c=c) for c in cs]


def test_t5_known_answers():
    assert _claim(_t5_results("eq16"), "T5").verdict == "holds"
    assert _claim(_t5_results("arrhenius"), "T5").verdict == "fails"


# ---------------------------------------------------------------- T6: -1/2 per outlier dimension (eq. 17)


def _t6_results(per_n: float) -> list[Result]:
    r = SPEC.b_ratio
    out = []
    for n in (1, 2, 3):
        for c in (1.2, 1.5, 2.0):
            t = 2.0 * c ** (r + 1 - 0.5 * 2 + per_n * (n - 2))
            out.append(_res("family_b", {"n": n, "c": c, "estimate": _est(t), "pred17": t}, n=n, c=c))
    return out


def test_t6_known_answers():
    assert _claim(_t6_results(-0.5), "T6").verdict == "holds"
    assert _claim(_t6_results(0.0), "T6").verdict == "fails"  # no n-dependence: the claim's rival


# ---------------------------------------------------------------- T7sde (S1) and T7 (genuine SGD): phi = 1 + B/(eta h*)


def _t7sde_results(bias: float) -> list[Result]:
    fits = []
    for ratio in (1.0, 2.0, 4.0):
        phi = 1 + ratio
        fit = phi * (1 + bias)
        fits.append({"ratio": ratio, "phi": phi, "phi_fit": fit, "phi_lo": fit * 0.99, "phi_hi": fit * 1.01})
    return [_res("phi_sde", {"fits": fits})]


def test_t7sde_known_answers():
    assert _claim(_t7sde_results(0.0), "T7sde").verdict == "holds"
    assert _claim(_t7sde_results(0.10), "T7sde").verdict == "fails"
    assert _claim(_t7sde_results(0.025), "T7sde").verdict == "inconclusive"  # CI straddles the margin


def _t7_results(fit_over_phi: float, open_above: bool = False) -> list[Result]:
    """SGD fits at phi_fit = fit_over_phi x phi with a ±5 % profile CI (or [0.9 phi_fit, inf))."""
    fits = []
    for B in (1, 2):
        phi = 1 + B / 0.3
        fit = phi * fit_over_phi
        fits.append({"B": B, "eta": 0.3, "phi": phi, "phi_fit": math.inf if open_above else fit,
                     "phi_lo": fit * (0.9 if open_above else 0.95), "phi_hi": math.inf if open_above else fit * 1.05})
    return [_res("phi_sgd", {"fits": fits}, eta=0.3)]


def test_t7_judges_genuine_sgd():
    assert _claim(_t7_results(1.0), "T7").verdict == "holds"
    assert _claim(_t7_results(1.6), "T7").verdict == "fails"  # 1/phi off by 37 %
    # phi_fit = inf with the CI [3.2 phi, inf) (the measured eta = 0.1, B = 1 cell): 1/phi is at most 0.35 phi
    assert _claim(_t7_results(3.2 / 0.9, open_above=True), "T7").verdict == "fails"
    diverged = [_res("phi_sgd", {"fits": [{"B": 1, "eta": 0.3, "phi": 4.3, "phi_fit": math.nan, "diverged": True}]}, eta=0.3)]
    c = _claim(diverged, "T7")
    assert c.verdict == "fails" and c.evidence["diverged"] == {"sgd": 1}  # divergence counted against the claim
    assert _claim(_t7sde_results(0.0), "T7").verdict == "inconclusive"  # the SDE fits are not evidence for T7


# ---------------------------------------------------------------- T8: instability at n >= n_c


def _t8_results(unstable_grows: bool) -> list[Result]:
    rows = []
    for n in (1, 2, 3, 4, 6):
        g = 2.0 if (n >= 4 and unstable_grows) else 0.01
        rows.append({"n": n, "growth": g, "growth_se": 0.05})
    return [_res("instability", {"n_c": 4.0, "rows": rows})]


def test_t8_known_answers():
    assert _claim(_t8_results(True), "T8").verdict == "holds"
    assert _claim(_t8_results(False), "T8").verdict == "fails"


# ---------------------------------------------------------------- T9, T9b: noise ∝ loss, decoupling (seeds as the unit)


def _mlp_result(exponent: float, coupling: float, member: int = 0, hessian_coupling: float | None = None) -> Result:
    rng = np.random.default_rng(member)
    L = np.geomspace(0.5, 1e-3, 41)
    N = 4.0 * L ** (exponent + 0.02 * rng.standard_normal()) * np.exp(0.02 * rng.standard_normal(L.size))
    ev = np.geomspace(10.0, 0.1, 5)
    coupling *= 1 + 0.02 * member  # seeds differ a little (no spread at all is uninformative)
    probe = {"ratio": [coupling] * 5, "coupled": (ev * coupling).tolist(), "decoupled": ev.tolist(), "loss": 0.01,
             "ch_alignment": 0.9, "ch_gamma": 1.0}
    probes = {"gauss_newton": probe}
    if hessian_coupling is not None:
        probes["hessian"] = {**probe, "ratio": [hessian_coupling] * 5, "coupled": (ev * hessian_coupling).tolist(),
                             "eigenvalue_ratio": [1.0] * 5, "overlap": 0.9, "noise_ratio": [1.0] * 5, "n_nonpositive": 0}
    init = {**probe, "ratio": [5.0] * 5, "coupled": (ev * 5.0).tolist()}  # init: off by x5, reported, not judged
    return _res("mlp", {"loss": L.tolist(), "trace_cov": N.tolist(),
                        "checkpoints": {"0": {"gauss_newton": init}, "40": probes}}, member=member)


def test_t9_t9b_known_answers():
    good = [_mlp_result(1.0, 1.1, s) for s in range(3)]
    bad = [_mlp_result(0.3, 3.0, s) for s in range(3)]
    assert _claim(good, "T9").verdict == "holds" and _claim(good, "T9b").verdict == "holds"
    assert _claim(bad, "T9").verdict == "fails" and _claim(bad, "T9b").verdict == "fails"
    assert _claim([_mlp_result(1.0, 1 / 3.0, s) for s in range(3)], "T9b").verdict == "fails"  # a factor either way
    # one seed: no between-seed spread, so nothing can be concluded (the old OLS-over-epochs rule held here)
    one = [_mlp_result(1.0, 1.1)]
    assert _claim(one, "T9").verdict == "uninformative" and _claim(one, "T9b").verdict == "uninformative"
    # a diverged seed counts against the claim
    div = good[:2] + [Result(key="d", params={"kind": "mlp", "member": 2}, status="diverged", metrics={})]
    c = _claim(div, "T9")
    assert c.verdict != "holds" and c.evidence["diverged"] == {"mlp": 1}


def test_t9b_is_judged_on_gauss_newton_with_the_hessian_as_evidence():
    """[default] rule (digits_mlp.GAUSS_NEWTON_RULE): the full-Hessian probe never flips T9b."""
    for gn, h in ((1.1, 3.0), (3.0, 1.1)):
        c = _claim([_mlp_result(1.0, gn, s, h) for s in range(3)], "T9b")
        assert c.verdict == ("holds" if gn <= 1.5 else "fails")
        assert c.evidence["hessian_rms_log_ratio_by_seed"][0]["40"] == pytest.approx(abs(math.log(h)))
        assert c.evidence["hessian"]["by_epoch"]["40"]["max_ratio"] == [pytest.approx(max(h, 1 / h))] * 3


# ---------------------------------------------------------------- T10: the SGD exponent of t_p in c


def _t10_results(factor: float, exponent: float = 10.5) -> list[Result]:
    """S5 = factor x 50 c^exponent, ±1 % CIs; Eq. 13's stand-in 50 c^10.5 (h* = 1, B = 1, eta = 0.1)."""
    out = []
    for c in (1.2, 1.5, 1.75):
        q = 50.0 * c ** 10.5
        m = {s: _est(q) for s in ("S4", "S4_exact", "S4_rademacher", "S4_pool", "S1", "S2", "S3")}
        m.update(S5=_est(factor * 50.0 * c ** exponent), quad_eq13=q, quad_exact_population=q, h_star=1.0,
                 L_star=0.5, c=c)
        out.append(_res("gap", m, c=c))
    return out


def test_t10_judges_the_exponent_not_the_prefactor():
    assert _claim(_t10_results(1.05), "T10").verdict == "holds"
    assert _claim(_t10_results(1.6), "T10").verdict == "holds"  # slower escape by a constant: same exponent
    assert _claim(_t10_results(1.0, 12.5), "T10").verdict == "fails"  # exponent 19 % too large
    assert _claim(_t10_results(1.0, 11.2), "T10").verdict == "holds"  # 6.7 % off: within the 10 % margin


# ---------------------------------------------------------------- no swallowed bugs


def test_a_bug_raises_and_missing_data_is_named():
    broken = _res("phi_sde", {"fits": [{"ratio": 1.0}]})  # a metrics layout the analysis does not know: a bug
    with pytest.raises(KeyError):
        STUDY.analyse(SPEC, [broken])
    c = {x.id: x for x in STUDY.analyse(SPEC, [])}
    assert all(v.verdict == "inconclusive" and "missing" in v.evidence for v in c.values())
    assert "phi_sde" in c["T7sde"].evidence["missing"] and "phi_sgd" in c["T7"].evidence["missing"]
    assert "mlp" in c["T9"].evidence["missing"]
    assert all(v.rule["version"] and v.rule["kind"] == ER.BOOK.claims[v.id].rule.kind for v in c.values())


# ---------------------------------------------------------------- resample (verdict stability)


def test_resample_keeps_a_clear_verdict_and_leaves_the_input_alone():
    results = _t10_results(1.05) + _t7sde_results(0.0)
    before = [dict(r.metrics) for r in results]
    rng = np.random.default_rng(0)
    same = [_claim(STUDY.resample(results, rng), "T10").verdict == "holds" for _ in range(200)]
    assert all(same)
    assert [r.metrics for r in results] == before
    a = STUDY.resample(results, np.random.default_rng(5))
    b = STUDY.resample(results, np.random.default_rng(5))
    assert [r.metrics for r in a] == [r.metrics for r in b] and len(a) == len(results)
    assert a[0].metrics["S5"]["mean"] != results[0].metrics["S5"]["mean"]


# ---------------------------------------------------------------- seeds from labels


def test_seeds_follow_labels_not_positions():
    spec2 = STUDY.make_spec("quick", {"a_cs": [1.5, 2.0, 3.0, 4.0], "levelset_dts": [0.03, 0.02, 0.01]})
    key = lambda j: (j["kind"], j.get("c"), j.get("n"), j.get("eta"), j.get("dt"), j.get("correction"))  # noqa: E731
    before = {key(j.params()): j.seed for j in STUDY.jobs(SPEC)}
    after = {key(j.params()): j.seed for j in STUDY.jobs(spec2)}
    assert all(after[k] == s for k, s in before.items())  # an added c or dt changes no other job's seed
    assert len(set(after.values())) == len(after)
    gaps = [j for j in STUDY.jobs(SPEC) if j.KIND == "gap"]
    assert len({j.data_seed for j in gaps}) == 1 and len({j.seed for j in gaps}) == len(gaps)
