"""Dask executors: LocalCluster equals inline; an external scheduler + 2 worker processes on
127.0.0.1 completes a sweep, also when one worker is killed mid-sweep."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
from nnphys.lab.executors import EngineConfig  # noqa: E402
from nnphys.lab.runner import run_study  # noqa: E402
from nnphys.lab.store import Store  # noqa: E402


def _metrics(store: Store) -> dict[str, dict]:
    return {r.key: r.metrics for r in store.results("toy")}


@pytest.mark.slow
def test_local_cluster_matches_inline(tmp_path, toy):
    spec = toy.make_spec("quick", {"n_jobs": 8, "dim": 300, "fail_every": 5})
    with Store(tmp_path / "a") as a, Store(tmp_path / "b") as b:
        run_study(toy, spec, a, EngineConfig("inline"), progress=False)
        s = run_study(toy, spec, b, EngineConfig("dask", workers=2), progress=False)
        assert s.counts == {"done": 7, "failed": 1, "diverged": 0}
        assert _metrics(a) == _metrics(b)
        assert {r.key: r.status for r in a.results("toy")} == {r.key: r.status for r in b.results("toy")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_cmd(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe), *args] if exe.exists() else [shutil.which("dask") or "dask", *args]


@pytest.mark.slow
def test_external_scheduler_two_workers_survives_a_killed_worker(tmp_path, toy):
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    # a cluster needs one software environment everywhere: here, the tests folder for toy_study
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    logs = open(tmp_path / "dask.log", "w")
    sched = subprocess.Popen(_dask_cmd("scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"), stdout=logs, stderr=logs, env=env)
    workers = [subprocess.Popen(_dask_cmd("worker", addr, "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                                          "--no-dashboard", "--host", "127.0.0.1"),
                                stdout=logs, stderr=logs, env=env) for _ in range(2)]
    try:
        from distributed import Client

        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        spec = toy.make_spec("quick", {"n_jobs": 24, "sleep": 0.25, "dim": 50})

        def killer():
            # kill one worker once the sweep is under way
            db = tmp_path / "store" / "nnphys.sqlite"
            t_end = time.time() + 60
            while time.time() < t_end:
                time.sleep(0.1)
                if db.exists():
                    try:
                        with Store(tmp_path / "store") as s:
                            if len(s.statuses("toy")) >= 4:
                                break
                    except Exception:
                        pass
            workers[0].send_signal(signal.SIGKILL)

        th = threading.Thread(target=killer)
        th.start()
        with Store(tmp_path / "store") as store:
            summary = run_study(toy, spec, store, EngineConfig("dask", address=addr), progress=False)
            th.join()
            assert workers[0].poll() is not None, "the first worker should have been killed"
            assert summary.counts == {"done": 24, "failed": 0, "diverged": 0}
            res = store.results("toy")
        assert len(res) == 24 and all(r.ok for r in res)
        assert sorted(r.params["seed"] for r in res) == list(range(24))
    finally:
        for p in [*workers, sched]:
            if p.poll() is None:
                p.terminate()
        for p in [*workers, sched]:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        logs.close()
