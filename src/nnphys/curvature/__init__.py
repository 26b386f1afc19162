"""Curvature of any PyTorch model: Hessian / Gauss-Newton spectra from curvature-vector products,
and the escape-rate outlook built on them.

Public API::

    hessian_top(model, loss_fn, data, *, k, tol, max_matvec, seed, which, curvature, ...) -> HessianTop
    hessian_trace(model, loss_fn, data, *, n_matvec, method, seed, curvature, ...)       -> TraceEstimate
    hessian_density(model, loss_fn, data, *, n_v, m, sigma, seed, curvature, ...)    -> SpectralDensity
    outliers(spectrum, *, density, ratio)                                            -> Outliers
    escape_outlook(model, loss_fn, data, *, batch_size, lr, k, ...)                  -> EscapeOutlook
    hessian_vs_ggn(model, loss_fn, data, *, k, batch_size, ...)                     -> HessianVsGGN
    CurvatureOperator(model, loss_fn, data, *, curvature, chunk_size, method)        # v -> H v

``loss_fn(output, target)`` returns per-sample losses ``(n,)``; ``L = (1/N) Σ ℓ_n``; ``data`` is
``(X, y)`` or a re-iterable of batches such as a DataLoader (:mod:`nnphys.curvature.inputs`);
``curvature="hessian" | "ggn"``. Nothing ``P × P`` is ever formed.
"""

from nnphys.curvature.compare import HessianVsGGN, hessian_vs_ggn
from nnphys.curvature.lanczos import HessianTop, SpectralDensity, hessian_density, hessian_top
from nnphys.curvature.operator import CurvatureOperator
from nnphys.curvature.outliers import Outliers, outliers
from nnphys.curvature.outlook import EscapeOutlook, escape_outlook
from nnphys.curvature.trace import TraceEstimate, hessian_trace

__all__ = [
    "CurvatureOperator", "HessianTop", "SpectralDensity", "TraceEstimate", "Outliers", "EscapeOutlook",
    "HessianVsGGN", "hessian_top", "hessian_trace", "hessian_density", "outliers", "escape_outlook",
    "hessian_vs_ggn",
]
