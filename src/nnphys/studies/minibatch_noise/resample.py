"""Verdict stability of minibatch-noise: :func:`resample` redraws the results the way a fresh run
would vary (the lab's ``report`` calls ``analyse`` on a few hundred redraws)."""

from __future__ import annotations

import math

import numpy as np

from nnphys.studies.base import Result

_MC_PAIRS = ("sim", "sim_train", "sim_test", "sim_L_star", "sim_trace")


def _redraw(obj, rng: np.random.Generator) -> None:
    """Redraw every Monte Carlo mean in ``obj`` (in place) from normal(mean, its s.e.)."""
    if isinstance(obj, dict):
        for k in _MC_PAIRS:
            v = obj.get(k)
            if isinstance(v, list) and len(v) == 2 and math.isfinite(v[0]) and math.isfinite(v[1]):
                obj[k] = [v[0] + rng.standard_normal() * v[1], v[1]]
        if "sim_diag" in obj and "sim_se" in obj:
            obj["sim_diag"] = [m + rng.standard_normal() * se if math.isfinite(se) else m
                               for m, se in zip(obj["sim_diag"], obj["sim_se"])]
        for mk, sk in (("mc_trace", "mc_se"), ("mc_C00", "mc_C00_se"), ("hill", "hill_se")):
            if mk in obj and sk in obj and math.isfinite(obj[sk]):
                obj[mk] = obj[mk] + rng.standard_normal() * obj[sk]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return
    for v in children:
        if isinstance(v, (dict, list)):
            _redraw(v, rng)


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """Seeds drawn with replacement where the study has them: the MLP training seeds (C3, C12) and
    the high-dimensional data draws (C6 under-parameterised part, C7; the over-parameterised check,
    run on draw 0 only, is held fixed). Every other job is one ensemble of chains whose per-chain
    values are not stored: its Monte Carlo means are redrawn from normal(mean, s.e.) (a parametric
    bootstrap; C1, C2, C4, C5, C8, C9, C10, C11). Closed-form and oracle numbers are unchanged."""
    import copy
    import dataclasses

    groups = {kind: [r for r in results if r.ok and r.params.get("kind") == kind] for kind in ("mlp", "highdim")}
    seeded = ("width", "logreg")
    fig1 = [r for r in results if r.ok and r.params.get("kind") in seeded]
    out = [r for r in results if not (r.ok and r.params.get("kind") in (*groups, *seeded))]
    out += _resample_fig1(fig1, rng)
    out = [dataclasses.replace(r, metrics=copy.deepcopy(r.metrics)) if r.ok else r for r in out]
    for r in out:
        if r.ok:
            _redraw(r.metrics, rng)
    over = next((r.metrics["over"] for r in groups["highdim"] if "sim_train_max" in r.metrics["over"]), None)
    for kind, rs in groups.items():
        if not rs:
            continue
        for i in rng.integers(0, len(rs), len(rs)):
            r = rs[int(i)]
            if kind == "highdim" and over is not None:
                r = dataclasses.replace(r, metrics={**r.metrics, "over": over})
            out.append(r)
    return out


def _resample_fig1(rs: list[Result], rng: np.random.Generator) -> list[Result]:
    """Fig. 1 (C15, C15f, C16): the seeds drawn with replacement, one draw for every width job (seed
    s is the same minibatch order at every width, so the pairing is kept) and one for the γ sweep
    (every γ keeps the same seeds)."""
    import dataclasses

    out = []
    widths = [r for r in rs if r.params.get("kind") == "width"]
    if widths:
        n = min(len(r.metrics["arms"]["fixed"]["var"]) for r in widths)
        idx = rng.integers(0, n, n)
        for r in widths:
            arms = {a: {k: ([v[i] for i in idx] if isinstance(v, list) else v) for k, v in arm.items()}
                    for a, arm in r.metrics["arms"].items()}
            out.append(dataclasses.replace(r, metrics={**r.metrics, "arms": arms}))
    for r in rs:
        if r.params.get("kind") == "logreg":
            n = len(r.metrics["test_loss"][0])
            idx = rng.integers(0, n, n)
            pick = {k: [[row[i] for i in idx] for row in r.metrics[k]] for k in ("test_loss", "test_err", "train_loss")}
            out.append(dataclasses.replace(r, metrics={**r.metrics, **pick}))
    return out
