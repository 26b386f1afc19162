"""Every shipped study honours the study contract (DESIGN.md): strict specs with documented,
tagged and bounded fields, presets for both scales, JSON-able jobs with seeds and a device."""

from __future__ import annotations

import json
import typing

import pytest
from annotated_types import Ge, Gt, Le, Lt

from nnphys.lab.runner import keyed_jobs
from nnphys.studies import registry
from nnphys.studies.base import Study

SHIPPED = {"depth-locality", "noise-enhancement", "minibatch-noise", "escape-rate"}
STUDIES = [s for name, s in registry().items() if name in SHIPPED]


def test_registry_holds_only_real_studies():
    names = set(registry())
    assert "toy" not in names
    assert names <= SHIPPED


def _numeric(annotation) -> bool:
    args = typing.get_args(annotation)
    if args:
        return all(_numeric(a) for a in args if a is not type(None)) and any(a is not type(None) for a in args)
    return annotation in (int, float)


@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.name)
def test_spec_fields_are_documented_tagged_and_bounded(study: Study):
    assert study.spec.model_config.get("extra") == "forbid"
    for name, f in study.spec.model_fields.items():
        desc = (f.description or "").strip()
        assert desc.startswith(("[paper]", "[derived]", "[default]")), f"{study.name}.{name}: {desc!r}"
        if _numeric(f.annotation):
            bounds = {type(m) for m in f.metadata} & {Ge, Gt, Le, Lt}
            assert bounds & {Ge, Gt} and bounds & {Le, Lt}, f"{study.name}.{name} has no lower and upper bound"


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
