"""Minibatch streams (nnphys.noise_enhancement.sampling): the three NE sampling modes and the per-seed epoch stream."""

from __future__ import annotations

import pytest
import torch

from nnphys.errors import ConfigError
from nnphys.noise_enhancement.sampling import EpochStream, PairSampler, draw_pairs


def test_draw_pairs_modes():
    gen = torch.Generator().manual_seed(0)
    a, b = draw_pairs(30, 5, 400, "split", gen)
    both = torch.cat([a, b], 1)
    assert all(len(set(r.tolist())) == 10 for r in both)  # 2B distinct rows per draw
    a, b = draw_pairs(30, 5, 400, "independent", gen)
    assert all(len(set(r.tolist())) == 5 for r in a) and all(len(set(r.tolist())) == 5 for r in b)
    assert any(set(ra.tolist()) & set(rb.tolist()) for ra, rb in zip(a, b))  # the two may overlap
    a, _ = draw_pairs(30, 5, 400, "replacement", gen)
    assert any(len(set(r.tolist())) < 5 for r in a)
    # uniform marginals: each row is in B with probability B/N (5 s.e.)
    a, _ = draw_pairs(30, 5, 4000, "split", gen)
    cnt = torch.bincount(a.reshape(-1), minlength=30).double() / 4000
    p = 5 / 30
    assert torch.all((cnt - p).abs() < 5 * (p * (1 - p) / 4000) ** 0.5)
    with pytest.raises(ConfigError):
        draw_pairs(30, 5, 4, "bogus", gen)


def test_epoch_stream_covers_each_row_once_and_is_per_seed():
    s = EpochStream(20, 4, [3, 7], "t")
    rows = torch.cat([s.next() for _ in range(5)], dim=1)  # one epoch
    for r in rows:
        assert sorted(r.tolist()) == list(range(20))
    alone = EpochStream(20, 4, [7], "t")
    s2 = EpochStream(20, 4, [3, 7], "t")
    for _ in range(7):
        assert torch.equal(s2.next()[1], alone.next()[0])  # a seed's stream ignores the other seeds
    with pytest.raises(ConfigError):
        EpochStream(3, 4, [0], "t")


def test_pair_sampler_split_halves_are_disjoint_and_cover_an_epoch():
    ps = PairSampler(24, 4, True, "split", [1], "t")
    seen = []
    for _ in range(3):  # 24 // 8 = 3 steps per epoch of the 2B stream
        a, b = ps.next()
        assert not set(a[0].tolist()) & set(b[0].tolist())
        seen += a[0].tolist() + b[0].tolist()
    assert sorted(seen) == list(range(24))
    a, b = PairSampler(24, 4, False, "split", [1], "t").next()
    assert b is None and a.shape == (1, 4)
