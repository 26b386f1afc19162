"""plan, fields, reproduce's options, status on thread counts, provenance, one-item lists and
cross-field validator messages."""

from __future__ import annotations

import pytest

from nnphys.cli import main
from nnphys.errors import ConfigError
from nnphys.lab.config import build_spec
from nnphys.lab.store import DB_NAME, Store


def _err(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    return err


def test_cross_field_validator_errors_are_one_line_naming_the_field(toy):
    with pytest.raises(ConfigError) as e:
        build_spec(toy, "quick", None, ["fail_every=3", "diverge_every=3"])
    assert e.value.field == "diverge_every" and "must differ from fail_every" in e.value.message
    with pytest.raises(ConfigError) as e:
        build_spec(toy, "quick", None, ["sleep=2", "n_jobs=40"])
    assert e.value.field == "spec" and "under 60" in e.value.message


def test_issue_examples_of_validator_messages():
    from nnphys.studies import get_study

    study = get_study("minibatch-noise")
    with pytest.raises(ConfigError) as e:
        build_spec(study, "quick", None, ["prop1_n=20", "prop1_S=30"])
    assert "prop1_S" in str(e.value)
    with pytest.raises(ConfigError) as e:
        build_spec(study, "quick", None, ['cases=["row99"]'])
    assert "row99" in str(e.value)


def test_one_item_list_without_brackets():
    from nnphys.studies import get_study

    spec = build_spec(get_study("depth-locality"), "quick", None, ["ks=3"])
    assert spec.ks == [3]
    assert build_spec(get_study("depth-locality"), "quick", None, ["ks=2,3"]).ks == [2, 3]


def test_plan_is_read_only_counts_done_and_estimates(capsys, tmp_path, toy):
    res = tmp_path / "res"
    assert main(["plan", "toy", "--set", "n_jobs=4", "--results", str(res)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "toy at scale quick: 4 jobs (no store" in out and "no estimate for 4 of them" in out
    assert not res.exists()
    assert main(["run", "toy", "--set", "n_jobs=2", "--set", "sleep=0.05", "--results", str(res), "-q"]) == 0
    capsys.readouterr()
    before = (res / DB_NAME).read_bytes()
    assert main(["plan", "toy", "--set", "n_jobs=4", "--set", "sleep=0.05", "--results", str(res),
                 "--workers", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "│ - │ 4 │ 2 │ 0 │ 0 │ 2 │" in out, out  # kind, planned, done, failed, diverged, missing
    assert "2 job(s) to run; about 0m00s on 2 worker(s)" in out, out
    assert (res / DB_NAME).read_bytes() == before


def test_fields_lists_type_bounds_tag_default_presets(capsys, toy):
    assert main(["fields", "toy"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "n_jobs" in line)
    for needle in ("n_jobs: int; bounds >= 1, <= 500; [default]; default 6; quick=default, paper=20",):
        assert needle in row, (needle, row)
    assert main(["run", "--help"]) == 0 and "nnphys fields STUDY" in " ".join(capsys.readouterr().out.split())
    assert "unknown study" in _err(capsys, ["fields", "nope"])


def test_enum_options_show_choices(capsys):
    assert main(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "quick|medium|paper" in out and "inline|dask" in out and "cpu|cuda" in out
    err = _err(capsys, ["export", "--format", "xlsx"])
    assert "'csv', 'parquet'" in err


def test_reproduce_studies_set_config(capsys, tmp_path, toy, monkeypatch):
    import nnphys.cli as cli

    reported = []
    monkeypatch.setattr(cli, "_report", lambda results, **kw: reported.append(results))
    res = tmp_path / "res"
    cfg = tmp_path / "c.toml"
    cfg.write_text("dim = 4\n[toy]\ntag = 'c'\n")
    assert main(["reproduce", "--studies", "toy", "--set", "n_jobs=2", "--set", "toy.fail_every=2",
                 "--config", str(cfg), "--results", str(res), "-q"]) == 1  # a job failed: exit 1
    assert "toy: 1 job(s) failed: RuntimeError: job 1 raised on purpose" in capsys.readouterr().err
    assert reported == [res]
    with Store(res, readonly=True) as s:
        rows = s.rows("toy")
        assert {r["params"]["tag"] for r in rows} == {"c"} and {r["params"]["dim"] for r in rows} == {4}
        assert sorted(r["status"] for r in rows) == ["done", "failed"]
        meta = s.latest_run("toy")["meta"]
    assert meta["argv"][:3] == ["nnphys", "reproduce", "--studies"] and meta["threads"] == 1
    assert "not a field of any selected study" in _err(capsys, ["reproduce", "--studies", "toy", "--set", "zz=1"])
    assert "unknown study 'nope'" in _err(capsys, ["reproduce", "--studies", "toy,nope"])


def test_provenance_keys():
    from nnphys.lab.provenance import collect

    m = collect(argv=["nnphys", "run"], engine="inline", workers=1, threads=1, device="cpu")
    assert set(m) == {"git_commit", "git_dirty", "argv", "engine", "workers", "threads", "host", "cpu_model",
                      "cpu_count", "device", "python", "versions"}
    assert m["versions"]["numpy"] and m["argv"] == ["nnphys", "run"]
    assert m["git_commit"] is None or len(m["git_commit"]) == 40


def test_status_says_when_thread_counts_mix(capsys, tmp_path, toy):
    res = str(tmp_path / "res")
    assert main(["run", "toy", "--set", "n_jobs=2", "--threads", "1", "--results", res, "-q"]) == 0
    assert main(["status", "--results", res]) == 0
    assert "mix thread counts" not in capsys.readouterr().out
    assert main(["run", "toy", "--set", "n_jobs=3", "--threads", "2", "--results", res, "-q"]) == 0
    assert main(["status", "--results", res]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "MIXED" in out and "mix thread counts (2 job(s) with 1 thread(s), 1 job(s) with 2 thread(s))" in out


def test_refused_address_writes_nothing(capsys, tmp_path, toy, monkeypatch):
    """A well-formed address nobody answers: refused before the store exists."""
    pytest.importorskip("distributed")
    import nnphys.lab.executors as ex

    monkeypatch.setattr(ex, "CONNECT_TIMEOUT_S", 2)
    res = tmp_path / "res"
    err = _err(capsys, ["run", "toy", "--engine", "dask", "--address", "tcp://127.0.0.1:9", "--results", str(res)])
    assert "--address" in err and "cannot reach" in err
    assert not res.exists()
    # on a finished store: no runs row, not a byte changed
    assert main(["run", "toy", "--set", "n_jobs=2", "--results", str(res), "-q"]) == 0
    capsys.readouterr()
    before = (res / DB_NAME).read_bytes()
    _err(capsys, ["run", "toy", "--set", "n_jobs=2", "--address", "tcp://127.0.0.1:9", "--results", str(res)])
    assert (res / DB_NAME).read_bytes() == before


def test_parquet_without_pyarrow_is_one_line(capsys, tmp_path, toy, monkeypatch):
    import sys

    res = str(tmp_path / "res")
    assert main(["run", "toy", "--set", "n_jobs=2", "--results", res, "-q"]) == 0
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    err = _err(capsys, ["export", "--format", "parquet", "--results", res])
    assert "pip install 'nnphys[parquet]'" in err
    assert not (tmp_path / "res" / "results.parquet").exists()


def test_reproduce_medium_skips_studies_without_that_preset(capsys, tmp_path, toy, monkeypatch):
    """The toy study has only quick and paper: an explicit --studies gives one line and exit 2;
    without --studies it is skipped with a note (and with nothing left, exit 2, nothing written)."""
    import nnphys.cli as cli
    from nnphys.studies import registry

    monkeypatch.setattr(cli, "_report", lambda results, **kw: None)
    res = tmp_path / "res"
    assert main(["reproduce", "--scale", "medium", "--studies", "toy", "--results", str(res)]) == 2
    assert "scale" in capsys.readouterr().err
    assert not res.exists()
    with_medium = [n for n, s in registry().items() if "medium" in s.presets]
    monkeypatch.setattr(cli, "_execute", lambda prepared, *a, **k: seen.extend(p for p in prepared))
    seen: list = []
    assert main(["reproduce", "--scale", "medium", "--results", str(res)]) == 0
    assert "toy" in capsys.readouterr().err
    assert len(seen) == len(with_medium) > 0
