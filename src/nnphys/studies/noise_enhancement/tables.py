"""The noise-enhancement study's markdown tables for the guide's results block: the per-cell test
errors (intention to treat, as every claim compares them) and the train-loss plateau table."""

from __future__ import annotations

import math

from nnphys.studies.base import Result
from nnphys.studies.noise_enhancement._cells import (BUDGET_NAME, BUDGETS, PLATEAU_TOL, cell_table, describe, ne_key,
                                                      seed_outcomes)


def num(c: dict | None) -> str:
    if not c:
        return "n/a"
    div = f" ({c['n_diverged']} div)" if c["n_diverged"] else ""
    if not math.isfinite(c["mean"]):  # every seed diverged
        return "—" + div
    return (f"{c['mean']:.3f}±{c['se']:.3f}" if math.isfinite(c["se"]) else f"{c['mean']:.3f}") + div


def itt_num(d: dict | None) -> str:
    """``mean±se`` of the ITT outcomes with the diverged-seed count (always shown when > 0)."""
    if not d:
        return "n/a"
    div = f" ({d['n_diverged']}/{d['n']} div)" if d["n_diverged"] else ""
    return (f"{d['itt_mean']:.3f}±{d['itt_se']:.3f}" if math.isfinite(d["itt_se"]) else f"{d['itt_mean']:.3f}") + div


def markdown_tables(spec, results: list[Result]) -> str:
    """The per-cell results table (test error over seeds with diverged seeds at the task's trivial
    error, intention to treat; diverged seeds counted) and the plateau table (train loss and the
    validation-error drop over the last quarter of each budget, survivors), as markdown, for the guide.
    One row per cell (task, or task and eta when ``lr_design = "cells"``) and budget."""
    table = cell_table(spec, results)
    extra = [a for a in ("S_half", "S_double") if a in spec.arms]
    arms = ["S"] + extra + ["L"] + [ne_key(a) for a in spec.ne_alphas] + ["L2", "LS", "LS_warmup"]
    head = "| cell / budget | lr | " + " | ".join(arms) + " |"
    rows = [head, "|" + "---|" * (len(arms) + 2)]
    loss = ["| cell / budget | " + " | ".join(arms) + " |", "|" + "---|" * (len(arms) + 1)]
    for label, cell in table.items():
        t, lr = cell["task"], cell["lr"]
        for bud in BUDGETS:
            row = cell[bud]
            outs = {a: seed_outcomes(spec, results, t, bud, lr, a) for a in arms}
            rows.append(f"| {label} / {BUDGET_NAME[bud]} | {lr} | "
                        + " | ".join(itt_num(describe(outs[a])) for a in arms) + " |")

            def plateau(a):
                c, o = row.get(a), outs[a]
                if not c or "train_loss_end" not in c:
                    return "n/a"
                q3 = c.get("train_loss_3q")
                txt = (f"{q3:.3g} → " if q3 is not None else "") + f"{c['train_loss_end']:.3g}"
                d = describe(o) if o else None
                if d and d["val_drop_last_quarter"] is not None and math.isfinite(d["val_drop_last_quarter"]):
                    txt += f"; Δval {d['val_drop_last_quarter']:+.3f}" + ("" if d["plateaued"] else " **not converged**")
                return txt
            loss.append(f"| {label} / {BUDGET_NAME[bud]} | " + " | ".join(plateau(a) for a in arms) + " |")
    return ("Test error (T3 `depth_locality`: test MSE), mean ± s.e. over seeds, a diverged seed counted as the task's "
            "trivial error (0.9; T3: 1.0) or the worst error any seed reached in the cell if larger, as every claim compares them; `k/n div`: diverged seeds.\n\n" + "\n".join(rows)
            + "\n\nTrain loss at 3/4 of the budget → at its end, and Δval = the fall of the mean validation error over the "
              f"last quarter (mean over the seeds that did not diverge; the plateau rule: an arm whose Δval is ≥ {PLATEAU_TOL} "
              "has not converged and its comparisons are uninformative):\n\n" + "\n".join(loss) + "\n")
