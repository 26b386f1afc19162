"""Store and resume behaviour: nothing runs twice, SIGKILL loses nothing finished, two drivers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nnphys.lab.executors import EngineConfig
from nnphys.lab.runner import keyed_jobs, run_study
from nnphys.lab.store import Store, job_key

TESTS = Path(__file__).parent


def test_job_key_is_canonical_and_versioned():
    a = {"seed": 1, "d": 2, "xs": [1, 2]}
    b = {"xs": [1, 2], "d": 2, "seed": 1}
    assert job_key("s", 1, a) == job_key("s", 1, b)
    assert job_key("s", 1, a) != job_key("s", 2, a)
    assert job_key("s", 1, a) != job_key("t", 1, a)
    assert job_key("s", 1, a) != job_key("s", 1, {**a, "seed": 2})


def test_sweep_twice_runs_nothing_twice(tmp_path, toy):
    spec = toy.make_spec("quick", {"n_jobs": 5})
    with Store(tmp_path) as store:
        s1 = run_study(toy, spec, store, progress=False)
        assert (s1.planned, s1.already, s1.executed) == (5, 0, 5)
        first = {r.key: r.ended for r in store.results("toy")}
        s2 = run_study(toy, spec, store, progress=False)
        assert (s2.planned, s2.already, s2.executed) == (5, 5, 0)
        assert {r.key: r.ended for r in store.results("toy")} == first
        # a larger sweep runs only the new jobs
        s3 = run_study(toy, toy.make_spec("quick", {"n_jobs": 7}), store, progress=False)
        assert (s3.already, s3.executed) == (5, 2)


def test_results_round_trip_with_arrays(tmp_path, toy):
    spec = toy.make_spec("quick", {"n_jobs": 3, "dim": 5})
    with Store(tmp_path) as store:
        run_study(toy, spec, store, progress=False)
        res = store.results("toy", list(keyed_jobs(toy, toy.jobs(spec))))
    assert [r.params["seed"] for r in res] == [0, 1, 2]
    for r in res:
        x = np.random.default_rng(r.params["seed"]).standard_normal(5)
        np.testing.assert_array_equal(r.arrays["x"], x)
        assert r.metrics["mean"] == float(x.mean())
    assert not list(tmp_path.rglob("*.tmp-*"))


def _driver_script(results: Path, n_jobs: int, sleep: float, start: float = 0.0) -> str:
    return textwrap.dedent(f"""
        import sys, time; sys.path.insert(0, {str(TESTS)!r})
        import toy_study
        time.sleep(max(0.0, {start} - time.time()))  # a common start after the imports
        from nnphys.lab.store import Store
        from nnphys.lab.runner import run_study
        spec = toy_study.STUDY.make_spec("quick", {{"n_jobs": {n_jobs}, "sleep": {sleep}, "dim": 20000}})
        with Store({str(results)!r}) as store:
            s = run_study(toy_study.STUDY, spec, store, progress=False)
        print("executed", s.executed)
    """)


def _check_store_consistent(root: Path, n_jobs: int) -> int:
    """Every row is whole and its array loads with the right content; returns the done count."""
    with Store(root) as store:
        assert store.integrity_ok()
        res = store.results("toy")
    for r in res:
        assert r.status == "done"
        x = np.random.default_rng(r.params["seed"]).standard_normal(20000)
        np.testing.assert_array_equal(r.arrays["x"], x)
        assert r.metrics["sq"] == float((x**2).sum())
    assert len({r.key for r in res}) == len(res) <= n_jobs
    return len(res)


@pytest.mark.slow
def test_sigkill_mid_sweep_loses_nothing_and_rerun_completes(tmp_path):
    n = 40
    proc = subprocess.Popen([sys.executable, "-c", _driver_script(tmp_path, n, 0.05)])
    db = tmp_path / "nnphys.sqlite"
    deadline = time.time() + 60
    # kill once a few jobs are stored, so the kill lands in the middle of the sweep
    while time.time() < deadline:
        time.sleep(0.05)
        if db.exists():
            with Store(tmp_path) as s:
                if len(s.statuses("toy")) >= 5:
                    break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _check_store_consistent(tmp_path, n)
    assert 5 <= before < n, "the kill should land mid-sweep"
    out = subprocess.run([sys.executable, "-c", _driver_script(tmp_path, n, 0.05)], capture_output=True, text=True,
                         check=True)
    assert f"executed {n - before}" in out.stdout
    assert _check_store_consistent(tmp_path, n) == n
    with Store(tmp_path) as store:
        assert store.claims() == []  # the killed driver's claim was released by the rerun


@pytest.mark.slow
def test_two_drivers_on_one_store(tmp_path):
    n = 30
    start = time.time() + 5.0
    procs = [subprocess.Popen([sys.executable, "-c", _driver_script(tmp_path, n, 0.05, start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    executed = []
    for p in procs:
        outs, errout = p.communicate(timeout=120)
        assert p.returncode == 0, errout
        executed.append(int(outs.split("executed")[1].split()[0]))
    assert _check_store_consistent(tmp_path, n) == n
    # leases: the two drivers shared the work, every job ran exactly once
    assert sum(executed) == n, executed
    assert min(executed) > 0, executed
    with Store(tmp_path) as store:
        assert len(store.rows("toy")) == n
        assert store.claims() == []


def test_failed_and_diverged_jobs_are_recorded_and_sweep_completes(tmp_path, toy):
    spec = toy.make_spec("quick", {"n_jobs": 9, "fail_every": 3, "diverge_every": 4})
    with Store(tmp_path) as store:
        s = run_study(toy, spec, store, progress=False)
        assert s.counts == {"done": 4, "failed": 3, "diverged": 2}  # fails: 2,5,8; diverges: 3,7
        rows = {r.params["seed"]: r for r in store.results("toy")}
    assert rows[2].status == "failed" and "RuntimeError: job 2 raised on purpose" in rows[2].error
    assert "Traceback" in rows[2].error
    assert rows[3].status == "diverged" and rows[3].metrics == {"steps": 3}
    assert rows[0].status == "done" and rows[0].error is None


def test_rerun_failed_only_reruns_failed(tmp_path, toy):
    spec = toy.make_spec("quick", {"n_jobs": 6, "fail_every": 3})
    with Store(tmp_path) as store:
        run_study(toy, spec, store, progress=False)
        again = run_study(toy, spec, store, progress=False)
        assert again.executed == 0
        rerun = run_study(toy, spec, store, progress=False, rerun_failed=True)
        assert rerun.executed == 2 and rerun.counts["failed"] == 2


def test_same_job_twice_is_bit_identical(toy):
    from nnphys.lab.execute import execute_job

    job = toy.jobs(toy.make_spec("quick", {"n_jobs": 1, "dim": 1000}))[0]
    a, b = execute_job(toy.run, job), execute_job(toy.run, job)
    assert a["metrics"] == b["metrics"]
    np.testing.assert_array_equal(a["arrays"]["x"], b["arrays"]["x"])


def test_inline_engine_rejects_many_workers():
    from nnphys.errors import ConfigError

    with pytest.raises(ConfigError, match="--workers"):
        EngineConfig(engine="inline", workers=2).resolved()
    with pytest.raises(ConfigError, match="--workers"):
        EngineConfig(workers=0).resolved()
    assert EngineConfig(workers=3).resolved().engine == "dask"


@pytest.mark.slow
def test_many_processes_create_one_store_at_once(tmp_path):
    """Six processes open the same fresh store at the same instant (after their imports), two
    rounds: none may fail to switch the file to WAL. Two connections that both switch a fresh
    file to WAL can deadlock, and SQLite then answers "database is locked" to one of them at once,
    without its busy handler (seen when two drivers started together)."""
    script = ("import sys, time; from nnphys.lab.store import Store\n"
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
              "with Store(sys.argv[1]) as s:\n"
              "    assert s._conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'\n")
    for r in range(2):
        root = tmp_path / f"r{r}"
        start = time.time() + 4.0
        procs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(start)], stderr=subprocess.PIPE,
                                  text=True) for _ in range(6)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _plant_claim(store: Store, key: str, pid: int, host: str, age: float = 0.0) -> None:
    t = time.time() - age
    with store._write() as c:
        c.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?)", (key, "toy", pid, host, t, t))


def test_claims_skip_live_take_over_stale_release_killed(tmp_path, toy):
    """A live driver's claim is skipped; a claim of a gone process (this host) or with an old
    heartbeat (any host) is taken over; the dead driver's claim is released at the start."""
    from nnphys.lab.store import HOST, LEASE_TIMEOUT_S

    spec = toy.make_spec("quick", {"n_jobs": 4})
    keys = list(keyed_jobs(toy, toy.jobs(spec)))
    with Store(tmp_path) as store:
        _plant_claim(store, keys[0], os.getppid(), HOST)  # alive: the test runner's parent
        _plant_claim(store, keys[1], _dead_pid(), HOST)  # a killed driver on this host
        _plant_claim(store, keys[2], 1, "another-host", age=LEASE_TIMEOUT_S + 5)  # silent too long
        _plant_claim(store, keys[3], 1, "another-host", age=5)  # another host, fresh: live
        s = run_study(toy, spec, store, progress=False)
        assert s.released == 2  # the dead pid's and the timed-out one
        assert (s.executed, s.left_to_others) == (2, 2)
        assert set(store.statuses("toy")) == {keys[1], keys[2]}
        assert {c["key"] for c in store.claims()} == {keys[0], keys[3]}
        assert store.claim("toy", keys[1]) == "finished"
        assert store.claim("toy", keys[0]) == "busy"


def test_threads_recorded_per_job_and_default_is_one(tmp_path, toy):
    spec = toy.make_spec("quick", {"n_jobs": 3})
    assert EngineConfig().resolved().threads_per_job() == 1
    assert EngineConfig(workers=2).resolved().threads_per_job() == 1
    assert EngineConfig(threads=3).resolved().threads_per_job() == 3
    assert EngineConfig(address="tcp://h:1").resolved().threads_per_job() is None
    with Store(tmp_path) as store:
        run_study(toy, spec, store, EngineConfig(threads=1), progress=False)
        run_study(toy, toy.make_spec("quick", {"n_jobs": 5}), store, EngineConfig(threads=2), progress=False)
        assert store.thread_counts("toy") == {1: 3, 2: 2}
        assert {r["threads"] for r in store.rows("toy")} == {1, 2}


def test_version_0_store_is_read_as_is_and_migrated_in_place(tmp_path, toy):
    """A store of the first format (no threads, meta or claims) is readable read-only without a
    byte changing, and a writing open adds the columns keeping every row."""
    import sqlite3

    from nnphys.lab.store import DB_NAME, STORE_VERSION

    spec = toy.make_spec("quick", {"n_jobs": 3})
    with Store(tmp_path) as store:
        run_study(toy, spec, store, progress=False)
    db = tmp_path / DB_NAME
    c = sqlite3.connect(db)  # rebuild it as version 0 had it
    c.executescript("""
        CREATE TABLE j0 AS SELECT key, study, params, status, metrics, error, started, ended, versions, arrays FROM jobs;
        DROP TABLE jobs; ALTER TABLE j0 RENAME TO jobs;
        CREATE TABLE r0 (id INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL, scale TEXT, spec TEXT NOT NULL,
                         keys TEXT NOT NULL, started REAL NOT NULL, ended REAL, executed INTEGER, engine TEXT);
        INSERT INTO r0 SELECT id, study, scale, spec, keys, started, ended, executed, engine FROM runs;
        DROP TABLE runs; ALTER TABLE r0 RENAME TO runs; DROP TABLE claims; PRAGMA user_version = 0;
        PRAGMA journal_mode = DELETE;
    """)
    c.close()
    before = db.read_bytes()
    with Store(tmp_path, readonly=True) as ro:
        assert ro.version == 0 and "upgrades it in place" in ro.upgrade_note
        assert len(ro.results("toy")) == 3 and ro.latest_run("toy")["meta"] == {}
        assert ro.thread_counts("toy") == {None: 3} and ro.claims() == []
    assert db.read_bytes() == before
    with Store(tmp_path) as store:
        assert store.version == STORE_VERSION and len(store.rows("toy")) == 3
        assert [r["meta"] for r in store.runs("toy")] == [{}]
        s = run_study(toy, toy.make_spec("quick", {"n_jobs": 4}), store, progress=False, meta={"argv": ["x"]})
        assert (s.already, s.executed) == (3, 1)
        assert store.runs("toy")[-1]["meta"] == {"argv": ["x"]}


def test_version_2_store_gains_run_ids_in_place(tmp_path, toy):
    """A store without jobs.run_id (version 2) is read as it is and migrated by a writing open:
    old rows keep a NULL run_id, new rows carry the id of the run that stored them."""
    import sqlite3

    from nnphys.lab.store import DB_NAME, STORE_VERSION

    with Store(tmp_path) as store:
        run_study(toy, toy.make_spec("quick", {"n_jobs": 2}), store, progress=False)
    c = sqlite3.connect(tmp_path / DB_NAME)
    c.executescript("ALTER TABLE jobs DROP COLUMN run_id; PRAGMA user_version = 2;")
    c.close()
    with Store(tmp_path, readonly=True) as ro:
        assert ro.version == 2 and "run id" in ro.upgrade_note
        assert [r["run_id"] for r in ro.rows("toy")] == [None, None]
    with Store(tmp_path) as store:
        assert store.version == STORE_VERSION == 3
        s = run_study(toy, toy.make_spec("quick", {"n_jobs": 3}), store, progress=False)
        ids = sorted((r["run_id"] is None, r["run_id"]) for r in store.rows("toy"))
        assert [i for _, i in ids] == [s.run_id, None, None]


def test_a_directory_created_between_two_looks_is_not_a_file(tmp_path, monkeypatch):
    """check_location looks with is_dir() and then exists(): a concurrent driver may create the
    directory in between (seen once in CI as 'is not a directory'). Simulate exactly that race."""
    from pathlib import Path

    from nnphys.lab.store import check_location

    root = tmp_path / "res"
    real_is_dir = Path.is_dir
    calls = {"n": 0}

    def racing_is_dir(self):
        if self == root and calls["n"] == 0:
            calls["n"] += 1
            root.mkdir()  # the other driver wins the race right after our first look
            return False
        return real_is_dir(self)

    monkeypatch.setattr(Path, "is_dir", racing_is_dir)
    assert check_location(root, write=True) is None


def test_sqlite_trouble_becomes_a_typed_store_error(tmp_path, toy):
    """SQLite's refusals are classified by error code inside the store (StoreUnavailable
    subclasses); an error that is not trouble with the store itself stays a bug."""
    import sqlite3

    from nnphys.errors import StoreBusy, StoreDamaged, StoreReadOnly, StoreUnavailable
    from nnphys.lab.store import unavailable

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database\n" * 100)
    with pytest.raises(sqlite3.DatabaseError) as e:
        sqlite3.connect(junk).execute("SELECT 1 FROM sqlite_master").fetchall()
    assert isinstance(unavailable(junk, e.value), StoreDamaged)
    db = tmp_path / "busy.sqlite"
    a, b = sqlite3.connect(db, timeout=0, isolation_level=None), sqlite3.connect(db, timeout=0, isolation_level=None)
    a.execute("CREATE TABLE t (x)")
    a.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError) as e:
        b.execute("BEGIN EXCLUSIVE")
    typed = unavailable(db, e.value)
    assert isinstance(typed, StoreBusy) and str(typed) == "results store: database is locked (check --results)"
    a.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError) as e:
        a.execute("SELECT nope FROM t")
    assert unavailable(db, e.value) is None  # a wrong query is a bug, not the user's store
    # through a Store method: a write on a read-only connection
    with Store(tmp_path / "res") as s:
        run_study(toy, toy.make_spec("quick", {"n_jobs": 2}), s, progress=False)
    ro = Store(tmp_path / "res", readonly=True)
    ro.readonly = False  # let _write() through, so SQLite itself refuses
    with pytest.raises(StoreReadOnly) as e:
        ro.release_mine()
    assert isinstance(e.value, StoreUnavailable) and isinstance(e.value.__cause__, sqlite3.OperationalError)
    ro.close()


def test_cli_prints_a_store_error_in_one_line(tmp_path, toy, capsys, monkeypatch):
    from nnphys.cli import main
    from nnphys.errors import StoreBusy
    import nnphys.lab.status as status

    res = str(tmp_path / "res")
    assert main(["run", "toy", "--set", "n_jobs=2", "--results", res, "-q"]) == 0
    capsys.readouterr()

    def locked(store, name):
        raise StoreBusy(store.path, "database is locked")

    monkeypatch.setattr(status, "study_status", locked)
    assert main(["status", "--results", res]) == 2
    assert capsys.readouterr().err == "nnphys: error: results store: database is locked (check --results)\n"
