"""Synthetic results with a known truth for every claim of the toy study: the sample means a
``Draws`` job would return, drawn directly with the mean and spread each scenario asks for."""

from __future__ import annotations

import numpy as np

from nnphys.studies.base import Result

from .jobs import jobs


def _results(rng, spec, shift: float = 0.0, swap: bool = False, same: bool = False) -> list[Result]:
    """One Result per planned job; ``shift`` moves every mean, ``swap`` gives the smallest size the
    spread of the largest and back (the opposite of T2's claim), ``same`` gives every size the
    spread of the largest (no shrinkage)."""
    planned = jobs(spec)
    sizes = [j.n for j in planned]
    out = []
    for job in planned:
        n = max(sizes) if same else (sizes[::-1][sizes.index(job.n)] if swap else job.n)
        means = shift + rng.standard_normal(len(job.seeds)) / np.sqrt(n)
        out.append(Result.from_output(job, {"means": means.tolist()}))
    return out


CALIBRATION = {
    "T1": {"effect": lambda rng, spec: _results(rng, spec),
           "none": lambda rng, spec: _results(rng, spec, shift=0.1),
           "opposite": lambda rng, spec: _results(rng, spec, shift=0.2)},
    "T2": {"effect": lambda rng, spec: _results(rng, spec),
           "none": lambda rng, spec: _results(rng, spec, same=True),
           "opposite": lambda rng, spec: _results(rng, spec, swap=True)},
}
