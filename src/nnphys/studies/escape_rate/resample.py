"""Verdict stability of escape-rate: :func:`resample` redraws the results the way a fresh run
would vary (the lab's ``report`` calls ``analyse`` on a few hundred redraws)."""

from __future__ import annotations

import math

import numpy as np

from nnphys.studies.base import Result
from nnphys.studies.escape_rate.claims import _ci

_MC_KINDS = ("levelset", "family_a", "family_b", "escape_nd")
_GAP_SIMS = ("S5", "S4", "S4_exact", "S4_rademacher", "S4_pool", "S1", "S2", "S3")


def _redraw_estimate(e: dict, z: float) -> None:
    """Shift a first-passage estimate (mean and CI together) by ``z`` of its log-scale s.e."""
    se = _ci(e)
    if math.isfinite(se):
        f = math.exp(z * se)
        e["mean"], e["lo"], e["hi"] = e["mean"] * f, e["lo"] * f, e["hi"] * f


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """A parametric bootstrap over the chains: every job here is one ensemble of independent chains
    whose per-chain times are not stored, so each Monte Carlo estimate is redrawn from its own
    sampling distribution (normal in log t with the CI's s.e., mean and CI shifted together); the
    Student-t fits of phi and the growth of <log L> likewise (normal with their s.e.). Covers T3, T5,
    T6, T7sde, T8, T10, T11 and T12. The MLP seeds (T9, T9b) are drawn with replacement. The formula and
    quadrature claims (T1, T2), the identical-steps count (T4) and the SGD phi fits (T7: skewed
    profile CIs, often open above; T7tail: bootstrap CIs mapped through the Hill
    reading, often open above) are passed through unchanged."""
    import copy
    import dataclasses

    mlps = [r for r in results if r.ok and r.params.get("kind") == "mlp"]
    out = [mlps[int(i)] for i in rng.integers(0, len(mlps), len(mlps))] if mlps else []
    for r in results:
        kind = r.params.get("kind")
        if r.ok and kind == "mlp":
            continue
        if not r.ok or kind not in _MC_KINDS + ("gap", "phi_sde", "instability"):
            out.append(r)
            continue
        m = copy.deepcopy(r.metrics)
        if kind in _MC_KINDS:
            _redraw_estimate(m["estimate"], rng.standard_normal())
        elif kind == "gap":
            for s in _GAP_SIMS:
                if s in m:
                    _redraw_estimate(m[s], rng.standard_normal())
        elif kind == "phi_sde":
            for f in m["fits"]:
                se = (f["phi_hi"] - f["phi_lo"]) / (2 * 1.96)
                if math.isfinite(se):
                    d = rng.standard_normal() * se
                    f["phi_fit"], f["phi_lo"], f["phi_hi"] = f["phi_fit"] + d, f["phi_lo"] + d, f["phi_hi"] + d
        else:
            for row in m["rows"]:
                row["growth"] += rng.standard_normal() * row["growth_se"]
        out.append(dataclasses.replace(r, metrics=m))
    return out
