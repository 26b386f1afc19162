"""The recipe of docs/architecture.md ("How to add a study") works as written: a toy study package
of the shipped shape (tests/toy_pkg: __init__, spec, jobs, claims, figures, calibration) registers,
plans typed jobs, runs end to end through the lab on a fresh store, is analysed and reported, and
its rules pass the calibration harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import toy_pkg
from nnphys.cli import main
from nnphys.lab.config import plan_jobs
from nnphys.lab.report import write_report
from nnphys.lab.runner import run_study
from nnphys.lab.store import Store
from nnphys.studies import calibration as CAL
from nnphys.studies import register, registry, unregister
from nnphys.studies.job import Job

STUDY = toy_pkg.STUDY
SHAPE = {"__init__.py", "spec.py", "jobs.py", "claims.py", "figures.py", "calibration.py"}


@pytest.fixture
def registered():
    register(STUDY)
    yield STUDY
    unregister(STUDY.name)


def test_the_package_has_the_shape_of_a_shipped_study():
    files = {p.name for p in Path(toy_pkg.__file__).parent.glob("*.py")}
    assert files == SHAPE
    from toy_pkg import claims

    # one function per claim, named after its id, whose docstring's first paragraph is the statement
    for cid, fn in claims.BOOK.functions.items():
        assert fn.__name__ == cid.lower()
        assert STUDY.claims[cid].statement == " ".join(fn.__doc__.split("\n\n")[0].split())
        assert "Rule:" in fn.__doc__
    assert list(STUDY.claims) == ["T1", "T2"] and set(STUDY.calibration) == set(STUDY.claims)


def test_registered_study_plans_typed_jobs_and_the_lab_sets_the_device(registered):
    assert registry()["toy-pkg"] is STUDY
    spec = STUDY.make_spec("quick", {"device": "cuda"})
    raw = STUDY.jobs(spec)
    assert all(isinstance(j, Job) and j.device == "cpu" for j in raw)  # the planner leaves the device alone
    planned = plan_jobs(STUDY, spec)
    assert [j.device for j in planned] == ["cuda"] * len(raw)
    assert planned[0].params() == {"n": 4, "seeds": list(range(200)), "device": "cuda", "kind": "draws"}
    json.dumps([j.params() for j in planned])


def test_end_to_end_run_analyse_report_and_calibration(registered, tmp_path):
    spec = STUDY.make_spec("quick")
    with Store(tmp_path / "res") as store:
        summary = run_study(STUDY, spec, store, progress=False)
        assert summary.counts == {"done": 2, "failed": 0, "diverged": 0}
        results = store.results(STUDY.name)
        assert {r.params["kind"] for r in results} == {"draws"} and results[0].arrays["means"].shape == (200,)
        claims = {c.id: c for c in STUDY.analyse(spec, results)}
        assert {c: claims[c].verdict for c in claims} == {"T1": "holds", "T2": "holds"}
        assert claims["T2"].rule["kind"] == "directional" and claims["T2"].rule["version"]
        md, _html, reps = write_report(store, [STUDY], n_resamples=20, allow_fewer=True)
    assert reps[0].error is None and "T2" in md.read_text()
    for cid, rule in ((c, info.rule) for c, info in STUDY.claims.items()):
        oc = CAL.operating_characteristics(STUDY, spec, cid, 20, seed=1)
        assert CAL.check(oc, rule.alpha, rule.kind) == [], (cid, oc)


def test_the_cli_treats_it_as_a_built_in(registered, tmp_path, capsys):
    res = str(tmp_path / "res")
    assert main(["run", "toy-pkg", "--set", "seeds=50", "--results", res, "-q"]) == 0
    assert main(["list", "--claims"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "T1 [derived] The sample mean of standard normal draws is centred on zero." in out
    assert "rule: equivalence (" in out
    assert main(["plan", "toy-pkg", "--set", "seeds=50", "--results", res]) == 0
    assert "nothing to run" in capsys.readouterr().out
