"""CLI output: --version, python -m nnphys, the resume hint on interrupt, no duplicate tables."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from nnphys.cli import main
from nnphys.studies import register, unregister


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nnphys {version('nnphys')}"


def test_python_dash_m_nnphys_is_the_command():
    p = subprocess.run([sys.executable, "-m", "nnphys", "--version"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("nnphys "), p.stderr


@pytest.fixture
def interrupting(toy):
    """The toy study with a run that is interrupted (Ctrl-C) at its third job, once."""
    state = {"armed": True}

    def run(job):
        if job["seed"] == 2 and state["armed"]:
            state["armed"] = False
            raise KeyboardInterrupt
        return toy.run(job)

    st = dataclasses.replace(toy, name="toy-int", run=run)
    register(st)
    yield st
    unregister("toy-int")


def test_interrupt_says_how_to_resume_and_resume_runs_only_the_rest(capsys, interrupting, tmp_path):
    argv = ["run", "toy-int", "--set", "n_jobs=4", "--results", str(tmp_path), "-q"]
    assert main(argv) == 130
    e = capsys.readouterr().err
    assert "interrupted" in e and "rerun the same command to resume" in e
    assert main(argv) == 0
    o = capsys.readouterr().out
    assert "2 already finished, 2 run now" in o, o


def test_reproduce_prints_each_claims_table_once(capsys, toy, tmp_path):
    assert main(["reproduce", "--studies", "toy", "--results", str(tmp_path)]) == 0
    o = capsys.readouterr().out
    assert o.count("toy: claims") == 1, o
    assert main(["report", "--results", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("toy: claims") == 1


def test_status_fits_80_columns_with_whole_study_names(capsys, toy, tmp_path, monkeypatch):
    import nnphys.cli as cli

    long = dataclasses.replace(toy, name="toy-with-a-long-study-name")
    register(long)
    try:
        assert main(["run", "toy-with-a-long-study-name", "--set", "n_jobs=2", "--results", str(tmp_path), "-q"]) == 0
        capsys.readouterr()
        monkeypatch.setattr(cli.out, "_width", 80)
        assert main(["status", "--results", str(tmp_path)]) == 0
    finally:
        unregister(long.name)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "toy-with" in line)
    assert row.split()[:4] == ["toy-with-a-long-study-name", "quick", "2", "2"], out
    assert max(len(line) for line in out.splitlines() if "│" in line or "toy-with" in line) <= 80
