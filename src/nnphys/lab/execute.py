"""What a worker runs for one job: the study's ``run`` wrapped so that every outcome comes back
as data (``done`` / ``failed`` with its traceback / ``diverged``), never as an exception."""

from __future__ import annotations

import functools
import math
import os
import platform
import sys
import time
import traceback
from typing import Any, Callable

from nnphys.errors import Diverged


@functools.lru_cache(maxsize=8)
def _versions(device: str) -> tuple[tuple[str, str], ...]:
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


_blas_key: tuple | None = None
_interop_tried = False
_malloc_done = False

# glibc mallopt parameters and the values restored in a job process. glibc's own (dynamic) rule
# raises the mmap threshold to the largest freed block, up to 32 MiB on 64-bit, and keeps the
# trim threshold at twice it; these are that rule's ceiling, fixed.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 64 * 2**20
# setting any of these in the environment switches glibc's dynamic thresholds off for good
_MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
# modules that bring their own BLAS/OpenMP libraries: a new one loaded means a new pool to pin
_POOL_MODULES = ("numpy", "scipy.linalg", "sklearn", "torch", "numba")


def keep_freed_memory() -> bool:
    """Give this process (near enough) glibc's default malloc behaviour back when the environment
    switched it off; returns whether it did (once per process; False off glibc).

    Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (to return memory to
    the system early). Setting it also freezes glibc's mmap threshold at 128 KiB, so every
    tensor of 128 KiB or more is a fresh ``mmap`` and every free an ``munmap``: the kernel zeroes
    and faults in the pages again at each step of a training loop: a training job in a Dask
    worker spent more system time than it computed (measured in docs/benchmarks.md). Restoring the thresholds (:data:`MMAP_THRESHOLD`,
    :data:`TRIM_THRESHOLD`) keeps at most 64 MiB of freed heap per arena."""
    global _malloc_done
    if _malloc_done:
        return False
    _malloc_done = True
    if not any(k in os.environ for k in _MALLOC_ENV):
        return False  # glibc's dynamic thresholds are in force: nothing to undo
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator is left alone
        return False


def _limit_threads(threads: int) -> None:
    """Pin every thread pool of this process that a job can touch to ``threads``: torch's intra-op
    and inter-op pools, the BLAS/OpenMP libraries loaded so far (threadpoolctl), and numba's.

    Oversubscribed pools (two 2-thread jobs on 2 cores, or one next to another busy process)
    make small tensor ops 10-300x slower, so the runner always sets them explicitly. The inter-op
    pool can be sized only before its first use in a process (torch refuses later), so a process
    that used it before its first job keeps its size."""
    global _blas_key, _interop_tried
    # numba first: launching its OpenMP layer sets the process's OpenMP count, which torch reads.
    # Not loaded yet: its kernels (nnphys.escape.kernels) run at torch's count by default.
    numba = sys.modules.get("numba")
    if numba is not None and hasattr(numba, "set_num_threads"):
        n = min(threads, numba.config.NUMBA_NUM_THREADS)
        if numba.get_num_threads() != n:
            numba.set_num_threads(n)
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if not _interop_tried:
        _interop_tried = True
        if torch.get_num_interop_threads() != threads:
            try:
                torch.set_num_interop_threads(threads)
            except RuntimeError:  # already used in this process: its size is fixed now
                pass
    # threadpoolctl scans the loaded libraries (~20 ms): again only when a library may be new
    key = (threads, tuple(m for m in _POOL_MODULES if m in sys.modules))
    if _blas_key != key:
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=threads)
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            pass
        _blas_key = key


def threads_in_use() -> int | None:
    """torch's intra-op thread count in this process (None when torch is not loaded and no
    count was set: a numpy-only job on a worker that keeps its own setting)."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    return _blas_key[0] if _blas_key else None


def _device(job: Any) -> str | None:
    """The device a planned job runs on (a typed job's attribute, or a plain dict's key)."""
    return job.get("device") if isinstance(job, dict) else getattr(job, "device", None)


def execute_job(run: Callable[[Any], dict[str, Any]], job: Any,
                threads: int | None = None) -> dict[str, Any]:
    """Run ``run(job)`` and package the outcome:
    ``{status, metrics, arrays, error, started, ended, versions, threads}``; ``threads`` is the
    thread count the job ran with, part of its provenance (results computed with different
    counts may differ in the last bits)."""
    keep_freed_memory()
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
        "started": started, "ended": time.time(), "versions": versions(_device(job)),
        "threads": threads_in_use(),
    }
