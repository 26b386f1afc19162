"""Failures never look like success: a sweep with failed jobs exits 1 and says why in one line
per reason (run, reproduce, status, report); claims computed without the failed jobs are shown
inconclusive; a data set whose files are missing is refused before the store opens; a killed
driver's temp array file is removed when the store is next opened for writing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nnphys.cli import main
from nnphys.lab.store import Store
from nnphys.studies.base import Claim

TEMP_GRACE_S = 60.0  # nnphys.lab.store.TEMP_GRACE_S (checked in the test)

TRACEBACK = ('Traceback (most recent call last):\n  File "x.py", line 3, in run\n    load()\n'
             "nnphys.errors.ConfigError: data_root: directory not found: data/fashion_mnist\n")


def test_reason_is_the_last_line_without_the_module_path():
    from nnphys.lab.outcomes import reason

    assert reason(TRACEBACK) == "ConfigError: data_root: directory not found: data/fashion_mnist"
    assert reason("RuntimeError: boom\n\n") == "RuntimeError: boom"
    assert reason(None) == "no reason recorded"
    assert "\n" not in reason("x\n" + "y" * 1000) and len(reason("y" * 1000)) <= 300


def test_run_with_failed_jobs_exits_1_and_prints_each_reason(capsys, tmp_path, toy):
    res = tmp_path / "res"
    code = main(["run", "toy", "--set", "n_jobs=6", "--set", "fail_every=3", "--results", str(res), "-q"])
    cap = capsys.readouterr()
    assert code == 1, (code, cap.err)
    lines = [ln for ln in cap.err.splitlines() if "failed:" in ln]
    # jobs 2 and 5 raise with different messages: one line each, the exception's last line only
    assert len(lines) == 2, cap.err
    assert "toy: 1 job(s) failed: RuntimeError: job 2 raised on purpose" in lines[0]
    assert "Traceback" not in cap.err + cap.out
    # a resume that runs nothing still exits 1: the sweep's results hold failed jobs
    assert main(["run", "toy", "--set", "n_jobs=6", "--set", "fail_every=3", "--results", str(res), "-q"]) == 1
    capsys.readouterr()
    # rerunning the failed jobs cannot fix them here (they raise on purpose), so still 1; a clean sweep is 0
    assert main(["run", "toy", "--set", "n_jobs=4", "--results", str(tmp_path / "ok"), "-q"]) == 0


def test_reproduce_with_failed_jobs_exits_1_after_writing_the_report(capsys, tmp_path, toy):
    res = tmp_path / "res"
    code = main(["reproduce", "--studies", "toy", "--set", "fail_every=2", "--results", str(res), "-q"])
    cap = capsys.readouterr()
    assert code == 1, cap.err
    assert (res / "report.md").exists() and "job(s) failed: RuntimeError" in cap.err


def test_entry_point_exit_status_is_1_when_jobs_failed(tmp_path, toy):
    # the process status a shell or CI sees (the toy study is registered in the child too)
    code = ("import sys; sys.path.insert(0, %r); import toy_study; from nnphys.studies import register; "
            "register(toy_study.STUDY); from nnphys.cli import main; main()") % str(Path(__file__).parent)
    p = subprocess.run([sys.executable, "-c", code, "run", "toy", "--set", "fail_every=2", "--results",
                        str(tmp_path), "-q"], capture_output=True, text=True)
    assert p.returncode == 1, p.stderr
    assert "job(s) failed: RuntimeError" in p.stderr and "Traceback" not in p.stderr


def test_status_and_report_show_failure_reasons_and_claims_are_inconclusive(capsys, tmp_path, toy):
    res = tmp_path / "res"
    assert main(["run", "toy", "--set", "n_jobs=8", "--set", "fail_every=8", "--results", str(res)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    # the CLI's claims table: T1 would hold on the 7 finished jobs, but one planned job failed
    assert "│ inconclusive │ jobs failed: 1" in out and "│ holds │" not in out, out
    assert main(["status", "--results", str(res)]) == 0
    assert "toy: 1 job(s) failed: RuntimeError: job 7 raised on purpose" in " ".join(capsys.readouterr().out.split())
    assert main(["report", "--results", str(res)]) == 0
    md = (res / "report.md").read_text()
    assert "**Failed jobs** (jobs failed: 1 (RuntimeError: job 7 raised on purpose))" in md
    row = next(ln for ln in md.splitlines() if ln.startswith("| T1 |"))
    assert "**inconclusive**" in row and "jobs failed: 1" in row and "on the finished jobs alone: holds" in row
    claims = json.loads((res / "claims.json").read_text())["toy"]
    assert claims[0]["verdict"] == "inconclusive" and claims[0]["evidence"]["verdict_on_partial_data"] == "holds"
    assert "job 7 raised on purpose" in (res / "report.html").read_text()


def test_guard_claims_leaves_complete_data_alone():
    from nnphys.lab.outcomes import failures, guard_claims

    c = [Claim("A", "s", "paper", "holds", {"x": 1}, "fine"), Claim("B", "s", "paper", "inconclusive", {}, "")]
    assert guard_claims(c, []) == c
    fails = failures([{"status": "failed", "error": "ValueError: bad", "key": "k1"},
                      {"status": "diverged", "error": "nan", "key": "k2"}])
    g = guard_claims(c, fails)
    assert [x.verdict for x in g] == ["inconclusive", "inconclusive"]
    assert g[0].summary.startswith("jobs failed: 1 (ValueError: bad)") and g[1].summary == "jobs failed: 1 (ValueError: bad)"


def test_missing_data_files_are_refused_before_the_store_opens(capsys, tmp_path):
    res = tmp_path / "res"
    for cmd in (["run", "noise-enhancement"], ["plan", "noise-enhancement"]):
        code = main([*cmd, "--set", "tasks=fashion_mnist", "--set", f"data_root={tmp_path / 'nowhere'}",
                     "--results", str(res)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0, err
        assert err.startswith("nnphys: error: data_root: directory not found") and "fashion_mnist" in err, err
        assert not res.exists()
    # the folder exists but a file is missing: still refused, naming the file
    (tmp_path / "data" / "fashion_mnist").mkdir(parents=True)
    code = main(["run", "noise-enhancement", "--set", "tasks=fashion_mnist", "--set",
                 f"data_root={tmp_path / 'data'}", "--results", str(res)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "data_root: file not found" in err and "train-images-idx3-ubyte" in err, err
    assert not res.exists()


def test_study_check_hook_runs_before_the_store(capsys, tmp_path, toy, monkeypatch):
    import dataclasses

    from nnphys.errors import ConfigError
    from nnphys.studies import register

    def check(spec):
        if spec.tag == "remote":
            raise ConfigError("tag", "the remote service is not reachable")

    register(dataclasses.replace(toy, check=check))
    assert main(["run", "toy", "--set", "tag=remote", "--results", str(tmp_path / "r")]) == 2
    assert "nnphys: error: tag: the remote service is not reachable" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_stale_temp_arrays_are_removed_on_open_for_writing(tmp_path):
    import nnphys.lab.store as store_mod

    assert getattr(store_mod, "TEMP_GRACE_S", TEMP_GRACE_S) == TEMP_GRACE_S
    root = tmp_path / "res"
    Store(root).close()
    d = root / "arrays" / "toy"
    d.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer exists here
    old = time.time() - 2 * TEMP_GRACE_S
    stale = d / f"{'a' * 64}.npz.tmp-{dead.pid}"
    fresh = d / f"{'b' * 64}.npz.tmp-{dead.pid}"  # dead pid, but just written: maybe a driver elsewhere
    live = d / f"{'c' * 64}.npz.tmp-{os.getpid()}"
    keep = d / f"{'d' * 64}.npz"
    for p in (stale, fresh, live, keep):
        p.write_bytes(b"x")
    for p in (stale, live, keep):
        os.utime(p, (old, old))
    with Store(root, readonly=True):
        pass
    assert stale.exists(), "a read-only open never removes anything"
    with Store(root) as s:
        assert getattr(s, "removed_temps", None) == [stale]
    assert not stale.exists() and fresh.exists() and live.exists() and keep.exists()
