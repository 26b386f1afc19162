"""The toy study's claims: one function per claim, named after its id; the first paragraph of its
docstring is the statement, the rest says the rule in words."""

from __future__ import annotations

import numpy as np

from nnphys.studies import protocol as P
from nnphys.studies._kit import ClaimBook, Missing, resample_result

BOOK = ClaimBook()


def context(spec, results) -> dict[int, np.ndarray]:
    """``{n: sample means over the seeds}`` of the finished jobs."""
    return {r.params["n"]: np.asarray(r.metrics["means"], float) for r in results if r.ok}


def _means(ctx: dict[int, np.ndarray], n: int) -> np.ndarray:
    if n not in ctx:
        raise Missing(f"draws jobs of size {n}")
    return ctx[n]


@BOOK.claim("T1", tag="derived", rule=P.Rule("equivalence", 0.1, null="|E[mean]| >= 0.1",
                                             alternative="|E[mean]| < 0.1", fails_if="the mean is off zero"))
def t1(spec, ctx):
    """The sample mean of standard normal draws is centred on zero.

    Rule: an equivalence test (TOST) at the largest size: the mean over seeds of the sample
    means lies within ±0.1 of zero."""
    n = max(spec.sizes)
    return BOOK.judged("T1", P.judge([P.cell(f"n={n}", P.paired(_means(ctx, n)), BOOK.claims["T1"].rule)],
                                     BOOK.claims["T1"].rule))


@BOOK.claim("T2", tag="derived", rule=P.Rule("directional", 0.1, null="no shrinkage",
                                             alternative="|mean| shrinks with n", fails_if="|mean| grows with n"))
def t2(spec, ctx):
    """More draws bring the sample mean closer to zero.

    Rule: per seed, |mean| at the smallest size minus |mean| at the largest (paired over seeds),
    directional with a smallest effect of interest of 0.1."""
    lo, hi = min(spec.sizes), max(spec.sizes)
    d = np.abs(_means(ctx, lo)) - np.abs(_means(ctx, hi))
    rule = BOOK.claims["T2"].rule
    return BOOK.judged("T2", P.judge([P.cell(f"n={lo} vs n={hi}", P.paired(d), rule)], rule))


def analyse(spec, results):
    return BOOK.analyse(spec, context(spec, results))


def resample(results, rng):
    """The seeds drawn with replacement, one draw shared by every job (they share the seeds)."""
    n = len(results[0].params["seeds"]) if results else 0
    idx = rng.integers(0, n, n)
    return [resample_result(r, idx, n) for r in results]
