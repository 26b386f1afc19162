"""Figures of the minibatch-noise study: 95% CIs over chains (or seeds) on every
Monte Carlo point, chains that diverged counted and marked, legends >= 8 pt (:mod:`nnphys.studies._kit`).

- ``sigma_loss_vs_lr``: 1-D Σ and the losses up to the stability edge (C2);
- ``sigma_rows``: the rows of the guide's checklist, theory against Monte Carlo (C2, C10);
- ``tail_exponent``: Hill against Kesten and the paper's β (C9);
- ``noise_vs_loss``: 𝒩 against L per seed (C3); ``decoupling_spectra``: coupled vs decoupled (C12);
- ``fixed_ratio_scaling``: Σ at fixed λ/S (C8);
- ``stability_edge``: the isotropic edge 2S/(a(D+S+1)) against D per S, bisected and closed form (C4);
- ``optimal_weight_decay``: the exact 1-D test loss against γ with γ* marked, and Monte Carlo at γ* (C5);
- ``fig1_width``: the paper's Fig. 1 left on digits, first-epoch loss variance and divergence fraction
  against width, fixed λ and λ ∝ 1/width (C15, C15f);
- ``fig1_weight_decay``: the paper's Fig. 1 right on digits, test loss and error against γ (C16).

Legends use the paper's words (the checklist rows are named by their settings, not by their codes).
"""

from __future__ import annotations

import numpy as np

from nnphys import linreg as LR
from nnphys.studies._shared.digits_mlp import plot_decoupling, probes_present
from nnphys.studies import _kit
from nnphys.studies.base import Figure, Result
from nnphys.studies.minibatch_noise.claims import LOGVAR_FLOOR, gamma_star, instability, logvar_cap
from nnphys.studies.minibatch_noise.spec import ONLINE_CASES


def row_label(case: str) -> str:
    """A checklist row in the paper's words: its setting, not its code."""
    c = ONLINE_CASES.get(case)
    if c is None:
        return case
    D = len(c["A"])
    what = ("damped Newton" if c.get("newton") else "input noise" if "B_input" in c
            else f"L2, γ = {c['gamma']:g}" if "gamma" in c else f"momentum μ = {c['mu']:g}" if c.get("mu") else "label noise")
    return f"{D}-D {what}, λ = {c['lam']:g}, S = {c['S']}"


def figures(spec, results: list[Result]) -> list[Figure]:
    R = _kit.by_kind(results)
    figs: list[Figure] = []
    grids = [r.metrics for r in R.get("grid", [])]
    if grids:
        figs.append(_grid(spec, grids))
    online = {r.metrics["case"]: r.metrics for r in R.get("online", [])}
    if online:
        fig, (ax,) = _kit.subplots(width=5.0, height=4.0)
        for c, m in online.items():
            th = np.diag(np.asarray(m["theory"]))
            _kit.errorbar(ax, th, m["sim_diag"], m["sim_se"], z=1.96, ls="none", label=row_label(c))
        diag = np.concatenate([np.diag(np.asarray(m["theory"])) for m in online.values()])
        lim = [diag.min() * 0.8, diag.max() * 1.2]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="theory Σ_ii", ylabel="SGD Monte Carlo Σ_ii",
               title="checklist rows: theory vs simulation")
        _kit.legend(ax)
        figs.append(Figure("sigma_rows", fig, "Diagonal of Σ, closed forms vs Monte Carlo (95% CI over chains)",
                           claims=("C2",)))
    if "tail" in R:
        rows = R["tail"][0].metrics["rows"]
        fig, (ax,) = _kit.subplots()
        S = np.array([r["S"] for r in rows])
        _kit.errorbar(ax, S, [r["hill"] for r in rows], [r["hill_se"] for r in rows], z=1.96, ls="none",
                      label="Hill (MC), 95% CI over 5 chain groups")
        ax.plot(S, [r["kesten"] for r in rows], "s-", label="Kesten index (exact)")
        ax.plot(S, [r["paper"] for r in rows], "--", label="2S/(aλ) - S (paper)")
        ax.plot(S, [r["continuous"] for r in rows], ":", label="2S/(aλ) + 1 (continuous)")
        ax.set_xticks(S)
        ax.set(xlabel="batch size S", ylabel="tail index β", title="1-D tail at aλ = 1")
        _kit.legend(ax)
        figs.append(Figure("tail_exponent", fig, "Tail index of the stationary law vs S: the discrete-time tail (Hill, "
                                                 "Kesten) is heavier than the continuous one", claims=("C9", "C9k")))
    mlps = sorted(R.get("mlp", []), key=lambda r: r.params.get("member", 0))
    if mlps:
        figs += _mlp(mlps)
    if "scaling" in R:
        figs.append(_scaling(R["scaling"][0].metrics))
    if "edge" in R:
        figs.append(_edge(R["edge"][0].metrics))
    if "l2" in R:
        figs.append(_l2(R["l2"][0].metrics))
    if "width" in R:
        figs.append(_fig1_width(sorted((r.metrics for r in R["width"]), key=lambda m: m["width"])))
    if "logreg" in R:
        figs.append(_fig1_gamma(R["logreg"][0].metrics))
    return figs


def _edge(m) -> Figure:
    fig, (ax,) = _kit.subplots(width=4.6, height=3.6)
    tab = m["table"]
    for i, S in enumerate(sorted({t["S"] for t in tab})):
        rows = sorted((t for t in tab if t["S"] == S), key=lambda t: t["D"])
        D = np.array([t["D"] for t in rows], float)
        Df = np.geomspace(D.min(), D.max(), 100)
        ax.plot(Df, 2 * S / (Df + S + 1), "-", color=f"C{i}", lw=1, label=f"S = {S}")
        ax.plot(D, [t["bisect"] for t in rows], "o", mfc="none", color=f"C{i}")
    ax.plot([], [], "k-", lw=1, label="closed form 2S/(a(D+S+1))")
    ax.plot([], [], "ko", mfc="none", label="exact oracle edge (bisected)")
    _kit.log_ticks(ax, sorted({t["D"] for t in tab}))
    ax.set(yscale="log", xlabel="dimension D", ylabel="maximal stable λ (a = 1)", title="the stability edge falls as S/D")
    _kit.legend(ax, loc="lower left")
    return Figure("stability_edge", fig, "The maximal stable learning rate of isotropic regression: the oracle's "
                                         "bisected edge against the closed form 2S/(a(D+S+1))", claims=("C4",))


def _l2(m) -> Figure:
    rows = m["rows"]
    ncol = min(3, len(rows))
    nrow = -(-len(rows) // ncol)
    fig, axes = _kit.subplots(nrow, ncol, width=3.3, height=2.7)
    for ax, r in zip(axes, rows):
        lam, S, gs = r["lam"], r["S"], r["gamma_star"]
        centre = gs if np.isfinite(gs) else 0.0
        g = np.linspace(min(centre, 0) - 0.5, max(centre, 0) + 0.5, 400)
        L = np.array([LR.l2_test_loss_1d(1.0, v, 1.0, lam, S) for v in g])
        L = np.where(np.isfinite(L) & (L >= 0), L, np.nan)
        ax.plot(g, L, "C0-", lw=1, label="exact L_test(γ)")
        if np.isfinite(gs):
            ax.plot([gs], [r["L_star"]], "o", color="C1", ms=5, label=f"γ* = {gs if abs(gs) > 1e-9 else 0.0:.3g}")
            if "sim_L_star" in r and np.all(np.isfinite(r["sim_L_star"])):
                beta = r.get("tail_beta", float("nan"))
                _kit.errorbar(ax, [gs], [r["sim_L_star"][0]], [r["sim_L_star"][1]], z=1.96, marker="s", mfc="none",
                              color="C2", ls="none", label=f"SGD at γ*, 95% CI (tail index {beta:.2g})")
        else:
            ax.text(0.5, 0.5, "γ* not finite (no stable optimum)", transform=ax.transAxes, ha="center")
        ax.axvline(0, color="grey", lw=0.8)
        fin = L[np.isfinite(L)]
        if fin.size:
            ref = max(float(np.nanmin(fin)), float(r["L_star"]) if np.isfinite(r["L_star"]) else 0.0)
            ax.set_ylim(0, max(4 * ref, float(np.nanpercentile(fin, 30)), 1e-3))
        pred = "γ* < 0 predicted" if r["predicted_negative"] else "γ* ≥ 0 predicted"
        ax.set(xlabel="weight decay γ", ylabel="test loss", title=f"λ={lam:g}, S={S}: {pred}")
        _kit.legend(ax)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    return Figure("optimal_weight_decay", fig, "1-D regression with weight decay (a = u = 1): the exact test loss "
                                               "against γ; at large λ the optimum γ* is negative, where λa >= 2S/(S+2) "
                                               "and λa > 1 (the paper's §6)", claims=("C5",))


def _ci(y: np.ndarray) -> tuple[float, float]:
    y = np.asarray(y, float)
    return float(np.mean(y)), (float(np.std(y, ddof=1) / np.sqrt(len(y))) if len(y) > 1 else 0.0)


def _fig1_width(ms: list[dict]) -> Figure:
    fig, (ax1, ax2) = _kit.subplots(1, 2, width=4.2, height=3.4)
    widths = np.array([m["width"] for m in ms], float)
    cap = logvar_cap(ms[0]["div_factor"])
    lr0 = ms[0]["arms"]["fixed"]["lr"]
    names = {"fixed": f"fixed λ = {lr0:g}", "scaled": f"λ ∝ 1/width ({lr0:g} at width {ms[0]['width']})"}
    for i, arm in enumerate(("fixed", "scaled")):
        ys = [instability(m["arms"][arm], m["div_factor"]) for m in ms]
        mean_se = np.array([_ci(y) for y in ys])
        _kit.errorbar(ax1, widths * (1.03 if i else 0.97), mean_se[:, 0], mean_se[:, 1], z=1.96, color=f"C{i}",
                      label=names[arm] + " (mean, 95% CI)")
        for w, y in zip(widths, ys):
            ax1.plot(np.full(len(y), w * (1.03 if i else 0.97)), y, ".", color=f"C{i}", alpha=0.35, ms=3)
        frac = [np.mean(m["arms"][arm]["diverged"]) for m in ms]
        ax2.plot(widths, frac, "o-", color=f"C{i}", label=names[arm])
    ax1.axhline(cap, color="red", lw=0.8, ls=":", label="diverged (counted at the cap)")
    _kit.log_ticks(ax1, widths)
    _kit.log_ticks(ax2, widths)
    ax1.set(xlabel="hidden width d", ylabel="log10 (first-epoch loss variance / L0²)",
            title="two-layer tanh net, digits", ylim=(max(LOGVAR_FLOOR, ax1.get_ylim()[0]), cap + 0.5))
    ax2.set(xlabel="hidden width d", ylabel="fraction of seeds diverged in epoch 1", ylim=(-0.05, 1.05),
            title=f"S = {ms[0]['batch']}, {len(ms[0]['arms']['fixed']['var'])} seeds")
    _kit.legend(ax1, fontsize=7)
    _kit.legend(ax2, fontsize=7)
    return Figure("fig1_width", fig, "The paper's Fig. 1 (left) on digits: at a fixed learning rate the first-epoch "
                                     "variance of the training loss explodes as the width grows (λ_max ∝ S/D); with "
                                     "λ ∝ 1/width it stays flat. Dots: seeds", claims=("C15", "C15f"))


def _fig1_gamma(m) -> Figure:
    fig, (ax1, ax2) = _kit.subplots(1, 2, width=4.2, height=3.4)
    g = np.asarray(m["gammas"], float)
    for ax, key, what in ((ax1, "test_loss", "test cross-entropy"), (ax2, "test_err", "test error")):
        v = np.asarray(m[key], float)
        ok = np.isfinite(v)
        mean = np.array([np.mean(r[k]) if k.any() else np.nan for r, k in zip(v, ok)])
        se = np.array([np.std(r[k], ddof=1) / np.sqrt(k.sum()) if k.sum() > 1 else 0.0 for r, k in zip(v, ok)])
        _kit.errorbar(ax, g, mean, se, z=1.96, label=f"λ = {m['lr']:g}, {m['epochs']} epochs (mean, 95% CI)")
        if "control" in m:
            cv = np.asarray(m["control"][key], float)
            cm = np.array([np.mean(r[np.isfinite(r)]) if np.isfinite(r).any() else np.nan for r in cv])
            ax.plot(g, cm, "s--", color="C2", ms=3, lw=0.8,
                    label=f"control λ = {m['control']['lr']:g}, {m['control']['epochs']} epochs (same λ·steps)")
        bad = ~ok.all(1)
        if bad.any():
            _kit.mark_diverged(ax, g[bad], np.full(bad.sum(), np.nanmax(mean[np.isfinite(mean)])),
                               label="some seeds not finite")
        gs = gamma_star(m["gammas"], m[key])
        for x in np.unique(gs):
            ax.axvline(x, color="C1", lw=0.8, alpha=0.3 + 0.7 * np.mean(gs == x))
        ax.axvline(0, color="k", lw=0.8, ls="--", label="γ = 0")
        ax.plot([], [], color="C1", lw=0.8, label="per-seed optimum γ*")
        ax.set_xscale("symlog", linthresh=float(np.min(np.abs(g[g != 0]))))
        ax.set(xlabel="weight decay γ", ylabel=what, yscale="log" if key == "test_loss" else "linear",
               title=f"logistic regression, S = {m['batch']}")
        ax.tick_params(axis="x", labelrotation=45)
        _kit.legend(ax, fontsize=7)
    return Figure("fig1_weight_decay", fig, "The paper's Fig. 1 (right) on digits: SGD logistic regression at a large "
                                            "learning rate performs best at a negative weight decay (lines: each seed's "
                                            "optimum on the γ grid; dashed: a small λ trained for the same λ·steps)",
                  claims=("C16", "C16c"))


def _grid(spec, grids) -> Figure:
    fig, (ax1, ax2) = _kit.subplots(1, 2, width=5.0, height=4.0)
    for g in grids:
        rows = g["rows"]
        lam = np.array([r["lam"] for r in rows])
        fine = np.linspace(0.02, 0.995, 200) * g["lam_max"]
        ax1.plot(fine, [LR.sigma_1d(g["a"], v, g["S"], spec.sigma2) for v in fine], label=f"exact, S={g['S']}")
        ax1.plot(fine, fine * spec.sigma2 / (2 * g["S"]), "--", label=f"continuous, S={g['S']}")
        _kit.errorbar(ax1, lam, [r["sim"][0] for r in rows], [r["sim"][1] for r in rows], z=1.96, ls="none",
                      label=f"SGD MC, S={g['S']} (95% CI)")
        dv = np.array([r["n_diverged"] > 0 for r in rows])
        if dv.any():
            _kit.mark_diverged(ax1, lam[dv], [rows[i]["theory"] for i in np.flatnonzero(dv)],
                               label="some chains diverged (excluded)")
        ax1.axvline(g["lam_max"], color="grey", lw=0.8)
        x = fine / g["S"]
        ax2.plot(x, [LR.train_loss(np.eye(1) * g["a"], v, g["S"], spec.sigma2) for v in fine], label=f"L_train theory, S={g['S']}")
        ax2.plot(x, [LR.test_loss(np.eye(1) * g["a"], v, g["S"], spec.sigma2) for v in fine], label=f"L_test theory, S={g['S']}")
        _kit.errorbar(ax2, lam / g["S"], [r["sim_train"][0] for r in rows], [r["sim_train"][1] for r in rows], z=1.96,
                      ls="none", label="L_train MC (95% CI)")
        _kit.errorbar(ax2, lam / g["S"], [r["sim_test"][0] for r in rows], [r["sim_test"][1] for r in rows], z=1.96,
                      ls="none", marker="s", label="L_test MC (95% CI)")
    ax1.set(xlabel="λ", ylabel="Σ", yscale="log", title="1-D stationary fluctuation (a = 1)")
    ax2.set(xlabel="λ/S", ylabel="loss", yscale="log", title="training / test loss at stationarity")
    _kit.legend(ax1)
    _kit.legend(ax2)
    return Figure("sigma_loss_vs_lr", fig, "Exact theory (Thm 2, [paper]/[derived]) vs SGD Monte Carlo "
                                           "(95% CI over chains) up to the stability edge (grey)", claims=("C2",))


def _mlp(mlps) -> list[Figure]:
    fig, (ax,) = _kit.subplots(width=5.0, height=4.0)
    for r in mlps:
        ax.loglog(r.metrics["loss"], r.metrics["trace_cov"], ".-", ms=3, label=f"seed #{r.params.get('member', 0)}")
    lo = min(min(r.metrics["loss"]) for r in mlps)
    hi = max(max(r.metrics["loss"]) for r in mlps)
    m0 = mlps[0].metrics
    xs = np.array([lo, hi])
    ax.loglog(xs, xs * m0["trace_cov"][-1] / m0["loss"][-1], "k--", lw=0.8, label="slope 1")
    ax.set(xlabel="training loss L", ylabel=r"$\mathcal{N} = \mathrm{tr}\, C_1$", title="noise strength vs loss (digits MLP)")
    _kit.legend(ax)
    out = [Figure("noise_vs_loss", fig, "C3: gradient-noise trace against training loss every epoch, one curve per "
                                        "seed (the seed spread is the uncertainty of the slope)", claims=("C3",))]
    runs = [r.metrics for r in mlps]
    probes, n = probes_present(runs), len(runs[0]["checkpoints"])
    fig, axes = _kit.subplots(len(probes), n, width=3.8, height=3.6)
    for i, p in enumerate(probes):
        plot_decoupling(list(axes[i * n:(i + 1) * n]), runs, [f"seed #{r.params.get('member', 0)}" for r in mlps],
                        probe=p)
    for a in axes:
        _tidy_log_ticks(a)
        _kit.legend(a, fontsize=7)
    out.append(Figure("decoupling_spectra", fig, "C12: top eigenvalues of (1/N) sum l C_f (coupled) against "
                                                 "the decoupled L (1/N) sum C_f (Gauss-Newton, top row; decides the "
                                                 "verdict) and L lambda(H) (full Hessian, bottom row; evidence), per "
                                                 "seed and checkpoint epoch; shaded: within x1.5", claims=("C12",)))
    return out


def _tidy_log_ticks(ax) -> None:
    """Three labelled ticks per log axis and no minor labels: on a range under a decade matplotlib
    labels the minor ticks, and their labels overlap at the report's width."""
    from matplotlib.ticker import NullFormatter, NullLocator

    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log" or not (lim[0] > 0 and lim[1] > lim[0]):
            continue
        ticks = np.geomspace(lim[0], lim[1], 5)[1:-1]
        axis.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())


def _scaling(m) -> Figure:
    fig, (ax,) = _kit.subplots()
    rows = [r for r in m["rows"] if "sim" in r]
    _kit.errorbar(ax, [r["S"] for r in rows], [r["sim"][0] for r in rows], [r["sim"][1] for r in rows], z=1.96,
                  ls="none", label="SGD MC (95% CI)")
    Sf = np.linspace(1, m["S_div"] * 0.99, 200)
    ax.plot(Sf, m["c"] / (2 - m["c"] * (Sf + 2)), label="exact 1-D")
    ax.axhline(m["c"] / 2, ls="--", color="k", label="linear scaling (cσ²/2)")
    ax.axvline(m["S_div"], color="grey", lw=0.8)
    ax.set(xlabel="S (λ = cS)", ylabel="Σ", yscale="log", title=f"fixed λ/S = {m['c']}")
    _kit.legend(ax)
    return Figure("fixed_ratio_scaling", fig, "Σ at fixed λ/S: the linear scaling rule fails", claims=("C8",))
