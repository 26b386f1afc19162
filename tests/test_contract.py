"""Every shipped study honours the study contract (``nnphys.studies.base``; docs/architecture.md):
strict specs with documented, tagged and bounded fields, presets for both scales, typed jobs
(one frozen ``Job`` dataclass per kind) whose ``params()`` are JSON-able with a kind and seeds,
and a device set by the lab, never by the study's planner. A plug-in may still plan plain dicts
with ``Study(run=...)`` (the toy study of these tests does)."""

from __future__ import annotations

import json
import re
import types
import typing

import pytest
import toy_pkg
from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from nnphys.lab.config import plan_jobs
from nnphys.lab.runner import keyed_jobs
from nnphys.studies import registry
from nnphys.studies.base import Study
from nnphys.studies.job import Job, params_of

SHIPPED = {"depth-locality", "depth-locality-map", "noise-enhancement", "minibatch-noise", "escape-rate"}
STUDIES = [s for name, s in registry().items() if name in SHIPPED]
# the shipped studies and the toy package of "How to add a study" (tests/toy_pkg), whose typed
# jobs keep the typed branch of these checks exercised
CONTRACT = [*STUDIES, toy_pkg.STUDY]


def test_registry_holds_only_real_studies():
    names = set(registry())
    assert "toy" not in names
    assert names <= SHIPPED


TAG = re.compile(r"^\[(paper|derived|default)(/(paper|derived|default))*\]")
_BOUNDS_LO, _BOUNDS_HI = {Ge, Gt}, {Le, Lt}


def _bounded(annotation, metadata=()) -> bool | None:
    """None for non-numeric fields; else whether the number (or every element of a list/tuple of
    numbers) has both a lower and an upper bound."""
    kinds = {type(m) for m in metadata}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, *meta = args
        flat = [x for m in meta for x in (m.metadata if isinstance(m, FieldInfo) else [m])]
        return _bounded(inner, [*metadata, *flat])
    if annotation in (int, float):
        return bool(kinds & _BOUNDS_LO and kinds & _BOUNDS_HI)
    if origin in (list, tuple, set, frozenset, dict):
        answers = {_bounded(a, metadata) for a in args if a is not Ellipsis}
        answers.discard(None)
        return None if not answers else all(answers)
    if origin in (typing.Union, types.UnionType):
        answers = {_bounded(a, metadata) for a in args if a is not type(None)}
        answers.discard(None)
        return None if not answers else all(answers)
    return None


@pytest.mark.parametrize("study", CONTRACT, ids=lambda s: s.name)
def test_spec_fields_are_documented_tagged_and_bounded(study: Study):
    assert study.spec.model_config.get("extra") == "forbid"
    for name, f in study.spec.model_fields.items():
        desc = (f.description or "").strip()
        assert TAG.match(desc), f"{study.name}.{name}: description must start with its tag: {desc!r}"
        assert _bounded(f.annotation, f.metadata) is not False, f"{study.name}.{name} lacks a lower or upper bound"


@pytest.mark.parametrize("study", CONTRACT, ids=lambda s: s.name)
@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_presets_plan_typed_json_jobs_with_seeds(study: Study, scale: str):
    spec = study.make_spec(scale, {"device": "cuda"})  # planned, never run: no GPU needed
    raw = study.jobs(spec)
    assert raw, "a preset must plan jobs"
    assert study.run is None, "a study of typed jobs runs them with job.run(), not Study(run=...)"
    for job in raw:
        assert isinstance(job, Job), f"{study.name} plans a {type(job).__name__}, not a typed Job"
        assert type(job).KIND and job.params()["kind"] == type(job).KIND, f"{type(job).__name__} sets no KIND"
        assert job.device == "cpu", f"{study.name}'s jobs(spec) set the device; the lab sets it (plan_jobs)"
    assert all(job.device == "cuda" for job in plan_jobs(study, spec)), "plan_jobs puts every job on the device"
    for job in plan_jobs(study, spec):
        params = params_of(job)
        json.dumps(params, allow_nan=False)
        assert params.get("device") == "cuda"
        assert any("seed" in k for k in params), f"job without a seed: {sorted(params)}"
    assert len(keyed_jobs(study, raw)) == len(raw), "two planned jobs share a key"


def test_plain_dict_plug_in_still_plans_and_runs():
    """The toy study (tests/toy_study.py) plans dicts and runs them with Study(run=...): the lab
    leaves its jobs as they are (the device is the study's own business there)."""
    import toy_study

    spec = toy_study.STUDY.make_spec("quick")
    jobs = plan_jobs(toy_study.STUDY, spec)
    assert jobs == toy_study.jobs(spec) and all(isinstance(j, dict) for j in jobs)
    assert toy_study.STUDY.runner(jobs[0])["seed"] == 0


@pytest.mark.parametrize("study", CONTRACT, ids=lambda s: s.name)
def test_claims_listed_with_tags(study: Study):
    assert study.papers and study.claims
    for cid, info in study.claims.items():
        assert info.tag in ("paper", "derived", "default") and info.statement


def test_public_api_resolves():
    import nnphys

    for name in nnphys.__all__:
        assert getattr(nnphys, name) is not None, name
