"""Memory readings from ``/proc/self/status`` shared by the benchmarks (Linux only)."""

from __future__ import annotations


def proc_status_bytes(key: str) -> int:
    """``key`` (e.g. ``VmHWM``, the peak resident set, or ``VmRSS``) of this process, in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_rss_mib() -> float:
    """Peak resident set size (``VmHWM``) in MiB; nan where /proc does not report it."""
    try:
        return proc_status_bytes("VmHWM") / 2**20
    except (OSError, RuntimeError):
        return float("nan")
