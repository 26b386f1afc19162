"""Real data sets: shipped by packages (scikit-learn digits, the MNIST-1D generator) or read
from local files in standard formats. Nothing is downloaded at run time.

Every loader returns a :class:`Dataset` of float32 inputs ``(n, ...)`` and int64 labels
``(n,)``, split deterministically from ``seed``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from nnphys.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split. ``x_*``: ``(n, d)`` float32; ``y_*``: ``(n,)`` int64 class labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train[0].numel())


def _split(name, x: np.ndarray, y: np.ndarray, n_test: int, seed: int, n_classes: int) -> Dataset:
    if not 0 < n_test < len(x):
        raise ConfigError("n_test", f"must lie in [1, {len(x) - 1}] (got {n_test})")
    perm = np.random.default_rng(seed).permutation(len(x))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8  # statistics of the training part only
    x = ((x - mu) / sd).astype(np.float32)
    t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a)).to(dt)  # noqa: E731
    return Dataset(name, t(x[tr], torch.float32), t(y[tr], torch.int64),
                   t(x[te], torch.float32), t(y[te], torch.int64), n_classes)


def load_digits(n_test: int = 297, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, 64 features, 10 classes), standardised with
    training-set statistics. Needs the ``data`` extra (scikit-learn)."""
    try:
        from sklearn.datasets import load_digits as _ld
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError("data", "scikit-learn is needed: pip install 'nnphys[data]'") from e
    d = _ld()
    return _split("digits", d.data.astype(np.float64), d.target.astype(np.int64), n_test, seed, 10)
