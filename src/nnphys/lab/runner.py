"""The driver: plan -> skip what is finished -> run the rest on an executor -> store each result.

Resume is "planned minus finished": a job whose key has a ``done`` or ``diverged`` row (or a
``failed`` row, unless ``rerun_failed``) is not run again. Results are written one by one as
they arrive, by the driver only, so a driver killed at any moment loses nothing finished.
Several drivers may run one study on one store: each claims a job before running it (see
:mod:`nnphys.lab.store`), so every job runs once.

:func:`run_prepared` is what ``nnphys run`` and ``reproduce`` do with prepared sweeps
(:func:`nnphys.lab.config.prepare`): the checks that need no job first, then the store, then
each sweep and its claims on the jobs it planned.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from nnphys.errors import ConfigError
from nnphys.lab.config import Prepared, plan_jobs
from nnphys.lab.execute import execute_job
from nnphys.lab.executors import EngineConfig, open_executor
from nnphys.lab.outcomes import Failure, failures, guard_claims
from nnphys.lab.provenance import collect
from nnphys.lab.store import HEARTBEAT_S, HOST, Store, check_location, job_key
from nnphys.studies.base import Claim, Study, StudySpec
from nnphys.studies.job import params_of


@dataclass
class RunSummary:
    study: str
    planned: int
    already: int
    executed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "failed": 0, "diverged": 0})
    wall: float = 0.0
    run_id: int | None = None
    by_others: int = 0  # finished by another driver while this one ran
    left_to_others: int = 0  # still claimed by another live driver when this one stopped
    released: int = 0  # stale claims (of killed drivers) released at the start

    def text(self) -> str:
        """What the run did, after the study's name: ``: 6 planned, 0 already finished, ...``."""
        c = self.counts
        line = (f": {self.planned} planned, {self.already} already finished, {self.executed} run now "
                f"({c['done']} done, {c['failed']} failed, {c['diverged']} diverged) in {self.wall:.1f} s")
        if self.by_others or self.left_to_others:
            line += f"; {self.by_others} finished by another driver, {self.left_to_others} still running there"
        if self.released:
            line += f"; released {self.released} stale claim(s) of a stopped driver"
        return line


def check_device(spec: StudySpec, engine: EngineConfig) -> None:
    """A CUDA spec needs a GPU where the jobs run (checked locally; a remote cluster is trusted)."""
    if getattr(spec, "device", "cpu") == "cuda" and not engine.address:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device", "cuda was asked for but torch sees no CUDA device here; use --device cpu")


def keyed_jobs(study: Study, jobs: list[Any]) -> dict[str, Any]:
    """``{key: job}`` in plan order, keyed by the job's stored parameters
    (:func:`~nnphys.studies.job.params_of`); identical jobs collapse to one."""
    out: dict[str, Any] = {}
    for job in jobs:
        out.setdefault(job_key(study.name, study.schema_version, params_of(job)), job)
    return out


class _Heartbeat:
    """Refreshes this process's claims every ``HEARTBEAT_S`` from a thread with its own
    connection, so that a long job (the inline engine blocks the driver) keeps its lease."""

    def __init__(self, path, every: float = HEARTBEAT_S):
        self.path, self.every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nnphys-heartbeat", daemon=True)

    def _loop(self) -> None:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            while not self._stop.wait(self.every):
                try:
                    conn.execute("UPDATE claims SET heartbeat = ? WHERE pid = ? AND host = ?",
                                 (time.time(), os.getpid(), HOST))
                except sqlite3.Error:  # a busy store: the next beat will do
                    pass
        finally:
            conn.close()

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_study(
    study: Study,
    spec: StudySpec,
    store: Store,
    engine: EngineConfig = EngineConfig(),
    *,
    scale: str | None = None,
    rerun_failed: bool = False,
    progress: bool = True,
    console: Console | None = None,
    jobs: list[dict[str, Any]] | None = None,
    executor: Executor | None = None,
    meta: dict[str, Any] | None = None,
) -> RunSummary:
    """Run every planned job of ``spec`` that the store does not already hold.

    Each job is claimed in the store just before it is submitted (:meth:`Store.claim`): jobs
    another live driver has claimed are skipped, and looked at once more when this driver's own
    queue is done (taken over then if their claim went stale, e.g. that driver was killed).
    ``executor``: an open executor to use (the CLI opens a remote cluster before it touches the
    store); else one is opened here when there is work. ``meta``: provenance for the runs row."""
    engine = engine.resolved()
    planned = keyed_jobs(study, jobs if jobs is not None else plan_jobs(study, spec))
    stored = store.statuses(study.name, planned)
    redo = ("failed",) if rerun_failed else ()
    finished = {k for k, s in stored.items() if s not in redo}
    todo = [(k, j) for k, j in planned.items() if k not in finished]
    summary = RunSummary(study.name, len(planned), len(finished))
    summary.released = store.release_stale(study.name)
    t_start = time.time()
    summary.run_id = store.begin_run(study.name, scale, spec.model_dump(mode="json"), list(planned),
                                     engine.describe(), meta)
    t0 = time.perf_counter()
    console = console or Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                   console=console, disable=not progress, transient=False)
    threads = engine.threads_per_job()
    try:
        with bar, _Heartbeat(store.path):
            task = bar.add_task(study.name, total=len(planned), completed=len(finished))
            if todo:
                with contextlib.ExitStack() as stack:
                    ex = executor if executor is not None else stack.enter_context(open_executor(engine))
                    busy = _drive(study, store, ex, todo, threads, redo, t_start, summary, bar, task)
                    # a second look at what others held: finished by now, or stale and ours to run
                    busy = _drive(study, store, ex, busy, threads, redo, t_start, summary, bar, task)
                    summary.left_to_others = len(busy)
    finally:
        store.release_mine()
    summary.wall = time.perf_counter() - t0
    store.end_run(summary.run_id, summary.executed)
    return summary


def _killed_worker_type() -> type | None:
    try:
        from distributed import KilledWorker
    except ImportError:  # no dask: no worker to kill
        return None
    return KilledWorker


def _outcome(fut) -> dict[str, Any]:
    """The job's outcome from its future. A job whose worker process died each time it ran (an
    ``os._exit``, a segfault, the OOM killer) never returns one: Dask gives up after
    ``distributed.scheduler.allowed-failures`` + 1 deaths and raises KilledWorker. That is the
    job's failure, not the sweep's, so it is stored as ``failed`` with the reason and the rest
    goes on; it has no start time (it never reported one)."""
    try:
        return fut.result()
    except Exception as e:
        killed = _killed_worker_type()  # imported only here: an inline run never loads distributed
        if killed is None or not isinstance(e, killed):
            raise
        times = getattr(e, "allowed_failures", None)
        times = f"{times + 1} times" if isinstance(times, int) else "repeatedly"
        return {"status": "failed", "metrics": {}, "arrays": {}, "started": None, "ended": time.time(),
                "error": f"killed its worker {times}: {e}", "versions": {}, "threads": None}


def _drive(study, store, ex, todo, threads, redo, since, summary, bar, task) -> list:
    """Claim, submit and record ``todo`` with at most ``ex.max_in_flight`` jobs in flight;
    returns the jobs another live driver held."""
    window = getattr(ex, "max_in_flight", 1)
    queue = iter(todo)
    pending: dict = {}
    busy: list = []

    def fill() -> None:
        while len(pending) < window:
            nxt = next(queue, None)
            if nxt is None:
                return
            key, job = nxt
            state = store.claim(study.name, key, redo=redo, since=since)
            if state == "finished":
                summary.by_others += 1
                bar.advance(task)
            elif state == "busy":
                busy.append(nxt)
            else:
                pending[ex.submit(execute_job, study.runner, job, threads)] = (key, job)

    fill()
    while pending:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for fut in done:
            key, job = pending.pop(fut)
            outcome = _outcome(fut)
            store.record(study.name, key, params_of(job), outcome)
            summary.executed += 1
            summary.counts[outcome["status"]] += 1
            bar.advance(task)
        fill()
    return busy


@dataclass
class SweepOutcome:
    """One prepared sweep after its run: the jobs of it stored as failed (grouped by reason) and
    its claims on its own planned jobs (None when not analysed; ``analysis_error`` when the
    analysis raised: the report shows the traceback)."""

    prepared: Prepared
    summary: RunSummary
    failures: list[Failure]
    claims: list[Claim] | None = None
    analysis_error: str | None = None


def run_prepared(prepared: list[Prepared], engine: EngineConfig, results: str | Path, *,
                 rerun_failed: bool = False, progress: bool = True, analyse: bool = True,
                 argv: list[str] | None = None,
                 ready: Callable[[], None] | None = None) -> Iterator[SweepOutcome]:
    """Run prepared sweeps, one :class:`SweepOutcome` each as it finishes. First what needs no
    job: the device of every spec, the results location, and a remote scheduler (reached before
    the store is touched, so a refused address writes nothing); then ``ready()`` (the caller's
    moment to print warnings: every check has passed); only then is the store opened for writing.
    Each sweep's claims are judged on the jobs it planned, not on another driver's, with
    :func:`~nnphys.lab.outcomes.guard_claims` applied."""
    for p in prepared:
        check_device(p.spec, engine)
    check_location(results, write=True)
    with contextlib.ExitStack() as stack:
        executor = stack.enter_context(open_executor(engine)) if engine.address else None
        if ready is not None:
            ready()
        store = stack.enter_context(Store(results))
        for p in prepared:
            meta = collect(argv=argv or [], engine=engine.describe(), workers=engine.workers,
                           threads=engine.threads_per_job(), device=getattr(p.spec, "device", None))
            meta["overrides"] = p.info["overrides"]
            summary = run_study(p.study, p.spec, store, engine, scale=p.info["scale"], rerun_failed=rerun_failed,
                                progress=progress, jobs=p.jobs, executor=executor, meta=meta)
            res = store.results(p.study.name, list(keyed_jobs(p.study, p.jobs)))
            out = SweepOutcome(p, summary, failures(res))
            if analyse:
                try:
                    out.claims = guard_claims(p.study.analyse(p.spec, res), out.failures)
                except Exception as e:  # noqa: BLE001 - the report shows the traceback
                    out.analysis_error = f"{type(e).__name__}: {e}"
            yield out
