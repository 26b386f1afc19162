"""The paper's Fig. 1 on digits, vectorised over seeds (and weight decays): one tensor op per step
for the whole ensemble, no Python loop over members.

- :func:`tanh_first_epoch` (Fig. 1 left; claims C15, C15f): a two-layer tanh net
  ``f(x) = W2 tanh(W1 x + b1) + b2`` (standard parameterisation, ``W ~ N(0, 1/fan_in)``, zero
  biases) trained by plain SGD on the mean-squared error to one-hot labels,
  ``L = (1/2)·mean over the batch and the 10 outputs of (f - y)^2``, for one epoch; every member
  has its own learning rate, initial weights and minibatch order. The minibatch loss of every step
  (before its update) is recorded: the paper's "variance of the training loss over the first
  epoch" is their variance over the steps of the epoch.
- :func:`logreg_sweep` (Fig. 1 right; claim C16): multinomial logistic regression (softmax,
  cross-entropy, a bias column), SGD with weight decay ``w <- w - λ(∇L_B(w) + γ w)``, from ``w = 0``,
  every (γ, seed) a member; the test loss and error at the end.

Inputs are digits pixels divided by 16 (so in [0, 1], as MNIST's pixels in the paper), not
standardised [default]; the split is ``nnphys.data``'s rule (the first ``n_test`` rows of a seeded
permutation are held out). Float64 throughout (the oracle tests compare to a per-member loop).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from nnphys.seeding import derive

N_CLASSES = 10


def digits_pixels(n_train: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: digits pixels / 16 (``(n, 64)`` float64 in [0, 1]),
    labels int64; the first ``1797 - n_train`` rows of ``permutation(seed)`` are the test set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.data.astype(np.float64) / 16.0, d.target.astype(np.int64)
    if not 0 < n_train < len(x):
        raise ValueError(f"n_train must lie in [1, {len(x) - 1}] (got {n_train})")
    perm = np.random.default_rng(seed).permutation(len(x))
    te, tr = perm[: len(x) - n_train], perm[len(x) - n_train:]
    t = torch.from_numpy
    return t(x[tr]), t(y[tr]), t(x[te]), t(y[te])


def _orders(seeds: list[int], n: int) -> torch.Tensor:
    """``(M, n)``: one ``randperm(n)`` per member from its own CPU generator."""
    return torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def init_tanh(width: int, init_seeds: list[int], d_in: int = 64, d_out: int = N_CLASSES) -> dict[str, torch.Tensor]:
    """Stacked parameters ``W1 (M, width, d_in)``, ``b1 (M, width)``, ``W2 (M, d_out, width)``,
    ``b2 (M, d_out)``; member ``m`` from ``Generator().manual_seed(init_seeds[m])``."""
    W1, W2 = [], []
    for s in init_seeds:
        g = torch.Generator().manual_seed(int(s))
        W1.append(torch.randn(width, d_in, generator=g, dtype=torch.float64) / math.sqrt(d_in))
        W2.append(torch.randn(d_out, width, generator=g, dtype=torch.float64) / math.sqrt(width))
    M = len(init_seeds)
    return {"W1": torch.stack(W1), "b1": torch.zeros(M, width, dtype=torch.float64),
            "W2": torch.stack(W2), "b2": torch.zeros(M, d_out, dtype=torch.float64)}


def tanh_forward(p: dict[str, torch.Tensor], xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``xb (M, B, d_in)`` -> ``(h (M, B, width), f (M, B, d_out))``."""
    h = torch.tanh(torch.baddbmm(p["b1"].unsqueeze(1), xb, p["W1"].transpose(1, 2)))
    return h, torch.baddbmm(p["b2"].unsqueeze(1), h, p["W2"].transpose(1, 2))


def mse(f: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
    """``(M,)``: (1/2)·mean over the batch and the outputs of ``(f - y)^2``."""
    return 0.5 * ((f - y1) ** 2).mean(dim=(1, 2))


def tanh_step(p: dict[str, torch.Tensor], xb: torch.Tensor, y1: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
    """One SGD step of every member on its batch (in place); returns the batch loss ``(M,)`` before
    the step. ``lr``: ``(M,)`` (0 freezes a member exactly). Gradients by hand (the oracle test
    checks them against autograd)."""
    h, f = tanh_forward(p, xb)
    loss = mse(f, y1)
    B, K = f.shape[1], f.shape[2]
    g = (f - y1) * (lr.view(-1, 1, 1) / (B * K))  # lr · dL/df
    dz = torch.bmm(g, p["W2"]).mul_(1 - h * h)
    p["W2"].sub_(torch.bmm(g.transpose(1, 2), h))
    p["b2"].sub_(g.sum(1))
    p["W1"].sub_(torch.bmm(dz.transpose(1, 2), xb))
    p["b1"].sub_(dz.sum(1))
    return loss


def tanh_first_epoch(width: int, lrs: list[float], init_seeds: list[int], order_seeds: list[int], *, batch: int,
                     n_train: int, data_seed: int, div_factor: float) -> dict[str, Any]:
    """One epoch of SGD for ``M = len(lrs)`` members of one width (module docstring).

    A member diverges when a batch loss is non-finite or exceeds ``div_factor`` x its initial full
    training loss ``L0``; it is frozen from then on (its later batch losses are ``nan``). Returns
    per member: ``L0``, the batch losses ``(M, steps)``, their variance over the epoch ``var``
    (``inf`` when diverged), the training loss after the epoch (``nan`` when diverged), ``diverged``."""
    x, y, _, _ = digits_pixels(n_train, data_seed)
    y1 = torch.nn.functional.one_hot(y, N_CLASSES).to(torch.float64)
    M = len(lrs)
    p = init_tanh(width, init_seeds)
    with torch.no_grad():
        L0 = mse(tanh_forward(p, x.unsqueeze(0).expand(M, -1, -1))[1], y1.unsqueeze(0))
        lr = torch.tensor(lrs, dtype=torch.float64)
        alive = torch.ones(M, dtype=torch.bool)
        order = _orders(order_seeds, n_train)
        steps = n_train // batch  # full batches only: every recorded loss has the same batch size
        losses = torch.full((M, steps), math.nan, dtype=torch.float64)
        for s in range(steps):
            idx = order[:, s * batch:(s + 1) * batch]
            lb = tanh_step(p, x[idx], y1[idx], torch.where(alive, lr, torch.zeros_like(lr)))
            bad = alive & (~torch.isfinite(lb) | (lb > div_factor * L0))
            losses[:, s] = torch.where(alive & ~bad, lb, torch.full_like(lb, math.nan))
            alive &= ~bad
        L1 = mse(tanh_forward(p, x.unsqueeze(0).expand(M, -1, -1))[1], y1.unsqueeze(0))
    var = torch.where(alive, losses.var(dim=1, unbiased=False), torch.full((M,), math.inf, dtype=torch.float64))
    return {"L0": L0.tolist(), "batch_losses": losses.numpy(), "var": var.tolist(),
            "L1": torch.where(alive, L1, torch.full_like(L1, math.nan)).tolist(), "diverged": (~alive).tolist(),
            "steps": steps}


def logreg_sweep(gammas: list[float], order_seeds: list[int], *, lr: float, batch: int, epochs: int, n_train: int,
                 data_seed: int) -> dict[str, Any]:
    """Multinomial logistic regression for every ``(γ, seed)``: members ``γ``-major,
    ``m = i·n_seeds + s``; seed ``s`` draws one minibatch order per epoch, shared by every γ (the
    γ comparison is paired). Returns the test loss and error ``(n_gamma, n_seeds)`` (``nan`` where a
    member's weights are not finite) and the final train loss."""
    x, y, xt, yt = digits_pixels(n_train, data_seed)
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
    xta = torch.cat([xt, torch.ones(len(xt), 1, dtype=torch.float64)], 1)
    y1 = torch.nn.functional.one_hot(y, N_CLASSES).to(torch.float64)
    G, S = len(gammas), len(order_seeds)
    M = G * S
    gam = torch.tensor(gammas, dtype=torch.float64).repeat_interleave(S).view(M, 1, 1)
    W = torch.zeros(M, N_CLASSES, xa.shape[1], dtype=torch.float64)
    gens = [torch.Generator().manual_seed(int(s)) for s in order_seeds]
    steps = n_train // batch
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.stack([torch.randperm(n_train, generator=g) for g in gens]).repeat(G, 1)
            for s in range(steps):
                idx = order[:, s * batch:(s + 1) * batch]
                xb = xa[idx]
                prob = torch.softmax(torch.bmm(xb, W.transpose(1, 2)), -1)
                grad = torch.bmm((prob - y1[idx]).transpose(1, 2), xb) / batch
                W.sub_(lr * (grad + gam * W))
        ok = torch.isfinite(W).flatten(1).all(1)

        def loss_err(xx: torch.Tensor, yy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = torch.matmul(xx, W.transpose(1, 2))
            ls = -torch.log_softmax(f, -1).gather(-1, yy.view(1, -1, 1).expand(M, -1, 1)).squeeze(-1).mean(1)
            er = (f.argmax(-1) != yy).to(torch.float64).mean(1)
            nan = torch.full_like(ls, math.nan)
            return torch.where(ok & torch.isfinite(ls), ls, nan), torch.where(ok, er, nan)

        tl, te = loss_err(xta, yt)
        trl, _ = loss_err(xa, y)
    shape = (G, S)
    return {"test_loss": tl.view(shape).tolist(), "test_err": te.view(shape).tolist(),
            "train_loss": trl.view(shape).tolist(), "n_test": len(yt)}


def member_seeds(seed: int, n: int, what: str) -> list[int]:
    """``n`` per-seed streams ``derive(seed, what, s)`` (63-bit, as every job's seeds)."""
    return [derive(seed, what, s) for s in range(n)]
