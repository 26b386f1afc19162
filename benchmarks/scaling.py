"""Does ``--workers N`` scale? Every ratio below is measured in this one run, on fresh stores.

1. Control: a pure-Python CPU loop, one process alone and then two at once (spawned processes).
   ``2 x t1 / t2`` is the most two workers can gain on this machine at this moment, and the
   ceiling to read the study's speed-up against (measured before and after the study runs).
2. Cause: one training job of the study in a fresh process, with glibc's defaults, with
   ``MALLOC_TRIM_THRESHOLD_=65536`` (what Dask's nanny gives each worker), and with that variable
   plus :func:`nnphys.lab.execute.keep_freed_memory` (what a job does now): wall, user and system
   CPU seconds, minor page faults.
3. Study: the inline engine (``--workers 1``) against a ``LocalCluster`` of 2 workers on the same
   jobs: wall time (sweep alone, and cluster start-up), sum of per-job times (``ended - started``),
   the job thread's user / system CPU and page faults summed over jobs, and the cores the whole
   process tree obtained (its CPU seconds per wall second: on a shared machine this, not the
   control taken before and after, is what bounds the speed-up during the sweep).
4. Per-job overhead on trivial jobs (the toy study of tests/, 1-element jobs), inline and Dask.
5. Cluster: ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (the README's recipe,
   nanny included), one worker at the start, a second joining after the first result, the first
   leaving (SIGTERM) half-way; the sweep must finish with every job in the store.

    python -m benchmarks.scaling [--study noise-enhancement --scale quick --set tasks=digits,mnist1d]
                                 [--trivial 100] [--skip-cause] [--skip-cluster]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import functools
import multiprocessing as mp
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from nnphys.lab.config import build_spec  # noqa: E402
from nnphys.lab.executors import EngineConfig, open_executor  # noqa: E402
from nnphys.lab.runner import run_study  # noqa: E402
from nnphys.lab.store import Store  # noqa: E402
from nnphys.studies import get_study, register  # noqa: E402

DEFAULT_SETS = ["tasks=digits,mnist1d"]  # 13 jobs of 2-15 s each on one core


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--", "src", "benchmarks") else "")


# ------------------------------------------------------------------------------------------------
# 1. the pure-CPU control
# ------------------------------------------------------------------------------------------------


def spin(n: int) -> float:
    """Seconds of pure-Python integer work (no memory traffic, no syscalls)."""
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t


def control(seconds: float = 2.0, repeats: int = 3) -> dict[str, float]:
    """``t1``: one loop alone; ``t2``: the slower of two at once; ``ceiling = 2 t1 / t2``, the
    median of ``repeats`` interleaved pairs of measurements (a shared machine's load moves)."""
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(spin, [10_000, 10_000]))  # both processes up
        n = int(2e6 * seconds / max(pool.submit(spin, 2_000_000).result(), 1e-3))
        runs = []
        for _ in range(repeats):
            t1 = pool.submit(spin, n).result()
            t2 = max(pool.map(spin, [n, n]))
            runs.append((2 * t1 / t2, t1, t2))
    ceiling, t1, t2 = sorted(runs)[len(runs) // 2]
    return {"t1": t1, "t2": t2, "ceiling": ceiling, "all": [r[0] for r in runs]}


# ------------------------------------------------------------------------------------------------
# 2. the cause, one job in a fresh process
# ------------------------------------------------------------------------------------------------

_ONE_JOB = """
import json, resource, sys, time
import torch
from nnphys.lab.config import build_spec
from nnphys.lab.execute import keep_freed_memory
from nnphys.studies import get_study
study, scale, sets, index, restore = json.loads(sys.argv[1])
torch.set_num_threads(1)
job = get_study(study).jobs(build_spec(get_study(study), scale, None, sets))[index]
restored = keep_freed_memory() if restore else False
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
get_study(study).run(job)
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print(json.dumps({"wall": t1 - t0, "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
                  "minflt": r1.ru_minflt - r0.ru_minflt, "restored": restored}))
"""


def cause(study: str, scale: str, sets: list[str], index: int) -> None:
    import json

    env0 = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env0["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env0.get("PYTHONPATH", "")])
    for label, env, restore in [("glibc defaults", env0, False),
                                ("MALLOC_TRIM_THRESHOLD_=65536", {**env0, "MALLOC_TRIM_THRESHOLD_": "65536"}, False),
                                ("same + keep_freed_memory()", {**env0, "MALLOC_TRIM_THRESHOLD_": "65536"}, True)]:
        out = subprocess.run([sys.executable, "-c", _ONE_JOB, json.dumps([study, scale, sets, index, restore])],
                             env=env, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"  {label:>30}: wall {r['wall']:6.2f} s, user {r['user']:6.2f} s, sys {r['sys']:5.2f} s, "
              f"{r['minflt']:>9,} minor faults")


# ------------------------------------------------------------------------------------------------
# 3-5. sweeps
# ------------------------------------------------------------------------------------------------


def cpu_timed(run, job: dict) -> dict:
    """``run(job)`` plus the job thread's CPU seconds and page faults under ``_cpu`` (thread, not
    process: a Dask worker's event loop shares the process)."""
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    r0 = resource.getrusage(who)
    out = dict(run(job))
    r1 = resource.getrusage(who)
    out["_cpu"] = {"user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
                   "minflt": r1.ru_minflt - r0.ru_minflt}
    return out


def with_cpu(study):
    import dataclasses

    return dataclasses.replace(study, run=functools.partial(cpu_timed, study.run))


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process and its live descendants (the Dask workers)."""
    import psutil

    total = 0.0
    me = psutil.Process()
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # gone meanwhile
            pass
    return total


def sweep(study, spec, engine: EngineConfig, executor=None) -> dict:
    """One sweep on a fresh store: wall, per-job sums, counts, and ``cores``: the CPU seconds the
    whole process tree got per second of wall time (what the machine gave this run)."""
    with tempfile.TemporaryDirectory() as d, Store(d) as store:
        c0, t0 = tree_cpu(), time.perf_counter()
        s = run_study(study, spec, store, engine, progress=False, executor=executor)
        wall = time.perf_counter() - t0
        cores = (tree_cpu() - c0) / wall
        res = store.results(study.name)
    cpu = [r.metrics.get("_cpu", {}) for r in res]
    return {"wall": wall, "counts": s.counts, "n": len(res), "cores": cores,
            "job_s": sum((r.ended or 0) - (r.started or 0) for r in res),
            "user": sum(c.get("user", 0) for c in cpu), "sys": sum(c.get("sys", 0) for c in cpu),
            "minflt": sum(c.get("minflt", 0) for c in cpu)}


def line(label: str, r: dict) -> str:
    return (f"  {label:>24}: {r['n']} jobs, wall {r['wall']:6.1f} s, sum of job times {r['job_s']:6.1f} s "
            f"(user {r['user']:6.1f} s, sys {r['sys']:5.2f} s, {r['minflt']:>9,} faults), "
            f"{r['cores']:.2f} cores obtained {r['counts']}")


def scaling(study, spec) -> tuple[dict, dict]:
    one = sweep(study, spec, EngineConfig("inline"))
    print(line("inline --workers 1", one), flush=True)
    t0 = time.perf_counter()
    eng = EngineConfig("dask", workers=2)
    with open_executor(eng) as ex:
        up = time.perf_counter() - t0
        two = sweep(study, spec, eng, executor=ex)
    print(line("LocalCluster --workers 2", two) + f"; cluster start-up {up:.1f} s", flush=True)
    two["up"] = up
    return one, two


def trivial(n_jobs: int) -> None:
    import toy_study

    toy = register(toy_study.STUDY)
    spec = toy.make_spec("quick", {"n_jobs": n_jobs, "dim": 1})
    r1 = sweep(toy, spec, EngineConfig("inline"))
    eng = EngineConfig("dask", workers=2)
    with open_executor(eng) as ex:
        r2 = sweep(toy, spec, eng, executor=ex)
    for label, r in [("inline", r1), ("LocalCluster(2)", r2)]:
        print(f"  {label:>24}: {n_jobs} trivial jobs, {1e3 * r['wall'] / n_jobs:6.2f} ms/job wall "
              f"(in-job {1e3 * r['job_s'] / n_jobs:.3f} ms/job)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(study, spec, n_jobs: int) -> dict:
    """The sweep on an external scheduler: worker A from the start, B joining after the first
    result, A leaving (SIGTERM, a graceful close) once half the jobs are stored."""
    dask_exe = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    log = open(tempfile.mktemp(prefix="nnphys-scaling-dask-", suffix=".log"), "w")

    def worker() -> subprocess.Popen:
        return subprocess.Popen([dask_exe, "worker", addr, "--nthreads", "1", "--host", "127.0.0.1",
                                 "--no-dashboard"], stdout=log, stderr=log, env=env)

    procs = [subprocess.Popen([dask_exe, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=log, stderr=log, env=env)]
    events: list[str] = []
    try:
        from distributed import Client

        procs.append(worker())
        with Client(addr, timeout="60s") as c:
            c.wait_for_workers(1, timeout=120)
        with tempfile.TemporaryDirectory() as d, Store(d) as store:
            stop = threading.Event()
            c0, t0 = tree_cpu(), time.perf_counter()

            def stored() -> int:
                try:
                    with Store(d) as s:
                        return len(s.statuses(study.name))
                except Exception:  # the driver has the store open for writing: ask again
                    return -1

            def choreography() -> None:
                while not stop.wait(0.5) and stored() < 1:
                    pass
                if stop.is_set():
                    return
                procs.append(worker())
                events.append(f"B joined after {stored()} stored ({time.perf_counter() - t0:.0f} s)")
                while not stop.wait(0.5) and stored() < n_jobs // 2:
                    pass
                if stop.is_set():
                    return
                procs[1].send_signal(signal.SIGTERM)
                events.append(f"A left after {stored()} stored ({time.perf_counter() - t0:.0f} s)")

            th = threading.Thread(target=choreography, daemon=True)
            th.start()
            s = run_study(study, spec, store, EngineConfig("dask", address=addr), progress=False)
            wall = time.perf_counter() - t0
            cores = (tree_cpu() - c0) / wall  # less worker A's share once it has left
            stop.set()
            th.join()
            res = store.results(study.name)
        ok = len(res) == n_jobs and s.counts["done"] + s.counts["diverged"] == n_jobs
        r = {"wall": wall, "counts": s.counts, "n": len(res), "ok": ok, "cores": cores,
             "job_s": sum((x.ended or 0) - (x.started or 0) for x in res),
             "user": sum(x.metrics.get("_cpu", {}).get("user", 0) for x in res),
             "sys": sum(x.metrics.get("_cpu", {}).get("sys", 0) for x in res),
             "minflt": sum(x.metrics.get("_cpu", {}).get("minflt", 0) for x in res),
             "left": procs[1].poll() is not None, "events": events}
        print(line("dask scheduler + workers", r))
        print(f"  {'':>24}  {'; '.join(events) or 'no join/leave happened'}; worker A gone: {r['left']}; "
              f"store has every job: {ok}")
        return r
    finally:
        for p in procs[::-1]:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="noise-enhancement")
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--set", dest="sets", action="append", default=None)
    ap.add_argument("--trivial", type=int, default=100, help="trivial jobs for the overhead (0: skip)")
    ap.add_argument("--skip-cause", action="store_true")
    ap.add_argument("--skip-cluster", action="store_true")
    a = ap.parse_args(argv)
    sets = DEFAULT_SETS if a.sets is None else a.sets
    base = get_study(a.study)
    spec = build_spec(base, a.scale, None, sets)
    jobs = base.jobs(spec)
    study = with_cpu(base)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"benchmarks.scaling {now}, commit {commit()}, {os.cpu_count()} cores, "
          f"load average {load()} (1/5/15 min) at start")
    print(f"study {a.study} --scale {a.scale} {' '.join('--set ' + s for s in sets)}: {len(jobs)} jobs, "
          "one thread per job")
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as fh:
            if fh.read().strip() == "1":
                print("kernel autogroup on: this session's processes share one CPU slice against other "
                      "sessions, so under load the control's ceiling sits far below 2x")
    except OSError:
        pass
    c0 = control()
    print(f"control before: pure-Python loop {c0['t1']:.2f} s alone, {c0['t2']:.2f} s two at once "
          f"-> ceiling {c0['ceiling']:.2f}x "
          f"(median of {', '.join(f'{c:.2f}' for c in c0['all'])}; load {load()})", flush=True)
    if not a.skip_cause:
        index = next(i for i, j in enumerate(jobs) if j.get("kind") == "train" and j.get("arm") == "L")
        print(f"cause: job {index} ({jobs[index].get('task')}/{jobs[index].get('arm')}) in a fresh process, 1 thread")
        cause(a.study, a.scale, sets, index)
    one, two = scaling(study, spec)
    c1 = control()
    print(f"control after: {c1['t1']:.2f} s alone, {c1['t2']:.2f} s two at once -> ceiling {c1['ceiling']:.2f}x "
          f"(median of {', '.join(f'{c:.2f}' for c in c1['all'])}; load {load()})")
    speed = one["wall"] / two["wall"]
    ceiling = (c0["ceiling"] + c1["ceiling"]) / 2
    print(f"speed-up --workers 2 / --workers 1: {speed:.2f}x on the sweep, "
          f"{one['wall'] / (two['wall'] + two['up']):.2f}x with cluster start-up "
          f"(target >= 1.8x on 2 free cores; control ceiling now {ceiling:.2f}x, so {speed / ceiling:.0%} of it)")
    print(f"sum of job times --workers 2 / --workers 1: {two['job_s'] / one['job_s']:.2f} "
          f"(target within 15 %; the control's own per-task slowdown two at once: "
          f"{(c0['t2'] / c0['t1'] + c1['t2'] / c1['t1']) / 2:.2f})")
    print(f"cores obtained --workers 2 / --workers 1: {two['cores'] / one['cores']:.2f} "
          f"({two['cores']:.2f} vs {one['cores']:.2f}: the share of the machine each sweep got)")
    cpu1, cpu2 = one["user"] + one["sys"], two["user"] + two["sys"]
    print(f"sum of job CPU (user + sys) --workers 2 / --workers 1: {cpu2 / cpu1:.2f} "
          f"({cpu2:.1f} s vs {cpu1:.1f} s; what a job costs, whatever share of the cores it got)")
    if a.trivial:
        print("per-job overhead:")
        trivial(a.trivial)
    if not a.skip_cluster:
        print("external cluster (dask scheduler + dask worker --nthreads 1, nanny on, 127.0.0.1):")
        cluster(study, spec, len(jobs))
    print(f"load average {load()} at the end")


if __name__ == "__main__":
    main()
