"""Synthetic results with a known truth for the claims of ``depth-locality-map`` (M1-M3): every map
cell under one of depth-locality's error models (:mod:`nnphys.studies.depth_locality.calibration`
states the model and the scenarios)."""

from __future__ import annotations

import functools
from typing import Any, Callable

from nnphys.studies.depth_locality.calibration import (CURVES, SCENARIOS, _one_deep_seed_dead, _Seeds, c4_curves,
                                                      kernels, nets)
from nnphys.studies.depth_locality_map.jobs import jobs


@functools.lru_cache(maxsize=8)
def _map_jobs(spec_json: str, cls: type) -> tuple[dict[str, Any], ...]:
    spec = cls.model_validate_json(spec_json)
    return tuple(j.on(spec.device).params() for j in jobs(spec))


def gen_map(scenario: str):
    """M1-M3: every map cell under ``CURVES[scenario]``."""
    def gen(rng, spec):
        dep = lambda j: spec.depths  # noqa: E731
        plan = [j for j in _map_jobs(spec.model_dump_json(), type(spec)) if j["kind"] == "net"]
        return nets(spec, rng, plan, CURVES[scenario], depths_of=dep,
                    diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
    return gen


def gen_map_c4(scenario: str):
    """M4: every map cell's nets and kernel baselines on the same data sets under C4's scenarios
    (:func:`nnphys.studies.depth_locality.calibration.c4_curves`)."""
    def gen(rng, spec):
        plan = list(_map_jobs(spec.model_dump_json(), type(spec)))
        seeds = _Seeds(rng, spec.n_seeds)
        net, kern = c4_curves(scenario)
        dep = lambda j: spec.depths  # noqa: E731
        out = nets(spec, rng, [j for j in plan if j["kind"] == "net"], net, depths_of=dep, seeds=seeds,
                   diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
        return out + kernels(spec, rng, [j for j in plan if j["kind"] == "kernel"], kern, seeds)
    return gen


_GEN = {s: gen_map(s) for s in SCENARIOS}
# {claim id: {scenario: generator}} of study depth-locality-map
CALIBRATION: dict[str, dict[str, Callable]] = {"M1": _GEN, "M2": _GEN, "M3": _GEN,
                                               "M4": {s: gen_map_c4(s) for s in SCENARIOS}}
