"""A dry run: what a sweep would run, what the store already holds, and how long the rest may
take, from a cost model per job kind fit to the stored timings of the same study. Reads only.

Cost model. A job's size is described by its *features*: ``log(value)`` of every integer
parameter that is not a seed (sizes, counts, widths, epochs, steps, chains; 0 counts as 1) and
``log(length)`` of every list (the seeds of an ensemble, a grid of learning rates or depths),
nested dicts included (``data.n_val``). Per kind (the job's ``kind``),
``log(seconds) = a + sum_j b_j feature_j`` is fit by ridge-regularised least squares to the
finished jobs of that kind in the store, on the features that vary among them (the others are
constant there and go into ``a``). Its error is measured on held-out jobs (leave one out: each
timed job predicted from the others) and reported as the median factor between prediction and
measurement. A planned job whose feature lies outside the stored range (or differs from a value
that never varied) is an extrapolation: the estimate says which features, since the model can
only have learnt how time scales with what varied. A kind without timings gets the median time
per job of the study's timed jobs (a rough prior, stated as such); a study without timings gets
no estimate.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnphys.lab.runner import keyed_jobs
from nnphys.studies.job import params_of
from nnphys.lab.store import Store, open_readonly
from nnphys.studies.base import Study

RIDGE = 1e-2  # [default] ridge penalty on standardised features (keeps collinear sizes finite)
SLACK = math.log(1.05)  # a feature within 5 % of the stored range is not an extrapolation


def features(job: Any, name: str = "") -> dict[str, float]:
    """``{dotted name: log size}`` of a job's parameters (see the module docstring)."""
    out: dict[str, float] = {}
    if isinstance(job, dict):
        for k, v in job.items():
            out.update(features(v, f"{name}.{k}" if name else str(k)))
    elif isinstance(job, (list, tuple)):
        out[name] = math.log(max(1, len(job)))
    elif isinstance(job, int) and not isinstance(job, bool) and "seed" not in name.lower():
        out[name] = math.log(max(1, job)) if abs(job) < 2**53 else 0.0
    return out


@dataclass
class CostModel:
    """``log(seconds) = a + sum_j b[j] * feature_j`` for one kind; ``ranges``: the stored range of
    every feature (varying or not)."""

    a: float
    b: dict[str, float]
    ranges: dict[str, tuple[float, float]]
    n: int  # timed jobs it was fit to
    prior: bool = False  # the study's median time per job, not a fit
    held_out: float | None = None  # median factor between prediction and measurement, held-out jobs

    def predict(self, feats: dict[str, float]) -> float:
        return math.exp(self.a + sum(bj * feats.get(k, 0.0) for k, bj in self.b.items()))

    def outside(self, feats: dict[str, float]) -> list[str]:
        """The features of a planned job outside the stored range."""
        out = []
        for k, v in feats.items():
            lo, hi = self.ranges.get(k, (v, v))
            if v < lo - SLACK or v > hi + SLACK:
                out.append(k)
        return out

    def describe(self) -> str:
        if self.prior:
            return "prior: median s/job of the study"
        size = ", ".join(f"{k}^{b:.2f}" for k, b in sorted(self.b.items(), key=lambda kv: -abs(kv[1]))[:3]) or "none"
        err = "held-out n/a (n<3)" if self.held_out is None else f"held-out ×{self.held_out:.2f}"
        return f"t ~ {size}; n={self.n}, {err}"


def _fit(x: np.ndarray, logt: np.ndarray) -> tuple[float, np.ndarray]:
    """Ridge fit of ``logt`` on the columns of ``x`` (standardised); ``(a, b)`` in raw units."""
    if x.shape[1] == 0:
        return float(np.mean(logt)), np.zeros(0)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    y = logt - logt.mean()
    lam = RIDGE * len(y)
    coef = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ y)
    b = coef / sd
    return float(logt.mean() - b @ mu), b


def fit_cost(feats: list[dict[str, float]], seconds: list[float]) -> CostModel:
    """The cost model of one kind from its timed jobs."""
    names = sorted({k for f in feats for k in f})
    x_all = np.array([[f.get(k, 0.0) for k in names] for f in feats], dtype=float).reshape(len(feats), len(names))
    ranges = {k: (float(x_all[:, j].min()), float(x_all[:, j].max())) for j, k in enumerate(names)}
    varying = [j for j in range(len(names)) if np.ptp(x_all[:, j]) > 1e-12] if len(feats) >= 2 else []
    x = x_all[:, varying]
    logt = np.log(np.maximum(np.asarray(seconds, dtype=float), 1e-6))
    a, b = _fit(x, logt)
    held = None
    if len(logt) >= 3:
        errs = []
        for i in range(len(logt)):
            keep = np.arange(len(logt)) != i
            ai, bi = _fit(x[keep], logt[keep])
            errs.append(abs(ai + x[i] @ bi - logt[i]))
        held = math.exp(statistics.median(errs))
    return CostModel(a, {names[j]: float(bj) for j, bj in zip(varying, b)}, ranges, len(logt), held_out=held)


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
    missing_features: list[dict[str, float]] = field(default_factory=list)  # of each planned job not stored

    @property
    def missing(self) -> int:
        return self.planned - self.done - self.failed - self.diverged

    @property
    def estimate_s(self) -> float | None:
        """Serial seconds for the missing jobs (None: no cost model for this kind)."""
        if self.model is None:
            return None
        return sum(self.model.predict(f) for f in self.missing_features)

    @property
    def extrapolated(self) -> list[str]:
        """Features of the missing jobs outside the stored range of this kind."""
        if self.model is None or self.model.prior:
            return []
        return sorted({k for f in self.missing_features for k in self.model.outside(f)})


@dataclass
class Plan:
    study: str
    kinds: dict[str, KindPlan] = field(default_factory=dict)

    @property
    def planned(self) -> int:
        return sum(k.planned for k in self.kinds.values())

    @property
    def missing(self) -> int:
        """Planned jobs the store does not hold."""
        return sum(k.missing for k in self.kinds.values())

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
        return any(k.missing and k.model is not None and k.model.prior for k in self.kinds.values())

    def extrapolated(self) -> list[str]:
        return sorted({f for k in self.kinds.values() if k.missing for f in k.extrapolated})

    COLUMNS = ("kind", "planned", "done", "failed", "diverged", "missing", "median s/job", "cost model",
               "est. serial")

    def rows(self) -> list[list[str]]:
        """One row per kind, in :attr:`COLUMNS` order."""
        out = []
        for k in self.kinds.values():
            med = "-" if k.median_s is None else f"{k.median_s:.2f} (n={k.timed})"
            model = "-" if k.model is None else k.model.describe()
            est = "-" if not k.missing else ("no timings" if k.estimate_s is None else hms(k.estimate_s))
            out.append([k.kind, *map(str, (k.planned, k.done, k.failed, k.diverged, k.missing)), med, model, est])
        return out

    def notes(self, workers: int = 1) -> list[str]:
        """What is left to run and how long it may take on ``workers`` workers, in sentences."""
        total, missing = self.estimate_s(workers), self.missing
        if not missing:
            return ["nothing to run: every planned job is stored"]
        if total is None:
            return [f"{missing} job(s) to run; no estimate for {missing} of them (no stored timing of this study "
                    "in this store)"]
        held = self.held_out()
        how = (f"held-out error: a median factor of {held:.2f} for the worst kind" if held is not None
               else "held-out error unknown (fewer than 3 timed jobs of a kind)")
        if self.uses_prior():
            how += "; kinds without timings use the study's median time per job (a rough prior)"
        out = [f"{missing} job(s) to run; about {hms(total)} on {workers} worker(s), from a cost model per job "
               f"kind fit to stored timings by job size ({how})"]
        far = self.extrapolated()
        if far:
            out.append(f"extrapolated beyond the stored sizes in: {', '.join(far[:8])}"
                       f"{' …' if len(far) > 8 else ''}; the estimate extends the fitted trend and assumes "
                       "that what never varied among the stored jobs does not matter; time a few jobs of "
                       "the new sizes for a better one")
        return out


def hms(s: float) -> str:
    """A duration as ``1h02m`` (an hour or more) or ``3m05s``."""
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _kind(job: dict[str, Any]) -> str:
    return str(job.get("kind", "-"))


def plan(study: Study, jobs: list[Any], store: Store | None) -> Plan:
    """Count ``jobs`` by kind against ``store`` (None: no store yet) and fit the cost models."""
    planned = {k: params_of(j) for k, j in keyed_jobs(study, jobs).items()}
    out = Plan(study.name)
    for job in planned.values():
        out.kinds.setdefault(_kind(job), KindPlan(_kind(job))).planned += 1
    statuses = store.statuses(study.name, planned) if store is not None else {}
    for key, status in statuses.items():
        kp = out.kinds[_kind(planned[key])]
        setattr(kp, status, getattr(kp, status) + 1)
    for key, job in planned.items():
        if key not in statuses:
            out.kinds[_kind(job)].missing_features.append(features(job))
    if store is None:
        return out
    timed: dict[str, tuple[list[dict[str, float]], list[float]]] = {}
    for r in store.results(study.name):
        if r.status == "done" and r.started is not None and r.ended is not None:
            f, t = timed.setdefault(_kind(r.params), ([], []))
            f.append(features(r.params))
            t.append(r.ended - r.started)
    every = [ti for _, t in timed.values() for ti in t]
    for kind, kp in out.kinds.items():
        f, t = timed.get(kind, ([], []))
        kp.timed = len(t)
        kp.median_s = statistics.median(t) if t else None
        if t:
            kp.model = fit_cost(f, t)
        elif every:
            kp.model = CostModel(math.log(max(statistics.median(every), 1e-6)), {}, {}, 0, prior=True)
    return out


def plan_sweeps(prepared: list[Any], results: Any) -> tuple[list[tuple[Plan, dict[str, Any]]], bool]:
    """``nnphys plan``: one ``(Plan, info)`` per prepared sweep (:class:`nnphys.lab.config.Prepared`)
    against the store under ``results`` opened read-only, and whether there is a store there
    (without one, every planned job is missing and there is no estimate)."""
    store = open_readonly(results, missing_ok=True)
    try:
        return [(plan(p.study, p.jobs, store), p.info) for p in prepared], store is not None
    finally:
        if store is not None:
            store.close()
