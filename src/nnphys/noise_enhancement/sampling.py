"""Minibatch index streams for SGD and noise-enhanced SGD (the study guide
``docs/studies/noise-enhancement.md``, "What noise enhancement is").

NE needs two minibatches ``B``, ``B'`` per step. The three sampling modes:

- ``split``: one without-replacement draw of ``2B`` rows, halved (``B`` and ``B'`` are disjoint);
- ``independent``: two independent without-replacement draws of ``B`` rows (they may overlap);
- ``replacement``: two independent with-replacement draws of ``B`` rows.

:class:`EpochStream` and :class:`ReplacementStream` feed the training loop of an ensemble (one
stream per seed group, ``(G, B)`` indices per call); :class:`PairSampler` combines them into the
pair ``(B, B')`` of a training arm; :func:`draw_pairs` draws many pairs at once for the Monte
Carlo noise probes. Every generator is seeded by :func:`nnphys.seeding.derive` from the seed and a
label, so a member's data order never depends on the other members of its ensemble.
"""

from __future__ import annotations

import torch

from nnphys.errors import ConfigError
from nnphys.noise_enhancement.optimizer import SAMPLING_MODES
from nnphys.seeding import derive

__all__ = ["SAMPLING_MODES", "EpochStream", "ReplacementStream", "PairSampler", "draw_pairs"]


class EpochStream:
    """Epoch-wise shuffled batches of ``bs`` rows for each of ``G`` seed groups (drop-last).

    Group ``g`` draws its permutations from its own generator, seeded by
    ``derive(seeds[g], tag)``. ``next()`` -> ``(G, bs)`` row indices on ``device``.
    """

    def __init__(self, n: int, bs: int, seeds: list[int], tag: str, device: str = "cpu"):
        if bs > n:
            raise ConfigError("batch_size", f"must be <= the training size {n} (got {bs})")
        self.n, self.bs, self.device = n, bs, device
        self.gens = [torch.Generator().manual_seed(derive(s, tag)) for s in seeds]
        self.per_epoch = n // bs
        self.pos = self.per_epoch  # forces a shuffle at the first call
        self.perm: torch.Tensor | None = None

    def next(self) -> torch.Tensor:
        if self.pos >= self.per_epoch:
            self.perm = torch.stack([torch.randperm(self.n, generator=g) for g in self.gens]).to(self.device)
            self.pos = 0
        assert self.perm is not None
        i = self.pos * self.bs
        self.pos += 1
        return self.perm[:, i:i + self.bs]


class ReplacementStream:
    """With-replacement batches of ``bs`` rows for each of ``G`` seed groups: ``next()`` -> ``(G, bs)``."""

    def __init__(self, n: int, bs: int, seeds: list[int], tag: str, device: str = "cpu"):
        self.n, self.bs, self.device = n, bs, device
        self.gens = [torch.Generator().manual_seed(derive(s, tag)) for s in seeds]

    def next(self) -> torch.Tensor:
        return torch.stack([torch.randint(0, self.n, (self.bs,), generator=g) for g in self.gens]).to(self.device)


class PairSampler:
    """Index batches for one training arm: ``next()`` -> ``(idx_B, idx_B' or None)``, each ``(G, B)``.

    SGD (``ne=False``): one epoch-wise stream of batch ``B`` (``idx_B'`` is ``None``). NE: ``split``
    (one stream of ``2B``, halves), ``independent`` (two epoch-wise streams of ``B``) or
    ``replacement`` (two with-replacement streams).
    """

    def __init__(self, n: int, b: int, ne: bool, mode: str, seeds: list[int], tag: str, device: str = "cpu"):
        if mode not in SAMPLING_MODES:
            raise ConfigError("ne_sampling", f"must be one of {', '.join(SAMPLING_MODES)} (got {mode!r})")
        self.ne, self.mode, self.b = ne, mode, b
        if not ne:
            self.s = EpochStream(n, b, seeds, tag + "/sgd", device)
        elif mode == "split":
            self.s = EpochStream(n, 2 * b, seeds, tag + "/split", device)
        elif mode == "independent":
            self.s, self.s2 = (EpochStream(n, b, seeds, tag + f"/ind{i}", device) for i in (0, 1))
        else:
            self.s, self.s2 = (ReplacementStream(n, b, seeds, tag + f"/rep{i}", device) for i in (0, 1))

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.ne:
            return self.s.next(), None
        if self.mode == "split":
            idx = self.s.next()
            return idx[:, :self.b], idx[:, self.b:]
        return self.s.next(), self.s2.next()


def draw_pairs(n: int, b: int, draws: int, mode: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``draws`` pairs of index sets, each ``(draws, b)``, for ``B`` and ``B'`` in ``mode``.

    Without replacement a uniform random ordered subset is the ``topk`` of i.i.d. uniform keys.
    """
    if mode not in SAMPLING_MODES:
        raise ConfigError("ne_sampling", f"must be one of {', '.join(SAMPLING_MODES)} (got {mode!r})")
    if mode == "replacement":
        return torch.randint(0, n, (draws, b), generator=gen), torch.randint(0, n, (draws, b), generator=gen)
    keys = torch.rand(draws, n, generator=gen)
    if mode == "split":
        idx = keys.topk(2 * b, dim=1, largest=False).indices
        return idx[:, :b], idx[:, b:]
    keys2 = torch.rand(draws, n, generator=gen)
    return (keys.topk(b, dim=1, largest=False).indices, keys2.topk(b, dim=1, largest=False).indices)
