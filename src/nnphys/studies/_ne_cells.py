"""The per-(task, budget) cells of the noise-enhancement study and its informativeness rule.

A *cell* is one task at one budget; its row holds, per arm (S, L, L2, LS, LS_warmup, NE(alpha)),
the test error over seeds (mean, s.e., n, diverged) and the train-loss plateau. Claims C4-C9 are
judged cell by cell (:func:`judge_cells`): ``holds``/``fails`` where the cell is informative
(:func:`informative`, a rule fixed before any outcome, :data:`INFORMATIVE_RULE`), else
``uninformative``. The helpers take the study's ``Spec`` (duck-typed: ``tasks``, ``lrs``,
``ne_alphas``, ``match_alpha``, ``floor_test_errors`` and the test sizes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnphys.studies import _kit as K
from nnphys.studies.base import Claim, Result

# the stored budget keys and what each controls
BUDGETS = ("steps", "epochs")
BUDGET_NAME = {"steps": "equal_steps", "epochs": "equal_grad_evals"}
BUDGET_ROLE = {"steps": "equal optimizer steps: the paper's comparison as we read it [default]",
               "epochs": "equal gradient evaluations (samples; NE and L2 count 2B per step): the compute control [default]"}


# ================================================================================================
# the cell table and the informativeness rule
# ================================================================================================

INFORMATIVE_RULE = (
    "fixed before outcomes [default]: a (task, budget) cell is informative when S's test error is "
    "significantly below L's (means differ by > 2 sqrt(se_S^2 + se_L^2), §10: the small- vs large-batch "
    "gap that NE is meant to close) and, for classification, S or L makes at least floor_test_errors test "
    "mistakes (mean error x test rows; below that the errors sit at a floor). The headline verdict is the "
    "conjunction over the informative headline cells; with none it is inconclusive.")


def train_jobs(results: list[Result], task: str, arm: str, status: str = "done") -> list[Result]:
    return [r for r in results if r.status == status and r.params.get("kind") == "train"
            and r.params.get("task") == task and r.params.get("arm") == arm]


def selected_lr(spec, results: list[Result], task: str) -> float | None:
    """The lr with the lowest mean validation error of arm S at the equal-steps budget (§9)."""
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
    """``{task: {"lr": lr, budget: {arm key: stats}}}``: the §12 results tables."""
    table: dict[str, Any] = {}
    for t in spec.tasks:
        lr = selected_lr(spec, results, t)
        table[t] = {"lr": lr}
        for bud in BUDGETS:
            row = {a: stats(results, t, a, bud, lr) for a in ("S", "L", "L2", "LS")}
            row["LS_warmup"] = stats(results, t, "LS", bud, lr, warmup=True)
            for a in spec.ne_alphas:
                row[ne_key(a)] = stats(results, t, "NE", bud, lr, alpha=a)
            row["best_val_checkpoint"] = {
                k: stats(results, t, arm, bud, lr, alpha=al, metric="best_val")
                for k, arm, al in (("S", "S", None), ("L", "L", None), ("NE_match", "NE", spec.match_alpha))}
            table[t][bud] = row
    return table


def n_test(spec, task: str) -> int:
    return {"digits": spec.digits_n_test, "mnist1d": spec.mnist1d_n_test, "mnist1d_small": spec.mnist1d_n_test,
            "depth_locality": spec.t3_n_test}.get(task, 10000)


def informative(spec, task: str, row: dict[str, Any]) -> tuple[bool | None, str]:
    """The informativeness rule (:data:`INFORMATIVE_RULE`) for one cell: ``(True/False, why)``, or
    ``(None, why)`` when S or L is missing."""
    s, l = row.get("S"), row.get("L")
    if not s or not l or s["n"] < 2 or l["n"] < 2:
        return None, "S or L missing (fewer than 2 seeds)"
    if task != "depth_locality":  # classification: a floor of test mistakes
        mistakes = max(s["mean"], l["mean"]) * n_test(spec, task)
        if mistakes < spec.floor_test_errors:
            return False, f"floor: S and L make {mistakes:.1f} < {spec.floor_test_errors} test mistakes"
    gap, thr = l["mean"] - s["mean"], 2 * math.hypot(s["se"], l["se"])
    if not gap > thr:
        return False, f"S-L gap {gap:+.4f} not significant (needs > {thr:.4f})"
    return True, f"S below L by {gap:.4f} (> {thr:.4f})"


def better(a: dict | None, b: dict | None) -> bool | None:
    """True when ``a``'s error is significantly below ``b``'s; None when either lacks 2 seeds."""
    if not a or not b or a["n"] < 2 or b["n"] < 2:
        return None
    return a["mean"] < b["mean"] and K.significant(a["mean"], a["se"], b["mean"], b["se"])


def num(c: dict | None) -> str:
    if not c:
        return "n/a"
    div = f" ({c['n_diverged']} div)" if c["n_diverged"] else ""
    if not math.isfinite(c["mean"]):  # every seed diverged
        return "—" + div
    return (f"{c['mean']:.3f}±{c['se']:.3f}" if math.isfinite(c["se"]) else f"{c['mean']:.3f}") + div


def judge_cells(book: K.ClaimBook, cid: str, heads: tuple[str, ...], spec, table: dict[str, Any], test,
                keys: tuple[str, ...], extra: dict[str, Any] | None = None) -> Claim:
    """A per-cell claim: each (task, budget) cell is ``holds``/``fails`` by ``test(row)`` when
    informative, else ``uninformative`` (or ``n/a`` when data is missing); the headline verdict is
    :func:`_kit.all_of` over the headline budgets' informative cells (``n/a`` ones count as
    inconclusive); no informative cell gives ``inconclusive``."""
    cells: dict[str, Any] = {}
    for t in spec.tasks:
        for bud in BUDGETS:
            row = table[t][bud]
            inf, why = informative(spec, t, row)
            res = test(row)
            v = "n/a" if inf is None or res is None else ("uninformative" if not inf else ("holds" if res else "fails"))
            cells[f"{t}/{BUDGET_NAME[bud]}"] = {
                "verdict": v, "informative": inf, "why": why, "criterion_met": res,
                "headline": bud in heads, **{k: num(row.get(k)) for k in ("S", "L") + keys}}

    def over(budgets) -> tuple[str, list[str]]:
        cs = [k for k, c in cells.items() if k.split("/")[1] in {BUDGET_NAME[b] for b in budgets}
              and c["verdict"] != "uninformative"]
        if not cs:
            return "inconclusive", cs
        return K.all_of("inconclusive" if cells[k]["verdict"] == "n/a" else cells[k]["verdict"] for k in cs), cs

    verdict, used = over(heads)
    control = tuple(b for b in BUDGETS if b not in heads)
    cverdict, cused = over(control) if control else ("n/a", [])
    ev = {"headline_budgets": [BUDGET_NAME[b] for b in heads], "budget_roles": {BUDGET_NAME[b]: BUDGET_ROLE[b] for b in BUDGETS},
          "informativeness_rule": INFORMATIVE_RULE, "cells": cells, "headline_cells": used,
          "compute_control_verdict": cverdict, "compute_control_cells": cused,
          "tie_rule": "significant = means differ by > 2 sqrt(se1^2 + se2^2) (§10)", **(extra or {})}
    tally = {v: [k for k in used if cells[k]["verdict"] == v] for v in ("holds", "fails", "n/a")}
    if not used:
        summ = "no informative headline cell: " + "; ".join(f"{k} ({c['why']})" for k, c in cells.items() if c["headline"])
    else:
        summ = "; ".join(f"{k} {cells[k]['verdict']}: " + " vs ".join(f"{kk} {cells[k][kk]}" for kk in keys)
                         for k in used)
        skipped = [k for k, c in cells.items() if c["headline"] and k not in used]
        if skipped:
            summ += "; uninformative: " + ", ".join(skipped)
    if control:
        summ += f"; compute control ({BUDGET_NAME[control[0]]}): {cverdict}"
    ev["tally"] = {k: len(v) for k, v in tally.items()}
    return book.make(cid, verdict, ev, summ)


def markdown_tables(spec, results: list[Result]) -> str:
    """The per-cell results table (test error mean +- s.e. over seeds, diverged seeds, the
    informativeness rule's reading) and the train-loss plateau table, as markdown, for the guide."""
    table = cell_table(spec, results)
    arms = ["S", "L"] + [ne_key(a) for a in spec.ne_alphas] + ["L2", "LS", "LS_warmup"]
    head = "| task / budget | lr | " + " | ".join(arms) + " | cell |"
    rows = [head, "|" + "---|" * (len(arms) + 3)]
    loss = ["| task / budget | " + " | ".join(arms) + " |", "|" + "---|" * (len(arms) + 1)]
    for t in spec.tasks:
        for bud in BUDGETS:
            row = table[t][bud]
            ok, why = informative(spec, t, row)
            cell = "informative" if ok else ("uninformative: " + why if ok is False else why)
            rows.append(f"| {t} / {BUDGET_NAME[bud]} | {table[t]['lr']} | "
                        + " | ".join(num(row.get(a)) for a in arms) + f" | {cell} |")

            def plateau(c):
                if not c or "train_loss_end" not in c:
                    return "n/a"
                q3 = c.get("train_loss_3q")
                return (f"{q3:.3g} → " if q3 is not None else "") + f"{c['train_loss_end']:.3g}"
            loss.append(f"| {t} / {BUDGET_NAME[bud]} | " + " | ".join(plateau(row.get(a)) for a in arms) + " |")
    return ("Test error (T3 `depth_locality`: test MSE), mean ± s.e. over seeds; `div`: diverged seeds; last "
            "column: the informativeness rule.\n\n" + "\n".join(rows)
            + "\n\nTrain loss at 3/4 of the budget → at its end (mean over seeds; the plateau check):\n\n"
            + "\n".join(loss) + "\n")
