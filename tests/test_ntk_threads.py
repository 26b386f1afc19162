"""The analytic NTK's block-parallel path (several torch threads) gives the same bits as one
thread: every block is the same elementwise recursion, only who runs it changes."""

import math

import pytest
import torch

from nnphys.ntk import ntk_kernel


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("param", ["ntk", "standard"])
def test_block_parallel_is_bit_identical(two_threads, sym, param):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(70, 5, generator=g, dtype=torch.float64)  # unequal norms: the outer-product path
    x2 = None if sym else torch.randn(33, 5, generator=g, dtype=torch.float64)
    kw = dict(depth=3, param=param, width=16 if param == "standard" else None, get=("ntk", "nngp"),
              all_depths=True, block_size=8)
    par = ntk_kernel(x1, x2, **kw)
    assert torch.get_num_threads() == 2  # restored after the call
    torch.set_num_threads(1)
    ser = ntk_kernel(x1, x2, **kw)
    for a, b in zip(par, ser):
        assert torch.equal(a, b)
    if sym:
        assert torch.equal(par[0], par[0].transpose(-1, -2))


def test_block_parallel_equal_norms(two_threads):
    x = torch.randn(64, 8, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(8)  # the sphere: one q q' per layer
    par = ntk_kernel(x, depth=4, block_size=5)
    torch.set_num_threads(1)
    assert torch.equal(par, ntk_kernel(x, depth=4, block_size=5))
