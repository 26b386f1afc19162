"""Noise-enhanced SGD (NE): SGD whose gradient noise is amplified without changing ``lr`` or ``B``.

Paper: Mori & Ueda, *Improved generalization by noise enhancement* (arXiv 2009.13094); the
study guide ``docs/studies/noise-enhancement.md`` ("What noise enhancement is"). The update rule is our
reading of the method [default]:
draw two independent minibatches ``B``, ``B'`` of size ``B`` and use

    g_NE = (1 + alpha) g_B - alpha g_B' = g_B + alpha (g_B - g_B'),     theta <- theta - lr * g_NE.

[derived] ``E[g_NE] = grad L`` (unbiased) and ``Cov[g_NE] = f(alpha) Cov[g_B]`` with

    f(alpha) = (1 + alpha)^2 + alpha^2 = 1 + 2 alpha + 2 alpha^2

for independent draws (with replacement; without replacement the same holds up to the finite-
population term of the split mode, :func:`nnphys.noise_enhancement.noise.ne_trace_ratio`). So one NE
step at batch size ``B`` has the noise of one SGD step at the **effective batch size**
``B_eff = B / f(alpha) = B / (1 + 2 alpha + 2 alpha^2)``, at the cost of two minibatch gradients (``2B`` samples, the FLOPs of SGD at ``2B``). ``alpha = 0`` is plain SGD.
Momentum, weight decay and learning-rate schedules act on ``g_NE`` exactly as SGD's act on ``g_B``
[default]; with momentum the ``B_eff`` relation is unchanged.

Public API:

- :class:`NoiseEnhancedSGD`: a ``torch.optim.Optimizer`` for any ``nn.Module``; ``step(closure)``
  calls the closure twice (each call draws its own batch), :meth:`NoiseEnhancedSGD.step_batches`
  takes a model, a loss function and two batches, and :meth:`NoiseEnhancedSGD.step_loader` runs one
  epoch over a ``DataLoader`` (consecutive batches paired as ``B``, ``B'``). Their ``loss_fn`` may
  return the batch mean or the per-sample losses ``(n,)`` (``reduction="none"``, the convention of
  ``gradient_noise`` and the curvature tools), which are averaged: one loss function serves all;
- :func:`ne_update_`: the same update, functional and batched over stacked ``(M, ...)`` parameters
  of an ensemble, with a per-member ``alpha`` (and ``lr``);
- :func:`ne_covariance_factor`, :func:`effective_batch_size`, :func:`alpha_for`: ``f(alpha)`` and the
  ``alpha <-> B_eff`` relations (all three sampling modes). (``f(alpha)`` was called
  ``noise_factor`` before; that name now belongs only to :func:`nnphys.gradnoise.noise_factor`,
  the SGD factor ``C_B / C_1``, a different quantity.)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor
from torch.optim import Optimizer

from nnphys.errors import ConfigError

SAMPLING_MODES = ("split", "independent", "replacement")

__all__ = [
    "NoiseEnhancedSGD",
    "ne_update_",
    "ne_covariance_factor",
    "effective_batch_size",
    "alpha_for",
    "SAMPLING_MODES",
]


# ------------------------------------------------------------------------------------------------
# f(alpha) and the alpha <-> B_eff relations [derived]
# ------------------------------------------------------------------------------------------------


def ne_covariance_factor(alpha: float) -> float:
    """``f(alpha) = (1 + alpha)^2 + alpha^2 = 1 + 2 alpha + 2 alpha^2``.

    The factor by which NE multiplies the covariance of the minibatch gradient (independent or
    with-replacement draws). ``f(0) = 1``, ``f(1) = 5``, ``f((sqrt(15) - 1) / 2) = 8``.
    """
    _check_alpha(alpha)
    a = float(alpha)
    return 1.0 + 2.0 * a + 2.0 * a * a


def _check_mode(mode: str, n_samples: int | None, batch_size: float) -> None:
    if mode not in SAMPLING_MODES:
        raise ConfigError("ne_sampling", f"must be one of {', '.join(SAMPLING_MODES)} (got {mode!r})")
    if mode == "independent":
        if n_samples is None:
            raise ConfigError("n_samples", "mode 'independent' needs the training-set size N")
        if not batch_size < n_samples:
            raise ConfigError("batch_size", f"must be < N = {n_samples} in mode 'independent' (got {batch_size})")


def effective_batch_size(
    batch_size: float, alpha: float, mode: str = "split", n_samples: int | None = None
) -> float:
    """``B_eff`` of NE at batch size ``B`` and ``alpha``.

    - ``"split"`` and ``"replacement"``: ``B_eff = B / f(alpha)`` exactly (``split`` compares with
      SGD without replacement, ``replacement`` with SGD with replacement);
    - ``"independent"`` (two without-replacement draws from ``N = n_samples``):
      ``1/B_eff - 1/N = f(alpha) (1/B - 1/N)``.
    """
    if not (batch_size > 0 and math.isfinite(batch_size)):
        raise ConfigError("batch_size", f"must be a finite number > 0 (got {batch_size!r})")
    f = ne_covariance_factor(alpha)
    _check_mode(mode, n_samples, batch_size)
    if mode == "independent":
        assert n_samples is not None
        return 1.0 / (f * (1.0 / batch_size - 1.0 / n_samples) + 1.0 / n_samples)
    return batch_size / f


def alpha_for(
    batch_size: float, effective_batch_size: float, mode: str = "split", n_samples: int | None = None
) -> float:
    """The ``alpha >= 0`` at which NE with batch size ``B`` has effective batch size ``B_eff``.

    Inverse of :func:`effective_batch_size`: ``alpha = (sqrt(2 r - 1) - 1) / 2`` with
    ``r = B / B_eff`` (``split``, ``replacement``) or ``r = (1/B_eff - 1/N) / (1/B - 1/N)``
    (``independent``). Needs ``0 < B_eff <= B``. Examples: ``alpha_for(1024, 128) = 1.436492``
    (``f = 8``); ``alpha_for(10, 1) = 1.679449``.
    """
    b, be = batch_size, effective_batch_size
    if not (b > 0 and math.isfinite(b)):
        raise ConfigError("batch_size", f"must be a finite number > 0 (got {b!r})")
    if not (be > 0 and math.isfinite(be)):
        raise ConfigError("effective_batch_size", f"must be a finite number > 0 (got {be!r})")
    if be > b:
        raise ConfigError("effective_batch_size", f"NE can only lower the batch size: need B_eff <= B (got B_eff={be}, B={b})")
    _check_mode(mode, n_samples, b)
    if mode == "independent":
        assert n_samples is not None
        r = (1.0 / be - 1.0 / n_samples) / (1.0 / b - 1.0 / n_samples)
    else:
        r = b / be
    return 0.5 * (math.sqrt(2.0 * r - 1.0) - 1.0)


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------


def _finite_number(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _check_alpha(alpha: Any) -> None:
    if isinstance(alpha, bool) or not _finite_number(alpha) or float(alpha) < 0:
        raise ConfigError("alpha", f"must be a finite number >= 0 (got {alpha!r})")


def _check_group(g: dict[str, Any]) -> None:
    lr = g["lr"]
    lr_val = float(lr) if isinstance(lr, Tensor) and lr.numel() == 1 else lr
    if isinstance(lr_val, bool) or not _finite_number(lr_val) or float(lr_val) <= 0:
        raise ConfigError("lr", f"must be a finite number > 0 (got {lr!r})")
    _check_alpha(g["alpha"])
    for name in ("momentum", "dampening", "weight_decay"):
        v = g[name]
        if isinstance(v, bool) or not _finite_number(v) or float(v) < 0:
            raise ConfigError(name, f"must be a finite number >= 0 (got {v!r})")
    if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
        raise ConfigError("nesterov", "needs momentum > 0 and dampening = 0 (as torch.optim.SGD)")


# ------------------------------------------------------------------------------------------------
# the optimizer
# ------------------------------------------------------------------------------------------------


class NoiseEnhancedSGD(Optimizer):
    r"""SGD on the noise-enhanced gradient ``g_NE = (1 + alpha) g_B - alpha g_B'``.

    Args:
        params: parameters or parameter groups (each group may set its own ``lr`` / ``alpha`` /
            ``momentum`` / ``dampening`` / ``weight_decay`` / ``nesterov``).
        lr: learning rate ``> 0`` (schedulers change it as for any optimizer).
        alpha: noise-enhancement strength ``>= 0``; the gradient-noise covariance is multiplied by
            ``f(alpha) = 1 + 2 alpha + 2 alpha^2``, i.e. the effective batch size is
            ``B / (1 + 2 alpha + 2 alpha^2)`` (:func:`alpha_for` inverts it).
        momentum, dampening, weight_decay, nesterov: as :class:`torch.optim.SGD`, applied to
            ``g_NE``. With ``alpha = 0`` every step equals ``torch.optim.SGD``'s.

    A step needs the gradients of two independent minibatches:

    - ``opt.step(closure)``: ``closure()`` computes a loss on a **fresh** minibatch, calls
      ``backward()`` and returns the loss; it is called twice per step (first for ``B``, then for
      ``B'``). The optimizer clears ``.grad`` before each call, so the closure need not (but may)
      zero them. ``step`` returns the first call's loss (the loss on ``B``);
    - ``opt.step_batches(model, loss_fn, (x1, y1), (x2, y2))`` does the same for two given batches;
    - ``opt.step_loader(model, loss_fn, loader)`` runs one epoch of ``len(loader) // 2`` steps.

    After a step, ``p.grad`` holds ``g_NE`` (before weight decay). Parameters whose gradient is
    ``None`` in both calls are skipped; a gradient missing in one call counts as zero.
    Batch-coupled layers (BatchNorm) see each batch separately (two-pass NE).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        alpha: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        defaults = dict(lr=lr, alpha=alpha, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        _check_group(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        try:
            _check_group(self.param_groups[-1])
        except ConfigError:
            self.param_groups.pop()
            raise

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for g in self.param_groups:
            g.setdefault("nesterov", False)

    # --------------------------------------------------------------------------------------------
    def _take_grads(self) -> list[list[Tensor | None]]:
        """The current ``.grad`` of every parameter (group by group), then cleared."""
        out = []
        for g in self.param_groups:
            gs = []
            for p in g["params"]:
                gs.append(p.grad)
                p.grad = None
            out.append(gs)
        return out

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One NE step; ``closure`` is called twice (class docstring). Returns the first loss."""
        if closure is None:
            raise ConfigError(
                "closure",
                "NoiseEnhancedSGD needs the gradients of two minibatches per step: pass a closure "
                "that draws a fresh batch, computes the loss and calls backward (it is called twice), "
                "or use step_batches(model, loss_fn, batch_a, batch_b)",
            )
        self._take_grads()  # stale gradients must not leak into g_B
        with torch.enable_grad():
            loss = closure()
        grads_a = self._take_grads()
        with torch.enable_grad():
            closure()
        grads_b = self._take_grads()
        self._apply(grads_a, grads_b)
        return loss

    def step_batches(
        self,
        model: Callable[[Tensor], Tensor],
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        batch_a: Sequence[Tensor],
        batch_b: Sequence[Tensor],
    ) -> tuple[Tensor, Tensor]:
        """One NE step on two given batches ``(x, y)``: ``B = batch_a``, ``B' = batch_b``.

        ``loss_fn(model(x), y)`` is the batch's mean loss ``(1/B) Σ ℓ_n`` (a scalar) or its
        per-sample losses ``ℓ_n`` of shape ``(B,)``, which are averaged; any other shape raises
        ConfigError naming ``loss_fn``. Returns the two mean losses (detached).
        """
        losses: list[Tensor] = []
        batches = iter((batch_a, batch_b))

        def closure() -> Tensor:
            x, y = _pair(next(batches))
            loss = _batch_mean(loss_fn(model(x), y), x.shape[0])
            loss.backward()
            losses.append(loss.detach())
            return loss

        self.step(closure)
        return losses[0], losses[1]

    def step_loader(
        self,
        model: Callable[[Tensor], Tensor],
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        loader: Iterable[Sequence[Tensor]],
    ) -> Tensor:
        """One epoch of NE over ``loader``: consecutive batches ``(b_1, b_2), (b_3, b_4), ...`` are
        the pairs ``(B, B')`` of :meth:`step_batches`, so an epoch is ``len(loader) // 2`` steps.

        With a shuffling ``DataLoader`` the two batches of a step are disjoint draws without
        replacement (the ``"split"`` sampling mode of :func:`effective_batch_size`: effective
        batch size ``B / (1 + 2 alpha + 2 alpha^2)``). An unpaired last batch (an odd number of
        batches) is not used; it is reported by a ``UserWarning`` only when it would be the only
        one (a loader of one batch cannot make a step). Use ``drop_last=True`` so that every
        batch has the same size ``B``. ``loss_fn`` as in :meth:`step_batches`; any iterable of
        ``(x, y)`` batches works (a generator too: it is consumed once).

        Returns the losses on ``B`` of each step, ``(len(loader) // 2,)`` (detached).
        """
        if isinstance(loader, Tensor) or not hasattr(loader, "__iter__"):
            raise ConfigError("loader", f"must be an iterable of (x, y) batches such as a DataLoader "
                              f"(got {type(loader).__name__})")
        out: list[Tensor] = []
        it = iter(loader)
        n_batches = 0
        for first in it:
            n_batches += 1
            second = next(it, None)
            if second is None:
                break
            n_batches += 1
            out.append(self.step_batches(model, loss_fn, first, second)[0])
        if n_batches == 1:
            import warnings

            warnings.warn("step_loader: the loader gave a single batch; NE needs two per step, "
                          "so no step was made", UserWarning, stacklevel=2)
        if not out:
            return torch.zeros(0)
        return torch.stack(out)

    @torch.no_grad()
    def _apply(self, grads_a: list[list[Tensor | None]], grads_b: list[list[Tensor | None]]) -> None:
        for g, ga_list, gb_list in zip(self.param_groups, grads_a, grads_b):
            alpha = float(g["alpha"])
            lr = g["lr"]
            wd, mom, damp, nest = g["weight_decay"], g["momentum"], g["dampening"], g["nesterov"]
            for p, ga, gb in zip(g["params"], ga_list, gb_list):
                if ga is None and gb is None:
                    continue
                ga = torch.zeros_like(p) if ga is None else ga
                gb = torch.zeros_like(p) if gb is None else gb
                # g_B + alpha (g_B - g_B'): at alpha = 0 this is g_B bit for bit
                grad = ga.add(ga.sub(gb), alpha=alpha) if alpha != 0 else ga
                p.grad = grad
                # from here on the update is torch.optim.SGD's (_single_tensor_sgd), op for op
                if wd != 0:
                    grad = grad.add(p, alpha=wd)
                if mom != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = grad.detach().clone()
                        state["momentum_buffer"] = buf
                    else:
                        buf.mul_(mom).add_(grad, alpha=1 - damp)
                    grad = grad.add(buf, alpha=mom) if nest else buf
                p.add_(grad, alpha=-float(lr))


def _pair(batch: Any) -> tuple[Tensor, Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    n = len(batch) if isinstance(batch, (tuple, list)) else None
    raise ConfigError("batch", f"must be a pair (x, y) (got {type(batch).__name__}"
                      f"{'' if n is None else f' of {n} items'})")


def _batch_mean(loss: Any, n: int) -> Tensor:
    """The mean loss of a batch of ``n`` samples from a scalar or per-sample ``(n,)`` loss."""
    if isinstance(loss, Tensor) and loss.ndim == 0:
        return loss
    if isinstance(loss, Tensor) and tuple(loss.shape) == (n,):
        return loss.mean()
    shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
    raise ConfigError("loss_fn", f"must return the batch's mean loss (a scalar) or its per-sample "
                      f"losses of shape ({n},) (got {shape}); sum or average over output dims yourself")


# ------------------------------------------------------------------------------------------------
# functional, batched form (ensembles of M members in stacked tensors)
# ------------------------------------------------------------------------------------------------


def _per_member(v: float | Tensor, p: Tensor, name: str) -> float | Tensor:
    """A scalar, or an ``(M,)`` tensor viewed as ``(M, 1, ..., 1)`` to broadcast over ``p``."""
    if isinstance(v, Tensor):
        if v.dim() == 0:
            return float(v)
        if v.dim() != 1 or v.shape[0] != p.shape[0]:
            raise ConfigError(name, f"must be a scalar or a ({p.shape[0]},) tensor (got shape {tuple(v.shape)})")
        return v.to(dtype=p.dtype, device=p.device).view((-1,) + (1,) * (p.dim() - 1))
    return float(v)


@torch.no_grad()
def ne_update_(
    params: Sequence[Tensor],
    grads_a: Sequence[Tensor],
    grads_b: Sequence[Tensor],
    lr: float | Tensor,
    alpha: float | Tensor,
    *,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    momentum_buffers: list[Tensor | None] | None = None,
    check: bool = True,
) -> list[Tensor | None]:
    """In-place NE update of stacked ensemble parameters; batched :class:`NoiseEnhancedSGD`.

    ``params[i]``: ``(M, ...)`` (member ``m`` in row ``m``); ``grads_a[i]``, ``grads_b[i]``: the
    gradients of member ``m``'s mean loss on its batches ``B_m`` and ``B'_m``, same shapes.
    ``alpha`` and ``lr``: scalars or ``(M,)`` tensors (one value per member, broadcast over the
    trailing dimensions), so seeds x alpha x lr of one configuration train in one set of tensors.
    ``momentum_buffers`` (one entry per parameter, ``None`` before the first step) is updated in
    place and returned; pass the returned list back at the next step. Member ``m`` follows exactly
    the trajectory of ``NoiseEnhancedSGD`` with ``alpha[m]``, ``lr[m]`` (up to rounding).
    Bad values raise :class:`ConfigError`; ``check=False`` skips the checks of tensor-valued
    ``alpha`` / ``lr`` (they synchronise a GPU; training loops that built them once may skip them).
    """
    if not (len(params) == len(grads_a) == len(grads_b)):
        raise ConfigError("grads", "params, grads_a and grads_b must have the same length")
    if isinstance(alpha, Tensor):
        if check and (not bool(torch.isfinite(alpha).all()) or bool((alpha < 0).any())):
            raise ConfigError("alpha", "must be finite and >= 0 for every member")
    else:
        _check_alpha(alpha)
    if isinstance(lr, Tensor):
        if check and (not bool(torch.isfinite(lr).all()) or bool((lr <= 0).any())):
            raise ConfigError("lr", "must be finite and > 0 for every member")
    _check_group(dict(lr=1.0 if isinstance(lr, Tensor) else lr, alpha=0.0, momentum=momentum,
                      dampening=dampening, weight_decay=weight_decay, nesterov=nesterov))
    if momentum_buffers is None:
        momentum_buffers = [None] * len(params)
    for i, (p, ga, gb) in enumerate(zip(params, grads_a, grads_b)):
        a = _per_member(alpha, p, "alpha")
        if isinstance(a, Tensor):
            grad = ga + a * (ga - gb)
        else:
            grad = ga.add(ga.sub(gb), alpha=a) if a != 0 else ga
        if weight_decay != 0:
            grad = grad.add(p, alpha=weight_decay)
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = grad.detach().clone()
                momentum_buffers[i] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            grad = grad.add(buf, alpha=momentum) if nesterov else buf
        step = _per_member(lr, p, "lr")
        if isinstance(step, Tensor):
            p.sub_(step * grad)
        else:
            p.add_(grad, alpha=-step)
    return momentum_buffers
