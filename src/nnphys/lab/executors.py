"""Executors behind ``concurrent.futures.Executor``: inline (serial) and Dask.

No scheduler of our own: Dask's ``LocalCluster`` serves ``--workers N`` on one machine and
``Client(address)`` an existing cluster; Dask re-runs the tasks of a worker that dies.
"""

from __future__ import annotations

import contextlib
import logging
import re
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Iterator

from nnphys.errors import ConfigError

MAX_WORKERS = 256  # local processes; more would only queue (and 10**20 used to hang)
MAX_THREADS = 256
CONNECT_TIMEOUT_S = 20
SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?)$")


# Dask's housekeeping for a LocalCluster, slowed down: each of its servers (scheduler, and a nanny
# and a worker per process) ticks its event loop every 20 ms, each worker samples its running task's
# stack every 10 ms for the dashboard's profile, and nannies and workers poll their memory every
# 100 ms. An idle LocalCluster(2) used 0.11-0.12 CPU seconds per second that way (6 % of a 2-core
# machine, taken from the jobs) and 0.014-0.017 with these settings. Memory is still checked every
# second, so the nanny's limits keep working; only the dashboard's profile is lost.
LOCAL_QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


def check_address(address: str) -> str:
    """A Dask scheduler address ``SCHEME://HOST:PORT`` (scheme one of :data:`SCHEMES`, default
    tcp), checked for form only: it raises ConfigError before anything connects or is written."""
    text = address.strip()
    allowed = f"expected SCHEME://HOST:PORT with SCHEME one of {', '.join(SCHEMES)} (e.g. tcp://head:8786)"
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    if scheme not in SCHEMES:
        raise ConfigError("--address", f"unknown scheme {scheme!r}; {allowed} (got {address!r})")
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit() or not 1 <= int(port) <= 65535 or not _HOST.match(host):
        raise ConfigError("--address", f"{allowed}, PORT in 1..65535 (got {address!r})")
    return f"{scheme}://{host}:{int(port)}"


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
    threads: int | None = None  # torch/BLAS threads per job; None: 1 locally (see threads_per_job)

    def resolved(self) -> "EngineConfig":
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError("--threads", f"must lie in [1, {MAX_THREADS}] (got {self.threads})")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError("--workers", f"must lie in [1, {MAX_WORKERS}] (got {self.workers})")
        address = check_address(self.address) if self.address else None
        engine = self.engine
        if engine is None:
            engine = "dask" if (self.workers > 1 or self.address) else "inline"
        if engine not in ("inline", "dask"):
            raise ConfigError("--engine", f"must be inline or dask (got {engine!r})")
        if engine == "inline" and self.workers > 1:
            raise ConfigError("--workers", "the inline engine runs one job at a time; use --engine dask for N > 1")
        if engine == "inline" and address:
            raise ConfigError("--address", "needs --engine dask")
        return EngineConfig(engine, self.workers, address, self.threads)

    def threads_per_job(self) -> int | None:
        """torch/BLAS threads for each job: as asked, else 1 for local jobs (a remote cluster's
        workers keep their own setting, and each job records what it ran with).

        Why 1 and not ``cores // workers``: the jobs are many small independent units, so
        parallelism belongs across jobs (``--workers``), not inside them. Intra-op threads pay
        off only for large tensors, and on a shared or loaded machine OpenMP pools collapse
        (measured with ``python -m benchmarks.thread_policy``: docs/architecture.md,
        "Executors"). One thread per job is never far from the best and never that bad;
        ``--threads N`` is there for a dedicated machine with large jobs."""
        if self.threads is not None:
            return self.threads
        if self.address:
            return None  # a remote cluster's workers know their own machines
        return 1

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
            client = Client(cfg.address, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ConfigError("--address", f"cannot reach a Dask scheduler at {cfg.address!r}: {e}") from None
        try:
            ex = client.get_executor()
            ex.max_in_flight = max(32, 4 * len(client.scheduler_info().get("workers", {})))
            yield ex
        finally:
            client.close()
        return
    import dask

    with dask.config.set(LOCAL_QUIET):  # read when the servers are built (and kept for restarts)
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
