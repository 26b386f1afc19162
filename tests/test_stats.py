"""nnphys.stats helpers against exact values."""

from __future__ import annotations

import numpy as np

from nnphys.stats import design_effect


def _ar1(rho: float, S: int, R: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    x = np.empty((S, R))
    x[0] = g.standard_normal(R)
    for t in range(1, S):
        x[t] = rho * x[t - 1] + np.sqrt(1 - rho * rho) * g.standard_normal(R)
    return x


def test_design_effect_of_an_ar1_process():
    """AR(1) with rho = 0.5: rho_k = 0.5^k; the truncated sum stops before 0.5^5 < 0.05, so the
    exact target is 1 + 2 (0.5 + 0.25 + 0.125 + 0.0625) = 2.875 (the untruncated (1+rho)/(1-rho) = 3).
    With 4e5 samples each rho_k has s.e. ~0.002, so 0.05 is > 4 s.e. of the sum."""
    assert abs(design_effect(_ar1(0.5, 200, 2000, 0)) - 2.875) < 0.05


def test_design_effect_of_independent_samples_is_one():
    assert design_effect(np.random.default_rng(1).standard_normal((100, 1000))) == 1.0
    assert design_effect(np.ones((1, 5))) == 1.0
