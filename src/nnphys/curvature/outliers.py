"""Outlier eigenvalues of a curvature spectrum: their number ``n`` and typical magnitude ``h*``
(the escape-rate paper's Hessian: a near-zero bulk plus ``n`` outliers of typical size ``h*``;
docs/curvature.md, "Algorithms and rules").

Rule [default] (fixed before looking at any study's outcome):

1. Take the computed top eigenvalues ``λ_1 >= ... >= λ_k`` (a :class:`HessianTop` or an array).
2. Bulk edge ``e``: with an SLQ ``density``, the ``1 - (k + 1)/P`` quantile of its spectral
   measure (a crude estimate of ``λ_{k+1}``), capped at ``λ_k``; without one, ``e = λ_k`` (then at
   most ``k - 1`` outliers can be resolved).
3. Gap ratios ``g_j = λ_j / max(λ_{j+1}, floor)`` for ``j < k`` and ``g_k = λ_k / max(e, floor)``,
   ``floor = 1e-12 · λ_1``; only ``λ_j > 0`` count.
4. ``n = argmax_j g_j`` if ``max g_j >= ratio`` (default 2), else ``n = 0`` (no clear outliers).
5. ``h* = mean(λ_1..λ_n)`` (the isotropic approximation ``H* -> h* I_n`` of eq. 20 with the
   arithmetic mean as the typical size [default]; the paper's ``h*_e``, the curvature along the
   escape direction, needs the saddle and is unknown here). ``saturated`` flags ``n = k``: the
   true count may exceed ``k``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from nnphys.curvature.inputs import Result
from nnphys.errors import ConfigError

RULE = ("n = argmax_j λ_j/max(λ_{j+1}, 1e-12 λ_1) over the top-k (λ_{k+1} := bulk edge from the SLQ "
        "density, else λ_k) if that ratio >= RATIO, else 0; h* = mean of the n outliers [default]")


@dataclasses.dataclass(frozen=True, repr=False)
class Outliers(Result):
    """``n`` outliers with typical magnitude ``h_star`` (nan when ``n = 0``), their eigenvalues,
    the gap ratio at the split, the bulk edge used and the rule text."""

    n: int
    h_star: float
    eigenvalues: torch.Tensor
    gap_ratio: float
    bulk_edge: float
    saturated: bool
    rule: str

    def __str__(self) -> str:
        if self.n == 0:
            return f"no outliers (largest gap ratio {self.gap_ratio:.3g}); rule: {self.rule}"
        sat = " (saturated: n = k, raise k)" if self.saturated else ""
        return (f"n = {self.n} outliers, h* = {self.h_star:.6g} (range {float(self.eigenvalues.min()):.4g}"
                f"..{float(self.eigenvalues.max()):.4g}), gap ratio {self.gap_ratio:.3g}, bulk edge "
                f"{self.bulk_edge:.4g}{sat}; rule: {self.rule}")


def outliers(spectrum, *, density=None, ratio: float = 2.0, n_params: int | None = None) -> Outliers:
    """Count the outlier eigenvalues of ``spectrum`` by the module's gap rule [default].

    Args:
        spectrum: a :class:`~nnphys.curvature.lanczos.HessianTop` or a 1-D array of top eigenvalues.
        density: optional :class:`~nnphys.curvature.lanczos.SpectralDensity` for the bulk edge.
        ratio: minimal gap ratio ``λ_n / λ_{n+1}`` for a split (> 1).
        n_params: ``P`` (taken from ``spectrum`` or ``density`` when omitted; needed with a density).
    """
    lam = getattr(spectrum, "eigenvalues", spectrum)
    lam = torch.as_tensor(lam, dtype=torch.float64).reshape(-1)
    if lam.numel() < 1 or not bool(torch.isfinite(lam).all()):
        raise ConfigError("spectrum", "needs at least one finite eigenvalue")
    if not (isinstance(ratio, (int, float)) and ratio > 1 and math.isfinite(ratio)):
        raise ConfigError("ratio", f"must be a finite number > 1 (got {ratio!r})")
    lam = torch.sort(lam, descending=True).values
    k = lam.numel()
    floor = 1e-12 * max(float(lam[0]), 0.0)
    edge = float(lam[-1])
    if density is not None:
        P = n_params or getattr(spectrum, "n_params", None) or density.n_params
        q = (k + 1) / P
        nodes, w = density.nodes.reshape(-1), density.weights.reshape(-1) / density.nodes.shape[0]
        order = torch.argsort(nodes, descending=True)
        above = torch.cumsum(w[order], 0)
        i = int(torch.searchsorted(above, torch.tensor(q, dtype=torch.float64)))
        edge = min(float(nodes[order][min(i, len(order) - 1)]), float(lam[-1]))
    nxt = torch.cat([lam[1:], torch.tensor([edge], dtype=torch.float64)])
    gaps = torch.where(lam > 0, lam / nxt.clamp_min(floor if floor > 0 else 1e-300),
                       torch.zeros_like(lam))
    if density is None:
        gaps[-1] = 0.0  # λ_{k+1} unknown without a density
    j = int(torch.argmax(gaps))
    g = float(gaps[j])
    text = RULE.replace("RATIO", f"{ratio:g}")
    if g < ratio:
        return Outliers(0, math.nan, lam[:0], g, edge, False, text)
    n = j + 1
    return Outliers(n, float(lam[:n].mean()), lam[:n], g, edge, n == k, text)
