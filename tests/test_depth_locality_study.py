"""Tests of the depth-locality study: spec validation, jobs, a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from nnphys.studies import get_study
from nnphys.studies.base import Result, canonical_json
from nnphys.studies.depth_locality import CLAIMS, STUDY, jobs, run

TINY = dict(
    d=6, ks=[2], n_train=[40], n_train_by_k={}, n_val=30, n_test=60, depths=[1, 2], width=16,
    lr_grid=[0.01, 0.03], max_epochs=40, n_seeds=2, alphas=[1.0, 100.0], width_sweep=[],
    robustness=["batch16"], control_k1=True, control_permutation=True, blind_datasets=4, blind_d=5,
    blind_n=20, blind_n_test=40, blind_chunk=4, blind_laws=["cube"], min_hard_n=1,
)




def test_registered():
    assert get_study("depth-locality") is STUDY
    assert set(STUDY.claims) == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "X1", "X2"}
    for cid, info in CLAIMS.items():
        assert info.tag in ("paper", "derived", "default")
    for name, f in STUDY.spec.model_fields.items():
        if name == "device":
            continue
        assert f.description and f.description.startswith("["), name


@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_presets_valid_and_jobs_jsonable(scale):
    spec = STUDY.make_spec(scale)
    js = jobs(spec)
    keys = [canonical_json(j) for j in js]
    assert len(set(keys)) == len(keys)
    for j in js:
        assert j["device"] == "cpu"
        assert json.loads(json.dumps(j)) == j
        assert "data_seeds" in j or "dataset_seeds" in j


def _field_of(err: ValidationError) -> str:
    """The spec field named by the first error (an element error ``depths.0`` names ``depths``)."""
    return str(err.errors()[0]["loc"][0])


def test_bad_d_vs_k_names_d():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"d": 3, "ks": [2, 3]})
    assert _field_of(e.value) == "d"


def test_no_bias_depth1_odd_k_refused_unless_overridden():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"bias": False, "ks": [3], "depths": [1, 2]})
    assert _field_of(e.value) == "bias"
    STUDY.make_spec("quick", {"bias": False, "ks": [3], "depths": [1, 2], "allow_no_bias_odd_k": True})
    STUDY.make_spec("quick", {"bias": False, "ks": [2], "depths": [1, 2]})  # even k is fine (§9)
    STUDY.make_spec("quick", {"bias": False, "ks": [3], "depths": [2, 4]})  # L >= 2 is fine


def test_sign_variant_even_d_needs_tie_break():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"target_kind": "sign", "d": 16})
    assert _field_of(e.value) == "tie_break"
    STUDY.make_spec("quick", {"target_kind": "sign", "d": 16, "tie_break": 1.0})
    STUDY.make_spec("quick", {"target_kind": "sign", "d": 17})


@pytest.mark.parametrize("bad", [{"n_seeds": 0}, {"width": 0}, {"depths": [0, 1]}, {"lr_grid": [-0.1]},
                                 {"alphas": [0.5]}, {"nonsense": 1}])
def test_bad_fields(bad):
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", bad)
    assert _field_of(e.value) == next(iter(bad))


def test_sign_robustness_variant_uses_odd_d():
    spec = STUDY.make_spec("quick", {**TINY, "robustness": ["sign"]})
    sj = [j for j in jobs(spec) if j.get("variant") == "sign" and j["kind"] == "net"]
    assert sj and all(j["d"] == 7 and j["target_kind"] == "sign" and j["loss"] == "logistic" for j in sj)


def test_net_job_is_deterministic():
    spec = STUDY.make_spec("quick", TINY)
    job = next(j for j in jobs(spec) if j["kind"] == "net")
    a, b = run(job), run(job)
    ha, hb = a.pop("arrays")["history"], b.pop("arrays")["history"]
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b and (ha == hb).all()
    assert len(a["err"]) == TINY["n_seeds"] and a["lr"] in TINY["lr_grid"]


@pytest.mark.slow
def test_tiny_end_to_end():
    spec = STUDY.make_spec("quick", TINY)
    js = jobs(spec)
    results = [Result.from_output(j, run(j)) for j in js]
    claims = STUDY.analyse(spec, results)
    ids = [c.id for c in claims]
    assert sorted(ids) == sorted(CLAIMS)
    for c in claims:
        assert c.verdict in ("holds", "fails", "inconclusive")
        assert c.tag == CLAIMS[c.id].tag
        assert isinstance(c.evidence, dict) and c.evidence
        json.dumps(c.to_dict())
    by = {c.id: c for c in claims}
    # C5 ran 4 < 200 data sets and C7 ran 1 of 5 variants: neither may claim `holds`
    assert by["C5"].verdict != "holds" and by["C7"].verdict != "holds"
    assert by["C7"].evidence["not_run"] == ["lr_other", "batch256", "law_other", "sign"]
    figs = STUDY.figures(spec, results)
    assert {f.name for f in figs} >= {"error_vs_depth", "error_vs_n"}
    # missing and failed jobs: analyse copes and the affected claims turn inconclusive
    kept = [r for r in results if r.params["kind"] != "kernel"]
    kept[0] = Result(key="", params=kept[0].params, status="failed", metrics={}, error="boom")
    claims2 = {c.id: c for c in STUDY.analyse(spec, kept)}
    assert claims2["C4"].verdict == "inconclusive"
    assert claims2["C1"].evidence["missing_jobs"] >= 1 and claims2["C1"].evidence["failed_jobs"] == 1
    assert all(c.verdict in ("holds", "fails", "inconclusive") for c in claims2.values())
    assert all(math.isfinite(r["L"]) for r in by["C6"].evidence["rows"]) or not by["C6"].evidence["rows"]
