"""Tidy export: one row per (job, member, metric), parameters as columns; CSV and Parquet round
trips, the --study filter, the wide layout, and the README's pandas example run verbatim."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

import test_report_toy as toy
from nnphys.errors import ConfigError
from nnphys.lab.export import FIXED, export, tidy_rows
from nnphys.lab.store import Store, job_key

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results") as s:
        toy.fill_store(s, toy.make_study(), toy.Spec(n_seeds=4, n_arms=2))
        toy.fill_store(s, toy.make_study("other"), toy.Spec(n_seeds=3, n_arms=1, effect=1.0))
        # a failed job and one with nested, non-member and string metrics
        s.record("other", "k-fail", {"arm": 9, "seeds": [1, 2]}, {"status": "failed", "error": "boom"})
        s.record("other", "k-nest", {"arm": 7, "data": {"task": "digits", "n": 5}, "seeds": [10, 20],
                                     "metric": "clash"},
                 {"status": "done", "metrics": {"curves": {"loss": [[1.0, 0.5, 0.25], [2.0, 1.0, 0.5]]},
                                                "ok": True, "note": "fine", "steps": [3, 4, 5]}})
        yield s


def _expected(store) -> list[tuple]:
    """(study, key, member, metric, value) computed from the raw rows, independently of export."""
    out = []
    for r in store.rows():
        seeds = r["params"].get("seeds") or []
        for name, v in r["metrics"].items():
            if isinstance(v, list) and len(v) == len(seeds):
                out += [(r["study"], r["key"], m, name, float(x)) for m, x in enumerate(v)]
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((r["study"], r["key"], None, name, float(v)))
    return out


def test_tidy_rows_one_per_job_member_metric(store):
    rows = tidy_rows(store)
    got = {(r["study"], r["key"], r["member"], r["metric"], r["value"]) for r in rows
           if r["key"] not in ("k-fail", "k-nest")}
    assert got == set(_expected(store)) - {t for t in _expected(store) if t[1] in ("k-fail", "k-nest")}
    toy_rows = [r for r in rows if r["study"] == "rtoy"]
    assert len(toy_rows) == 2 * (4 + 1)  # per arm: 4 members of x + the job-level mean
    r0 = next(r for r in toy_rows if r["arm"] == 0 and r["member"] == 2)
    job = toy.jobs(toy.Spec(n_seeds=4, n_arms=2))[0]
    assert r0["member_seed"] == job["seeds"][2] and "seeds" not in r0  # member seeds become member_seed
    assert r0["value"] == toy.run(job)["x"][2] and r0["effect"] == 2.0 and r0["status"] == "done"
    nest = [r for r in rows if r["key"] == "k-nest"]
    loss = {(r["member"], r["index"]): r["value"] for r in nest if r["metric"] == "curves.loss"}
    assert loss == {(0, "0"): 1.0, (0, "1"): 0.5, (0, "2"): 0.25, (1, "0"): 2.0, (1, "1"): 1.0, (1, "2"): 0.5}
    steps = [(r["member"], r["index"], r["value"]) for r in nest if r["metric"] == "steps"]
    assert steps == [(None, "0", 3.0), (None, "1", 4.0), (None, "2", 5.0)]  # length 3 != 2 seeds: not members
    assert {(r["metric"], r["value"], r["text"]) for r in nest if r["metric"] in ("ok", "note")} == {
        ("ok", 1.0, None), ("note", None, "fine")}
    assert nest[0]["data.task"] == "digits" and nest[0]["param_metric"] == "clash"
    fail = [r for r in rows if r["key"] == "k-fail"]
    assert len(fail) == 1 and fail[0]["metric"] is None and fail[0]["error"] == "boom"
    assert all(r["error"] is None for r in rows if r["key"] != "k-fail")


def test_csv_round_trip_and_study_filter(store, tmp_path):
    path = export(store, "csv", tmp_path / "t.csv", study="rtoy")
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0])[:len(FIXED)] == list(FIXED)
    assert {r["study"] for r in rows} == {"rtoy"}
    back = {(r["key"], int(r["member"]) if r["member"] else None, r["metric"], float(r["value"])) for r in rows}
    assert back == {t[1:] for t in _expected(store) if t[0] == "rtoy"}
    with pytest.raises(ConfigError, match="--study"):
        export(store, "csv", tmp_path / "x.csv", study="nope")


def test_parquet_round_trip_with_pandas(store, tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.read_parquet(export(store, "parquet", tmp_path / "t.parquet"))
    assert len(df) == len(tidy_rows(store)) and df["value"].dtype == np.float64
    for study, key, member, metric, value in _expected(store):
        sel = df[(df.key == key) & (df.metric == metric) & (df.study == study)]
        sel = sel[sel.member.isna()] if member is None else sel[sel.member == member]
        assert len(sel) == 1 and sel.value.iloc[0] == value
    x = df[(df.study == "rtoy") & (df.metric == "x")].groupby("arm")["value"].mean()
    means = {r["params"]["arm"]: r["metrics"]["mean"] for r in store.rows("rtoy")}
    assert all(math.isclose(x[a], m, rel_tol=1e-12) for a, m in means.items())


def test_wide_layout_still_available(store, tmp_path):
    rows = list(csv.DictReader(open(export(store, "csv", tmp_path / "w.csv", tidy=False))))
    assert len(rows) == len(store.rows()) and "params.arm" in rows[0] and "metrics.mean" in rows[0]


def test_readme_pandas_example_runs_verbatim(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    text = README.read_text()
    m = re.search(r"<!-- export-example[^>]*-->\s*```py\n(.*?)```", text, re.S)
    assert m, "README lacks the export example block"
    code = m.group(1)
    assert len(code.strip().splitlines()) <= 5
    study = toy.make_study("depth-locality")  # the name the example filters on; any numbers will do
    with Store(tmp_path / "results") as s:
        toy.fill_store(s, study, toy.Spec(n_seeds=5))
        export(s, "parquet")
        key0 = job_key(study.name, study.schema_version, toy.jobs(toy.Spec(n_seeds=5))[0])
        x0 = next(r["metrics"]["x"] for r in s.rows(study.name) if r["key"] == key0)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    per_job = ns["per_job"]
    row = per_job.loc[("depth-locality", key0, "x")]
    assert math.isclose(row["mean"], np.mean(x0), rel_tol=1e-12)
    assert math.isclose(row["sem"], np.std(x0, ddof=1) / np.sqrt(5), rel_tol=1e-12) and row["count"] == 5
