"""Full Hessian next to its Gauss-Newton part (the minibatch-noise C3/C12 and
escape-rate T9/T9b MLP claims compare the noise with the Gauss-Newton ``G``; this adds ``∇²L``).

``hessian_vs_ggn`` computes the top-``k`` eigenpairs of both operators on the same data, their
eigenvalue ratios, the overlap of the two top-``k`` eigenspaces ``||U_Hᵀ U_G||_F² / k`` (1 when the
residual term ``(1/N) Σ (f - y) ∇²f`` does not rotate the top space), and, for a batch size
``B``, the noise along each operator's eigenvectors against ``2 L f_B λ_i``
(:func:`nnphys.curvature.outlook.noise_along`). A study calls it at its trained point, e.g.::

    cmp = hessian_vs_ggn(model, loss_fn, (X, y), k=10, batch_size=B)
    cmp.hessian.eigenvalues, cmp.ggn.eigenvalues, cmp.overlap, cmp.ratio_hessian, cmp.ratio_ggn
"""

from __future__ import annotations

import dataclasses

import torch

from nnphys.curvature.inputs import Result, fmt_values, no_extra, renamed
from nnphys.curvature.lanczos import HessianTop, lanczos_top
from nnphys.curvature.operator import CurvatureOperator
from nnphys.curvature.outlook import noise_along


@dataclasses.dataclass(frozen=True, repr=False)
class HessianVsGGN(Result):
    """Top-``k`` of ``H`` and ``G``; ``eigenvalue_ratio = λ_i(H)/λ_i(G)``; ``overlap`` in [0, 1];
    ``ratio_hessian`` / ``ratio_ggn``: ``v_iᵀ C_B v_i / (2 L f_B λ_i)`` along each operator's
    eigenvectors (empty without ``batch_size``); cosines likewise."""

    hessian: HessianTop
    ggn: HessianTop
    eigenvalue_ratio: torch.Tensor
    overlap: float
    ratio_hessian: torch.Tensor
    ratio_ggn: torch.Tensor
    cosine_hessian: float
    cosine_ggn: float

    def __str__(self) -> str:
        f = fmt_values
        return (f"H top-{len(self.hessian.eigenvalues)}: {f(self.hessian.eigenvalues)}\n"
                f"G top-{len(self.ggn.eigenvalues)}: {f(self.ggn.eigenvalues)}\n"
                f"λ(H)/λ(G) = {f(self.eigenvalue_ratio)}; top-space overlap {self.overlap:.4f}\n"
                f"noise/(2 L f_B λ) along H: {f(self.ratio_hessian)} (cos {self.cosine_hessian:.4f}); "
                f"along G: {f(self.ratio_ggn)} (cos {self.cosine_ggn:.4f})")


def hessian_vs_ggn(model, loss_fn, data, *args, k: int = 10, batch_size: int | None = None,
                   replacement: bool = False, tol: float = 1e-6, max_matvec: int | None = None,
                   seed: int = 0, chunk_size: int | None = None,
                   max_iter: int | None = None) -> HessianVsGGN:
    """Both spectra, their top-space overlap, and (with ``batch_size``) the noise alignment.
    ``max_matvec`` (was ``max_iter``, default 1000) caps the products of each Lanczos run."""
    no_extra("hessian_vs_ggn", args)
    max_matvec = renamed("hessian_vs_ggn", "max_matvec", max_matvec, "max_iter", max_iter, 1000)
    from nnphys.gradnoise import noise_factor

    ops = {c: CurvatureOperator(model, loss_fn, data, curvature=c, chunk_size=chunk_size)
           for c in ("hessian", "ggn")}
    tops = {c: lanczos_top(op, k, tol=tol, max_iter=max_matvec, seed=seed) for c, op in ops.items()}
    H, G = tops["hessian"], tops["ggn"]
    overlap = float((H.eigenvectors.T @ G.eigenvectors).pow(2).sum()) / k
    empty = torch.zeros(0, dtype=torch.float64)
    rh = rg = empty
    ch = cg = float("nan")
    if batch_size is not None:
        fB = noise_factor(ops["hessian"].N, batch_size, replacement)
        _, _, rh, ch = noise_along(ops["hessian"], H.eigenvectors, H.eigenvalues, fB)
        _, _, rg, cg = noise_along(ops["ggn"], G.eigenvectors, G.eigenvalues, fB)
    return HessianVsGGN(H, G, H.eigenvalues / G.eigenvalues, overlap, rh, rg, ch, cg)
