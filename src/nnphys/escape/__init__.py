"""The escape-rate subject (Mori, Ziyin, Liu, Ueda, arXiv 2105.09557), one package:

- :mod:`nnphys.escape.theory`: closed forms (eq. 16, 17, phi, n_c, Kesten index) and the exact
  first-passage quadratures (numpy/scipy, float64); its names are re-exported here, so
  ``from nnphys import escape as E; E.kappa_1d(...)`` works;
- :mod:`nnphys.escape.landscapes`: the test landscapes (quadratic wells, families A/B, the 1-D
  linear regression of Table 3, double wells), torch;
- :mod:`nnphys.escape.simulate`: Monte Carlo of the SDE (S1-S3), the SGD oracle (S4) and genuine
  SGD (S5), vectorised over chains, torch;
- :mod:`nnphys.escape.kernels`: the optional compiled (numba) first-passage kernel, imported on
  first use by :mod:`~nnphys.escape.simulate`.

Importing this package imports numpy and scipy only; the landscape and simulator names
(``QuadraticWell``, ``simulate_sde``, ...) resolve lazily, so torch loads when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from nnphys.escape.theory import *  # noqa: F401,F403
from nnphys.escape.theory import __all__ as _theory_all

_LAZY = {
    **{n: "nnphys.escape.landscapes" for n in ("DoubleWell", "QuadraticWell", "LinearRegression", "LabelNoiseWell",
                                               "family_a", "family_b")},
    **{n: "nnphys.escape.simulate" for n in ("FirstPassage", "simulate_sde", "simulate_sgd_oracle", "simulate_sgd",
                                             "sample_sde", "sample_sgd", "minibatch_indices")},
}

__all__ = [*_theory_all, *_LAZY]


def __getattr__(name: str) -> Any:
    """``QuadraticWell``, ``simulate_sde``, ...: imported from their module when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'nnphys.escape' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
