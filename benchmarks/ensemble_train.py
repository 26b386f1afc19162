"""Benchmark: stacked-ensemble SGD (nnphys.train.train_step) against a loop of nn.Module nets.

1. Speedup: ``M = 32`` MLPs ``d_in=32 -> H x 4 hidden -> 1`` for widths ``H`` from 32 to 256, batch 32,
   MSE. The ensemble does one batched step for all members; the baseline loops over ``M``
   ``nn.Sequential`` nets, each with ``torch.optim.SGD`` (zero_grad, forward, MSE, backward, step), on
   the same batches. Target >= 15x. Each row also prints the compute ceiling: the step's flops
   timed at the machine's matmul peak (``torch.bmm`` of ``(8, 256, 1024) @ (8, 1024, 1024)``,
   measured once), and ``t_loop`` over that floor,
   the largest speedup any batched implementation could show against this loop on this machine
   (where the loop is compute-bound, as on a CPU at width >= 128, the target is out of reach).
2. Efficiency: at width 1024 the achieved GFLOP/s of the ensemble step (``6 B P_w M`` flops: forward,
   input gradient and weight gradient, minus the input gradient of the first layer) against ``torch.bmm``
   of the hidden-layer shape ``(M, B, H) @ (M, H, H)`` on the same machine. Target >= 50 %.

Run ``python -m benchmarks.ensemble_train [--quick] [--device cuda] [--threads 1]``. Timings are wall
clock of the same process, so both sides of each ratio see the same machine load.
"""

from __future__ import annotations

import argparse
import time

import torch

from nnphys.nets import MLPEnsemble
from nnphys.train import train_step


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, reps: int, dev: torch.device) -> float:
    fn()  # warm-up
    _sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    _sync(dev)
    return (time.perf_counter() - t) / reps


def _step_flops(M: int, d: int, H: int, L: int, B: int) -> int:
    """Forward, input gradient and weight gradient of every layer, less the first layer's input gradient."""
    pw = d * H + (L - 1) * H * H + H
    return M * B * (6 * pw - 2 * d * H)


def _bmm_gflops(M: int, B: int, H: int, reps: int, dev: torch.device) -> float:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(M, B, H, generator=g).to(dev)
    w = torch.randn(M, H, H, generator=g).to(dev)
    t = _time(lambda: [torch.bmm(a, w) for _ in range(reps)], 3, dev) / reps
    return 2 * M * B * H * H / t / 1e9


def speedup(M: int, d: int, H: int, L: int, B: int, steps: int, dev: torch.device, peak: float) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(M, B * steps, d, generator=g).to(dev)
    y = torch.randn(M, B * steps, 1, generator=g).to(dev)
    ens = MLPEnsemble(M, d, H, L, seeds=list(range(M)), device=dev)
    nets = ens.to_modules()
    opts = [torch.optim.SGD(n.parameters(), lr=0.01) for n in nets]
    lr = torch.full((M, 1, 1), 0.01, device=dev)

    def run_ens():
        for s in range(steps):
            sl = slice(s * B, (s + 1) * B)
            train_step(ens, x[:, sl], y[:, sl], lr)

    def run_loop():
        for s in range(steps):
            sl = slice(s * B, (s + 1) * B)
            for m in range(M):
                opts[m].zero_grad()
                loss = torch.nn.functional.mse_loss(nets[m](x[m, sl]), y[m, sl])
                loss.backward()
                opts[m].step()

    te = _time(run_ens, 3, dev) / steps
    tl = _time(run_loop, 3, dev) / steps
    floor = _step_flops(M, d, H, L, B) / (peak * 1e9)
    print(f"[speedup] M={M} d={d} H={H:4d} L={L} B={B} on {dev}: ensemble {te * 1e3:8.3f} ms/step, "
          f"loop of nn.Module+SGD {tl * 1e3:8.3f} ms/step -> speedup {tl / te:5.1f}x (target >= 15x); "
          f"compute floor {floor * 1e3:7.3f} ms -> ceiling {tl / floor:5.1f}x, ensemble at {floor / te:4.0%} of it")


def efficiency(M: int, d: int, H: int, L: int, B: int, steps: int, dev: torch.device) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(M, B, d, generator=g).to(dev)
    y = torch.randn(M, B, 1, generator=g).to(dev)
    ens = MLPEnsemble(M, d, H, L, seeds=list(range(M)), device=dev)
    lr = torch.full((M, 1, 1), 1e-4, device=dev)
    flops = _step_flops(M, d, H, L, B)
    t_step = _time(lambda: [train_step(ens, x, y, lr) for _ in range(steps)], 2, dev) / steps
    a = torch.randn(M, B, H, generator=g).to(dev)
    w = torch.randn(M, H, H, generator=g).to(dev)
    t_mm = _time(lambda: [torch.bmm(a, w) for _ in range(steps)], 2, dev) / steps
    gf_step = flops / t_step / 1e9
    gf_mm = 2 * M * B * H * H / t_mm / 1e9
    print(f"[efficiency] M={M} d={d} H={H} L={L} B={B} on {dev}: ensemble step {t_step * 1e3:.2f} ms = "
          f"{gf_step:.1f} GFLOP/s; torch.bmm (M,B,H)@(M,H,H) {t_mm * 1e3:.3f} ms = {gf_mm:.1f} GFLOP/s "
          f"-> ratio {gf_step / gf_mm:.0%} (target >= 50%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and a smaller ensemble at width 1024")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {dev}")
    peak = _bmm_gflops(8, 256, 1024, 3, dev)
    print(f"matmul peak (torch.bmm (8,256,1024)@(8,1024,1024)): {peak:.1f} GFLOP/s")
    for H in (32, 256) if args.quick else (32, 64, 128, 256):
        speedup(32, 32, H, 4, 32, 3 if args.quick else 10, dev, peak)
    efficiency(8 if args.quick else 32, 32, 1024, 4, 32, 2 if args.quick else 5, dev)


if __name__ == "__main__":
    main()
