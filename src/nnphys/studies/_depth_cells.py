"""Analysis pieces of study ``depth-locality`` (and its regime map): the results index, the per-cell
depth trends, the informativeness rule and the C1-C3 cell verdicts.

A *cell* is one ``(group, variant, k, N)`` of one spec: both targets at every depth, ``n_seeds``
seeds each, every seed with its own data set shared by both targets and all depths (paired design).

**Informativeness rule** (issue 10 item 3; fixed before looking at outcomes, with ``trivial`` = the
best constant predictor's error and every error the mean over the cell's non-diverged seeds):

1. the shallowest net learns at least one target non-trivially: ``min_t err_t(L_min) <= l1_frac x trivial``;
2. the deepest net is not at the trivial error on both targets: not ``err_t(L_deep) >= trivial_frac x
   trivial`` for both ``t``;
3. no target is hopeless: for each target some depth has ``err_t(L) <= trivial``.

A cell failing a condition is ``uninformative`` with the reason; C1-C3 are evaluated only on
informative cells, and a claim with no informative cell is ``inconclusive``, never ``fails``.

**Cell verdicts** (spec §11, on unflagged seeds, depths ``L_min .. L_max`` with ``L_max`` the largest
depth at which every run of both targets meets C8; the same depths and seeds for C1, C2 and C3):

- C1 (local): ``err(L_max) < err(L_min)`` significantly (``> 2 sqrt(se1^2 + se2^2)``) and Spearman
  ``rho(L, mean err) < 0``; C2 (global): the same with ``>`` and ``rho > 0``;
- C3 (interplay): evaluable only where C1 and C2 are; the per-seed least-squares depth slopes
  ``s_t`` (err vs L over the same depths) differ in sign with both signs established:
  ``mean s_loc + 2 se < 0 < mean s_glob - 2 se``. A flat curve (slope within 2 s.e. of 0) has no
  sign, so it cannot make the slopes "differ". The paired gap ``s_glob - s_loc`` is reported.

**Power** (issue 10 item 6): for an observed mean effect ``m`` with per-seed spread ``sd``, the 2 s.e.
rule needs ``n >= (2 sd / m)^2`` seeds; cells report it for the local and the global slope.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from nnphys.studies._kit import fnum, mean_se, significant, spearman, take_members
from nnphys.studies.base import Result, canonical_json

TARGETS = ("local", "global")


@dataclasses.dataclass(frozen=True)
class Rule:
    """The informativeness thresholds and the per-k count of passing cells a claim needs."""

    l1_frac: float = 0.8
    trivial_frac: float = 0.9
    min_n: int = 1


class Runs:
    """The done (and diverged) results of the jobs that ``planned`` lists, indexed by
    ``(group, variant, target, k, N, L)`` (net) and ``(group, variant, k, N)`` (kernel)."""

    def __init__(self, planned: list[dict[str, Any]], results: list[Result], key: Callable[[dict], tuple]):
        plan = {canonical_json(j): j for j in planned}
        self.net: dict[tuple, Result] = {}
        self.net_diverged: dict[tuple, Result] = {}
        self.kernel: dict[tuple, Result] = {}
        self.blind: dict[tuple, list[Result]] = {}
        self.n_failed = self.n_diverged = 0
        seen = set()
        for r in results:
            ck = canonical_json(r.params)
            if ck not in plan:
                continue
            seen.add(ck)
            p = r.params
            if not r.ok:
                self.n_failed += r.status == "failed"
                self.n_diverged += r.status == "diverged"
                if r.status == "diverged" and p["kind"] == "net":
                    self.net_diverged[key(p)] = r
                continue
            if p["kind"] == "net":
                self.net[key(p)] = r
            elif p["kind"] == "kernel":
                self.kernel[(p["group"], p["variant"], p["k"], p["n"])] = r
            elif p["kind"] == "blind":
                self.blind.setdefault((p["law"], p["k"]), []).append(r)
        self.n_missing = len(set(plan) - seen)

    @staticmethod
    def flags(r: Result) -> list[bool]:
        """Per seed: flagged by C8 (diverged, stopping rule not met, or ``P <= N``)."""
        m = r.metrics
        big = m["p_over_n"] > 1
        return [bool(d) or not bool(ok) or not big for ok, d in zip(m["reached"], m["diverged"])]

    def errs(self, key: tuple, unflagged: bool = True) -> np.ndarray:
        """``(n_seeds,)`` errors, ``nan`` where diverged (or flagged, if ``unflagged``); empty if no result."""
        r = self.net.get(key)
        if r is None:
            return np.array([])
        e = np.asarray(r.metrics["err"], float).copy()
        if unflagged:
            e[np.asarray(self.flags(r))] = np.nan
        return e

    def stat(self, key: tuple, unflagged: bool = True) -> tuple[float, float, int]:
        e = self.errs(key, unflagged)
        e = e[np.isfinite(e)]
        if len(e) == 0:
            return float("nan"), float("nan"), 0
        m, se = mean_se(e)
        return float(m), float(se), len(e)

    def trivial(self, key: tuple) -> float:
        r = self.net.get(key)
        return float("nan") if r is None else float(np.mean(r.metrics["trivial_err"]))

    def kernel_curves(self, group: str, variant: str, k: int, n: int) -> dict[str, Any] | None:
        """NTK/NNGP mean and s.e. over seeds per depth, and their Spearman rho vs depth."""
        r = self.kernel.get((group, variant, k, n))
        if r is None:
            return None
        out: dict[str, Any] = {"k": k, "N": n, "depths": r.metrics["depths"]}
        for kern in ("ntk", "nngp"):
            for t in TARGETS:
                a = np.asarray(r.metrics[f"{kern}_{t}"], float)  # (seeds, depths)
                m, se = mean_se(a, axis=0)
                out[f"{kern}_{t}"] = {"mean": [fnum(v) for v in m], "se": [fnum(v) for v in se],
                                      "spearman": fnum(spearman(r.metrics["depths"], m), 3)}
        return out


def informative(runs: Runs, cell: tuple, depths: list[int], rule: Rule) -> tuple[bool | None, str]:
    """``(True, "")``, ``(False, reason)`` by the module's rule, or ``(None, what is missing)``."""
    g, v, k, n = cell
    L0, Ld = depths[0], depths[-1]
    m = {(t, L): runs.stat((g, v, t, k, n, L), unflagged=False)[0] for t in TARGETS for L in depths}
    triv = {t: runs.trivial((g, v, t, k, n, L0)) for t in TARGETS}
    gone = [(t, L) for (t, L), x in m.items() if not math.isfinite(x)]
    if any(not math.isfinite(x) for x in triv.values()) or any(L == L0 for _, L in gone):
        return None, "no finite errors at " + (", ".join(f"{t} L={L}" for t, L in gone) or "L_min")
    if min(m[(t, L0)] / triv[t] for t in TARGETS) > rule.l1_frac:
        return False, (f"L={L0} learns neither target non-trivially (err/trivial: "
                       + ", ".join(f"{t} {m[(t, L0)] / triv[t]:.3g}" for t in TARGETS) + f" > {rule.l1_frac:g})")
    if all(math.isfinite(m[(t, Ld)]) and m[(t, Ld)] >= rule.trivial_frac * triv[t] for t in TARGETS):
        return False, (f"the deepest net (L={Ld}) is at the trivial error on both targets (err/trivial: "
                       + ", ".join(f"{t} {m[(t, Ld)] / triv[t]:.3g}" for t in TARGETS) + f" >= {rule.trivial_frac:g})")
    for t in TARGETS:
        vals = [m[(t, L)] for L in depths if math.isfinite(m[(t, L)])]
        if vals and min(vals) > triv[t]:
            return False, f"the {t} target is hopeless: err > trivial at every depth (min {min(vals):.3g})"
    return True, ""


def _seed_slopes(E: np.ndarray, depths: list[int]) -> np.ndarray:
    """Least-squares slope of each row of ``E`` (seeds x depths) against ``depths``; rows with a
    non-finite entry give ``nan``."""
    x = np.asarray(depths, float)
    xc = x - x.mean()
    s = (E - E.mean(1, keepdims=True)) @ xc / float(xc @ xc)
    return np.where(np.isfinite(E).all(1), s, np.nan)


def _summ(v: np.ndarray) -> dict[str, Any]:
    """mean, s.e., 2 s.e. interval, seed count and the power estimate of a per-seed quantity."""
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return {"mean": fnum(v.mean()) if len(v) else None, "se": None, "ci": None, "n": len(v),
                "significant": None, "seeds_needed": None}
    m, se = (float(a) for a in mean_se(v))
    sd = se * math.sqrt(len(v))
    need = None if m == 0 else max(2, math.ceil((2 * sd / abs(m)) ** 2))
    return {"mean": fnum(m, 6), "se": fnum(se, 6), "ci": [fnum(m - 2 * se, 6), fnum(m + 2 * se, 6)], "n": len(v),
            "significant": bool(abs(m) > 2 * se), "seeds_needed": need}


def cell_trend(runs: Runs, cell: tuple, depths: list[int], rule: Rule) -> dict[str, Any]:
    """Everything C1-C3 need at one cell (module docstring); ``c1``/``c2``/``c3`` are ``True``/``False``
    or ``None`` when not evaluable (uninformative, missing data, or ``L_max = L_min``)."""
    g, v, k, n = cell
    L0 = depths[0]
    inf, why = informative(runs, cell, depths, rule)
    out: dict[str, Any] = {"k": k, "N": n, "variant": v, "informative": inf, "reason": why}
    ok_depths = [L for L in depths
                 if all((r := runs.net.get((g, v, t, k, n, L))) is not None and not any(Runs.flags(r)) for t in TARGETS)]
    l_max = max(ok_depths) if ok_depths else None
    out["L_max"] = l_max
    used = [L for L in depths if l_max is not None and L <= l_max]
    out["depths_used"] = used
    E = {}
    for t in TARGETS:
        curve = {L: runs.stat((g, v, t, k, n, L)) for L in depths}
        out[t] = res = {"mean": {str(L): fnum(c[0]) for L, c in curve.items()},
                        "se": {str(L): fnum(c[1]) for L, c in curve.items()},
                        "n_seeds_used": {str(L): c[2] for L, c in curve.items()},
                        "err_L1_all_seeds": fnum(runs.stat((g, v, t, k, n, L0), unflagged=False)[0]),
                        "trivial": fnum(runs.trivial((g, v, t, k, n, L0)))}
        pts = [(L, curve[L][0]) for L in used if curve[L][2] >= 2]
        rho = spearman(*zip(*pts)) if len(pts) >= 2 else float("nan")
        res["spearman"] = fnum(rho, 3)
        res["pass"] = None
        if len(used) >= 2:
            cols = [runs.errs((g, v, t, k, n, L)) for L in used]
            width = max(len(c) for c in cols)  # a job without results is a column of nan
            E[t] = np.stack([c if len(c) == width else np.full(width, np.nan) for c in cols], 1)
            res["slope"] = _summ(_seed_slopes(E[t], used))
        if inf and l_max is not None and l_max != L0 and curve[L0][2] >= 2 and curve[l_max][2] >= 2:
            (m0, se0, _), (m1, se1, _) = curve[L0], curve[l_max]
            res["diff_Lmax_minus_L1"] = fnum(m1 - m0)
            res["significant"] = significant(m1, se1, m0, se0)
            if math.isfinite(rho):
                down = t == "local"
                res["pass"] = bool(res["significant"] and (m1 < m0 if down else m1 > m0) and (rho < 0 if down else rho > 0))
    out["c1"], out["c2"] = out["local"]["pass"], out["global"]["pass"]
    out["c3"] = None
    if len(E) == 2:  # reported for every cell with >= 2 depths (the map colours uninformative cells too)
        out["slope_gap"] = _summ(_seed_slopes(E["global"], used) - _seed_slopes(E["local"], used))
    if out["c1"] is not None and out["c2"] is not None:
        sl, sg = out["local"]["slope"], out["global"]["slope"]
        if sl["ci"] is not None and sg["ci"] is not None:
            out["c3"] = bool(sl["ci"][1] < 0 < sg["ci"][0])
    return out


def aggregate(cells: list[dict[str, Any]], cid: str, ks: list[int], need: int) -> tuple[str, dict[str, str]]:
    """Claim verdict from cell outcomes ``cell[cid.lower()]``: a k holds with >= ``need`` passing
    informative cells, fails with >= ``need`` evaluable ones and fewer passes, else inconclusive;
    the claim holds if every k holds and fails if any k fails. No informative cell: inconclusive."""
    per = {}
    for k in ks:
        outs = [c[cid.lower()] for c in cells if c["k"] == k and c["informative"]]
        passes = sum(o is True for o in outs)
        evaluable = sum(o is not None for o in outs)
        per[str(k)] = "holds" if passes >= need else ("fails" if evaluable >= need else "inconclusive")
    vals = list(per.values())
    if vals and all(x == "holds" for x in vals):
        return "holds", per
    if any(x == "fails" for x in vals):
        return "fails", per
    return "inconclusive", per


def spec_cells(runs: Runs, spec: Any, rule: Rule, group: str = "main", variant: str = "main", ns_for=None,
               depths: list[int] | None = None) -> list[dict[str, Any]]:
    """``cell_trend`` of every (k, N) of a depth-locality spec (``ks``, ``ns_for``, ``depths``)."""
    ns_for = ns_for or spec.ns_for
    return [cell_trend(runs, (group, variant, k, n), depths or spec.depths, rule) for k in spec.ks for n in ns_for(k)]


def cell_row(c: dict[str, Any], cid: str) -> dict[str, Any]:
    """The evidence row of cell ``c`` for claim ``cid`` (C1: local, C2: global, C3: both)."""
    row = {"k": c["k"], "N": c["N"], "informative": c["informative"], "reason": c["reason"], "L_max": c["L_max"],
           "depths_used": c["depths_used"], "pass": c[cid.lower()]}
    for t in TARGETS if cid == "C3" else (("local",) if cid == "C1" else ("global",)):
        tt = c[t]
        row[t] = {"mean": tt["mean"], "se": tt["se"], "spearman": tt["spearman"], "n_seeds_used": tt["n_seeds_used"],
                  "diff_Lmax_minus_L1": tt.get("diff_Lmax_minus_L1"), "significant": tt.get("significant"),
                  "slope": tt.get("slope")}
    if cid == "C3":
        row["slope_gap_global_minus_local"] = c.get("slope_gap")
    return row


def cell_text(c: dict[str, Any], cid: str) -> str:
    """One-line reading of cell ``c`` for claim ``cid``."""
    tag = f"k={c['k']} N={c['N']}"
    if not c["informative"]:
        return f"{tag}: uninformative ({c['reason']})" if c["informative"] is False else f"{tag}: {c['reason']}"
    if cid == "C3":
        g = c.get("slope_gap") or {}
        return (f"{tag}: slope loc {c['local'].get('slope', {}).get('mean')}, glob "
                f"{c['global'].get('slope', {}).get('mean')}, gap {g.get('mean')}±{g.get('se')} -> {c['c3']}")
    t = c["local" if cid == "C1" else "global"]
    s = t.get("slope") or {}
    return (f"{tag}: err(L_max={c['L_max']})-err(1)={t.get('diff_Lmax_minus_L1')}, rho={t['spearman']}, "
            f"seeds for a significant slope ~{s.get('seeds_needed')} -> {c[cid.lower()]}")


# per-seed metrics of a net job (lists of length n_seeds) and of a kernel job (rows = seeds)
_NET_SEED_KEYS = ("err", "test_nmse", "test_sign_err", "val_err", "train_loss", "train_nmse", "train_acc", "epochs",
                  "steps", "reached", "diverged", "stop_reason", "w1_rel_change", "kta_init", "kta_trained",
                  "trivial_err")
_KERNEL_SEED_KEYS = tuple(f"{a}_{t}" for a in ("ntk", "nngp") for t in TARGETS)


def resample_seeds(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """The results with seeds drawn with replacement: one index draw per seed count, shared by every
    net and kernel job (seed ``i`` is the same data set in all of them, so paired comparisons stay
    paired). C5's data sets (arrays on disk) are not resampled."""
    draws: dict[int, np.ndarray] = {}
    out = []
    for r in results:
        keys = {"net": _NET_SEED_KEYS, "kernel": _KERNEL_SEED_KEYS}.get(r.params.get("kind"))
        if not r.ok or keys is None:
            out.append(r)
            continue
        n = len(r.params["data_seeds"])
        if n not in draws:
            draws[n] = rng.integers(0, n, size=n)
        idx = draws[n]
        sub = {k: r.metrics[k] for k in keys if k in r.metrics}
        out.append(dataclasses.replace(r, metrics={**r.metrics, **take_members(sub, idx, n)}))
    return out
