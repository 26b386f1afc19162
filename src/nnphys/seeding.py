"""One seeding rule for the whole laboratory.

Every random stream is named by labels, never by a position in a list::

    derive(base_seed, "init", depth, member)   ->   a 63-bit integer

``derive`` hashes ``repr((base_seed, *labels))`` with SHA-256 and keeps the first 8 bytes
(little-endian) shifted right by one, so the result fits a signed 64-bit integer, which is
what ``torch.Generator.manual_seed`` and ``numpy.random.default_rng`` accept. Labels are
restricted to ``int``, ``str``, ``float``, ``bool``, ``None`` and tuples of those, whose
``repr`` is stable across Python versions and platforms: a job's seeds then depend on its
own labels only, and adding a value to a sweep changes no other job's seeds.

The rule is the one ``noise_enhancement`` used since its first version (its keys did not
change when the other studies moved to it).
"""

from __future__ import annotations

import hashlib
from typing import Union

import numpy as np

Label = Union[int, str, float, bool, None, tuple]

SEED_RULE = "derive(seed, *labels) = sha256(repr((seed, *labels)))[:8] (little-endian) >> 1"


def _check(label: object, where: str) -> None:
    if isinstance(label, tuple):
        for x in label:
            _check(x, where)
        return
    if label is not None and not isinstance(label, (int, str, float, bool, np.integer)):
        raise TypeError(f"{where}: a seed label must be int/str/float/bool/None or a tuple of those, "
                        f"got {type(label).__name__}")


def _plain(label: Label) -> Label:
    """numpy integers print as ``np.int64(3)`` under numpy 2: normalise them to ``int``."""
    if isinstance(label, tuple):
        return tuple(_plain(x) for x in label)
    if isinstance(label, np.integer):
        return int(label)
    return label


def derive(base_seed: int, *labels: Label) -> int:
    """A 63-bit seed for the stream named ``labels`` under ``base_seed`` (see the module doc)."""
    _check(base_seed, "base_seed")
    for lab in labels:
        _check(lab, "labels")
    parts = _plain((base_seed, *labels))
    h = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def numpy_rng(base_seed: int, *labels: Label) -> np.random.Generator:
    """``numpy.random.default_rng(derive(base_seed, *labels))``."""
    return np.random.default_rng(derive(base_seed, *labels))


def torch_generator(base_seed: int, *labels: Label, device: str = "cpu"):
    """A ``torch.Generator`` on ``device`` seeded with ``derive(base_seed, *labels)``."""
    import torch

    return torch.Generator(device=device).manual_seed(derive(base_seed, *labels))
