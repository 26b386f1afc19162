"""Verdict stability: how often a bootstrap over the seeds reproduces each claim's verdict.

For a study with a ``resample`` hook (see :mod:`nnphys.studies.base`) we draw ``n_resamples``
bootstrap copies of its results (seeds with replacement, one draw shared by every job, as the
hook defines) and re-run ``analyse`` on each. A claim's *agreement* is the fraction of resamples
whose verdict equals the verdict on the full data. [default] A verdict whose agreement is below
``FRAGILE_BELOW`` = 0.8 is *fragile*: one in five plausible reruns with other seeds would report
something else.

The generator is fixed: ``nnphys.seeding.numpy_rng(seed, "verdict-stability", study.name)``, so
the same store gives the same agreement on every machine. With ``n`` resamples the agreement
``p`` has binomial standard error ``sqrt(p (1 - p) / n)`` (<= 0.035 at the default n = 200).

A study without the hook reports ``None`` (the report shows "n/a"): its verdicts are not
computed from seeds, or it has not said how to resample them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Sequence

from nnphys.errors import ConfigError
from nnphys.seeding import numpy_rng
from nnphys.studies.base import Claim, Result, Study, StudySpec

FRAGILE_BELOW = 0.8  # [default] agreement below this marks a verdict fragile
DEFAULT_RESAMPLES = 200  # [default] bootstrap resamples per study
MIN_RESAMPLES = 200  # [default] the fewest the report accepts (tests and previews: allow_fewer)


@dataclasses.dataclass(frozen=True)
class Stability:
    """Agreement per claim id (``agree[cid]`` in [0, 1]) over ``n_resamples`` bootstrap copies."""

    n_resamples: int
    seed: int
    agree: dict[str, float]
    seconds: float

    def fragile(self, cid: str) -> bool:
        return cid in self.agree and self.agree[cid] < FRAGILE_BELOW

    def se(self, cid: str) -> float:
        """Binomial standard error of ``agree[cid]``."""
        p = self.agree[cid]
        return math.sqrt(max(p * (1 - p), 0.0) / self.n_resamples)

    def to_dict(self) -> dict:
        return {"n_resamples": self.n_resamples, "seed": self.seed, "seconds": round(self.seconds, 3),
                "fragile_below": FRAGILE_BELOW, "agree": dict(self.agree),
                "fragile": sorted(c for c in self.agree if self.fragile(c))}


def verdict_stability(
    study: Study,
    spec: StudySpec,
    results: Sequence[Result],
    claims: Sequence[Claim] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    allow_fewer: bool = False,
) -> Stability | None:
    """Bootstrap agreement of every claim's verdict; ``None`` when the study has no hook.

    ``claims``: the full-data claims when already computed (saves one ``analyse``).
    Fewer than ``MIN_RESAMPLES`` resamples only with ``allow_fewer=True`` (tests, previews).
    An exception inside ``analyse`` on a resample propagates: it is a bug of the analysis.
    """
    if study.resample is None:
        return None
    if n_resamples < 1 or (n_resamples < MIN_RESAMPLES and not allow_fewer):
        raise ConfigError("n_resamples", f"must be >= {MIN_RESAMPLES} (got {n_resamples}); "
                          "fewer only with allow_fewer=True")
    t0 = time.perf_counter()
    full = {c.id: c.verdict for c in (claims if claims is not None else study.analyse(spec, list(results)))}
    rng = numpy_rng(seed, "verdict-stability", study.name)
    same = dict.fromkeys(full, 0)
    for _ in range(n_resamples):
        got = {c.id: c.verdict for c in study.analyse(spec, study.resample(list(results), rng))}
        for cid, v in full.items():
            same[cid] += got.get(cid) == v  # a claim the resample drops counts as a change
    return Stability(n_resamples, seed, {c: same[c] / n_resamples for c in full}, time.perf_counter() - t0)
