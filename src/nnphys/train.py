"""Training loops for stacked ensembles (the nets and the training of study depth-locality; guide
``docs/studies/depth-locality.md``, section "Jobs").

:func:`train_ensemble` trains the ``M`` members of an :class:`~nnphys.nets.MLPEnsemble` together
with plain SGD (minibatch, or full batch with ``batch_size=None``), each member with its own
learning rate, its own minibatch order and its own stopping time. Member ``m`` follows exactly the
trajectory of one ``nn.Module`` net (``model.to_modules()[m]``) trained by ``torch.optim.SGD`` on
the same batches (tests/test_train.py checks this in float64).

One step is one batched forward and one hand-written batched backward for all members. The
gradient of each weight matrix is never stored: the output gradient is scaled by the member's
learning rate first, and every weight update is a single ``baddbmm_`` (``W -= c_w * delta^T a``),
which is what makes wide ensembles run near matmul speed.

Lazy-training output scale ``alpha`` (argument ``lazy_scale``; Chizat, Oyallon, Bach, *On lazy
training in differentiable programming*, arXiv 1812.07956): the trained model is
``f_alpha(x) = alpha * (f(x; theta) - f(x; theta_0))`` when ``center=True`` (``alpha * f`` otherwise),
and the loss is divided by ``alpha^2``; ``f(.; theta_0)`` is computed once for the train and test sets.

Losses (per member, a mean over the batch):

- ``"mse"``: ``mean_{b, o} (f_alpha - y)^2 / alpha^2`` (as ``nn.MSELoss``);
- ``"logistic"``: ``mean_b softplus(-y f_alpha) / alpha^2`` on ``±1`` labels (``d_out = 1``), i.e.
  BCE-with-logits on ``(y+1)/2``;
- ``"cross_entropy"``: ``mean_b CE(f_alpha, y) / alpha^2`` on integer class labels (``d_out >= 2``).

Stopping rule (the interpolation criterion of study depth-locality), checked per member after every epoch on the whole training set:

- regression (``labels=False``): train normalised MSE ``mean (f_alpha - y)^2 / Var(y) < stop_nmse``;
- labels (``labels=True``, or any non-MSE loss): 100 % train accuracy and train loss ``< stop_loss``;
- otherwise at most ``max_epochs`` epochs. A member that stopped is frozen (its learning rate is
  masked to 0) while the others go on.

Divergence (per member): a non-finite train loss, or one above ``diverge_factor`` times its
initial value, marks the member diverged and freezes it; its test metrics are ``nan``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import torch

from nnphys.errors import ConfigError
from nnphys.nets import MLPEnsemble

LOSSES = ("mse", "logistic", "cross_entropy")


@dataclasses.dataclass
class TrainResult:
    """Per-member outcome of :func:`train_ensemble`; every tensor is ``(M,)`` on the CPU unless noted.

    ``train_loss``: final training loss (the objective, divided by ``alpha^2``);
    ``train_nmse``: train ``mean (f_alpha - y)^2 / Var(y)`` (``nan`` for cross-entropy);
    ``train_acc``: train accuracy of ``sgn f_alpha`` (``d_out = 1``, tie ``+1``) or of ``argmax``;
    ``test_nmse``, ``test_err``: the same on the test set (``test_err`` = sign / class error);
    ``epochs``, ``steps``: used by each member; ``reached``: the stopping criterion was met;
    ``diverged``: see the module docstring; ``stop_reason``: ``"criterion" | "diverged" | "epoch_cap"``;
    ``history``: ``(M, E+1)`` train loss after epochs ``0..E`` (``E`` = epochs run by the longest member,
    frozen members repeat their last value); ``pred_test``: ``(M, N_test, d_out)`` test predictions
    ``f_alpha`` or ``None`` without a test set.
    """

    train_loss: torch.Tensor
    train_nmse: torch.Tensor
    train_acc: torch.Tensor
    test_nmse: torch.Tensor
    test_err: torch.Tensor
    epochs: torch.Tensor
    steps: torch.Tensor
    reached: torch.Tensor
    diverged: torch.Tensor
    stop_reason: list[str]
    history: torch.Tensor
    pred_test: torch.Tensor | None = None

    def member(self, m: int) -> dict[str, Any]:
        """JSON-able metrics of member ``m``."""
        out: dict[str, Any] = {}
        for f in ("train_loss", "train_nmse", "train_acc", "test_nmse", "test_err"):
            out[f] = float(getattr(self, f)[m])
        for f in ("epochs", "steps"):
            out[f] = int(getattr(self, f)[m])
        out["reached"] = bool(self.reached[m])
        out["diverged"] = bool(self.diverged[m])
        out["stop_reason"] = self.stop_reason[m]
        return out


def _as_member_tensor(v: Any, m: int, name: str, device, dtype) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=torch.float64).flatten()
    if t.numel() == 1:
        t = t.expand(m)
    if t.numel() != m:
        raise ConfigError(name, f"needs a scalar or one value per member ({m}); got {t.numel()}")
    return t.to(device=device, dtype=dtype).clone()


def _prep_xy(model: MLPEnsemble, x, y, loss: str, name: str):
    """Returns ``x`` as ``(N, d)`` or ``(M, N, d)`` and ``y`` as ``(M?, N, d_out)`` (or ``(M?, N)`` long)."""
    M, dev, dt = model.n_members, model.weights[0].device, model.weights[0].dtype
    x = torch.as_tensor(x).to(device=dev, dtype=dt)
    per_member = x.dim() == 3
    if x.dim() not in (2, 3) or x.shape[-1] != model.d_in or (per_member and x.shape[0] != M):
        raise ConfigError(f"x_{name}", f"must be (N, {model.d_in}) or ({M}, N, {model.d_in}); got {tuple(x.shape)}")
    n = x.shape[-2]
    y = torch.as_tensor(y).to(device=dev)
    lead = (M, n) if per_member else (n,)
    if loss == "cross_entropy":
        if tuple(y.shape) != lead:
            raise ConfigError(f"y_{name}", f"class labels must have shape {lead}; got {tuple(y.shape)}")
        y = y.long()
    else:
        if tuple(y.shape) == lead:
            y = y.unsqueeze(-1)
        if tuple(y.shape) != lead + (model.d_out,):
            raise ConfigError(f"y_{name}", f"must have shape {lead} or {lead + (model.d_out,)}; got {tuple(y.shape)}")
        y = y.to(dt)
    return x, y, per_member, n


def _gather(t: torch.Tensor, per_member: bool, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (``(M, B)``) of ``t`` (``(N, ...)`` shared or ``(M, N, ...)``) -> ``(M, B, ...)``."""
    if per_member:
        ar = torch.arange(t.shape[0], device=t.device).unsqueeze(1)
        return t[ar, idx]
    return t[idx]


def _loss_grad(
    loss: str, fa: torch.Tensor, y: torch.Tensor, lazy_scale: float
) -> torch.Tensor:
    """``d loss / d f`` (raw net output) per member, for a batch: ``fa`` is ``f_alpha`` ``(M, B, d_out)``."""
    B = fa.shape[1]
    if loss == "mse":
        return (fa - y) * (2.0 / (lazy_scale * B * fa.shape[2]))
    if loss == "logistic":
        return -y * torch.sigmoid(-y * fa) * (1.0 / (lazy_scale * B))
    p = torch.softmax(fa, dim=-1)
    p.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(p[..., :1], -1.0))
    return p * (1.0 / (lazy_scale * B))


def _loss_value(loss: str, fa: torch.Tensor, y: torch.Tensor, lazy_scale: float) -> torch.Tensor:
    """Per-member mean loss ``(M,)`` (divided by ``lazy_scale^2``, the module docstring's ``alpha^2``)."""
    if loss == "mse":
        v = ((fa - y) ** 2).mean(dim=(1, 2))
    elif loss == "logistic":
        v = torch.nn.functional.softplus(-y * fa).mean(dim=(1, 2))
    else:
        v = -torch.log_softmax(fa, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(dim=1)
    return v / lazy_scale**2


def _accuracy(loss: str, fa: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if loss == "cross_entropy":
        return (fa.argmax(-1) == y).to(fa.dtype).mean(dim=1)
    # sign with tie rule sgn(0) := +1 for both prediction and target
    return ((fa >= 0) == (y >= 0)).to(fa.dtype).mean(dim=(1, 2))


def _nmse(loss: str, fa: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if loss == "cross_entropy":
        return torch.full((fa.shape[0],), float("nan"), dtype=fa.dtype, device=fa.device)
    var = y.var(dim=-2, unbiased=False).mean(dim=-1)  # (M,) or ()
    err = ((fa - y) ** 2).mean(dim=(1, 2))
    return err / var


@torch.no_grad()
def sgd_step(model: MLPEnsemble, xb: torch.Tensor, g_out: torch.Tensor, acts: list[torch.Tensor]) -> None:
    """One in-place SGD step from the lr-scaled output gradient ``g_out`` (``(M, B, d_out)``).

    ``acts`` holds ``a^(0..L)`` (each ``(M, B, n_l)``) of the forward pass that produced the output.
    For layer ``l``: ``W -= c_w delta^T a^(l-1)``, ``b -= c_b sum_b delta``,
    ``delta^(l-1) = c_w (delta W) * 1[a^(l-1) > 0]`` (with the weights before the update).
    """
    delta = g_out
    for l in range(model.depth, -1, -1):
        cw, cb = model.scales[l]
        w = model.weights[l]
        a_prev = acts[l]
        if l > 0:
            nxt = torch.bmm(delta, w)
            nxt = nxt.mul_(cw) if cw != 1.0 else nxt
            nxt.mul_(a_prev > 0)
        w.baddbmm_(delta.transpose(1, 2), a_prev, alpha=-cw)
        if model.bias and cb != 0.0:
            model.biases[l].sub_(delta.sum(dim=1), alpha=cb)
        if l > 0:
            delta = nxt


def _forward_acts(model: MLPEnsemble, xb: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    a = xb if xb.dim() == 3 else xb.unsqueeze(0).expand(model.n_members, -1, -1)
    acts = [a]
    for l in range(model.depth):
        a = torch.relu_(model.layer(l, a))
        acts.append(a)
    return model.layer(model.depth, a), acts


@torch.no_grad()
def train_step(
    model: MLPEnsemble,
    xb: torch.Tensor,
    yb: torch.Tensor,
    lr_eff: torch.Tensor,
    *,
    loss: str = "mse",
    lazy_scale: float = 1.0,
    f0b: torch.Tensor | None = None,
) -> None:
    """One in-place SGD step of every member on its batch (the inner loop of :func:`train_ensemble`).

    ``xb``: ``(B, d)`` or ``(M, B, d)``; ``yb``: ``(M, B, d_out)`` (class indices ``(M, B)`` for
    cross-entropy); ``lr_eff``: ``(M, 1, 1)`` learning rates, 0 freezes a member exactly (also when
    its output is non-finite); ``f0b``: ``(M, B, d_out)`` initial outputs for centring, or ``None``.
    """
    out, acts = _forward_acts(model, xb)
    if f0b is not None:
        out = out - f0b
    fa = out * lazy_scale if lazy_scale != 1.0 else out
    g = _loss_grad(loss, fa, yb, lazy_scale)
    g = torch.where(lr_eff != 0, g * lr_eff, torch.zeros((), dtype=g.dtype, device=g.device))
    sgd_step(model, xb, g, acts)


def train_ensemble(
    model: MLPEnsemble,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    lr: float | Sequence[float] | torch.Tensor,
    batch_size: int | None = 32,
    loss: str = "mse",
    labels: bool | None = None,
    max_epochs: int = 2000,
    stop_nmse: float = 1e-3,
    stop_loss: float = 1e-2,
    lazy_scale: float = 1.0,
    center: bool = False,
    order_seeds: Sequence[int] | None = None,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    diverge_factor: float = 1e6,
    keep_pred: bool = False,
) -> TrainResult:
    """Train all members of ``model`` in place with SGD (module docstring for the rules).

    Args:
        model: the ensemble (``M`` members); trained in place.
        x_train: ``(N, d)`` shared by all members or ``(M, N, d)`` one data set per member.
        y_train: ``(N,)``/``(N, d_out)`` or ``(M, N)``/``(M, N, d_out)``; class indices for cross-entropy.
        lr: learning rate, scalar or ``(M,)`` (all ``> 0``).
        batch_size: minibatch size ``B <= N``; ``None`` = full-batch gradient descent. Each epoch
            is one pass over a fresh random permutation per member (the last batch may be short).
        loss: ``"mse" | "logistic" | "cross_entropy"``.
        labels: use the label stopping rule; default: ``loss != "mse"``.
        max_epochs, stop_nmse, stop_loss: stopping rule (module docstring).
        lazy_scale, center: the lazy-training output scale ``alpha`` and centring (module docstring).
        order_seeds: per-member seeds of the minibatch order (default ``model.seeds``); each
            member draws ``torch.randperm(N)`` per epoch from its own CPU generator.
        x_test, y_test: test set, same layout rules as the training set.
        diverge_factor: a train loss above ``diverge_factor x`` the initial one counts as divergence.
        keep_pred: return the test predictions in ``TrainResult.pred_test``.
    """
    M = model.n_members
    dev, dt = model.weights[0].device, model.weights[0].dtype
    if loss not in LOSSES:
        raise ConfigError("loss", f"must be one of {', '.join(LOSSES)} (got {loss!r})")
    if loss == "cross_entropy" and model.d_out < 2:
        raise ConfigError("loss", "cross_entropy needs d_out >= 2")
    if loss == "logistic" and model.d_out != 1:
        raise ConfigError("loss", "logistic needs d_out = 1")
    labels = (loss != "mse") if labels is None else bool(labels)
    if not (math.isfinite(lazy_scale) and lazy_scale > 0):
        raise ConfigError("lazy_scale", f"must be a finite number > 0 (got {lazy_scale!r})")
    if not isinstance(max_epochs, int) or max_epochs < 1:
        raise ConfigError("max_epochs", f"must be an integer >= 1 (got {max_epochs!r})")
    lr_t = _as_member_tensor(lr, M, "lr", dev, torch.float64)
    if not bool(torch.isfinite(lr_t).all()) or bool((lr_t <= 0).any()):
        raise ConfigError("lr", f"must be finite and > 0 (got {lr_t.tolist()})")
    x, y, per_member, n = _prep_xy(model, x_train, y_train, loss, "train")
    if n < 1:
        raise ConfigError("n_train", "needs at least one training point")
    B = n if batch_size is None else batch_size
    if not isinstance(B, int) or not 1 <= B <= n:
        raise ConfigError("batch_size", f"must satisfy 1 <= B <= N={n} (got {batch_size!r})")
    seeds = list(model.seeds) if order_seeds is None else [int(s) for s in order_seeds]
    if len(seeds) != M:
        raise ConfigError("order_seeds", f"needs one seed per member (got {len(seeds)} for {M})")
    has_test = x_test is not None
    if has_test:
        if y_test is None:
            raise ConfigError("y_test", "needed with x_test")
        xt, yt, per_member_t, _ = _prep_xy(model, x_test, y_test, loss, "test")

    with torch.no_grad():
        f0 = model.predict(x) if center else None
        f0t = model.predict(xt) if (center and has_test) else None

        def model_out(xx: torch.Tensor, f0x: torch.Tensor | None) -> torch.Tensor:
            f = model.predict(xx)
            if f0x is not None:
                f = f - f0x
            return f * lazy_scale if lazy_scale != 1.0 else f

        def evaluate() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            fa = model_out(x, f0)
            yy = y if per_member else y.unsqueeze(0).expand(M, *y.shape)
            return _loss_value(loss, fa, yy, lazy_scale), _nmse(loss, fa, yy), _accuracy(loss, fa, yy)

        def stopped(tl, tn, ta) -> torch.Tensor:
            if labels:
                return (ta >= 1.0) & (tl < stop_loss)
            return tn < stop_nmse

        tl, tn, ta = evaluate()
        loss0 = tl.clone()
        active = torch.ones(M, dtype=torch.bool, device=dev)
        reached = stopped(tl, tn, ta)
        diverged = ~torch.isfinite(tl)
        active &= ~(reached | diverged)
        epochs = torch.zeros(M, dtype=torch.long)
        history = [tl.detach().cpu()]
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        steps_per_epoch = math.ceil(n / B)
        lr_col = lr_t.to(dt).view(M, 1, 1)
        ep = 0
        while ep < max_epochs and bool(active.any()):
            ep += 1
            act_cpu = active.cpu()
            epochs += act_cpu.long()
            lr_eff = torch.where(active.view(M, 1, 1), lr_col, torch.zeros_like(lr_col))
            perm = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)
            for s in range(steps_per_epoch):
                idx = perm[:, s * B : (s + 1) * B]
                xb = _gather(x, per_member, idx)
                yb = _gather(y, per_member, idx)
                train_step(model, xb, yb, lr_eff, loss=loss, lazy_scale=lazy_scale,
                           f0b=_gather(f0, True, idx) if center else None)
            tl, tn, ta = evaluate()
            bad = active & (~torch.isfinite(tl) | (tl > diverge_factor * loss0.clamp_min(1e-30)))
            diverged |= bad
            now = active & ~bad & stopped(tl, tn, ta)
            reached |= now
            active &= ~(bad | now)
            history.append(tl.detach().cpu())
        # final metrics of each member are those at its stopping time: frozen members do not move
        tl, tn, ta = evaluate()
        if has_test:
            fat = model_out(xt, f0t)
            yyt = yt if per_member_t else yt.unsqueeze(0).expand(M, *yt.shape)
            test_nmse = _nmse(loss, fat, yyt)
            test_err = 1.0 - _accuracy(loss, fat, yyt)
        else:
            fat = None
            test_nmse = torch.full((M,), float("nan"), dtype=dt, device=dev)
            test_err = test_nmse.clone()
        div = diverged.cpu()
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        reached_c = reached.cpu()
        reason = ["diverged" if div[m] else ("criterion" if reached_c[m] else "epoch_cap") for m in range(M)]
        hist = torch.stack(history, dim=1).to(torch.float64)
        return TrainResult(
            train_loss=tl.cpu().double(),
            train_nmse=tn.cpu().double(),
            train_acc=ta.cpu().double(),
            test_nmse=torch.where(div, nan, test_nmse.cpu().double()),
            test_err=torch.where(div, nan, test_err.cpu().double()),
            epochs=epochs,
            steps=epochs * steps_per_epoch,
            reached=reached_c,
            diverged=div,
            stop_reason=reason,
            history=hist,
            pred_test=fat.cpu() if (keep_pred and fat is not None) else None,
        )


def select_lr(val_err: torch.Tensor, diverged: torch.Tensor, reached: torch.Tensor) -> tuple[int, str]:
    """The learning-rate selection rule of study depth-locality (guide, section "Jobs") on a seed x lr grid.

    Args: ``val_err``, ``diverged``, ``reached``: ``(n_seeds, n_lr)`` validation error (``nan`` where
    diverged), divergence and stopping-rule flags. Returns ``(index, rule)``.

    Ranking, best first: fewest diverged seeds (normally 0: an lr with a diverged seed is out while
    any lr has none); then every non-diverged seed met the stopping rule; then the lowest mean
    validation error over the non-diverged seeds (the test set is never looked at). ``rule`` is
    ``"clean"`` when the chosen lr has no diverged seed, else ``"all_lrs_have_diverged_seeds"``: the
    diverged seeds stay ``nan`` in the job's metrics and are flagged (C8), not silently replaced.
    """
    n_lr = val_err.shape[1]
    best, best_key = 0, None
    for i in range(n_lr):
        dv = diverged[:, i].bool()
        n_div = int(dv.sum())
        ok = ~dv
        all_reached = bool(reached[:, i][ok].all()) if bool(ok.any()) else False
        v = val_err[:, i][ok]
        mean_v = float(v.mean()) if v.numel() and bool(torch.isfinite(v).all()) else math.inf
        key = (n_div, 0 if all_reached else 1, mean_v)
        if best_key is None or key < best_key:
            best, best_key = i, key
    return best, ("clean" if best_key is not None and best_key[0] == 0 else "all_lrs_have_diverged_seeds")
