"""Benchmark: top-10 Hessian eigenvalues of a 64-512-512-10 ReLU MLP on 2048 digits samples.

Side by side in one run (each measurement in a fresh subprocess, float64, CPU):

1. ``nnphys.curvature.hessian_top(k=10, tol=1e-6)`` (thick-restart Lanczos, double-backward
   products) against PyHessian ``hessian(model, criterion, data=(X, y)).eigenvalues(top_n=10,
   maxIter=100, tol=1e-6)`` (deflated power iteration) and hessian-eigenthings ``lanczos(
   HessianOperator(...), k=10, max_iter=100, tol=1e-6, reorthogonalize=True, which="LA")`` (one
   Lanczos run without restart). Eigenvalue agreement is relative to ours; the residual
   ``||H u - λ u|| / |λ|`` of every method's pairs is recomputed with our operator.
   Dense ``eigh`` does not fit (P = 301,066: the Hessian alone is 725 GB), so a small 64-16-16-10
   MLP (P = 1,482) on the same data checks all three against ``torch.autograd.functional.hessian``
   + ``eigh``.
2. Curvature-vector throughput: our Hessian product (double backward; jvp-of-grad) and GGN
   product against two plain backward passes of the mean loss on the same data.
3. Peak memory: growth of the process's peak RSS (``VmHWM``, reset via ``/proc/self/clear_refs``)
   during the call, after model and data are built.

Each timing is repeated (``--reps``, default 3; the peers ``--peer-reps``) at 1 and 2 threads;
the machine is shared, so we print the range (min..max) over repetitions, of wall time and of
process CPU time (less sensitive to other jobs; at 2 threads it sums both threads). Product
counts do not depend on the load. The peers live only in the benchmark venv
(``/work/venv-curv``, ``--python``); missing peers are reported as such.

    python -m benchmarks.curvature [--quick] [--reps 3] [--python /work/venv-curv/bin/python]
                                   [--sections small,hvp,big,demo,equal,block] [--plan ours:1:3,pyhessian:2:1,...]

4. ``--sections equal``: equal accuracy, in one process per thread count: ours at several
   ``tol`` (and with ``verify=False``) against hessian-eigenthings' Lanczos at several step
   counts, each with its eigenvalue error against ours at ``tol = 1e-10`` and its residuals;
   interleaved rounds (``--equal-reps``), CPU and wall ratios to ours at ``tol = 1e-6``; our
   ``tol`` values take a suffix ``f`` (``verify="fresh"``) or ``v`` (``verify=False``); PyHessian
   (``--pyhessian-tols``) runs in the first round only (minutes per run).
5. ``--sections block``: the cost per vector of a block of b = 4, 8, 16 Hessian-vector products in
   one call (batched double backward through the kept graph; ``vmap`` of ``jvp(grad)``) against
   single products, at the ``--equal-threads`` counts, interleaved rounds: the measurement that
   decides whether a block Lanczos can pay off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._proc import peak_rss_mib

WIDTHS = {"big": (64, 512, 512, 10), "small": (64, 16, 16, 10)}


# ----------------------------------------------------------------------------- setup
def _data(n: int = 2048):
    """All 1797 digits (standardised) plus 251 re-drawn without replacement (seed 0) = 2048 rows."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data - d.data.mean(0)) / (d.data.std(0) + 1e-8)
    extra = np.random.default_rng(0).choice(len(x), n - len(x), replace=False)
    idx = np.concatenate([np.arange(len(x)), extra])
    return torch.tensor(x[idx], dtype=torch.float64), torch.tensor(d.target[idx], dtype=torch.int64)


def _model(kind: str):
    import torch
    from torch import nn

    w = WIDTHS[kind]
    torch.manual_seed(0)
    layers = []
    for a, b in zip(w[:-1], w[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _train(kind: str, path: str, steps: int) -> dict:
    """Full-batch Adam (lr 1e-3, float32, fixed seed) for ``steps`` steps: a mid-training point."""
    import torch
    from torch import nn

    X, y = _data()
    m = _model(kind)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(X.float()), y)
        loss.backward()
        opt.step()
    torch.save(m.state_dict(), path)
    return {"loss": float(loss.detach()), "P": sum(p.numel() for p in m.parameters())}


def _load(kind: str, path: str):
    import torch

    m = _model(kind).double()
    m.load_state_dict({k: v.double() for k, v in torch.load(path).items()})
    return m.eval()


def _per_sample(o, t):
    import torch

    return torch.nn.functional.cross_entropy(o, t, reduction="none")


def _mean(o, t):
    import torch

    return torch.nn.functional.cross_entropy(o, t)


def _reset_peak() -> float:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _peak()


_peak = peak_rss_mib


# ----------------------------------------------------------------------------- workers
def _rel_residuals(model, X, y, vals, vecs):
    """``||H u - λ u|| / |λ|`` with our operator (columns of ``vecs`` normalised first)."""
    import torch
    from nnphys.curvature import CurvatureOperator

    op = CurvatureOperator(model, _per_sample, (X, y))
    out = []
    for i in range(vecs.shape[1]):
        u = vecs[:, i] / vecs[:, i].norm()
        out.append(float((op.matvec(u) - vals[i] * u).norm() / abs(vals[i])))
    return out


def worker(method: str, kind: str, path: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float64)  # the peers draw their vectors in the default dtype
    model = _load(kind, path)
    X, y = _data()
    base = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    res: dict = {"method": method, "threads": threads, "kind": kind}
    if method == "ours":
        from nnphys.curvature import hessian_top

        r = hessian_top(model, _per_sample, (X, y), k=10, tol=1e-6, max_matvec=2000)
        vals, vecs, res["n_matvec"], res["converged"] = r.eigenvalues, r.eigenvectors, r.n_matvec, r.converged
    elif method == "pyhessian":
        from pyhessian import hessian

        ph = sys.modules["pyhessian.hessian"]  # the package re-binds the name `hessian` to the class

        count = [0]
        hvp = ph.hessian_vector_product

        def counted(*args, **kw):  # PyHessian's single-batch product, counted
            count[0] += 1
            return hvp(*args, **kw)

        ph.hessian_vector_product = counted
        h = hessian(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
        ev, evec = h.eigenvalues(maxIter=100, tol=1e-6, top_n=10)
        res["n_matvec"] = count[0]
        vals = torch.tensor(ev)
        vecs = torch.stack([torch.cat([t.reshape(-1) for t in v]) for v in evec], 1).detach()
    elif method == "eigenthings":
        from hessian_eigenthings import HessianOperator, lanczos, supervised_loss

        op = HessianOperator(model, [(X, y)], supervised_loss(torch.nn.CrossEntropyLoss()))
        r = lanczos(op, k=10, max_iter=100, tol=1e-6, reorthogonalize=True, which="LA", seed=0)
        vals, vecs = r.eigenvalues, r.eigenvectors.T
        res["n_matvec"], res["converged"] = int(r.iterations), bool(r.converged.all())
    elif method == "dense":
        from torch.func import functional_call

        names = [k for k, _ in model.named_parameters()]
        ps = tuple(p.detach() for p in model.parameters())
        blocks = torch.autograd.functional.hessian(
            lambda *q: _mean(functional_call(model, dict(zip(names, q)), (X,)), y), ps, vectorize=True)
        sz = [p.numel() for p in ps]
        H = torch.cat([torch.cat([blocks[i][j].reshape(sz[i], sz[j]) for j in range(len(ps))], 1)
                       for i in range(len(ps))], 0)
        ev, U = torch.linalg.eigh(H)
        vals, vecs = ev.flip(0)[:10], U.flip(1)[:, :10]
    else:
        raise SystemExit(f"unknown method {method}")
    res["seconds"] = time.perf_counter() - t0
    res["cpu_seconds"] = time.process_time() - c0
    res["peak_mib"] = _peak() - base
    order = torch.argsort(vals, descending=True)
    vals, vecs = vals[order], vecs[:, order]
    res["eigenvalues"] = vals.tolist()
    res["rel_residuals"] = _rel_residuals(model, X, y, vals, vecs)
    return res


def hvp_worker(kind: str, path: str, threads: int, calls: int, only: str = "all") -> dict:
    """Seconds per product (wall and CPU) and the peak-RSS growth of building and using each
    operator; ``only`` restricts to one product kind, so its peak is measured in a fresh process."""
    import torch
    from nnphys.curvature import CurvatureOperator

    torch.set_num_threads(threads)
    model = _load(kind, path)
    X, y = _data()
    P = sum(p.numel() for p in model.parameters())
    v = torch.randn(P, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = {"threads": threads}

    def timed(fn):
        fn()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            fn()
        cpu.append((time.process_time() - c0) / calls)
        return (time.perf_counter() - t0) / calls

    cpu: list[float] = []

    def two_backward():
        for _ in range(2):
            model.zero_grad()
            _mean(model(X), y).backward()

    out["two_backward"] = timed(two_backward)
    _reset_peak()
    labels = ["two_backward"]
    for label, kw in [("hvp_double_backward", dict(method="double_backward")),
                      ("hvp_jvp", dict(method="jvp")), ("ggn", dict(curvature="ggn"))]:
        if only not in ("all", label):
            continue
        base = _reset_peak()
        op = CurvatureOperator(model, _per_sample, (X, y), **kw)
        out[label] = timed(lambda: op.matvec(v))
        out[label + "_peak_mib"] = _peak() - base
        labels.append(label)
        del op
    out["cpu"] = dict(zip(labels, cpu))
    return out


def _pyhessian(model, X, y, tol: float):
    """PyHessian's top-10 (deflated power iteration, ``maxIter=100``), its products counted."""
    import torch
    from pyhessian import hessian

    ph = sys.modules["pyhessian.hessian"]  # the package re-binds the name `hessian` to the class
    count = [0]
    hvp = ph.hessian_vector_product

    def counted(*args, **kw):
        count[0] += 1
        return hvp(*args, **kw)

    ph.hessian_vector_product = counted
    try:
        h = hessian(model, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
        ev, evec = h.eigenvalues(maxIter=100, tol=tol, top_n=10)
    finally:
        ph.hessian_vector_product = hvp
    vecs = torch.stack([torch.cat([t.reshape(-1) for t in v]) for v in evec], 1).detach()
    return torch.tensor(ev), vecs, count[0]


def equal_worker(kind: str, path: str, threads: int, ours_tols: str, eig_steps: str, reps: int,
                 pyhessian_tols: str = "") -> dict:
    """Equal accuracy, in ONE process: ours at several ``tol`` and hessian-eigenthings' Lanczos at
    several step counts, each run's eigenvalue error against a tight reference (ours at
    ``tol = 1e-10``) and its pairs' relative residuals (recomputed with our operator, untimed).
    Runs are interleaved over ``reps`` rounds so that every configuration sees the same load."""
    import torch

    from nnphys.curvature import hessian_top

    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float64)
    model = _load(kind, path)
    X, y = _data()
    ref = hessian_top(model, _per_sample, (X, y), k=10, tol=1e-10, max_matvec=4000)
    ref_vals = ref.eigenvalues.sort(descending=True).values
    try:
        from hessian_eigenthings import HessianOperator, lanczos, supervised_loss
    except ImportError:
        lanczos = None
    configs = [("ours", t) for t in ours_tols.split(",") if t]  # "1e-6v": verify=False, "1e-6f": "fresh"
    if lanczos is not None:
        configs += [("eigenthings", int(m)) for m in eig_steps.split(",") if m]
    try:
        import pyhessian  # noqa: F401
    except ImportError:
        pyhessian_tols = ""
    configs += [("pyhessian", t) for t in pyhessian_tols.split(",") if t]  # first round only (minutes)

    def run(meth, par):
        if meth == "ours":
            verify = {"v": False, "f": "fresh"}.get(par[-1], True)
            r = hessian_top(model, _per_sample, (X, y), k=10, tol=float(par.rstrip("vf")), max_matvec=4000,
                            verify=verify)
            return r.eigenvalues, r.eigenvectors, r.n_matvec
        if meth == "pyhessian":
            return _pyhessian(model, X, y, float(par))
        op = HessianOperator(model, [(X, y)], supervised_loss(torch.nn.CrossEntropyLoss()))
        r = lanczos(op, k=10, max_iter=par, reorthogonalize=True, which="LA", seed=0)
        return r.eigenvalues, r.eigenvectors.T, par

    out = {"ref_products": ref.n_matvec, "ref": ref_vals.tolist(), "load": [], "rows": {}}
    for rnd in range(reps):
        out["load"].append(os.getloadavg()[0])
        for meth, par in configs:
            if meth == "pyhessian" and rnd:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            vals, vecs, nmv = run(meth, par)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            row = out["rows"].setdefault(f"{meth}:{par}", {"wall": [], "cpu": []})
            row["wall"].append(wall)
            row["cpu"].append(cpu)
            if "err" not in row:
                order = torch.argsort(vals, descending=True)
                vals, vecs = vals[order], vecs[:, order]
                row["products"] = int(nmv)
                row["err"] = float(((vals - ref_vals).abs() / ref_vals.abs()).max())
                row["res"] = max(_rel_residuals(model, X, y, vals, vecs))
    return out


def block_worker(kind: str, path: str, threads: int, reps: int) -> dict:
    """CPU seconds per Hessian-vector product, one process, interleaved rounds: the operator's
    product (double backward through the kept gradient graph), forward-over-reverse
    ``jvp(grad(L))``, and blocks of b vectors in one call (the kept graph with
    ``is_grads_batched=True``; ``vmap`` of the jvp over the tangents): a block method pays off only
    if a block of b costs much less than b single products."""
    import torch
    from torch.func import grad, jvp, vmap

    from nnphys.curvature import CurvatureOperator

    torch.set_num_threads(threads)
    model = _load(kind, path)
    X, y = _data()
    op = CurvatureOperator(model, _per_sample, (X, y))
    V = torch.randn(op.P, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    op.matvec(V[:, 0])  # builds the kept graph
    p, gs = op._graph
    params = list(p.values())
    g_fn = grad(lambda q: op._losses(q, X, y).sum())

    def stacked(b):
        cols = [op.unflatten(V[:, i]) for i in range(b)]
        return {k: torch.stack([c[k] for c in cols]) for k in op.names}

    def batched(b):
        def f():
            go = stacked(b)
            with torch.enable_grad():
                return torch.autograd.grad(gs, params, grad_outputs=[go[k] for k in p], retain_graph=True,
                                           is_grads_batched=True)
        return f

    def vmapped(b):
        return lambda: vmap(lambda t: jvp(g_fn, (op.params,), (t,))[1])(stacked(b))

    hv = batched(4)()  # the batched product against single products
    ref = torch.stack([op.matvec(V[:, i]) for i in range(4)], 1)
    got = torch.stack([torch.cat([h[i].reshape(-1) for h in hv]) for i in range(4)], 1).double() / op.N
    cfg = [("single (operator)", 1, lambda: op.matvec(V[:, 0])),
           ("jvp(grad)", 1, lambda: op._hvp_jvp(op.unflatten(V[:, 0]), X, y))]
    for b in (4, 8, 16):
        cfg += [(f"kept graph, batched b={b}", b, batched(b)), (f"vmap(jvp(grad)) b={b}", b, vmapped(b))]
    for _, _, f in cfg:
        f()
    out = {"batched_rel_err": float((got - ref).norm() / ref.norm()), "load": [], "rows": {}}
    for _ in range(reps):
        out["load"].append(os.getloadavg()[0])
        for name, b, f in cfg:
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            row = out["rows"].setdefault(name, {"cpu": [], "wall": []})
            row["cpu"].append((time.process_time() - c0) / b)
            row["wall"].append((time.perf_counter() - t0) / b)
    return out


# ----------------------------------------------------------------------------- driver
def _spawn(python: str, args: list[str], threads: int) -> dict | None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([python, "-m", "benchmarks.curvature", *args], env=env, capture_output=True, text=True,
                       cwd=str(Path(__file__).resolve().parents[1]))
    if p.returncode != 0:
        print(f"    [{' '.join(args[:2])}] failed: {p.stderr.strip().splitlines()[-1] if p.stderr else p.returncode}")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def _rng(xs) -> str:
    return f"{min(xs):.3g}..{max(xs):.3g}" if xs else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 repetition, peers at 2 threads only")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peer-reps", type=int, default=3, help="repetitions of the peers at 2 threads")
    ap.add_argument("--peer-reps-1t", type=int, default=1,
                    help="repetitions of PyHessian at 1 thread (it takes minutes per run)")
    ap.add_argument("--plan", default="", help="big-model runs as METHOD:THREADS:REPS,... (default: all)")
    ap.add_argument("--sections", default="small,hvp,big,equal", help="comma list of small, hvp, big, demo, equal, block")
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--python", default="/work/venv-curv/bin/python", help="interpreter with the peers")
    ap.add_argument("--worker", nargs=4, metavar=("METHOD", "KIND", "PATH", "THREADS"))
    ap.add_argument("--hvp-worker", nargs=5, metavar=("KIND", "PATH", "THREADS", "CALLS", "ONLY"))
    ap.add_argument("--equal-worker", nargs=7, help=argparse.SUPPRESS)
    ap.add_argument("--block-worker", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--ours-tols", default="1e-6,1e-5,1e-4,1e-6f,1e-6v",
                    help="section equal: our tol values (a trailing v: verify=False; f: verify='fresh')")
    ap.add_argument("--pyhessian-tols", default="1e-3",
                    help="section equal: PyHessian's tol values (first round only: minutes per run)")
    ap.add_argument("--eig-steps", default="20,25,30,40", help="section equal: eigenthings' Lanczos steps")
    ap.add_argument("--equal-reps", type=int, default=3, help="section equal: interleaved rounds")
    ap.add_argument("--equal-threads", default="1", help="section equal: thread counts")
    a = ap.parse_args()
    if a.equal_worker:
        w = a.equal_worker
        print(json.dumps(equal_worker(w[0], w[1], int(w[2]), w[3], w[4], int(w[5]), "" if w[6] == "none" else w[6])))
        return
    if a.block_worker:
        w = a.block_worker
        print(json.dumps(block_worker(w[0], w[1], int(w[2]), int(w[3]))))
        return
    if a.worker:
        print(json.dumps(worker(a.worker[0], a.worker[1], a.worker[2], int(a.worker[3]))))
        return
    if a.hvp_worker:
        print(json.dumps(hvp_worker(a.hvp_worker[0], a.hvp_worker[1], int(a.hvp_worker[2]), int(a.hvp_worker[3]),
                                    a.hvp_worker[4])))
        return
    reps = 1 if a.quick else a.reps
    python = a.python if Path(a.python).exists() else sys.executable
    if not Path(a.python).exists():
        print(f"note: {a.python} not found; peers run only if installed here")
    import torch

    print(f"# benchmarks.curvature  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  torch {torch.__version__}  "
          f"cpu_count {os.cpu_count()}  reps {reps} (shared machine: ranges min..max)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for kind in ("small", "big"):
            paths[kind] = str(Path(tmp) / f"{kind}.pt")
            info = _train(kind, paths[kind], a.train_steps)
            print(f"model {kind} {'-'.join(map(str, WIDTHS[kind]))}: P = {info['P']}, N = 2048, "
                  f"trained {a.train_steps} Adam steps, train CE = {info['loss']:.4f}")

        # --- 1. dense check on the small model
        sections = set(a.sections.split(","))
        if "demo" in sections:  # the printed outlook of docs/curvature.md (small model, 1 thread)
            from nnphys.curvature import escape_outlook, hessian_vs_ggn

            torch.set_num_threads(1)
            m, (X, y) = _load("small", paths["small"]), _data()
            print(escape_outlook(m, _per_sample, (X, y), batch_size=32, lr=0.1, k=10))
            print(hessian_vs_ggn(m, _per_sample, (X, y), k=10, batch_size=32))
        print("\n## small MLP (P = 1482): every method against dense eigh (2 threads)")
        dense = "small" in sections and _spawn(sys.executable, ["--worker", "dense", "small", paths["small"], "2"], 2)
        if dense:
            ref = torch.tensor(dense["eigenvalues"], dtype=torch.float64)
            print(f"  dense eigh: {dense['seconds']:.2f} s (CPU {dense['cpu_seconds']:.2f} s); top-10 = {[f'{v:.6g}' for v in dense['eigenvalues']]}")
            for meth in ("ours", "pyhessian", "eigenthings"):
                r = _spawn(python if meth != "ours" else sys.executable,
                           ["--worker", meth, "small", paths["small"], "2"], 2)
                if r:
                    rel = float(((torch.tensor(r["eigenvalues"], dtype=torch.float64) - ref).abs() / ref.abs()).max())
                    print(f"  {meth:>12}: {r['seconds']:.2f} s (CPU {r['cpu_seconds']:.2f} s), max rel. error vs eigh {rel:.1e}, "
                          f"max rel. residual {max(r['rel_residuals']):.1e}, products {r.get('n_matvec', '-')}", flush=True)

        # --- 3. throughput
        print("\n## curvature-vector products on the big model (per product; 5 calls after a warm-up; "
              "two backward = the fastest of the three processes; peak = RSS growth building + using the operator)")
        for threads in ((1, 2) if "hvp" in sections else ()):
            rs = []
            for _ in range(reps):  # one fresh process per product kind, so each peak is its own
                parts = [_spawn(sys.executable, ["--hvp-worker", "big", paths["big"], str(threads), "5", k], threads)
                         for k in ("hvp_double_backward", "hvp_jvp", "ggn")]
                if all(parts):
                    merged = {**parts[0], **parts[1], **parts[2]}
                    merged["cpu"] = {**parts[0]["cpu"], **parts[1]["cpu"], **parts[2]["cpu"]}
                    merged["two_backward"] = min(p["two_backward"] for p in parts)
                    merged["cpu"]["two_backward"] = min(p["cpu"]["two_backward"] for p in parts)
                    rs.append(merged)
            if not rs:
                continue
            tb = [r["two_backward"] for r in rs]
            line = [f"two backward passes {_rng(tb)} s"]
            cb = [r["cpu"]["two_backward"] for r in rs]
            line[0] += f" (CPU {_rng(cb)} s)"
            for k in ("hvp_double_backward", "hvp_jvp", "ggn"):
                ts = [r[k] for r in rs]
                cs = [r["cpu"][k] for r in rs]
                line.append(f"{k} wall {_rng(ts)} s ({min(ts) / max(tb):.2f}..{max(ts) / min(tb):.2f}x two backward), "
                            f"CPU {_rng(cs)} s ({min(cs) / max(cb):.2f}..{max(cs) / min(cb):.2f}x); "
                            f"peak +{_rng([r[k + '_peak_mib'] for r in rs])} MiB")
            print(f"  {threads} thread(s): " + "; ".join(line), flush=True)

        # --- 5. block products: does a block of b products cost less than b single ones?
        for threads in ((int(t) for t in a.equal_threads.split(",")) if "block" in sections else ()):
            r = _spawn(sys.executable, ["--block-worker", "big", paths["big"], str(threads), str(a.equal_reps)],
                       threads)
            if not r:
                continue
            single = min(r["rows"]["single (operator)"]["cpu"])
            print(f"\n## block products: 64-512-512-10 MLP, {threads} thread(s), one process, {a.equal_reps} "
                  f"interleaved rounds, per-vector cost; batched vs single products rel. diff "
                  f"{r['batched_rel_err']:.1e}; load average (1 min) {[round(v, 2) for v in r['load']]}")
            for name, row in r["rows"].items():
                print(f"  {name:28s} CPU/vector {_rng(row['cpu'])} s ({min(row['cpu']) / single:.2f}x single, min)  "
                      f"wall/vector {_rng(row['wall'])} s", flush=True)

        # --- 4. equal accuracy on the big model, one process per thread count
        for threads in ((int(t) for t in a.equal_threads.split(",")) if "equal" in sections else ()):
            print(f"\n## equal accuracy: 64-512-512-10 MLP, top-10, {threads} thread(s), one process, "
                  f"{a.equal_reps} interleaved rounds; error = max relative eigenvalue error against ours "
                  f"at tol 1e-10, residual = max ||Hu - lu||/|l| (our operator)")
            r = _spawn(python, ["--equal-worker", "big", paths["big"], str(threads), a.ours_tols, a.eig_steps,
                                str(a.equal_reps), a.pyhessian_tols or "none"], threads)
            if not r:
                continue
            print(f"  reference: ours at tol 1e-10, {r['ref_products']} products; load average (1 min) at "
                  f"each round start {[round(v, 2) for v in r['load']]}")
            rows = r["rows"]
            base = rows.get("ours:1e-6")
            for key, row in rows.items():
                meth, par = key.split(":")
                label = (f"ours tol {float(par.rstrip('vf')):.0e}"
                         + {"v": " verify=False", "f": " verify=fresh"}.get(par[-1], "")
                         if meth == "ours" else f"eigenthings {par} steps" if meth == "eigenthings"
                         else f"pyhessian tol {par} (1 round)")
                rat = (f"  {min(row['cpu']) / min(base['cpu']):.2f}x ours(1e-6) CPU (min), "
                       f"{statistics.median(row['wall']) / statistics.median(base['wall']):.2f}x wall (median)") if base else ""
                note = " (10 recompute residuals)" if meth == "ours" and par.endswith("f") else ""
                print(f"  {label:24s} products {row['products']:4d}{note}  error {row['err']:.1e}  residual {row['res']:.1e}  "
                      f"wall {_rng(row['wall'])} s  CPU {_rng(row['cpu'])} s{rat}", flush=True)

        # --- 2. the big model
        print("\n## 64-512-512-10 MLP (P = 301066), top-10, tol 1e-6")
        results: dict = {}
        plan = [("ours", 1, reps), ("ours", 2, reps), ("eigenthings", 2, reps), ("pyhessian", 2, a.peer_reps),
                ("eigenthings", 1, 0 if a.quick else a.peer_reps), ("pyhessian", 1, 0 if a.quick else a.peer_reps_1t)]
        if a.plan:  # METHOD:THREADS:REPS,... (put an "ours" entry first: the others are compared with it)
            plan = [(m, int(t), int(n)) for m, t, n in (e.split(":") for e in a.plan.split(","))]
        for meth, threads, n in (plan if "big" in sections else ()):
            rs = [r for r in (_spawn(python if meth != "ours" else sys.executable,
                                     ["--worker", meth, "big", paths["big"], str(threads)], threads)
                              for _ in range(n)) if r]
            if not rs:
                if n:
                    print(f"  {threads}T {meth:>12}: failed")
                continue
            results[(meth, threads)] = rs
            base = results.get(("ours", threads)) or results.get(("ours", 2))
            ref = torch.tensor(base[0]["eigenvalues"], dtype=torch.float64)
            t_ours = [r["seconds"] for r in base]
            ts = [r["seconds"] for r in rs]
            cs = [r["cpu_seconds"] for r in rs]
            c_ours = [r["cpu_seconds"] for r in base]
            rel = max(float(((torch.tensor(r["eigenvalues"], dtype=torch.float64) - ref).abs() / ref.abs()).max()) for r in rs)
            res = max(max(r["rel_residuals"]) for r in rs)
            ratio = f"{min(ts) / max(t_ours):.2f}..{max(ts) / min(t_ours):.2f}x ours"
            cratio = f"{min(cs) / max(c_ours):.2f}..{max(cs) / min(c_ours):.2f}x"
            print(f"  {threads}T {meth:>12}: wall {_rng(ts)} s ({len(ts)} reps; {ratio}), CPU {_rng(cs)} s ({cratio}), max rel. diff vs ours {rel:.1e}, "
                  f"max rel. residual {res:.1e}, peak +{_rng([r['peak_mib'] for r in rs])} MiB, "
                  f"products {sorted({r.get('n_matvec', '-') for r in rs})}", flush=True)
            if meth == "ours" and threads == 1:
                print(f"     ours top-10: {[f'{v:.6g}' for v in rs[0]['eigenvalues']]}", flush=True)


if __name__ == "__main__":
    main()
