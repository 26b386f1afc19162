"""Figures of study ``depth-locality`` (drawn with the study kit: error bars of +-1 s.e. over seeds,
diverged runs as marked points, legends >= 8 pt), each linked to the claims it shows."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnphys.studies import _kit
from nnphys.studies._kit import Missing, mean_se
from nnphys.studies.base import Figure, Result
from nnphys.studies.depth_locality.cells import Runs, depth_cell, runs_of
from nnphys.studies.depth_locality.claims import CLAIMS
from nnphys.studies.depth_locality.controls import _ic_kernel, _trivials, feature_rows, width_rows
from nnphys.studies.depth_locality.spec import TARGETS, Spec

FIGURE_CLAIMS = {"error_vs_depth": ("C1", "C2", "C3", "C4", "C8"), "error_vs_n": ("C1", "C2"),
                 "feature_learning": ("C6",), "width_sweep": ("C6W",), "c5_ntk_blindness": ("C5",)}

_COLORS = {"local": "tab:blue", "global": "tab:red"}
# the input laws of C5 in words; legends say "k-local / k-global target" and "network / NTK regression"
# (the papers' words) rather than the study's codes
_LAW = {"cube": "on {±1}^d", "gauss": "Gaussian"}


def _diverged_depths(runs: Runs, g: str, v: str, t: str, k: int, n: int, depths: list[int]) -> list[int]:
    """Depths whose job diverged entirely or has a diverged seed (drawn as marked points)."""
    out = []
    for L in depths:
        r = runs.net.get((g, v, t, k, n, L))
        if (g, v, t, k, n, L) in runs.net_diverged or (r is not None and any(r.metrics["diverged"])):
            out.append(L)
    return out


def _depth_panel(ax, runs: Runs, cell: dict[str, Any], spec) -> bool:
    """One (main cell, k, N) panel; True when it marked diverged runs."""
    k, n, v = cell["k"], cell["N"], cell.get("variant", "main")
    top = 0.0
    for t in TARGETS:
        st = [runs.stat(("main", v, t, k, n, L)) for L in spec.depths]
        m = np.array([s[0] for s in st])
        top = max(top, np.nanmax(m, initial=0.0))
        _kit.errorbar(ax, spec.depths, m, [s[1] for s in st], color=_COLORS[t], label=f"network, k-{t} target")
    kc = runs.kernel_curves("main", v, k, n)
    if kc is not None:
        for t in TARGETS:
            _kit.errorbar(ax, kc["depths"], kc[f"ntk_{t}"]["mean"], kc[f"ntk_{t}"]["se"], ls="--", marker="s", ms=3,
                          color=_COLORS[t], alpha=0.6, label=f"NTK regression, k-{t} target")
    y_mark = 1.05 * max(top, 1e-3)
    marked = False
    for t in TARGETS:
        dv = _diverged_depths(runs, "main", v, t, k, n, spec.depths)
        _kit.mark_diverged(ax, dv, [y_mark] * len(dv), label=f"diverged seed(s), k-{t} target" if dv else None)
        marked = marked or bool(dv)
    state = "" if cell["informative"] else (" (uninformative)" if cell["informative"] is False else " (missing)")
    sign = cell.get("kind", spec.target_kind) == "sign"
    ax.set_title(f"{'' if v == 'main' else v + ', '}k={k}, N={n}{state}", fontsize=8 if v != "main" else None)
    ax.set_xlabel("depth L")
    ax.set_ylabel("test classification error" if sign else "normalised test MSE")
    return marked


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """Test error vs depth (nets vs NTK, local vs global), vs N where >= 2 N per k ran, first-layer
    movement vs depth (C6 evidence) and C5 blindness; error bars are +-1 s.e. over seeds."""
    runs = runs_of(spec, results)
    return _kit.link_claims(_draw(spec, runs, figure_cells(runs, spec)), FIGURE_CLAIMS)


def figure_cells(runs: Runs, spec: Spec) -> list[dict[str, Any]]:
    """Per main cell (variant) and (k, N): whether its C3 cell is informative (``None``: data missing)."""
    out = []
    for v, cs in spec.main_cells():
        for k in cs.active_ks():
            for n in cs.ns_for(k):
                row = {"variant": v, "kind": cs.target_kind, "k": k, "N": n}
                try:
                    c = depth_cell("C3", runs, "main", v, k, n, spec.depths[0], spec.depths[-1], CLAIMS["C3"].rule)
                    out.append({**row, "informative": bool(c.informative)})
                except Missing:
                    out.append({**row, "informative": None})
    return out


def _draw(spec: Spec, runs: Runs, cells: list[dict[str, Any]]) -> list[Figure]:
    figs: list[Figure] = []
    rows = list(dict.fromkeys((c["variant"], c["k"]) for c in cells))
    cols = max((len([c for c in cells if (c["variant"], c["k"]) == r]) for r in rows), default=1)
    fig, axes = _kit.subplots(max(len(rows), 1), cols, width=3.6, height=3.0)
    for i, rk in enumerate(rows):
        row = [c for c in cells if (c["variant"], c["k"]) == rk]
        for j in range(cols):
            ax = axes[i * cols + j]
            if j >= len(row):
                ax.set_axis_off()
                continue
            if _depth_panel(ax, runs, row[j], spec) or (i == 0 and j == 0):
                _kit.legend(ax)
    figs.append(Figure("error_vs_depth", fig,
                       f"Test error vs depth, nets (mean ± s.e. over interpolating seeds, {spec.n_seeds} seeds; red "
                       f"crosses: depths with diverged seeds) and analytic NTK regression on the same data; d={spec.d}, "
                       f"H={spec.width}, {spec.param}, " + (f"init {spec.init} (sigma_w^2={spec.sw2():.3g})."
                       if len(spec.main_cells()) == 1 else "one row per main cell (init/target kind) and k; the "
                       "sign cells give the classification error of the sign labels (d odd).")))

    # each cell's own N (a sign cell runs at its own d, where the k rule may keep other N)
    multi = [(v, k, cs.ns_for(k)) for v, cs in spec.main_cells() for k in cs.active_ks() if len(cs.ns_for(k)) >= 2]
    if multi:
        fig, axes = _kit.subplots(1, len(multi), width=3.6, height=3.0)
        for ax, (v, k, ns) in zip(axes, multi):
            for L, ls in ((spec.depths[0], "-"), (spec.depths[-1], ":")):
                for t in TARGETS:
                    st = [runs.stat(("main", v, t, k, n, L)) for n in ns]
                    _kit.errorbar(ax, ns, [s[0] for s in st], [s[1] for s in st], ls=ls, color=_COLORS[t],
                                  label=f"network, k-{t} target, depth {L}")
            _kit.log_ticks(ax, ns)
            ax.set_title(f"k={k}" if v == "main" else f"{v}, k={k}", fontsize=8 if v != "main" else None)
            ax.set_xlabel("training-set size N")
            ax.set_ylabel("test error")
            _kit.legend(ax)
        figs.append(Figure("error_vs_n", fig, "Test error vs training-set size at the smallest and largest depth "
                                               "(mean ± s.e. over seeds); only k with >= 2 N are drawn."))

    cv, _ = spec.control_cell()  # one main cell drawn (the control cell); every cell's rows are in C6's evidence
    feat = feature_rows(runs, [c for c in cells if c["variant"] == cv], spec)
    if feat:
        keys = sorted({(r["k"], r["N"]) for r in feat})
        has_kta = any(r["kta_trained"] is not None and np.isfinite(r["kta_trained"]) for r in feat)
        what = [("w1_rel_change", "||W1 - W1_0|| / ||W1_0||")] + ([("kta", "NTK-target alignment")] if has_kta else [])
        fig, axes = _kit.subplots(len(what), len(keys), width=3.4, height=2.8)
        for i, (key, ylab) in enumerate(what):
            for j, (k, n) in enumerate(keys):
                ax = axes[i * len(keys) + j]
                for t in TARGETS:
                    rr = [r for r in feat if (r["k"], r["N"], r["target"]) == (k, n, t)]
                    Ls = [r["L"] for r in rr]
                    if key == "kta":
                        _kit.errorbar(ax, Ls, [r["kta_init"] for r in rr], [r["kta_init_se"] for r in rr],
                                      color=_COLORS[t], ls=":", label=f"k-{t} target, at initialisation")
                        _kit.errorbar(ax, Ls, [r["kta_trained"] for r in rr], [r["kta_trained_se"] for r in rr],
                                      color=_COLORS[t], label=f"k-{t} target, trained")
                    else:
                        _kit.errorbar(ax, Ls, [r[key] for r in rr], [r[f"{key}_se"] for r in rr], color=_COLORS[t], label=f"k-{t} target")
                ax.set_title(f"k={k}, N={n}")
                ax.set_xlabel("depth L")
                ax.set_ylabel(ylab)
                _kit.legend(ax)
        figs.append(Figure("feature_learning", fig,
                           "C6 evidence at the informative cells: relative movement of the first-layer weights and "
                           "the kernel-target alignment of the empirical NTK (init dotted, trained solid) vs depth "
                           "(mean ± s.e. over non-diverged seeds)."))

    wrows = [r for r in width_rows(runs, spec) if r.get("ic") is not None]
    if wrows:
        ks = sorted({r["k"] for r in wrows})
        fig, axes = _kit.subplots(2, len(ks), width=4.2, height=2.8)
        cd = spec.ctrl_depths()
        for j, k in enumerate(ks):
            rr = sorted((r for r in wrows if r["k"] == k), key=lambda r: r["H"])
            n = rr[0]["N"]
            ax = axes[j]
            _kit.errorbar(ax, [r["H"] for r in rr], [r["ic"] for r in rr], [r["ic_se"] for r in rr], color="k",
                          label="network (ntk param., α = 1)")
            kr = runs.kernel.get(("width", "ntk", k, n))
            if kr is not None:
                ic_ntk = _ic_kernel(kr, cd[0], cd[-1], spec.n_seeds, _trivials(runs, "width", f"ntk_H={rr[0]['H']}", k, n, cd[0]))
                ax.axhline(float(np.mean(ic_ntk)), color="tab:gray", ls="--",
                           label="NTK regression (same σ_w², σ_b²)")
            ax.axhline(0.0, color="tab:gray", lw=0.5)
            ax.set_xscale("log", base=2)
            ax.set_title(f"k={k}, N={n}, depths {cd[0]} vs {cd[-1]}")
            ax.set_xlabel("width H")
            ax.set_ylabel("interaction contrast IC")
            _kit.legend(ax, loc="lower right")
            ax = axes[len(ks) + j]
            mv = [(r["H"], r["w1_rel_change"]) for r in rr if r.get("w1_rel_change") is not None]
            if mv:
                ax.plot([h for h, _ in mv], [m for _, m in mv], "o-", color="k")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("width H")
            ax.set_ylabel("||W1 - W1_0|| / ||W1_0||")
            ax.set_title("first-layer movement (mean over runs)")
        figs.append(Figure("width_sweep", fig,
                           "C6W: the interaction contrast IC = [glob(L_max) - glob(L_min)] - [loc(L_max) - loc(L_min)] "
                           "of ntk-parameterised nets vs width (mean ± s.e. over seeds; a diverged run at the trivial "
                           "error), the NTK's contrast dashed; below, the first-layer weights' relative movement."))

    if runs.blind:
        fig, axes = _kit.subplots(1, len(spec.blind_laws), width=3.6, height=3.0)
        for ax, law in zip(axes, spec.blind_laws):
            for k in spec.active_ks():
                rs = runs.blind.get((law, k), [])
                if not rs:
                    continue
                mse = np.concatenate([r.arrays["mse"] for r in rs], axis=0)
                for ti, (t, ls) in enumerate((("local", "-"), ("global", "--"))):
                    m, se = mean_se(mse[:, 0, :, ti])
                    _kit.errorbar(ax, rs[0].metrics["depths"], m, se, ls=ls, ms=3, label=f"k-{t} target, k={k}")
            ax.set_title(f"NTK, inputs {_LAW.get(law, law)}")
            ax.set_xlabel("depth L")
            ax.set_ylabel("test MSE")
            _kit.legend(ax)
        figs.append(Figure("c5_ntk_blindness", fig,
                           f"NTK ridgeless test MSE of k-local and k-global targets, mean ± s.e. over "
                           f"{spec.blind_datasets} data sets (d={spec.blind_d}, N={spec.blind_n})."))
    return figs


