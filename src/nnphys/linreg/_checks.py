"""Argument checks shared by the linreg modules and :mod:`nnphys.escape.theory` (user errors ->
ConfigError)."""

from __future__ import annotations

import numpy as np

from nnphys.errors import ConfigError

# ----------------------------------------------------------------------------- validation


def _pos(name: str, v: float) -> float:
    """``v`` as a float, or :class:`ConfigError` naming ``name`` unless it is finite and > 0 (the
    one positivity check of :mod:`nnphys.linreg` and :mod:`nnphys.escape`)."""
    if not np.isfinite(v) or v <= 0:
        raise ConfigError(name, f"must be > 0 (got {v!r})")
    return float(v)


def _batch(S) -> int:
    if isinstance(S, bool) or int(S) != S or S < 1:
        raise ConfigError("S", f"batch size must be an integer >= 1 (got {S!r})")
    return int(S)


def _mom(mu: float) -> float:
    if not 0 <= mu < 1:
        raise ConfigError("mu", f"momentum must lie in [0, 1) (got {mu!r})")
    return float(mu)


def _sym(name: str, M) -> np.ndarray:
    M = np.atleast_2d(np.asarray(M, dtype=np.float64))
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ConfigError(name, f"must be a square matrix (got shape {M.shape})")
    if not np.allclose(M, M.T, atol=1e-12 * max(1.0, np.abs(M).max())):
        raise ConfigError(name, "must be symmetric")
    return 0.5 * (M + M.T)


def _lr_matrix(lam, D: int) -> np.ndarray:
    """λ (scalar, > 0) or Λ (D x D, symmetric PSD, non-zero) as a matrix."""
    if np.ndim(lam) == 0:
        return _pos("lam", float(lam)) * np.eye(D)
    L = _sym("Lam", lam)
    if L.shape[0] != D:
        raise ConfigError("Lam", f"must be {D} x {D} (got {L.shape})")
    if np.linalg.eigvalsh(L).min() < -1e-12 or not np.any(L):
        raise ConfigError("Lam", "must be positive semi-definite and non-zero")
    return L


def _commute(name: str, X: np.ndarray, Y: np.ndarray) -> None:
    if not np.allclose(X @ Y, Y @ X, atol=1e-10 * max(1.0, np.abs(X).max() * np.abs(Y).max())):
        raise ConfigError(name, "this closed form assumes it commutes with A ([X, A] = 0)")


def _inf_like(D: int) -> np.ndarray:
    return np.full((D, D), np.inf)
