"""The per-(task, budget) cells of the noise-enhancement study: per-seed outcomes and paired cells.

A *cell* is one task at one budget. Every arm trains the same seeds (the seed sets the
initialisation, the data order and the batch draws), so two arms are compared **paired**: per seed,
the difference of their test errors, with a diverged seed counted as the task's trivial error in
every arm (intention to treat, :func:`worst`). :func:`pair_cell` turns one comparison into a
:func:`nnphys.studies.protocol.cell` (its room to move: the comparator's error between
:func:`floor` and :func:`trivial`, and the power the protocol computes); the claims
(:mod:`nnphys.studies.noise_enhancement.claims`) aggregate the cells with :func:`protocol.judge`.
C6's own room rule (more noise than ``B_s`` must help plain SGD) is :func:`smaller_batch_helps`.
:func:`cell_table` (survivor means) feeds the figures and the tables
(:mod:`nnphys.studies.noise_enhancement.tables`). The helpers take the study's ``Spec``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any

import numpy as np

from nnphys.studies import _kit as K
from nnphys.studies import protocol as P
from nnphys.studies.base import Result

# the stored budget keys and what each controls
BUDGETS = ("steps", "epochs")
BUDGET_NAME = {"steps": "equal_steps", "epochs": "equal_grad_evals"}
BUDGET_ROLE = {"steps": "equal optimizer steps: the paper's comparison as we read it [default]",
               "epochs": "equal gradient evaluations (samples; NE and L2 count 2B per step): the compute control [default]"}
# [default] the plateau rule: an arm has plateaued at a budget when its mean validation error (over the
# seeds that did not diverge) fell by less than PLATEAU_TOL over the last quarter of the budget. Why the
# SESOI (0.01): an arm still improving by the smallest effect the claims care about could change a
# comparison by that effect with more training; an arm whose error rises (overfitting) has plateaued in
# this sense, since training longer would not help it. A comparison with an arm that has not plateaued
# is uninformative ("not converged"), never data.
PLATEAU_TOL = 0.01


def design_cells(spec, results: list[Result]) -> list[tuple[str, float | None, str]]:
    """``[(task, lr, label)]``: the study's cells. ``lr_design = "select"``: one per task at the lr
    :func:`selected_lr` picks (label: the task); ``"cells"``: one per (task, eta) of the grid (label
    ``task/eta=...``), no selection."""
    if spec.lr_design == "cells":
        return [(t, float(lr), f"{t}/eta={lr:g}") for t in spec.tasks for lr in spec.lrs(t)]
    return [(t, selected_lr(spec, results, t), t) for t in spec.tasks]


# ================================================================================================
# the cell table
# ================================================================================================

class Indexed(list):
    """The results of one analysis with its caches: the training jobs by ``(task, arm, status)`` and
    the per-seed outcomes already extracted (the claims ask for the same arms many times; the
    calibration harness runs the analysis thousands of times)."""

    def __init__(self, results: list[Result]):
        super().__init__(results)
        self.jobs: dict[tuple, list[Result]] = {}
        for r in results:
            if r.params.get("kind") == "train":
                self.jobs.setdefault((r.params.get("task"), r.params.get("arm"), r.status), []).append(r)
        self.memo: dict[tuple, Any] = {}


def train_jobs(results: list[Result], task: str, arm: str, status: str = "done") -> list[Result]:
    if isinstance(results, Indexed):
        return results.jobs.get((task, arm, status), [])
    return [r for r in results if r.status == status and r.params.get("kind") == "train"
            and r.params.get("task") == task and r.params.get("arm") == arm]


def selected_lr(spec, results: list[Result], task: str) -> float | None:
    """The lr with the lowest mean validation error of arm S at the equal-steps budget (never test)."""
    grid = spec.lrs(task)
    if len(grid) == 1:
        return grid[0]
    s = train_jobs(results, task, "S")
    if not s:
        return None
    m = s[0].metrics
    best, best_v = None, math.inf
    for lr in grid:
        vals = [v for mi, v in zip(m["members"], m["final"]["steps"]["val_error"]) if mi["lr"] == lr and np.isfinite(v)]
        if vals and float(np.mean(vals)) < best_v:
            best, best_v = lr, float(np.mean(vals))
    return best


def stats(results: list[Result], task: str, arm: str, budget: str, lr: float | None,
           alpha: float | None = None, warmup: bool = False, metric: str = "final") -> dict[str, Any] | None:
    """Test error over seeds of one (task, arm, variant) at ``budget``: mean, se, n, n_diverged and
    the train-loss plateau (mean train loss at 3/4 of the budget and at its end)."""
    if lr is None:
        return None
    rs = train_jobs(results, task, arm)
    if not rs:
        dead = train_jobs(results, task, arm, status="diverged")
        if not dead:
            return None
        # every member of the job diverged: count the seeds of the requested variant
        return {"mean": float("nan"), "se": float("nan"), "n": 0, "n_diverged": len(dead[0].params["seeds"])}
    m = rs[0].metrics
    errs = m["final"][budget]["test_error"] if metric == "final" else m["best_val_test_error"][budget]
    keep, n_div = [], 0
    for i, (mi, e, dv) in enumerate(zip(m["members"], errs, m["diverged"])):
        if mi["lr"] != lr or (alpha is not None and abs(mi["alpha"] - alpha) > 1e-9):
            continue
        if arm == "LS" and bool(mi["warmup_steps"]) != warmup:
            continue
        if dv or not np.isfinite(e):
            n_div += 1
        else:
            keep.append(i)
    if not keep and not n_div:
        return None
    vals = [errs[i] for i in keep]
    mean, se = (K.mean_se(vals) if len(vals) > 1 else (float(np.mean(vals)) if vals else float("nan"), float("nan")))
    out = {"mean": float(mean), "se": float(se), "n": len(vals), "n_diverged": n_div}
    if metric == "final" and keep:
        end = [m["final"][budget]["train_loss"][i] for i in keep]
        out["train_loss_end"] = float(np.mean(end))
        if "train_loss_3q" in m:
            q3 = float(np.mean([m["train_loss_3q"][budget][i] for i in keep]))
            out["train_loss_3q"] = q3
            out["train_loss_drop_last_quarter"] = (q3 - out["train_loss_end"]) / max(q3, 1e-300)
    return out


def ne_key(a: float) -> str:
    return f"NE({a:.4g})"


def cell_table(spec, results: list[Result]) -> dict[str, Any]:
    """``{label: {"task": task, "lr": lr, budget: {arm key: stats}}}`` over :func:`design_cells`: the
    results tables (survivor means)."""
    table: dict[str, Any] = {}
    for t, lr, label in design_cells(spec, results):
        table[label] = {"task": t, "lr": lr}
        for bud in BUDGETS:
            row = {a: stats(results, t, a, bud, lr) for a in ("S", "S_half", "S_double", "L", "L2", "LS")}
            row["LS_warmup"] = stats(results, t, "LS", bud, lr, warmup=True)
            for a in spec.ne_alphas:
                row[ne_key(a)] = stats(results, t, "NE", bud, lr, alpha=a)
            row["best_val_checkpoint"] = {
                k: stats(results, t, arm, bud, lr, alpha=al, metric="best_val")
                for k, arm, al in (("S", "S", None), ("L", "L", None), ("NE_match", "NE", spec.match_alpha))}
            table[label][bud] = row
    return table


def n_test(spec, task: str) -> int:
    return {"digits": spec.digits_n_test, "mnist1d": spec.mnist1d_n_test, "mnist1d_small": spec.mnist1d_n_test,
            "depth_locality": spec.t3_n_test}.get(task, 10000)


# ================================================================================================
# per-seed outcomes, intention to treat, and the paired cells of C4-C9
# ================================================================================================

def trivial(task: str) -> float:
    """The task's trivial test error [derived]: classification (10 balanced classes in every task)
    0.9, the error of a constant prediction; T3 (regression, unit-variance target, E[y^2] = 1) 1.0,
    the test MSE of predicting 0."""
    return 1.0 if task == "depth_locality" else 0.9


def worst(results: list[Result], task: str, budget: str, lr: float) -> float:
    """The value a diverged seed gets (intention to treat) [default]: the task's :func:`trivial` error,
    or the largest test error any seed of any arm reached in the cell if that is larger (a trained net
    can do worse than the constant predictor, e.g. T3's MSE above 1; a diverged seed must never rank
    above a seed that trained)."""
    memo = results.memo if isinstance(results, Indexed) else None
    mk = ("worst", task, budget, lr)
    if memo is not None and mk in memo:
        return memo[mk]
    w = trivial(task)
    for r in results:
        if r.status != "done" or r.params.get("kind") != "train" or r.params.get("task") != task:
            continue
        m = r.metrics
        for mi, e, dv in zip(m["members"], m["final"][budget]["test_error"], m["diverged"]):
            if mi["lr"] == lr and not dv and e is not None and math.isfinite(e):
                w = max(w, float(e))
    if memo is not None:
        memo[mk] = w
    return w


def floor(spec, task: str) -> float:
    """The floor of the room-to-move rule [default]: ``floor_test_errors`` test mistakes as an error
    rate for classification (below it a 1-point change is a handful of mistakes); 0 for T3's MSE."""
    return 0.0 if task == "depth_locality" else spec.floor_test_errors / n_test(spec, task)


def parse_key(key: str) -> tuple[str, float | None, bool]:
    """``(arm, alpha, warmup)`` of a variant key: ``S``, ``S_half``, ``L``, ``L2``, ``LS``,
    ``LS_warmup``, ``NE(a)``."""
    if key.startswith("NE("):
        return "NE", float(key[3:-1]), False
    if key == "LS_warmup":
        return "LS", None, True
    return key, None, False


def seed_outcomes(spec, results: list[Result], task: str, budget: str, lr: float | None, key: str,
                  metric: str = "final") -> dict[str, Any] | None:
    """Per-seed test error of one variant at ``budget``: ``{"seeds": [...], "raw": (n,) with nan where
    diverged, "diverged": (n,) bool, "itt": (n,) with diverged seeds at :func:`worst`}``, seeds in the
    job's order; None when the job is absent. A job whose members all diverged (status ``diverged``)
    gives every seed diverged. NE keys match alpha to the spec's rounded value (``ne_key``)."""
    if lr is None:
        return None
    memo = results.memo if isinstance(results, Indexed) else None
    mk = ("outcomes", task, budget, lr, key, metric)
    if memo is not None and mk in memo:
        return memo[mk]
    out = _seed_outcomes(results, task, budget, lr, key, metric)
    if memo is not None:
        memo[mk] = out
    return out


def _seed_outcomes(results: list[Result], task: str, budget: str, lr: float, key: str, metric: str) -> dict[str, Any] | None:
    arm, alpha, warmup = parse_key(key)
    rs = train_jobs(results, task, arm)
    if not rs:
        dead = train_jobs(results, task, arm, status="diverged")
        if not dead:
            return None
        seeds = list(dead[0].params["seeds"])
        raw, div = np.full(len(seeds), np.nan), np.ones(len(seeds), bool)
        drop = float("nan")  # every seed diverged: divergence is the outcome
    else:
        m = rs[0].metrics
        errs = m["final"][budget]["test_error"] if metric == "final" else m["best_val_test_error"][budget]
        seeds, raw_l, div_l, idx = [], [], [], []
        for i, (mi, e, dv) in enumerate(zip(m["members"], errs, m["diverged"])):
            if mi["lr"] != lr or (alpha is not None and ne_key(mi["alpha"]) != ne_key(alpha)):
                continue
            if arm == "LS" and bool(mi["warmup_steps"]) != warmup:
                continue
            seeds.append(mi["seed"])
            bad = bool(dv) or e is None or not math.isfinite(e)
            raw_l.append(float("nan") if bad else float(e))
            div_l.append(bad)
            idx.append(i)
        if not seeds:
            return None
        raw, div = np.array(raw_l, float), np.array(div_l, bool)
        drop = val_drop(rs[0], budget, [i for i, d in zip(idx, div_l) if not d])
    return {"seeds": seeds, "raw": raw, "diverged": div, "itt": P.itt(raw, div, worst(results, task, budget, lr)),
            "val_drop": drop}


def val_error_3q(r: Result) -> dict[str, list] | None:
    """Per budget, each member's validation error at 3/4 of the budget: the stored ``val_error_3q``, or,
    for results stored before it was, read once from the job's arrays (cached per arrays file); None
    when the job stored neither."""
    m = r.metrics
    if "val_error_3q" in m:
        return m["val_error_3q"]
    if "budgets" not in m:
        return None
    if r.inline_arrays is None and r.arrays_path is not None:
        if not Path(r.arrays_path).exists():
            return None
        return _val_3q_from_file(str(r.arrays_path), tuple(sorted(m["budgets"].items())))
    return _val_3q(r.arrays, m["budgets"])


@functools.lru_cache(maxsize=256)
def _val_3q_from_file(path: str, budgets: tuple) -> dict[str, list] | None:
    with np.load(path, allow_pickle=False) as z:
        return _val_3q({k: z[k] for k in ("val_error", "eval_steps") if k in z.files}, dict(budgets))


def _val_3q(arr: dict, budgets: dict[str, int]) -> dict[str, list] | None:
    if "val_error" not in arr or "eval_steps" not in arr:
        return None
    steps = [int(s) for s in arr["eval_steps"]]
    out = {}
    for b, n in budgets.items():
        at = round(0.75 * n)
        if at in steps:
            out[b] = arr["val_error"][:, steps.index(at)].tolist()
    return out


def with_val_3q(r: Result) -> Result:
    """``r`` with ``val_error_3q`` among its metrics (from the arrays when it predates the metric), so
    that resampling the members re-indexes it with the rest (the arrays are not resampled)."""
    if not r.ok or r.params.get("kind") != "train" or "val_error_3q" in r.metrics:
        return r
    q = val_error_3q(r)
    return r if q is None else dataclasses.replace(r, metrics={**r.metrics, "val_error_3q": q})


def val_drop(r: Result, budget: str, live: list[int]) -> float | None:
    """Mean over the members ``live`` of (validation error at 3/4 of ``budget`` - at its end): the
    plateau check (:data:`PLATEAU_TOL`), from :func:`val_error_3q`; nan when no member is live (every
    seed diverged: divergence is the outcome), None when the job stored neither."""
    if not live:
        return float("nan")
    m = r.metrics
    end = m["final"][budget].get("val_error")
    if end is None:
        return None
    q3 = (val_error_3q(r) or {}).get(budget)
    if q3 is None:
        return None
    d = [q3[i] - end[i] for i in live if q3[i] is not None and end[i] is not None
         and math.isfinite(q3[i]) and math.isfinite(end[i])]
    return float(np.mean(d)) if d else float("nan")


def plateaued(o: dict[str, Any]) -> bool:
    """The plateau rule on one arm's outcomes: its mean validation error fell by less than
    :data:`PLATEAU_TOL` over the last quarter of the budget (unknown or every seed diverged: True, and
    the evidence says so)."""
    d = o.get("val_drop")
    return d is None or not math.isfinite(d) or d < PLATEAU_TOL


def not_plateaued_why(arms: dict[str, dict[str, Any]]) -> str | None:
    """Why a comparison of ``{key: outcomes}`` is not converged, or None when every arm plateaued."""
    bad = [f"{k}'s mean validation error still fell by {o['val_drop']:.4f} >= {PLATEAU_TOL} over the last quarter "
           f"of the budget" for k, o in arms.items() if not plateaued(o)]
    return ("not converged: " + "; ".join(bad)) if bad else None


def paired_diffs(a: dict[str, Any], b: dict[str, Any]) -> tuple[np.ndarray, list[int]]:
    """``b.itt - a.itt`` over the seeds both hold (the arms share seeds: the same initialisation,
    data order and batch draws), so a positive difference means ``a`` has the lower error."""
    ib = {s: i for i, s in enumerate(b["seeds"])}
    common = [s for s in a["seeds"] if s in ib]
    ia = {s: i for i, s in enumerate(a["seeds"])}
    d = np.array([b["itt"][ib[s]] - a["itt"][ia[s]] for s in common], float)
    return d, common


def describe(o: dict[str, Any] | None) -> dict[str, Any] | None:
    """Mean +- s.e. of an arm's outcomes (intention to treat and survivors) and its divergence count
    (computed once per outcome dict)."""
    if o is None:
        return None
    if "describe" not in o:
        itt, div = o["itt"].tolist(), o["diverged"].tolist()
        n, live = len(itt), [v for v, d in zip(o["raw"].tolist(), div) if not d]
        m = sum(itt) / n
        se = math.sqrt(sum((v - m) ** 2 for v in itt) / (n - 1) / n) if n > 1 else float("nan")
        o["describe"] = {"n": n, "n_diverged": int(sum(div)), "itt_mean": m, "itt_se": se,
                         "survivor_mean": sum(live) / len(live) if live else float("nan"),
                         "val_drop_last_quarter": o.get("val_drop"), "plateaued": plateaued(o)}
    return o["describe"]


def pair_cell(spec, results: list[Result], lr: float | None, task: str, budget: str, better: str, worse: str, rule,
              room: tuple[bool, str] | None = None, room_baseline: str = "worse", name: str | None = None):
    """One paired cell: ``better`` has lower test error than ``worse`` (the claimed direction is +).

    The effect is :func:`nnphys.studies.protocol.paired` over the per-seed ITT differences
    ``worse - better``; the room to move is :func:`protocol.room` of the baseline (the mean ITT
    error of ``worse``, or of both arms with ``room_baseline="both"``) between :func:`floor` and
    :func:`trivial`, unless ``room`` is given (``(False, why)`` from a claim's own rule). Returns
    None when an arm is missing or fewer than 2 seeds are shared."""
    a = seed_outcomes(spec, results, task, budget, lr, better)
    b = seed_outcomes(spec, results, task, budget, lr, worse)
    if a is None or b is None:
        return None
    d, common = paired_diffs(a, b)
    if len(d) < 2:
        return None
    base = float(b["itt"].mean()) if room_baseline == "worse" else float(np.concatenate([a["itt"], b["itt"]]).mean())
    r = P.room(base, floor(spec, task), trivial(task), rule.sesoi)
    if room is not None and not room[0]:
        r = room
    stale = not_plateaued_why({better: a, worse: b})
    if stale:
        r = (False, stale)
    label = task if spec.lr_design != "cells" else f"{task}/eta={lr:g}"
    return P.cell(name or f"{label}/{BUDGET_NAME[budget]}", P.paired(d), rule, room=r,
                  n_diverged={better: int(a["diverged"].sum()), worse: int(b["diverged"].sum())},
                  extra={better: describe(a), worse: describe(b), "seeds": common, "room_baseline": base,
                         **({"claim_room_rule": room[1]} if room is not None else {})})


def smaller_batch_helps(spec, results: list[Result], lr: float | None, task: str, budget: str) -> tuple[bool, str]:
    """C6's room to move [default, fixed before any outcome]: more noise than ``B_s`` must help plain
    SGD in the cell, i.e. SGD at ``B_s / 2`` (arm ``S_half``) has a significantly lower test error
    than S, paired over seeds (one-sided t test at ``protocol.ALPHA``, ITT). ``(ok, why)``."""
    h = seed_outcomes(spec, results, task, budget, lr, "S_half")
    s = seed_outcomes(spec, results, task, budget, lr, "S")
    if h is None or s is None:
        return False, ("no plain-SGD arm below B_s (S_half) in this run: whether more noise than B_s helps "
                       "plain SGD cannot be shown, so NE beating S cannot be expected")
    d, _ = paired_diffs(h, s)
    if len(d) < 2:
        return False, "S_half and S share fewer than 2 seeds"
    stale = not_plateaued_why({"S_half": h, "S": s})
    if stale:
        return False, stale
    eff = P.paired(d)
    p = P.p_greater(eff)
    if p < P.ALPHA:
        return True, f"S_half below S by {eff.mean:.4f} ± {eff.se:.4f} (paired, one-sided p = {p:.3g})"
    return False, (f"more noise than B_s does not significantly help plain SGD here: S - S_half = "
                   f"{eff.mean:+.4f} ± {eff.se:.4f} (paired, one-sided p = {p:.3g} >= {P.ALPHA})")
