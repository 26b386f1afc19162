"""The jobs of study ``depth-locality-map``: the main-grid net jobs of every map cell.

A map cell is depth-locality's main grid at the cell's settings (:meth:`.spec.Spec.cell_spec`), so its
jobs are depth-locality's :class:`~nnphys.studies.depth_locality.jobs.NetJob` with the very same
params: a store shares them between the two studies.
"""

from __future__ import annotations

from nnphys.studies.base import canonical_json
from nnphys.studies.depth_locality.jobs import jobs as dl_jobs
from nnphys.studies.depth_locality_map.spec import Spec
from nnphys.studies.job import Job


def jobs(spec: Spec) -> list[Job]:
    """The main-grid net jobs of every cell (identical to depth-locality's, so a store shares them)."""
    out, seen = [], set()
    for c in spec.cells():
        for j in dl_jobs(spec.cell_spec(c)):
            key = canonical_json(j.params())
            if key not in seen:
                seen.add(key)
                out.append(j)
    return out
