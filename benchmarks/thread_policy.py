"""Benchmark behind the runner's default of one torch/BLAS thread per job.

A job-sized workload, one SGD epoch of a small MLP (``32 -> 256 -> 1``, 4096 samples, batch 64),
timed with 1 and with 2 intra-op threads in the same process, interleaved, best of 3 per repeat,
so both see the same machine load. It prints ms/epoch and the ratio to the 1-thread baseline.
On an idle machine with spare cores 2 threads may gain a little; on a loaded one (other jobs,
other users) OpenMP's spinning threads collapse, which is what the default guards against.

Run ``python -m benchmarks.thread_policy [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def epoch(threads: int, seed: int = 0) -> float:
    """Seconds for one SGD epoch at ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(32, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    x, y = torch.randn(4096, 32, generator=g), torch.randn(4096, 1, generator=g)
    t = time.perf_counter()
    for i in range(0, 4096, 64):
        opt.zero_grad()
        loss = ((net(x[i:i + 64]) - y[i:i + 64]) ** 2).mean()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores {os.cpu_count()}, load average {load:.2f}")
    for rep in range(args.repeats):
        best = {t: min(epoch(t) for _ in range(3)) for t in (1, 2)}
        print(f"repeat {rep}: 1 thread {best[1] * 1e3:.1f} ms/epoch (baseline), "
              f"2 threads {best[2] * 1e3:.1f} ms/epoch = {best[2] / best[1]:.2f}x the baseline")


if __name__ == "__main__":
    main()
