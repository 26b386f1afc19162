"""Runner benchmarks (foundation issue).

1. Per-job overhead of the inline and Dask executors over 200 trivial jobs (the toy study with
   1-element jobs: the job itself takes microseconds, so the wall time per job is overhead:
   hashing, pickling, scheduling, one SQLite transaction).
2. Wall-clock speedup of ``--workers 2`` over ``--workers 1`` on >= 20 real jobs of a shipped study,
   both measured here, in this process, on fresh stores.

    python -m benchmarks.runner [--jobs 200] [--study minibatch-noise --set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from nnphys.lab.config import build_spec  # noqa: E402
from nnphys.lab.executors import EngineConfig  # noqa: E402
from nnphys.lab.runner import run_study  # noqa: E402
from nnphys.lab.store import Store  # noqa: E402
from nnphys.studies import get_study, register  # noqa: E402


def overhead(n_jobs: int) -> None:
    import toy_study

    toy = register(toy_study.STUDY)
    spec = toy.make_spec("quick", {"n_jobs": n_jobs, "dim": 1})
    from nnphys.lab.execute import execute_job

    execute_job(toy.run, toy.jobs(spec)[0], threads=1)  # one-time imports (torch) out of the timing
    for label, eng in [("inline", EngineConfig("inline")), ("dask LocalCluster(2)", EngineConfig("dask", workers=2))]:
        with tempfile.TemporaryDirectory() as d, Store(d) as store:
            t0 = time.perf_counter()
            s = run_study(toy, spec, store, eng, progress=False)
            wall = time.perf_counter() - t0
            job_s = sum(r.ended - r.started for r in store.results("toy"))
        assert s.counts["done"] == n_jobs
        print(f"{label:>22}: {n_jobs} trivial jobs in {wall:6.2f} s -> {1e3 * wall / n_jobs:7.2f} ms/job "
              f"(of which in-job {1e3 * job_s / n_jobs:.3f} ms; dask wall includes cluster start-up)")
    # dask steady state: a second sweep on the same cluster shape, minus start-up, is what matters
    # for long sweeps; measure start-up alone for the reader to subtract
    from distributed import Client, LocalCluster
    import logging

    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR) as c, \
            Client(c):
        pass
    print(f"{'dask start-up':>22}: {time.perf_counter() - t0:6.2f} s (LocalCluster(2) open + close)")


def speedup(study_name: str, sets: list[str], scale: str) -> None:
    study = get_study(study_name)
    spec = build_spec(study, scale, None, sets)
    n = len(study.jobs(spec))
    walls = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as d, Store(d) as store:
            t0 = time.perf_counter()
            s = run_study(study, spec, store, EngineConfig(workers=workers), progress=False)
            walls[workers] = time.perf_counter() - t0
        print(f"{study_name} --workers {workers}: {n} jobs in {walls[workers]:.1f} s ({s.counts})")
    print(f"speedup --workers 2 / --workers 1: {walls[1] / walls[2]:.2f}x (target >= 1.8x on 2 cores)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--study", default="escape-rate")
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-speedup", action="store_true")
    a = ap.parse_args()
    if not a.skip_overhead:
        overhead(a.jobs)
    if not a.skip_speedup:
        speedup(a.study, a.sets, a.scale)
