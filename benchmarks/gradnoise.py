"""Benchmark: gradient-noise trace of an MLP 64-512-512-512-1 at N = 1024 (float32, CPU).

Prints, measured in the same run:
- the fast path (``method="linear"``, trace only and with the top-20 Gram spectrum) against the
  per-sample Python loop (``method="loop"``; target >= 100x) and against ``torch.func``
  ``vmap(grad)`` (``method="vmap"``; target >= 10x);
- its cost relative to one ordinary forward + backward of the mean loss on the same batch
  (target <= 2x);
- peak memory: each method runs in a fresh subprocess; after data and model are built the kernel's
  peak-RSS counter is reset (``/proc/self/clear_refs``, Linux) and we report the growth of the
  peak (``VmHWM``) during one call, for several N, to show the fast path's O(N · width) growth
  (vs vmap's O(chunk · P)).

    python -m benchmarks.gradnoise [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from benchmarks._proc import peak_rss_mib


def _setup(n: int, device: str, seed: int = 0):
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                              nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 1)).to(device)
    X = torch.randn(n, 64, generator=g).to(device)
    y = torch.randn(n, 1, generator=g).to(device)
    return model, X, y


def _loss(out, t):
    return 0.5 * ((out - t) ** 2).reshape(out.shape[0], -1).sum(1)


def _timeit(fn, repeats: int, sync) -> float:
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


_rss_peak_mib = peak_rss_mib


def _memory_child(method: str, n: int, device: str) -> None:
    """Runs in a subprocess: resets the kernel's peak-RSS counter (``/proc/self/clear_refs``,
    Linux) after setup and prints the growth of the peak (MiB) caused by one call."""
    import torch

    from nnphys.gradnoise import gradient_noise

    torch.set_num_threads(1)
    model, X, y = _setup(n, device)
    _loss(model(X[:2]), y[:2]).sum().backward()  # warm allocator / autograd
    model.zero_grad(set_to_none=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _rss_peak_mib()
    if method == "fwdbwd":
        _loss(model(X), y).mean().backward()
    else:
        top = 20 if method == "linear_top20" else 0
        gradient_noise(model, _loss, (X, y), batch_size=32, k=top,
                       method="linear" if method.startswith("linear") else method,
                       chunk_size=256 if method == "vmap" else None)
    print(json.dumps(dict(mib=_rss_peak_mib() - base)))


def _memory(method: str, n: int, device: str) -> float:
    out = subprocess.run([sys.executable, "-m", "benchmarks.gradnoise", "--_child", method, str(n), device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["mib"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller memory sweep")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._child:
        _memory_child(a._child[0], int(a._child[1]), a._child[2])
        return

    import torch

    from nnphys.gradnoise import gradient_noise

    if a.threads:
        torch.set_num_threads(a.threads)
    dev = a.device
    sync = (lambda: torch.cuda.synchronize()) if dev.startswith("cuda") else (lambda: None)
    rep = 3 if a.quick else 7
    model, X, y = _setup(a.n, dev)
    P = sum(p.numel() for p in model.parameters())
    print(f"MLP 64-512-512-512-1 (P = {P}), N = {a.n}, float32, device {dev}, torch threads "
          f"{torch.get_num_threads()}")

    def fwdbwd():
        model.zero_grad(set_to_none=True)
        _loss(model(X), y).mean().backward()

    t_fb = _timeit(fwdbwd, rep, sync)
    t_fast = _timeit(lambda: gradient_noise(model, _loss, (X, y), batch_size=32, method="linear"), rep, sync)
    t_gram = _timeit(lambda: gradient_noise(model, _loss, (X, y), batch_size=32, k=20, method="linear"),
                     rep, sync)
    t_vmap = _timeit(lambda: gradient_noise(model, _loss, (X, y), batch_size=32, method="vmap", chunk_size=256),
                     max(1, rep // 2), sync)
    t_loop = _timeit(lambda: gradient_noise(model, _loss, (X, y), batch_size=32, method="loop"), 1, sync)

    a_fast = gradient_noise(model, _loss, (X, y), batch_size=32, method="linear")
    a_loop = gradient_noise(model, _loss, (X, y), batch_size=32, method="loop")
    rel = abs(a_fast.trace_noise - a_loop.trace_noise) / a_loop.trace_noise

    print(f"forward+backward (mean loss)     {t_fb * 1e3:9.2f} ms")
    print(f"fast path, trace only            {t_fast * 1e3:9.2f} ms   = {t_fast / t_fb:5.2f}x fwd+bwd  (target <= 2x)")
    print(f"fast path, trace + top-20 (Gram) {t_gram * 1e3:9.2f} ms   = {t_gram / t_fb:5.2f}x fwd+bwd")
    print(f"torch.func vmap(grad), chunk 256 {t_vmap * 1e3:9.2f} ms   fast path speedup {t_vmap / t_fast:7.1f}x "
          f"(target >= 10x)")
    print(f"per-sample Python loop           {t_loop * 1e3:9.2f} ms   fast path speedup {t_loop / t_fast:7.1f}x "
          f"(target >= 100x)")
    print(f"fast vs loop trace, float32 rel. diff {rel:.1e}")

    if dev == "cpu":
        ns = [256, 1024] if a.quick else [256, 512, 1024, 2048]
        print("peak RSS growth of one call (MiB; fresh subprocess each, VmHWM after clear_refs):")
        print("      N   fwd+bwd   fast(trace)   fast(top-20)   vmap(chunk 256)")
        for n in ns:
            row = [_memory(m, n, dev) for m in ("fwdbwd", "linear", "linear_top20", "vmap")]
            print(f"  {n:5d}  {row[0]:8.1f}  {row[1]:12.1f}  {row[2]:13.1f}  {row[3]:15.1f}")
        print(f"  reference sizes: N·width·4 B = {1024 * 512 * 4 / 2**20:.1f} MiB at N = 1024; "
              f"P·4 B = {P * 4 / 2**20:.1f} MiB; chunk·P·4 B = {256 * P * 4 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
