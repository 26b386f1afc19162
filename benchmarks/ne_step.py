"""Wall-clock cost of one noise-enhanced SGD step against SGD at B and at 2B (spec §5 cost accounting).

Model: an MLP 40-256-256-10 (MNIST-1D-sized input), cross-entropy, float32, batches drawn beforehand.
Spec §5 predicts NE(B) ~ SGD(2B) in FLOPs and ~2 x SGD(B). Also: M seeds stacked in one ensemble
(nnphys.nets.MLPEnsemble + nnphys.noise_enhancement.ne_update_) against M separate NoiseEnhancedSGD models.

    python -m benchmarks.ne_step [--quick] [--batch 128] [--device cpu]

Prints absolute milliseconds per step and each ratio against its baseline, all measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from nnphys.nets import MLPEnsemble
from nnphys.noise_enhancement import NoiseEnhancedSGD, ne_update_


def _mlp(gen: torch.Generator, device: str) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return net.to(device)


def _time(fn, n: int, repeats: int, device: str) -> tuple[float, float]:
    """Median over ``repeats`` of the mean (wall, process-CPU) seconds per call over ``n`` calls,
    after a warm-up. On a shared, loaded CPU the process-CPU time is the steadier measure."""
    for _ in range(max(2, n // 5)):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t, c = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - t) / n)
        cpu.append((time.process_time() - c) / n)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    ap.add_argument("--batch", type=int, default=128, help="B (NE uses two batches of B)")
    ap.add_argument("--members", type=int, default=8, help="M for the stacked-ensemble comparison")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, reps = (5, 2) if args.quick else (20, 3)
    dev, B = args.device, args.batch
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(4 * B, 40, generator=gen).to(dev)
    Y = torch.randint(0, 10, (4 * B,), generator=gen).to(dev)
    loss_fn = nn.CrossEntropyLoss()

    def sgd_step(bs: int):
        net = _mlp(torch.Generator().manual_seed(1), dev)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(net(X[:bs]), Y[:bs]).backward()
            opt.step()
        return step

    net = _mlp(torch.Generator().manual_seed(1), dev)
    ne = NoiseEnhancedSGD(net.parameters(), lr=0.01, alpha=1.4365)

    def ne_step():
        ne.step_batches(net, loss_fn, (X[:B], Y[:B]), (X[B:2 * B], Y[B:2 * B]))

    t_b = _time(sgd_step(B), n, reps, dev)
    t_2b = _time(sgd_step(2 * B), n, reps, dev)
    t_ne = _time(ne_step, n, reps, dev)
    print(f"device={dev} threads={args.threads} B={B} model=40-256-256-10; per step: wall ms | process-CPU ms")
    for name, t in (("SGD(B)", t_b), ("SGD(2B)", t_2b), ("NE(B, B')", t_ne)):
        print(f"  {name:10s} {t[0] * 1e3:9.3f} | {t[1] * 1e3:9.3f}")
    for i, kind in ((0, "wall"), (1, "CPU")):
        print(f"  {kind:4s} ratio NE / SGD(B) = {t_ne[i] / t_b[i]:5.2f} (spec §5: 2 in FLOPs); "
              f"NE / SGD(2B) = {t_ne[i] / t_2b[i]:5.2f} (spec §5: 1 in FLOPs)")

    # stacked ensemble of M seeds (one set of tensors) against M separate optimizers
    M = args.members
    ens = MLPEnsemble(M, 40, 256, 2, 10, seeds=list(range(M)), device=dev)
    params = list(ens.parameters())
    alpha = torch.full((M,), 1.4365, device=dev)
    xa, xb = X[:B], X[B:2 * B]
    ya, yb = Y[:B], Y[B:2 * B]

    def grads(x, y):
        out = ens(x)  # (M, B, 10); one shared batch, as a speed proxy
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, 10), y.repeat(M), reduction="sum") / B
        return torch.autograd.grad(loss, params)

    def ens_step():
        ne_update_(params, grads(xa, ya), grads(xb, yb), 0.01, alpha, check=False)

    nets = [_mlp(torch.Generator().manual_seed(10 + m), dev) for m in range(M)]
    opts = [NoiseEnhancedSGD(nt.parameters(), lr=0.01, alpha=1.4365) for nt in nets]

    def loop_step():
        for nt, op in zip(nets, opts):
            op.step_batches(nt, loss_fn, (xa, ya), (xb, yb))

    t_ens = _time(ens_step, n, reps, dev)
    t_loop = _time(loop_step, max(2, n // 2), reps, dev)
    print(f"  {M} seeds, one NE step: stacked ensemble {t_ens[0] * 1e3:9.3f} | {t_ens[1] * 1e3:9.3f} ms, "
          f"loop of {M} models {t_loop[0] * 1e3:9.3f} | {t_loop[1] * 1e3:9.3f} ms (wall | CPU)")
    print(f"  speedup stacked over loop: wall {t_loop[0] / t_ens[0]:5.2f}x, CPU {t_loop[1] / t_ens[1]:5.2f}x")


if __name__ == "__main__":
    main()
