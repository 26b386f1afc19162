"""The stacked BN-free CNN (nnphys.noise_enhancement.convnet): members are their seeds; vmap equals a plain loop."""

from __future__ import annotations

import torch

from nnphys.noise_enhancement.convnet import StackedCNN


def test_stacked_cnn_members_are_their_seeds():
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ens = StackedCNN([5, 9])
    one = StackedCNN([9])
    out = ens(x)
    assert out.shape == (2, 2, 10)
    torch.testing.assert_close(out[1], one(x)[0])


def test_stacked_cnn_equals_unbatched_functional_net():
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ens = StackedCNN([2, 4], dtype=torch.float64)
    for m in range(2):
        w = {k: v[m] for k, v in ens.w.items()}
        b = {k: v[m] for k, v in ens.b.items()}
        torch.testing.assert_close(ens(x)[m], StackedCNN._one(w, b, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ens.predict(x, chunk=2), ens(x).detach())
