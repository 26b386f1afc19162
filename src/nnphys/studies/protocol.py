"""The claim protocol: one way, for every claim of every study, to turn per-seed measurements
into a verdict that could have come out the other way.

A claim declares a :class:`Rule` before any run (its kind, its smallest effect of interest or
margin, α, the power it needs, what would make it fail). Its analysis measures one
:class:`Effect` per *cell* (a regime: a task, an (η, B) point, a sample size N, ...), turns each
into a judged :class:`Cell` with :func:`cell`, and hands the cells to :func:`judge`, the one
aggregation rule. Every number :func:`judge` uses goes into the evidence it returns, and the
one-line summary is built from those same numbers, so a rule is written once.

Conventions [default] (fixed here, for every study):

- **Sign.** A directional effect is signed so that ``+`` is the claimed direction (e.g. for "depth
  helps": ``err(L=1) - err(L_max)`` per seed). An equivalence effect is the signed deviation from
  the claimed value (e.g. ``phi_fit - phi_paper``).
- **Paired designs get paired tests** (:func:`paired`: a one-sample t on per-seed differences);
  :func:`welch` only where arms share no seeds or data.
- **Divergence is an outcome** (:func:`itt`): a diverged seed's value is replaced by the worst
  value of its arm (e.g. the trivial predictor's error) *before* differences are taken, and the
  counts travel with the cell into the evidence. A seed is never dropped for having diverged.
- **Informativeness** is fixed by the rule, not by the outcome: a directional cell is judged only
  if its baseline leaves room for the SESOI in *both* directions (:func:`room`: a floor and a
  ceiling), and a directional claim only if the pooled test over those cells has power
  ``>= rule.power`` to detect the SESOI at the measured spread (one-sided t, level α) — one
  all-or-none decision, because dropping single cells whose spread came out large would select
  on the outcome (a diverged seed lowers a cell's mean *and* widens its spread). An equivalence
  cell is judged only if it is precise enough to show equivalence at deviation 0 with that power
  (:func:`tost_power`). Otherwise the cell (or claim) is ``uninformative`` and says why. A cell
  whose seeds all agree (s.e. 0) is judged exactly, never dropped.
- **One aggregation rule** (:func:`judge`):

  *directional* — over informative cells, the pooled effect ``m ± se``, each cell weighted by
  its number of units (seeds) — by design, not by its estimated variance, which from a few seeds
  would favour the cells whose spread happened to come out small — with Welch–Satterthwaite df. ``fails`` when some informative cell is
  significantly opposite after Holm over cells (one-sided, family α), or the pooled effect is
  significantly opposite, or the pooled one-sided upper bound ``m + t(1-α) se`` is below the SESOI
  (the effect of interest is ruled out). ``holds`` when none of that and the pooled effect is
  significantly in the claimed direction (one-sided p < α). ``uninformative`` when no cell has
  room to move or the pooled power is short; otherwise ``inconclusive``. Under no effect
  ``P(holds) <= α``, and under an effect exactly at the SESOI ``P(fails) <= α``.

  *equivalence* — an intersection-union test over informative cells: ``holds`` when every
  informative cell's ``1 - 2α`` CI lies inside ``±margin`` (two one-sided tests, TOST, each at
  α; no correction is needed for an intersection-union test); ``fails`` when some cell with room
  and a spread estimate — precise or not — is significantly outside the margin after Holm (p of ``|deviation| > margin``: twice the
  smaller one-sided p-value);
  ``uninformative`` when no cell is informative; else ``inconclusive``. Under a deviation at the
  margin ``P(holds) <= α``.

  *identity* — a numerical identity ([derived]: a formula against its exact recursion, a theorem
  checked in floating point): ``holds`` when every cell's ``|deviation| <= tolerance``, else
  ``fails``. No statistics; ``sesoi`` is the stated tolerance.

- **Versions.** :func:`rule_version` hashes the claim function's source, the rule's parameters
  and this module's source: any change to how a verdict is reached changes the version that is
  stored with every results set and printed in the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import sys
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
from scipy import special as _sp

ALPHA = 0.05  # [default] family-wise α of one claim
POWER = 0.8  # [default] power a directional cell needs at the SESOI to be judged

Kind = Literal["directional", "equivalence", "identity"]
Verdict = Literal["holds", "fails", "inconclusive", "uninformative"]

_TESTS = {
    "directional": "paired one-sided t per cell; inverse-variance pooled effect over informative cells; "
                   "Holm over cells for the opposite direction",
    "equivalence": "TOST per cell against ±margin (intersection-union over informative cells); "
                   "Holm over cells for 'outside the margin'",
    "identity": "|deviation| <= tolerance in every cell (exact check, no statistics)",
}


@dataclasses.dataclass(frozen=True)
class Rule:
    """A claim's pre-registered rule.

    ``sesoi``: directional — the smallest effect of interest, in the effect's ``unit``;
    equivalence — the margin; identity — the numerical tolerance. ``null``/``alternative``/
    ``fails_if`` are the plain-words statement of the test; ``params`` any other constant the
    claim function uses (it enters the version)."""

    kind: Kind
    sesoi: float
    direction: Literal["greater", "less"] = "greater"
    alpha: float = ALPHA
    power: float = POWER
    null: str = ""
    alternative: str = ""
    fails_if: str = ""
    unit: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _TESTS:
            raise ValueError(f"rule kind must be one of {sorted(_TESTS)}, got {self.kind!r}")
        if not (self.sesoi > 0 and math.isfinite(self.sesoi)):
            raise ValueError(f"sesoi/margin/tolerance must be finite and > 0, got {self.sesoi!r}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha!r}")
        if not 0 < self.power < 1:
            raise ValueError(f"power must be in (0, 1), got {self.power!r}")

    @property
    def test(self) -> str:
        return _TESTS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = dict(self.params)
        d["test"] = self.test
        return d


_PROTOCOL_SHA = hashlib.sha256(inspect.getsource(sys.modules[__name__]).encode()).hexdigest()


def rule_version(rule: Rule | None, fn: Callable | None = None) -> str:
    """12 hex digits of sha256(claim function source, rule parameters, protocol source)."""
    src = inspect.getsource(fn) if fn is not None else ""
    rd = json.dumps(rule.to_dict() if rule is not None else None, sort_keys=True, default=repr)
    return hashlib.sha256("\x00".join([src, rd, _PROTOCOL_SHA]).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------
# effects
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Effect:
    """An estimated effect: ``mean ± se`` with ``df`` degrees of freedom from ``n`` units (seeds)."""

    mean: float
    se: float
    df: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"mean": _f(self.mean), "se": _f(self.se), "df": _f(self.df), "n": self.n}


def _f(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else (None if math.isnan(x) else x)


def _finite(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} has non-finite entries: apply itt() to diverged seeds first")
    return a


def itt(values: Sequence[float], diverged: Sequence[bool] | None, worst: float) -> np.ndarray:
    """Divergence as an outcome: ``values`` with every diverged (or non-finite) entry replaced by
    ``worst``. Shape ``(n,)`` in, ``(n,)`` out."""
    v = np.asarray(values, dtype=float).copy()
    bad = ~np.isfinite(v)
    if diverged is not None:
        bad |= np.asarray(diverged, dtype=bool)
    v[bad] = worst
    return v


def paired(diffs: Sequence[float]) -> Effect:
    """Paired effect from per-seed differences ``(n,)``: mean, s.e. (ddof 1), df = n - 1."""
    d = _finite(diffs, "paired differences")
    n = d.size
    if n == 0:
        return Effect(math.nan, math.nan, 0.0, 0)
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Effect(float(d.mean()), se, float(n - 1), n)


def welch(a: Sequence[float], b: Sequence[float]) -> Effect:
    """Unpaired effect ``mean(a) - mean(b)`` with Welch's s.e. and Welch–Satterthwaite df."""
    x, y = _finite(a, "arm a"), _finite(b, "arm b")
    if x.size < 2 or y.size < 2:
        return Effect(float(x.mean() - y.mean()) if x.size and y.size else math.nan, math.nan, 0.0,
                      min(x.size, y.size))
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1)) if va + vb > 0 else float(x.size + y.size - 2)
    return Effect(float(x.mean() - y.mean()), se, float(df), min(x.size, y.size))


def known(mean: float, se: float, n: int = 1) -> Effect:
    """An effect whose s.e. is known from elsewhere (a bootstrap, a Monte-Carlo count, an MLE's
    Fisher information): judged with normal critical values (df = inf)."""
    return Effect(float(mean), float(se), math.inf, n)


# Student-t and normal distribution functions through scipy.special: the calibration harness
# calls them millions of times, and scipy.stats' distribution objects cost ~1 ms a call.
def _cdf(x: float, df: float) -> float:
    return float(_sp.ndtr(x) if not math.isfinite(df) else _sp.stdtr(df, x))


def _ppf(q: float, df: float) -> float:
    return float(_sp.ndtri(q) if not math.isfinite(df) else _sp.stdtrit(df, q))


def p_greater(e: Effect, shift: float = 0.0) -> float:
    """One-sided p of ``H0: effect <= shift`` against ``effect > shift``."""
    if not (math.isfinite(e.mean) and e.df > 0 and e.se >= 0 and math.isfinite(e.se)):
        return math.nan
    if e.se == 0:
        return 0.0 if e.mean > shift else 1.0
    return 1.0 - _cdf((e.mean - shift) / e.se, e.df)


def p_less(e: Effect, shift: float = 0.0) -> float:
    """One-sided p of ``H0: effect >= shift`` against ``effect < shift``."""
    if not (math.isfinite(e.mean) and e.df > 0 and e.se >= 0 and math.isfinite(e.se)):
        return math.nan
    if e.se == 0:
        return 0.0 if e.mean < shift else 1.0
    return _cdf((e.mean - shift) / e.se, e.df)


def ci(e: Effect, alpha: float = ALPHA) -> tuple[float, float]:
    """The ``1 - 2α`` two-sided CI (the interval of TOST and of two one-sided tests at α)."""
    if not (math.isfinite(e.se) and e.df > 0):
        return (math.nan, math.nan)
    q = _ppf(1 - alpha, e.df)
    return (e.mean - q * e.se, e.mean + q * e.se)


def power(e: Effect, sesoi: float, alpha: float = ALPHA) -> float:
    """Power of the one-sided test at level ``alpha`` to detect a true effect ``sesoi`` when the
    s.e. is the measured ``e.se`` (noncentral t with df ``e.df``; normal for df = inf)."""
    if not (math.isfinite(e.se) and e.df > 0):
        return 0.0
    if e.se == 0:
        return 1.0
    nc = sesoi / e.se
    if not math.isfinite(e.df):
        return float(_sp.ndtr(nc - _sp.ndtri(1 - alpha)))
    return float(1.0 - _sp.nctdtr(e.df, nc, _ppf(1 - alpha, e.df)))


def room(baseline: float, floor: float, ceiling: float, sesoi: float) -> tuple[bool, str]:
    """Room to move: the baseline must leave ``sesoi`` below it (above ``floor``) *and* above it
    (below ``ceiling``), so that the claimed effect and its opposite could both show."""
    if not math.isfinite(baseline):
        return False, f"baseline is not finite ({baseline})"
    if baseline - floor < sesoi:
        return False, f"baseline {baseline:.4g} within the SESOI {sesoi:.4g} of the floor {floor:.4g}"
    if ceiling - baseline < sesoi:
        return False, f"baseline {baseline:.4g} within the SESOI {sesoi:.4g} of the ceiling {ceiling:.4g}"
    return True, ""


def holm(pvals: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm's step-down rejections at family-wise ``alpha`` (nan p-values never reject)."""
    p = np.asarray(pvals, dtype=float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    out = [False] * p.size
    m = int(np.sum(~np.isnan(p)))
    for rank, i in enumerate(order):
        if np.isnan(p[i]) or p[i] > alpha / (m - rank):
            break
        out[int(i)] = True
    return out


# ------------------------------------------------------------------------------------------------
# cells and the aggregation rule
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    """One judged cell. ``effect`` is signed as the rule's convention (module docstring)."""

    name: str
    effect: Effect
    informative: bool
    why: str
    power: float
    n_diverged: Mapping[str, int]
    extra: Mapping[str, Any]
    # room to move and a spread estimate (informative may still be False for an equivalence cell
    # too imprecise to ever show equivalence: such a cell can fail the claim, never hold it)
    testable: bool = True

    def to_dict(self, rule: Rule) -> dict[str, Any]:
        lo, hi = ci(self.effect, rule.alpha)
        d = {"cell": self.name, **self.effect.to_dict(), "ci": [_f(lo), _f(hi)],
             "informative": self.informative}
        if rule.kind == "directional":
            d |= {"p_for": _f(p_greater(self.effect)), "p_against": _f(p_less(self.effect)),
                  "power_at_sesoi": round(self.power, 3)}
        elif rule.kind == "equivalence":
            d |= {"p_outside": _f(_p_outside(self.effect, rule.sesoi))}
        if self.why:
            d["why"] = self.why
        if self.n_diverged:
            d["diverged"] = dict(self.n_diverged)
        return d | dict(self.extra)


def tost_power(e: Effect, margin: float, alpha: float = ALPHA) -> float:
    """Power of the two one-sided tests at level ``alpha`` to show ``|deviation| < margin`` when
    the true deviation is 0 and the s.e. is the measured ``e.se``: ``2 F(margin/se - t(1-α)) - 1``
    (floored at 0), with F the t (or normal) distribution function."""
    if not (math.isfinite(e.se) and e.df > 0):
        return 0.0
    if e.se == 0:
        return 1.0
    return max(0.0, 2.0 * _cdf(margin / e.se - _ppf(1 - alpha, e.df), e.df) - 1.0)


def cell(name: str, effect: Effect, rule: Rule, *, room: tuple[bool, str] | None = None,
         n_diverged: Mapping[str, int] | None = None, extra: Mapping[str, Any] | None = None) -> Cell:
    """Judge one cell's informativeness under ``rule`` (see the module docstring).

    ``effect`` is signed as the module docstring says; a directional rule with
    ``direction="less"`` takes the effect in its natural sign and negates it here. ``room``: the
    result of :func:`room` for this cell's baseline (``None``: the claim has no floor or ceiling,
    e.g. a slope). Directional cells also need power ``>= rule.power`` at the SESOI; equivalence
    cells need the precision to show equivalence at deviation 0 with that power
    (:func:`tost_power`), so a cell too noisy to ever hold cannot block or dilute the others;
    identity cells are always judged. A cell whose seeds all agree (s.e. 0) is judged exactly."""
    if rule.kind == "directional" and rule.direction == "less":
        effect = Effect(-effect.mean, effect.se, effect.df, effect.n)
    ok, why = room if room is not None else (True, "")
    pw = math.nan
    if ok and rule.kind != "identity" and not (math.isfinite(effect.se) and effect.df > 0):
        ok, why = False, f"no spread estimate (n = {effect.n})"
    if rule.kind == "directional":
        # reported, not a gate: the power that decides is the pooled test's (judge), because
        # dropping the cells whose measured spread came out large selects on the outcome (a
        # diverged seed both lowers a cell's mean and widens its spread)
        pw = power(effect, rule.sesoi, rule.alpha)
    testable = ok
    if rule.kind == "equivalence":
        pw = tost_power(effect, rule.sesoi, rule.alpha)
        if ok and pw < rule.power:
            ok, why = False, (f"too imprecise for the margin ±{rule.sesoi:.4g}: s.e. {effect.se:.3g} gives "
                              f"power {pw:.2f} < {rule.power} to show equivalence (n = {effect.n})")
    if rule.kind == "identity" and not math.isfinite(effect.mean):
        ok, why = False, "deviation is not finite"
        testable = False
    return Cell(name, effect, ok, why, pw, dict(n_diverged or {}), dict(extra or {}), testable)


def _p_outside(e: Effect, margin: float) -> float:
    """p of ``H0: |deviation| <= margin`` against "outside ±margin": twice the smaller of the two
    one-sided p-values (the side is chosen from the data, so its p is doubled; without that the
    size at the boundary approaches 2α for a noisy cell)."""
    if e.se == 0 and math.isfinite(e.mean):
        return 0.0 if abs(e.mean) > margin else 1.0
    return min(1.0, 2.0 * min(p_greater(e, margin), p_less(e, -margin)))


@dataclasses.dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    evidence: dict[str, Any]
    summary: str


def _pool(cells: Sequence[Cell]) -> Effect:
    """The pooled effect over cells, weighted by design (each cell's number of units), not by its
    estimated variance: inverse-variance weights from a few seeds favour the cells whose spread
    happened to come out small, which makes the pooled test anti-conservative (and a diverged seed
    would move weight to the cells without one). df by Welch–Satterthwaite."""
    w = np.array([float(max(c.effect.n, 1)) for c in cells])
    m = float(np.sum(w * np.array([c.effect.mean for c in cells])) / np.sum(w))
    v = w**2 * np.array([c.effect.se for c in cells]) ** 2 / np.sum(w) ** 2
    var = float(np.sum(v))
    dfs = np.array([c.effect.df for c in cells], dtype=float)
    if var == 0:
        return Effect(m, 0.0, math.inf, int(sum(c.effect.n for c in cells)))
    den = float(np.sum(np.where(np.isfinite(dfs), v**2 / np.where(np.isfinite(dfs), dfs, 1.0), 0.0)))
    df = var**2 / den if den > 0 else math.inf
    return Effect(m, math.sqrt(var), df, int(sum(c.effect.n for c in cells)))


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def judge(cells: Sequence[Cell], rule: Rule) -> Judgement:
    """The one aggregation rule (module docstring). ``cells`` may be empty (``uninformative``)."""
    info = [c for c in cells if c.informative]
    testable = [c for c in cells if c.testable]
    skipped = {c.name: c.why for c in cells if not c.informative}
    ev: dict[str, Any] = {"rule": rule.to_dict(), "cells": [c.to_dict(rule) for c in cells],
                          "n_informative": len(info), "n_cells": len(cells)}
    div = {}
    for c in cells:
        for arm, k in c.n_diverged.items():
            div[arm] = div.get(arm, 0) + int(k)
    if div:
        ev["diverged"] = div
    if not info and not (rule.kind == "equivalence" and testable):
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no cells"
        return Judgement("uninformative", ev, f"no informative cell ({why})")

    if rule.kind == "identity":
        worst = max(info, key=lambda c: abs(c.effect.mean))
        ok = all(abs(c.effect.mean) <= rule.sesoi for c in info)
        ev["max_abs_deviation"] = _f(abs(worst.effect.mean))
        s = (f"max |deviation| {_fmt(abs(worst.effect.mean))} ({worst.name}) "
             f"{'<=' if ok else '>'} tolerance {_fmt(rule.sesoi)} over {len(info)} cells")
        return Judgement("holds" if ok else "fails", ev, s)

    if rule.kind == "equivalence":
        # every testable cell may show the claim false (Holm over all of them: an imprecise cell
        # shown outside the margin is evidence); only the precise ones can show it true
        rej = holm([_p_outside(c.effect, rule.sesoi) for c in testable], rule.alpha)
        inside = [ci(c.effect, rule.alpha) for c in info]
        eq = [lo > -rule.sesoi and hi < rule.sesoi for lo, hi in inside]
        ev |= {"outside_after_holm": [c.name for c, r in zip(testable, rej) if r],
               "equivalent": [c.name for c, e in zip(info, eq) if e]}
        if any(rej):
            bad = [c for c, r in zip(testable, rej) if r]
            s = (f"{len(bad)}/{len(testable)} cells outside ±{_fmt(rule.sesoi)} (Holm, α={rule.alpha}): "
                 + ", ".join(f"{c.name} {_fmt(c.effect.mean)}±{_fmt(c.effect.se)}" for c in bad[:3]))
            return Judgement("fails", ev, s)
        if not info:
            why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
            return Judgement("uninformative", ev, f"no cell precise enough to show equivalence ({why})")
        if all(eq):
            s = f"all {len(info)} informative cells within ±{_fmt(rule.sesoi)} (TOST, α={rule.alpha})"
            return Judgement("holds", ev, s + (f"; {len(skipped)} uninformative" if skipped else ""))
        s = f"{sum(eq)}/{len(info)} cells shown within ±{_fmt(rule.sesoi)}, none shown outside"
        return Judgement("inconclusive", ev, s)

    pooled = _pool(info)
    lo, hi = ci(pooled, rule.alpha)
    p_for, p_against = p_greater(pooled), p_less(pooled)
    pw = power(pooled, rule.sesoi, rule.alpha)
    ev["pooled_power_at_sesoi"] = round(pw, 3)
    if pw < rule.power:
        return Judgement("uninformative", ev, f"power {pw:.2f} < {rule.power} to detect the SESOI "
                                              f"{_fmt(rule.sesoi)} at the pooled s.e. {_fmt(pooled.se)} "
                                              f"({len(info)}/{len(cells)} cells with room to move)")
    rej = holm([p_less(c.effect) for c in info], rule.alpha)
    ev["pooled"] = {**pooled.to_dict(), "ci": [_f(lo), _f(hi)], "p_for": _f(p_for), "p_against": _f(p_against)}
    ev["opposite_after_holm"] = [c.name for c, r in zip(info, rej) if r]
    tail = f"pooled {_fmt(pooled.mean)} ± {_fmt(pooled.se)} over {len(info)}/{len(cells)} cells"
    if any(rej):
        return Judgement("fails", ev, f"{tail}; significantly opposite in {', '.join(ev['opposite_after_holm'])} "
                                      f"(Holm, α={rule.alpha})")
    if p_against < rule.alpha:
        return Judgement("fails", ev, f"{tail}: significantly opposite (p = {p_against:.2g})")
    if hi < rule.sesoi:
        why = "positive but below the SESOI" if p_for < rule.alpha else "the effect of interest is ruled out"
        return Judgement("fails", ev, f"{tail}: upper bound {_fmt(hi)} < SESOI {_fmt(rule.sesoi)} ({why})")
    if p_for < rule.alpha:
        return Judgement("holds", ev, f"{tail}: significant in the claimed direction (p = {p_for:.2g})")
    return Judgement("inconclusive", ev, f"{tail}: neither shown (p for {p_for:.2g}, upper bound "
                                         f"{_fmt(hi)} >= SESOI {_fmt(rule.sesoi)})")


def directional(cells: Sequence[tuple[str, Sequence[float]]], rule: Rule, **kw: Any) -> Judgement:
    """Shortcut: ``[(cell name, per-seed paired differences), ...]`` -> :func:`judge`, no room rule."""
    return judge([cell(n, paired(d), rule, **kw) for n, d in cells], rule)
