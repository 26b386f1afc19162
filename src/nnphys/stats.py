"""Small statistics helpers shared by the studies' analyses.

All take numpy arrays; seeds are along ``axis``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _st


def mean_se(x, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean (ddof=1) along ``axis``; se is nan for one sample."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    m = x.mean(axis=axis)
    se = x.std(axis=axis, ddof=1) / math.sqrt(n) if n > 1 else np.full_like(m, np.nan)
    return m, se


def t_ci(x, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t confidence interval ``(mean, lo, hi)`` along ``axis``."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    m, se = mean_se(x, axis)
    q = _st.t.ppf(0.5 + level / 2, df=max(n - 1, 1))
    return m, m - q * se, m + q * se


def significant(m1: float, se1: float, m2: float, se2: float, z: float = 2.0) -> bool:
    """True when ``|m1 - m2| > z * sqrt(se1^2 + se2^2)`` (the specs' "significant")."""
    return bool(abs(m1 - m2) > z * math.sqrt(se1**2 + se2**2))


def spearman(x, y) -> float:
    """Spearman rank correlation (nan when either input is constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(_st.spearmanr(x, y).statistic)


def binom_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    z = _st.norm.ppf(0.5 + level / 2)
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, c - h), min(1.0, c + h))


def design_effect(x, cut: float = 0.05) -> float:
    """Variance inflation of a mean over correlated samples: ``1 + 2 sum_k rho_k``.

    ``x``: ``(S, R)``, ``R`` independent chains of ``S`` equally spaced samples. ``rho_k`` is the
    lag-``k`` autocorrelation pooled over chains (centred by the grand mean); the sum stops at the
    first ``rho_k < cut`` or at ``k = S // 4`` (a truncated integrated autocorrelation time). A
    confidence interval computed as if the ``S R`` samples were independent should be widened by
    ``sqrt(design_effect)``. Returns 1 for ``S < 2``."""
    x = np.asarray(x, dtype=float)
    S = x.shape[0]
    xc = x - x.mean()
    v = float((xc * xc).mean())
    deff = 1.0
    if S < 2 or v == 0:
        return deff
    for k in range(1, max(S // 4, 1) + 1):
        rho = float((xc[k:] * xc[:-k]).mean()) / v
        if rho < cut:
            break
        deff += 2.0 * rho
    return deff
