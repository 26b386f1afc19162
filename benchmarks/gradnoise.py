"""Benchmark: the gradient-noise trace ``tr C_1`` (per-sample gradient norms and the mean gradient)
of a small CNN and an MLP at N = 1024 (float32, CPU), against what a user would write.

Methods, all computing the same statistic (``tr C_1 = mean_n ||g_n||² - ||mean_n g_n||²``):

- ``fwd+bwd``: one forward + backward of the mean loss (the unit every ratio is expressed in);
- ``nnphys default`` (``method="auto"``) and the library's other methods (``linear``, ``vmap``
  with ``chunk_size=256``, and ``loop``, the library's float64 oracle, not a user's baseline);
- ``plain loop``: a float32 per-sample loop, one ``autograd.grad`` per sample, as a user writes it;
- ``vmap(grad)``: ``torch.func.vmap(grad(...))`` in chunks of 256 samples, norms and sum per chunk;
- ``BackPACK``: ``BatchL2Grad`` (per-sample squared norms) with the ordinary gradient, when
  ``backpack`` is importable;
- ``Opacus``: ``GradSampleModule`` (materialised per-sample gradients), when importable.

Every method runs in the SAME process, interleaved round by round (``--runs`` rounds, default 3,
after a warm-up), at each thread count of ``--threads`` (default 1 and 2), so all see the same load;
the load average is printed at the start and the end. Each method's trace is compared with a
float64 per-sample loop on a float64 copy of the model (``rel. err``): equal accuracy is part of
the comparison. No timing is asserted anywhere.

    python -m benchmarks.gradnoise [--quick] [--models cnn,mlp] [--threads 1,2] [--runs 3]
    python -m benchmarks.gradnoise --memory          # peak RSS growth of one call vs N (MLP)

The peers live in their own environment (``pip install backpack-for-pytorch opacus`` next to
``pip install -e . --no-deps``); without them their rows are skipped.
"""

from __future__ import annotations

import argparse
import warnings
import copy
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks._proc import peak_rss_mib


# ----------------------------------------------------------------------------- models


def _setup(kind: str, n: int, seed: int = 0):
    """``(model, X, y, loss_fn, peer_loss, peer_scale)``: ``loss_fn`` per-sample; ``peer_loss`` the
    sum-reduced torch module a peer library extends, whose per-sample gradients are
    ``peer_scale`` times ours."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "mlp":
            model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                  nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 1))
        elif kind == "cnn28":
            model = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
        elif kind == "cnn":
            model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(32 * 8 * 8, 10))
        else:
            raise ValueError(kind)
    if kind == "mlp":
        X = torch.randn(n, 64, generator=g)
        y = torch.randn(n, 1, generator=g)
        loss_fn = _half_mse
        return model, X, y, loss_fn, nn.MSELoss(reduction="sum"), 0.5
    X = torch.randn(n, 1, *((28, 28) if kind == "cnn28" else (8, 8)), generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return model, X, y, _ce, nn.CrossEntropyLoss(reduction="sum"), 1.0


def _half_mse(out, t):
    return 0.5 * ((out - t) ** 2).reshape(out.shape[0], -1).sum(1)


def _ce(out, t):
    import torch

    return torch.nn.functional.cross_entropy(out, t, reduction="none")


DESCR = {
    "mlp": "MLP 64-512-512-512-1 (ReLU), loss 0.5 (f - y)^2",
    "cnn": "CNN conv3x3(1->16, pad 1)-ReLU-conv3x3(16->32, pad 1)-ReLU-linear(2048->10) on 8x8 inputs, "
           "cross entropy",
    "cnn28": "CNN conv5x5(1->16, pad 2)-ReLU-maxpool2-conv5x5(16->32, pad 2)-ReLU-maxpool2-linear(1568->10) "
             "on 28x28 inputs, cross entropy",
}


# ----------------------------------------------------------------------------- methods


def _trace(sq_sum, total_sq, n):
    """``tr C_1`` from ``Σ_n ||g_n||²`` and ``||Σ_n g_n||²`` (python floats)."""
    return sq_sum / n - total_sq / (n * n)


def make_methods(model, X, y, loss_fn, peer_loss, peer_scale, chunk: int = 256, quick: bool = False):
    """``{name: fn() -> tr C_1}``; peers only when importable."""
    import torch
    from torch.func import functional_call, grad, vmap

    from nnphys.gradnoise import gradient_noise

    n = X.shape[0]
    params = [p for p in model.parameters() if p.requires_grad]
    out = {}

    def fwdbwd():
        model.zero_grad(set_to_none=True)
        loss_fn(model(X), y).mean().backward()
        return float("nan")

    out["fwd+bwd"] = fwdbwd
    out["nnphys default"] = lambda: gradient_noise(model, loss_fn, (X, y)).trace_cov
    out["nnphys linear"] = lambda: gradient_noise(model, loss_fn, (X, y), method="linear").trace_cov
    out["nnphys vmap"] = lambda: gradient_noise(model, loss_fn, (X, y), method="vmap",
                                                chunk_size=chunk).trace_cov
    if not quick:
        out["nnphys loop (f64)"] = lambda: gradient_noise(model, loss_fn, (X, y), method="loop").trace_cov

    def plain_loop():
        sq = 0.0
        total = [torch.zeros_like(p) for p in params]
        for i in range(n):
            gs = torch.autograd.grad(loss_fn(model(X[i:i + 1]), y[i:i + 1]).sum(), params)
            sq += float(sum((g * g).sum() for g in gs))
            for t, g in zip(total, gs):
                t += g
        return _trace(sq, float(sum((t * t).sum() for t in total)), n)

    out["plain loop"] = plain_loop

    names = [k for k, p in model.named_parameters() if p.requires_grad]

    def one(p, x, t):
        return loss_fn(functional_call(model, p, (x.unsqueeze(0),)), t.unsqueeze(0)).sum()

    per_sample = vmap(grad(one), in_dims=(None, 0, 0))

    def vmap_grad():
        p = {k: v.detach() for k, v in model.named_parameters()}
        sq = 0.0
        total = {k: torch.zeros_like(p[k]) for k in names}
        for i in range(0, n, chunk):
            g = per_sample(p, X[i:i + chunk], y[i:i + chunk])
            sq += float(sum((g[k] * g[k]).sum() for k in names))
            for k in names:
                total[k] += g[k].sum(0)
        return _trace(sq, float(sum((t * t).sum() for t in total.values())), n)

    out[f"vmap(grad) chunk {chunk}"] = vmap_grad

    try:
        from backpack import backpack, extend
        from backpack.extensions import BatchL2Grad
    except ImportError:
        pass
    else:
        bp_model = extend(copy.deepcopy(model))
        bp_loss = extend(copy.deepcopy(peer_loss))

        def backpack_l2():
            bp_model.zero_grad(set_to_none=True)
            with backpack(BatchL2Grad()):
                bp_loss(bp_model(X), y).backward()
            ps = [p for p in bp_model.parameters() if p.requires_grad]
            sq = float(sum(p.batch_l2.sum() for p in ps))
            tot = float(sum((p.grad * p.grad).sum() for p in ps))
            return peer_scale ** 2 * _trace(sq, tot, n)

        out["BackPACK BatchL2Grad"] = backpack_l2

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from opacus import GradSampleModule
    except ImportError:
        pass
    else:
        op_model = GradSampleModule(copy.deepcopy(model), loss_reduction="sum")

        def opacus_gs():
            op_model.zero_grad(set_to_none=True)
            peer_loss(op_model(X), y).backward()
            ps = [p for p in op_model.parameters() if p.requires_grad]
            sq = float(sum((p.grad_sample.reshape(n, -1) ** 2).sum() for p in ps))
            tot = float(sum((p.grad * p.grad).sum() for p in ps))
            return peer_scale ** 2 * _trace(sq, tot, n)

        out["Opacus GradSampleModule"] = opacus_gs
    return out


def reference_trace(model, X, y, loss_fn) -> float:
    """``tr C_1`` by a float64 per-sample loop on a float64 copy of the model and data."""
    import torch

    m = copy.deepcopy(model).double()
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    params = [p for p in m.parameters() if p.requires_grad]
    n = X.shape[0]
    sq = torch.zeros((), dtype=torch.float64)
    total = [torch.zeros_like(p) for p in params]
    for i in range(n):
        gs = torch.autograd.grad(loss_fn(m(Xd[i:i + 1]), yd[i:i + 1]).sum(), params)
        sq += sum((g * g).sum() for g in gs)
        for t, g in zip(total, gs):
            t += g
    return _trace(float(sq), float(sum((t * t).sum() for t in total)), n)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def bench(kind: str, n: int, threads: list[int], runs: int, quick: bool) -> list[dict]:
    import torch

    from nnphys.gradnoise import gradient_noise

    model, X, y, loss_fn, peer_loss, peer_scale = _setup(kind, n)
    P = sum(p.numel() for p in model.parameters())
    ref = reference_trace(model, X, y, loss_fn)
    auto = gradient_noise(model, loss_fn, (X, y)).method
    print(f"\n## {DESCR[kind]}: P = {P}, N = {n}, float32; default method resolves to {auto!r}; "
          f"float64 reference tr C_1 = {ref:.6g}")
    rows = []
    for th in threads:
        torch.set_num_threads(th)
        # the library's float64 loop (an oracle, not a baseline) only at 1 thread: it takes seconds
        methods = make_methods(model, X, y, loss_fn, peer_loss, peer_scale, quick=quick or th > 1)
        vals = {k: f() for k, f in methods.items()}  # warm-up, and the accuracy check
        ts = {k: [] for k in methods}
        load0 = _load()
        for _ in range(runs):
            for k, f in methods.items():
                t = time.perf_counter()
                f()
                ts[k].append(time.perf_counter() - t)
        med = {k: statistics.median(v) for k, v in ts.items()}
        fb = med["fwd+bwd"]
        print(f"  {th} thread(s), {runs} interleaved runs, load average {load0} -> {_load()} (1/5/15 min)")
        print(f"    {'method':28s} {'median ms':>10s} {'range ms':>17s} {'x fwd+bwd':>10s} {'rel. err':>9s}")
        for k in methods:
            err = abs(vals[k] - ref) / abs(ref) if k != "fwd+bwd" else float("nan")
            lo, hi = min(ts[k]) * 1e3, max(ts[k]) * 1e3
            print(f"    {k:28s} {med[k] * 1e3:10.1f} {lo:8.1f}..{hi:7.1f} {med[k] / fb:10.2f} "
                  f"{'' if k == 'fwd+bwd' else f'{err:9.1e}'}")
            rows.append(dict(model=kind, threads=th, method=k, median_s=med[k], ratio=med[k] / fb,
                             rel_err=err))
        # the default IS one of the library's methods: compare it with every other method
        others = [k for k in methods if k not in ("fwd+bwd", "nnphys default", f"nnphys {auto}")]
        best = min(others, key=lambda k: med[k])
        print(f"    default (= {auto}) / fastest other method ({best}) = "
              f"{med['nnphys default'] / med[best]:.2f}; plain loop / default = "
              f"{med['plain loop'] / med['nnphys default']:.1f}")
    return rows


# ----------------------------------------------------------------------------- memory


def _memory_child(method: str, n: int) -> None:
    """Runs in a subprocess: resets the kernel's peak-RSS counter (``/proc/self/clear_refs``,
    Linux) after setup and prints the growth of the peak (MiB) caused by one call."""
    import torch

    from nnphys.gradnoise import gradient_noise

    torch.set_num_threads(1)
    model, X, y, loss_fn, _, _ = _setup("mlp", n)
    loss_fn(model(X[:2]), y[:2]).sum().backward()  # warm allocator / autograd
    model.zero_grad(set_to_none=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = peak_rss_mib()
    if method == "fwdbwd":
        loss_fn(model(X), y).mean().backward()
    else:
        top = 20 if method == "linear_top20" else 0
        gradient_noise(model, loss_fn, (X, y), batch_size=32, k=top,
                       method="linear" if method.startswith("linear") else method,
                       chunk_size=256 if method == "vmap" else None)
    print(json.dumps(dict(mib=peak_rss_mib() - base)))


def _memory(method: str, n: int) -> float:
    out = subprocess.run([sys.executable, "-m", "benchmarks.gradnoise", "--_child", method, str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["mib"]


def memory(quick: bool) -> None:
    ns = [256, 1024] if quick else [256, 512, 1024, 2048]
    print("\npeak RSS growth of one call, MLP (MiB; fresh subprocess each, VmHWM after clear_refs):")
    print("      N   fwd+bwd   fast(trace)   fast(top-20)   vmap(chunk 256)")
    for n in ns:
        row = [_memory(m, n) for m in ("fwdbwd", "linear", "linear_top20", "vmap")]
        print(f"  {n:5d}  {row[0]:8.1f}  {row[1]:12.1f}  {row[2]:13.1f}  {row[3]:15.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="no float64 library loop; N = 512")
    ap.add_argument("--models", default="cnn,cnn28,mlp")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--memory", action="store_true", help="only the peak-memory sweep")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*[Ff]ull backward hook.*")  # BackPACK / Opacus
    if a._child:
        _memory_child(a._child[0], int(a._child[1]))
        return
    if a.memory:
        memory(a.quick)
        return
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    peers = []
    for mod in ("backpack", "opacus"):
        try:
            __import__(mod)
            peers.append(f"{mod} {sys.modules[mod].__version__ if hasattr(sys.modules[mod], '__version__') else ''}".strip())
        except ImportError:
            pass
    print(f"benchmarks.gradnoise {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"commit {commit}, torch {torch.__version__}, {os.cpu_count()} cores, peers: "
          f"{', '.join(peers) or 'none importable'}; load average {_load()} at start")
    n = a.n or (512 if a.quick else 1024)
    threads = [int(t) for t in a.threads.split(",")]
    for kind in a.models.split(","):
        bench(kind, n, threads, a.runs, a.quick)
    print(f"\nload average {_load()} at the end")


if __name__ == "__main__":
    main()
