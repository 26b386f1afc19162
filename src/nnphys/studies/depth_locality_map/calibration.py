"""Synthetic results with a known truth for the claims of ``depth-locality-map`` (M1-M3): every map
cell under one of depth-locality's error models (:mod:`nnphys.studies.depth_locality.calibration`
states the model and the scenarios)."""

from __future__ import annotations

import functools
from typing import Any, Callable

from nnphys.studies.depth_locality.calibration import CURVES, SCENARIOS, _one_deep_seed_dead, nets
from nnphys.studies.depth_locality_map.jobs import jobs


@functools.lru_cache(maxsize=8)
def _map_jobs(spec_json: str, cls: type) -> tuple[dict[str, Any], ...]:
    spec = cls.model_validate_json(spec_json)
    return tuple(j.on(spec.device).params() for j in jobs(spec))


def gen_map(scenario: str):
    """M1-M3: every map cell under ``CURVES[scenario]``."""
    def gen(rng, spec):
        dep = lambda j: spec.depths  # noqa: E731
        return nets(spec, rng, list(_map_jobs(spec.model_dump_json(), type(spec))), CURVES[scenario], depths_of=dep,
                    diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
    return gen


_GEN = {s: gen_map(s) for s in SCENARIOS}
# {claim id: {scenario: generator}} of study depth-locality-map
CALIBRATION: dict[str, dict[str, Callable]] = {"M1": _GEN, "M2": _GEN, "M3": _GEN}
