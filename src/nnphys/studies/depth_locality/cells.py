"""The cells of study ``depth-locality`` (and of its regime map): the results index, the per-seed
arms by intention to treat, and the claim protocol's cells of C1-C4 (``nnphys.studies.protocol``).

A *cell* is one ``(group, variant, k, N)`` of one spec: both targets at every depth, ``n_seeds`` seeds
each, every seed with its own data set shared by both targets, all depths and the kernel baselines
(a paired design). Every comparison is a per-seed difference (``P.paired``) between the shallowest
depth ``L_min`` and the deepest ``L_max`` of the spec (fixed before any run; the spec's L_max is no
longer chosen from which runs interpolated), in units of the trivial error.

- **Divergence is an outcome** (intention to treat): a diverged seed's error is the trivial error
  (``WORST``), so a diverged deep net counts against "depth helps" and for "depth hurts".
- **Regime** (C8): a cell whose compared runs did not all meet the stopping rule, or have ``P <= N``,
  is ``uninformative`` with the count; it is outside the papers' interpolating, over-parameterised setting.
- **Room to move** (``P.room``): the L_min error (err/trivial, floor 0, ceiling 1) must leave the SESOI
  on both sides, else the cell is ``uninformative`` (e.g. a local error already at 0.01 x trivial cannot
  show "depth helps" by 0.1 x trivial, and a global error at 1.2 x trivial cannot show "depth hurts").
- **Power**: ``P.cell`` marks a cell uninformative when the one-sided paired t test has power < 0.8 at
  the SESOI for the measured spread.

Cells are aggregated by ``P.judge`` (the one rule of every claim), the same in the study and the map.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import numpy as np

from nnphys.studies import protocol as P
from nnphys.studies._kit import Missing, fnum, mean_se, take_members
from nnphys.studies.base import Result, canonical_json
from nnphys.studies.depth_locality.spec import TARGETS


def _rank_corr(x, y) -> float:
    """Spearman's rho of two tie-free sequences (depths; kernel error curves), without scipy's
    per-call overhead (``analyse`` runs hundreds of times in calibration); ``nan`` if constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0 or not np.isfinite(y).all():
        return float("nan")
    rx, ry = np.argsort(np.argsort(x)).astype(float), np.argsort(np.argsort(y)).astype(float)
    return float(np.corrcoef(rx, ry)[0, 1])


class Runs:
    """The done (and diverged) results of the jobs that ``planned`` lists, indexed by
    ``(group, variant, target, k, N, L)`` (net) and ``(group, variant, k, N)`` (kernel)."""

    def __init__(self, planned: list[dict[str, Any]] | dict[str, dict[str, Any]], results: list[Result],
                 key: Callable[[dict], tuple]):
        plan = planned if isinstance(planned, dict) else {canonical_json(j): j for j in planned}
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
                                      "spearman": fnum(_rank_corr(r.metrics["depths"], m), 3)}
        return out


def net_key(p: dict[str, Any]) -> tuple:
    """The index of a net job's params in :class:`Runs`: ``(group, variant, target, k, N, L)``."""
    return (p["group"], p["variant"], p["target"], p["k"], p["n"], p["depth"])


@functools.lru_cache(maxsize=16)
def _planned(spec_json: str, cls: type) -> dict[str, dict[str, Any]]:
    from nnphys.studies.depth_locality.jobs import jobs

    spec = cls.model_validate_json(spec_json)
    return {canonical_json(p): p for p in (j.on(spec.device).params() for j in jobs(spec))}


def planned(spec: Any) -> dict[str, dict[str, Any]]:
    """``{canonical_json(params): params}`` of the jobs of a depth-locality spec, as the lab plans
    them (on the spec's device); cached: the calibration harness and the verdict-stability bootstrap
    call ``analyse`` hundreds of times on one spec."""
    return _planned(spec.model_dump_json(), type(spec))


def runs_of(spec: Any, results: list[Result]) -> Runs:
    """The :class:`Runs` of ``spec``'s planned jobs among ``results``."""
    return Runs(planned(spec), results, net_key)


# ============================================================================================
# per-seed arms (intention to treat) and the protocol cells of C1-C4, C7 and the map
# ============================================================================================


@dataclasses.dataclass(frozen=True)
class Arm:
    """One net run's per-seed errors in units of the trivial error, by intention to treat.

    ``x``: ``(n_seeds,)`` err / trivial, a diverged seed replaced by ``WORST`` (``P.itt``);
    ``diverged``: non-finite error, the trainer's divergence flag, or an exploded run (final train
    loss above the trivial predictor's, :func:`_exploded`) [default]; ``unreached``: finite but the stopping
    rule unmet; ``small_p``: ``P <= N`` (not over-parameterised, C8)."""

    x: np.ndarray
    diverged: np.ndarray
    unreached: np.ndarray
    small_p: bool


WORST = 1.0  # [default] ITT value of a diverged run: the trivial error (err / trivial = 1)


def arm(runs: Runs, key: tuple) -> Arm:
    """The :class:`Arm` of net run ``key``; :class:`Missing` when the job has no result."""
    r = runs.net.get(key)
    if r is None:
        if key in runs.net_diverged:  # every member diverged: all seeds at the ITT value
            n = len(runs.net_diverged[key].params["data_seeds"])
            return Arm(np.full(n, WORST), np.ones(n, bool), np.zeros(n, bool), False)
        raise Missing(f"net result {'/'.join(map(str, key))}")
    m = r.metrics
    triv = np.asarray(m["trivial_err"], float)
    e = np.asarray(m["err"], float) / triv
    div = np.asarray(m["diverged"], bool) | ~np.isfinite(e) | _exploded(r.params, m, len(e))
    unreached = ~np.asarray(m["reached"], bool) & ~div
    return Arm(P.itt(e, div, WORST), div, unreached, not m["p_over_n"] > 1)


LOG2 = float(np.log(2.0))


def _exploded(p: dict[str, Any], m: dict[str, Any], n: int) -> np.ndarray:
    """An exploded run [default]: its final training loss is worse than the trivial predictor's. Regression
    (and MSE on sign labels): train nMSE > 1; logistic loss on sign labels: train loss > log 2, the loss
    of the zero output. (A bug fixed on 2026-12-07: the nMSE test was applied to logistic runs too, whose
    logits grow past +-1 as the loss falls, so a sign-label net that fit its data read as exploded.)"""
    if p.get("loss") == "logistic":
        tl = np.asarray(m.get("train_loss", [0.0] * n), float)
        return np.isfinite(tl) & (tl > LOG2)
    tr = np.asarray(m.get("train_nmse", [0.0] * n), float)
    return np.isfinite(tr) & (tr > 1.0)


def regime(arms: dict[str, Arm], what: str = "runs") -> tuple[bool, str]:
    """C8's regime (interpolating, over-parameterised) for the runs a cell compares: a run short of
    the stopping rule, or with ``P <= N``, makes the cell uninformative (it is outside the papers'
    setting), with the count; diverged runs are outcomes (ITT), not a regime violation."""
    n = sum(len(a.x) for a in arms.values())
    un = sum(int((a.unreached).sum()) for a in arms.values())
    small = [name for name, a in arms.items() if a.small_p]
    if small:
        return False, f"P <= N at {', '.join(small)} (not over-parameterised)"
    if un:
        return False, f"{what} not converged (stopping rule unmet in {un}/{n})"
    return True, ""


def _both(*rooms: tuple[bool, str]) -> tuple[bool, str]:
    bad = [why for ok, why in rooms if not ok]
    return (not bad, "; ".join(bad))


def _room(label: str, base: float, sesoi: float) -> tuple[bool, str]:
    ok, why = P.room(base, 0.0, 1.0, sesoi)
    return ok, ("" if ok else f"{label}: {why}")


def _ndiv(arms: dict[str, Arm]) -> dict[str, int]:
    return {name: int(a.diverged.sum()) for name, a in arms.items()}


def _mean(v: np.ndarray) -> float:
    return fnum(float(np.mean(v)), 5)


def depth_cell(cid: str, runs: Runs, g: str, v: str, k: int, n: int, L0: int, L1: int, rule: P.Rule,
               label: str = "") -> P.Cell:
    """The protocol cell of C1 (local), C2 (global) or C3 (interplay) at one (group, variant, k, N),
    comparing depth ``L1`` (L_max) with ``L0`` (L_min) on the same seeds (paired), in trivial units:

    - C1: ``d_s = loc_s(L0) - loc_s(L1)`` (+ = depth helps local); room: ``loc(L0)`` leaves the SESOI
      below it and above it within ``[0, 1]``;
    - C2: ``d_s = glob_s(L1) - glob_s(L0)`` (+ = depth hurts global); room: the same for ``glob(L0)``;
    - C3: ``d_s = [glob_s(L1) - glob_s(L0)] - [loc_s(L1) - loc_s(L0)]`` (the interaction: depth favours
      local over global); room on both targets (with one target pinned the contrast restates C1 or C2).

    A cell outside the C8 regime (stopping rule unmet, ``P <= N``) is uninformative with the count.
    """
    arms = {f"{t} L={L}": arm(runs, (g, v, t, k, n, L)) for t in TARGETS for L in (L0, L1)}
    l0, l1 = arms[f"local L={L0}"].x, arms[f"local L={L1}"].x
    g0, g1 = arms[f"global L={L0}"].x, arms[f"global L={L1}"].x
    sesoi = rule.sesoi
    if cid == "C1":
        d, room = l0 - l1, _room("local err(L_min)/trivial", float(np.mean(l0)), sesoi)
        used = {a: arms[a] for a in (f"local L={L0}", f"local L={L1}")}
    elif cid == "C2":
        d, room = g1 - g0, _room("global err(L_min)/trivial", float(np.mean(g0)), sesoi)
        used = {a: arms[a] for a in (f"global L={L0}", f"global L={L1}")}
    else:
        d = (g1 - g0) - (l1 - l0)
        room = _both(_room("local err(L_min)/trivial", float(np.mean(l0)), sesoi),
                     _room("global err(L_min)/trivial", float(np.mean(g0)), sesoi))
        used = arms
    room = _both(regime(used), room)
    name = label or f"k={k} N={n}"
    extra = {"k": k, "N": n, "L_min": L0, "L_max": L1, "variant": v,
             **{f"err_{a.replace(' ', '_')}": _mean(arms[a].x) for a in used}}
    return P.cell(name, P.paired(d), rule, room=room, n_diverged=_ndiv(used), extra=extra)


def ntk_cell(runs: Runs, g: str, v: str, k: int, n: int, L0: int, L1: int, rule: P.Rule, label: str = "") -> P.Cell:
    """C4 at one (k, N): the net-minus-NTK change of the local error with depth, per seed on the same
    data set (the kernel job's seed ``s`` is the nets' data set ``s``):

    ``d_s = [ntk_s(L1) - ntk_s(L0)] - [net_s(L1) - net_s(L0)]`` (+ = relative to the NTK, depth favours
    the net on the k-local target: the net-NTK local gap grows with depth). Room: the contrast's range
    given the L_min errors, ``[-(ntk0 + 1 - net0), (1 - ntk0) + net0]``, must hold the SESOI on both
    sides of 0 (e.g. an NTK already at the trivial error with a net at 0 leaves no room upward)."""
    kr = runs.kernel.get((g, v, k, n))
    if kr is None:
        raise Missing(f"kernel baseline {g}/{v} k={k} N={n}")
    depths = list(kr.metrics["depths"])
    if L0 not in depths or L1 not in depths:
        raise Missing(f"kernel baseline at L={L0} and L={L1}")
    a0, a1 = arm(runs, (g, v, "local", k, n, L0)), arm(runs, (g, v, "local", k, n, L1))
    triv = np.asarray(runs.net[(g, v, "local", k, n, L0)].metrics["trivial_err"], float) \
        if (g, v, "local", k, n, L0) in runs.net else 1.0
    K = np.asarray(kr.metrics["ntk_local"], float) / np.reshape(triv, (-1, 1))  # (seeds, depths)
    k0, k1 = K[:, depths.index(L0)], K[:, depths.index(L1)]
    d = (k1 - k0) - (a1.x - a0.x)
    b_ntk, b_net = float(np.mean(k0)), float(np.mean(a0.x))
    ok, why = P.room(0.0, -(b_ntk + 1 - b_net), (1 - b_ntk) + b_net, rule.sesoi)
    room = _both(regime({f"local L={L0}": a0, f"local L={L1}": a1}), (ok, "" if ok else f"contrast range: {why}"))
    extra = {"k": k, "N": n, "L_min": L0, "L_max": L1, "variant": v,
             "net_local_L_min": _mean(a0.x), "net_local_L_max": _mean(a1.x),
             "ntk_local_L_min": _mean(k0), "ntk_local_L_max": _mean(k1),
             "ntk_global_L_min": _mean(np.asarray(kr.metrics["ntk_global"], float)[:, depths.index(L0)]),
             "ntk_global_L_max": _mean(np.asarray(kr.metrics["ntk_global"], float)[:, depths.index(L1)])}
    return P.cell(label or f"k={k} N={n}", P.paired(d), rule, room=room,
                  n_diverged=_ndiv({f"local L={L0}": a0, f"local L={L1}": a1}), extra=extra)


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
