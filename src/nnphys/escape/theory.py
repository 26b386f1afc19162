"""Power-law escape rate of SGD: closed-form theory and exact first-passage quadrature.

Mori, Ziyin, Liu, Ueda, "Power-law escape rate of SGD" (arXiv 2105.09557, ICML 2022), cited as
(Mori22, eq. N) with the equation numbers of the 2021 submission text (as in ``docs/studies/escape-rate.md``).
Time is SDE time ``t = eta * k`` throughout, rates are per unit ``t``.

Notation: ``c = L(theta_s) / L(theta*)`` (log barrier ``log c``), ``dL = L_s - L*``
(linear barrier), ``h*`` the minimum's Hessian eigenvalue along the escape direction, ``n`` the
number of outlier Hessian directions, ``r = B / (eta h*)``.

Contents
- exponents: :func:`phi`, :func:`n_critical`, :func:`escape_exponent`, :func:`phi_discrete`,
  :func:`kesten_index`;
- rates: :func:`kappa_1d` (eq. 16), :func:`kappa_nd` (eq. 17), :func:`kappa_tau` (Kramers-Langer
  in tau), :func:`kappa_from_tau`; comparators :func:`kappa_kramers_langer` (isotropic fixed
  noise) and :func:`kappa_arrhenius_frozen` (noise frozen at the minimum) [derived];
- the stationary law: :func:`student_t_params` (1-D Student-t form [derived]), :func:`fit_phi_student_t`,
  :func:`mean_loss_quadratic`;
- level sets: :func:`levelset_slope` (large-barrier local slope [derived]);
- exact mean first-passage times ([derived]): :func:`mfpt_1d` (any 1-D diffusion on
  a grid), :func:`mfpt_eq13_1d` (Eq. 13 on a 1-D landscape), :func:`mfpt_levelset` (radial
  problem of an isotropic quadratic well, Eq. 13 or the exact regression covariance).

Left out: the escape time of Xie, Sato & Sugiyama (ICLR 2021), listed as
[to verify] in the study guide; we could not check its prefactor, factor 2 and time units against that paper, so
it is not implemented.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import integrate, optimize, special

from nnphys.errors import ConfigError
from nnphys.linreg._checks import _pos

__all__ = [
    "phi", "n_critical", "escape_exponent", "phi_discrete", "kesten_index",
    "kappa_1d", "kappa_nd", "kappa_tau", "kappa_from_tau",
    "kappa_kramers_langer", "kappa_arrhenius_frozen",
    "student_t_params", "fit_phi_student_t", "mean_loss_quadratic", "levelset_slope",
    "mfpt_1d", "mfpt_eq13_1d", "mfpt_levelset", "hill_k", "hill_index", "hill_phi",
    "hill_reference_curve", "hill_phi_debiased",
]


# --------------------------------------------------------------------------- checks


def _barrier(c: float) -> float:
    c = float(c)
    if not (c > 1 and math.isfinite(c)):
        raise ConfigError("c", f"the log barrier needs c = L_s / L* > 1 (got {c})")
    return c


def _dim(n: int) -> int:
    if int(n) != n or n < 1:
        raise ConfigError("n", f"must be an integer >= 1 (got {n})")
    return int(n)


def _ratio(B: float, eta: float, h_star: float) -> float:
    return _pos("B", B) / (_pos("eta", eta) * _pos("h_star", h_star))


# --------------------------------------------------------------------------- exponents
def phi(B: float, eta: float, h_star: float) -> float:
    """Stationary exponent, ``P_ss ~ L^-phi`` with ``phi = 1 + B/(eta h*)`` (Mori22, eq. 18)."""
    return 1.0 + _ratio(B, eta, h_star)


def n_critical(B: float, eta: float, h_star: float) -> float:
    """Stability bound ``n_c = 2 (B/(eta h*) + 1)`` (Mori22, eq. 19): a minimum with ``n >= n_c``
    outlier directions is unstable (``L^-phi`` is not normalisable)."""
    return 2.0 * phi(B, eta, h_star)


def escape_exponent(B: float, eta: float, h_star: float, n: int = 1) -> float:
    """Exponent ``a`` in ``kappa ~ c^-a``: ``a = B/(eta h*) + 1 - n/2`` (Mori22, eq. 17); for
    ``n = 1`` it is eq. 16's ``1/2 + B/(eta h*)``. Negative above ``n_c``."""
    return _ratio(B, eta, h_star) + 1.0 - 0.5 * _dim(n)


def phi_discrete(B: float, eta: float, h_star: float) -> float:
    """Discrete-time 1-D exponent of the companion paper (Ziyin et al., arXiv 2102.05375):
    tail index ``beta = 2B/(eta h) - B``, i.e. ``phi_disc = B/(eta h) + (1 - B)/2`` [paper, companion]."""
    return _ratio(B, eta, h_star) + 0.5 * (1.0 - B)


def kesten_index(B: int, eta: float, h_star: float) -> float:
    """Exact tail index ``beta`` of 1-D discrete SGD with chi-square noise [paper, companion]:
    the positive root of ``E|1 - eta h chi2_B / B|^beta = 1``
    (:func:`nnphys.linreg.kesten_tail_index` with ``a = h*``, ``lam = eta``, ``S = B``). Returns
    ``phi = (beta + 1) / 2`` for direct comparison with :func:`phi`; ``nan`` if no positive root
    exists (unstable)."""
    from nnphys.linreg.closed_forms import kesten_tail_index

    B = int(_pos("B", B))
    return 0.5 * (kesten_tail_index(_pos("h_star", h_star), _pos("eta", eta), B) + 1.0)


# --------------------------------------------------------------------------- rates
def kappa_1d(c: float, h_star: float, h_saddle: float, B: float, eta: float) -> float:
    """Escape rate in 1-D (Mori22, eq. 16):
    ``kappa = sqrt(h* |h_s|) / (2 pi) * c^-(1/2 + B/(eta h*))``; ``h_saddle < 0``."""
    c = _barrier(c)
    if not h_saddle < 0:
        raise ConfigError("h_saddle", f"an index-1 saddle has negative curvature (got {h_saddle})")
    return math.sqrt(h_star * abs(h_saddle)) / (2 * math.pi) * c ** (-escape_exponent(B, eta, h_star, 1))


def _hessians(hess_min, hess_saddle) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    Hm = np.atleast_2d(np.asarray(hess_min, dtype=np.float64))
    Hs = np.atleast_2d(np.asarray(hess_saddle, dtype=np.float64))
    if Hm.shape != Hs.shape or Hm.shape[0] != Hm.shape[1]:
        raise ConfigError("hess_min", f"Hessians must be square and of equal shape (got {Hm.shape}, {Hs.shape})")
    em, ev = np.linalg.eigh(Hs)
    if not (em[0] < 0 and (len(em) == 1 or em[1] > 0)):
        raise ConfigError("hess_saddle", f"need an index-1 saddle: one negative eigenvalue (got {em})")
    if np.linalg.eigvalsh(Hm)[0] <= 0:
        raise ConfigError("hess_min", "the minimum's Hessian on the outlier subspace must be positive definite")
    return Hm, Hs, float(em[0]), ev[:, 0]


def kappa_nd(c: float, hess_min, hess_saddle, B: float, eta: float, h_star: float | None = None) -> float:
    """Escape rate in ``n`` dimensions (Mori22, eq. 17):
    ``kappa = |h_s,e|/(2 pi) sqrt(det H*/|det H_s|) c^-(B/(eta h*) + 1 - n/2)``.

    ``hess_min``, ``hess_saddle``: ``(n, n)`` Hessians on the outlier subspace (scalars for
    ``n = 1``). ``h_star`` defaults to the minimum's curvature along the saddle's unstable
    direction ``v_e``, ``v_e^T H* v_e`` (Mori22, Sec. on eq. 20)."""
    c = _barrier(c)
    Hm, Hs, hse, ve = _hessians(hess_min, hess_saddle)
    if h_star is None:
        h_star = float(ve @ Hm @ ve)
    n = Hm.shape[0]
    pref = abs(hse) / (2 * math.pi) * math.sqrt(np.linalg.det(Hm) / abs(np.linalg.det(Hs)))
    return pref * c ** (-escape_exponent(B, eta, h_star, n))


def kappa_tau(c: float, L_star: float, hess_min, hess_saddle, B: float, eta: float,
              h_star: float | None = None) -> float:
    """Kramers-Langer rate in the time ``tau`` of Eq. 15, potential ``U = log L``, temperature
    ``T = eta h*/B``: ``|u_s,e|/(2 pi) sqrt(det U''*/|det U''_s|) exp(-log c / T)``, with
    ``U'' = H/L`` at critical points and ``u_s,e = h_s,e / L_s`` (the derivation of eq. 17)."""
    c = _barrier(c)
    L_star = _pos("L_star", L_star)
    Hm, Hs, hse, ve = _hessians(hess_min, hess_saddle)
    if h_star is None:
        h_star = float(ve @ Hm @ ve)
    T = _pos("eta", eta) * _pos("h_star", h_star) / _pos("B", B)
    L_s = c * L_star
    Um, Us = Hm / L_star, Hs / L_s
    pref = abs(hse / L_s) / (2 * math.pi) * math.sqrt(np.linalg.det(Um) / abs(np.linalg.det(Us)))
    return pref * math.exp(-math.log(c) / T)


def kappa_from_tau(k_tau: float, L_star: float, mean_L: float | None = None) -> float:
    """Rate in ``t`` from the rate in ``tau``: ``kappa = L* kappa_tau`` (the paper's choice), or
    ``<L>_Pss kappa_tau`` when ``mean_L`` is given (the exact conversion)."""
    return (L_star if mean_L is None else mean_L) * k_tau


def kappa_kramers_langer(delta_L: float, D: float, hess_min, hess_saddle) -> float:
    """Kramers-Langer with fixed isotropic noise ``sqrt(2D) dW`` [paper, as used there]:
    ``|h_s,e|/(2 pi) sqrt(det H*/|det H_s|) exp(-dL / D)``."""
    _pos("delta_L", delta_L)
    _pos("D", D)
    Hm, Hs, hse, _ = _hessians(hess_min, hess_saddle)
    pref = abs(hse) / (2 * math.pi) * math.sqrt(np.linalg.det(Hm) / abs(np.linalg.det(Hs)))
    return pref * math.exp(-delta_L / D)


def kappa_arrhenius_frozen(delta_L: float, L_star: float, hess_min, hess_saddle, B: float, eta: float,
                           h_star: float | None = None) -> float:
    """Frozen-noise Arrhenius [derived]: Kramers-Langer with ``D = eta h* L* / B`` (noise frozen
    at its value at the minimum), ``kappa ~ exp(-B dL / (eta h* L*))``."""
    Hm, Hs, _, ve = _hessians(hess_min, hess_saddle)
    if h_star is None:
        h_star = float(ve @ Hm @ ve)
    D = _pos("eta", eta) * _pos("h_star", h_star) * _pos("L_star", L_star) / _pos("B", B)
    return kappa_kramers_langer(delta_L, D, Hm, Hs)


# --------------------------------------------------------------------------- stationary law
def student_t_params(L_star: float, h: float, B: float, eta: float) -> tuple[float, float]:
    """1-D stationary law of Eq. 13 on ``L = L* + h z^2/2`` [derived]: Student-t with
    ``nu = 2 phi - 1`` degrees of freedom and scale ``sqrt(2 L* / (h nu))``. Returns ``(nu, scale)``."""
    nu = 2.0 * phi(B, eta, h) - 1.0
    return nu, math.sqrt(2.0 * _pos("L_star", L_star) / (h * nu))


def fit_phi_student_t(x, loc: float = 0.0, level: float = 0.95) -> dict:
    """Maximum-likelihood Student-t fit with the location fixed at ``theta*`` (fit by
    MLE, not by histogram). ``x``: samples of a 1-D coordinate.

    Returns ``{"phi", "nu", "scale", "phi_lo", "phi_hi", "n"}`` with ``phi = (nu + 1) / 2`` and a
    profile-likelihood interval at ``level`` (``phi_hi = inf`` when the data cannot exclude the
    Gaussian limit ``nu -> inf``, which happens for large ``phi``). The profile is taken in
    ``u = 1/nu`` (finite at the Gaussian limit ``u = 0``) with the scale maximised at each ``u``;
    same point estimate as ``scipy.stats.t.fit(x, floc=loc)``."""
    x2 = (np.asarray(x, dtype=np.float64).ravel() - loc) ** 2
    if x2.size < 10 or not np.all(np.isfinite(x2)):
        raise ConfigError("x", "need at least 10 finite samples")
    n = x2.size
    m2 = float(x2.mean())

    def loglik(u: float, log_s: float) -> float:
        s2 = math.exp(2 * log_s)
        if u < 1e-9:  # Gaussian limit
            return -0.5 * n * math.log(2 * math.pi * s2) - 0.5 * float(x2.sum()) / s2
        nu = 1.0 / u
        return (n * (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi) - log_s)
                - 0.5 * (nu + 1) * float(np.log1p(x2 / (nu * s2)).sum()))

    def profile(u: float) -> tuple[float, float]:
        """max over the scale at fixed u: the score in log s is decreasing, so bracket its root."""
        if u < 1e-9:
            ls = 0.5 * math.log(m2)
            return loglik(0.0, ls), ls

        def score(ls: float) -> float:
            q = x2 * (u / math.exp(2 * ls))
            return -n + (1 + u) / u * float((q / (1 + q)).sum())

        a = 0.5 * math.log(m2)
        b = a - 1.0
        while score(b) < 0:
            b -= 1.0
        while score(a) > 0:
            a += 1.0
        ls = optimize.brentq(score, b, a, xtol=1e-10)
        return loglik(u, ls), ls

    # coarse scan then a bounded refinement of the maximiser in u
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 2.0, 12)])
    prof = np.array([profile(u)[0] for u in grid])
    i = int(np.argmax(prof))
    lo_u, hi_u = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    if hi_u > lo_u:
        r = optimize.minimize_scalar(lambda u: -profile(u)[0], bounds=(lo_u, hi_u), method="bounded",
                                     options={"xatol": 1e-6})
        u_hat, lmax = float(r.x), -float(r.fun)
        if lmax < prof[i]:
            u_hat, lmax = float(grid[i]), float(prof[i])
    else:
        u_hat, lmax = float(grid[i]), float(prof[i])
    cut = lmax - 0.5 * _chi2_ppf(level)
    f = lambda u: profile(u)[0] - cut  # noqa: E731
    # upper end of phi = lower end of u
    if u_hat <= 0 or f(0.0) >= 0:
        u_lo = 0.0
    else:
        u_lo = optimize.brentq(f, 0.0, u_hat, xtol=1e-7)
    u_top = max(2 * u_hat, 1e-3)
    while f(u_top) >= 0 and u_top < 1e3:
        u_top *= 2
    u_hi = optimize.brentq(f, u_hat, u_top, xtol=1e-7) if u_hat < u_top else u_top
    nu_hat = math.inf if u_hat <= 0 else 1.0 / u_hat
    scale = math.exp(profile(u_hat)[1])
    return {"phi": 0.5 * (nu_hat + 1), "nu": nu_hat, "scale": scale,
            "phi_lo": 0.5 * (1.0 / u_hi + 1), "phi_hi": math.inf if u_lo <= 0 else 0.5 * (1.0 / u_lo + 1), "n": int(n)}


def _chi2_ppf(level: float) -> float:
    """Quantile of chi-square with one degree of freedom (likelihood-ratio interval)."""
    return float(special.chdtri(1, 1 - level))


def mean_loss_quadratic(L_star: float, n: int, B: float, eta: float, h: float) -> float:
    """``<L>`` under ``P ~ L^-phi`` on the isotropic quadratic well ``L* + h|z|^2/2`` in ``n``
    dimensions [derived]: ``L* (1 + n / (2 phi - n - 2))``; ``inf`` when ``n >= 2 phi - 2``."""
    p = phi(B, eta, h)
    n = _dim(n)
    if n >= 2 * p - 2:
        return float("inf")
    return _pos("L_star", L_star) * (1.0 + n / (2 * p - n - 2))


def levelset_slope(c, B: float, eta: float, h_star: float, n: int = 1):
    """Large-barrier local slope of the level-set first passage [derived]:
    ``d log t_p / d log c ~ B/(eta h*) + 1 - (n/2) c/(c-1)``."""
    c = np.asarray(c, dtype=np.float64)
    return _ratio(B, eta, h_star) + 1.0 - 0.5 * _dim(n) * c / (c - 1.0)


# --------------------------------------------------------------------------- quadrature
def _outer_inner(x: np.ndarray, log_psi: np.ndarray, log_inv_D: np.ndarray, i0: int) -> float:
    """``int_{x[i0]}^{x[-1]} dy/psi(y) int_{x[0]}^{y} psi/D dz`` with everything in logs."""
    li = log_psi + log_inv_D
    m = np.max(li)
    inner = integrate.cumulative_trapezoid(np.exp(li - m), x, initial=0.0)  # scaled by e^-m
    with np.errstate(divide="ignore", invalid="ignore"):
        outer = np.where(inner > 0, np.exp(m - log_psi + np.log(np.where(inner > 0, inner, 1.0))), 0.0)
    return float(integrate.trapezoid(outer[i0:], x[i0:]))


def mfpt_1d(drift: Callable[[np.ndarray], np.ndarray], diffusion: Callable[[np.ndarray], np.ndarray],
            x0: float, b: float, lower: float, n_grid: int = 200_001) -> float:
    """Exact mean first-passage time of ``dx = a(x) dt + sqrt(2 D(x)) dW`` from ``x0`` to the
    absorbing point ``b > x0``, reflecting at ``lower`` (stands for ``-inf``; choose it where
    ``psi/D`` is negligible) ([derived]):
    ``T(x0) = int_{x0}^{b} dy/psi(y) int_{lower}^{y} psi(z)/D(z) dz``, ``psi = exp int a/D``.

    ``drift``, ``diffusion``: vectorised callables on float64 arrays. Cumulative trapezoid on
    ``n_grid`` points, ``log psi`` throughout."""
    if not lower < x0 < b:
        raise ConfigError("x0", f"need lower < x0 < b (got {lower}, {x0}, {b})")
    x = np.linspace(lower, b, n_grid)
    D = diffusion(x)
    if np.any(D <= 0):
        raise ConfigError("diffusion", "D(x) must be > 0 on the grid")
    log_psi = integrate.cumulative_trapezoid(drift(x) / D, x, initial=0.0)
    i0 = int(np.searchsorted(x, x0))
    x = np.insert(x, i0, x0) if x[i0] != x0 else x
    if len(x) != n_grid:  # x0 inserted: recompute on the refined grid
        D = diffusion(x)
        log_psi = integrate.cumulative_trapezoid(drift(x) / D, x, initial=0.0)
    return _outer_inner(x, log_psi, -np.log(D), i0)


def mfpt_eq13_1d(loss: Callable[[np.ndarray], np.ndarray], x0: float, b: float, lower: float,
                 B: float, eta: float, h_star: float, n_grid: int = 200_001) -> float:
    """Exact MFPT of Eq. 13 in 1-D, ``dx = -L'(x) dt + sqrt(2 eta h* L(x) / B) dW``, from ``x0`` to
    ``b``, reflecting at ``lower``. Uses the closed form ``psi = L^-r``, ``psi/D = r L^-(r+1)``
    with ``r = B/(eta h*)``, so no drift integral is needed."""
    r = _ratio(B, eta, h_star)
    if not lower < x0 < b:
        raise ConfigError("x0", f"need lower < x0 < b (got {lower}, {x0}, {b})")
    x = np.linspace(lower, b, n_grid)
    i0 = int(np.searchsorted(x, x0))
    if x[i0] != x0:
        x = np.insert(x, i0, x0)
    L = loss(x)
    if np.any(L <= 0):
        raise ConfigError("L_star", "Eq. 13 needs L > 0 everywhere (L* > 0)")
    logL = np.log(L)
    return _outer_inner(x, -r * logL, math.log(r) - logL, i0)


def mfpt_levelset(n: int, c: float, B: float, eta: float, h: float = 1.0, L_star: float = 0.5,
                  noise: str = "eq13", sigma2: float | None = None, n_grid: int = 200_001) -> float:
    """Exact mean first-passage time from the minimum to the level set ``L = c L*`` of the
    isotropic quadratic well ``L = L* + h |z|^2 / 2`` in ``n`` dimensions:
    radial process ``dr = (-h r + (n-1) D(r)/r) dt + sqrt(2 D(r)) dW``, reflecting at 0,
    absorbing at ``r_c = sqrt(2 L* (c-1) / h)``, ``psi = r^(n-1) exp int -h r / D``.

    ``noise="eq13"``: ``D = eta h L / B`` (Eq. 13, exact ``psi = r^(n-1) L^-B/(eta h)``).
    ``noise="exact"`` (n = 1 only): the exact covariance of 1-D Gaussian linear regression,
    ``D = eta (sigma2 + 2 z^2) / (2B)`` with ``h = 1``, ``sigma2 = 2 L*`` [derived]."""
    n, c = _dim(n), _barrier(c)
    h, L_star = _pos("h", h), _pos("L_star", L_star)
    r_c = math.sqrt(2 * L_star * (c - 1) / h)
    x = np.linspace(0.0, r_c, n_grid)
    with np.errstate(divide="ignore"):
        log_rn = (n - 1) * np.log(x) if n > 1 else np.zeros_like(x)
    if noise == "eq13":
        r = _ratio(B, eta, h)
        logL = np.log(L_star + 0.5 * h * x * x)
        log_psi = log_rn - r * logL
        log_inv_D = math.log(r) - logL  # 1/D = r / L
    elif noise == "exact":
        if n != 1 or h != 1.0:
            raise ConfigError("noise", "the exact-covariance variant is the 1-D regression with h = 1")
        s2 = 2 * L_star if sigma2 is None else _pos("sigma2", sigma2)
        D = _pos("eta", eta) * (s2 + 2 * x * x) / (2 * _pos("B", B))
        # int_0^r -z / D(z) dz = -(B/eta) int 2z/(s2+2z^2) dz = -(B/(2 eta)) log(1 + 2r^2/s2)
        log_psi = -(B / (2 * eta)) * np.log1p(2 * x * x / s2)
        log_inv_D = -np.log(D)
    else:
        raise ConfigError("noise", f"must be 'eq13' or 'exact' (got {noise!r})")
    return _outer_inner(x, log_psi, log_inv_D, 0)


# --------------------------------------------------------------------------- tail (Hill)
def hill_k(n: int) -> int:
    """The pre-registered number of top order statistics of the Hill estimator: ``k = floor(sqrt(n))``
    [default] (grows with ``n`` while ``k / n -> 0``, the textbook consistency condition)."""
    return max(2, int(math.isqrt(int(n))))


def hill_index(x, k: int | None = None) -> float:
    """Hill estimate of the tail index ``alpha`` of positive samples ``x`` (``P(X > u) ~ u^-alpha``)
    from the ``k`` largest order statistics: ``1 / mean_i log(X_(i) / X_(k+1))``, ``i = 1..k``
    (default ``k``: :func:`hill_k`)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    k = hill_k(n) if k is None else int(k)
    if not 1 <= k < n:
        raise ConfigError("k", f"need 1 <= k < n (got k={k}, n={n})")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ConfigError("x", "need positive finite samples")
    top = np.partition(x, n - k - 1)[n - k - 1:]  # X_(k+1) first, then the k largest in any order
    thr = top[0]
    return float(1.0 / np.mean(np.log(top[1:] / thr)))


def hill_phi(ell, dim: int = 1, n_boot: int = 400, seed: int = 0, level: float = 0.95) -> dict:
    """The stationary exponent ``phi`` read from the tail of the loss excess ``ell = L - L*``
    ``(n_samples, R)`` (``R`` chains): for a density ``P ~ L^-phi`` in ``dim`` dimensions the excess
    has ``P(ell > u) ~ u^-(phi - dim/2)``, so ``phi_tail = alpha_Hill + dim / 2`` (1-D: ``(beta + 1) / 2``
    with ``beta`` the tail index of ``|theta - theta*|``, the Kesten index's scale). ``k`` is
    :func:`hill_k` of the pooled sample. The CI is the percentile bootstrap with chains as the unit
    (samples of one chain are correlated); the asymptotic iid interval ``alpha (1 +- z / sqrt(k))`` is
    reported next to it."""
    e = np.asarray(ell, dtype=np.float64)
    if e.ndim != 2:
        raise ConfigError("ell", f"needs shape (n_samples, R) (got {e.shape})")
    n = e.size
    k = hill_k(n)
    a = hill_index(e, k)
    rng = np.random.default_rng(seed)
    R = e.shape[1]
    boot = np.array([hill_index(e[:, rng.integers(0, R, R)], k) for _ in range(n_boot)])
    q = (1 - level) / 2
    z = float(special.ndtri(1 - q))
    lo, hi = np.quantile(boot, [q, 1 - q])
    return {"phi_tail": a + dim / 2, "alpha": a, "phi_tail_lo": float(lo) + dim / 2, "phi_tail_hi": float(hi) + dim / 2,
            "phi_tail_asym": [a * (1 - z / math.sqrt(k)) + dim / 2, a * (1 + z / math.sqrt(k)) + dim / 2],
            "boot_se_alpha": float(boot.std(ddof=1)), "k": k, "n": n, "chains": R, "k_rule": "floor(sqrt(n))"}


def hill_reference_curve(n: int, k: int | None = None, phis=None, reps: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What the Hill estimator reads from the paper's own law: for each ``phi`` of a grid, the mean of
    :func:`hill_index` ``+ 1/2`` over ``reps`` iid samples of size ``n`` of the 1-D density
    ``P ~ L^-phi`` (exactly a Student-t with ``nu = 2 phi - 1``; ``L - L* ∝ z^2``, Hill is scale-free).
    At ``k = sqrt(n)`` the estimate is far below ``phi`` (the t law's tail is reached slowly: at
    ``n = 1e4``, ``phi = 4.4`` reads 3.2 and the Gaussian limit reads about 4.6), so a raw Hill
    number cannot be compared with ``phi``. Common random numbers over the grid (one set of
    uniforms), so the curve is smooth; returns ``(phis, mean_phi_tail)``, the latter made
    non-decreasing."""
    from scipy import special as sp

    phis = np.geomspace(0.75, 200.0, 48) if phis is None else np.asarray(phis, dtype=np.float64)
    k = hill_k(n) if k is None else int(k)
    rng = np.random.default_rng(seed)
    u1 = rng.random((reps, n))
    u2 = rng.random((reps, n))
    g = sp.ndtri(u1) ** 2  # Z^2
    out = np.empty(phis.size)
    for i, ph in enumerate(phis):
        nu = 2 * ph - 1
        chi = 2 * sp.gammaincinv(nu / 2, u2)  # chi^2_nu by inversion of the same uniforms
        t2 = g * nu / np.maximum(chi, np.finfo(float).tiny)
        out[i] = np.mean([hill_index(np.maximum(t2[r], np.finfo(float).tiny), k) for r in range(reps)]) + 0.5
    return phis, np.maximum.accumulate(out)


def hill_phi_debiased(values, n: int, k: int | None = None, reps: int = 8, seed: int = 0,
                      curve: tuple[np.ndarray, np.ndarray] | None = None) -> list[float]:
    """Invert :func:`hill_reference_curve` (or a precomputed ``curve``): for each raw ``phi_tail`` in
    ``values`` (a point estimate or a CI end), the ``phi`` of the law ``P ~ L^-phi`` whose Hill
    estimate at the same ``n`` and ``k`` has that mean (indirect inference). ``inf`` at or above the
    Gaussian limit of the grid, the grid's low end below it."""
    phis, cur = hill_reference_curve(n, k, reps=reps, seed=seed) if curve is None else curve
    out = []
    for v in values:
        if not math.isfinite(v) or v >= cur[-1]:
            out.append(math.inf)
        elif v <= cur[0]:
            out.append(float(phis[0]))
        else:
            out.append(float(np.exp(np.interp(v, cur, np.log(phis)))))
    return out
