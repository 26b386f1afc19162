"""Every shipped study honours the study contract (DESIGN.md): strict specs with documented,
tagged and bounded fields, presets for both scales, JSON-able jobs with seeds and a device."""

from __future__ import annotations

import json
import re
import types
import typing

import pytest
from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from nnphys.lab.runner import keyed_jobs
from nnphys.studies import registry
from nnphys.studies.base import Study

SHIPPED = {"depth-locality", "depth-locality-map", "noise-enhancement", "minibatch-noise", "escape-rate"}
STUDIES = [s for name, s in registry().items() if name in SHIPPED]


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


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.name)
def test_spec_fields_are_documented_tagged_and_bounded(study: Study):
    assert study.spec.model_config.get("extra") == "forbid"
    for name, f in study.spec.model_fields.items():
        desc = (f.description or "").strip()
        assert TAG.match(desc), f"{study.name}.{name}: description must start with its tag: {desc!r}"
        assert _bounded(f.annotation, f.metadata) is not False, f"{study.name}.{name} lacks a lower or upper bound"


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.name)
@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_presets_plan_json_jobs_with_seeds(study: Study, scale: str):
    spec = study.make_spec(scale)
    jobs = study.jobs(spec)
    assert jobs, "a preset must plan jobs"
    for job in jobs:
        json.dumps(job, allow_nan=False)
        assert job.get("device") in ("cpu", "cuda")
        assert any("seed" in k for k in job), f"job without a seed: {sorted(job)}"
    assert len(keyed_jobs(study, jobs)) == len(jobs), "two planned jobs share a key"


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.name)
def test_claims_listed_with_tags(study: Study):
    assert study.papers and study.claims
    for cid, info in study.claims.items():
        assert info.tag in ("paper", "derived", "default") and info.statement


def test_public_api_resolves():
    import nnphys

    for name in nnphys.__all__:
        assert getattr(nnphys, name) is not None, name
