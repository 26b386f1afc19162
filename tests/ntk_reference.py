"""Test oracle of ``nnphys.ntk``: the textbook NTK/NNGP recursion of a deep ReLU net.

Used by ``tests/test_ntk.py`` (the fast paths of :func:`nnphys.ntk.ntk_kernel` against it) and as the
full-matrix baseline of ``python -m benchmarks.ntk_gram``. Not production code.
"""

from __future__ import annotations

import math

import torch


def reference_kernel_arccos(
    x1: torch.Tensor, x2: torch.Tensor, *, depth: int, sigma_w2: float = 2.0, sigma_b2: float = 0.0
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Straightforward ntk-parameterisation recursion (Jacot et al. arXiv 1806.07572, the ReLU
    arc-cosine kernels of Cho & Saul 2009) with the clipped arccos form.

    Full ``(N1, N2)`` matrices, no blocking, every intermediate kept. Returns
    ``([Theta^(1..L+1)], [Sigma^(1..L+1)])`` (index = depth). Not for production use: rounding can
    push ``c / sqrt(q q')`` past ±1, which the clip hides at the cost of accuracy near ``rho = ±1``.
    """
    d = x1.shape[1]
    q1 = [sigma_w2 * (x1 * x1).sum(-1) / d + sigma_b2]
    q2 = [sigma_w2 * (x2 * x2).sum(-1) / d + sigma_b2]
    sig = [sigma_w2 * (x1 @ x2.T) / d + sigma_b2]
    ntk = [sig[0]]
    for l in range(depth):
        norm = torch.sqrt(q1[l][:, None] * q2[l][None, :])
        rho = torch.clamp(sig[l] / norm, -1.0, 1.0)
        ang = torch.arccos(rho)
        k = norm * (torch.sqrt(1.0 - rho * rho) + (math.pi - ang) * rho) / (2 * math.pi)
        kdot = (math.pi - ang) / (2 * math.pi)
        sig.append(sigma_w2 * k + sigma_b2)
        ntk.append(sig[-1] + sigma_w2 * kdot * ntk[-1])
        q1.append(sigma_w2 * q1[l] / 2 + sigma_b2)
        q2.append(sigma_w2 * q2[l] / 2 + sigma_b2)
    return ntk, sig
