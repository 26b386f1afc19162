"""A dry run: what a sweep would run, what the store already holds, and how long the rest may
take judging by stored timings of similar jobs (same study, same ``kind``). Reads only."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from nnphys.lab.runner import keyed_jobs
from nnphys.lab.store import Store
from nnphys.studies.base import Study


@dataclass
class KindPlan:
    kind: str
    planned: int = 0
    done: int = 0
    failed: int = 0
    diverged: int = 0
    timed: int = 0  # stored finished jobs of this kind with a duration
    median_s: float | None = None  # their median duration

    @property
    def missing(self) -> int:
        return self.planned - self.done - self.failed - self.diverged

    @property
    def estimate_s(self) -> float | None:
        """Serial seconds for the missing jobs (None: no stored timing of this kind)."""
        return None if self.median_s is None else self.missing * self.median_s


@dataclass
class Plan:
    study: str
    kinds: dict[str, KindPlan] = field(default_factory=dict)

    @property
    def planned(self) -> int:
        return sum(k.planned for k in self.kinds.values())

    def estimate_s(self, workers: int = 1) -> float | None:
        """Wall seconds for the missing jobs on ``workers`` workers; None when some kind with
        missing jobs has no stored timing."""
        parts = [k.estimate_s for k in self.kinds.values() if k.missing]
        if any(p is None for p in parts):
            return None
        return sum(parts) / max(1, workers)


def _kind(job: dict[str, Any]) -> str:
    return str(job.get("kind", "-"))


def plan(study: Study, jobs: list[dict[str, Any]], store: Store | None) -> Plan:
    """Count ``jobs`` by kind against ``store`` (None: no store yet)."""
    planned = keyed_jobs(study, jobs)
    out = Plan(study.name)
    for job in planned.values():
        out.kinds.setdefault(_kind(job), KindPlan(_kind(job))).planned += 1
    if store is None:
        return out
    statuses = store.statuses(study.name, planned)
    for key, status in statuses.items():
        kp = out.kinds[_kind(planned[key])]
        setattr(kp, status, getattr(kp, status) + 1)
    durations: dict[str, list[float]] = {}
    for r in store.results(study.name):
        if r.status == "done" and r.started is not None and r.ended is not None:
            durations.setdefault(_kind(r.params), []).append(r.ended - r.started)
    for kind, kp in out.kinds.items():
        d = durations.get(kind, [])
        kp.timed = len(d)
        kp.median_s = statistics.median(d) if d else None
    return out
