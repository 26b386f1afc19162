"""nnphys: a laboratory for the physics of deep learning.

The public API is re-exported here lazily (importing ``nnphys`` does not import torch):

>>> from nnphys import ntk_kernel, NoiseEnhancedSGD, gradient_noise, k_local, k_global
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "NnphysError": "nnphys.errors",
    "ConfigError": "nnphys.errors",
    "Diverged": "nnphys.errors",
    # targets / nets / kernels / training (depth-locality)
    "sample_inputs": "nnphys.targets",
    "k_local": "nnphys.targets",
    "k_global": "nnphys.targets",
    "make_dataset": "nnphys.targets",
    "MLPEnsemble": "nnphys.nets",
    "ntk_kernel": "nnphys.ntk",
    "kernel_regression": "nnphys.ntk",
    "hypercube_eigenvalues": "nnphys.ntk",
    "empirical_ntk": "nnphys.ntk",
    "train_ensemble": "nnphys.train",
    # noise enhancement
    "NoiseEnhancedSGD": "nnphys.optim",
    "alpha_for": "nnphys.optim",
    # minibatch noise
    "gradient_noise": "nnphys.gradnoise",
    # data
    "load_digits": "nnphys.data",
    "load_mnist1d": "nnphys.data",
    # studies
    "registry": "nnphys.studies",
    "get_study": "nnphys.studies",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnphys' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
