"""Figures of the noise-enhancement study: test error against B_eff, the alpha sweep (test error
against alpha at B_l with small-batch SGD as a band), the measured noise factor against alpha, and
train-loss curves with seed bands against steps and samples. Error bars are mean +- s.e. over seeds;
diverged seeds are red crosses; legends >= 8 pt (:mod:`nnphys.studies._kit`). :data:`FIGURE_CLAIMS`
names the claims each figure illustrates."""

from __future__ import annotations

import math
import warnings

import numpy as np

from nnphys.noise_enhancement import ne_covariance_factor
from nnphys.studies import _kit as K
from nnphys.studies.noise_enhancement._cells import BUDGET_NAME, BUDGETS, cell_table, ne_key, train_jobs
from nnphys.studies.noise_enhancement.spec import TASK_LABEL
from nnphys.studies.base import Figure, Result

FIGURE_CLAIMS = {"test_error_vs_beff": ("C5", "C6", "C8", "C9"), "alpha_sweep": ("C4", "C6"),
                 "noise_factor_vs_alpha": ("C1", "C2"), "train_loss_curves": ("C3", "C7", "C8")}


def figures(spec, results: list[Result]) -> list[Figure]:
    """Test error against B_eff, the alpha sweep, the measured noise factor and the train-loss
    curves with seed bands, each linked to the claims it illustrates."""
    return K.link_claims(draw(spec, results, TASK_LABEL), FIGURE_CLAIMS)


def _curves(spec, r: Result, lr: float | None, alpha: float | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(steps, train_loss (n_seeds, n_eval))`` of one job's members at ``lr`` (NE: ``alpha``; LS: no warmup)."""
    arr = r.arrays
    if "train_loss" not in arr:
        return None
    sel = [k for k, mi in enumerate(r.metrics["members"]) if mi["lr"] == lr and not mi["warmup_steps"]
           and (alpha is None or abs(mi["alpha"] - alpha) < 1e-9)]
    return (arr["eval_steps"], arr["train_loss"][sel]) if sel else None


def _finish(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        K.legend(ax)


def _mark_dead(ax, pts: list, counts: bool = False) -> None:
    """Red crosses at the axis top for the points ``(x, stats)`` with diverged seeds (count beside)."""
    dead = [(x, c["n_diverged"]) for x, c in pts if c["n_diverged"]]
    if not dead:
        return
    top = ax.get_ylim()[1]
    K.mark_diverged(ax, [x for x, _ in dead], [top] * len(dead), label="diverged seeds" + (" (count)" if counts else ""))
    for x, nd in dead if counts else ():
        ax.annotate(str(nd), (x, top), fontsize=8, color="red", xytext=(3, -10), textcoords="offset points")


def _grid(spec, table, task_label, cell, xlabel: str):
    """One panel per (budget row, task column), drawn by ``cell(ax, row)``."""
    tasks = list(spec.tasks)
    fig, axes = K.subplots(len(BUDGETS), len(tasks), width=4.2, height=3.4)
    for j, t in enumerate(tasks):
        for i, bud in enumerate(BUDGETS):
            ax = axes[i * len(tasks) + j]
            cell(ax, table[t][bud])
            _finish(ax, xlabel, "test MSE" if t == "depth_locality" else "test error", f"{task_label[t]}, {BUDGET_NAME[bud]}")
    return fig


def draw(spec, results: list[Result], task_label: dict[str, str]) -> list[Figure]:
    figs: list[Figure] = []
    tasks, table = list(spec.tasks), cell_table(spec, results)
    bs, bl = spec.batch_small, spec.batch_large
    beff = {a: bl / ne_covariance_factor(a) for a in spec.ne_alphas}

    def vs_beff(ax, row):
        sgd = [(b, row[a]) for a, b in (("S_half", max(1, bs // 2)), ("S", bs), ("L", bl), ("L2", 2 * bl)) if row.get(a)]
        ne = [(beff[a], row[ne_key(a)]) for a in spec.ne_alphas if row.get(ne_key(a))]
        for pts, ls, lab in ((sgd, "-", "SGD (S_half, S, L, L2)"), (ne, "--", f"NE at B={bl}")):
            if pts:
                K.errorbar(ax, [b for b, _ in pts], [c["mean"] for _, c in pts], [c["se"] for _, c in pts], ls=ls, label=lab)
        _mark_dead(ax, sgd + ne)
        K.log_ticks(ax, [b for b, _ in sgd] + [round(v, 1) for v in beff.values()])

    figs.append(Figure("test_error_vs_beff", _grid(spec, table, task_label, vs_beff, "effective batch size B_eff"),
                       "Final test error (mean ± s.e. over the seeds that did not diverge) against the effective batch size: SGD at "
                       "B_s/2 (when run), B_s, B_l, 2B_l "
                       "and NE at B_l with B_eff = B_l/f(alpha); top: equal steps, bottom: equal gradient evaluations "
                       "(NE and L2 count 2B). Red crosses: configurations with diverged seeds."))

    def sweep(ax, row):
        pts = [(a, c) for a, c in [(0.0, row["L"])] + [(a, row[ne_key(a)]) for a in spec.ne_alphas] if c]
        if pts:
            K.errorbar(ax, [a for a, _ in pts], [c["mean"] for _, c in pts], [c["se"] for _, c in pts],
                       label=f"L (α=0) and NE, B={bl}")
        s = row.get("S")
        if s and s["n"]:
            se = s["se"] if math.isfinite(s["se"]) else 0.0
            K.band(ax, [0.0, max(spec.ne_alphas + [1.0])], [s["mean"] - se] * 2, [s["mean"] + se] * 2, color="C1",
                   label=f"S (B={bs}) ± s.e.")
            ax.axhline(s["mean"], color="C1", lw=1)
        _mark_dead(ax, pts, counts=True)
        ax.axvline(spec.match_alpha, color="gray", ls=":", lw=1)

    figs.append(Figure("alpha_sweep", _grid(spec, table, task_label, sweep, "α (dotted: α_match)"),
                       "Test error (mean ± s.e.) of large-batch training against the NE strength α (α = 0 is arm L); "
                       "band: small-batch SGD (S) mean ± s.e.; red crosses with counts: seeds that diverged. "
                       "'Larger noise, if not too large' is a dip below L that turns up (or diverges) at large α."))
    # 3. measured noise factor against alpha
    fig, axes = K.subplots(1, 1, width=5.5, height=4.2)
    ax = axes[0]
    al = np.linspace(0, max(spec.ne_alphas + [3.0]), 100)
    ax.plot(al, 1 + 2 * al + 2 * al**2, "k-", label="f(α) = 1 + 2α + 2α²")
    for r in K.by_kind(results).get("probe", []):
        pa = r.metrics["per_alpha"]
        err = np.array([[a["ratio"] - a["ci99"][0] for a in pa], [a["ci99"][1] - a["ratio"] for a in pa]])
        line = ax.errorbar([a["alpha"] for a in pa], [a["ratio"] for a in pa], yerr=err, fmt="o", ms=4, capsize=2,
                           label=f"{task_label.get(r.metrics['task'], r.metrics['task'])} (N={r.metrics['n']})")
        ax.plot([a["alpha"] for a in pa], [a["theory"] for a in pa], "_", ms=12, color=line[0].get_color())
    for r in K.by_kind(results).get("toy", []):
        for mode, res in r.metrics["modes"].items():
            ax.plot([a["alpha"] for a in res["alphas"]], [a["ratio"] for a in res["alphas"]], "x", label=f"toy §13 ({mode})")
    _finish(ax, "α", "tr Cov[g_NE] / tr Cov[g_B]", "noise factor")
    figs.append(Figure("noise_factor_vs_alpha", fig,
                       "Measured noise factor tr Cov[g_NE] / tr Cov[g_B] (99% bootstrap CI) against alpha. Curve: "
                       "f(alpha) = 1 + 2 alpha + 2 alpha^2; horizontal ticks: each probe's theory value (split mode adds "
                       "2 alpha (1 + alpha) B/(N - B))."))
    # 4. train-loss curves with seed bands, against steps and samples
    fig, axes = K.subplots(2, len(tasks), width=4.2, height=3.4)
    for j, t in enumerate(tasks):
        lr = table[t]["lr"]
        for arm in spec.arms:
            for r in train_jobs(results, t, arm):
                cs = _curves(spec, r, lr, spec.match_alpha if arm == "NE" else None)
                if cs is None:
                    continue
                steps, loss = cs
                with warnings.catch_warnings():  # an evaluation where every selected member diverged
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, se = np.nanmean(loss, 0), np.nanstd(loss, 0, ddof=1) / np.sqrt(np.sum(np.isfinite(loss), 0))
                lab = arm + ("(α_match)" if arm == "NE" else "")
                for i, x in enumerate((steps, steps * r.params["samples_per_step"])):
                    (ln,) = axes[i * len(tasks) + j].plot(x, mean, label=lab)
                    K.band(axes[i * len(tasks) + j], x, np.clip(mean - se, 1e-12, None), mean + se, color=ln.get_color())
        for i, xl in enumerate(("steps", "samples processed (gradient evaluations)")):
            axes[i * len(tasks) + j].set_yscale("log")
            _finish(axes[i * len(tasks) + j], xl, "train loss", task_label[t])
    figs.append(Figure("train_loss_curves", fig,
                       "Train loss (mean over seeds, band ± s.e.) against steps (top) and samples processed (bottom); "
                       "NE at α_match should follow S against steps (the B_eff equivalence)."))
    return figs
