"""Closed forms of the minibatch-noise theory of linear regression (MBN Thm 1-6, Prop. 1/4,
Lemma 1, Cor. 1, Eq. 12, the stability edges and tail indices). See :mod:`nnphys.linreg`."""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

from nnphys.errors import ConfigError
from nnphys.linreg._checks import _pos, _batch, _mom, _sym, _lr_matrix, _commute, _inf_like

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
    """Exact Gaussian-regression noise at any w (the sign caveat of Thm 5, minibatch-noise claim C11s) [derived]:
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
    """``s_μ = Tr[Λ A G_μ⁻¹] / S`` (κ convention; ``1 + κ_μ/S = 1/(1 - s_μ)``).
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
    """Second-moment stability: ``G_μ ≻ 0`` and ``s_μ < 1``. Note: moment stability
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
    """``L_train = (Tr[AΣ] + σ²)/2 = σ² / (2 (1 - s_μ))`` [derived]."""
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
    equation: ``Σ = λσ²/S (2I - λA)⁻¹`` (row 4 of the minibatch-noise checklist: fails at small S)."""
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
    """Largest scalar λ with a finite stationary second moment, by bisection on
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
    """Σ with L2, no label noise, ``[A, Γ] = 0`` [derived entrywise form]; in A's
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
    ``[A, U] = 0`` (the corrected form). Kept to demonstrate the defect; use :func:`l2_sigma`."""
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
    """Σ at fixed ``c = λ/S`` [derived]: ``Σ = cσ²G⁻¹/(1 - c Tr[AG⁻¹])``,
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
    [derived]: the root ``β > 0`` of ``E|1 - λγ - λa χ²_S/S|^β = 1`` (quadrature over
    the χ²_S density; ``γ`` is an optional L2 weight decay). ``P(|w| > x) ~ x^-β``; the stationary
    variance is finite iff β > 2, the kurtosis iff β > 4. nan when ``E log|…| >= 0`` (not
    contracting), inf when no finite root exists. The one Kesten solver of the package:
    :func:`nnphys.escape.theory.kesten_index` is this index in the escape paper's variables."""
    a, lam, S = _pos("a", a), _pos("lam", lam), _batch(S)
    c = lam * a / S
    b0 = 1 - lam * gamma
    x0 = b0 / c  # the point where the multiplier vanishes

    def moment(beta):
        def f(x):
            logpdf = (S / 2 - 1) * math.log(max(x, 1e-300)) - x / 2 - (S / 2) * math.log(2) - math.lgamma(S / 2)
            try:
                return abs(b0 - c * x) ** beta * math.exp(logpdf)
            except OverflowError:  # |b0 - c x|^beta beyond float range (large beta, far tail): in logs
                v = beta * math.log(abs(b0 - c * x)) + logpdf
                return math.exp(v) if v < 700 else math.inf
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


__all__ = ["prop1_noise", "lemma1_noise", "regression_noise_exact", "thm5_noise", "prop4_noise", "stability_ratio", "is_stable", "thm2_sigma", "thm3_noise", "train_loss", "test_loss", "sigma_1d", "continuous_sigma", "hessian_approx_sigma", "thm1_sigma", "max_lr", "max_lr_isotropic", "max_lr_highdim", "max_lr_highdim_isotropic", "input_noise_sigma_eff", "input_noise_sigma", "l2_sigma", "thm4_test_loss", "eq12_sigma", "l2_stable_1d", "l2_test_loss_1d", "optimal_weight_decay_1d", "damped_newton_sigma", "ngd_sigma", "thm6_trace", "fixed_ratio_sigma", "fixed_ratio_sigma_1d", "fixed_ratio_divergence_S", "tail_exponent_paper", "tail_exponent_continuous", "kesten_tail_index", "hill_estimator"]
