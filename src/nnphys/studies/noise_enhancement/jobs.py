"""The noise-enhancement study's jobs: one frozen dataclass per kind and the planner :func:`jobs`.

- :class:`ToyJob` (``toy``): the finite-population toy of the noise factor (C1, C2 toy cells);
- :class:`ProbeJob` (``probe``): the exact Monte Carlo of the noise factor on one task's MLP at a
  trained point (C1, C2 net cells);
- :class:`TrainJob` (``train``): one training arm on one task, every seed x variant x learning rate
  as one stacked ensemble, run ``max(K, K_E)`` steps and evaluated at both budgets (C3-C9).

The computations are in :mod:`nnphys.studies.noise_enhancement.runs`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from nnphys.errors import ConfigError
from nnphys.studies.job import Job
from nnphys.studies.noise_enhancement.spec import TASK_WIDTH, Spec


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyJob(Job):
    """The finite-population toy: scalar per-sample gradients, ``n`` rows, batches of ``batch_size``,
    ``draws`` draws per sampling mode, every alpha of ``alphas``."""

    KIND: ClassVar[str] = "toy"
    n: int
    batch_size: int
    draws: int
    alphas: tuple[float, ...]
    seed: int

    def run(self) -> dict[str, Any]:
        from nnphys.studies.noise_enhancement.runs import run_toy

        return run_toy(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeJob(Job):
    """The noise factor of NE on ``task``'s MLP (``width`` x ``depth``) after ``train_steps`` SGD steps
    at ``train_batch`` and ``lr``: ``draws`` minibatch pairs of ``batch_size`` in ``sampling`` mode on
    the first ``max_n`` training rows, a ``bootstrap``-resample CI, every alpha of ``alphas``."""

    KIND: ClassVar[str] = "probe"
    task: str
    data: dict[str, Any]  # the nnphys.data.load_task description
    width: int
    depth: int
    seed: int
    batch_size: int
    alphas: tuple[float, ...]
    sampling: str
    draws: int
    bootstrap: int
    train_steps: int
    train_batch: int
    lr: float
    max_n: int

    def run(self) -> dict[str, Any]:
        from nnphys.studies.noise_enhancement.runs import run_probe

        return run_probe(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainJob(Job):
    """One training arm on one task: ``seeds`` x ``variants`` (``{"alpha", "warmup_steps"}``) x ``lrs``
    as one stacked ensemble at batch size ``batch_size`` (``samples_per_step`` samples per step: NE
    draws two batches), run ``total_steps`` steps, evaluated at ``eval_steps``; ``steps_budget`` (K)
    and ``k_epochs`` (the step count of ``epochs_budget`` epochs) are the two budgets."""

    KIND: ClassVar[str] = "train"
    task: str
    arm: str
    data: dict[str, Any]  # the nnphys.data.load_task description
    width: int
    depth: int
    seeds: tuple[int, ...]
    variants: tuple[dict[str, Any], ...]
    lrs: tuple[float, ...]
    lr_mult: float
    batch_size: int
    samples_per_step: int
    ne: bool
    sampling: str
    steps_budget: int
    epochs_budget: float
    k_epochs: int
    total_steps: int
    eval_steps: tuple[int, ...]
    n_eval_train: int

    def run(self) -> dict[str, Any]:
        from nnphys.studies.noise_enhancement.runs import run_train

        return run_train(self)


def task_size(spec: Spec, task: str) -> int:
    """``n_train`` as known before loading (for the budgets; checked again in run)."""
    return {"digits": 1797 - spec.digits_n_test - spec.digits_n_val, "mnist1d": spec.mnist1d_n_train,
            "mnist1d_small": spec.mnist1d_small_n_train, "depth_locality": spec.t3_n_train,
            "fashion_mnist": 60000 - spec.paper_n_val}.get(task, 50000 - spec.paper_n_val)


def data_params(spec: Spec, task: str) -> dict[str, Any]:
    """The :func:`nnphys.data.load_task` description of ``task``."""
    p: dict[str, Any] = {"task": "mnist1d" if task == "mnist1d_small" else task, "data_seed": spec.data_seed}
    if task == "digits":
        p.update(n_val=spec.digits_n_val, n_test=spec.digits_n_test)
    elif task in ("mnist1d", "mnist1d_small"):
        p.update(n_train=task_size(spec, task), n_val=spec.mnist1d_n_val, n_test=spec.mnist1d_n_test)
    elif task == "depth_locality":
        p.update(d=spec.t3_d, k=spec.t3_k, target=spec.t3_target, law=spec.t3_law,
                 n_train=spec.t3_n_train, n_val=spec.t3_n_val, n_test=spec.t3_n_test)
    else:
        p.update(root=spec.data_root, n_val=spec.paper_n_val)
    return p


def arm_batch(spec: Spec, arm: str) -> tuple[int, int]:
    """``(B, samples per step)`` of an arm: S ``B_s``; S_half ``B_s // 2``; S_double ``2 B_s``; L, LS ``B_l``;
    NE ``B_l`` twice; L2 ``2 B_l``."""
    bs, bl = spec.batch_small, spec.batch_large
    return {"S": (bs, bs), "S_half": (max(1, bs // 2),) * 2, "S_double": (2 * bs, 2 * bs), "L": (bl, bl), "LS": (bl, bl), "NE": (bl, 2 * bl),
            "L2": (2 * bl, 2 * bl)}[arm]


def jobs(spec: Spec) -> list[Job]:
    """One toy job (C1, C2 toy), one noise probe per MLP task (C1, C2 nets), one training job per
    (task, arm), each holding every seed x variant x learning rate as one ensemble."""
    out: list[Job] = [ToyJob(n=200, batch_size=20, draws=spec.toy_draws,
                             alphas=tuple(sorted({0.5, 1.0, 2.0, round(spec.match_alpha, 12), *spec.alphas})),
                             seed=spec.seed)]
    for task in spec.tasks:
        n_train = task_size(spec, task)
        width = spec.width or TASK_WIDTH.get(task, 0)
        if 2 * spec.batch_large > n_train:
            raise ConfigError("batch_large", f"2 B_l must be <= the {task} training size {n_train} (got B_l={spec.batch_large})")
        if task != "cifar10":
            lrs = spec.lrs(task)
            out.append(ProbeJob(
                task=task, data=data_params(spec, task), width=width, depth=spec.depth, seed=spec.seed,
                batch_size=spec.batch_large, alphas=tuple(spec.ne_alphas), sampling=spec.ne_sampling,
                draws=spec.probe_draws, bootstrap=spec.probe_bootstrap, train_steps=spec.probe_train_steps,
                train_batch=spec.batch_small, lr=sorted(lrs)[len(lrs) // 2], max_n=spec.probe_max_n))
        for arm in spec.arms:
            b, per_step = arm_batch(spec, arm)
            k_epochs = max(1, round(spec.epochs * n_train / per_step))
            total = max(spec.steps, k_epochs)
            marks = {spec.steps, k_epochs, round(0.75 * spec.steps), round(0.75 * k_epochs)}  # plateau checks
            grid = {int(round(v)) for v in np.linspace(0, total, spec.n_curve + 1)}
            if arm == "NE":
                variants = [{"alpha": a, "warmup_steps": 0} for a in spec.ne_alphas]
            elif arm == "LS":
                wu = max(1, round(spec.ls_warmup_epochs * n_train / b)) if spec.ls_warmup_epochs > 0 else 0
                variants = [{"alpha": 0.0, "warmup_steps": 0}] + ([{"alpha": 0.0, "warmup_steps": wu}] if wu else [])
            else:
                variants = [{"alpha": 0.0, "warmup_steps": 0}]
            out.append(TrainJob(
                task=task, arm=arm, data=data_params(spec, task), width=width, depth=spec.depth,
                seeds=tuple(spec.seeds), variants=tuple(variants), lrs=tuple(spec.lrs(task)),
                lr_mult=spec.batch_large / spec.batch_small if arm == "LS" else 1.0,
                batch_size=b, samples_per_step=per_step, ne=arm == "NE", sampling=spec.ne_sampling,
                steps_budget=spec.steps, epochs_budget=spec.epochs, k_epochs=k_epochs, total_steps=total,
                eval_steps=tuple(sorted(grid | marks)), n_eval_train=spec.n_eval_train))
    return out
