"""Minibatch gradient-noise statistics of any ``nn.Module`` (Ziyin et al., *Strength of Minibatch Noise
in SGD*, arXiv 2102.05375; Mori et al., *Power-law escape rate of SGD*, arXiv 2105.09557; guides
``docs/studies/minibatch-noise.md`` and ``docs/studies/escape-rate.md``).

Public API (stable; other modules and studies call these)::

    gradient_noise(model, loss_fn, data, *, k=0, batch_size=None, replacement=False,
                   method="auto", chunk_size=None) -> GradientNoise
    decoupling_check(model, loss_fn, data, *, k=20, method="auto", chunk_size=None)
                   -> DecouplingCheck
    per_sample_gram(model, loss_fn, data, *, method="auto", chunk_size=None)
                   -> (K (N, N), losses (N,))                          # K_nm = <g_n, g_m>
    NoiseTracker(model, loss_fn, data, *, batch_size, every=1, ...)   # training callback
    GradientNoise, DecouplingCheck                                    # frozen dataclasses

``data`` is one batch ``(X, y)`` or a re-iterable of ``(x, y)`` batches (a ``DataLoader``; it is
concatenated once into ``(X, y)``, as the statistics need every per-sample gradient), checked as
described in :mod:`nnphys.curvature.inputs`. The deprecated forms ``gradient_noise(model, loss_fn,
X, y, top_k=...)`` and ``decoupling_check(model, loss_fn, X, y, top_k)`` still work and warn.

Conventions (the minibatch-noise paper's, its Prop. 1):

- ``loss_fn(output, target)`` must return the per-sample losses, shape ``(N,)`` (use
  ``reduction="none"``; the paper's MSE is ``0.5 * (f - y)**2`` summed over outputs);
- per-sample gradients ``g_n = ∇ℓ_n``, mean gradient ``ḡ = ∇L = (1/N) Σ_n g_n``;
- single-sample covariance ``C_1 = (1/N) Σ_n (g_n - ḡ)(g_n - ḡ)ᵀ`` (population convention, divisor
  N): ``tr C_1 = (1/N) Σ_n ||g_n||² - ||ḡ||²``, the escape-rate spec's ``𝒩`` statistic;
- minibatch noise covariance at batch size ``B`` (covariance of ``ĝ_B - ∇L``):
  ``C_B = C_1 / B`` with replacement (Prop. 1, exact for every N, B) and
  ``C_B = (N - B) / (B (N - 1)) · C_1`` without replacement (finite-population factor,
  escape-rate Eq. 8). ``batch_size=None`` means ``B = 1`` (then both schemes give ``C_1``);
- spectra come from the ``N × N`` Gram matrix ``K_nm = <g_n, g_m>`` centred by
  ``Π = I - 11ᵀ/N``: the non-zero eigenvalues of ``C_1`` are those of ``ΠKΠ / N``.
  No ``P × P`` matrix is ever formed.

Methods: ``"linear"`` (fast path) records, with hooks, each ``nn.Linear`` / ``nn.Conv2d`` input
``a_n`` and the back-propagated signal ``δ_n = ∂ℓ_n/∂z_n`` of its output in ONE forward and ONE
backward pass of ``Σ_n ℓ_n``. That backward pass asks autograd only for the gradient of the first
layers' biases (weights, without a bias), so autograd skips the other weight-gradient
products (the mean gradient is summed from the per-sample parts). Then
``||g_n^W||² = ||a_n||² ||δ_n||²`` and ``K^W_nm = (a_n·a_m)(δ_n·δ_m)``, bias ``δ_n·δ_m``; a Conv2d's per-sample weight gradients come from torch's own weight-gradient kernel
with the samples as groups (what ``vmap`` does), in chunks of about 2²⁰ entries; layers with a
token axis, or called several times, materialise theirs. Products run in the model's dtype,
accumulation in float64. ``"vmap"``: ``torch.func.vmap(grad(...))`` for any module (memory
``chunk × P``, plus ``N × P`` when ``k > 0``); norms and sums per chunk and parameter, no
``N × P`` row matrix unless the Gram is asked for. ``"loop"``: one ``autograd.grad`` per sample,
rows in float64 (the naive oracle, not a speed baseline).

``"auto"`` (the default) picks ``"linear"`` when every trainable parameter belongs directly to an
``nn.Linear`` or a supported ``nn.Conv2d`` (groups=1, zero padding given as numbers), otherwise
``"vmap"``. The rule is measured (``python -m benchmarks.gradnoise``, docs/benchmarks.md): against
the library's other methods, a plain float32 loop, chunked ``vmap(grad)``, BackPACK and Opacus at
N = 1024, the fast path was the fastest on a CNN over 8×8 inputs, and tied (±10–15 %, the order
flipping between runs on a loaded machine) with BackPACK on an MLP and with chunked ``vmap(grad)``
on a CNN over 28×28 inputs with 5×5 kernels and max-pooling.

Samples must not interact: BatchNorm in training mode and active dropout raise ConfigError
(use ``model.eval()``, GroupNorm or LayerNorm).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor, nn

from nnphys.curvature.inputs import (
    Result, check_per_sample, fmt_values, legacy_xy, materialise, no_extra, renamed,
)
from nnphys.errors import ConfigError

__all__ = [
    "GradientNoise",
    "DecouplingCheck",
    "gradient_noise",
    "decoupling_check",
    "NoiseTracker",
    "noise_factor",
    "per_sample_gram",
]

Method = Literal["auto", "linear", "vmap", "loop"]
_METHODS = ("auto", "linear", "vmap", "loop")


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, repr=False)
class GradientNoise(Result):
    """Gradient-noise statistics at one parameter point. Tensors are float64 on the CPU.

    Attributes:
        per_sample_grad_norms: ``(N,)`` ``||∇ℓ_n||``.
        per_sample_losses: ``(N,)`` ``ℓ_n``.
        loss: ``L = (1/N) Σ ℓ_n``.
        grad_norm: ``||∇L||``.
        trace_cov: ``tr C_1 = (1/N) Σ ||∇ℓ_n - ∇L||²`` (escape-rate ``𝒩``).
        batch_size, replacement: the sampling scheme of ``C_B``.
        noise_factor: ``1/B`` (with replacement) or ``(N-B)/(B(N-1))`` (without).
        trace_noise: ``tr C_B = noise_factor · tr C_1``.
        cov_eigenvalues: ``(top_k,)`` largest eigenvalues of ``C_1``, descending.
        noise_eigenvalues: ``(top_k,)`` largest eigenvalues of ``C_B``.
        n_samples, n_params: ``N`` and the number of trainable parameters ``P``.
        method: the method actually used.
    """

    per_sample_grad_norms: Tensor
    per_sample_losses: Tensor
    loss: float
    grad_norm: float
    trace_cov: float
    batch_size: int
    replacement: bool
    noise_factor: float
    trace_noise: float
    cov_eigenvalues: Tensor
    noise_eigenvalues: Tensor
    n_samples: int
    n_params: int
    method: str

    _bulky = ("per_sample_grad_norms", "per_sample_losses")

    @property
    def noise_to_signal(self) -> float:
        """``tr C_B / ||∇L||²``: the minibatch noise against the squared full-batch gradient
        (inf when ``∇L = 0``)."""
        g2 = self.grad_norm ** 2
        return self.trace_noise / g2 if g2 > 0 else math.inf

    def to_dict(self, full: bool = False) -> dict:
        return {**super().to_dict(full), "noise_to_signal": self.noise_to_signal}

    def __str__(self) -> str:
        scheme = "with" if self.replacement else "without"
        lines = [
            f"GradientNoise(N={self.n_samples}, P={self.n_params}, B={self.batch_size} {scheme} "
            f"replacement, method={self.method!r})",
            f"  loss L = {self.loss:.6g}   ||grad L|| = {self.grad_norm:.4g}",
            f"  tr C_1 = {self.trace_cov:.4g}   tr C_B = {self.trace_noise:.4g} "
            f"(factor {self.noise_factor:.4g})   tr C_B/||grad L||^2 = {self.noise_to_signal:.4g}",
            f"  per-sample ||grad l_n||: mean {float(self.per_sample_grad_norms.mean()):.4g}, "
            f"max {float(self.per_sample_grad_norms.max()):.4g}",
        ]
        if len(self.cov_eigenvalues):
            lines.append(f"  top-{len(self.cov_eigenvalues)} eigenvalues of C_B: "
                         f"{fmt_values(self.noise_eigenvalues)}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True, repr=False)
class DecouplingCheck(Result):
    """The decoupling check of the escape-rate paper (guide ``docs/studies/escape-rate.md``).

    ``C_f^(μ) = Σ_c ∇f_c(x_μ) ∇f_c(x_μ)ᵀ`` (``c`` over model outputs; one term for a scalar
    model). Compares the spectra of ``coupled = (1/N) Σ_μ ℓ_μ C_f^(μ)`` and
    ``decoupled = L · (1/N) Σ_μ C_f^(μ)`` (``L = (1/N) Σ ℓ_μ``), both through ``NQ × NQ`` Gram
    matrices (Q outputs). Tensors float64 on the CPU.

    Attributes:
        coupled_eigenvalues, decoupled_eigenvalues: ``(top_k,)``, descending.
        coupled_trace, decoupled_trace: traces of the two matrices.
        gauss_newton_trace: ``tr (1/N) Σ_μ C_f^(μ) = (1/N) Σ_μ ||∇f_μ||²``.
        loss: ``L``.
        ratio: ``coupled_eigenvalues / decoupled_eigenvalues`` (nan where the latter is 0).
        alignment: ``<C, H> / (||C|| ||H||)`` (Frobenius) between ``C = coupled`` and the
            Gauss-Newton ``H = (1/N) Σ_μ C_f^(μ)``; 1 when the loss is the same on every sample.
        gn_eigenvalues: ``(top_k,)`` top eigenvalues ``h_i`` of ``H``, descending.
        coupled_along_gn: ``(top_k,)`` ``c_i = v_iᵀ C v_i`` along ``H``'s eigenvectors ``v_i``.
        gamma: least-squares slope of ``log c_i`` on ``log h_i`` (the exponent of ``C ∝ H^γ`` in
            ``H``'s top eigenspace; exactly 1 under decoupling); nan with fewer than 2 positive pairs.
            Where ``H`` has repeated eigenvalues (e.g. ``Q`` outputs sharing one Jacobian) the ``c_i``
            of a repeated group depend on the basis the solver picks, and ``top_k`` may split a group:
            read ``coupled_along_gn`` per group then (``alignment`` is basis-free).

    The ``C``-``H`` quantities need no ``P x P`` matrix: with ``K = J Jᵀ`` the Gram,
    ``D = diag(ℓ)`` and ``K u_i = N h_i u_i``, ``<C, H> = tr(D K²)/N²``, ``||H||² = tr K²/N²``,
    ``||C||² = tr(D K D K)/N²`` and ``c_i = h_i Σ_μ ℓ_μ u_{iμ}²``.
    """

    coupled_eigenvalues: Tensor
    decoupled_eigenvalues: Tensor
    coupled_trace: float
    decoupled_trace: float
    gauss_newton_trace: float
    loss: float
    ratio: Tensor
    n_samples: int
    method: str
    alignment: float = math.nan
    gn_eigenvalues: Tensor | None = None
    coupled_along_gn: Tensor | None = None
    gamma: float = math.nan

    def __str__(self) -> str:
        return "\n".join([
            f"DecouplingCheck(N={self.n_samples}, method={self.method!r}, L={self.loss:.6g})",
            f"  coupled top-{len(self.coupled_eigenvalues)}:   {fmt_values(self.coupled_eigenvalues)}",
            f"  decoupled top-{len(self.decoupled_eigenvalues)}: {fmt_values(self.decoupled_eigenvalues)}",
            f"  ratio: {fmt_values(self.ratio)}",
            f"  traces: coupled {self.coupled_trace:.4g}, decoupled {self.decoupled_trace:.4g}, "
            f"Gauss-Newton {self.gauss_newton_trace:.4g}",
            f"  alignment <C,H>/(|C||H|) = {self.alignment:.4g}   gamma = {self.gamma:.4g}",
        ])


# ----------------------------------------------------------------------------- checks


def noise_factor(n: int, batch_size: int, replacement: bool) -> float:
    """``C_B / C_1``: ``1/B`` with replacement (minibatch-noise Prop. 1), ``(N-B)/(B(N-1))``
    without (escape-rate Eq. 8). Raises ConfigError unless ``1 <= B <= N`` (``B <= N`` is only
    required without replacement)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError("batch_size", f"must be an integer >= 1 (got {batch_size!r})")
    if replacement:
        return 1.0 / batch_size
    if batch_size > n:
        raise ConfigError(
            "batch_size",
            f"must be <= N = {n} when sampling without replacement (got {batch_size})",
        )
    if n == 1:
        return 0.0
    return (n - batch_size) / (batch_size * (n - 1))


def _check_common(model, X, y, method, top_k, chunk_size, field="k") -> int:
    if not isinstance(model, nn.Module):
        raise ConfigError("model", f"must be a torch.nn.Module (got {type(model).__name__})")
    if not isinstance(X, Tensor) or not isinstance(y, Tensor):
        raise ConfigError("X", "X and y must be torch tensors")
    if X.ndim == 0 or y.ndim == 0:
        raise ConfigError("X", "X and y need a leading sample axis")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ConfigError("y", f"must have as many samples as X (got X: {n}, y: {y.shape[0]})")
    if n < 1:
        raise ConfigError("X", "needs at least one sample")
    if method not in _METHODS:
        raise ConfigError("method", f"must be one of {_METHODS} (got {method!r})")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ConfigError(field, f"must be an integer >= 0 (got {top_k!r})")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ConfigError("chunk_size", f"must be None or an integer >= 1 (got {chunk_size!r})")
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise ConfigError(
                "model",
                f"BatchNorm {name!r} in training mode couples samples; call model.eval() "
                "or use GroupNorm/LayerNorm",
            )
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0:
            raise ConfigError(
                "model", f"dropout {name!r} is active; call model.eval() for noise statistics"
            )
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError("model", "has no trainable parameters")
    return n


def _inputs(model, data, method, top_k, chunk_size) -> tuple[Tensor, Tensor, int]:
    """``(X, y, N)`` of ``data`` for ``model``, every argument checked (ConfigError naming it)."""
    if not isinstance(model, nn.Module):
        raise ConfigError("model", f"must be a torch.nn.Module (got {type(model).__name__})")
    X, y = materialise(data, model)
    return X, y, _check_common(model, X, y, method, top_k, chunk_size)


def _check_losses(losses: Tensor, n: int) -> None:
    check_per_sample(losses, n)


def _conv_supported(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Conv2d)
        and m.groups == 1
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


def _fast_path_ok(model: nn.Module) -> bool:
    for m in model.modules():
        own = [p for p in m._parameters.values() if p is not None and p.requires_grad]
        if own and not (type(m) is nn.Linear or _conv_supported(m)):
            return False
    return True


def _resolve(model: nn.Module, method: str) -> str:
    if method == "auto":
        return "linear" if _fast_path_ok(model) else "vmap"
    if method == "linear" and not _fast_path_ok(model):
        raise ConfigError(
            "method",
            "'linear' needs every trainable parameter to belong to an nn.Linear or nn.Conv2d "
            "(groups=1, numeric zero padding); use method='vmap' or 'auto'",
        )
    return method


def _trainable(model: nn.Module) -> list[tuple[str, Tensor]]:
    return [(k, p) for k, p in model.named_parameters() if p.requires_grad]


# ----------------------------------------------------------------------------- fast path


class _Capture:
    """Forward hooks recording each supported layer's input and a tensor hook recording the
    gradient of the backpropagated scalar w.r.t. its output, one entry per call."""

    def __init__(self, model: nn.Module):
        self.records: dict[nn.Module, list[list]] = {}
        self.handles = []
        self.const_input: list[Tensor] = []  # trainable parameters of calls whose input needs no grad
        for m in model.modules():
            if type(m) is nn.Linear or _conv_supported(m):
                if any(p.requires_grad for p in m.parameters(recurse=False)):
                    self.handles.append(m.register_forward_hook(self._fwd))
                    self.records[m] = []

    def _fwd(self, m, inputs, out):
        rec = [inputs[0].detach(), []]
        self.records[m].append(rec)
        if not inputs[0].requires_grad:  # the cheapest parameter whose gradient reaches this call
            b_on = m.bias is not None and m.bias.requires_grad
            self.const_input.append(m.bias if b_on else m.weight)
        if out.requires_grad:
            out.register_hook(lambda g, rec=rec: rec[1].append(g.detach()))

    def remove(self):
        for h in self.handles:
            h.remove()


def _tokens(m: nn.Module, a: Tensor, d: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Per-sample tokens ``a: (n, T, fan_in)``, ``δ: (n, T, fan_out)`` such that the sample's
    weight gradient is ``Σ_t δ_t a_tᵀ`` (convolutions via unfolded patches). Used for layers
    called more than once per forward pass; a single call goes through :func:`_weight_blocks`."""
    if isinstance(m, nn.Conv2d):
        _check_conv_input(a)
        cols = torch.nn.functional.unfold(
            a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride
        )  # (n, C_in k k, L)
        return cols.transpose(1, 2), d.reshape(d.shape[0], d.shape[1], -1).transpose(1, 2)
    _check_linear_input(a, n)
    return a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1])


def _check_conv_input(a: Tensor) -> None:
    if a.ndim != 4:
        raise ConfigError("X", "the fast path needs batched (N, C, H, W) inputs to Conv2d")


def _check_linear_input(a: Tensor, n: int) -> None:
    if a.shape[0] != n:
        raise ConfigError(
            "model",
            f"a Linear layer saw a leading dim {a.shape[0]} != N = {n}; the fast path needs the "
            "sample axis first in every layer; use method='vmap'",
        )


def _conv_sample_grads(m: nn.Conv2d, a: Tensor, d: Tensor, n: int, q_count: int) -> Tensor:
    """Per-sample weight gradients ``(n Q, C_out C_in kh kw)`` of one Conv2d call, in the model's
    dtype: torch's own convolution weight-gradient kernel with the samples as groups (input
    ``(1, n C_in, H, W)``, output gradients ``(1, n Q C_out, H', W')``, ``groups = n``), as
    ``torch.func.vmap`` batches it; no unfolded input is formed."""
    w = m.weight
    c_out = w.shape[0]
    x = a.reshape(1, n * a.shape[1], *a.shape[2:])
    g = d.reshape(1, n * q_count * c_out, *d.shape[3:])
    shape = w.new_empty(n * q_count * c_out, *w.shape[1:])  # only its shape is read
    _, gw, _ = torch.ops.aten.convolution_backward(
        g, x, shape, None, m.stride, m.padding, m.dilation, False, [0, 0], n, [False, True, False]
    )
    return gw.reshape(n * q_count, -1)


def _conv_chunk(m: nn.Conv2d, q_count: int) -> int:
    """Samples per call of :func:`_conv_sample_grads`: blocks of about 2²⁰ entries (4 MiB in
    float32), at least 16 samples. Measured (1 thread, N = 512): the grouped kernel on all 512
    samples of a 16→32 5×5 layer at 14×14 took 198 ms, in chunks of 64–256 86–93 ms."""
    return max(16, int(2 ** 20 // max(1, q_count * m.weight.numel())))


def _weight_blocks(m: nn.Module, a: Tensor, d: Tensor, n: int, q_count: int):
    """Yield ``(first column, block)``: blocks of the per-sample weight gradients of ONE call of
    ``m`` (rows ``r = n Q + q``), in the model's dtype, each holding every row and the columns
    from the first one on, in the weight's own layout:
    ``a`` is the call's input, ``d`` its output gradients stacked over heads, ``(n, Q, *out)``.

    Linear with one token: the single outer product is never formed (the caller uses the
    factorised norm and Gram). Linear with tokens: ``Σ_t δ_t a_tᵀ``, chunked over output
    features (at most 2²⁴ entries a block). Conv2d: :func:`_conv_sample_grads`, whole rows."""
    rows = n * q_count
    if isinstance(m, nn.Conv2d):
        _check_conv_input(a)
        step = _conv_chunk(m, q_count)
        yield 0, torch.cat([_conv_sample_grads(m, a[i:i + step], d[i:i + step], len(a[i:i + step]), q_count)
                            for i in range(0, n, step)])
        return
    _check_linear_input(a, n)
    a_tok = a.reshape(n, -1, a.shape[-1])  # (n, T, in)
    d_tok = d.reshape(n, q_count, a_tok.shape[1], d.shape[-1])  # (n, Q, T, out)
    step = max(1, int(2 ** 24 // max(1, rows * a_tok.shape[-1])))  # output features per block
    for o in range(0, d_tok.shape[-1], step):
        gw = torch.einsum("nqto,nti->nqoi", d_tok[..., o:o + step], a_tok)
        yield o * a_tok.shape[-1], gw.reshape(rows, -1)


def _linear_stats(
    model: nn.Module, X: Tensor, heads: Callable[[Tensor], Tensor], want_gram: bool,
    acc: dict | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """One forward pass; one backward pass per head column.

    ``heads(output) -> (N, Q)`` per-sample scalars ``h_{nq}`` (losses: Q = 1). Returns
    ``(h (N, Q), sq_norms (N Q,), gram (NQ, NQ) or None, sum_grad_sq ()``) with rows ordered
    ``r = n Q + q``, all float64; ``sum_grad_sq[q]`` is ``||Σ_n ∇h_{nq}||²`` summed over q.

    Products (per-sample blocks, their squared norms, the Gram's matrix products) run in the
    model's dtype at BLAS speed; each block's contribution is accumulated in float64.
    """
    n = X.shape[0]
    cap = _Capture(model)
    # The backward pass is not asked for the parameters' gradients: only for the bias (or, without
    # one, the weight) of each layer call whose input needs no gradient (the first layers). Every
    # other layer call lies on the way there, so the hooks see every δ, while autograd skips the
    # weight-gradient products (the sums Σ_n g_n come from the per-sample blocks below). X is
    # detached so that the way down ends at those layers.
    xin = X.detach()
    try:
        out = model(xin)
        h = heads(out)
        q_count = h.shape[1]
        deltas: list[dict] = []
        targets = list({id(p): p for p in cap.const_input}.values()) or [p for _, p in _trainable(model)]
        for q in range(q_count):
            for recs in cap.records.values():
                for rec in recs:
                    rec[1].clear()
            torch.autograd.grad(h[:, q].sum(), targets, retain_graph=q + 1 < q_count,
                                allow_unused=True)
            deltas.append({m: [rec[1][0] if rec[1] else None for rec in recs]
                           for m, recs in cap.records.items()})
    finally:
        cap.remove()

    rows = n * q_count
    dev = X.device
    sq = torch.zeros(rows, dtype=torch.float64, device=dev)
    gram = torch.zeros(rows, rows, dtype=torch.float64, device=dev) if want_gram else None

    # Σ_n ∇h_nq per head and parameter, (Q, numel) float64: shared across sample chunks via `acc`
    acc = {} if acc is None else acc

    def add_sum(p: Tensor, tot: Tensor, col0: int = 0) -> None:
        buf = acc.get(p)
        if buf is None:
            buf = acc[p] = torch.zeros(q_count, p.numel(), dtype=torch.float64, device=dev)
        buf[:, col0:col0 + tot.shape[1]] += tot.double()

    def add_block(blk: Tensor, p: Tensor, col0: int = 0) -> None:
        """``blk``: columns ``col0 ..`` of parameter ``p``'s per-sample gradients, every row."""
        sq.add_(torch.linalg.vecdot(blk, blk).double())
        add_sum(p, blk.reshape(n, q_count, -1).sum(0), col0)
        if want_gram:
            gram.add_((blk @ blk.T).double())

    for m, recs in cap.records.items():
        w_on = m.weight.requires_grad
        b_on = m.bias is not None and m.bias.requires_grad
        calls = []
        for ci, rec in enumerate(recs):
            ds = [deltas[q][m][ci] for q in range(q_count)]
            if any(d is None for d in ds):
                continue  # this call did not reach the heads
            calls.append((rec[0], ds[0].unsqueeze(1) if q_count == 1 else torch.stack(ds, 1)))
        if not calls:
            continue
        if b_on:  # bias gradient: δ summed over tokens / pixels (and over calls)
            dims = (3, 4) if isinstance(m, nn.Conv2d) else (2,)
            b = sum((d if isinstance(m, nn.Conv2d) else d.reshape(n, q_count, -1, d.shape[-1])
                     ).sum(dims) for _, d in calls)  # (n, Q, out)
            add_block(b.reshape(rows, -1), m.bias)
        if not w_on:
            continue
        if len(calls) == 1:
            a, d = calls[0]
            if not isinstance(m, nn.Conv2d) and a.ndim == 2:
                # one token: ||δ aᵀ||² = ||a||² ||δ||², <δ_n a_nᵀ, δ_m a_mᵀ> = (a_n·a_m)(δ_n·δ_m)
                _check_linear_input(a, n)
                d1 = d.reshape(rows, -1)
                a_sq = torch.linalg.vecdot(a, a).double()
                if q_count > 1:
                    a_sq = a_sq.repeat_interleave(q_count)
                sq.add_(a_sq * torch.linalg.vecdot(d1, d1).double())
                tot = torch.einsum("nqo,ni->qoi", d.reshape(n, q_count, -1), a)  # Σ_n δ aᵀ per head
                add_sum(m.weight, tot.reshape(q_count, -1))
                if want_gram:
                    aa = (a @ a.T).double()
                    if q_count > 1:
                        aa = aa.repeat_interleave(q_count, 0).repeat_interleave(q_count, 1)
                    gram.add_(aa * (d1 @ d1.T).double())
                continue
            if isinstance(m, nn.Conv2d) and not want_gram:  # whole rows, a chunk of samples at a time
                step = _conv_chunk(m, q_count)
                tot = 0.0
                for i in range(0, n, step):
                    j = min(n, i + step)
                    blk = _conv_sample_grads(m, a[i:j], d[i:j], j - i, q_count)
                    sq[i * q_count:j * q_count] += torch.linalg.vecdot(blk, blk).double()
                    tot = tot + blk.reshape(j - i, q_count, -1).sum(0).double()
                add_sum(m.weight, tot)
                continue
            for col0, blk in _weight_blocks(m, a, d, n, q_count):
                add_block(blk, m.weight, col0)
            continue
        # several calls of one layer: the sample's gradient sums over calls, so the calls'
        # tokens are concatenated (convolutions unfolded, once a call) and blocks formed from them
        a_all, d_all = [], []
        for a, d in calls:
            a_tok, _ = _tokens(m, a, d[:, 0], n)  # (n, T, in)
            a_all.append(a_tok)
            d_all.append(d.reshape(n, q_count, d.shape[2], -1).transpose(2, 3)
                         if isinstance(m, nn.Conv2d) else d.reshape(n, q_count, -1, d.shape[-1]))
        a_cat = torch.cat(a_all, 1)
        d_cat = torch.cat(d_all, 2)  # (n, Q, T, out)
        step = max(1, int(2 ** 24 // max(1, rows * a_cat.shape[-1])))
        for o in range(0, d_cat.shape[-1], step):
            add_block(torch.einsum("nqto,nti->nqoi", d_cat[..., o:o + step], a_cat).reshape(rows, -1),
                      m.weight, o * a_cat.shape[-1])
    sum_sq = sum(((t * t).sum() for t in acc.values()), torch.zeros((), dtype=torch.float64, device=dev))
    return h.detach().double(), sq, gram, sum_sq


# ----------------------------------------------------------------------------- vmap / loop


def _rows_vmap(model, X, y, per_sample: Callable, chunk_size: int | None, q_count: int):
    """Yield, per chunk of ``c`` samples, the per-sample gradients via torch.func as a list of
    ``(c Q, P_k)`` blocks, one per trainable parameter, in the model's dtype (no copy into one row),
    and the head values ``(c Q,)``."""
    from torch.func import functional_call, grad, jacrev, vmap

    named = _trainable(model)
    params = {k: p.detach() for k, p in named}
    frozen = {k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def h(p, x, t):
        out = functional_call(model, ({**p, **frozen}, buffers), (x.unsqueeze(0),))
        return per_sample(out, t.unsqueeze(0)).reshape(-1)

    def h_aux(p, x, t):
        v = h(p, x, t)
        return (v[0] if q_count == 1 else v), v.detach()

    # the head values come back as aux: no separate forward pass for them
    fn = vmap((grad if q_count == 1 else jacrev)(h_aux, has_aux=True), in_dims=(None, 0, 0))
    n = X.shape[0]
    cs = chunk_size or n
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Pp]erformance drop.*")
        for i in range(0, n, cs):
            g, v = fn(params, X[i:i + cs], y[i:i + cs])
            c = min(cs, n - i)
            yield [g[k].reshape(c * q_count, -1) for k, _ in named], v.reshape(-1)


def _rows_loop(model, X, y, per_sample: Callable, q_count: int):
    """Yield, per sample, ``([rows (Q, P) float64], head values (Q,))``: one autograd.grad per
    sample and head, every row converted to float64 (the naive oracle, not a speed baseline)."""
    params = [p for _, p in _trainable(model)]
    for i in range(X.shape[0]):
        v = per_sample(model(X[i:i + 1]), y[i:i + 1]).reshape(-1)
        rows = []
        for q in range(q_count):
            gs = torch.autograd.grad(v[q], params, retain_graph=q + 1 < q_count,
                                     allow_unused=True)
            rows.append(torch.cat([
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(gs, params)
            ]))
        yield [torch.stack(rows).double()], v.detach()


def _generic_stats(model, X, y, per_sample, q_count, method, chunk_size, want_gram):
    """Norms, Gram, ``||Σ rows||²`` (per head) and the head values ``(N Q,)`` float64 from
    materialised per-sample gradient rows.

    Norms and sums are taken per block in the blocks' dtype and accumulated in float64; the Gram
    (``want_gram``) needs whole rows, so only then are the blocks joined."""
    n = X.shape[0]
    it = (_rows_vmap(model, X, y, per_sample, chunk_size, q_count) if method == "vmap"
          else _rows_loop(model, X, y, per_sample, q_count))
    sq_parts, kept, values = [], [], []
    totals: list[Tensor] | None = None
    for blocks, v in it:
        values.append(v)
        sq_parts.append(sum(torch.linalg.vecdot(b, b).double() for b in blocks))
        sums = [b.reshape(-1, q_count, b.shape[1]).sum(0).double() for b in blocks]  # (Q, P_k)
        totals = sums if totals is None else [t + s_ for t, s_ in zip(totals, sums)]
        if want_gram:
            kept.append(blocks[0] if len(blocks) == 1 else torch.cat(blocks, 1))
    sq = torch.cat(sq_parts)
    gram = None
    if want_gram:
        rmat = torch.cat(kept)
        gram = (rmat @ rmat.T).double()
    sum_sq = sum((t * t).sum() for t in totals)
    assert sq.shape[0] == n * q_count
    return sq, gram, sum_sq, torch.cat(values).double()


_LINEAR_CHUNK = 256
"""Samples per fast-path pass of a model with a Conv2d when no Gram is needed (``chunk_size=None``;
models of Linear layers only run in one pass). Measured with the models of
``benchmarks/gradnoise.py`` (N = 1024, 1 thread, one process, 5 interleaved rounds, load average
7), in multiples of one forward + backward of all N samples: CNN on 8×8 inputs 1.23 in one pass,
0.82 / 0.92 / 0.99 in chunks of 512 / 256 / 128; CNN on 28×28 inputs 1.19, 0.92 / 0.90 / 0.84
(a chunk's activations stay in cache); MLP 64-512-512-512-1 1.29 in one pass, 1.50 / 1.49 / 1.73
in chunks (its weight-sized products lose more than its small activations gain)."""


def _per_sample_stats(model, loss_fn, X, y, used: str, chunk_size, want_gram: bool):
    """``(losses (N,), sq_norms (N,), gram (N, N) or None, ||Σ_n g_n||²)``, float64, of the per-sample
    losses ``loss_fn(model(X), y)`` by method ``used`` (``linear``: :func:`_linear_stats`; ``vmap`` /
    ``loop``: :func:`_generic_stats`). The one per-sample-gradient Gram of the library: used by
    :func:`gradient_noise` and :func:`per_sample_gram`."""

    def per_sample(out, t):
        v = loss_fn(out, t)
        _check_losses(v, out.shape[0] if out.ndim else 1)
        return v

    n = X.shape[0]
    conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    cs = n if want_gram else (chunk_size or (_LINEAR_CHUNK if conv else n))
    if used == "linear" and cs >= n:
        h, sq, gram, sum_sq = _linear_stats(
            model, X, lambda out: per_sample(out, y).unsqueeze(1), want_gram
        )
        losses = h[:, 0]
    elif used == "linear":  # trace only: passes over chunks of samples, the sums Σ_n g_n shared
        acc: dict = {}
        parts = [_linear_stats(model, X[i:i + cs],
                               lambda out, t=y[i:i + cs]: per_sample(out, t).unsqueeze(1), False, acc)
                 for i in range(0, n, cs)]
        losses = torch.cat([p_[0][:, 0] for p_ in parts])
        sq = torch.cat([p_[1] for p_ in parts])
        gram = None
        sum_sq = sum((t * t).sum() for t in acc.values())
    else:
        sq, gram, sum_sq, losses = _generic_stats(model, X, y, per_sample, 1, used, chunk_size,
                                                  want_gram)
    return losses, sq, gram, sum_sq


# ----------------------------------------------------------------------------- public


def _top_eigh(mat: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``(values (k,), vectors (n, k))`` of the ``k`` largest eigenvalues of a symmetric matrix,
    descending, float64 on the CPU (dense ``eigh`` up to n = 4096, Lanczos beyond)."""
    n = mat.shape[0]
    m = mat.detach().cpu().double()
    if n > 4096 and k < n // 8:
        from scipy.sparse.linalg import eigsh

        ev, vec = eigsh(m.numpy(), k=k, which="LA", tol=1e-13, v0=np.ones(n))
        ev, vec = torch.from_numpy(ev.copy()), torch.from_numpy(vec.copy())
    else:
        ev, vec = torch.linalg.eigh(m)
    order = torch.argsort(ev, descending=True)[:k]
    return ev[order], vec[:, order]


def _ch_alignment(gram: Tensor, ell_rep: Tensor, n: int, k: int) -> tuple[float, Tensor, Tensor, float]:
    """C-H alignment from the Gram (see :class:`DecouplingCheck`): ``(alignment, h (k,), c (k,), gamma)``."""
    K = 0.5 * (gram + gram.T).detach().cpu().double()
    d = ell_rep.detach().cpu().double()
    K2 = K * K
    dk = d @ K2
    align = float((dk.sum()) / torch.sqrt(K2.sum() * (dk @ d))) if float(K2.sum()) > 0 and float(dk @ d) > 0 else math.nan
    h, U = _top_eigh(K / n, min(k, K.shape[0]))
    c = h * (d[:, None] * U * U).sum(0)
    pos = (h > 0) & (c > 0)
    gamma = math.nan
    if int(pos.sum()) >= 2:
        lh, lc = torch.log(h[pos]), torch.log(c[pos])
        lh0 = lh - lh.mean()
        if float((lh0 * lh0).sum()) > 0:
            gamma = float((lh0 * (lc - lc.mean())).sum() / (lh0 * lh0).sum())
    return align, h.clamp_min(0.0), c, gamma


def _top_eigs(mat: Tensor, k: int) -> Tensor:
    """Largest ``k`` eigenvalues of a symmetric PSD matrix, descending: dense ``eigvalsh`` for
    small matrices or large ``k``, Lanczos (scipy ``eigsh``) for a few of many."""
    if k == 0:
        return torch.zeros(0, dtype=torch.float64)
    n = mat.shape[0]
    if n > 512 and k < n // 8:
        from scipy.sparse.linalg import eigsh

        m = mat.detach().cpu().double().numpy()
        ev = torch.from_numpy(eigsh(m, k=k, which="LA", return_eigenvectors=False,
                                    tol=1e-13, v0=np.ones(n)).copy())
        return torch.sort(ev, descending=True).values.clamp_min(0.0)
    ev = torch.linalg.eigvalsh(mat)
    ev = torch.flip(ev, (0,))[:k]
    if ev.shape[0] < k:  # pad: C has at most N non-zero eigenvalues
        ev = torch.cat([ev, torch.zeros(k - ev.shape[0], dtype=ev.dtype, device=ev.device)])
    return ev.clamp_min(0.0).cpu()


def gradient_noise(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data,
    *args,
    k: int | None = None,
    batch_size: int | None = None,
    replacement: bool = False,
    method: Method = "auto",
    chunk_size: int | None = None,
    top_k: int | None = None,
) -> GradientNoise:
    """Minibatch-noise statistics of ``model`` on ``data`` at its current parameters.

    Args:
        model: any ``nn.Module`` mapping ``X`` ``(N, ...)`` to outputs ``(N, ...)``, samples
            independent (no train-mode BatchNorm, no active dropout).
        loss_fn: ``loss_fn(output, target) -> (n,)`` per-sample losses ``ℓ_n``
            (``reduction="none"``; a scalar, mean-reduced loss raises ConfigError naming it).
        data: one batch ``(X, y)`` of ``(N, ...)`` tensors, or a re-iterable of ``(x, y)``
            batches (a ``DataLoader``), concatenated once; floating ``X`` must have the model's dtype.
        k: number of leading eigenvalues of ``C_1`` / ``C_B`` (via the centred ``N × N``
            Gram matrix, ``O(N²)`` memory, ``O(N³)`` time; 0 skips it). Was ``top_k``.
        batch_size: ``B`` of the minibatch noise ``C_B`` (None: ``B = 1``).
        replacement: ``True``: ``C_B = C_1/B`` (Prop. 1); ``False``: ``(N-B)/(B(N-1)) C_1``.
        method: ``"auto" | "linear" | "vmap" | "loop"`` (module docstring).
        chunk_size: samples per vmap call (memory ``chunk × P``), and per fast-path pass when
            ``k = 0`` (default there: 256 for a model with a Conv2d, else all); ignored by ``"loop"``.

    Returns:
        :class:`GradientNoise`. Gradients are not accumulated into ``.grad``.
    """
    data, args = legacy_xy("gradient_noise", data, args)
    no_extra("gradient_noise", args)
    top_k = renamed("gradient_noise", "k", k, "top_k", top_k, 0)
    X, y, n = _inputs(model, data, method, top_k, chunk_size)
    if top_k > n:
        raise ConfigError("k", f"must be <= N = {n}, the number of samples (got {top_k})")
    bs = 1 if batch_size is None else batch_size
    factor = noise_factor(n, bs, replacement)
    used = _resolve(model, method)
    n_params = sum(p.numel() for _, p in _trainable(model))

    want_gram = top_k > 0
    losses, sq, gram, sum_sq = _per_sample_stats(model, loss_fn, X, y, used, chunk_size, want_gram)
    mean_sq = sq.mean()
    gbar_sq = sum_sq / (n * n)
    trace_cov = float((mean_sq - gbar_sq).clamp_min(0.0))
    if want_gram:
        # Π K Π / N: rows and columns centred, so its trace is tr C_1 (same number, Gram route)
        kc = gram - gram.mean(0, keepdim=True)
        kc = kc - kc.mean(1, keepdim=True)
        cov_ev = _top_eigs(0.5 * (kc + kc.T) / n, top_k)
    else:
        cov_ev = torch.zeros(0, dtype=torch.float64)
    return GradientNoise(
        per_sample_grad_norms=sq.sqrt().cpu(),
        per_sample_losses=losses.detach().cpu(),
        loss=float(losses.mean()),
        grad_norm=float(gbar_sq.sqrt()),
        trace_cov=trace_cov,
        batch_size=bs,
        replacement=bool(replacement),
        noise_factor=factor,
        trace_noise=factor * trace_cov,
        cov_eigenvalues=cov_ev,
        noise_eigenvalues=cov_ev * factor,
        n_samples=n,
        n_params=n_params,
        method=used,
    )


def per_sample_gram(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data,
    *,
    method: Method = "auto",
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The per-sample-gradient Gram matrix ``K_nm = <g_n, g_m>`` (``g_n = ∇ℓ_n``) and the losses ``ℓ_n``.

    ``model``, ``loss_fn`` (per-sample losses, ``reduction="none"``), ``data``, ``method`` and
    ``chunk_size`` as in :func:`gradient_noise`, whose Gram this is (the same code): with the
    ``"linear"`` fast path ``K = Σ_layers (A Aᵀ) ⊙ (Δ Δᵀ) + Δ Δᵀ`` from each layer's inputs ``A`` and
    back-propagated signals ``Δ``, no per-sample gradient formed; otherwise from materialised rows.
    Returns ``(K (N, N), losses (N,))``, float64, on the data's device. Gradients are not
    accumulated into ``.grad``.
    """
    X, y, _ = _inputs(model, data, method, 0, chunk_size)
    losses, _, gram, _ = _per_sample_stats(model, loss_fn, X, y, _resolve(model, method), chunk_size, True)
    return gram, losses


def decoupling_check(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data,
    *args,
    k: int | None = None,
    method: Method = "auto",
    chunk_size: int | None = None,
    top_k: int | None = None,
) -> DecouplingCheck:
    """The decoupling approximation of the escape-rate paper: spectra of
    ``(1/N) Σ_μ ℓ_μ C_f^(μ)`` against ``L · (1/N) Σ_μ C_f^(μ)``, ``C_f^(μ) = Σ_c ∇f_c ∇f_cᵀ``.

    Both come from the empirical-NTK Gram ``K_f[(μ,c),(ν,c')] = <∇f_{μc}, ∇f_{νc'}>``
    (``NQ × NQ`` for Q model outputs; never ``P × P``): coupled = eig of ``D K_f D / N`` with
    ``D = diag(√ℓ_μ)``, decoupled = eig of ``L K_f / N``.

    Args:
        model: outputs ``(N,)``, ``(N, 1)`` or ``(N, Q)``. ``loss_fn``: per-sample ``(N,)``.
        data: ``(X, y)`` or a re-iterable of batches (as :func:`gradient_noise`).
        k: eigenvalues kept (``<= N Q``, default 20; was ``top_k``, also positional after ``X, y``).
    """
    data, args = legacy_xy("decoupling_check", data, args)
    if args and top_k is None and k is None:  # the old positional top_k
        top_k, args = args[0], args[1:]
    no_extra("decoupling_check", args)
    top_k = renamed("decoupling_check", "k", k, "top_k", top_k, 20)
    X, y, n = _inputs(model, data, method, top_k, chunk_size)
    used = _resolve(model, method)
    with torch.no_grad():
        out0 = model(X)
        losses = loss_fn(out0, y)
        _check_losses(losses, n)
    q_count = out0[0].numel() if out0.ndim > 1 else 1
    if top_k > n * q_count:
        raise ConfigError("k", f"must be <= N·Q = {n * q_count} (got {top_k})")

    if used == "linear":
        _, sq, gram, _ = _linear_stats(model, X, lambda out: out.reshape(n, -1), True)
    else:
        sq, gram, _, _ = _generic_stats(
            model, X, y, lambda out, t: out.reshape(-1), q_count, used, chunk_size, True
        )
    ell = losses.detach().double().clamp_min(0.0)
    big_l = float(ell.mean())
    s = ell.sqrt().repeat_interleave(q_count).to(gram.device)
    coupled = (s[:, None] * gram * s[None, :]) / n
    ce = _top_eigs(0.5 * (coupled + coupled.T), top_k)
    # the decoupled matrix is L times the Gauss-Newton one: its spectrum comes with the C-H eigenpairs
    align, gn_ev, c_along, gamma = _ch_alignment(gram, s * s, n, top_k)
    de = big_l * gn_ev
    ratio = torch.where(de > 0, ce / torch.where(de > 0, de, torch.ones_like(de)),
                        torch.full_like(de, math.nan))
    gn = float(sq.sum() / n)
    return DecouplingCheck(
        coupled_eigenvalues=ce,
        decoupled_eigenvalues=de,
        coupled_trace=float((ell.repeat_interleave(q_count).to(sq.device) * sq).sum() / n),
        decoupled_trace=big_l * gn,
        gauss_newton_trace=gn,
        loss=big_l,
        ratio=ratio,
        n_samples=n,
        method=used,
        alignment=align,
        gn_eigenvalues=gn_ev,
        coupled_along_gn=c_along,
        gamma=gamma,
    )


class NoiseTracker:
    """Training callback recording ``(step, loss, trace_noise, ...)`` every ``every`` steps.

    >>> tracker = NoiseTracker(model, loss_fn, (X, y), batch_size=32, every=50)
    >>> for step in range(n_steps):
    ...     ...  # one optimiser step
    ...     tracker(step)
    >>> arrs = tracker.as_arrays()  # {"step", "loss", "trace_noise", "trace_cov", "grad_norm"}

    ``data`` (``(X, y)`` or a re-iterable of batches, concatenated once) is the data set on which
    the noise is measured (typically the training set or a fixed subset of it). Measurement does
    not touch ``.grad`` nor the model's mode. ``NoiseTracker(model, loss_fn, X, y, ...)`` and
    ``top_k=`` are deprecated forms.
    """

    def __init__(self, model: nn.Module, loss_fn, data, *args, batch_size: int,
                 every: int = 1, replacement: bool = False, k: int | None = None,
                 method: Method = "auto", chunk_size: int | None = None,
                 top_k: int | None = None):
        data, args = legacy_xy("NoiseTracker", data, args)
        no_extra("NoiseTracker", args)
        k = renamed("NoiseTracker", "k", k, "top_k", top_k, 0)
        if not isinstance(every, int) or every < 1:
            raise ConfigError("every", f"must be an integer >= 1 (got {every!r})")
        if not isinstance(model, nn.Module):
            raise ConfigError("model", f"must be a torch.nn.Module (got {type(model).__name__})")
        self.X, self.y = materialise(data, model)
        noise_factor(self.X.shape[0], batch_size, replacement)  # validate early
        self.model, self.loss_fn = model, loss_fn
        self.kw = dict(batch_size=batch_size, replacement=replacement, k=k,
                       method=method, chunk_size=chunk_size)
        self.every = every
        self.records: list[dict] = []

    def __call__(self, step: int, force: bool = False) -> GradientNoise | None:
        if not force and step % self.every:
            return None
        gn = gradient_noise(self.model, self.loss_fn, (self.X, self.y), **self.kw)
        self.records.append(dict(step=int(step), loss=gn.loss, trace_noise=gn.trace_noise,
                                 trace_cov=gn.trace_cov, grad_norm=gn.grad_norm,
                                 eigenvalues=gn.noise_eigenvalues.tolist()))
        return gn

    def as_arrays(self) -> dict[str, "object"]:
        import numpy as np

        keys = ("step", "loss", "trace_noise", "trace_cov", "grad_norm")
        return {k: np.array([r[k] for r in self.records], dtype=float) for k in keys}
