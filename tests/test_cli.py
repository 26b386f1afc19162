"""CLI behaviour: every bad-input class gives exit 2, one line on stderr, no store; the happy
path runs, resumes, reports and exports."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nnphys.cli import main
from nnphys.lab.config import parse_value


def _bad(capsys, argv: list[str], results: Path, *needles: str) -> str:
    code = main(argv + ["--results", str(results)] if argv[0] in ("run", "reproduce") else argv)
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert code == 2, (code, cap.out, cap.err)
    assert err.count("\n") == 0 and err.startswith("nnphys: error:"), err
    assert "Traceback" not in cap.err + cap.out
    for n in needles:
        assert n in err, (n, err)
    assert not (results / "nnphys.sqlite").exists(), "bad input must not write the store"
    return err


@pytest.mark.parametrize("argv,needles", [
    (["run", "no-such-study"], ["study", "no-such-study", "toy"]),
    (["run", "toy", "--set", "nope=1"], ["nope", "unknown field", "n_jobs"]),
    (["run", "toy", "--set", "n_jobs=abc"], ["n_jobs", "integer"]),
    (["run", "toy", "--set", "n_jobs=0"], ["n_jobs", "greater than or equal to 1"]),
    (["run", "toy", "--set", "sleep=-1"], ["sleep", ">= 0"] if False else ["sleep", "greater than or equal"]),
    (["run", "toy", "--set", "n_jobs"], ["--set", "key=value"]),
    (["run", "toy", "--set", "=3"], ["--set"]),
    (["run", "toy", "--set", "n_jobs="], ["n_jobs", "no value"]),
    (["run", "toy", "--scale", "huge"], ["scale", "quick", "paper"]),
    (["run", "toy", "--workers", "0"], ["--workers"]),
    (["run", "toy", "--engine", "spark"], ["--engine"]),
    (["run", "toy", "--engine", "inline", "--workers", "2"], ["--workers", "inline"]),
    (["run", "toy", "--device", "tpu"], ["--device"]),
    (["run", "toy", "--rerun", "all"], ["--rerun"]),
    (["run", "toy", "--workers", "x"], ["--workers"]),
    (["run"], ["study"]),
])
def test_bad_input_exit_2_one_line(capsys, tmp_path, toy, argv, needles):
    _bad(capsys, argv, tmp_path / "res", *needles)


def test_bad_toml_files(capsys, tmp_path, toy):
    res = tmp_path / "res"
    _bad(capsys, ["run", "toy", "--config", str(tmp_path / "missing.toml")], res, "--config", "cannot read")
    (tmp_path / "bad.toml").write_text("n_jobs = = 3\n")
    _bad(capsys, ["run", "toy", "--config", str(tmp_path / "bad.toml")], res, "--config", "not valid TOML")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    _bad(capsys, ["run", "toy", "--config", str(tmp_path / "bin.toml")], res, "--config")
    (tmp_path / "unknown.toml").write_text("n_jobs = 3\nwidth = 4\n")
    _bad(capsys, ["run", "toy", "--config", str(tmp_path / "unknown.toml")], res, "width", "unknown field")
    (tmp_path / "range.toml").write_text("dim = 1_000_000\n")
    _bad(capsys, ["run", "toy", "--config", str(tmp_path / "range.toml")], res, "dim")
    (tmp_path / "scale.toml").write_text("scale = 'gigantic'\n")
    _bad(capsys, ["run", "toy", "--config", str(tmp_path / "scale.toml")], res, "scale")
    _bad(capsys, ["run", "toy", "--config", "/dev/zero"], res, "--config", "not a regular file")
    _bad(capsys, ["run", "toy", "--config", str(tmp_path)], res, "--config", "not a regular file")
    _bad(capsys, ["status", "--results", str(res)], res, "--results")
    _bad(capsys, ["report", "--results", str(res)], res, "--results")


def _valid_n_jobs(text: str, toy) -> bool:
    try:
        toy.make_spec("quick", {"n_jobs": parse_value(text)})
        return True
    except Exception:
        return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s))
def test_property_malformed_set_values(capsys, tmp_path, toy, value):
    assume(value.strip() != "" and not _valid_n_jobs(value, toy))
    _bad(capsys, ["run", "toy", "--set", f"n_jobs={value}"], tmp_path / "res", "n_jobs")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=st.text(max_size=30).filter(lambda s: "=" not in s and "\x00" not in s))
def test_property_set_without_equals(capsys, tmp_path, toy, item):
    assume(not item.startswith("-"))  # would be read as an option
    _bad(capsys, ["run", "toy", "--set", item], tmp_path / "res", "--set")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60).filter(lambda s: "\x00" not in s))
def test_property_toml_garbage(capsys, tmp_path, toy, text):
    import tomllib

    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        parsed = None
    if parsed is not None:
        # valid TOML: only what the spec rejects is bad input
        scale = parsed.pop("scale", "quick")
        try:
            toy.make_spec(scale, parsed)
            valid = True
        except Exception:
            valid = False
        assume(not valid)
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    _bad(capsys, ["run", "toy", "--config", str(cfg)], tmp_path / "res")


def test_happy_path_run_resume_status_report_export(capsys, tmp_path, toy):
    res = tmp_path / "res"
    cfg = tmp_path / "sweep.toml"
    cfg.write_text("n_jobs = 5\ndim = 16\nfail_every = 5\n")
    # one job fails on purpose: the run says so and exits 1 (documented), the rest is stored
    assert main(["run", "toy", "--config", str(cfg), "--set", "tag=b", "--results", str(res), "-q"]) == 1
    out = capsys.readouterr().out
    assert "5 planned, 0 already finished, 5 run now (4 done, 1 failed, 0 diverged)" in " ".join(out.split())
    assert main(["run", "toy", "--config", str(cfg), "--set", "tag=b", "--results", str(res), "-q"]) == 1
    assert "5 already finished, 0 run now" in " ".join(capsys.readouterr().out.split())
    assert main(["status", "--results", str(res)]) == 0
    status = capsys.readouterr().out
    row = next(line for line in status.splitlines() if line.strip().startswith("toy"))
    assert row.split()[1:5] == ["quick", "5", "4", "1"], status  # study, scale, planned, done, failed
    assert main(["report", "--results", str(res)]) == 0
    md = (res / "report.md").read_text()
    assert "| T1 | [derived] | sample means are centred |" in md
    assert "![per-job sample means](figures/toy/means.png)" in md
    assert "seeds**: 0, 1, 2, 3, 4" in md
    assert (res / "figures/toy/means.png").stat().st_size > 1000
    assert (res / "figures/toy/means.pdf").read_bytes().startswith(b"%PDF")
    html = (res / "report.html").read_text()
    assert "<table>" in html and "T1" in html
    assert main(["export", "--format", "csv", "--results", str(res)]) == 0
    rows = list(csv.DictReader(open(res / "results.csv")))  # tidy: one row per (job, metric value)
    assert len({r["key"] for r in rows}) == 5 and {r["status"] for r in rows} == {"done", "failed"}
    assert {r["tag"] for r in rows} == {"b"}
    assert main(["export", "--format", "csv", "--wide", "--results", str(res)]) == 0
    wide = list(csv.DictReader(open(res / "results.csv")))
    assert len(wide) == 5 and {r["params.tag"] for r in wide} == {"b"}
    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["export", "--format", "parquet", "--results", str(res)]) == 0
    assert pq.read_table(res / "results.parquet").num_rows == len(rows)
    _bad(capsys, ["export", "--format", "xlsx", "--results", str(res)], tmp_path / "none", "--format")


def test_list_and_help(capsys, toy):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "T1 [derived] sample means are centred" in out
    for cmd in ("run", "reproduce", "status", "report", "export", "list", "plan", "fields"):
        assert main([cmd, "--help"]) == 0
        assert "Example: nnphys" in " ".join(capsys.readouterr().out.split())


def test_entry_point_subprocess(tmp_path):
    p = subprocess.run([sys.executable, "-m", "nnphys.cli", "run", "definitely-not-a-study", "--results",
                        str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "unknown study" in p.stderr
    assert not (tmp_path / "nnphys.sqlite").exists()
