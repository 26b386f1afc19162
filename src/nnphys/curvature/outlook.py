"""What the escape-rate theory predicts for a model at its current parameters.

``escape_outlook`` reads ``L*``, the Hessian's outliers ``n`` and ``h*`` (rule of
:mod:`nnphys.curvature.outliers`, [default]), and evaluates, for batch size ``B`` and learning
rate ``η``:

- ``B/(η h*)``, ``n_c = 2(B/(η h*) + 1)`` (Mori22 eq. 19) [paper];
- the escape exponent ``a = B/(η h*) + 1 - n/2`` of ``κ ∝ c^-a`` (Mori22 eq. 17; eq. 16 for
  ``n = 1``) [paper], with the regime ``n < n_c`` (stable, ``a > 0``) or ``n >= n_c``;
- the noise-to-Hessian alignment behind ``Σ ≈ (2L/B) H`` (the escape-rate paper's noise model
  [paper, corrected]: docs/curvature.md, "Algorithms and rules"; minibatch-noise ``C ≈ (2L_0/S) H_0``): along each top eigenvector ``v_i``,
  ``c_i = v_iᵀ C_B v_i`` (exact, from forward-mode per-sample projections ``∇ℓ_n · v_i``) against
  ``2 L f_B λ_i`` with the sampling factor ``f_B = C_B/C_1`` of ``gradnoise.noise_factor``
  (``1/B`` with replacement, ``(N-B)/(B(N-1))`` without; ≈ ``1/B`` for ``B ≪ N``) [derived];
  the cosine between ``Vᵀ C_B V`` and ``diag(λ)``; and ``tr C_B`` (``gradnoise.gradient_noise``)
  against ``2 L f_B tr H`` (Hutch++).

``Σ ≈ (2L/B) H`` is derived for the squared loss ``ℓ = ½|f - y|²``; for other losses (e.g. cross
entropy, whose noise is closer to the Fisher) the ratios measure how far that relation is from
holding, and are not a test of it. The theory assumes ``θ`` is a minimum (``∇L ≈ 0``, ``H`` positive on the outliers): the outlook
reports ``||∇L||`` and flags negative top eigenvalues rather than refusing.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from nnphys.curvature.inputs import Result, fmt_values, no_extra, renamed
from nnphys.curvature.lanczos import lanczos_top, slq_density
from nnphys.curvature.operator import check_pos, operator
from nnphys.curvature.outliers import Outliers, outliers
from nnphys.errors import ConfigError
from nnphys.curvature.trace import trace_of


@dataclasses.dataclass(frozen=True, repr=False)
class EscapeOutlook(Result):
    """Escape-rate outlook at one parameter point (see the module docstring; floats are nan
    where undefined, e.g. without outliers)."""

    loss: float                 # L* = (1/N) Σ ℓ_n at the current parameters
    grad_norm: float            # ||∇L|| (≈ 0 at a minimum)
    h_star: float               # typical outlier curvature [default rule]
    n: int                      # number of outliers [default rule]
    batch_size: int             # B
    lr: float                   # η
    B_over_eta_h: float         # B/(η h*)
    n_c: float                  # 2(B/(η h*) + 1), eq. 19 [paper]
    exponent: float             # a = B/(η h*) + 1 - n/2, κ ∝ c^-a, eq. 17 [paper]
    regime: str                 # "n < n_c (stable)" / "n >= n_c (unstable)" / "no outliers"
    eigenvalues: torch.Tensor   # (k,) top curvature eigenvalues
    residuals: torch.Tensor     # (k,) their Lanczos residuals
    outliers: Outliers
    noise_factor: float         # f_B = C_B / C_1
    noise_along_top: torch.Tensor       # (k,) v_iᵀ C_B v_i
    predicted_along_top: torch.Tensor   # (k,) 2 L f_B λ_i
    alignment_ratio: torch.Tensor       # (k,) their ratio (1 under Σ = (2L/B) H)
    alignment_cosine: float     # cos(Vᵀ C_B V, diag λ) (Frobenius)
    trace_noise: float          # tr C_B (gradnoise.gradient_noise)
    trace_curvature: float      # tr H (Hutch++), nan if skipped
    trace_curvature_se: float
    trace_ratio: float          # tr C_B / (2 L f_B tr H)
    curvature: str
    replacement: bool
    n_params: int
    n_samples: int

    def __str__(self) -> str:
        f = lambda v: "nan" if v != v else f"{v:.4g}"  # noqa: E731
        top = fmt_values(self.eigenvalues, 8)[1:-1]
        lines = [
            f"escape outlook ({self.curvature}; P={self.n_params}, N={self.n_samples}, B={self.batch_size}, "
            f"lr={self.lr:g}, {'with' if self.replacement else 'without'} replacement)",
            f"  L* = {self.loss:.6g}   ||grad L|| = {self.grad_norm:.3g}",
            f"  top eigenvalues: [{top}]  (max residual {float(self.residuals.max()):.1e})",
            f"  outliers [default rule]: {self.outliers}",
            f"  B/(eta h*) = {f(self.B_over_eta_h)}   n_c = 2(B/(eta h*)+1) = {f(self.n_c)}  [paper, eq. 19]",
            f"  escape exponent a = B/(eta h*) + 1 - n/2 = {f(self.exponent)}  (kappa ~ c^-a) [paper, eq. 17]",
            f"  regime: {self.regime}",
            f"  noise vs (2L/B)H [paper, corrected]: v_i'C v_i / (2 L f_B lambda_i) = "
            f"{fmt_values(self.alignment_ratio, 8)}  (f_B = {self.noise_factor:.4g})",
            f"  cos(V'CV, diag lambda) = {f(self.alignment_cosine)}   tr C / (2 L f_B tr H) = {f(self.trace_ratio)}"
            f"  (tr C = {f(self.trace_noise)}, tr H = {f(self.trace_curvature)} ± {f(self.trace_curvature_se)})",
        ]
        return "\n".join(lines)


def noise_along(op, V: torch.Tensor, lam: torch.Tensor, fB: float):
    """Noise along curvature eigenvectors ``V (P, k)`` with eigenvalues ``lam (k,)``:
    ``(c (k,), predicted (k,), ratio (k,), cosine)`` with ``c_i = v_iᵀ C_B v_i`` (exact, from
    ``∇ℓ_n · v_i``), ``predicted_i = 2 L f_B λ_i`` and ``cos(Vᵀ C_B V, diag λ)`` (Frobenius)."""
    D = op.directional(V)                                      # (N, k)  ∇ℓ_n · v_i
    dbar = D.mean(0)
    CB = fB * (D.T @ D / op.N - torch.outer(dbar, dbar))      # Vᵀ C_B V
    c = torch.diagonal(CB).clone()
    pred = 2 * op.loss * fB * lam
    safe = torch.where(pred != 0, pred, torch.ones_like(pred))
    ratio = torch.where(pred != 0, c / safe, torch.full_like(pred, math.nan))
    Hd = torch.diag(lam)
    den = float(CB.norm() * Hd.norm())
    cos = float((CB * Hd).sum()) / den if den > 0 else math.nan
    return c, pred, ratio, cos


def escape_outlook(model, loss_fn, data, *args, batch_size: int, lr: float, k: int = 10,
                   tol: float = 1e-6, max_matvec: int | None = None, seed: int = 0, ratio: float = 2.0,
                   use_density: bool = False, n_matvec: int | None = None, replacement: bool = False,
                   curvature: str = "hessian", chunk_size: int | None = None,
                   hvp_method: str = "auto", top=None, density=None, trace=None, max_iter: int | None = None,
                   trace_matvecs: int | None = None) -> EscapeOutlook:
    """Escape-rate outlook of ``model`` on ``data`` for SGD with ``batch_size`` and ``lr``.

    Args:
        k: top eigenpairs computed (``<= P``); outliers beyond ``k`` are not seen (``saturated``).
        tol, max_matvec, seed: Lanczos settings (:func:`~nnphys.curvature.hessian_top`;
            ``max_matvec`` was ``max_iter``).
        ratio: gap ratio of the outlier rule; ``use_density``: estimate the bulk edge by SLQ
            (10 probes × 80 steps).
        n_matvec: Hutch++ products for ``tr H`` (default 30; 0 skips the trace comparison; was
            ``trace_matvecs``).
        replacement: minibatch sampling scheme of ``C_B``.
        top, density: an already computed :class:`~nnphys.curvature.HessianTop` /
            :class:`~nnphys.curvature.SpectralDensity` of the same model, data and curvature to use
            instead of computing them (``top`` replaces ``k``, ``tol``, ``max_matvec``; ``density``
            gives the outlier rule its bulk edge, as ``use_density``); ``trace``: a
            :class:`~nnphys.curvature.TraceEstimate` used instead of ``n_matvec`` new products.
    Data are materialised once as tensors for ``gradnoise.gradient_noise``.
    """
    no_extra("escape_outlook", args)
    max_matvec = renamed("escape_outlook", "max_matvec", max_matvec, "max_iter", max_iter, 1000)
    trace_matvecs = renamed("escape_outlook", "n_matvec", n_matvec, "trace_matvecs", trace_matvecs, 30)
    from nnphys.escape import escape_exponent, n_critical  # lazy: the escape module is being moved
    from nnphys.gradnoise import gradient_noise, noise_factor

    check_pos("lr", lr)
    op = operator(model, loss_fn, data, curvature=curvature, chunk_size=chunk_size, method=hvp_method)
    fB = noise_factor(op.N, batch_size, replacement)  # validates batch_size
    if top is None:
        top = lanczos_top(op, k, tol=tol, max_iter=max_matvec, seed=seed)
    elif top.n_params != op.P or top.curvature != op.curvature:
        raise ConfigError("top", f"was computed for P={top.n_params} ({top.curvature}), not for this "
                          f"model (P={op.P}, {op.curvature})")
    dens = density if density is not None else slq_density(op, seed=seed) if use_density else None
    out = outliers(top, density=dens, ratio=ratio)
    L = op.loss
    gnorm = float(op.gradient().norm())
    nan = math.nan
    if out.n > 0:
        r = batch_size / (lr * out.h_star)
        n_c = n_critical(batch_size, lr, out.h_star)
        a = escape_exponent(batch_size, lr, out.h_star, out.n)
        regime = f"n = {out.n} < n_c = {n_c:.4g}: stable, kappa ~ c^-{a:.4g}" if out.n < n_c else \
            f"n = {out.n} >= n_c = {n_c:.4g}: unstable (escape exponent {a:.4g} <= 0)"
    else:
        r = n_c = a = nan
        regime = "no outliers by the [default] gap rule: the theory's h*, n are undefined here"
    if float(top.eigenvalues[0]) <= 0:
        regime += "; no positive curvature: not a minimum"
    lam = top.eigenvalues
    c_along, pred, ratio_along, cos = noise_along(op, top.eigenvectors, lam, fB)
    gn = gradient_noise(op.model, op.loss_fn, list(op.chunks()), batch_size=batch_size, replacement=replacement)
    if trace is not None or trace_matvecs:
        tr = trace if trace is not None else trace_of(op, n_matvec=trace_matvecs, seed=seed)
        trH, trse = tr.trace, tr.stderr
        tratio = gn.trace_noise / (2 * L * fB * trH) if L * fB * trH != 0 else nan
    else:
        trH = trse = tratio = nan
    return EscapeOutlook(
        loss=L, grad_norm=gnorm, h_star=out.h_star, n=out.n, batch_size=batch_size, lr=float(lr),
        B_over_eta_h=r, n_c=n_c, exponent=a, regime=regime, eigenvalues=lam, residuals=top.residuals,
        outliers=out, noise_factor=fB, noise_along_top=c_along, predicted_along_top=pred,
        alignment_ratio=ratio_along, alignment_cosine=cos, trace_noise=gn.trace_noise,
        trace_curvature=trH, trace_curvature_se=trse, trace_ratio=tratio, curvature=op.curvature,
        replacement=bool(replacement), n_params=op.P, n_samples=op.N,
    )
