"""The exact second-moment oracle: the stationary fixed point of the SGD moment
recursion, online and on a finite data set; ground truth for every closed form. See
:mod:`nnphys.linreg`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import linalg
from scipy.sparse import linalg as splinalg

from nnphys.errors import ConfigError
from nnphys.linreg._checks import _pos, _batch, _mom, _sym, _lr_matrix, _inf_like

# ----------------------------------------------------------------------------- exact oracle


@dataclasses.dataclass(frozen=True)
class MomentResult:
    """Stationary second moments from the exact oracle.

    ``Sigma``: ``(D, D)`` stationary covariance of ``v = w - w*`` (inf-filled if unstable);
    ``stable``: second-moment stability; ``rho``: spectral radius of the homogeneous moment map
    (``< 1`` iff stable); ``C``: stationary noise covariance 𝒞(Σ); ``w_star``; ``extra``:
    setting-specific numbers (losses)."""

    Sigma: np.ndarray
    C: np.ndarray
    stable: bool
    rho: float
    w_star: np.ndarray
    extra: dict[str, Any]


def _make_dlyap(T: np.ndarray):
    """``Q -> Z`` solving ``Z = T Z Tᵀ + Q``. Diagonalises T once (``Z = P[(P⁻¹QP⁻ᵀ)_jl /
    (1 - t_j t_l)]Pᵀ``, O(n³) per call with no Schur step); falls back to scipy's solver when the
    eigenvector basis is ill-conditioned (near-defective T, e.g. critically damped momentum)."""
    if np.allclose(T, T.T, atol=1e-14):
        t, V = np.linalg.eigh(0.5 * (T + T.T))
        den = 1 - np.outer(t, t)
        return lambda Q: V @ ((V.T @ Q @ V) / den) @ V.T
    t, P = np.linalg.eig(T)
    if np.linalg.cond(P) > 1e8:
        return lambda Q: linalg.solve_discrete_lyapunov(T, Q)
    Pi = np.linalg.inv(P)
    den = 1 - np.outer(t, t)
    return lambda Q: (P @ ((Pi @ Q @ Pi.T) / den) @ P.T).real


def _solve_stationary(Hm: np.ndarray, Lam: np.ndarray, mu: float, noise_hom, noise_src,
                      tol: float = 1e-13):
    """Fixed point ``Z = T Z Tᵀ + Q(Z_vv)`` of the (joint, with momentum) second moment.

    ``Q`` is the block ``[[Λ𝒞Λ, -Λ𝒞], [-𝒞Λ, 𝒞]]`` (just ``Λ𝒞Λ`` for μ = 0) with
    ``𝒞(Σ) = noise_hom(Σ) + noise_src``. The deterministic part is solved exactly (discrete
    Lyapunov); the noise coupling ``M: Z -> dlyap(T, Q_hom(Z_vv))`` is a positive operator, so its
    spectral radius ρ is its leading eigenvalue (Arnoldi), and the moments are stable iff
    ``ρ(T) < 1`` and ``ρ < 1``. Then ``(I - M) Z = dlyap(T, Q_src)`` is solved by fixed-point
    iteration finished by GMRES. Returns ``(Σ, 𝒞(Σ), stable, ρ)``.
    """
    D = Hm.shape[0]
    if mu == 0:
        T = np.eye(D) - Lam @ Hm
    else:
        T = np.block([[np.eye(D) - Lam @ Hm, -mu * Lam], [Hm, mu * np.eye(D)]])
    n = T.shape[0]
    if np.abs(np.linalg.eigvals(T)).max() >= 1:
        return _inf_like(D), _inf_like(D), False, math.inf
    dly = _make_dlyap(T)

    def block(Cm):
        if mu == 0:
            return Lam @ Cm @ Lam
        return np.block([[Lam @ Cm @ Lam, -Lam @ Cm], [-Cm @ Lam, Cm]])

    def apply_hom(Z):
        Q = block(noise_hom(0.5 * (Z[:D, :D] + Z[:D, :D].T)))
        return dly(0.5 * (Q + Q.T))

    nn_ = n * n
    if nn_ <= 64:
        M = np.column_stack([apply_hom(e.reshape(n, n)).ravel() for e in np.eye(nn_)])
        rho = float(np.abs(np.linalg.eigvals(M)).max())
    else:
        op = splinalg.LinearOperator((nn_, nn_), dtype=np.float64,
                                     matvec=lambda z: apply_hom(z.reshape(n, n)).ravel())
        try:
            ev = splinalg.eigs(op, k=1, which="LM", tol=1e-10, v0=np.eye(n).ravel(),
                               return_eigenvectors=False)
            rho = float(np.abs(ev).max())
        except splinalg.ArpackNoConvergence:  # power iteration from a PSD start
            Z, rho = np.eye(n), 0.0
            for _ in range(500):
                Zn = apply_hom(Z)
                rho, Z = np.linalg.norm(Zn) / np.linalg.norm(Z), Zn / np.linalg.norm(Zn)
    if rho >= 1:
        return _inf_like(D), _inf_like(D), False, rho

    Q0 = block(noise_src)
    Z0 = dly(0.5 * (Q0 + Q0.T))
    Z = Z0.copy()
    converged = False
    for _ in range(60):
        Zn = Z0 + apply_hom(Z)
        if np.linalg.norm(Zn - Z) <= tol * np.linalg.norm(Zn):
            Z, converged = Zn, True
            break
        Z = Zn
    if not converged:  # slow near the edge: solve (I - M) Z = Z0 by GMRES, matrix-free
        op = splinalg.LinearOperator((nn_, nn_), dtype=np.float64,
                                     matvec=lambda z: z - apply_hom(z.reshape(n, n)).ravel())
        sol, _ = splinalg.gmres(op, Z0.ravel(), x0=Z.ravel(), rtol=1e-14, atol=0,
                                restart=min(100, nn_), maxiter=50)
        Z = sol.reshape(n, n)
    Sigma = 0.5 * (Z[:D, :D] + Z[:D, :D].T)
    return Sigma, noise_hom(Sigma) + noise_src, True, rho


def moment_oracle_online(A, lam, S: int, sigma2: float = 1.0, mu: float = 0.0,
                         Gamma=None, u=None) -> MomentResult:
    """Exact stationary moments of online Gaussian SGD (N → ∞), any Λ, μ, Γ.

    ``∇ℓ = (xxᵀ + Γ) v + xxᵀ m_0 - xε`` about ``w* = K⁻¹Au`` (``K = A + Γ``, ``m_0 = w* - u``),
    so ``𝒞(Σ) = (AMA + Tr[AM]A + σ²A)/S`` with ``M = Σ + m_0m_0ᵀ``. ``extra``: ``train_loss =
    (Tr[AM] + σ²)/2`` (without the ½wᵀΓw penalty) and ``test_loss = Tr[AM]/2``.
    """
    A = _sym("A", A)
    D = A.shape[0]
    S, mu = _batch(S), _mom(mu)
    Lam = _lr_matrix(lam, D)
    Gm = np.zeros((D, D)) if Gamma is None else (
        Gamma * np.eye(D) if np.ndim(Gamma) == 0 else _sym("Gamma", Gamma))
    K = A + Gm
    uu = np.zeros(D) if u is None else np.asarray(u, dtype=np.float64).reshape(D)
    w_star = np.linalg.solve(K, A @ uu)
    m0 = w_star - uu
    M0 = np.outer(m0, m0)
    hom = lambda Sg: (A @ Sg @ A + np.trace(A @ Sg) * A) / S  # noqa: E731
    src = (A @ M0 @ A + np.trace(A @ M0) * A + sigma2 * A) / S
    Sigma, C, stable, rho = _solve_stationary(K, Lam, mu, hom, src)
    trAM = float(np.trace(A @ (Sigma + M0))) if stable else math.inf
    return MomentResult(Sigma, C, stable, rho, w_star,
                        dict(train_loss=0.5 * (trAM + sigma2), test_loss=0.5 * trAM))


def iterate_moments_online(A, lam: float, S: int, sigma2: float = 1.0,
                           n_steps: int = 20000) -> np.ndarray:
    """The literal recursion of the oracle (μ = 0, Γ = 0, start at w* = u):
    ``Σ ← (I - λA)Σ(I - λA) + λ²(AΣA + Tr[AΣ]A + σ²A)/S`` for ``n_steps`` steps. An
    independent check of :func:`moment_oracle_online`; diverges outside the stable region."""
    A = _sym("A", A)
    lam, S = _pos("lam", lam), _batch(S)
    D = A.shape[0]
    T = np.eye(D) - lam * A
    Sg = np.zeros((D, D))
    for _ in range(n_steps):
        Sg = T @ Sg @ T + lam**2 * (A @ Sg @ A + np.trace(A @ Sg) * A + sigma2 * A) / S
    return Sg


def moment_oracle_finite(X, y, lam, S: int, mu: float = 0.0, gamma: float = 0.0,
                         replacement: bool = True) -> MomentResult:
    """Exact stationary moments of minibatch SGD on a fixed data set, loss
    ``L = 1/(2N) Σ (wᵀx_i - y_i)² + γ/2 |w|²``, steps with S i.i.d. indices (or S distinct
    ones: 𝒞 times ``(N - S)/(N - 1)``).

    ``∇ℓ_i = H_i v - b_i`` with ``H_i = x_ix_iᵀ + γI``, ``b_i = -(x_i e_i + γw*)``, ``e_i`` the
    residuals at ``w*``; ``𝒞(Σ) = [1/N Σ (x_iᵀΣx_i) x_ix_iᵀ - ÂΣÂ + cov(b)] / S``.
    On a singular ``Â`` (N < D, γ = 0, scalar λ) the moments are solved on its range.
    ``extra``: ``train_loss = (‖e‖²/N + Tr[ÂΣ])/2`` (data term), ``tr_A_Sigma = Tr[ÂΣ]``,
    ``residual_var = ‖e‖²/N``, ``A_hat``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    N, D = X.shape
    if y.shape[0] != N:
        raise ConfigError("y", f"must have N = {N} entries (got {y.shape[0]})")
    S, mu = _batch(S), _mom(mu)
    Lam = _lr_matrix(lam, D)
    if not replacement and S > N:
        raise ConfigError("S", f"must be <= N = {N} without replacement (got {S})")
    fac = 1.0 if replacement else ((N - S) / (N - 1) if N > 1 else 0.0)
    Ah = X.T @ X / N
    Hm = Ah + gamma * np.eye(D)
    w_star = np.linalg.lstsq(Hm, X.T @ y / N, rcond=None)[0]  # min-norm if Hm is singular
    e = X @ w_star - y
    b = X * e[:, None] + gamma * w_star[None, :]
    b = b - b.mean(0)
    # Null space of Hm (N < D, γ = 0): no drift and no noise there, Σ is undetermined on it
    # (MBN Cor. 3); solve on the range (started in it, SGD never leaves it) and embed.
    hv, V = np.linalg.eigh(Hm)
    keep = hv > 1e-10 * max(hv.max(), 1e-300)
    Vr = V[:, keep]
    if keep.all() or not np.allclose(Lam, Lam[0, 0] * np.eye(D)):
        Vr = np.eye(D)
    Xr, br = X @ Vr, b @ Vr
    Ahr, Hr, Lr = Vr.T @ Ah @ Vr, Vr.T @ Hm @ Vr, Vr.T @ Lam @ Vr
    covb = br.T @ br / N

    def hom(Sg):
        q = ((Xr @ Sg) * Xr).sum(1)
        return fac * ((Xr.T * q) @ Xr / N - Ahr @ Sg @ Ahr) / S

    Sr, Cr, stable, rho = _solve_stationary(Hr, Lr, mu, hom, fac * covb / S)
    Sigma, C = (Vr @ Sr @ Vr.T, Vr @ Cr @ Vr.T) if stable else (_inf_like(D), _inf_like(D))
    res = float(e @ e / N)
    tr = float(np.trace(Ah @ Sigma)) if stable else math.inf
    return MomentResult(Sigma, C, stable, rho, w_star,
                        dict(train_loss=0.5 * (res + tr), tr_A_Sigma=tr, residual_var=res,
                             A_hat=Ah))


__all__ = ["MomentResult", "moment_oracle_online", "iterate_moments_online", "moment_oracle_finite"]
