"""A stacked ensemble of small BN-free CNNs (the CIFAR-10 net of the study guide
``docs/studies/noise-enhancement.md``, "Protocol").

``M`` copies of conv3x3 32, conv3x3 32, max-pool, conv3x3 64, conv3x3 64, max-pool, FC 256,
FC ``d_out`` (ReLU, 'same' padding) held in stacked ``(M, ...)`` tensors and evaluated with
``torch.func.vmap``, so an ensemble of seeds trains as one set of tensors (as
:class:`nnphys.nets.MLPEnsemble` does for MLPs). No BatchNorm: samples are never coupled, so
per-sample gradients and the NE noise factor keep their meaning (the paper's two-pass NE is only needed for batch-coupled layers).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["StackedCNN"]


class StackedCNN(torch.nn.Module):
    """``M`` BN-free CNNs for ``(3, 32, 32)`` inputs; member ``m`` is initialised from ``seeds[m]``
    (He normal weights drawn in float64, zero biases), so it equals the one-member net of that seed.

    ``forward(x)``: ``(B, 3, 32, 32)`` (shared by all members) or ``(M, B, 3, 32, 32)`` ->
    ``(M, B, d_out)``. ``predict(x)`` evaluates in chunks without gradients.
    """

    def __init__(self, seeds: list[int], d_out: int = 10, dtype=torch.float32, device="cpu"):
        super().__init__()
        self.n_members = len(seeds)
        shapes = [("c1", (32, 3, 3, 3)), ("c2", (32, 32, 3, 3)), ("c3", (64, 32, 3, 3)),
                  ("c4", (64, 64, 3, 3)), ("f1", (256, 64 * 8 * 8)), ("f2", (d_out, 256))]
        ws: dict[str, list[torch.Tensor]] = {n: [] for n, _ in shapes}
        for s in seeds:
            g = torch.Generator().manual_seed(int(s))
            for n, shp in shapes:
                fan_in = int(np.prod(shp[1:]))
                ws[n].append(torch.randn(shp, generator=g, dtype=torch.float64) * math.sqrt(2.0 / fan_in))
        self.w = torch.nn.ParameterDict({n: torch.nn.Parameter(torch.stack(v).to(dtype=dtype, device=device))
                                         for n, v in ws.items()})
        self.b = torch.nn.ParameterDict({n: torch.nn.Parameter(torch.zeros(self.n_members, shp[0], dtype=dtype, device=device))
                                         for n, shp in shapes})

    @staticmethod
    def _one(w: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        F = torch.nn.functional
        h = F.relu(F.conv2d(x, w["c1"], b["c1"], padding=1))
        h = F.max_pool2d(F.relu(F.conv2d(h, w["c2"], b["c2"], padding=1)), 2)
        h = F.relu(F.conv2d(h, w["c3"], b["c3"], padding=1))
        h = F.max_pool2d(F.relu(F.conv2d(h, w["c4"], b["c4"], padding=1)), 2)
        h = F.relu(F.linear(h.flatten(1), w["f1"], b["f1"]))
        return F.linear(h, w["f2"], b["f2"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(0).expand(self.n_members, *x.shape)
        w, b = dict(self.w), dict(self.b)
        return torch.func.vmap(self._one)(w, b, x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        return torch.cat([self.forward(x[i:i + chunk]) for i in range(0, len(x), chunk)], dim=1)
