"""The toy study's jobs: one kind, one frozen dataclass, and the planner."""

from __future__ import annotations

import dataclasses

import numpy as np

from nnphys.studies.job import Job
from nnphys.seeding import derive


@dataclasses.dataclass(frozen=True, kw_only=True)
class Draws(Job):
    """The sample means of ``n`` standard normal draws, one sample per seed."""

    KIND = "draws"
    n: int
    seeds: tuple[int, ...]

    def run(self) -> dict:
        means = [float(np.random.default_rng(derive(s, "draws", self.n)).standard_normal(self.n).mean())
                 for s in self.seeds]
        return {"means": means, "arrays": {"means": np.asarray(means)}}


def jobs(spec) -> list[Job]:
    """One job per sample size, every seed batched inside it (the lab sets the device)."""
    return [Draws(n=n, seeds=tuple(range(spec.seeds))) for n in spec.sizes]
