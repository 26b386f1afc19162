"""Studies as plug-ins: an installed distribution registers a study through the ``nnphys.studies``
entry-point group and the CLI treats it as a built-in (list, run, status, report, export).

The plug-in is installed into a folder the test makes (a package plus its ``.dist-info`` with
``entry_points.txt``, which is what pip writes) and put on the subprocess' ``PYTHONPATH``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
"""A researcher's own study, outside nnphys."""
import numpy as np
from pydantic import Field

from nnphys.studies import protocol as P
from nnphys.studies._kit import ClaimBook
from nnphys.studies.base import ClaimInfo, Figure, Study, StudySpec


class Spec(StudySpec):
    seeds: int = Field(6, ge=2, le=100, description="[default] seeds")
    gain: float = Field(1.0, ge=-10, le=10, description="[default] true gain of arm b")


CLAIMS = {"G1": ClaimInfo("arm b beats arm a", "default",
                          rule=P.Rule("directional", sesoi=0.2, fails_if="paired gain ruled below 0.2"))}
BOOK = ClaimBook(CLAIMS)


def jobs(spec):
    return [{"seed": s, "gain": spec.gain, "device": spec.device} for s in range(spec.seeds)]


def run(job):
    rng = np.random.default_rng(job["seed"])
    a = float(rng.normal(1.0, 0.1))
    return {"a": a, "b": a - job["gain"] + float(rng.normal(0, 0.05))}


@BOOK.rule("G1")
def claim_g1(results):
    d = [r.metrics["a"] - r.metrics["b"] for r in results if r.ok]
    rule = CLAIMS["G1"].rule
    return BOOK.judged("G1", P.judge([P.cell("all", P.paired(d), rule)], rule))


def analyse(spec, results):
    return [claim_g1(results)]


def figures(spec, results):
    return []


STUDY = Study(name="plug-toy", papers=("A plug-in (tests only)",), spec=Spec, presets={"quick": {}, "paper": {"seeds": 20}},
              jobs=jobs, run=run, analyse=analyse, figures=figures, claims=CLAIMS)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugin_site")
    (root / "plugtoy").mkdir()
    (root / "plugtoy" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (root / "brokenplug.py").write_text("raise ImportError('no module named numpyy')\n")
    dist = root / "plugtoy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugtoy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nnphys.studies]\nplug-toy = plugtoy:STUDY\nbroken = brokenplug:STUDY\n")
    return root


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "MPLBACKEND": "Agg", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "nnphys", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_plugin_study_runs_end_to_end_through_the_cli(site, tmp_path):
    res = tmp_path / "res"
    p = _cli(site, "list")
    assert p.returncode == 0 and "plug-toy" in p.stdout, p.stderr
    p = _cli(site, "run", "plug-toy", "--results", str(res), "-q")
    assert p.returncode == 0, p.stderr
    p = _cli(site, "status", "--results", str(res))
    assert p.returncode == 0 and "plug-toy" in p.stdout
    p = _cli(site, "report", "--results", str(res))
    assert p.returncode == 0, p.stderr
    claims = json.loads((res / "claims.json").read_text())
    g1 = claims["plug-toy"][0] if isinstance(claims["plug-toy"], list) else claims["plug-toy"]["G1"]
    text = json.dumps(g1)
    assert "holds" in text  # gain 1.0 against a SESOI of 0.2 with 6 seeds
    p = _cli(site, "export", "--format", "csv", "--results", str(res))
    assert p.returncode == 0 and (res / "results.csv").read_text().count("plug-toy") >= 6


def test_broken_plugin_is_one_line_when_asked_for_and_harmless_otherwise(site, tmp_path):
    p = _cli(site, "run", "broken", "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "failed to load" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    p = _cli(site, "fields", "plug-toy")
    assert p.returncode == 0 and "gain" in p.stdout
