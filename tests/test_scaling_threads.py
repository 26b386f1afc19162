"""What a job sees in a Dask worker: every thread pool pinned to the job's budget, glibc's malloc
thresholds restored, and a job that kills its worker stored as ``failed`` while the sweep goes on."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("distributed")
from nnphys.lab.execute import execute_job  # noqa: E402
from nnphys.lab.executors import EngineConfig, open_executor  # noqa: E402
from nnphys.lab.runner import run_study  # noqa: E402
from nnphys.lab.store import Store  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def pool_limits(job: dict) -> dict:
    """The thread count of every pool this process has: torch intra-op and inter-op, each BLAS /
    OpenMP library threadpoolctl finds, and numba's: inside a kernel's thread context when
    ``job["numba"] == "kernel"`` (numba loaded by this job, as a job's first kernel call does),
    numba's own count when ``"loaded"`` (numba loaded by an earlier job)."""
    import torch
    from threadpoolctl import threadpool_info

    out = {"torch": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
           "blas": sorted({(p["internal_api"], p["num_threads"]) for p in threadpool_info()})}
    try:
        import numba
    except ImportError:
        return out
    out["numba_max"] = numba.config.NUMBA_NUM_THREADS
    if job["numba"] == "kernel":
        from nnphys.escape import kernels

        with kernels._numba_threads(None):  # how a kernel called without ``threads`` runs
            out["numba"] = numba.get_num_threads()
    else:
        out["numba"] = numba.get_num_threads()
    return out


@pytest.mark.slow
def test_a_job_in_a_dask_worker_runs_every_pool_at_its_thread_budget():
    # 3: neither the worker's defaults (1 from the nanny's OMP_NUM_THREADS) nor the core count (2)
    threads = 3
    with open_executor(EngineConfig("dask", workers=1, threads=threads)) as ex:
        # the first job loads numba; the second finds it loaded, as any later job of a sweep would
        outs = [ex.submit(execute_job, pool_limits, {"numba": m}, threads).result() for m in ("kernel", "loaded")]
    for out in outs:
        assert out["status"] == "done", out["error"]
        assert out["threads"] == threads
        seen = out["metrics"]
        assert seen["torch"] == threads and seen["interop"] == threads
        assert seen["blas"], "threadpoolctl found no BLAS/OpenMP library in the worker"
        assert {n for _, n in seen["blas"]} == {threads}, seen["blas"]
        if "numba_max" in seen:
            assert seen["numba"] == min(threads, seen["numba_max"])


_FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from nnphys.lab.execute import keep_freed_memory
    restored = keep_freed_memory() if sys.argv[1] == "restore" else False
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        np.ones(2**18).sum()  # a 2 MiB temporary, allocated and freed, as in a training step
    print(restored, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_keep_freed_memory_undoes_dasks_malloc_trim_threshold():
    # Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536: each 2 MiB temporary is
    # then mmapped and faulted in afresh (512 pages each time); restored, the heap is reused
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": SRC}
    runs = {}
    for mode in ("leave", "restore"):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
        runs[mode] = (out[0] == "True", int(out[1]))
    assert runs["leave"][0] is False and runs["restore"][0] is True
    assert runs["leave"][1] > 200 * 256, runs  # the thresholds really were frozen by the variable
    assert runs["restore"][1] < runs["leave"][1] / 20, runs


def kill_or_run(job: dict) -> dict:
    """The toy study's job, except that ``tag == "kill"`` takes its worker process down with it."""
    import toy_study

    if job["tag"] == "kill":
        os._exit(3)
    return toy_study.run(job)


@pytest.mark.slow
def test_a_job_that_kills_its_worker_is_stored_failed_and_the_sweep_goes_on(tmp_path, toy):
    import dask

    jobs = toy.jobs(toy.make_spec("quick", {"n_jobs": 6, "dim": 20}))
    jobs.insert(2, {**jobs[0], "seed": 99, "tag": "kill"})
    study = dataclasses.replace(toy, run=kill_or_run)
    # one retry: a killer dies twice, which keeps the test short (the default allows 3 retries);
    # one task per worker at a time: Dask blames every task a dead worker held, and a task queued
    # behind the killer twice would otherwise be given up on as well
    cfg = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(cfg), Store(tmp_path / "s") as store:
        summary = run_study(study, toy.make_spec("quick"), store, EngineConfig("dask", workers=2),
                            jobs=jobs, progress=False)
        res = {r.params["seed"]: r for r in store.results("toy")}
    assert summary.counts == {"done": 6, "failed": 1, "diverged": 0}
    assert sorted(res) == [0, 1, 2, 3, 4, 5, 99]
    killed = res[99]
    assert killed.status == "failed" and killed.error.startswith("killed its worker 2 times: ")
    assert all(r.ok for s, r in res.items() if s != 99)
