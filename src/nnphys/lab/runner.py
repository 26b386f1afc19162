"""The driver: plan -> skip what is finished -> run the rest on an executor -> store each result.

Resume is "planned minus finished": a job whose key has a ``done`` or ``diverged`` row (or a
``failed`` row, unless ``rerun_failed``) is not run again. Results are written one by one as
they arrive, by this process only, so a driver killed at any moment loses nothing finished.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from nnphys.errors import ConfigError
from nnphys.lab.config import plan_jobs
from nnphys.lab.execute import execute_job
from nnphys.lab.executors import EngineConfig, open_executor
from nnphys.lab.store import Store, job_key
from nnphys.studies.base import Study, StudySpec


@dataclass
class RunSummary:
    study: str
    planned: int
    already: int
    executed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"done": 0, "failed": 0, "diverged": 0})
    wall: float = 0.0
    run_id: int | None = None


def check_device(spec: StudySpec, engine: EngineConfig) -> None:
    """A CUDA spec needs a GPU where the jobs run (checked locally; a remote cluster is trusted)."""
    if getattr(spec, "device", "cpu") == "cuda" and not engine.address:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device", "cuda was asked for but torch sees no CUDA device here; use --device cpu")


def keyed_jobs(study: Study, jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{key: job}`` in plan order; identical jobs collapse to one."""
    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        out.setdefault(job_key(study.name, study.schema_version, job), job)
    return out


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
) -> RunSummary:
    """Run every planned job of ``spec`` that the store does not already hold."""
    engine = engine.resolved()
    planned = keyed_jobs(study, jobs if jobs is not None else plan_jobs(study, spec))
    stored = store.statuses(study.name, planned)
    finished = {k for k, s in stored.items() if not (rerun_failed and s == "failed")}
    todo = [(k, j) for k, j in planned.items() if k not in finished]
    summary = RunSummary(study.name, len(planned), len(finished))
    summary.run_id = store.begin_run(study.name, scale, spec.model_dump(mode="json"), list(planned),
                                     engine.describe())
    t0 = time.perf_counter()
    console = console or Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                   console=console, disable=not progress, transient=False)
    threads = engine.threads_per_job()
    with bar:
        task = bar.add_task(study.name, total=len(planned), completed=len(finished))
        if todo:
            with open_executor(engine) as ex:
                window = getattr(ex, "max_in_flight", 1)
                queue = iter(todo)
                pending: dict = {}

                def fill() -> None:
                    while len(pending) < window:
                        nxt = next(queue, None)
                        if nxt is None:
                            return
                        key, job = nxt
                        pending[ex.submit(execute_job, study.run, job, threads)] = (key, job)

                fill()
                while pending:
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for fut in done:
                        key, job = pending.pop(fut)
                        outcome = fut.result()
                        store.record(study.name, key, job, outcome)
                        summary.executed += 1
                        summary.counts[outcome["status"]] += 1
                        bar.advance(task)
                    fill()
    summary.wall = time.perf_counter() - t0
    store.end_run(summary.run_id, summary.executed)
    return summary
