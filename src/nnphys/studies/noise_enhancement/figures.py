"""Figures of the noise-enhancement study: test error against B_eff, the alpha sweep (test error
against alpha at B_l with small-batch SGD as a band), the measured noise factor against alpha, and
train-loss and test-error curves with seed bands against steps and samples. Error bars are mean +- s.e.
over seeds; diverged seeds are red crosses; legends >= 8 pt (:mod:`nnphys.studies._kit`).

Layout: one row per task and one column per budget (or x axis), so a figure is two panels wide and
fits the report's width at full size (labels stay >= 8 pt on screen, :data:`nnphys.studies._kit.REPORT_WIDTH_IN`).
Legends and titles use the paper's words (small-batch SGD, large-batch SGD, noise enhancement) and
the data sets' names, never the study's arm codes (S, L, NE, L2, S_half) or task codes (T1, T2s).
:data:`FIGURE_CLAIMS` names the claims each figure illustrates."""

from __future__ import annotations

import math
import warnings

import numpy as np

from nnphys.noise_enhancement import ne_covariance_factor
from nnphys.studies import _kit as K
from nnphys.studies.noise_enhancement._cells import BUDGETS, cell_table, ne_key, train_jobs
from nnphys.studies.noise_enhancement.spec import TASK_LABEL
from nnphys.studies.base import Figure, Result

FIGURE_CLAIMS = {"test_error_vs_beff": ("C5", "C6", "C8", "C9"), "alpha_sweep": ("C4", "C6"),
                 "noise_factor_vs_alpha": ("C1", "C2"), "train_loss_curves": ("C3", "C7", "C8"),
                 "test_error_curves": ("C4", "C5", "C8")}

# the data sets in the paper's / the literature's words (the spec's TASK_LABEL carries our codes T1-T3)
PAPER_TASK = {"digits": "digits (8×8)", "mnist1d": "MNIST-1D", "mnist1d_small": "MNIST-1D (small N)",
              "depth_locality": "k-local regression", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
PAPER_BUDGET = {"steps": "equal steps", "epochs": "equal gradient evaluations"}


def arm_label(arm: str, spec, alpha: float | None = None) -> str:
    """An arm in the paper's words with its batch size (no internal code)."""
    bs, bl = spec.batch_small, spec.batch_large
    return {"S": f"small-batch SGD (B={bs})", "S_half": f"small-batch SGD (B={max(1, bs // 2)})",
            "S_double": f"small-batch SGD (B={2 * bs})",
            "L": f"large-batch SGD (B={bl})", "L2": f"large-batch SGD (B={2 * bl})",
            "LS": f"large-batch SGD, scaled learning rate (B={bl})",
            "NE": f"noise enhancement (B={bl}" + (f", α={alpha:.3g})" if alpha is not None else ")")}[arm]


def task_name(t: str, task_label: dict[str, str] | None = None) -> str:
    """The data set's name (``task_label`` only for tasks this module does not know)."""
    return PAPER_TASK.get(t) or (task_label or {}).get(t, t)


def figures(spec, results: list[Result]) -> list[Figure]:
    """Test error against B_eff, the alpha sweep, the measured noise factor and the train-loss
    curves with seed bands, each linked to the claims it illustrates."""
    return K.link_claims(draw(spec, results, TASK_LABEL), FIGURE_CLAIMS)


def _curves(spec, r: Result, lr: float | None, alpha: float | None,
            key: str = "train_loss") -> tuple[np.ndarray, np.ndarray] | None:
    """``(steps, arrays[key] (n_seeds, n_eval))`` of one job's members at ``lr`` (NE: ``alpha``; LS: no
    warmup); None when the job stored no such curve."""
    arr = r.arrays or {}
    if key not in arr or "eval_steps" not in arr:
        return None
    sel = [k for k, mi in enumerate(r.metrics["members"]) if mi["lr"] == lr and not mi["warmup_steps"]
           and (alpha is None or abs(mi["alpha"] - alpha) < 1e-9)]
    return (arr["eval_steps"], arr[key][sel]) if sel else None


def _finish(ax, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
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


PANEL_W, PANEL_H = 4.6, 3.3  # inches: two panels side by side fit the report's width at full size


def _legend_wanted(ax, first: bool) -> bool:
    """A legend in the first panel, and in any other panel with an entry the first may lack
    (diverged seeds)."""
    return first or any(lab.startswith("diverged") for lab in ax.get_legend_handles_labels()[1])


def cell_name(spec, c: dict, task_label=None) -> str:
    """A cell's title: the data set's name, and its learning rate when each eta is a cell."""
    return task_name(c["task"], task_label) + (f", η={c['lr']:g}" if spec.lr_design == "cells" else "")


def _grid(spec, table, task_label, cell, xlabel: str):
    """One panel per (cell row, budget column), drawn by ``cell(ax, row)``."""
    fig, axes = K.subplots(len(table), len(BUDGETS), width=PANEL_W, height=PANEL_H)
    for i, c in enumerate(table.values()):
        for j, bud in enumerate(BUDGETS):
            ax = axes[i * len(BUDGETS) + j]
            cell(ax, c[bud])
            _finish(ax, xlabel, "test MSE" if c["task"] == "depth_locality" else "test error",
                    f"{cell_name(spec, c, task_label)}, {PAPER_BUDGET[bud]}", legend=_legend_wanted(ax, i == 0 and j == 0))
    return fig


def _eta_grid(spec, table, task_label, cell, xlabel: str):
    """The eta x alpha layout: one row per (task, budget), one column per eta, drawn by ``cell(ax, row)``;
    the y axis shared along a row, so the etas compare at a glance."""
    tasks = list(dict.fromkeys(c["task"] for c in table.values()))
    etas = sorted({c["lr"] for c in table.values()})
    fig, axes = K.subplots(len(tasks) * len(BUDGETS), len(etas), width=PANEL_W * 0.75, height=PANEL_H)
    for i, (t, bud) in enumerate((t, b) for t in tasks for b in BUDGETS):
        lo, hi = math.inf, -math.inf
        for j, eta in enumerate(etas):
            ax = axes[i * len(etas) + j]
            c = next((c for c in table.values() if c["task"] == t and c["lr"] == eta), None)
            if c is None:
                continue
            cell(ax, c[bud])
            _finish(ax, xlabel, "test error" if j == 0 else "", f"{task_name(t, task_label)}, η={eta:g}\n{PAPER_BUDGET[bud]}",
                    legend=_legend_wanted(ax, i == 0 and j == 0))
            y0, y1 = ax.get_ylim()
            lo, hi = min(lo, y0), max(hi, y1)
        if math.isfinite(lo):
            for j in range(len(etas)):
                axes[i * len(etas) + j].set_ylim(lo, hi)
    return fig


def draw(spec, results: list[Result], task_label: dict[str, str]) -> list[Figure]:
    figs: list[Figure] = []
    table = cell_table(spec, results)
    bs, bl = spec.batch_small, spec.batch_large
    beff = {a: bl / ne_covariance_factor(a) for a in spec.ne_alphas}

    def vs_beff(ax, row):
        sgd = [(b, row[a]) for a, b in (("S_half", max(1, bs // 2)), ("S", bs), ("S_double", 2 * bs), ("L", bl),
                                        ("L2", 2 * bl)) if row.get(a)]
        ne = [(beff[a], row[ne_key(a)]) for a in spec.ne_alphas if row.get(ne_key(a))]
        for pts, ls, lab in ((sgd, "-", "SGD at B = " + ", ".join(f"{b:g}" for b, _ in sgd)),
                             (ne, "--", f"noise enhancement at B={bl} (x: B_eff)")):
            if pts:
                K.errorbar(ax, [b for b, _ in pts], [c["mean"] for _, c in pts], [c["se"] for _, c in pts], ls=ls, label=lab)
        _mark_dead(ax, sgd + ne)
        K.log_ticks(ax, [b for b, _ in sgd] + [round(v, 1) for v in beff.values()])

    if spec.lr_design == "cells":
        figs.append(Figure("test_error_vs_beff", _eta_grid(spec, table, task_label, vs_beff, "effective batch size B_eff"),
                           "The η × α experiment: final test error (mean ± s.e. over the seeds that did not diverge) "
                           "against the effective batch size, plain SGD at every batch size run (solid) and noise "
                           "enhancement at B_l with B_eff = B_l/f(α) (dashed) on one axis; one column per learning rate η, "
                           "one row per data set and budget (equal steps; equal gradient evaluations, NE and 2B_l "
                           "counting 2B). Large batch + NE beats small batch where a dashed point lies below every solid "
                           "one. Red crosses: configurations with diverged seeds."))
    else:
        figs.append(Figure("test_error_vs_beff", _grid(spec, table, task_label, vs_beff, "effective batch size B_eff"),
                           "Final test error (mean ± s.e. over the seeds that did not diverge) against the effective batch size: SGD at "
                           "B_s/2 (when run), B_s, B_l, 2B_l "
                           "and noise enhancement (NE) at B_l with B_eff = B_l/f(alpha); one row per data set; left: equal "
                           "number of steps, right: equal gradient evaluations "
                           "(NE and 2B_l count 2B). Red crosses: configurations with diverged seeds."))

    def sweep(ax, row):
        pts = [(a, c) for a, c in [(0.0, row["L"])] + [(a, row[ne_key(a)]) for a in spec.ne_alphas] if c]
        if pts:
            K.errorbar(ax, [a for a, _ in pts], [c["mean"] for _, c in pts], [c["se"] for _, c in pts],
                       label=f"large-batch SGD (α=0) and noise enhancement, B={bl}")
        s = row.get("S")
        if s and s["n"]:
            se = s["se"] if math.isfinite(s["se"]) else 0.0
            K.band(ax, [0.0, max(spec.ne_alphas + [1.0])], [s["mean"] - se] * 2, [s["mean"] + se] * 2, color="C1",
                   label=f"small-batch SGD (B={bs}) ± s.e.")
            ax.axhline(s["mean"], color="C1", lw=1)
        _mark_dead(ax, pts, counts=True)
        ax.axvline(spec.match_alpha, color="gray", ls=":", lw=1)

    figs.append(Figure("alpha_sweep", _grid(spec, table, task_label, sweep, "noise strength α (dotted: α matching B_s)"),
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
                           label=f"{task_name(r.metrics['task'], task_label)} (N={r.metrics['n']})")
        ax.plot([a["alpha"] for a in pa], [a["theory"] for a in pa], "_", ms=12, color=line[0].get_color())
    for r in K.by_kind(results).get("toy", []):
        for mode, res in r.metrics["modes"].items():
            ax.plot([a["alpha"] for a in res["alphas"]], [a["ratio"] for a in res["alphas"]], "x", label=f"toy model ({mode} batches)")
    _finish(ax, "noise strength α", "tr Cov[g_NE] / tr Cov[g_B]", "noise factor of noise enhancement")
    figs.append(Figure("noise_factor_vs_alpha", fig,
                       "Measured noise factor tr Cov[g_NE] / tr Cov[g_B] (99% bootstrap CI) against alpha. Curve: "
                       "f(alpha) = 1 + 2 alpha + 2 alpha^2; horizontal ticks: each probe's theory value (split mode adds "
                       "2 alpha (1 + alpha) B/(N - B))."))
    # 4. train-loss and test-error curves with seed bands, against steps and samples
    for key, name, caption in (
            ("train_loss", "train_loss_curves",
             "Train loss (mean over seeds, band ± s.e.) against optimizer steps (left) and samples processed "
             "(right), one row per data set; noise enhancement at the α matching B_s should follow small-batch "
             "SGD against steps (the B_eff equivalence)."),
            ("test_error", "test_error_curves",
             "Test error (test MSE for k-local regression) over training, mean over seeds with a ± s.e. band, "
             "against optimizer steps (left) and samples processed (right), one row per data set, at each "
             "arm's selected learning rate; noise enhancement at the α matching B_s. A seed that diverged "
             "drops out of the mean from its divergence on.")):
        fig = _curve_grid(spec, results, table, task_label, key)
        if fig is not None:
            figs.append(Figure(name, fig, caption))
    return figs


ARM_COLOR = {"S": "C1", "S_half": "C3", "S_double": "C6", "L": "C0", "L2": "C4", "LS": "C5", "NE": "C2"}


def _curve_grid(spec, results: list[Result], table, task_label, key: str):
    """One row per task, columns: against steps, against samples; None when no job stored ``key``."""
    drawn = False
    fig, axes = K.subplots(len(table), 2, width=PANEL_W, height=PANEL_H)
    ylabel = {"train_loss": "train loss", "test_error": "test error"}[key]
    for i, c in enumerate(table.values()):
        t, lr = c["task"], c["lr"]
        for arm in spec.arms:
            for r in train_jobs(results, t, arm):
                alpha = spec.match_alpha if arm == "NE" else None
                cs = _curves(spec, r, lr, alpha, key)
                if cs is None:
                    continue
                steps, y = cs
                with warnings.catch_warnings():  # an evaluation where every selected member diverged
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, se = np.nanmean(y, 0), np.nanstd(y, 0, ddof=1) / np.sqrt(np.sum(np.isfinite(y), 0))
                lab = arm_label(arm, spec, alpha)
                for j, x in enumerate((steps, steps * r.params["samples_per_step"])):
                    ax = axes[i * 2 + j]
                    (ln,) = ax.plot(x, mean, label=lab, color=ARM_COLOR.get(arm))
                    lo = np.clip(mean - se, 1e-12, None) if key == "train_loss" else mean - se
                    K.band(ax, x, lo, mean + se, color=ln.get_color())
                    drawn = True
        for j, xl in enumerate(("optimizer steps", "samples processed (gradient evaluations)")):
            ax = axes[i * 2 + j]
            if key == "train_loss":
                ax.set_yscale("log")
            _finish(ax, xl, "test MSE" if key == "test_error" and t == "depth_locality" else ylabel,
                    cell_name(spec, c, task_label), legend=i == 0 and j == 0)
    if not drawn:
        K.close(fig)
        return None
    return fig
