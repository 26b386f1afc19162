"""Benchmark: analytic NTK Gram matrix of a deep ReLU net (nnphys.ntk.ntk_kernel).

Default: N = 4096 inputs, d = 32, L = 10 hidden layers, float32 and float64, cube and Gaussian inputs.

Baseline: the straightforward torch implementation of the same recursion
(``tests/ntk_reference.py``, the test oracle): full N x N matrices, clipped-arccos form, no blocking,
every intermediate matrix kept (speed-up and memory ratios are against it).
A second reference, ``lean``, runs the same full-matrix arccos code but drops each layer's matrices
as soon as they are used (shows how much of the gain is memory traffic). Variants of ours:

- ``blocked``: the generic path (upper triangle of the Gram matrix in row blocks of ~2^17 entries,
  in-place atan2 recursion, diagonals recursed as vectors, one number for q q' when all norms agree);
- ``cube``: the default path on ±1 inputs (the recursion is run once on the d+1 values of x.x'
  and the Gram matrix is a look-up; exact, not an approximation).

Memory method: each (variant, dtype, law) runs in a fresh subprocess. The worker builds its inputs,
warms torch up on a 16-point problem, reads ``VmRSS`` from ``/proc/self/status``, runs the
kernel once, then reads ``VmHWM`` (the peak resident set size of the process). The reported
peak is ``VmHWM - VmRSS(before)``: every byte the call made resident, including the output
matrix, allocator slack and temporaries. (``tracemalloc`` does not see torch's allocations.)
The target is "peak <= 2x the output matrix".

Threads: every variant runs at 1 and at 2 threads (``--threads 1,2``); the worker pins itself to
that many CPUs (``sched_setaffinity``) and sets torch's (and XLA's) thread count, so a variant cannot
use more cores than its row says. Ratios are against the baseline at the same thread count.

neural-tangents (``nt``, Novak et al. arXiv 1912.02803): run side by side when a Python with
``neural_tangents`` and CPU JAX is given (``--nt-python``, default ``/work/venv-nt/bin/python`` if it
exists; it is installed only in that environment, never in the project's). Its kernel is
``stax.serial(Dense(W_std=sqrt 2, b_std=sqrt 0.1), Relu) x L + Dense`` in the ntk parameterisation, the
same NTK; the check compares it with ours on the first rows. Its inputs are written by the main
process to a ``.npy`` file so both see the same ``x``. Its time excludes JIT compilation (a first call
at the full shape); its peak memory is not reported (that first call sets the high-water mark).

Run: ``python -m benchmarks.ntk_gram`` (``--quick``: N = 1024, L = 4). Timings on a loaded
machine are inflated; compare ratios, which are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from benchmarks._proc import proc_status_bytes


_status = proc_status_bytes


def _reference():
    """The textbook recursion of ``tests/ntk_reference.py`` (the test oracle is the baseline)."""
    from pathlib import Path

    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from ntk_reference import reference_kernel_arccos

    return reference_kernel_arccos


def _inputs(n: int, d: int, law: str, dtype: torch.dtype) -> torch.Tensor:
    from nnphys.targets import sample_inputs

    return sample_inputs(n, d, law, torch.Generator().manual_seed(0), dtype=dtype)


def _lean_baseline(x: torch.Tensor, depth: int, sw2: float = 2.0, sb2: float = 0.1) -> torch.Tensor:
    """The baseline's recursion without keeping intermediates (a second, fairer reference point)."""
    import math

    d = x.shape[1]
    q = sw2 * (x * x).sum(-1) / d + sb2
    sig = sw2 * (x @ x.T) / d + sb2
    ntk = sig
    for _ in range(depth):
        norm = torch.sqrt(q[:, None] * q[None, :])
        rho = torch.clamp(sig / norm, -1.0, 1.0)
        ang = torch.arccos(rho)
        k = norm * (torch.sqrt(1.0 - rho * rho) + (math.pi - ang) * rho) / (2 * math.pi)
        sig = sw2 * k + sb2
        ntk = sig + sw2 * (math.pi - ang) / (2 * math.pi) * ntk
        q = sw2 * q / 2 + sb2
    return ntk


def _call(variant: str, x: torch.Tensor, depth: int, dtype: torch.dtype):
    from nnphys.ntk import ntk_kernel

    reference_kernel_arccos = _reference()

    if variant == "lean":
        return _lean_baseline(x, depth)
    if variant == "baseline":
        ntk, _ = reference_kernel_arccos(x, x, depth=depth, sigma_w2=2.0, sigma_b2=0.1)
        return ntk[-1]
    return ntk_kernel(x, depth=depth, sigma_b=0.1**0.5, dtype=dtype, fast_cube=(variant == "cube"))


def _pin(threads: int) -> None:
    """Use at most ``threads`` CPUs (affinity) and threads."""
    if threads and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(cpus[:threads]))


# the neural-tangents worker: runs in the nt Python (no torch, no nnphys there)
_NT_WORKER = r"""
import json, os, sys, time
n_threads = int(sys.argv[5])
if n_threads and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:n_threads]))
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'false' if n_threads == 1 else 'true'} intra_op_parallelism_threads={n_threads}"
import numpy as np
import jax
if sys.argv[2] == "float64":
    jax.config.update("jax_enable_x64", True)
from neural_tangents import stax
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
x = np.load(sys.argv[1]).astype(sys.argv[2])
depth = int(sys.argv[3])
layers = []
for _ in range(depth):
    layers += [stax.Dense(1, W_std=2 ** 0.5, b_std=0.1 ** 0.5), stax.Relu()]
_, _, kfn = stax.serial(*layers, stax.Dense(1, W_std=2 ** 0.5, b_std=0.1 ** 0.5))
kfn = jax.jit(kfn, static_argnames="get")
np.asarray(kfn(x[:16], x[:16], get="ntk"))  # warm-up and compile on a small problem
kfn(x, x, get="ntk").block_until_ready()  # compile for the full shape (not timed)
t0 = time.perf_counter()
out = np.asarray(kfn(x, x, get="ntk").block_until_ready())
dt = time.perf_counter() - t0
# no peak memory: the full-shape compile run above already set the process's high-water mark
print(json.dumps({"time_s": dt, "peak_bytes": None, "out_bytes": out.nbytes,
                  "corner": out[: int(sys.argv[4]), :].tolist()}))
"""


def worker(variant: str, dtype_name: str, law: str, n: int, d: int, depth: int, threads: int) -> None:
    _pin(threads)
    if threads:
        torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    x = _inputs(n, d, law, dtype)
    _call(variant, _inputs(16, d, law, dtype), depth, dtype)  # warm-up (lazy init of kernels)
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    out = _call(variant, x, depth, dtype)
    dt = time.perf_counter() - t0
    peak = _status("VmHWM") - rss0
    print(json.dumps({"time_s": dt, "peak_bytes": peak, "out_bytes": out.numel() * out.element_size()}))


def _run_worker(args, variant, dtype_name, law, threads):
    if variant == "nt":
        return _run_nt(args, dtype_name, law, threads)
    cmd = [sys.executable, "-m", "benchmarks.ntk_gram", "--worker", variant, dtype_name, law,
           "--n", str(args.n), "--d", str(args.d), "--depth", str(args.depth), "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _run_nt(args, dtype_name, law, threads, rows: int = 0):
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        np.save(path, _inputs(args.n, args.d, law, torch.float64).numpy())
        res = subprocess.run([args.nt_python, "-c", _NT_WORKER, path, dtype_name, str(args.depth), str(rows),
                              str(threads)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _nt_available(args) -> str:
    """'' when the nt Python imports neural_tangents, else why not."""
    if not args.nt_python or not os.path.exists(args.nt_python):
        return f"no neural-tangents Python (--nt-python {args.nt_python!r})"
    r = subprocess.run([args.nt_python, "-c", "import neural_tangents, jax"], capture_output=True, text=True)
    return "" if r.returncode == 0 else "neural_tangents does not import: " + r.stderr.strip().splitlines()[-1]


def _check(args) -> None:
    """Agreement of ours and the baseline on the first 256 rows (float64).

    Off-diagonal entries are compared with the baseline; diagonal entries with the closed form
    Theta^(L+1)(x,x) = sum_{l=1}^{L+1} q_l, q_l = sigma_w^2 |x|^2/d + l sigma_b^2 (Kdot = 1/2 there),
    because the baseline's clipped arccos loses ~sqrt(eps) on the diagonal at depth.
    """
    from nnphys.ntk import ntk_kernel

    reference_kernel_arccos = _reference()

    m, sb2 = min(256, args.n), 0.1
    for law in args.laws:
        x = _inputs(args.n, args.d, law, torch.float64)
        ref = reference_kernel_arccos(x[:m], x, depth=args.depth, sigma_w2=2.0, sigma_b2=sb2)[0][-1]
        q1 = 2.0 * (x[:m] ** 2).sum(-1) / args.d
        exact_diag = sum(q1 + l * sb2 for l in range(1, args.depth + 2))
        off = ~torch.eye(m, args.n, dtype=torch.bool)
        for fast in ([True, False] if law == "cube" else [False]):
            ours = ntk_kernel(x[:m], x, depth=args.depth, sigma_b=sb2**0.5, fast_cube=fast)
            err = ((ours - ref).abs() / ref.abs())[off].max().item()
            ed = ((ours.diagonal() - exact_diag).abs() / exact_diag).max().item()
            eb = ((ref.diagonal() - exact_diag).abs() / exact_diag).max().item()
            print(f"check {law:5s} {'cube' if fast else 'blocked':8s}: off-diagonal max rel diff vs baseline "
                  f"{err:.1e}; diagonal rel error vs closed form: ours {ed:.1e}, baseline {eb:.1e}")
        if args.nt_ok:
            corner = torch.tensor(_run_nt(args, "float64", law, 1, rows=m)["corner"], dtype=torch.float64)
            ours = ntk_kernel(x[:m], x, depth=args.depth, sigma_b=sb2**0.5)
            print(f"check {law:5s} nt      : max rel diff ours vs neural-tangents (float64) "
                  f"{((ours - corner).abs() / corner.abs()).max().item():.1e}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--d", type=int, default=32)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="N = 1024, L = 4")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts per worker (each variant runs at each)")
    p.add_argument("--nt-python", default="/work/venv-nt/bin/python" if os.path.exists("/work/venv-nt/bin/python") else "",
                   help="a Python with neural_tangents and CPU JAX ('' skips it)")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--laws", default="cube,gauss")
    p.add_argument("--worker", nargs=3, metavar=("VARIANT", "DTYPE", "LAW"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.n, args.d, args.depth, int(args.threads))
        return
    if args.quick:
        args.n, args.depth = 1024, 4
    args.laws = args.laws.split(",")
    why = _nt_available(args)
    args.nt_ok = not why
    print(f"NTK Gram matrix: N={args.n}, d={args.d}, L={args.depth}, sigma_w^2=2, sigma_b^2=0.1, "
          f"threads per worker: {args.threads}; neural-tangents: {'yes (' + args.nt_python + ')' if args.nt_ok else why}")
    _check(args)
    print(f"{'law':6s} {'dtype':8s} {'thr':>3s} {'variant':9s} {'time [s]':>9s} {'speedup':>8s} {'peak [MB]':>10s} "
          f"{'peak/out':>9s} {'mem ratio':>9s} {'vs lean':>8s}")
    threads = [int(t) for t in args.threads.split(",")]
    for law, dt, th in ((law, dt, th) for law in args.laws for dt in args.dtypes.split(",") for th in threads):
        base = _run_worker(args, "baseline", dt, law, th)
        lean = _run_worker(args, "lean", dt, law, th)
        rows = [("baseline", base), ("lean", lean)]
        for v in (["blocked", "cube"] if law == "cube" else ["blocked"]) + (["nt"] if args.nt_ok else []):
            rows.append((v, _run_worker(args, v, dt, law, th)))
        for v, r in rows:
            pk = r["peak_bytes"]
            mem = (f"{pk / 2**20:10.1f} {pk / r['out_bytes']:8.2f}x {base['peak_bytes'] / max(pk, 1):8.1f}x"
                   if pk is not None else f"{'n/a':>10s} {'n/a':>9s} {'n/a':>9s}")
            print(f"{law:6s} {dt:8s} {th:3d} {v:9s} {r['time_s']:9.3f} {base['time_s'] / r['time_s']:7.1f}x "
                  f"{mem} {lean['time_s'] / r['time_s']:7.1f}x")

if __name__ == "__main__":
    main()
