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
    # targets (depth-locality)
    "sample_inputs": "nnphys.targets",
    "k_local": "nnphys.targets",
    "k_global": "nnphys.targets",
    "sign_labels": "nnphys.targets",
    "make_dataset": "nnphys.targets",
    "label_stats": "nnphys.targets",
    # nets and training
    "MLPEnsemble": "nnphys.nets",
    "param_count": "nnphys.nets",
    "train_ensemble": "nnphys.train",
    "TrainResult": "nnphys.train",
    # kernels
    "ntk_kernel": "nnphys.ntk",
    "kernel_regression": "nnphys.ntk",
    "kernel_predict": "nnphys.ntk",
    "hypercube_kernel": "nnphys.ntk",
    "hypercube_eigenvalues": "nnphys.ntk",
    "empirical_ntk": "nnphys.ntk",
    # noise enhancement
    "NoiseEnhancedSGD": "nnphys.noise_enhancement.optimizer",
    "alpha_for": "nnphys.noise_enhancement.optimizer",
    "effective_batch_size": "nnphys.noise_enhancement.optimizer",
    "ne_update_": "nnphys.noise_enhancement.optimizer",
    "ne_covariance_factor": "nnphys.noise_enhancement.optimizer",
    "StackedCNN": "nnphys.noise_enhancement.convnet",
    "train_stacked": "nnphys.noise_enhancement.stacked",
    "load_task": "nnphys.data",
    "per_sample_gram": "nnphys.noise_enhancement.noise",
    "probe_noise": "nnphys.noise_enhancement.noise",
    # gradient-noise meter
    "gradient_noise": "nnphys.gradnoise",
    "GradientNoise": "nnphys.gradnoise",
    "decoupling_check": "nnphys.gradnoise",
    "DecouplingCheck": "nnphys.gradnoise",
    "NoiseTracker": "nnphys.gradnoise",
    # minibatch noise in linear regression
    "moment_oracle_online": "nnphys.linreg",
    "moment_oracle_finite": "nnphys.linreg",
    "simulate_online": "nnphys.linreg",
    "simulate_finite": "nnphys.linreg",
    # escape rate
    "kappa_1d": "nnphys.escape",
    "kappa_nd": "nnphys.escape",
    "mfpt_1d": "nnphys.escape",
    "simulate_sde": "nnphys.escape.simulate",
    "simulate_sgd": "nnphys.escape.simulate",
    # curvature: Hessian spectrum of any model
    "hessian_top": "nnphys.curvature",
    "hessian_trace": "nnphys.curvature",
    "hessian_density": "nnphys.curvature",
    "outliers": "nnphys.curvature",
    "escape_outlook": "nnphys.curvature",
    "hessian_vs_ggn": "nnphys.curvature",
    "CurvatureOperator": "nnphys.curvature",
    "HessianTop": "nnphys.curvature",
    "SpectralDensity": "nnphys.curvature",
    "TraceEstimate": "nnphys.curvature",
    "Outliers": "nnphys.curvature",
    "EscapeOutlook": "nnphys.curvature",
    "HessianVsGGN": "nnphys.curvature",
    "DataTypeError": "nnphys.curvature.inputs",
    # probe: one report on a user's model (also `nnphys probe MODULE:CALLABLE`)
    "run_probe": "nnphys.probe",
    "ProbeSettings": "nnphys.probe",
    # data
    "load_digits": "nnphys.data",
    "load_mnist1d": "nnphys.data",
    "load_idx": "nnphys.data",
    "load_fashion_mnist": "nnphys.data",
    "load_cifar10": "nnphys.data",
    "train_val_split": "nnphys.data",
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
