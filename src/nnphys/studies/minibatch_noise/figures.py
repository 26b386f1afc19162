"""Figures of the minibatch-noise study: 95% CIs over chains (or seeds) on every
Monte Carlo point, chains that diverged counted and marked, legends >= 8 pt (:mod:`nnphys.studies._kit`).

- ``sigma_loss_vs_lr``: 1-D Σ and the losses up to the stability edge (C2);
- ``sigma_rows``: the rows of the guide's checklist, theory against Monte Carlo (C2, C10);
- ``tail_exponent``: Hill against Kesten and the paper's β (C9);
- ``noise_vs_loss``: 𝒩 against L per seed (C3); ``decoupling_spectra``: coupled vs decoupled (C12);
- ``fixed_ratio_scaling``: Σ at fixed λ/S (C8).
"""

from __future__ import annotations

import numpy as np

from nnphys import linreg as LR
from nnphys.studies._shared.digits_mlp import plot_decoupling, probes_present
from nnphys.studies import _kit
from nnphys.studies.base import Figure, Result


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
            _kit.errorbar(ax, th, m["sim_diag"], m["sim_se"], z=1.96, ls="none", label=c)
        diag = np.concatenate([np.diag(np.asarray(m["theory"])) for m in online.values()])
        lim = [diag.min() * 0.8, diag.max() * 1.2]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(xscale="log", yscale="log", xlabel="theory Σ_ii", ylabel="SGD Monte Carlo Σ_ii",
               title="checklist rows: theory vs simulation")
        _kit.legend(ax, ncol=2)
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
        ax.set(xlabel="batch size S", ylabel="tail index β", title="1-D tail at aλ = 1")
        _kit.legend(ax)
        figs.append(Figure("tail_exponent", fig, "Tail index of the stationary law vs S", claims=("C9",)))
    mlps = sorted(R.get("mlp", []), key=lambda r: r.params.get("member", 0))
    if mlps:
        figs += _mlp(mlps)
    if "scaling" in R:
        figs.append(_scaling(R["scaling"][0].metrics))
    return figs


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
    fig, axes = _kit.subplots(len(probes), n, width=3.4, height=3.4)
    for i, p in enumerate(probes):
        plot_decoupling(list(axes[i * n:(i + 1) * n]), runs, [f"seed #{r.params.get('member', 0)}" for r in mlps],
                        probe=p)
    for a in axes:
        _kit.legend(a)
    out.append(Figure("decoupling_spectra", fig, "C12: top eigenvalues of (1/N) sum l C_f (coupled) against "
                                                 "the decoupled L (1/N) sum C_f (Gauss-Newton, top row; decides the "
                                                 "verdict) and L lambda(H) (full Hessian, bottom row; evidence), per "
                                                 "seed and checkpoint epoch; shaded: within x1.5", claims=("C12",)))
    return out


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
