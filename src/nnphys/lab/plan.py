"""A dry run: what a sweep would run, what the store already holds, and how long the rest may
take, from a cost model per job kind fit to the stored timings of the same study. Reads only.

Cost model. A job's *work* is the product of its size-like parameters: every integer >= 2 whose
name does not contain ``seed`` (sizes, counts, widths, epochs, steps, chains) and the length of
every list (seeds of an ensemble, grids of learning rates or depths), nested dicts included.
Per kind (the job's ``kind``), ``log(seconds) = a + b log(work)`` is fit by least squares to the
finished jobs of that kind in the store (``b`` kept in [0, 3]); where their work does not vary,
``b = 1`` (time proportional to work, the prior) and only ``a`` is fit. The fit's error is
measured on held-out jobs (leave one out: each timed job predicted from the others) and reported
as the median factor between prediction and measurement. A kind without timings borrows the
median cost per unit of work of the study's timed kinds with ``b = 1`` (a rough prior, stated as
such); a study without timings gets no estimate.

This is a proxy: parameters that cut work (a larger batch for a fixed number of epochs, early
stopping) also count as size, so the held-out error is the number to trust, and an extrapolation
far beyond the stored sizes (quick timings for a paper-scale plan) is only as good as ``b``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnphys.lab.runner import keyed_jobs
from nnphys.lab.store import Store
from nnphys.studies.base import Study

MAX_EXPONENT = 3.0


def work(job: Any, name: str = "") -> float:
    """The job's size proxy (see the module docstring); 1.0 for a job without size parameters."""
    if isinstance(job, dict):
        return math.prod(work(v, str(k)) for k, v in job.items())
    if isinstance(job, (list, tuple)):
        return float(max(1, len(job)))
    if isinstance(job, bool) or not isinstance(job, int) or "seed" in name.lower():
        return 1.0
    return float(job) if job >= 2 else 1.0


@dataclass
class CostModel:
    """``seconds = exp(a) * work ** b`` for one kind."""

    a: float
    b: float
    n: int  # timed jobs it was fit to
    source: str  # "fit" (b fit), "fit, b=1" (work did not vary), "prior" (borrowed from other kinds)
    held_out: float | None = None  # median factor |log(pred / measured)| on held-out jobs, as exp(.)

    def predict(self, w: float) -> float:
        return math.exp(self.a + self.b * math.log(w))

    def describe(self) -> str:
        if self.source == "prior":
            return "prior: other kinds' s/work, b=1"
        err = "held-out n/a (n<3)" if self.held_out is None else f"held-out ×{self.held_out:.2f}"
        return f"b={self.b:.2f} ({'fit' if self.source == 'fit' else 'b=1 prior'}), n={self.n}, {err}"


def _fit(logw: np.ndarray, logt: np.ndarray) -> tuple[float, float, str]:
    if len(logw) >= 2 and float(np.ptp(logw)) > 1e-9:
        b, a = np.polyfit(logw, logt, 1)
        b = float(np.clip(b, 0.0, MAX_EXPONENT))
        return float(np.mean(logt - b * logw)), b, "fit"
    return float(np.mean(logt - logw)), 1.0, "fit, b=1"


def fit_cost(works: list[float], seconds: list[float]) -> CostModel:
    """The cost model of one kind from its timed jobs (``seconds`` > 0)."""
    logw = np.log(np.asarray(works, dtype=float))
    logt = np.log(np.maximum(np.asarray(seconds, dtype=float), 1e-6))
    a, b, source = _fit(logw, logt)
    held = None
    if len(logw) >= 3:
        errs = []
        for i in range(len(logw)):
            keep = np.arange(len(logw)) != i
            ai, bi, _ = _fit(logw[keep], logt[keep])
            errs.append(abs(ai + bi * logw[i] - logt[i]))
        held = math.exp(statistics.median(errs))
    return CostModel(a, b, len(logw), source, held)


@dataclass
class KindPlan:
    kind: str
    planned: int = 0
    done: int = 0
    failed: int = 0
    diverged: int = 0
    timed: int = 0  # stored finished jobs of this kind with a duration
    median_s: float | None = None  # their median duration
    model: CostModel | None = None
    missing_work: list[float] = field(default_factory=list)  # work of each planned job not stored

    @property
    def missing(self) -> int:
        return self.planned - self.done - self.failed - self.diverged

    @property
    def estimate_s(self) -> float | None:
        """Serial seconds for the missing jobs (None: no cost model for this kind)."""
        if self.model is None:
            return None
        return sum(self.model.predict(w) for w in self.missing_work)


@dataclass
class Plan:
    study: str
    kinds: dict[str, KindPlan] = field(default_factory=dict)

    @property
    def planned(self) -> int:
        return sum(k.planned for k in self.kinds.values())

    def estimate_s(self, workers: int = 1) -> float | None:
        """Wall seconds for the missing jobs on ``workers`` workers (perfect sharing); None when
        some kind with missing jobs has no cost model."""
        parts = [k.estimate_s for k in self.kinds.values() if k.missing]
        if any(p is None for p in parts):
            return None
        return sum(parts) / max(1, workers)

    def held_out(self) -> float | None:
        """The largest held-out error factor among the fitted kinds with missing jobs."""
        errs = [k.model.held_out for k in self.kinds.values()
                if k.missing and k.model is not None and k.model.held_out is not None]
        return max(errs) if errs else None

    def uses_prior(self) -> bool:
        return any(k.missing and k.model is not None and k.model.source == "prior" for k in self.kinds.values())


def _kind(job: dict[str, Any]) -> str:
    return str(job.get("kind", "-"))


def plan(study: Study, jobs: list[dict[str, Any]], store: Store | None) -> Plan:
    """Count ``jobs`` by kind against ``store`` (None: no store yet) and fit the cost models."""
    planned = keyed_jobs(study, jobs)
    out = Plan(study.name)
    for job in planned.values():
        out.kinds.setdefault(_kind(job), KindPlan(_kind(job))).planned += 1
    statuses = store.statuses(study.name, planned) if store is not None else {}
    for key, status in statuses.items():
        kp = out.kinds[_kind(planned[key])]
        setattr(kp, status, getattr(kp, status) + 1)
    for key, job in planned.items():
        if key not in statuses:
            out.kinds[_kind(job)].missing_work.append(work(job))
    if store is None:
        return out
    timed: dict[str, tuple[list[float], list[float]]] = {}
    for r in store.results(study.name):
        if r.status == "done" and r.started is not None and r.ended is not None:
            w, t = timed.setdefault(_kind(r.params), ([], []))
            w.append(work(r.params))
            t.append(r.ended - r.started)
    rates = []
    for kind, (w, t) in timed.items():
        rates += [ti / wi for wi, ti in zip(w, t)]
    for kind, kp in out.kinds.items():
        w, t = timed.get(kind, ([], []))
        kp.timed = len(t)
        kp.median_s = statistics.median(t) if t else None
        if t:
            kp.model = fit_cost(w, t)
        elif rates:
            kp.model = CostModel(math.log(max(statistics.median(rates), 1e-12)), 1.0, 0, "prior")
    return out
