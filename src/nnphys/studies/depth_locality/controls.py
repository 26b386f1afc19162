"""The cells of claims C4-C8 and controls X2, X2K of study ``depth-locality`` (claim protocol,
``nnphys.studies.protocol``): each ``*_cells(runs, spec, rule)`` returns ``(cells, missing, evidence)``,
and :mod:`.claims` judges them with ``P.judge`` under the claim's pre-registered rule. A function raises
:class:`~nnphys.studies._kit.Missing` only when it has no data at all; missing cells are named.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnphys.studies import protocol as P
from nnphys.studies._kit import Missing, fnum, mean_se
from nnphys.studies.depth_locality.cells import (Arm, Runs, _both, _mean, _ndiv, arm, depth_cell, ntk_cell, planned,
                                                 regime)
from nnphys.studies.depth_locality.spec import ROBUST_VARIANTS, TARGETS
Cells = tuple[list[P.Cell], list[str], dict[str, Any]]


def c4_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """C4 at every main cell (variant) and (k, N) (:func:`.cells.ntk_cell`); the NTK/NNGP curves of every
    kernel job (main and the sign variant) are recorded in the evidence, with the NTK's own depth direction."""
    cells, missing, curves = [], [], []
    L0, L1 = spec.depths[0], spec.depths[-1]
    combos = []
    for v, cs in spec.main_cells():
        for k in cs.active_ks():
            for n in cs.ns_for(k):
                combos.append(("main", v, k, n))
                try:
                    cells.append(ntk_cell(runs, "main", v, k, n, L0, L1, rule,
                                          label="" if v == "main" else f"{v} k={k} N={n}"))
                except Missing as e:
                    missing.append(f"{'' if v == 'main' else v + ' '}k={k} N={n}: {e.what}")
    combos += [("robust", "sign", k, spec.ctrl_n(k)) for k in spec.active_ks() if "sign" in spec.robustness]
    for g, v, k, n in combos:
        kc = runs.kernel_curves(g, v, k, n)
        if kc is not None:
            curves.append({"variant": v, **{key: kc[key] for key in ("k", "N", "depths", "ntk_local", "ntk_global")},
                           "nngp_local_spearman": kc["nngp_local"]["spearman"],
                           "nngp_global_spearman": kc["nngp_global"]["spearman"]})
    return cells, missing, {"kernel_curves": curves, "kernel_sigma_b2": spec.kernel_sb2(), "seeds": spec.n_seeds}


def c5_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """C5 per (law, k, kernel, L): the paired per-data-set difference ``mse_loc - mse_glob`` (both
    targets on the same inputs); a cell with fewer than 200 data sets is uninformative (the guide's C5 row)."""
    cells, missing = [], []
    for law in spec.blind_laws:
        for k in spec.active_ks():
            rs = runs.blind.get((law, k), [])
            if not rs:
                missing.append(f"{law}/k={k}: no results")
                continue
            mse = np.concatenate([r.arrays["mse"] for r in rs], axis=0)  # (D, kernel, depth, target)
            D = mse.shape[0]
            room = (D >= 200, "" if D >= 200 else f"{D} < 200 data sets (§11)")  # evidence text kept as published
            for a, kern in enumerate(("ntk", "nngp")):
                for j, L in enumerate(rs[0].metrics["depths"]):
                    d = mse[:, a, j, 0] - mse[:, a, j, 1]
                    cells.append(P.cell(f"{law}/k={k}/{kern}/L={L}", P.paired(d), rule, room=room,
                                        extra={"law": law, "k": k, "kernel": kern, "L": L, "datasets": D,
                                               "mse_local": _mean(mse[:, a, j, 0]),
                                               "mse_global": _mean(mse[:, a, j, 1])}))
    return cells, missing, {"d": spec.blind_d, "N": spec.blind_n, "n_test": spec.blind_n_test,
                            "kernel_sigma_b2": spec.kernel_sb2()}


def _ic(arms: dict[tuple[str, int], Arm], L0: int, L1: int) -> np.ndarray:
    """Per-seed interaction contrast [glob(L1) - glob(L0)] - [loc(L1) - loc(L0)] (trivial units)."""
    return (arms[("global", L1)].x - arms[("global", L0)].x) - (arms[("local", L1)].x - arms[("local", L0)].x)


def _ic_kernel(kr, L0: int, L1: int, n: int, trivial: dict[str, float] | None = None) -> np.ndarray:
    """Per-seed interaction contrast of the NTK of kernel job result ``kr`` in units of each target's
    trivial error ``trivial`` (as the nets' ``_ic``; default 1, the regression targets' normalised MSE);
    zeros when absent: the kernels are blind to locality, claim C5."""
    if kr is None or L0 not in kr.metrics["depths"] or L1 not in kr.metrics["depths"]:
        return np.zeros(n)
    ds = kr.metrics["depths"]
    tr = trivial or {}
    K = {t: np.asarray(kr.metrics[f"ntk_{t}"], float) / tr.get(t, 1.0) for t in TARGETS}
    return (K["global"][:, ds.index(L1)] - K["global"][:, ds.index(L0)]) \
        - (K["local"][:, ds.index(L1)] - K["local"][:, ds.index(L0)])


def _trivials(runs: Runs, g: str, v: str, k: int, n: int, L: int) -> dict[str, float]:
    """Each target's trivial error as the nets of ``(g, v, k, n, L)`` measured it (1 where absent)."""
    out = {t: runs.trivial((g, v, t, k, n, L)) for t in TARGETS}
    return {t: x if np.isfinite(x) else 1.0 for t, x in out.items()}


def _shrink(feat: dict[tuple[str, int], Arm], lazy: dict[tuple[str, int], Arm], ic_ntk: np.ndarray,
            L0: int, L1: int, sesoi: float, flab: str, llab: str) -> tuple[P.Effect, tuple[bool, str], dict, dict]:
    """The parts of the protocol cell "the interplay shrinks from the feature-learning arm ``feat`` to the
    lazier arm ``lazy``" (C6: alpha = 1 vs alpha_max; C6W: the narrowest vs the widest ntk-param. net):
    the effect ``d_s = IC_s(feat) - IC_s(lazy)``, its room, the arms by name and the numbers of the
    evidence. A diverged ``feat`` seed and a ``lazy`` seed that diverged, exploded or missed the stopping
    rule count as ``d = 0`` (no shrink; an outcome, not data). Room: every ``feat`` run met the stopping
    rule and ``IC(feat) - IC(NTK) >= SESOI`` (an interplay to remove)."""
    ic1, ica = _ic(feat, L0, L1), _ic(lazy, L0, L1)
    dead = np.zeros(len(ic1), bool)
    for a in feat.values():
        dead |= a.diverged
    lazy_failed = np.zeros(len(ic1), bool)
    for a in lazy.values():
        lazy_failed |= a.diverged | a.unreached  # an outcome: no shrink
    d = P.itt(ic1 - ica, dead | lazy_failed, 0.0)
    feat_named = {f"{flab} {t} L={L}": a for (t, L), a in feat.items()}
    named = {**feat_named, **{f"{llab} {t} L={L}": a for (t, L), a in lazy.items()}}
    base = float(np.mean(ic1 - ic_ntk))
    ok, why = P.room(base, 0.0, 2.0, sesoi)
    room = _both(regime(feat_named, f"{flab} runs"), (ok, "" if ok else f"IC({flab}) - IC(NTK) = {base:.3g}: {why}"))
    stats = {"ic_feat": _mean(ic1), "ic_lazy": _mean(ica), "ic_ntk": _mean(ic_ntk),
             "lazy_seeds_failed": int(lazy_failed.sum()),
             "lazy_unreached": sum(int(a.unreached.sum()) for a in lazy.values()),
             "lazy_diverged": sum(int(a.diverged.sum()) for a in lazy.values())}
    return P.paired(d), room, named, stats


def _arms(runs: Runs, g: str, v: str, k: int, n: int, L0: int, L1: int) -> dict[tuple[str, int], Arm]:
    return {(t, L): arm(runs, (g, v, t, k, n, L)) for t in TARGETS for L in (L0, L1)}


def c6_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """C6 per k at the control N and depths: ``d_s = IC_s(alpha=1) - IC_s(alpha_max)`` (``_ic``,
    ``_shrink``).

    - an alpha = 1 run short of the stopping rule makes the cell uninformative (the C8 regime: the
      main nets must interpolate for there to be a feature-learning interplay to compare);
    - a lazy (alpha_max) run that diverged, exploded or did not meet the stopping rule within its cap
      is an outcome, not data (rule version 2): its seed counts as ``d = 0`` (no shrink, ITT
      at the effect level: the error-level ITT value would make a failed lazy net look perfectly lazy,
      IC = 0, i.e. support). Before, an unconverged lazy run made the cell uninformative, so lazy runs
      that never converge kept C6 silent forever instead of counting against it;
    - room: the alpha = 1 contrast must exceed the NTK's (on the same data sets; 0 when the kernel job
      is absent, by the kernels' blindness to locality, claim C5) by the SESOI: without an interplay
      there is nothing for laziness to remove.
    """
    amax = max(spec.alphas)
    if amax == 1.0:
        raise Missing("alpha > 1 (lazy) runs: alphas has only 1")
    L0, L1 = spec.ctrl_depths()[0], spec.ctrl_depths()[-1]
    cv, _ = spec.control_cell()
    cells, missing = [], []
    for k in spec.active_ks():
        n = spec.ctrl_n(k)
        try:
            a1 = _arms(runs, "main", cv, k, n, L0, L1)
            aa = _arms(runs, "lazy", f"alpha={amax:g}", k, n, L0, L1)
        except Missing as e:
            missing.append(f"k={k} N={n}: {e.what}")
            continue
        kr = runs.kernel.get(("main", cv, k, n))
        ic_ntk = _ic_kernel(kr, L0, L1, len(a1[("local", L0)].x), _trivials(runs, "main", cv, k, n, L0))
        eff, room, named, ex = _shrink(a1, aa, ic_ntk, L0, L1, rule.sesoi,
                                       "alpha=1", f"alpha={amax:g}")
        extra = {"k": k, "N": n, "L_min": L0, "L_max": L1, "alpha_max": amax, "ic_alpha1": ex["ic_feat"],
                 "ic_alpha_max": ex["ic_lazy"], "ic_ntk": ex["ic_ntk"], "kernel_job": kr is not None,
                 **{key: ex[key] for key in ("lazy_seeds_failed", "lazy_unreached", "lazy_diverged")}}
        cells.append(P.cell(f"k={k} N={n}", eff, rule, room=room, n_diverged=_ndiv(named), extra=extra))
    feat = feature_rows(runs, [{"variant": v, "k": k, "N": n, "informative": True} for v, cs in spec.main_cells()
                               for k in cs.active_ks() for n in cs.ns_for(k)], spec)
    return cells, missing, {"width_rows": width_rows(runs, spec), "width_sweep_run": bool(spec.width_sweep),
                            "alphas_run": spec.alphas, "feature_learning": feat, "seeds": spec.n_seeds,
                            "note": "feature_learning (||W1 - W1_0|| / ||W1_0||, kernel-target alignment) is "
                                    "reported, not judged"}


def width_rows(runs: Runs, spec) -> list[dict[str, Any]]:
    """Per (k, H, L) of the width sweep: mean local and global errors and their gap, the interaction
    contrast ``IC`` (mean, s.e.) and the first-layer movement (evidence of C6 and C6W)."""
    rows = []
    cd = spec.ctrl_depths()
    L0, L1 = cd[0], cd[-1]
    for k in spec.active_ks():
        n = spec.ctrl_n(k)
        for h in spec.width_sweep:
            v = f"ntk_H={h}"
            st = {t: runs.stat(("width", v, t, k, n, L1), unflagged=False) for t in TARGETS}
            row = {"k": k, "N": n, "L": L1, "H": h, "err_local": fnum(st["local"][0]),
                   "err_global": fnum(st["global"][0]), "gap": fnum(st["global"][0] - st["local"][0])}
            try:
                ic = _ic(_arms(runs, "width", v, k, n, L0, L1), L0, L1)
                m, se = mean_se(ic)
                row.update(ic=fnum(m), ic_se=fnum(se))
            except Missing:
                pass
            mv = []
            for t in TARGETS:
                for L in (L0, L1):
                    r = runs.net.get(("width", v, t, k, n, L))
                    if r is not None and r.metrics.get("w1_rel_change"):
                        x = np.asarray(r.metrics["w1_rel_change"], float)
                        mv += list(x[np.isfinite(x) & ~np.asarray(r.metrics["diverged"], bool)])
            if mv:  # over the non-diverged seeds, as feature_rows
                row["w1_rel_change"] = fnum(float(np.mean(mv)))
            rows.append(row)
    return rows


def c6w_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """C6W per k at the control cell's sigma_w^2, control N and depths: ``d_s = IC_s(H_min) - IC_s(H_max)``
    of the ntk-parameterised nets at alpha = 1 (``_shrink``): the interplay shrinks toward the NTK's as
    the width grows. Room: ``IC(H_min) - IC(NTK) >= SESOI``, the NTK with the width runs' own
    ``sigma_w^2`` and ``sigma_b^2`` (kernel job of group ``width``); a widest run that diverged, exploded
    or missed the stopping rule counts as ``d = 0`` (no shrink), as in C6."""
    hs = sorted(set(spec.width_sweep))  # two or more: the claim does not run C6W otherwise
    hmin, hmax = hs[0], hs[-1]
    L0, L1 = spec.ctrl_depths()[0], spec.ctrl_depths()[-1]
    cells, missing = [], []
    for k in spec.active_ks():
        n = spec.ctrl_n(k)
        try:
            lo = _arms(runs, "width", f"ntk_H={hmin}", k, n, L0, L1)
            hi = _arms(runs, "width", f"ntk_H={hmax}", k, n, L0, L1)
        except Missing as e:
            missing.append(f"k={k} N={n}: {e.what}")
            continue
        kr = runs.kernel.get(("width", "ntk", k, n))
        ic_ntk = _ic_kernel(kr, L0, L1, len(lo[("local", L0)].x), _trivials(runs, "width", f"ntk_H={hmin}", k, n, L0))
        eff, room, named, ex = _shrink(lo, hi, ic_ntk, L0, L1, rule.sesoi,
                                       f"H={hmin}", f"H={hmax}")
        extra = {"k": k, "N": n, "L_min": L0, "L_max": L1, "H_min": hmin, "H_max": hmax,
                 "ic_H_min": ex["ic_feat"], "ic_H_max": ex["ic_lazy"], "ic_ntk": ex["ic_ntk"],
                 "kernel_job": kr is not None, "wide_seeds_failed": ex["lazy_seeds_failed"],
                 "wide_unreached": ex["lazy_unreached"], "wide_diverged": ex["lazy_diverged"]}
        cells.append(P.cell(f"k={k} N={n}", eff, rule, room=room, n_diverged=_ndiv(named), extra=extra))
    # the grids as planned (present even when every width job diverged)
    grids = sorted({tuple(p["lrs"]) for p in planned(spec).values() if p.get("group") == "width" and p["kind"] == "net"})
    return cells, missing, {"width_rows": width_rows(runs, spec), "widths": hs, "seeds": spec.n_seeds,
                            "param": "ntk", "lr_grids": [list(g) for g in grids],
                            "note": "IC per width, first-layer movement: reported beside the judged H_min vs H_max"}


def c7_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """C7: every run variant's C1 (local) and C2 (global) cells at the control N and depths, one
    cell per (variant, k, target), under the same rule as C1/C2 (room, regime, power, ITT)."""
    cells, missing = [], []
    cd = spec.ctrl_depths()
    ran = [v for v in ROBUST_VARIANTS if v in spec.robustness]
    for v in ran:
        for k in spec.active_ks():
            n = spec.ctrl_n(k)
            for cid, t in (("C1", "local"), ("C2", "global")):
                label = f"{v} k={k} N={n} {t}"
                try:
                    cells.append(depth_cell(cid, runs, "robust", v, k, n, cd[0], cd[-1], rule, label=label))
                except Missing as e:
                    missing.append(f"{label}: {e.what}")
    not_run = [v for v in ROBUST_VARIANTS if v not in ran]
    return cells, missing, {"run": ran, "not_run": not_run, "depths": cd,
                            "N_by_k": {str(k): spec.ctrl_n(k) for k in spec.active_ks()}}


def c8_cells(runs: Runs, spec, planned: list[tuple], rule: P.Rule) -> Cells:
    """C8 per main net job: the fraction of its seeds that diverged, missed the stopping rule or have
    ``P <= N`` (identity at 0)."""
    cells, missing = [], []
    for key in planned:
        try:
            a = arm(runs, key)
        except Missing as e:
            missing.append(e.what)
            continue
        bad = a.diverged | a.unreached | a.small_p
        name = f"{key[2]} k={key[3]} N={key[4]} L={key[5]}"
        cells.append(P.cell(name, _exact(float(bad.mean()), len(bad)), rule,
                            extra={"flagged": int(bad.sum()), "diverged": int(a.diverged.sum()),
                                   "unreached": int(a.unreached.sum()), "small_p": a.small_p}))
    return cells, missing, {"max_epochs": spec.max_epochs, "stop_nmse": spec.stop_nmse}


def _exact(value: float, n: int) -> P.Effect:
    """An exactly known quantity as a protocol effect (no sampling error)."""
    return P.Effect(mean=float(value), se=0.0, df=max(n - 1, 1), n=n)


def x2_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """X2 (nets) per (k, target) at the control N: ``d_s = mean_L [x_perm,s(L) - x_s(L)]`` over the
    control depths (ITT, trivial units), original and permuted nets on the same data set and init
    stream. The symmetry makes every (k, target, L) difference exactly null in distribution, so is
    their depth average; one cell per (k, target) rather than per depth because the protocol's TOST
    is an intersection-union test over cells and 5 seeds give too little power for 8 separate ones
    (calibration: P(holds | no shift) 0.35 per depth against >= 0.8 per (k, target))."""
    cells, missing = [], []
    cv, _ = spec.control_cell()
    for k in spec.active_ks():
        n = spec.ctrl_n(k)
        for t in TARGETS:
            name = f"k={k} N={n} {t}"
            try:
                arms = {f"{w} L={L}": arm(runs, (g, v, t, k, n, L)) for L in spec.ctrl_depths()
                        for w, g, v in (("original", "main", cv), ("permuted", "x2", "permuted"))}
            except Missing as e:
                missing.append(f"{name}: {e.what}")
                continue
            d = np.mean([arms[f"permuted L={L}"].x - arms[f"original L={L}"].x for L in spec.ctrl_depths()], axis=0)
            extra = {f"err_{a.replace(' ', '_')}": _mean(x.x) for a, x in arms.items()}
            cells.append(P.cell(name, P.paired(d), rule, room=regime(arms), n_diverged=_ndiv(arms), extra=extra))
    return cells, missing, {"seeds": spec.n_seeds, "depths": spec.ctrl_depths()}


def x2k_cells(runs: Runs, spec, rule: P.Rule) -> Cells:
    """X2K per (k, kernel, target): ``max_{s, L} |err_perm - err| / trivial`` of the kernel baselines."""
    cells, missing = [], []
    cv, _ = spec.control_cell()
    for k in spec.active_ks():
        n = spec.ctrl_n(k)
        a, b = runs.kernel.get(("main", cv, k, n)), runs.kernel.get(("x2", "permuted", k, n))
        if a is None or b is None:
            missing.append(f"k={k} N={n}: kernel {'original' if a is None else 'permuted'}")
            continue
        r = runs.net.get(("main", cv, "local", k, n, spec.depths[0]))
        triv = float(np.mean(r.metrics["trivial_err"])) if r is not None else 1.0
        for kern in ("ntk", "nngp"):
            for t in TARGETS:
                x, y = np.asarray(a.metrics[f"{kern}_{t}"], float), np.asarray(b.metrics[f"{kern}_{t}"], float)
                dev = float(np.max(np.abs(y - x))) / triv if x.shape == y.shape else float("inf")
                cells.append(P.cell(f"k={k} N={n} {kern} {t}", _exact(dev, x.shape[0]), rule,
                                    extra={"max_abs_dev": fnum(dev, 15)}))
    return cells, missing, {}


def feature_rows(runs: Runs, cells: list[dict[str, Any]], spec) -> list[dict[str, Any]]:
    """C6 evidence per informative main cell, target and depth (mean, s.e. over
    non-diverged seeds): first-layer movement ``||W1 - W1_0|| / ||W1_0||`` and the kernel-target
    alignment of the empirical NTK at init and after training (when ``kta_points > 0``)."""
    rows = []
    for c in cells:
        if not c["informative"]:
            continue
        v = c.get("variant", "main")
        for t in TARGETS:
            for L in spec.depths:
                r = runs.net.get(("main", v, t, c["k"], c["N"], L))
                if r is None or "w1_rel_change" not in r.metrics:
                    continue
                ok = ~np.asarray(r.metrics["diverged"], bool)
                row: dict[str, Any] = {"k": c["k"], "N": c["N"], "target": t, "L": L}
                if v != "main":
                    row["variant"] = v
                for key in ("w1_rel_change", "kta_init", "kta_trained"):
                    x = np.asarray(r.metrics.get(key, []), float)
                    x = x[np.isfinite(x) & ok] if len(x) == len(ok) else x[:0]
                    m, se = mean_se(x) if len(x) else (np.nan, np.nan)
                    row[key], row[f"{key}_se"] = fnum(m), fnum(se)
                rows.append(row)
    return rows


