"""Train a stacked ensemble with SGD or noise-enhanced SGD, every member on its own data stream.

One call trains ``M`` members (seeds x variants x learning rates of one training arm) held in
stacked tensors (:class:`nnphys.nets.MLPEnsemble` or
:class:`~nnphys.noise_enhancement.convnet.StackedCNN`), updated by
:func:`~nnphys.noise_enhancement.optimizer.ne_update_` with a per-member noise multiplier (the NE
paper's α) and learning rate. Member ``m`` reads the minibatches of its seed group ``group[m]``
(:class:`~nnphys.noise_enhancement.sampling.PairSampler`), so it follows the trajectory it would
follow alone.

Divergence (the study guide ``docs/studies/noise-enhancement.md``, "Protocol"): a member whose loss on the fixed training rows is
non-finite or above 10x its initial value at an evaluation, or whose batch loss turns non-finite
between evaluations, is frozen (learning rate 0, its loss masked out of the summed objective so
its nan cannot poison the others) and reported; when every member dies :class:`~nnphys.errors.Diverged`
is raised.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nnphys.errors import Diverged
from nnphys.noise_enhancement.optimizer import ne_update_
from nnphys.noise_enhancement.sampling import PairSampler

__all__ = ["member_losses", "member_errors", "evaluate", "train_stacked"]


def member_losses(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-member mean loss ``(M,)`` of outputs ``(M, b, d_out)`` and targets ``(M, b)`` or ``(b,)``:
    cross-entropy (``classification``) or squared error of output 0 (``regression``)."""
    m, b = out.shape[0], out.shape[1]
    y = y.expand(m, b) if y.dim() == 1 else y
    if kind == "regression":
        return ((out[..., 0] - y) ** 2).mean(1)
    return torch.nn.functional.cross_entropy(out.reshape(m * b, -1), y.reshape(-1), reduction="none").view(m, b).mean(1)


def member_errors(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-member error ``(M,)``: misclassification rate, or MSE for regression."""
    if kind == "regression":
        return ((out[..., 0] - y) ** 2).mean(1)
    return (out.argmax(-1) != y).float().mean(1)


def evaluate(model, data: dict[str, Any], n_eval_train: int) -> dict[str, torch.Tensor]:
    """``{split}_loss`` and ``{split}_error`` ``(M,)`` on the first ``n_eval_train`` training rows,
    the validation and the test set of ``data`` (keys ``x_train``, ``y_train``, ..., ``kind``)."""
    kind = data["kind"]
    out = {}
    for split, xs, ys in (("train", data["x_train"][:n_eval_train], data["y_train"][:n_eval_train]),
                          ("val", data["x_val"], data["y_val"]), ("test", data["x_test"], data["y_test"])):
        f = model.predict(xs)
        out[f"{split}_loss"] = member_losses(f, ys, kind)
        out[f"{split}_error"] = member_errors(f, ys, kind)
    return out


def train_stacked(model, data: dict[str, Any], *, group: list[int], seeds: list[int], ne_alpha: list[float],
                  lr: list[float], warmup_steps: list[float], batch_size: int, ne: bool, sampling: str,
                  tag: str, total_steps: int, eval_steps: list[int], n_eval_train: int) -> dict[str, Any]:
    """Train ``model``'s ``M`` members for ``total_steps`` steps; evaluate at ``eval_steps``.

    ``group[m]``: member ``m``'s index into ``seeds`` (its data stream, seeded by
    ``derive(seeds[g], tag + "/<mode>")``); ``ne_alpha`` (the NE noise multiplier, the paper's α in
    ``g_NE = (1 + α) g_B - α g_B'``), ``lr``, ``warmup_steps``: ``M`` values (``ne_alpha = 0`` with
    ``ne=False`` is SGD; a warmup ramps the lr linearly over its steps). Not to be confused with the
    lazy-training scale of :func:`nnphys.train.train_ensemble`.
    NE draws two batches of ``batch_size`` per step in ``sampling`` mode.

    Returns ``arrays`` (``eval_steps`` and every ``evaluate`` key as ``(M, n_eval)``, nan after a
    member died), ``diverged`` (M bools), ``died_at`` (step or -1), ``optimizer_steps`` and
    ``mean_batch_loss`` (per member, over the steps it was alive).
    """
    device = data["x_train"].device
    xtr, ytr, kind = data["x_train"], data["y_train"], data["kind"]
    n, M = len(xtr), len(group)
    gidx = torch.tensor(group, device=device)
    params = list(model.parameters())
    f32 = params[0].dtype
    alpha_t = torch.tensor(ne_alpha, dtype=f32, device=device)
    lr_target = torch.tensor(lr, dtype=f32, device=device)
    warm = torch.tensor(warmup_steps, dtype=f32, device=device)
    sampler = PairSampler(n, batch_size, ne, sampling, seeds, tag, str(device))
    x_shape = xtr.shape[1:]
    alive = torch.ones(M, dtype=torch.bool, device=device)

    def grads(idx: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        rows = idx[gidx]  # (M, b)
        out = model(xtr[rows.reshape(-1)].view(M, rows.shape[1], *x_shape))
        losses = member_losses(out, ytr[rows], kind)
        g = torch.autograd.grad(torch.where(alive, losses, 0.0).sum(), params)
        return g, losses.detach()

    eval_steps = sorted(set(eval_steps))
    eval_set = set(eval_steps)
    any_dead = False
    curves: dict[str, list[torch.Tensor]] = {}
    init_loss = None
    died_at = torch.full((M,), -1, dtype=torch.long, device=device)
    n_updates = 0
    batch_loss_sum = torch.zeros(M, dtype=torch.float64, device=device)
    for t in range(total_steps + 1):
        if t in eval_set:
            ev = evaluate(model, data, n_eval_train)
            if init_loss is None:
                init_loss = ev["train_loss"].clone()
            bad = ~torch.isfinite(ev["train_loss"]) | (ev["train_loss"] > 10 * init_loss)
            died_at = torch.where(bad & alive, torch.full_like(died_at, t), died_at)
            alive = alive & ~bad
            any_dead = any_dead or bool((~alive).any())
            for k, v in ev.items():
                curves.setdefault(k, []).append(torch.where(alive, v, float("nan")))
        if t == total_steps:
            break
        ia, ib = sampler.next()
        ga, la = grads(ia)
        gb = grads(ib)[0] if ib is not None else ga
        bad = ~torch.isfinite(la)
        newly = bad & alive
        died_at = torch.where(newly, torch.full_like(died_at, t), died_at)
        alive = alive & ~bad
        any_dead = any_dead or bool(newly.any())
        ramp = torch.where(warm > 0, torch.clamp((t + 1) / warm.clamp_min(1), max=1.0), torch.ones_like(warm))
        lr_t = torch.where(alive, lr_target * ramp, torch.zeros_like(ramp))
        if any_dead:  # a dead member's gradients may be nan; its lr is ~0, keep the others clean
            ga = [torch.nan_to_num(g) for g in ga]
            gb = [torch.nan_to_num(g) for g in gb] if ib is not None else ga
        ne_update_(params, ga, gb, lr_t.clamp_min(1e-30), alpha_t, check=False)
        n_updates += 1
        batch_loss_sum += torch.where(alive, la, 0.0).double()
    if not bool(alive.any()):
        raise Diverged(f"every member diverged ({M} members)", metrics={"died_at": died_at.tolist()})
    arrays = {"eval_steps": np.array(eval_steps, dtype=np.int64)}
    for k, v in curves.items():
        arrays[k] = torch.stack(v, dim=1).double().cpu().numpy()  # (M, n_eval)
    return {"arrays": arrays, "diverged": (~alive).tolist(), "died_at": died_at.tolist(),
            "optimizer_steps": n_updates, "mean_batch_loss": (batch_loss_sum / max(n_updates, 1)).tolist()}
