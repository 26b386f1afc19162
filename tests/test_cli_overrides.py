"""Overrides do what they say: JSON values for dict fields, a warning when a set field is shadowed
by one the preset sets, --sweep, strict booleans, multi-study TOML files, the scale and overrides
of each run in the store, the report and the export."""

from __future__ import annotations

import csv
import json

import pytest

from nnphys.cli import main
from nnphys.errors import ConfigError
from nnphys.lab.config import build_spec, parse_value
from nnphys.lab.store import Store
from nnphys.studies import get_study


def test_set_takes_json_for_dict_fields():
    assert parse_value('{"2":[1000]}') == {"2": [1000]}
    assert parse_value('{"2": [1000, 2000], "3": [500]}') == {"2": [1000, 2000], "3": [500]}
    spec = build_spec(get_study("depth-locality"), "quick", None, ['n_train_by_k={"2":[1000]}'])
    assert spec.n_train_by_k == {2: [1000]}
    spec = build_spec(get_study("depth-locality"), "quick", None, ["n_train_by_k={2 = [1000]}"])  # TOML form
    assert spec.n_train_by_k == {2: [1000]}
    assert build_spec(get_study("depth-locality"), "quick", None, ["n_train_by_k={}"]).n_train_by_k == {}


def test_shadowed_field_warns_one_line(capsys, tmp_path):
    res = tmp_path / "none"
    assert main(["plan", "depth-locality", "--set", "n_train=1000", "--results", str(res)]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("nnphys: warning: n_train: set, but n_train_by_k"), err
    assert "quick preset" in err[0] and "keys 2, 3" in err[0]
    # setting the shadowing field too, or a field nothing shadows, warns nothing
    assert main(["plan", "depth-locality", "--set", "n_train=1000", "--set", "n_train_by_k={}",
                 "--results", str(res)]) == 0
    assert main(["plan", "depth-locality", "--set", "d=20", "--results", str(res)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert not res.exists()


def test_a_warning_never_joins_an_error_line(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    for cmd in (["run", "depth-locality"], ["plan", "depth-locality"]):
        assert main([*cmd, "--set", "n_train=1000", "--results", str(tmp_path / "afile" / "r")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("nnphys: error:") and "nnphys: warning" not in err, err


def test_shadowing_declared_on_the_field():
    from pydantic import Field

    from nnphys.lab.config import shadows
    from nnphys.studies.base import StudySpec

    class S(StudySpec):
        lr: float = Field(0.1, json_schema_extra={"shadowed_by": "lr_schedule"})
        lr_schedule: list[float] = Field([])
        n_by_k: dict[int, int] = Field({})  # 'n' is not a field: shadows nothing

    assert shadows(S) == {"lr": ["lr_schedule"]}


def test_strict_booleans():
    st = get_study("depth-locality")
    for bad in ("yes", "1", "on", "True", "0"):
        with pytest.raises(ConfigError) as e:
            build_spec(st, "quick", None, [f"control_permutation={bad}"])
        assert e.value.field == "control_permutation" and "true or false" in e.value.message
    assert build_spec(st, "quick", None, ["control_permutation=false"]).control_permutation is False


def test_many_values_for_a_scalar_point_to_sweep():
    with pytest.raises(ConfigError) as e:
        build_spec(get_study("depth-locality"), "quick", None, ["seed=0,1,2"])
    assert e.value.field == "seed" and "--sweep seed=0,1,2" in e.value.message


def test_sweep_runs_one_spec_per_value(capsys, tmp_path, toy):
    res = tmp_path / "res"
    assert main(["run", "toy", "--set", "n_jobs=2", "--sweep", "tag=a,b", "--sweep", "dim=3,4",
                 "--results", str(res), "-q"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("2 planned, 0 already finished, 2 run now") == 4, out
    with Store(res, readonly=True) as s:
        rows = s.rows("toy")
        assert sorted({(r["params"]["tag"], r["params"]["dim"]) for r in rows}) == [("a", 3), ("a", 4), ("b", 3),
                                                                                      ("b", 4)]
        runs = s.runs("toy")
        assert [r["meta"]["overrides"] for r in runs] == [
            {"n_jobs": 2, "tag": t, "dim": d} for t in "ab" for d in (3, 4)]
    # plan plans every point; a sweep key also given with --set, or twice, is refused
    assert main(["plan", "toy", "--sweep", "n_jobs=2,3", "--results", str(res)]) == 0
    out = capsys.readouterr().out
    assert "toy (n_jobs=2)" in out and "toy (n_jobs=3)" in out
    for argv, needle in ((["--set", "n_jobs=2", "--sweep", "n_jobs=3,4"], "both --set and --sweep"),
                         (["--sweep", "n_jobs=2", "--sweep", "n_jobs=3"], "twice"),
                         (["--sweep", "n_jobs=2,2"], "twice"), (["--sweep", "n_jobs=2,0"], "n_jobs"),
                         (["--sweep", "n_jobs"], "--sweep")):
        assert main(["run", "toy", *argv, "--results", str(tmp_path / "no")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and needle in err, (argv, err)
    assert not (tmp_path / "no").exists()


MULTI = """
scale = "quick"
n_jobs = 2           # toy's
chains = 100         # escape-rate's: ignored unless escape-rate runs
[toy]
tag = "m"
[depth-locality]
d = 20
"""


def test_multi_study_toml_serves_any_subset(capsys, tmp_path, toy, monkeypatch):
    import nnphys.cli as cli

    monkeypatch.setattr(cli, "_report", lambda results, **kw: None)
    cfg = tmp_path / "multi.toml"
    cfg.write_text(MULTI)
    res = tmp_path / "res"
    assert main(["reproduce", "--studies", "toy", "--config", str(cfg), "--results", str(res), "-q"]) == 0, \
        capsys.readouterr().err
    assert main(["run", "toy", "--config", str(cfg), "--results", str(tmp_path / "r2"), "-q"]) == 0, \
        capsys.readouterr().err
    for where in (res, tmp_path / "r2"):
        with Store(where, readonly=True) as s:
            assert {(r["params"]["tag"]) for r in s.rows("toy")} == {"m"} and len(s.rows("toy")) == 2
    # a flat file (no study tables) is still one study's: an unknown key is refused
    flat = tmp_path / "flat.toml"
    flat.write_text("n_jobs = 2\nchains = 100\n")
    assert main(["run", "toy", "--config", str(flat), "--results", str(tmp_path / "r3")]) == 2
    assert "chains: unknown field" in capsys.readouterr().err


def test_runs_carry_ids_and_overrides_to_report_and_export(capsys, tmp_path, toy):
    res = tmp_path / "res"
    assert main(["run", "toy", "--set", "n_jobs=2", "--results", str(res), "-q"]) == 0
    assert main(["run", "toy", "--set", "n_jobs=3", "--set", "tag=b", "--results", str(res), "-q"]) == 0
    with Store(res, readonly=True) as s:
        runs = s.runs("toy")
        assert [r["meta"]["overrides"] for r in runs] == [{"n_jobs": 2}, {"n_jobs": 3, "tag": "b"}]
        assert sorted(r["run_id"] for r in s.rows("toy")) == [runs[0]["id"]] * 2 + [runs[1]["id"]] * 3
    assert main(["report", "--results", str(res)]) == 0
    md = (res / "report.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| [toy]"))
    assert 'quick + n_jobs=3, tag="b"; 3/3 jobs done' in row and "quick (with overrides) scale" in row, row
    assert f'| #{runs[0]["id"]} |' in md and "| quick + n_jobs=2 | 2 | 2 |" in md
    assert f'| #{runs[1]["id"]} |' in md and '| quick + n_jobs=3, tag="b" | 3 | 3 |' in md
    card = json.loads((res / "scorecard.json").read_text())["studies"]["toy"]
    assert card["overrides"] == {"n_jobs": 3, "tag": "b"} and card["run_id"] == runs[1]["id"]
    capsys.readouterr()
    assert main(["export", "--results", str(res)]) == 0
    rows = list(csv.DictReader(open(res / "results.csv")))
    by_tag = {(r["tag"], r["run_id"], r["overrides"]) for r in rows}
    assert by_tag == {("a", str(runs[0]["id"]), "quick + n_jobs=2"),
                      ("b", str(runs[1]["id"]), 'quick + n_jobs=3, tag="b"')}


def test_export_has_the_one_line_reason_of_failed_jobs(capsys, tmp_path, toy):
    res = tmp_path / "res"
    assert main(["run", "toy", "--set", "n_jobs=2", "--set", "fail_every=2", "--results", str(res), "-q"]) == 1
    assert main(["export", "--wide", "--results", str(res)]) == 0
    rows = {r["status"]: r for r in csv.DictReader(open(res / "results.csv"))}
    assert rows["failed"]["reason"] == "RuntimeError: job 1 raised on purpose"
    assert "Traceback" in rows["failed"]["error"] and rows["done"]["reason"] == ""
