"""Trace of the curvature by Hutchinson's estimator or Hutch++ (Meyer, Musco, Musco & Woodruff 2021).

- Hutchinson: ``tr H ≈ (1/m) Σ_i z_iᵀ H z_i`` with Rademacher ``z_i`` (unbiased); standard error
  ``std(z_iᵀ H z_i) / √m``.
- Hutch++ with ``n_matvec = 3s`` products: ``Q = orth(H S)`` for a ``P × s`` Rademacher ``S``,
  ``tr H ≈ tr(Qᵀ H Q) + (1/s) Σ_i g_iᵀ (I - QQᵀ) H (I - QQᵀ) g_i``; the first term is exact for the
  sketch, the standard error is the Hutchinson one of the deflated remainder (conditional on ``Q``).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from nnphys.curvature.inputs import Result, no_extra
from nnphys.curvature.lanczos import rademacher
from nnphys.curvature.operator import check_pos, operator
from nnphys.errors import ConfigError


@dataclasses.dataclass(frozen=True, repr=False)
class TraceEstimate(Result):
    """``tr H`` (or ``tr G``) estimate with its standard error; ``samples`` are the per-probe
    quadratic forms of the stochastic part (``(m,)``); ``exact_part`` is Hutch++'s ``tr(QᵀHQ)``
    (0 for Hutchinson)."""

    trace: float
    stderr: float
    samples: torch.Tensor
    exact_part: float
    method: str
    n_matvec: int
    curvature: str
    n_params: int

    _bulky = ("samples",)

    def __str__(self) -> str:
        return (f"TraceEstimate: tr {self.curvature} = {self.trace:.6g} ± {self.stderr:.2g} (1 s.e., {self.method}, "
                f"{self.n_matvec} products)")


def trace_of(op, *, n_matvec: int = 30, method: str = "hutch++", seed: int = 0) -> TraceEstimate:
    """Trace estimate on a built operator (see :func:`hessian_trace`)."""
    check_pos("n_matvec", n_matvec, integer=True)
    if method not in ("hutchinson", "hutch++"):
        raise ConfigError("method", f"must be 'hutchinson' or 'hutch++' (got {method!r})")
    used0 = op.n_matvec
    P = op.P
    if method == "hutchinson":
        if n_matvec < 2:
            raise ConfigError("n_matvec", "Hutchinson needs >= 2 probes for a standard error")
        qs = torch.stack([(lambda z: z @ op.matvec(z))(rademacher(P, seed, "curvature.trace", i))
                          for i in range(n_matvec)])
        exact = 0.0
    else:
        s = n_matvec // 3
        if s < 2:
            raise ConfigError("n_matvec", f"Hutch++ needs n_matvec >= 6 (got {n_matvec})")
        S = torch.stack([rademacher(P, seed, "curvature.trace.sketch", i) for i in range(s)], 1)
        Y = torch.stack([op.matvec(S[:, i]) for i in range(s)], 1)
        Q, _ = torch.linalg.qr(Y)
        HQ = torch.stack([op.matvec(Q[:, i]) for i in range(Q.shape[1])], 1)
        exact = float((Q * HQ).sum())
        vals = []
        for i in range(s):
            g = rademacher(P, seed, "curvature.trace.probe", i)
            g = g - Q @ (Q.T @ g)
            vals.append(g @ op.matvec(g))
        qs = torch.stack(vals)
    n = qs.shape[0]
    return TraceEstimate(trace=exact + float(qs.mean()), stderr=float(qs.std(unbiased=True)) / math.sqrt(n),
                         samples=qs, exact_part=exact, method=method, n_matvec=op.n_matvec - used0,
                         curvature=op.curvature, n_params=P)


def hessian_trace(model, loss_fn, data, *args, n_matvec: int = 30, method: str = "hutch++", seed: int = 0,
                  curvature: str = "hessian", chunk_size: int | None = None,
                  hvp_method: str = "auto") -> TraceEstimate:
    """``tr ∇²L`` (or ``tr G``) of ``model`` on ``data`` from ``n_matvec`` curvature-vector products.

    Args:
        method: ``"hutch++"`` (default; variance ``O(1/m²)`` for fast-decaying spectra) or
            ``"hutchinson"``.
        seed: Rademacher probes from ``nnphys.seeding.torch_generator(seed, label, i)``.
        curvature, chunk_size, hvp_method: see :class:`~nnphys.curvature.operator.CurvatureOperator`.

    Returns :class:`TraceEstimate` (``trace``, ``stderr``).
    """
    no_extra("hessian_trace", args)
    op = operator(model, loss_fn, data, curvature=curvature, chunk_size=chunk_size, method=hvp_method)
    return trace_of(op, n_matvec=n_matvec, method=method, seed=seed)
