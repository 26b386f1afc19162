"""Rule and cell builders that escape-rate and minibatch-noise share (on top of
:mod:`nnphys.studies.protocol`): identity rules on deviations measured in units of each check's own
tolerance, equivalence rules with a stated margin and its reason, exact (deterministic) effects, and
the finite stand-in for an infinite deviation."""

from __future__ import annotations

import math
from typing import Any

from nnphys.studies import protocol as P

__all__ = ["WORST", "identity_rule", "equivalence_rule", "exact", "identity_cells", "judged"]

# A check whose deviation is infinite (a diverged chain: an infinite stationary moment; a ratio with
# a zero denominator) enters as this finite deviation, so that the tests can reject it.
WORST = 1e9


def identity_rule(fails_if: str, **params: Any) -> P.Rule:
    """An identity rule on deviations measured in units of each check's own stated tolerance
    (so one rule covers checks of different precision): holds when every ``|deviation| <= 1``."""
    return P.Rule(kind="identity", sesoi=1.0, null="the computed quantities agree to their tolerances",
                  alternative="some computed quantity misses its tolerance", fails_if=fails_if,
                  unit="deviation / its tolerance", params=params)


def equivalence_rule(margin: float, what: str, unit: str, why: str, **params: Any) -> P.Rule:
    """An equivalence (TOST) rule on ``what``: holds when every informative cell lies within ``±margin``."""
    return P.Rule(kind="equivalence", sesoi=margin, null=f"|{what}| >= {margin:g}", alternative=f"|{what}| < {margin:g}",
                  fails_if=f"some cell's {what} is significantly outside ±{margin:g} (one-sided, Holm over cells)",
                  unit=unit, params={"margin_why": why, **params})


def exact(value: float) -> P.Effect:
    """A deterministic number (formula, quadrature, oracle) as an effect with no sampling error."""
    return P.Effect(mean=float(value), se=0.0, df=math.inf, n=1)


def identity_cells(rule: P.Rule, checks: dict[str, tuple[float, float]]) -> list[P.Cell]:
    """One identity cell per check ``name: (deviation, tolerance)``, measured as |deviation| / tolerance
    (a non-finite deviation enters as :data:`WORST`)."""
    return [P.cell(name, exact(min(abs(dev) / tol, WORST) if math.isfinite(dev) else WORST), rule,
                   extra={"deviation": dev, "tolerance": tol}) for name, (dev, tol) in checks.items()]


def judged(book: Any, cid: str, cells: list[P.Cell], evidence: dict[str, Any], summary: str):
    """:func:`P.judge` the cells under claim ``cid``'s rule and build the claim with ``book``
    (:class:`~nnphys.studies._kit.ClaimBook`); ``summary`` (the numbers behind it) leads."""
    return book.judged(cid, P.judge(cells, book.claims[cid].rule), summary_prefix=f"{summary}; " if summary else "",
                       **evidence)
