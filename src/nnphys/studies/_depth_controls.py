"""Control claims of study ``depth-locality`` (spec §11): C4 (NTK misses the interplay), C5 (exact
kernel blindness), C6 (lazy scale and feature-learning evidence), C7 (robustness variants), X1
(k = 1) and X2 (coordinate permutation). Each takes the study's :class:`ClaimBook`, the results
index and the spec, and raises :class:`~nnphys.studies._kit.Missing` when its data is absent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnphys.studies import _kit
from nnphys.studies._depth_cells import TARGETS, Rule, Runs, aggregate, spec_cells
from nnphys.studies._kit import ClaimBook, Missing, fnum, mean_se, significant
from nnphys.studies.base import Claim

ROBUST_VARIANTS = ("lr_other", "batch16", "batch256", "law_other", "sign")


def claim_c4(book: ClaimBook, runs: Runs, spec) -> Claim:
    rows, outcomes = [], []
    combos = [("main", "main", k, n) for k in spec.ks for n in spec.ns_for(k)]
    if "sign" in spec.robustness:
        combos += [("robust", "sign", k, spec.ctrl_n(k)) for k in spec.ks]
    for g, v, k, n in combos:
        kc = runs.kernel_curves(g, v, k, n)
        if kc is None:
            continue
        ml, mg = np.array(kc["ntk_local"]["mean"], float), np.array(kc["ntk_global"]["mean"], float)
        sl, sg = np.array(kc["ntk_local"]["se"], float), np.array(kc["ntk_global"]["se"], float)
        rl, rg = kc["ntk_local"]["spearman"], kc["ntk_global"]["spearman"]
        same = bool(np.sign(rl) == np.sign(rg)) if (math.isfinite(rl) and math.isfinite(rg)) else None
        gap_sig = [significant(a, b, c, d) for a, b, c, d in zip(ml, sl, mg, sg)]
        outcomes.append(bool(same) or not any(gap_sig))
        word = {1: "depth hurts", -1: "depth helps", 0: "flat"}
        rows.append({"variant": v, "k": k, "N": n, "ntk_local": kc["ntk_local"], "ntk_global": kc["ntk_global"],
                     "nngp_local_spearman": kc["nngp_local"]["spearman"],
                     "nngp_global_spearman": kc["nngp_global"]["spearman"],
                     "same_slope_sign": same, "gap_significant_at": [L for L, s in zip(kc["depths"], gap_sig) if s],
                     "ntk_direction_local": word[int(np.sign(rl))] if math.isfinite(rl) else "n/a",
                     "ntk_direction_global": word[int(np.sign(rg))] if math.isfinite(rg) else "n/a"})
    if not outcomes:
        raise Missing("kernel baseline results")
    dirs = sorted({(r["ntk_direction_local"], r["ntk_direction_global"]) for r in rows})
    return book.holds_if("C4", all(outcomes), {"rows": rows, "seeds": spec.n_seeds, "kernel_sigma_b2": spec.kernel_sb2()},
                         f"NTK local/global depth trends agree or gaps n.s. at {sum(outcomes)}/{len(outcomes)} "
                         f"(k, N); NTK directions (local, global): {dirs}")


def claim_c5(book: ClaimBook, runs: Runs, spec) -> Claim:
    if not spec.blind_datasets:
        return book.inconclusive("C5", "not run (blind_datasets = 0)", run=False)
    rows, bad, short = [], [], []
    for law in spec.blind_laws:
        for k in spec.ks:
            rs = runs.blind.get((law, k), [])
            if not rs:
                short.append(f"{law}/k={k}: no results")
                continue
            mse = np.concatenate([r.arrays["mse"] for r in rs], axis=0)  # (D, kernel, depth, target)
            D = mse.shape[0]
            if D < 200:
                short.append(f"{law}/k={k}: {D} < 200 data sets")
            for a, kern in enumerate(("ntk", "nngp")):
                for j, L in enumerate(rs[0].metrics["depths"]):
                    md, sed = mean_se(mse[:, a, j, 0] - mse[:, a, j, 1])
                    ml, sel = mean_se(mse[:, a, j, 0])
                    mg, seg = mean_se(mse[:, a, j, 1])
                    ok = bool(abs(md) <= 3 * sed)
                    if not ok:
                        bad.append(f"{law}/k={k}/{kern}/L={L}")
                    rows.append({"law": law, "k": k, "kernel": kern, "L": L, "datasets": D,
                                 "mse_local": fnum(ml), "se_local": fnum(sel), "mse_global": fnum(mg),
                                 "se_global": fnum(seg), "mean_diff": fnum(md, 6), "se_diff_paired": fnum(sed, 6),
                                 "within_3se": ok})
    if not rows:
        raise Missing("C5 blind results")
    verdict = "fails" if bad else ("inconclusive" if short else "holds")
    n_ok = sum(r["within_3se"] for r in rows)
    summary = (f"|MSE_loc - MSE_glob| <= 3 s.e. (paired over data sets) in {n_ok}/{len(rows)} "
               f"(law, k, kernel, L) cells" + (f"; failing: {bad[:6]}" if bad else "")
               + (f"; missing: {short}" if short else ""))
    return book.make("C5", verdict, {"rows": rows, "d": spec.blind_d, "N": spec.blind_n, "n_test": spec.blind_n_test,
                                     "kernel_sigma_b2": spec.kernel_sb2(), "failing": bad, "missing": short}, summary)


def feature_rows(runs: Runs, cells: list[dict[str, Any]], spec) -> list[dict[str, Any]]:
    """C6 evidence (issue 10 item 5) per informative main cell, target and depth (mean, s.e. over
    non-diverged seeds): first-layer movement ``||W1 - W1_0|| / ||W1_0||`` and the kernel-target
    alignment of the empirical NTK at init and after training (when ``kta_points > 0``)."""
    rows = []
    for c in cells:
        if not c["informative"]:
            continue
        for t in TARGETS:
            for L in spec.depths:
                r = runs.net.get(("main", "main", t, c["k"], c["N"], L))
                if r is None or "w1_rel_change" not in r.metrics:
                    continue
                ok = ~np.asarray(r.metrics["diverged"], bool)
                row: dict[str, Any] = {"k": c["k"], "N": c["N"], "target": t, "L": L}
                for key in ("w1_rel_change", "kta_init", "kta_trained"):
                    v = np.asarray(r.metrics.get(key, []), float)
                    v = v[np.isfinite(v) & ok] if len(v) == len(ok) else v[:0]
                    m, se = mean_se(v) if len(v) else (np.nan, np.nan)
                    row[key], row[f"{key}_se"] = fnum(m), fnum(se)
                rows.append(row)
    return rows


def claim_c6(book: ClaimBook, runs: Runs, spec, cells: list[dict[str, Any]]) -> Claim:
    L = spec.ctrl_depths()[-1]
    alphas = sorted(set([1.0] + list(spec.alphas)))
    rows, per_k = [], {}
    for k in spec.ks:
        n = spec.ctrl_n(k)
        kc = runs.kernel_curves("main", "main", k, n)
        ntk = {t: kc[f"ntk_{t}"]["mean"][kc["depths"].index(L)] for t in TARGETS} if kc and L in kc["depths"] else {}
        gaps = {}
        for a in alphas:
            g, v = ("main", "main") if a == 1.0 else ("lazy", f"alpha={a:g}")
            (ml, sl, cl), (mg, sg, cg) = (runs.stat((g, v, t, k, n, L), unflagged=False) for t in TARGETS)
            if cl < 2 or cg < 2:
                continue
            gaps[a] = (mg - ml, math.sqrt(sl**2 + sg**2))
            rows.append({"k": k, "N": n, "L": L, "alpha": a, "err_local": fnum(ml), "se_local": fnum(sl),
                         "err_global": fnum(mg), "se_global": fnum(sg), "gap": fnum(mg - ml),
                         "gap_significant": significant(mg, sg, ml, sl),
                         "dist_to_ntk_local": fnum(abs(ml - ntk["local"])) if ntk else None,
                         "dist_to_ntk_global": fnum(abs(mg - ntk["global"])) if ntk else None})
        amax = max(alphas)
        if amax < 100 or amax not in gaps or 1.0 not in gaps:
            per_k[k] = "inconclusive"
        elif abs(gaps[amax][0]) > 2 * gaps[amax][1]:
            per_k[k] = "fails"
        elif abs(gaps[1.0][0]) <= 2 * gaps[1.0][1]:
            per_k[k] = "inconclusive"  # no significant gap at alpha=1: nothing for laziness to remove
        else:
            per_k[k] = "holds" if abs(gaps[amax][0]) < abs(gaps[1.0][0]) else "fails"
    wrows = []
    for k in spec.ks:
        n = spec.ctrl_n(k)
        for h in spec.width_sweep:
            st = {t: runs.stat(("width", f"ntk_H={h}", t, k, n, L), unflagged=False) for t in TARGETS}
            wrows.append({"k": k, "N": n, "L": L, "H": h, "err_local": fnum(st["local"][0]),
                          "err_global": fnum(st["global"][0]), "gap": fnum(st["global"][0] - st["local"][0])})
    if not rows:
        raise Missing(f"alpha = 1 and alpha > 1 results at L = {L} with >= 2 seeds")
    summary = (f"glob-loc gap at L={L} vs alpha: "
               + "; ".join(f"k={r['k']} a={r['alpha']:g}: {r['gap']:+.3f}{'*' if r['gap_significant'] else ''}"
                           for r in rows)
               + ("" if spec.width_sweep else "; width sweep not run (alpha part only)"))
    return book.make("C6", _kit.all_of(per_k.values()),
                     {"rows": rows, "per_k": {str(k): v for k, v in per_k.items()}, "width_rows": wrows,
                      "feature_learning": feature_rows(runs, cells, spec),
                      "width_sweep_run": bool(spec.width_sweep), "alphas_run": alphas, "L": L, "seeds": spec.n_seeds,
                      "note": "all non-diverged seeds used (lazy runs need not meet the stopping rule); * = significant; "
                              "feature_learning: ||W1 - W1_0|| / ||W1_0|| at the informative main cells"},
                     summary)


def claim_c7(book: ClaimBook, runs: Runs, spec, rule: Rule) -> Claim:
    per_var, fails = {}, []
    for v in ROBUST_VARIANTS:
        if v not in spec.robustness:
            per_var[v] = {"run": False}
            continue
        cells = spec_cells(runs, spec, rule, "robust", v, lambda k: [spec.ctrl_n(k)], spec.ctrl_depths())
        vd = {cid: aggregate(cells, cid, spec.ks, 1)[0] for cid in ("C1", "C2", "C3")}
        per_var[v] = {"run": True, "verdicts": vd,
                      "cells": [{"k": c["k"], "N": c["N"], "informative": c["informative"], "reason": c["reason"],
                                 "local": c["local"]["mean"], "global": c["global"]["mean"]} for c in cells]}
        fails += [f"{v}:{cid}" for cid, x in vd.items() if x == "fails"]
    ran = [v for v in ROBUST_VARIANTS if per_var[v]["run"]]
    not_run = [v for v in ROBUST_VARIANTS if not per_var[v]["run"]]
    all_hold = ran and all(x == "holds" for v in ran for x in per_var[v]["verdicts"].values())
    verdict = "fails" if fails else ("holds" if all_hold and not not_run else "inconclusive")
    return book.make("C7", verdict, {"variants": per_var, "not_run": not_run, "depths": spec.ctrl_depths(),
                                     "N_by_k": {str(k): spec.ctrl_n(k) for k in spec.ks}},
                     f"variants run: {ran or 'none'}; failures: {fails or 'none'}; not run: {not_run or 'none'}")


def claim_x1(book: ClaimBook, runs: Runs, spec) -> Claim:
    if not spec.control_k1:
        return book.inconclusive("X1", "control X1 not run", run=False)
    n = min(spec.ns_for(spec.ks[0]))
    rows, oks = [], []
    for L in spec.ctrl_depths():
        (ml, sl, cl), (mg, sg, cg) = (runs.stat(("x1", "k=1", t, 1, n, L), unflagged=False) for t in TARGETS)
        if cl < 2 or cg < 2:
            continue
        ok = (not significant(ml, sl, mg, sg)) or (ml < 0.01 and mg < 0.01)
        oks.append(ok)
        rows.append({"L": L, "N": n, "err_local": fnum(ml), "se_local": fnum(sl), "err_global": fnum(mg),
                     "se_global": fnum(sg), "ok": ok})
    if not oks:
        raise Missing("X1 (k = 1) results with >= 2 seeds")
    return book.holds_if("X1", all(oks), {"rows": rows},
                         f"k=1 local vs global: gap n.s. or both < 0.01 at {sum(oks)}/{len(oks)} depths")


def claim_x2(book: ClaimBook, runs: Runs, spec) -> Claim:
    if not spec.control_permutation:
        return book.inconclusive("X2", "control X2 not run", run=False)
    rows, oks = [], []
    for k in spec.ks:
        n = spec.ctrl_n(k)
        for t in TARGETS:
            for L in spec.ctrl_depths():
                a = runs.stat(("main", "main", t, k, n, L), unflagged=False)
                b = runs.stat(("x2", "permuted", t, k, n, L), unflagged=False)
                if a[2] < 2 or b[2] < 2:
                    continue
                ok = not significant(a[0], a[1], b[0], b[1])
                oks.append(ok)
                rows.append({"what": "net", "k": k, "N": n, "target": t, "L": L, "err": fnum(a[0]),
                             "err_permuted": fnum(b[0]), "ok": ok})
        ka, kb = runs.kernel_curves("main", "main", k, n), runs.kernel_curves("x2", "permuted", k, n)
        if ka and kb:
            for t in TARGETS:
                for j, L in enumerate(ka["depths"]):
                    m1, s1 = ka[f"ntk_{t}"]["mean"][j], ka[f"ntk_{t}"]["se"][j]
                    m2, s2 = kb[f"ntk_{t}"]["mean"][j], kb[f"ntk_{t}"]["se"][j]
                    ok = not significant(m1, s1, m2, s2)
                    oks.append(ok)
                    rows.append({"what": "ntk", "k": k, "N": n, "target": t, "L": L, "err": m1,
                                 "err_permuted": m2, "ok": ok})
    if not oks:
        raise Missing("X2 (permuted) results with their unpermuted counterparts")
    return book.holds_if("X2", all(oks), {"rows": rows},
                         f"permuted vs original within 2 s.e. in {sum(oks)}/{len(oks)} comparisons")


def claim_c8(book: ClaimBook, runs: Runs, spec, planned: list[tuple]) -> Claim:
    """C8 over the main-grid net jobs ``planned`` (their index keys)."""
    total, flagged, rows, pmin = 0, 0, [], math.inf
    missing = [k for k in planned if k not in runs.net and k not in runs.net_diverged]
    for key in planned:
        r = runs.net.get(key)
        if r is None and key in runs.net_diverged:
            # a job whose every member diverged has no metrics: all its runs are flagged (issue 10 bug)
            total += spec.n_seeds
            flagged += spec.n_seeds
            rows.append({"target": key[2], "k": key[3], "N": key[4], "L": key[5], "flagged": spec.n_seeds,
                         "reasons": ["diverged (every member)"]})
            continue
        if r is None:
            continue
        fl = Runs.flags(r)
        total += len(fl)
        flagged += sum(fl)
        pmin = min(pmin, r.metrics["p_over_n"])
        if any(fl):
            rows.append({"target": key[2], "k": key[3], "N": key[4], "L": key[5], "flagged": sum(fl),
                         "reasons": sorted(set(r.metrics["stop_reason"])), "p_over_n": fnum(r.metrics["p_over_n"], 2)})
    if total == 0:
        raise Missing("main-grid net results")
    ok = None if (flagged == 0 and missing) else flagged == 0
    return book.holds_if("C8", ok, {"runs": total, "flagged": flagged, "flagged_rows": rows, "missing_jobs": len(missing),
                                    "min_p_over_n": fnum(pmin, 3), "max_epochs": spec.max_epochs,
                                    "stop_nmse": spec.stop_nmse},
                         f"{total - flagged}/{total} main runs interpolated with P>N (min P/N={pmin:.3g}); {flagged} "
                         f"flagged and excluded from C1-C3" + (f"; {len(missing)} jobs missing" if missing else ""))
