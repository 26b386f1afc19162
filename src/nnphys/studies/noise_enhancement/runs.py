"""What the noise-enhancement jobs compute (called by the ``run`` method of each job kind in
:mod:`nnphys.studies.noise_enhancement.jobs`); every function is a pure function of its job.

The library code is the core package :mod:`nnphys.noise_enhancement` (the NE update, the noise
factor, the minibatch streams, the stacked training loop, the CNN) and :func:`nnphys.data.load_task`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nnphys.data import load_task
from nnphys.errors import ConfigError, Diverged
from nnphys.nets import MLPEnsemble
from nnphys.noise_enhancement import (StackedCNN, effective_batch_size, member_losses, ne_covariance_factor,
                                      ne_update_, per_sample_gram, probe_noise, toy_noise, train_stacked)
from nnphys.seeding import derive

if TYPE_CHECKING:
    from nnphys.studies.noise_enhancement.jobs import ProbeJob, ToyJob, TrainJob


def make_model(task: str, width: int, depth: int, d_in: int, d_out: int, seeds: list[int], device: str,
               dtype=torch.float32):
    """The net of ``task``: the BN-free CNN for CIFAR-10, else a ReLU MLP; one member per seed."""
    if task == "cifar10":
        return StackedCNN(seeds, d_out, dtype=dtype, device=device)
    return MLPEnsemble(len(seeds), d_in, width, depth, d_out, seeds=seeds, dtype=dtype, device=device)


def run_toy(job: "ToyJob") -> dict[str, Any]:
    """The finite-population toy (:func:`nnphys.noise_enhancement.noise.toy_noise`)."""
    gen = torch.Generator().manual_seed(derive(job.seed, "toy"))
    return toy_noise(job.n, job.batch_size, job.draws, list(job.alphas), gen)


def run_train(job: "TrainJob") -> dict[str, Any]:
    """Train one arm's stacked ensemble and read off both budgets (final, 3/4 and best-validation
    checkpoints)."""
    data = load_task(dict(job.data), job.device)
    task, kind, n = job.task, data["kind"], len(data["x_train"])
    seeds, variants, lrs = list(job.seeds), list(job.variants), list(job.lrs)
    # member m = (seed s, variant v, lr) in this order; its data stream is its seed's
    members = [(si, vi, li) for si in range(len(seeds)) for vi in range(len(variants)) for li in range(len(lrs))]
    model = make_model(task, job.width, job.depth, data["x_train"][0].numel(), data["d_out"],
                       [seeds[si] for si, _, _ in members], job.device)
    out = train_stacked(
        model, data, group=[si for si, _, _ in members], seeds=seeds,
        ne_alpha=[float(variants[vi]["alpha"]) for _, vi, _ in members],
        lr=[lrs[li] * job.lr_mult for _, _, li in members],
        warmup_steps=[float(variants[vi]["warmup_steps"]) for _, vi, _ in members],
        batch_size=job.batch_size, ne=job.ne, sampling=job.sampling, tag=f"{task}/{job.arm}",
        total_steps=job.total_steps, eval_steps=list(job.eval_steps), n_eval_train=job.n_eval_train)
    arrays, eval_steps = out["arrays"], [int(s) for s in out["arrays"]["eval_steps"]]

    def at(step: int, keys=("train_loss", "train_error", "val_loss", "val_error", "test_loss", "test_error")):
        j = eval_steps.index(step)
        return {k: arrays[k][:, j].tolist() for k in keys}

    def best_val(step: int) -> list[float]:
        """Test error at the checkpoint (0 < s <= step) with the lowest validation error (never test)."""
        js = [j for j, s in enumerate(eval_steps) if 0 < s <= step]
        val = np.where(np.isfinite(arrays["val_error"][:, js]), arrays["val_error"][:, js], np.inf)
        test, best = arrays["test_error"][:, js], val.argmin(axis=1)
        return [float(test[m, best[m]]) if np.isfinite(val[m, best[m]]) else float("nan") for m in range(len(members))]

    b, per_step = job.batch_size, job.samples_per_step
    member_info = [{"seed": seeds[si], "alpha": float(variants[vi]["alpha"]), "lr": lrs[li],
                    "lr_used": lrs[li] * job.lr_mult, "warmup_steps": variants[vi]["warmup_steps"],
                    "f_alpha": ne_covariance_factor(float(variants[vi]["alpha"])),
                    "b_eff": effective_batch_size(b, float(variants[vi]["alpha"])) if job.ne else float(b)}
                   for si, vi, li in members]
    budgets = {"steps": job.steps_budget, "epochs": job.k_epochs}
    return {
        "task": task, "arm": job.arm, "kind": kind, "n_train": n, "batch_size": b,
        "samples_per_step": per_step, "members": member_info, "optimizer_steps": out["optimizer_steps"],
        "budgets": budgets, "samples_at": {k: v * per_step for k, v in budgets.items()},
        "epochs_at": {k: v * per_step / n for k, v in budgets.items()},
        "epochs_at_counting_B": {k: v * b / n for k, v in budgets.items()},
        "final": {k: at(v) for k, v in budgets.items()},
        "train_loss_3q": {k: at(round(0.75 * v), ("train_loss",))["train_loss"] for k, v in budgets.items()},
        "val_error_3q": {k: at(round(0.75 * v), ("val_error",))["val_error"] for k, v in budgets.items()},
        "best_val_test_error": {k: best_val(v) for k, v in budgets.items()},
        "diverged": out["diverged"], "died_at": out["died_at"], "mean_batch_loss": out["mean_batch_loss"],
        "arrays": arrays,
    }


def run_probe(job: "ProbeJob") -> dict[str, Any]:
    """Noise factor of NE on the task's net at a trained point (C1, C2 nets;
    :func:`nnphys.noise_enhancement.noise.probe_noise`)."""
    device = job.device
    data = load_task(dict(job.data), device)
    kind = data["kind"]
    n = min(len(data["x_train"]), job.max_n)
    x, y = data["x_train"][:n].double(), data["y_train"][:n]
    y = y.double() if kind == "regression" else y
    b = job.batch_size
    if not 2 * b <= n:
        raise ConfigError("batch_large", f"the probe needs 2 B_l <= N = {n} (got B_l={b})")
    model = make_model(job.task, job.width, job.depth, x.shape[1], data["d_out"], [job.seed], device,
                       dtype=torch.float64)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(derive(job.seed, "probe-train"))
    for _ in range(job.train_steps):  # plain SGD at B_s, float64: a realistic point of training
        idx = torch.randint(0, n, (job.train_batch,), generator=g).to(device)
        grads = torch.autograd.grad(member_losses(model(x[idx]), y[idx], kind).sum(), params)
        ne_update_(params, grads, grads, job.lr, 0.0)
    Kg, losses = per_sample_gram(model, x, y, kind)
    if not bool(torch.isfinite(Kg).all()):
        raise Diverged(f"the probe's SGD pre-training diverged (lr={job.lr}, {job.train_steps} steps)")
    gen = torch.Generator().manual_seed(derive(job.seed, "probe-draws", job.sampling))
    res = probe_noise(Kg, b, job.draws, job.sampling, list(job.alphas), job.bootstrap, gen)
    return {"task": job.task, "train_loss": float(losses.mean()), **res}
