"""The computations of study ``depth-locality``'s jobs (the typed jobs of :mod:`.jobs`).

``run_net``: one stacked ensemble (seeds x learning rates) of FC ReLU nets trained by SGD;
``run_kernel``: analytic NTK/NNGP ridgeless regression on the nets' data sets;
``run_blind``: the C5 locality-blindness check on many small data sets (the guide's "Jobs" section).
Each is a pure function of its job; every seed it uses is in the job (planned with
:func:`nnphys.seeding.derive` from labels by :func:`.jobs.jobs`).
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from nnphys.errors import Diverged

if TYPE_CHECKING:  # the job types (jobs.py imports this module for their run methods)
    from nnphys.studies.depth_locality.jobs import BlindJob, KernelJob, NetJob, SeedGridJob


def _datasets(job: SeedGridJob, target: str, n_val: int):
    import torch

    from nnphys.targets import make_dataset

    return [make_dataset(job.n, job.n_test, job.d, job.k, target=target, law=job.law,
                         variant=job.target_kind, seed=s, n_val=n_val, block_start=job.block_start,
                         norm=job.global_norm, tie_break=job.tie_break, dtype=torch.float64)
            for s in job.data_seeds]


def _permute(x, seed: int | None):
    """One fixed permutation of the coordinates (control X2); ``seed=None``: identity."""
    if seed is None:
        return x
    import torch

    perm = torch.randperm(x.shape[-1], generator=torch.Generator().manual_seed(seed))
    return x[..., perm.to(x.device)]


def _trivial_err(job: SeedGridJob, target: str, ds) -> float:
    """Error of the best constant predictor: 1 for normalised MSE, min(p, 1-p) for sign labels."""
    if job.target_kind == "regression":
        return 1.0
    if job.law == "cube":
        from nnphys.targets import label_stats

        tb = 1.0 if job.tie_break is None else job.tie_break
        return label_stats(job.d, job.k, target, tie_break=tb)["trivial_error"]
    return float(ds.info.get("trivial_error_test", 0.5))


def run_net(job: NetJob) -> dict[str, Any]:
    """Train every seed x lr of one (variant, target, k, N, L, H, alpha) as one ensemble; metrics per seed
    at the selected lr (:func:`nnphys.train.select_lr`). Raises :class:`Diverged` if every member did."""
    import torch

    from nnphys.nets import MLPEnsemble, param_count
    from nnphys.train import select_lr, train_ensemble

    t0 = time.perf_counter()
    dev = torch.device(job.device)
    lrs = list(job.lrs)
    n_s, n_lr = len(job.data_seeds), len(lrs)
    n_val = job.n_val
    dss = _datasets(job, job.target, n_val)
    f32 = torch.float32

    def stack(attr: str) -> torch.Tensor:
        return torch.stack([getattr(ds, attr) for ds in dss for _ in range(n_lr)]).to(dev, f32)

    ps = job.permute_seed
    x_tr = _permute(stack("x_train"), ps)
    y_tr = stack("y_train")
    x_ev = _permute(torch.cat([stack("x_val"), stack("x_test")], dim=1), ps)
    y_ev = torch.cat([stack("y_val"), stack("y_test")], dim=1)
    model = MLPEnsemble(n_s * n_lr, job.d, job.width, job.depth, param=job.param, bias=job.bias,
                        init=job.init, sigma_w=math.sqrt(job.sigma_w2), sigma_b=math.sqrt(job.sigma_b2),
                        seeds=job.init_seeds, dtype=f32, device=dev)
    w1_0 = model.weights[0].detach().clone()
    n_kta = min(job.kta_points, job.n)
    model_0 = copy.deepcopy(model) if n_kta else None
    res = train_ensemble(
        model, x_tr, y_tr, lr=[lr for _ in range(n_s) for lr in lrs], batch_size=job.batch_size,
        loss=job.loss, labels=job.target_kind == "sign", max_epochs=job.max_epochs,
        stop_nmse=job.stop_nmse, stop_loss=job.stop_loss, lazy_scale=job.alpha, center=job.center,
        order_seeds=job.order_seeds, x_test=x_ev, y_test=y_ev, keep_pred=True)
    # C6 evidence: relative movement of the first-layer weights, ||W1 - W1_0|| / ||W1_0|| per member
    w1_move = ((model.weights[0].detach() - w1_0).flatten(1).norm(dim=1) / w1_0.flatten(1).norm(dim=1)).double().cpu()
    pred = res.pred_test[..., 0].double()  # (M, n_val + n_test)
    y = y_ev.double().cpu()
    div = res.diverged

    def metrics(p: torch.Tensor, yy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nmse = ((p - yy) ** 2).mean(1) / yy.var(1, unbiased=False)
        serr = ((p >= 0) != (yy >= 0)).double().mean(1)
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        return torch.where(div, nan, nmse), torch.where(div, nan, serr)

    te_nmse, te_serr = metrics(pred[:, n_val:], y[:, n_val:])
    sign = job.target_kind == "sign"
    err_all = (te_serr if sign else te_nmse).view(n_s, n_lr)
    divm = div.view(n_s, n_lr)
    if n_lr > 1:
        va_nmse, va_serr = metrics(pred[:, :n_val], y[:, :n_val])
        val = (va_serr if sign else va_nmse).view(n_s, n_lr)
        best, rule = select_lr(val, divm, res.reached.view(n_s, n_lr))
        val_err = val[:, best].tolist()
    else:
        best, val_err = 0, [float("nan")] * n_s
        rule = "clean" if not bool(divm.any()) else "all_lrs_have_diverged_seeds"
    sel = [s * n_lr + best for s in range(n_s)]
    kta = {}
    if n_kta and not bool(div.all()):
        kta = {"kta_init": _alignment(model_0, x_tr, y_tr, sel, n_kta),
               "kta_trained": _alignment(model, x_tr, y_tr, sel, n_kta)}
    if bool(div.all()):
        raise Diverged(f"every member diverged (lrs={lrs})",
                       metrics={"lr_grid": lrs, "epochs": res.epochs.tolist()})
    P = param_count(job.d, job.width, job.depth, 1, job.bias)
    info = [ds.info for ds in dss]
    return {
        "err": err_all[:, best].tolist(),
        "test_nmse": te_nmse.view(n_s, n_lr)[:, best].tolist(),
        "test_sign_err": te_serr.view(n_s, n_lr)[:, best].tolist(),
        "val_err": val_err,
        "train_loss": res.train_loss[sel].tolist(),
        "train_nmse": res.train_nmse[sel].tolist(),
        "train_acc": res.train_acc[sel].tolist(),
        "epochs": res.epochs[sel].tolist(),
        "steps": res.steps[sel].tolist(),
        "reached": res.reached[sel].tolist(),
        "diverged": res.diverged[sel].tolist(),
        "stop_reason": [res.stop_reason[i] for i in sel],
        "w1_rel_change": w1_move[sel].tolist(),
        **kta, "kta_points": n_kta,
        "lr": lrs[best], "lr_index": best, "lr_rule": rule,
        "grid_err_mean": [float(np.nanmean(err_all[:, i].numpy())) if not bool(divm[:, i].all()) else float("nan")
                          for i in range(n_lr)],
        "grid_diverged": divm.sum(0).tolist(),
        "n_params": P, "p_over_n": P / job.n,
        "trivial_err": [_trivial_err(job, job.target, ds) for ds in dss],
        "n_dup_train_pairs": [i["n_dup_train_pairs"] for i in info],
        "n_test_in_train": [i["n_test_in_train"] for i in info],
        "tie_rate_train": [i["tie_rate_train"] for i in info],
        "wall_s": time.perf_counter() - t0,
        "arrays": {"history": res.history[sel].numpy()},
    }


def _alignment(model, x, y, members: list[int], n: int) -> list[float]:
    """C6 evidence: kernel-target alignment (``nnphys.ntk.kernel_target_alignment``) of member ``m``'s
    empirical NTK on its first ``n`` training points, for each ``m`` in ``members`` (nan if diverged)."""
    import torch

    from nnphys.ntk import empirical_ntk, kernel_target_alignment

    nets = model.to_modules()
    out = []
    for m in members:
        k = empirical_ntk(nets[m], x[m, :n])
        out.append(kernel_target_alignment(k, y[m, :n]) if bool(torch.isfinite(k).all()) else float("nan"))
    return out


def _kernel_err(pred, y, sign: bool) -> float:
    if sign:
        return float(((pred >= 0) != (y >= 0)).double().mean())
    return float(((pred - y) ** 2).mean() / y.var(unbiased=False))


def _kernel_kw(job: KernelJob | BlindJob) -> dict[str, Any]:
    return dict(depth=max(job.depths), sigma_w=math.sqrt(job.sigma_w2), sigma_b=math.sqrt(job.kernel_sigma_b2),
                bias=job.bias, param="ntk", get=("ntk", "nngp"), all_depths=True)


def run_kernel(job: KernelJob) -> dict[str, Any]:
    """NTK and NNGP ridgeless regression on the nets' data sets, every depth from one pass."""
    import torch

    from nnphys.ntk import kernel_regression, ntk_kernel

    t0 = time.perf_counter()
    dev = torch.device(job.device)
    depths = list(job.depths)
    kw = _kernel_kw(job)
    sign = job.target_kind == "sign"
    errs: dict[tuple[str, str], list] = {(kern, tgt): [] for kern in ("ntk", "nngp") for tgt in ("local", "global")}
    jit: list[float] = []
    for ds_loc, ds_glob in zip(_datasets(job, "local", 0), _datasets(job, "global", 0)):
        x_tr = _permute(ds_loc.x_train.to(dev), job.permute_seed)
        x_te = _permute(ds_loc.x_test.to(dev), job.permute_seed)
        Y = torch.stack([ds_loc.y_train, ds_glob.y_train], 1).to(dev)
        Yt = torch.stack([ds_loc.y_test, ds_glob.y_test], 1).cpu()
        ktr = ntk_kernel(x_tr, **kw)
        kte = ntk_kernel(x_te, x_tr, **kw)
        for kern, ktr_k, kte_k in (("ntk", ktr[0], kte[0]), ("nngp", ktr[1], kte[1])):
            rows: dict[str, list[float]] = {"local": [], "global": []}
            for L in depths:
                r = kernel_regression(ktr_k[L], kte_k[L], Y)
                jit.append(r.jitter_rel)
                p = r.pred.cpu()
                rows["local"].append(_kernel_err(p[:, 0], Yt[:, 0], sign))
                rows["global"].append(_kernel_err(p[:, 1], Yt[:, 1], sign))
            for tgt in rows:
                errs[(kern, tgt)].append(rows[tgt])
    out: dict[str, Any] = {f"{kern}_{tgt}": v for (kern, tgt), v in errs.items()}  # (n_seeds, n_depths)
    out["depths"] = depths
    out["max_rel_jitter"] = max(jit) if jit else None
    out["wall_s"] = time.perf_counter() - t0
    return out


def run_blind(job: BlindJob) -> dict[str, Any]:
    """C5: NTK/NNGP ridgeless test MSE of the k-local and k-global targets on many data sets.

    The error is the raw test MSE (both targets have E f^2 = 1), an unbiased estimate of the
    population error, which is equal for both targets in expectation over data sets (the guide's
    "Definitions", kernels).
    """
    import torch

    from nnphys.ntk import kernel_regression, ntk_kernel
    from nnphys.targets import k_global, k_local, sample_inputs

    t0 = time.perf_counter()
    dev = torch.device(job.device)
    depths = list(job.depths)
    k, d, n, nt = job.k, job.d, job.n, job.n_test
    kw = _kernel_kw(job)
    mse = np.zeros((len(job.dataset_seeds), 2, len(depths), 2))  # (dataset, kernel, depth, target)
    for i, s in enumerate(job.dataset_seeds):
        g = torch.Generator().manual_seed(s)
        x = sample_inputs(n + nt, d, job.law, g).to(dev)
        y = torch.stack([k_local(x, k), k_global(x, k)], 1)
        xtr, xte, ytr, yte = x[:n], x[n:], y[:n], y[n:]
        ktr = ntk_kernel(xtr, **kw)
        kte = ntk_kernel(xte, xtr, **kw)
        for a in range(2):
            for j, L in enumerate(depths):
                p = kernel_regression(ktr[a][L], kte[a][L], ytr).pred
                mse[i, a, j] = ((p - yte) ** 2).mean(0).cpu().numpy()
    return {"n_datasets": len(job.dataset_seeds), "depths": depths, "wall_s": time.perf_counter() - t0,
            "arrays": {"mse": mse}}
