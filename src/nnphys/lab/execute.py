"""What a worker runs for one job: the study's ``run`` wrapped so that every outcome comes back
as data (``done`` / ``failed`` with its traceback / ``diverged``), never as an exception."""

from __future__ import annotations

import functools
import math
import platform
import time
import traceback
from typing import Any, Callable

from nnphys.errors import Diverged


@functools.lru_cache(maxsize=8)
def _versions(device: str) -> tuple[tuple[str, str], ...]:
    import sys
    from importlib.metadata import PackageNotFoundError, version

    import nnphys

    def _v(pkg: str) -> str:
        try:  # from the installed metadata: no need to import torch for a numpy-only job
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    out = {"nnphys": nnphys.__version__, "torch": _v("torch"), "numpy": _v("numpy"),
           "python": platform.python_version(), "host": platform.node()}
    dev = device or "cpu"
    if dev.startswith("cuda") and "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        dev = f"{dev} ({sys.modules['torch'].cuda.get_device_name(0)})"
    out["device"] = dev
    return tuple(out.items())


def versions(device: str | None = None) -> dict[str, str]:
    """Library versions and the device, for provenance (cached per process)."""
    return dict(_versions(device or "cpu"))


def _finite(x: Any) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    return True


_blas_threads: int | None = None


def _limit_threads(threads: int) -> None:
    """Pin torch's and the BLAS libraries' thread pools of this process to ``threads``.

    Oversubscribed pools (two 2-thread jobs on 2 cores, or one next to another busy process)
    make small tensor ops 10-300x slower, so the runner always sets them explicitly."""
    global _blas_threads
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if _blas_threads != threads:  # threadpoolctl scans the loaded libraries: ~20 ms, so once
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads)
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            pass
        _blas_threads = threads


def threads_in_use() -> int | None:
    """torch's intra-op thread count in this process (None when torch is not loaded and no
    count was set: a numpy-only job on a worker that keeps its own setting)."""
    import sys

    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    return _blas_threads


def execute_job(run: Callable[[dict[str, Any]], dict[str, Any]], job: dict[str, Any],
                threads: int | None = None) -> dict[str, Any]:
    """Run ``run(job)`` and package the outcome:
    ``{status, metrics, arrays, error, started, ended, versions, threads}``; ``threads`` is the
    thread count the job ran with, part of its provenance (results computed with different
    counts may differ in the last bits)."""
    if threads:
        _limit_threads(threads)
    started = time.time()
    status, metrics, arrays, error = "done", {}, {}, None
    try:
        out = dict(run(job))
        arrays = out.pop("arrays", None) or {}
        metrics = out
        if metrics.get("diverged") is True or not _finite(metrics.get("loss", 0.0)):
            status = "diverged"
    except Diverged as e:
        status, metrics, error = "diverged", e.metrics, str(e)
    except Exception:  # a raising job is data for the store, and the sweep goes on
        status, error = "failed", traceback.format_exc()
    return {
        "status": status, "metrics": metrics, "arrays": arrays, "error": error,
        "started": started, "ended": time.time(), "versions": versions(job.get("device")),
        "threads": threads_in_use(),
    }
