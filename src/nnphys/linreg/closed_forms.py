"""Minibatch-noise theory of SGD on linear regression, its exact oracle, and a simulator.

Paper: Ziyin, Liu, Mori, Ueda, "Strength of Minibatch Noise in SGD" (arXiv 2102.05375, ICLR 2022),
cited as (MBN, Thm/Prop/Eq. N); predecessor Liu, Ziyin, Ueda (arXiv 2012.03636) for Thm 1.
Notation follows the spec (specs/minibatch-noise.md): learning rate ``lam`` (λ, scalar) or
``Lam`` (Λ, matrix), batch size ``S``, momentum ``mu`` (μ), weight decay ``gamma``/``Gamma``
(γ/Γ), input covariance ``A``, label-noise variance ``sigma2`` (σ²), teacher ``u``.
Loss ``L(w) = 1/(2N) Σ (wᵀx_i - y_i)²`` (note the 1/2). ``Σ`` is the stationary covariance of
``w``, ``C`` the stationary minibatch-noise covariance.

Public API
----------
Noise covariance:      prop1_noise, lemma1_noise, thm3_noise, thm5_noise,
                       regression_noise_exact, prop4_noise
Fluctuation Σ:         thm2_sigma, sigma_1d, thm1_sigma (general Lyapunov-type solve),
                       continuous_sigma, hessian_approx_sigma (baselines that must fail)
Losses:                train_loss, test_loss
Stability:             stability_ratio, is_stable, max_lr, max_lr_isotropic
Input noise:           input_noise_sigma_eff, input_noise_sigma
L2 (incl. γ < 0):      thm4_test_loss, l2_sigma, eq12_sigma (printed, defective off-diagonal),
                       l2_test_loss_1d, l2_stable_1d, optimal_weight_decay_1d
Preconditioning:       damped_newton_sigma, ngd_sigma
High dimension:        thm6_trace, max_lr_highdim, max_lr_highdim_isotropic
λ–S scaling:           fixed_ratio_sigma, fixed_ratio_sigma_1d, fixed_ratio_divergence_S
Tails:                 tail_exponent_paper, tail_exponent_continuous, kesten_tail_index,
                       hill_estimator
Oracle (ground truth): moment_oracle_online, moment_oracle_finite  (exact second-moment fixed
                       point, spec §3), iterate_moments_online (the literal recursion)
Simulator:             simulate_online, simulate_finite (R chains at once, float64, torch),
                       sample_batches (vectorised with / without replacement)

Closed forms check the stability region first and return ``inf`` (scalars) or an ``inf``-filled
matrix outside it (spec §4: "must flag, not report"). User-caused bad values (λ <= 0, S < 1,
μ outside [0, 1), non-commuting matrices where commutation is assumed) raise ConfigError.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from scipy import integrate, linalg, optimize
from scipy.sparse import linalg as splinalg

from nnphys.errors import ConfigError

# ----------------------------------------------------------------------------- validation


def _pos(name: str, v: float) -> float:
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


# ----------------------------------------------------------------------------- noise


def prop1_noise(grads: np.ndarray, S: int, replacement: bool = True) -> np.ndarray:
    """Exact minibatch-noise covariance at fixed w (MBN, Prop. 1), ``(D, D)``.

    ``C = 1/(S N) Σ_i ∇ℓ_i ∇ℓ_iᵀ - 1/S ∇L ∇Lᵀ`` for ``S`` i.i.d. indices; without replacement
    times ``(N - S)/(N - 1)`` [derived]. ``grads``: ``(N, D)`` per-sample gradients ∇ℓ_i.
    """
    G = np.asarray(grads, dtype=np.float64)
    S = _batch(S)
    N = G.shape[0]
    gbar = G.mean(0)
    C = (G.T @ G) / (S * N) - np.outer(gbar, gbar) / S
    if not replacement:
        if S > N:
            raise ConfigError("S", f"must be <= N = {N} without replacement (got {S})")
        C = C * ((N - S) / (N - 1) if N > 1 else 0.0)
    return C


def lemma1_noise(A, Sigma, sigma2: float, S: int) -> np.ndarray:
    """Online label-noise regression noise (MBN, Lemma 1), Gaussian x:
    ``C = (AΣA + Tr[AΣ] A + σ² A) / S``."""
    A = _sym("A", A)
    Sigma = np.asarray(Sigma, dtype=np.float64)
    return (A @ Sigma @ A + np.trace(A @ Sigma) * A + sigma2 * A) / _batch(S)


def regression_noise_exact(A, L0: float, grad, S: int) -> np.ndarray:
    """Exact Gaussian-regression noise at any w (spec §8 "sign caveat") [derived]:
    ``C = (2 L_0 A + ∇L_0 ∇L_0ᵀ) / S``, with ``L_0 = (σ² + zᵀAz)/2``, ``∇L_0 = A z``."""
    A = _sym("A", A)
    g = np.asarray(grad, dtype=np.float64)
    return (2 * L0 * A + np.outer(g, g)) / _batch(S)


def thm5_noise(L0: float, H0, grad, S: int) -> np.ndarray:
    """General near-minimum approximation (MBN, Thm 5, corrected to use ∇L_0):
    ``C ≈ 2 L_0 H_0 / S - ∇L_0 ∇L_0ᵀ / S``. For Gaussian regression the rank-1 term has the
    opposite sign (see :func:`regression_noise_exact`)."""
    H0 = _sym("H0", H0)
    g = np.asarray(grad, dtype=np.float64)
    return (2 * L0 * H0 - np.outer(g, g)) / _batch(S)


def prop4_noise(A_hat, Sigma, sigma2: float, S: int, alpha: float) -> np.ndarray:
    """High-dimensional finite-data noise (MBN, Prop. 4), ``α = N/D``:
    ``C = (Tr[ÂΣ] I - ÂΣ) Â / S + max(0, σ²(1 - 1/α)/S) Â``."""
    Ah = _sym("A_hat", A_hat)
    Sg = np.asarray(Sigma, dtype=np.float64)
    S = _batch(S)
    D = Ah.shape[0]
    return (np.trace(Ah @ Sg) * np.eye(D) - Ah @ Sg) @ Ah / S + max(
        0.0, sigma2 * (1 - 1 / alpha) / S
    ) * Ah


# ----------------------------------------------------------------------------- Thm 2 family


def _G_mu(A: np.ndarray, Lam: np.ndarray, S: int, mu: float) -> np.ndarray:
    """``G_μ = 2(1-μ) I - ((1-μ)/(1+μ) + 1/S) ΛA`` (MBN, Thm 2)."""
    D = A.shape[0]
    return 2 * (1 - mu) * np.eye(D) - ((1 - mu) / (1 + mu) + 1 / S) * (Lam @ A)


def stability_ratio(A, lam, S: int, mu: float = 0.0) -> float:
    """``s_μ = Tr[Λ A G_μ⁻¹] / S`` (spec §4 κ convention; ``1 + κ_μ/S = 1/(1 - s_μ)``).
    Returns ``inf`` when ``G_μ`` is not positive definite."""
    A = _sym("A", A)
    S, mu = _batch(S), _mom(mu)
    Lam = _lr_matrix(lam, A.shape[0])
    _commute("Lam", Lam, A)
    G = _G_mu(A, Lam, S, mu)
    if np.linalg.eigvals(G).real.min() <= 0:
        return math.inf
    return float(np.trace(Lam @ A @ np.linalg.inv(G)) / S)


def is_stable(A, lam, S: int, mu: float = 0.0) -> bool:
    """Second-moment stability (spec §4): ``G_μ ≻ 0`` and ``s_μ < 1``. Note: moment stability
    is not almost-sure stability."""
    return stability_ratio(A, lam, S, mu) < 1


def _stationary_inputs(A, lam, S: int, mu: float):
    """Validated ``(A, Λ, S, μ)`` of the online stationary formulas and their stability ratio s."""
    A = _sym("A", A)
    S, mu = _batch(S), _mom(mu)
    Lam = _lr_matrix(lam, A.shape[0])
    return A, Lam, S, mu, stability_ratio(A, Lam, S, mu)


def thm2_sigma(A, lam, S: int, sigma2: float = 1.0, mu: float = 0.0) -> np.ndarray:
    """Stationary fluctuation, online label-noise regression (MBN, Thm 2), ``[Λ, A] = 0``:
    ``Σ = σ²/S (1 + κ_μ/S) Λ G_μ⁻¹ = σ² Λ G_μ⁻¹ / (S (1 - s_μ))``. ``(D, D)``; inf outside the
    stability region."""
    A, Lam, S, mu, s = _stationary_inputs(A, lam, S, mu)
    D = A.shape[0]
    if not s < 1:
        return _inf_like(D)
    G = _G_mu(A, Lam, S, mu)
    return sigma2 * Lam @ np.linalg.inv(G) / (S * (1 - s))


def thm3_noise(A, lam, S: int, sigma2: float = 1.0, mu: float = 0.0) -> np.ndarray:
    """Stationary noise (MBN, Thm 3): ``C = σ²A/S + σ²/S² (1 + κ_μ/S)(ΛAG_μ⁻¹ +
    Tr[ΛAG_μ⁻¹] I) A``; inf outside the stability region."""
    A, Lam, S, mu, s = _stationary_inputs(A, lam, S, mu)
    D = A.shape[0]
    if not s < 1:
        return _inf_like(D)
    M = Lam @ A @ np.linalg.inv(_G_mu(A, Lam, S, mu))
    return sigma2 * A / S + sigma2 / (S**2 * (1 - s)) * (M + np.trace(M) * np.eye(D)) @ A


def train_loss(A, lam, S: int, sigma2: float = 1.0, mu: float = 0.0) -> float:
    """``L_train = (Tr[AΣ] + σ²)/2 = σ² / (2 (1 - s_μ))`` [derived, spec §4]."""
    s = stability_ratio(A, lam, S, mu)
    return sigma2 / (2 * (1 - s)) if s < 1 else math.inf


def test_loss(A, lam, S: int, sigma2: float = 1.0, mu: float = 0.0) -> float:
    """Noise-free population risk ``L_test = Tr[AΣ]/2 = σ² s_μ / (2 (1 - s_μ))`` [derived]."""
    s = stability_ratio(A, lam, S, mu)
    return sigma2 * s / (2 * (1 - s)) if s < 1 else math.inf


test_loss.__test__ = False  # not a pytest test when imported into a test module


def sigma_1d(a: float, lam: float, S: int, sigma2: float = 1.0, mu: float = 0.0) -> float:
    """1-D closed form [derived]: ``Σ = λσ² / (S g_μ - λa)``,
    ``g_μ = 2(1-μ) - ((1-μ)/(1+μ) + 1/S) λa``; μ = 0: ``λσ² / (2S - λa(S + 2))``."""
    a, lam, S, mu = _pos("a", a), _pos("lam", lam), _batch(S), _mom(mu)
    g = 2 * (1 - mu) - ((1 - mu) / (1 + mu) + 1 / S) * lam * a
    den = S * g - lam * a
    return lam * sigma2 / den if (g > 0 and den > 0) else math.inf


def continuous_sigma(A, lam: float, S: int, sigma2: float = 1.0) -> np.ndarray:
    """Continuous-time baseline ``Σ = λσ²/(2S) I`` (a baseline that fails at small S)."""
    A = _sym("A", A)
    return _pos("lam", lam) * sigma2 / (2 * _batch(S)) * np.eye(A.shape[0])


def hessian_approx_sigma(A, lam: float, S: int, sigma2: float = 1.0) -> np.ndarray:
    """Discrete-time Hessian approximation ``C ≈ σ²A/S`` plugged into the discrete Lyapunov
    equation: ``Σ = λσ²/S (2I - λA)⁻¹`` (spec §13 row 4: fails at small S)."""
    A = _sym("A", A)
    lam = _pos("lam", lam)
    G = 2 * np.eye(A.shape[0]) - lam * A
    if np.linalg.eigvalsh(G).min() <= 0:
        return _inf_like(A.shape[0])
    return lam * sigma2 / _batch(S) * np.linalg.inv(G)


def thm1_sigma(H, Lam, C, mu: float = 0.0) -> np.ndarray:
    """Solve the fluctuation–noise relation (Liu et al. 2021 Thm 1; MBN Thm 1) for Σ:
    ``(1-μ)(ΛHΣ + ΣHΛ) - (1+μ²)/(1-μ²) ΛHΣHΛ + μ/(1-μ²)(ΛHΛHΣ + ΣHΛHΛ) = ΛCΛ``.
    Dense ``D² x D²`` linear solve; for small D (checks, NGD)."""
    H, C = _sym("H", H), _sym("C", C)
    D = H.shape[0]
    Lam = _lr_matrix(Lam, D)
    mu = _mom(mu)

    def lhs(Sg):
        LH = Lam @ H
        return ((1 - mu) * (LH @ Sg + Sg @ H @ Lam)
                - (1 + mu**2) / (1 - mu**2) * LH @ Sg @ H @ Lam
                + mu / (1 - mu**2) * (LH @ LH @ Sg + Sg @ H @ Lam @ H @ Lam))

    M = np.zeros((D * D, D * D))
    for k in range(D * D):
        E = np.zeros(D * D)
        E[k] = 1.0
        M[:, k] = lhs(E.reshape(D, D)).ravel()
    sol = np.linalg.solve(M, (Lam @ C @ Lam).ravel()).reshape(D, D)
    return 0.5 * (sol + sol.T)


# ----------------------------------------------------------------------------- stability edge


def max_lr(A, S: int, mu: float = 0.0) -> float:
    """Largest scalar λ with a finite stationary second moment (spec §4), by bisection on
    ``s_μ(λ) < 1`` (monotone in λ)."""
    A = _sym("A", A)
    amax = np.linalg.eigvalsh(A).max()
    hi = 2 * (1 + mu) / amax * 1.0000001
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid > 0 and is_stable(A, mid, S, mu):
            lo = mid
        else:
            hi = mid
    return lo


def max_lr_isotropic(a: float, D: int, S: int) -> float:
    """Isotropic ``A = aI_D``, μ = 0 [derived]: ``λ_max = 2S / (a (D + S + 1))``."""
    return 2 * _batch(S) / (_pos("a", a) * (D + S + 1))


def max_lr_highdim(A_hat, S: int) -> float:
    """Edge of Thm 6 (MBN §6.2, corrected): largest λ with
    ``Σ_i 1/(2/(λa_i) - 1 + 1/S) < S`` (``a_i > 0`` eigenvalues of Â), by bisection."""
    a = np.linalg.eigvalsh(_sym("A_hat", A_hat))
    a = a[a > 1e-12 * a.max()]
    S = _batch(S)

    def ok(lam):
        g = 2 / (lam * a) - 1 + 1 / S
        return np.all(g > 0) and np.sum(1 / g) < S

    lo, hi = 0.0, 2 / ((1 - 1 / S) * a.max()) if S > 1 else 1e3 / a.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def max_lr_highdim_isotropic(a: float, D: int, S: int) -> float:
    """Isotropic ``Â = aI`` [derived]: ``λ < 2S / (a (D + S - 1))``."""
    return 2 * _batch(S) / (_pos("a", a) * (D + S - 1))


# ----------------------------------------------------------------------------- input noise


def input_noise_sigma_eff(A, B, u) -> float:
    """Effective label noise of input noise (MBN §5 [paper] one-liner; [derived] model
    ``x̃ = x + ζ``, ``ζ ~ N(0, B)``): ``σ²_eff = uᵀ(A - A K⁻¹ A)u = Tr[A K⁻¹ B U]``, ``K = A + B``."""
    A, B = _sym("A", A), _sym("B", B)
    u = np.asarray(u, dtype=np.float64)
    K = A + B
    return float(u @ (A - A @ np.linalg.solve(K, A)) @ u)


def input_noise_sigma(A, B, u, lam: float, S: int, sigma2_label: float = 0.0,
                      mu: float = 0.0) -> np.ndarray:
    """Σ under input noise [derived]: Thm 2 with ``A → K = A + B``,
    ``σ² → σ²_eff (+ label noise)``, about ``w* = K⁻¹ A u``."""
    A, B = _sym("A", A), _sym("B", B)
    return thm2_sigma(A + B, lam, S, input_noise_sigma_eff(A, B, u) + sigma2_label, mu)


# ----------------------------------------------------------------------------- L2


def _l2_parts(A, Gamma, u):
    A = _sym("A", A)
    D = A.shape[0]
    Gm = Gamma * np.eye(D) if np.ndim(Gamma) == 0 else _sym("Gamma", Gamma)
    _commute("Gamma", Gm, A)
    K = A + Gm
    if np.linalg.eigvalsh(K).min() <= 0:
        raise ConfigError("Gamma", "A + Γ must be positive definite (γ > -a_min)")
    u = np.asarray(u, dtype=np.float64).reshape(D)
    return A, Gm, K, u


def _l2_eig(A, Gm, u):
    a, V = np.linalg.eigh(A)
    g = np.diag(V.T @ Gm @ V)
    return a, g, a + g, V.T @ u, V


def l2_sigma(A, Gamma, u, lam: float, S: int) -> np.ndarray:
    """Σ with L2, no label noise, ``[A, Γ] = 0`` [derived entrywise form, spec §6]; in A's
    eigenbasis ``Σ_jl = λ²/S [(Tr[AΣ] + t_U) a_j δ_jl + a_j a_l γ_j γ_l U_jl/(k_j k_l)] /
    (λ(k_j + k_l) - λ² k_j k_l - λ² a_j a_l / S)``, returned in the original basis; inf if
    unstable."""
    A, Gm, K, u = _l2_parts(A, Gamma, u)
    lam, S = _pos("lam", lam), _batch(S)
    a, g, k, ut, V = _l2_eig(A, Gm, u)
    D = len(a)
    Gd = 2 - lam * k - lam * a**2 / (S * k)
    if np.any(Gd <= 0):
        return _inf_like(D)
    m0 = -g * ut / k  # w* - u in the eigenbasis
    t_U = float(np.sum(a * m0**2))
    q = lam * np.sum(a**2 / (k * Gd)) / S
    if q >= 1:
        return _inf_like(D)
    trAS = lam / S * (t_U * np.sum(a**2 / (k * Gd)) + np.sum(a**3 * m0**2 / (k * Gd))) / (1 - q)
    den = lam * (k[:, None] + k[None, :]) - lam**2 * np.outer(k, k) - lam**2 * np.outer(a, a) / S
    num = lam**2 / S * ((trAS + t_U) * np.diag(a) + np.outer(a * m0, a * m0))
    Sig = num / den
    return V @ Sig @ V.T


def thm4_test_loss(A, Gamma, u, lam: float, S: int) -> float:
    """Test loss with L2, no label noise (MBN, Thm 4), exact when ``[A, Γ] = 0``:
    ``L_test = λ/(2S)(t_U κ + r) + t_U/2``, ``t_U = Tr[AK⁻²Γ²U]``,
    ``κ = Tr[A²K⁻¹G⁻¹]/(1 - λ/S Tr[A²K⁻¹G⁻¹])``, ``r = Tr[A³K⁻³Γ²G⁻¹U]/(1 - ...)``,
    ``G = 2I - λ(K + K⁻¹A²/S)``. inf if unstable."""
    A, Gm, K, u = _l2_parts(A, Gamma, u)
    lam, S = _pos("lam", lam), _batch(S)
    D = A.shape[0]
    Ki = np.linalg.inv(K)
    G = 2 * np.eye(D) - lam * (K + Ki @ A @ A / S)
    if np.linalg.eigvals(G).real.min() <= 0:
        return math.inf
    Gi = np.linalg.inv(G)
    U = np.outer(u, u)
    t_U = float(np.trace(A @ Ki @ Ki @ Gm @ Gm @ U))
    tr = float(np.trace(A @ A @ Ki @ Gi))
    den = 1 - lam / S * tr
    if den <= 0:
        return math.inf
    kappa = tr / den
    r = float(np.trace(A @ A @ A @ Ki @ Ki @ Ki @ Gm @ Gm @ Gi @ U)) / den
    return lam / (2 * S) * (t_U * kappa + r) + 0.5 * t_U


def eq12_sigma(A, Gamma, u, lam: float, S: int) -> np.ndarray:
    """MBN Eq. 12 **as printed** (stated for ``[Γ, U] = 0``):
    ``Σ = λ/S t_U (1 + λκ/S) A K⁻¹ G⁻¹ + λ/S (A²K⁻²Γ²U + λr/S A) K⁻¹ G⁻¹``.
    Exact on the diagonal (A's eigenbasis); its off-diagonal part is not even symmetric unless
    ``[A, U] = 0`` (spec §6 correction). Kept to demonstrate the defect; use :func:`l2_sigma`."""
    A, Gm, K, u = _l2_parts(A, Gamma, u)
    lam, S = _pos("lam", lam), _batch(S)
    D = A.shape[0]
    Ki = np.linalg.inv(K)
    G = 2 * np.eye(D) - lam * (K + Ki @ A @ A / S)
    Gi = np.linalg.inv(G)
    U = np.outer(u, u)
    t_U = float(np.trace(A @ Ki @ Ki @ Gm @ Gm @ U))
    tr = float(np.trace(A @ A @ Ki @ Gi))
    den = 1 - lam / S * tr
    kappa = tr / den
    r = float(np.trace(A @ A @ A @ Ki @ Ki @ Ki @ Gm @ Gm @ Gi @ U)) / den
    return (lam / S * t_U * (1 + lam * kappa / S) * A @ Ki @ Gi
            + lam / S * (A @ A @ Ki @ Ki @ Gm @ Gm @ U + lam * r / S * A) @ Ki @ Gi)


def l2_stable_1d(a: float, gamma: float, lam: float, S: int) -> bool:
    """1-D L2 stability [derived]: ``k = a + γ > 0`` and ``S k (2 - λk) > 2 λ a²``."""
    k = a + gamma
    return bool(k > 0 and S * k * (2 - lam * k) > 2 * lam * a**2)


def l2_test_loss_1d(a: float, gamma: float, u: float, lam: float, S: int) -> float:
    """1-D closed form [derived]: ``L_test = a γ² u² / (2k²) (1 + λT/S)/(1 - λT/S)``,
    ``T = a²/(kG)``, ``G = 2 - λk - λa²/(Sk)``; inf if unstable."""
    a, lam, S = _pos("a", a), _pos("lam", lam), _batch(S)
    if not l2_stable_1d(a, gamma, lam, S):
        return math.inf
    k = a + gamma
    G = 2 - lam * k - lam * a**2 / (S * k)
    T = a**2 / (k * G)
    return a * gamma**2 * u**2 / (2 * k**2) * (1 + lam * T / S) / (1 - lam * T / S)


def optimal_weight_decay_1d(a: float, u: float, lam: float, S: int,
                            n_grid: int = 20001) -> tuple[float, float]:
    """``γ* = argmin_γ L_test`` over the stable γ (MBN Cor. 1): a dense grid on
    ``(-a, 2/λ - a + 2a)`` refined by bounded scalar minimisation. Returns ``(γ*, L*)``;
    ``(nan, inf)`` when no γ is stable."""
    a, lam, S = _pos("a", a), _pos("lam", lam), _batch(S)
    grid = np.linspace(-a + 1e-9, 2 / lam + 2 * a, n_grid)
    vals = np.array([l2_test_loss_1d(a, g, u, lam, S) for g in grid])
    if not np.isfinite(vals).any():
        return math.nan, math.inf
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, n_grid - 1)]
    res = optimize.minimize_scalar(lambda g: l2_test_loss_1d(a, g, u, lam, S),
                                   bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-10})
    if res.fun <= vals[i]:
        return float(res.x), float(res.fun)
    return float(grid[i]), float(vals[i])


# ----------------------------------------------------------------------------- preconditioning


def damped_newton_sigma(A, lam: float, S: int, sigma2: float = 1.0,
                        mu: float = 0.0) -> np.ndarray:
    """Damped Newton ``Λ = λA⁻¹`` (MBN §7): ``Σ = λσ²/(gS - λD) A⁻¹``,
    ``g = 2(1-μ) - ((1-μ)/(1+μ) + 1/S) λ``; stable iff ``S > λD/g``; inf otherwise."""
    A = _sym("A", A)
    lam, S, mu = _pos("lam", lam), _batch(S), _mom(mu)
    D = A.shape[0]
    g = 2 * (1 - mu) - ((1 - mu) / (1 + mu) + 1 / S) * lam
    den = g * S - lam * D
    if g <= 0 or den <= 0:
        return _inf_like(D)
    return lam * sigma2 / den * np.linalg.inv(A)


def ngd_sigma(A, lam: float, S: int, mu: float = 0.0) -> np.ndarray:
    """Natural gradient ``Λ = λ/S C⁻¹``, σ = 0 (MBN §7, one self-consistent solution
    [derived]): ``Σ = λ/2 (1/((1+D)(1+μ)) + 1/((1-μ) S)) A⁻¹``."""
    A = _sym("A", A)
    lam, S, mu = _pos("lam", lam), _batch(S), _mom(mu)
    D = A.shape[0]
    return lam / 2 * (1 / ((1 + D) * (1 + mu)) + 1 / ((1 - mu) * S)) * np.linalg.inv(A)


# ----------------------------------------------------------------------------- high dimension


def thm6_trace(A_hat, lam: float, S: int, sigma2: float = 1.0, alpha: float | None = None,
               residual_var: float | None = None) -> float:
    """``Tr[ÂΣ]`` for fixed-data regression (MBN, Thm 6):
    ``max{0, λ/S · σ²(1 - 1/α) · κ̂}``, ``κ̂ = Tr[Ĝ⁻¹Â]/(1 - λ/S Tr[Ĝ⁻¹Â])``,
    ``Ĝ = 2I - λ(1 - 1/S)Â``. ``residual_var`` (the realised ``‖e‖²/N``) replaces
    ``σ²(1 - 1/α)`` [derived per-draw form]. inf if unstable."""
    Ah = _sym("A_hat", A_hat)
    lam, S = _pos("lam", lam), _batch(S)
    if residual_var is None:
        if alpha is None:
            raise ConfigError("alpha", "give alpha = N/D or residual_var")
        noise = max(0.0, sigma2 * (1 - 1 / alpha))
    else:
        noise = float(residual_var)
    D = Ah.shape[0]
    G = 2 * np.eye(D) - lam * (1 - 1 / S) * Ah
    if np.linalg.eigvalsh(G).min() <= 0:
        return math.inf
    tr = float(np.trace(np.linalg.solve(G, Ah)))
    den = 1 - lam / S * tr
    if den <= 0:
        return math.inf
    return max(0.0, lam / S * noise * tr / den)


# ----------------------------------------------------------------------------- λ–S scaling


def fixed_ratio_sigma(A, c: float, S: int, sigma2: float = 1.0) -> np.ndarray:
    """Σ at fixed ``c = λ/S`` (spec §10) [derived]: ``Σ = cσ²G⁻¹/(1 - c Tr[AG⁻¹])``,
    ``G = 2I - c(S + 1)A`` (= Thm 2 with λ = cS)."""
    return thm2_sigma(A, _pos("c", c) * _batch(S), S, sigma2)


def fixed_ratio_sigma_1d(a: float, c: float, S: int, sigma2: float = 1.0) -> float:
    """1-D [derived]: ``Σ = cσ² / (2 - ca(S + 2))``; grows with S at fixed c (linear scaling
    rule predicts the constant ``cσ²/2``); inf beyond ``S = 2/(ca) - 2``."""
    den = 2 - _pos("c", c) * _pos("a", a) * (_batch(S) + 2)
    return c * sigma2 / den if den > 0 else math.inf


def fixed_ratio_divergence_S(a: float, c: float) -> float:
    """Batch size at which the 1-D Σ diverges at fixed ``c = λ/S``: ``S = 2/(ca) - 2``."""
    return 2 / (_pos("c", c) * _pos("a", a)) - 2


# ----------------------------------------------------------------------------- tails


def tail_exponent_paper(a: float, lam: float, S: int) -> float:
    """Discrete-time 1-D estimate (MBN §11 [paper]): ``β = 2S/(aλ) - S``."""
    return 2 * _batch(S) / (_pos("a", a) * _pos("lam", lam)) - S


def tail_exponent_continuous(a: float, lam: float, S: int) -> float:
    """Continuous-time tail index (companion paper): ``β = 2S/(aλ) + 1``."""
    return 2 * _batch(S) / (_pos("a", a) * _pos("lam", lam)) + 1


def kesten_tail_index(a: float, lam: float, S: int, gamma: float = 0.0) -> float:
    """Exact tail index of the 1-D Kesten recursion ``w' = (1 - λγ - λaχ²_S/S) w + noise``
    [derived, spec §11]: the root ``β > 0`` of ``E|1 - λγ - λa χ²_S/S|^β = 1`` (quadrature over
    the χ²_S density; ``γ`` is an optional L2 weight decay). ``P(|w| > x) ~ x^-β``; the stationary
    variance is finite iff β > 2, the kurtosis iff β > 4. nan when ``E log|…| >= 0`` (not
    contracting), inf when no finite root exists."""
    a, lam, S = _pos("a", a), _pos("lam", lam), _batch(S)
    c = lam * a / S
    b0 = 1 - lam * gamma
    x0 = b0 / c  # the point where the multiplier vanishes

    def moment(beta):
        f = lambda x: abs(b0 - c * x) ** beta * math.exp(  # noqa: E731
            (S / 2 - 1) * math.log(max(x, 1e-300)) - x / 2 - (S / 2) * math.log(2)
            - math.lgamma(S / 2))
        hi = max(abs(x0) * 4, S + 60 * math.sqrt(2 * S) + 60)
        pts = [x0] if 0 < x0 < hi else None
        v, _ = integrate.quad(f, 0, hi, points=pts, limit=400, epsabs=0, epsrel=1e-12)
        v2, _ = integrate.quad(f, hi, np.inf, limit=200, epsabs=0, epsrel=1e-12)
        return v + v2

    g = lambda b: math.log(moment(b))  # noqa: E731  convex, g(0) = 0
    if g(1e-4) >= 0:
        return math.nan
    hi = 1.0
    while g(hi) < 0:
        hi *= 2
        if hi > 1e3:
            return math.inf
    return float(optimize.brentq(g, 1e-4, hi, xtol=1e-10))


def hill_estimator(samples, frac: float = 0.005) -> float:
    """Hill estimate of the tail index β of ``|samples|`` (``P(|w| > x) ~ x^-β``) from the
    top ``frac`` order statistics."""
    x = np.abs(np.asarray(samples, dtype=np.float64).ravel())
    n = x.size
    k = max(2, int(frac * n))
    if k >= n:
        raise ConfigError("frac", f"top fraction too large for {n} samples")
    top = np.partition(x, n - k - 1)[n - k - 1:]
    thr = top.min()
    logs = np.log(np.sort(top)[1:] / thr)
    return float(1 / logs.mean())


# ----------------------------------------------------------------------------- exact oracle


@dataclasses.dataclass(frozen=True)
class MomentResult:
    """Stationary second moments from the exact oracle (spec §3).

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
    """Exact stationary moments of online Gaussian SGD (spec §3, N → ∞), any Λ, μ, Γ.

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
    """The literal recursion of spec §3 (μ = 0, Γ = 0, start at w* = u):
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
    """Exact stationary moments of minibatch SGD on a fixed data set (spec §3), loss
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


# ----------------------------------------------------------------------------- simulator


class SimRng:
    """Seeded draws for the simulators: numpy's ziggurat on the CPU (torch's float64 ``randn``
    is several times slower there), a ``torch.Generator`` on other devices. float64."""

    def __init__(self, seed: int, device: torch.device):
        self.device = device
        self.cpu = device.type == "cpu"
        if self.cpu:
            self.np = np.random.default_rng(int(seed))
        else:
            self.tg = torch.Generator(device=device).manual_seed(int(seed))

    def normal(self, *shape) -> torch.Tensor:
        if self.cpu:
            return torch.from_numpy(self.np.standard_normal(shape))
        return torch.randn(*shape, generator=self.tg, device=self.device, dtype=torch.float64)

    def integers(self, high: int, *shape) -> torch.Tensor:
        if self.cpu:
            return torch.from_numpy(self.np.integers(0, high, shape))
        return torch.randint(0, high, shape, generator=self.tg, device=self.device)

    def uniform(self, *shape) -> torch.Tensor:
        if self.cpu:
            return torch.from_numpy(self.np.random(shape))
        return torch.rand(*shape, generator=self.tg, device=self.device, dtype=torch.float64)

    def chi2(self, df: int, *shape) -> torch.Tensor:
        if self.cpu:
            return torch.from_numpy(self.np.chisquare(df, shape))
        return torch._standard_gamma(torch.full(shape, df / 2, dtype=torch.float64,
                                                device=self.device), generator=self.tg) * 2


def sample_batches(n_chains: int, N: int, S: int, replacement: bool, rng: "SimRng") -> torch.Tensor:
    """Minibatch indices ``(R, S)`` for R chains in one call: i.i.d. uniform (with replacement),
    or S distinct indices per chain (a uniform S-subset), by vectorised Floyd sampling
    (``O(R S²)``, S steps) when ``S² <= 4N``, else the S smallest of R x N uniform keys."""
    if replacement:
        return rng.integers(N, n_chains, S)
    if S > N:
        raise ConfigError("S", f"must be <= N = {N} without replacement (got {S})")
    if S * S <= 4 * N:
        out = torch.empty(n_chains, S, dtype=torch.int64, device=rng.device)
        for k, j in enumerate(range(N - S, N)):
            t = (rng.uniform(n_chains) * (j + 1)).long().clamp_max(j).to(rng.device)
            hit = (out[:, :k] == t[:, None]).any(1) if k else torch.zeros_like(t, dtype=torch.bool)
            out[:, k] = torch.where(hit, torch.full_like(t, j), t)
        return out
    keys = rng.uniform(n_chains, N).to(rng.device)
    return torch.topk(keys, S, dim=1, largest=False, sorted=False).indices


@dataclasses.dataclass
class SimResult:
    """Monte-Carlo stationary statistics over ``R`` chains (float64 numpy).

    ``chain_Sigma``: ``(R, D, D)`` per-chain time averages of ``v vᵀ`` (``v = w - w*``) after
    burn-in; chains are independent, so their spread gives CIs. ``Sigma``: their mean.
    ``chain_train``, ``chain_test``: ``(R,)`` per-chain time-averaged train / test losses.
    ``samples``: ``(n_rec, R_rec, D)`` recorded iterates ``v`` (for tails), or None.
    ``diverged``: ``(R,)`` chains whose iterate became non-finite or exceeded ``blowup``.
    ``v_final``: ``(R, D)`` last iterate ``w - w*``.
    """

    Sigma: np.ndarray
    chain_Sigma: np.ndarray
    chain_train: np.ndarray
    chain_test: np.ndarray
    diverged: np.ndarray
    samples: np.ndarray | None
    w_star: np.ndarray
    meta: dict[str, Any]
    v_final: np.ndarray | None = None

    def sigma_ci(self, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
        """Mean Σ and its half-width (z · s.e. over live chains), entrywise."""
        cs = self.chain_Sigma[~self.diverged]
        if cs.shape[0] < 2:
            nan = np.full(self.chain_Sigma.shape[1:], np.nan)
            return nan, nan
        return cs.mean(0), z * cs.std(0, ddof=1) / math.sqrt(cs.shape[0])


def _check_sim(lam, S, n_chains, n_steps, burn_in):
    if np.ndim(lam) == 0:
        _pos("lam", float(lam))
    S = _batch(S)
    for nm, v in (("n_chains", n_chains), ("n_steps", n_steps)):
        if int(v) != v or v < 1:
            raise ConfigError(nm, f"must be an integer >= 1 (got {v!r})")
    if int(burn_in) != burn_in or burn_in < 0:
        raise ConfigError("burn_in", f"must be an integer >= 0 (got {burn_in!r})")
    return S


def _run_chains(step_grad, D, Lam_t, mu, n_chains, n_steps, burn_in, record_every,
                record_chains, device, blowup, v0=None):
    """Shared SGD(+momentum) loop over R chains; ``step_grad(v) -> (R, D)`` minibatch gradient
    at ``v = w - w*`` (random draws inside). Returns per-chain time averages of ``v vᵀ``
    ``(R, D, D)`` and of ``v`` ``(R, D)``, the diverged mask and the recorded iterates."""
    dt = torch.float64
    diag = torch.diagonal(Lam_t)
    lam_s = float(diag[0]) if torch.equal(Lam_t, torch.diag(diag)) and bool((diag == diag[0]).all()) else None
    v = torch.zeros(n_chains, D, dtype=dt, device=device)
    if v0 is not None:
        v = v + torch.as_tensor(v0, dtype=dt, device=device)
    m = torch.zeros_like(v)
    acc = torch.zeros(n_chains, D, D, dtype=dt, device=device)
    acc1 = torch.zeros(n_chains, D, dtype=dt, device=device)
    bad = torch.zeros(n_chains, dtype=torch.bool, device=device)
    recs = []
    blk = 32  # second moments accumulated as (R, blk, D)ᵀ(R, blk, D): BLAS-3, not blk rank-1 updates
    buf = torch.zeros(n_chains, blk, D, dtype=dt, device=device)
    nb = 0
    for t in range(burn_in + n_steps):
        g = step_grad(v)
        m = mu * m + g if mu else g
        v = v - (m * lam_s if lam_s is not None else m @ Lam_t)  # Λ symmetric
        if t >= burn_in:
            buf[:, nb] = v
            nb += 1
            if nb == blk or t == burn_in + n_steps - 1:
                acc.baddbmm_(buf[:, :nb].transpose(1, 2), buf[:, :nb])
                acc1 += buf[:, :nb].sum(1)
                nb = 0
            if record_every and (t - burn_in) % record_every == 0:
                recs.append(v[:record_chains].cpu().numpy().copy())
        if t % 64 == 0 or t == burn_in + n_steps - 1:
            nbad = ~torch.isfinite(v).all(1) | (v.abs().amax(1) > blowup)
            if nbad.any():
                bad |= nbad
                v = torch.where(nbad[:, None], torch.zeros_like(v), v)  # park diverged chains
                m = torch.where(nbad[:, None], torch.zeros_like(m), m)
                buf[nbad] = 0.0
    return ((acc / n_steps).cpu().numpy(), (acc1 / n_steps).cpu().numpy(), bad.cpu().numpy(),
            np.stack(recs) if recs else None, v.cpu().numpy())


def _quad_avg(cS: np.ndarray, vbar: np.ndarray, M: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per-chain time average of ``½(v + c)ᵀ M (v + c)`` from ``E[vvᵀ]`` and ``E[v]``."""
    return 0.5 * (np.einsum("rde,ed->r", cS, M) + 2 * vbar @ (M @ c) + c @ M @ c)


def simulate_online(A, lam, S: int, sigma2: float = 1.0, *, mu: float = 0.0, Gamma=None,
                    u=None, B_input=None, n_chains: int = 2000, n_steps: int = 4000,
                    burn_in: int | None = None, seed: int = 0, record_every: int = 0,
                    record_chains: int | None = None, device: str = "cpu",
                    blowup: float = 1e8) -> SimResult:
    """Online Gaussian minibatch SGD (spec §1, §13 simulator), R chains in one tensor, float64.

    Each step draws S fresh ``x ~ N(0, A)`` per chain, label ``y = uᵀx + ε``,
    ``ε ~ N(0, σ²)``; with ``B_input`` the model sees ``x̃ = x + ζ``, ``ζ ~ N(0, B_input)``
    (spec §5). Gradient ``ĝ = 1/S Σ x̃(x̃ᵀw - y) + Γw``; momentum ``m ← μm + ĝ``,
    ``w ← w - Λm``. Chains start at ``w*`` (the population minimiser). Burn-in default
    ``⌈5/(λ a_min)⌉`` (spec §13). Diverged chains (non-finite or ``|v| > blowup``) are flagged and
    excluded from averages.
    """
    A = _sym("A", A)
    D = A.shape[0]
    S = _check_sim(lam, S, n_chains, n_steps, burn_in or 0)
    mu = _mom(mu)
    Lam = _lr_matrix(lam, D)
    Gm = np.zeros((D, D)) if Gamma is None else (
        Gamma * np.eye(D) if np.ndim(Gamma) == 0 else _sym("Gamma", Gamma))
    Bn = np.zeros((D, D)) if B_input is None else _sym("B_input", B_input)
    uu = np.zeros(D) if u is None else np.asarray(u, dtype=np.float64).reshape(D)
    K = A + Bn
    w_star = np.linalg.solve(K + Gm, A @ uu)
    if burn_in is None:
        lmin = np.linalg.eigvalsh(Lam @ (K + Gm)).min()
        burn_in = int(math.ceil(5 / max(lmin, 1e-12)))
    dev = torch.device(device)
    g = SimRng(seed, dev)
    t = lambda M: torch.as_tensor(M, dtype=torch.float64, device=dev)  # noqa: E731
    Ah, Bh = t(linalg.sqrtm(A).real), t(linalg.sqrtm(Bn).real) if B_input is not None else None
    ut, ws, Gt, Lam_t = t(uu), t(w_star), t(Gm), t(Lam)
    sig = math.sqrt(sigma2)
    R = int(n_chains)
    if sigma2 < 0:
        raise ConfigError("sigma2", f"must be >= 0 (got {sigma2})")

    # latent z ~ N(0, I_m) per sample: x̃ = P z, y = q·z (x = A^½ z_x, ζ = B^½ z_ζ, ε = σ z_ε)
    blocks = [Ah] + ([Bh] if Bh is not None else [])
    P = torch.cat(blocks + [torch.zeros(D, 1, dtype=torch.float64, device=dev)], 1)
    q = torch.cat([Ah @ ut] + ([torch.zeros(D, dtype=torch.float64, device=dev)]
                               if Bh is not None else [])
                  + [torch.full((1,), sig, dtype=torch.float64, device=dev)])
    m_lat = P.shape[1]
    use_wishart = S >= m_lat
    has_gamma = bool(np.any(Gm))
    tril = torch.tril_indices(m_lat, m_lat, -1, device=dev)
    dfs = np.arange(S, S - m_lat, -1, dtype=np.float64)

    def step_grad(v):
        w = v + ws
        r = w @ P - q  # (R, m): per-sample residual is z·r
        if use_wishart:
            # Σ_s z_s z_sᵀ ~ Wishart(S, I_m) = T Tᵀ (Bartlett): O(m²) draws instead of S·m
            T = torch.zeros(R, m_lat, m_lat, dtype=torch.float64, device=dev)
            T[:, tril[0], tril[1]] = g.normal(R, tril.shape[1]).to(dev)
            chi = torch.stack([g.chi2(int(d), R) for d in dfs], 1).to(dev)
            T[:, range(m_lat), range(m_lat)] = chi.sqrt()
            zr = torch.bmm(T, torch.bmm(T.transpose(1, 2), r[:, :, None]))[..., 0]
        else:
            z = g.normal(R, S, m_lat).to(dev)
            zr = torch.bmm(z.transpose(1, 2), torch.bmm(z, r[:, :, None]))[..., 0]
        return zr @ P.T / S + (w @ Gt if has_gamma else 0.0)

    cS, vbar, bad, recs, v_end = _run_chains(
        step_grad, D, Lam_t, mu, R, int(n_steps), int(burn_in), int(record_every),
        int(record_chains or R), dev, blowup)
    # E½(x̃ᵀw - uᵀx - ε)² = ½[(w - w*)ᵀK(w - w*)] + const; test: ½(w - u)ᵀA(w - u)
    m0 = w_star - uu
    cte = _quad_avg(cS, vbar, A, m0)
    L_star = 0.5 * (float(w_star @ K @ w_star) - 2 * float(w_star @ A @ uu)
                    + float(uu @ A @ uu) + sigma2)
    ctr = _quad_avg(cS, vbar, K, np.zeros(D)) + L_star + vbar @ (K @ w_star - A @ uu)
    ok = ~bad
    Sig = cS[ok].mean(0) if ok.any() else _inf_like(D)
    return SimResult(Sig, cS, ctr, cte, bad, recs, w_star, v_final=v_end, meta=
                     dict(setting="online", lam=np.asarray(lam).tolist(), S=S, mu=mu,
                          sigma2=sigma2, n_chains=R, n_steps=int(n_steps),
                          burn_in=int(burn_in), seed=int(seed), sampling="online (fresh data)",
                          n_diverged=int(bad.sum())))


def simulate_finite(X, y, lam, S: int, *, mu: float = 0.0, gamma: float = 0.0,
                    replacement: bool = True, n_chains: int = 2000, n_steps: int = 4000,
                    burn_in: int | None = None, seed: int = 0, record_every: int = 0,
                    record_chains: int | None = None, device: str = "cpu",
                    blowup: float = 1e8, w0=None) -> SimResult:
    """Minibatch SGD on a fixed data set ``X (N, D)``, ``y (N,)`` (spec §9 setting), R chains,
    float64; each step draws S indices per chain with or without replacement (independently
    across steps). Chains start at ``w*`` (or at ``w0``, e.g. 0 for the over-parameterised
    min-norm check). Loss ``1/(2N) Σ (wᵀx - y)² + γ/2|w|²``; chains start at ``w*``.
    ``chain_train``: the data-term training loss; ``chain_test``: ``½|w - w*|²_Â`` (excess)."""
    Xn = np.asarray(X, dtype=np.float64)
    yn = np.asarray(y, dtype=np.float64).reshape(-1)
    N, D = Xn.shape
    if yn.shape[0] != N:
        raise ConfigError("y", f"must have N = {N} entries (got {yn.shape[0]})")
    S = _check_sim(lam, S, n_chains, n_steps, burn_in or 0)
    mu = _mom(mu)
    if not replacement and S > N:
        raise ConfigError("S", f"must be <= N = {N} without replacement (got {S})")
    Lam = _lr_matrix(lam, D)
    Ahat = Xn.T @ Xn / N
    Hm = Ahat + gamma * np.eye(D)
    w_star = np.linalg.lstsq(Hm, Xn.T @ yn / N, rcond=None)[0]
    if burn_in is None:
        ev = np.linalg.eigvalsh(Lam @ Hm)
        lmin = ev[ev > 1e-9 * ev.max()].min()
        burn_in = int(math.ceil(5 / lmin))
    dev = torch.device(device)
    g = SimRng(seed, dev)
    t = lambda M: torch.as_tensor(M, dtype=torch.float64, device=dev)  # noqa: E731
    Xt, yt, ws, Lam_t = t(Xn), t(yn), t(w_star), t(Lam)
    R = int(n_chains)
    res0 = float(np.mean((Xn @ w_star - yn) ** 2))

    def step_grad(v):
        idx = sample_batches(R, N, S, replacement, g).to(dev)
        xb, yb = Xt[idx], yt[idx]  # (R, S, D), (R, S)
        w = v + ws
        r = torch.bmm(xb, w[:, :, None])[..., 0] - yb
        return torch.bmm(r[:, None, :], xb)[:, 0] / S + gamma * w

    cS, vbar, bad, recs, v_end = _run_chains(
        step_grad, D, Lam_t, mu, R, int(n_steps), int(burn_in), int(record_every),
        int(record_chains or R), dev, blowup,
        v0=None if w0 is None else np.asarray(w0, dtype=np.float64).reshape(D) - w_star)
    # exact data term: L(w) = L(w*) + vᵀ(Âw* - Xᵀy/N) + ½vᵀÂv, and Âw* - Xᵀy/N = -γw*
    cte = _quad_avg(cS, vbar, Ahat, np.zeros(D))
    ctr = 0.5 * res0 + cte - gamma * (vbar @ w_star)
    ok = ~bad
    Sig = cS[ok].mean(0) if ok.any() else _inf_like(D)
    return SimResult(Sig, cS, ctr, cte, bad, recs, w_star, v_final=v_end, meta=
                     dict(setting="finite", N=N, D=D, lam=np.asarray(lam).tolist(), S=S,
                          mu=mu, gamma=gamma, n_chains=R, n_steps=int(n_steps),
                          burn_in=int(burn_in), seed=int(seed),
                          sampling="with replacement" if replacement else "without replacement",
                          n_diverged=int(bad.sum())))


__all__ = [n for n in dir() if not n.startswith("_") and n not in (
    "annotations", "dataclasses", "math", "np", "torch", "integrate", "linalg", "optimize",
    "splinalg", "Any", "ConfigError")]
