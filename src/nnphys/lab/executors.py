"""Executors behind ``concurrent.futures.Executor``: inline (serial) and Dask.

No scheduler of our own: Dask's ``LocalCluster`` serves ``--workers N`` on one machine and
``Client(address)`` an existing cluster; Dask re-runs the tasks of a worker that dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Iterator

from nnphys.errors import ConfigError


class InlineExecutor(Executor):
    """Runs each task in the calling thread when it is submitted (one worker, no pickling)."""

    max_in_flight = 1

    def submit(self, fn, /, *args, **kwargs) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - delivered through the future
            fut.set_exception(e)
        return fut


@dataclass(frozen=True)
class EngineConfig:
    """How to run jobs. ``engine=None`` picks inline for one local worker, Dask otherwise."""

    engine: str | None = None
    workers: int = 1
    address: str | None = None
    threads: int | None = None  # torch/BLAS threads per job; None: cores // workers locally

    def resolved(self) -> "EngineConfig":
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise ConfigError("--threads", f"must lie in [1, 1024] (got {self.threads})")
        if self.workers < 1:
            raise ConfigError("--workers", f"must be >= 1 (got {self.workers})")
        engine = self.engine
        if engine is None:
            engine = "dask" if (self.workers > 1 or self.address) else "inline"
        if engine not in ("inline", "dask"):
            raise ConfigError("--engine", f"must be inline or dask (got {engine!r})")
        if engine == "inline" and self.workers > 1:
            raise ConfigError("--workers", "the inline engine runs one job at a time; use --engine dask for N > 1")
        if engine == "inline" and self.address:
            raise ConfigError("--address", "needs --engine dask")
        return EngineConfig(engine, self.workers, self.address, self.threads)

    def threads_per_job(self) -> int | None:
        """torch/BLAS threads for each job: as asked, else the local cores shared out among local
        workers (a remote cluster's workers keep their own setting)."""
        if self.threads is not None:
            return self.threads
        if self.address:
            return None  # a remote cluster's workers know their own machines
        return max(1, (os.cpu_count() or 1) // self.workers)

    def describe(self) -> str:
        if self.engine == "dask":
            return f"dask({self.address})" if self.address else f"dask-local({self.workers})"
        return "inline"


@contextlib.contextmanager
def open_executor(cfg: EngineConfig) -> Iterator[Executor]:
    """Yields an Executor; for Dask it has ``max_in_flight`` set to keep workers busy."""
    cfg = cfg.resolved()
    if cfg.engine == "inline":
        yield InlineExecutor()
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--engine", "dask needs the dask extra: pip install 'nnphys[dask]'") from None
    if cfg.address:
        try:
            client = Client(cfg.address, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise ConfigError("--address", f"cannot reach a Dask scheduler at {cfg.address!r}: {e}") from None
        try:
            ex = client.get_executor()
            ex.max_in_flight = max(32, 4 * len(client.scheduler_info().get("workers", {})))
            yield ex
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        ex = client.get_executor()
        # enough queued work to hide the round trip, few enough to keep results flowing back
        ex.max_in_flight = max(32, 4 * cfg.workers)
        yield ex
    finally:
        client.close()
        cluster.close()
