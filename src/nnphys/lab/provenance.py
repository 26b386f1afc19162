"""Provenance of a sweep: code version, command line, engine, threads, machine, libraries.

Stored as JSON in the store's ``runs.meta`` column by the driver and shown by the report. Every
probe is best effort: a missing git or /proc gives ``None``, never an error.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# the libraries whose versions can change a result or its speed (read from installed metadata,
# so nothing is imported)
PACKAGES = ("nnphys", "torch", "numpy", "scipy", "pydantic", "matplotlib", "threadpoolctl", "numba", "dask",
            "distributed", "scikit-learn", "mnist1d", "pyarrow")


def _git(*args: str) -> str | None:
    src = Path(__file__).resolve().parent
    try:
        p = subprocess.run(["git", *args], cwd=src, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout the running nnphys was imported from, or
    ``(None, None)`` outside a checkout (an installed wheel) or without git. Dirty counts
    tracked files only: untracked results directories do not make a checkout dirty."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else status != "")


@lru_cache(maxsize=1)
def cpu_model() -> str | None:
    """The CPU's model name (Linux /proc/cpuinfo, else what platform reports)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def versions() -> dict[str, str]:
    """``{package: version}`` of :data:`PACKAGES` that are installed."""
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _device(device: str | None) -> str | None:
    """The device, with the GPU's name when it is CUDA and torch is already loaded."""
    if device and device.startswith("cuda") and "torch" in sys.modules:
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                return f"{device} ({torch.cuda.get_device_name(0)})"
        except Exception:  # noqa: BLE001 - provenance must never stop a run
            pass
    return device


def collect(*, argv: list[str], engine: str, workers: int, threads: int | None, device: str | None) -> dict[str, Any]:
    """Provenance of one sweep as a JSON-able dict with keys ``git_commit`` (str|None),
    ``git_dirty`` (bool|None), ``argv``, ``engine``, ``workers``, ``threads``, ``host``,
    ``cpu_model``, ``cpu_count``, ``device``, ``python``, ``versions`` ({package: version})."""
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "argv": [str(a) for a in argv],
        "engine": engine,
        "workers": int(workers),
        "threads": threads,
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "device": _device(device),
        "python": platform.python_version(),
        "versions": versions(),
    }
