"""Benchmark: 1-D Euler-Maruyama of Eq. 13 (family A double well) over 1e5 chains.

    python -m benchmarks.escape_sde [--quick] [--threads N] [--chains R] [--steps K]

Prints chain-steps per second of
- the library simulator ``simulate_sde``: the compiled per-chain kernel (``engine="compiled"``,
  numba, float64, 1 and 2 threads) and the torch path (fused in-place kernel, blocks of normals,
  compaction) in float64 and float32,
- a Python loop over chains (scalar float64, on a subset, extrapolated),
- plain numpy vectorisation (float64, one expression per step, fresh normals each step),
and the ratios against both baselines, all measured in this run. Then it splits the torch path's
time into random-number generation alone and the update alone, and times the compiled kernel's
normal generator alone, to say what bounds each.
No chain escapes within the benchmark horizon (c = 50, start at the minimum), so every step
costs the full chain vector.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from nnphys.escape import kernels as escape_kernels
from nnphys.escape.landscapes import family_a
from nnphys.escape.simulate import _fused_block_1d, simulate_sde

R_DEFAULT, K_DEFAULT = 100_000, 400
RATIO, DT = 10.0, 0.01


def _best(f, reps: int = 3) -> float:
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def bench_simulator(A, R, K, dtype, rng_dtype=None, engine="torch", threads=None) -> float:
    def f():
        fp = simulate_sde(A, B=RATIO, eta=1.0, dt=DT, n_chains=R, t_max=K * DT, seed=0, dtype=dtype, block=64,
                          rng_dtype=rng_dtype, engine=engine, threads=threads)
        assert fp.n_events == 0
    return R * K / _best(f)


def bench_python_loop(A, R_sub, K) -> float:
    rng = np.random.default_rng(0)
    xi = rng.standard_normal((R_sub, K)).tolist()
    a2 = 2 / RATIO * DT

    def f():
        for i in range(R_sub):
            z = -A.w
            row = xi[i]
            for k in range(K):
                u = z / A.w
                s = u * u - 1
                L = A.L_star + A.delta_L * s * s
                z = z - 4 * A.delta_L * u * s / A.w * DT + math.sqrt(a2 * L) * row[k]
    return R_sub * K / _best(f, 1)


def bench_numpy(A, R, K) -> float:
    a2 = 2 / RATIO * DT

    def f():
        rng = np.random.default_rng(0)
        z = np.full(R, -A.w)
        for _ in range(K):
            u = z / A.w
            s = u * u - 1
            z = z - (4 * A.delta_L * DT / A.w) * u * s + np.sqrt(a2 * (A.L_star + A.delta_L * s * s)) * rng.standard_normal(R)
    return R * K / _best(f)


def bench_split(A, R, K, dtype) -> tuple[float, float]:
    """(RNG-only, update-only) chain-steps per second, same block layout as the simulator."""
    g = torch.Generator().manual_seed(0)
    blocks = max(K // 64, 1)

    def rng_only():
        for _ in range(blocks):
            torch.randn((64, R, 1), generator=g, dtype=dtype)

    xi = torch.randn((64, R), generator=g, dtype=dtype)
    out = torch.empty(64, R, dtype=dtype)
    a2 = 2 / RATIO * DT

    def update_only():
        for _ in range(blocks):
            z = torch.full((R,), -A.w, dtype=dtype)
            _fused_block_1d(A, z, xi, out, a2, DT, "z1")

    n = R * 64 * blocks
    return n / _best(rng_only), n / _best(update_only)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run (fewer steps)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--chains", type=int, default=R_DEFAULT)
    ap.add_argument("--steps", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    R = a.chains
    K = a.steps or (128 if a.quick else K_DEFAULT)
    A = family_a(1.0, 50.0)  # c = 50: no escape within K steps
    print(f"1-D Eq. 13 (family A), R = {R} chains, {K} steps, dt = {DT}, torch threads = {torch.get_num_threads()}")
    r_sub = 200 if a.quick else 500
    py = bench_python_loop(A, r_sub, min(K, 200))
    npv = bench_numpy(A, R, K)
    s64 = bench_simulator(A, R, K, torch.float64)
    s64f = bench_simulator(A, R, K, torch.float64, torch.float32)
    s32 = bench_simulator(A, R, K, torch.float32)
    rows = []
    if escape_kernels.available():
        bench_simulator(A, 10, 10, torch.float64, engine="compiled")  # JIT compile (or load the cache)
        for th in (1, 2):
            rows.append((f"simulate_sde compiled kernel (float64, {th} thread{'s' * (th > 1)})",
                         bench_simulator(A, R, K, torch.float64, engine="compiled", threads=th)))
    else:
        print("  (numba not installed: the compiled kernel is skipped; pip install 'nnphys[fast]')")
    rows += [("python loop over chains (float64, extrapolated)", py), ("numpy vectorised (float64)", npv),
            ("simulate_sde fused kernel (float64)", s64),
            ("simulate_sde fused kernel (float64, float32 normals)", s64f),
            ("simulate_sde fused kernel (float32)", s32)]
    for name, v in rows:
        print(f"  {name:53s} {v / 1e6:9.2f} M chain-steps/s   x{v / py:8.1f} vs loop   x{v / npv:6.2f} vs numpy")
    for dtype, total in ((torch.float64, s64), (torch.float32, s32)):
        rng, upd = bench_split(A, R, K, dtype)
        bound = "random-number generation" if rng < upd else "the update (memory traffic of ~6 passes)"
        print(f"  torch split {str(dtype):14s}: RNG alone {rng / 1e6:8.1f} M/s, update alone {upd / 1e6:8.1f} M/s, "
              f"both {total / 1e6:8.1f} M/s -> bounded by {bound}")


    if escape_kernels.available():
        n = R * K // 4
        escape_kernels.normal_throughput(10)
        t_norm = _best(lambda: escape_kernels.normal_throughput(n))
        one = rows[0][1]
        print(f"  compiled split (1 thread): normals alone (xoshiro256** + ziggurat, {escape_kernels.LANES} lanes) "
              f"{n / t_norm / 1e6:.1f} M/s, whole step {one / 1e6:.1f} M/s -> generation takes "
              f"{one / (n / t_norm):.0%} of the time; the rest is the step (a sqrt, a few multiply-adds); "
              "no memory traffic (each chain lives in registers)")


if __name__ == "__main__":
    main()
