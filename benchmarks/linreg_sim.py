"""Benchmark: chain-steps per second of the vectorised linear-regression SGD simulators against a
Python loop over chains and steps (numpy per step; same model, same statistics accumulated).

Cases: online Gaussian data (row 2: D = 2, S = 50, Wishart sufficient statistics; row 5:
D = 2, S = 5, direct draws, momentum) and a fixed data set (N = 400, D = 100, S = 8, with and
without replacement).

    python -m benchmarks.linreg_sim [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def loop_online(A, lam, S, mu, R, T, seed=0):
    """Reference: one chain at a time, one step at a time."""
    rng = np.random.default_rng(seed)
    D = A.shape[0]
    Ah = np.sqrt(np.diag(A))
    acc = np.zeros((D, D))
    for _ in range(R):
        w, m = np.zeros(D), np.zeros(D)
        for _ in range(T):
            x = rng.standard_normal((S, D)) * Ah
            y = rng.standard_normal(S)
            g = x.T @ (x @ w - y) / S
            m = mu * m + g
            w = w - lam * m
            acc += np.outer(w, w)
    return acc / (R * T)


def loop_finite(X, y, lam, S, replacement, R, T, seed=0):
    rng = np.random.default_rng(seed)
    N, D = X.shape
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    acc = np.zeros((D, D))
    for _ in range(R):
        w = w_star.copy()
        for _ in range(T):
            idx = rng.integers(0, N, S) if replacement else rng.choice(N, S, replace=False)
            xb = X[idx]
            w = w - lam * xb.T @ (xb @ w - y[idx]) / S
            v = w - w_star
            acc += np.outer(v, v)
    return acc / (R * T)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    a = ap.parse_args()

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)

    from nnphys import linreg as L

    q = a.quick
    A2 = np.diag([1.0, 0.5])
    print(f"device {a.device}, torch threads {torch.get_num_threads()}; chain-steps/s (higher is better)")
    print(f"{'case':38s} {'vectorised':>12s} {'python loop':>12s} {'speedup':>8s}")
    cases = [("online row 2 (D=2, S=50, Wishart)", 1.5, 50, 0.0), ("online row 5 (D=2, S=5, μ=0.5)", 0.5, 5, 0.5)]
    for name, lam, S, mu in cases:
        R, T = (1000, 400) if q else (2000, 2000)
        t = time.perf_counter()
        L.simulate_online(A2, lam, S, 1.0, mu=mu, n_chains=R, n_steps=T, burn_in=0, seed=0, device=a.device)
        v = R * T / (time.perf_counter() - t)
        r, tt = (4, 200) if q else (10, 500)
        t = time.perf_counter()
        loop_online(A2, lam, S, mu, r, tt)
        lp = r * tt / (time.perf_counter() - t)
        print(f"{name:38s} {v:12.3g} {lp:12.3g} {v / lp:7.0f}x")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 100))
    y = X @ (rng.standard_normal(100) / 10) + rng.standard_normal(400)
    for repl in (True, False):
        R, T = (64, 200) if q else (200, 1000)
        t = time.perf_counter()
        L.simulate_finite(X, y, 0.05, 8, replacement=repl, n_chains=R, n_steps=T, burn_in=0, seed=0,
                          device=a.device)
        v = R * T / (time.perf_counter() - t)
        r, tt = (2, 200) if q else (4, 500)
        t = time.perf_counter()
        loop_finite(X, y, 0.05, 8, repl, r, tt)
        lp = r * tt / (time.perf_counter() - t)
        name = f"finite N=400 D=100 S=8 {'with' if repl else 'without'} repl."
        print(f"{name:38s} {v:12.3g} {lp:12.3g} {v / lp:7.0f}x")


if __name__ == "__main__":
    main()
