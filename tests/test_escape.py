"""Theory of the escape-rate study: formula identities and limits (spec T1), the exact quadrature
against closed forms and against the spec's Section 12 reference numbers (T2, Tables 1-3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from nnphys import escape as E
from nnphys.errors import ConfigError
from nnphys.escape.landscapes import DoubleWell, LabelNoiseWell, QuadraticWell, family_a, family_b

HM = np.diag([1.3, 0.7, 2.0])
HS = np.diag([-0.4, 0.7, 2.0])


# ------------------------------------------------------------------ T1 identities (rel. 1e-12)
@pytest.mark.parametrize("c,r,h,hs", [(1.5, 3.0, 1.0, -0.5), (4.0, 10.0, 2.5, -0.1), (30.0, 0.7, 0.3, -4.0)])
def test_eq17_at_n1_is_eq16(c, r, h, hs):
    k16 = E.kappa_1d(c, h, hs, B=r * h, eta=1.0)
    k17 = E.kappa_nd(c, [[h]], [[hs]], B=r * h, eta=1.0)
    assert k17 == pytest.approx(k16, rel=1e-12)


def test_rate_depends_on_c_only_scale_invariance():
    # (L*, L_s) -> lambda (L*, L_s): kappa = L* kappa_tau is unchanged (Mori22 eq. 17 depends on c)
    ref = E.kappa_from_tau(E.kappa_tau(3.0, 0.8, HM, HS, 7.0, 1.0, 1.3), 0.8)
    for lam in (1e-3, 0.5, 37.0, 1e4):
        k = E.kappa_from_tau(E.kappa_tau(3.0, 0.8 * lam, HM, HS, 7.0, 1.0, 1.3), 0.8 * lam)
        assert k == pytest.approx(ref, rel=1e-12)


def test_kappa_tau_with_determinants_gives_eq17():
    for c in (1.2, 3.0, 50.0):
        for Ls in (0.01, 1.0, 7.0):
            k = E.kappa_from_tau(E.kappa_tau(c, Ls, HM, HS, 7.0, 1.0, 1.3), Ls)
            assert k == pytest.approx(E.kappa_nd(c, HM, HS, 7.0, 1.0, 1.3), rel=1e-12)


def test_family_b_closed_form():
    # spec Sec. 9 B: kappa = h*/(2 sqrt2 pi) c^-(r + 1 - n/2)
    for n in (1, 2, 5):
        Bw = family_b(n, 1.0, 3.0, h_star=2.0)
        k = E.kappa_nd(3.0, Bw.hess_min, Bw.hess_saddle, B=8.0, eta=1.0)
        assert k == pytest.approx(2.0 / (2 * math.sqrt(2) * math.pi) * 3.0 ** -(4.0 + 1 - n / 2), rel=1e-12)


def test_default_h_star_is_curvature_along_escape_direction():
    # rotated Hessians: h* = v_e^T H* v_e with v_e the saddle's unstable eigenvector
    th = 0.3
    Rm = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    Hm, Hs = Rm @ np.diag([1.5, 0.5]) @ Rm.T, Rm @ np.diag([-0.2, 0.5]) @ Rm.T
    assert E.kappa_nd(2.0, Hm, Hs, 3.0, 1.0) == pytest.approx(E.kappa_nd(2.0, Hm, Hs, 3.0, 1.0, h_star=1.5), rel=1e-12)


def test_kramers_langer_with_frozen_temperature_is_frozen_arrhenius():
    D = 0.1 * 1.3 * 0.8 / 2.0
    a = E.kappa_kramers_langer(0.37, D, HM, HS)
    b = E.kappa_arrhenius_frozen(0.37, 0.8, HM, HS, B=2.0, eta=0.1, h_star=1.3)
    assert a == pytest.approx(b, rel=1e-12)


def test_comparators_share_leading_exponent_as_c_to_1():
    # d log kappa / d dL at dL -> 0: eq. 17 gives -(r + 1 - n/2)/L*, frozen Arrhenius -r/L*;
    # the coefficient of r = B/(eta h*) (the leading term) agrees: compare differences in r
    Ls, eps = 0.8, 1e-6

    def slope17(r):
        return (math.log(E.kappa_nd(1 + 2 * eps, HM, HS, r * 1.3, 1.0)) - math.log(E.kappa_nd(1 + eps, HM, HS, r * 1.3, 1.0))) / (eps * Ls)

    def slope_arr(r):
        f = lambda d: math.log(E.kappa_arrhenius_frozen(d, Ls, HM, HS, r * 1.3, 1.0))  # noqa: E731
        return (f(2 * eps * Ls) - f(eps * Ls)) / (eps * Ls)

    d17 = slope17(9.0) - slope17(4.0)
    darr = slope_arr(9.0) - slope_arr(4.0)
    assert darr == pytest.approx(-5.0 / Ls, rel=1e-9)
    assert d17 == pytest.approx(darr, rel=1e-5)  # finite-difference error O(eps)


def test_exponents_and_critical_dimension():
    r = 3.0
    assert E.phi(r, 1.0, 1.0) == 4.0
    assert E.n_critical(r, 1.0, 1.0) == 8.0
    assert E.escape_exponent(r, 1.0, 1.0, 1) == pytest.approx(0.5 + r)
    assert E.escape_exponent(r, 1.0, 1.0, 8) == 0.0  # sign change at n_c
    assert E.escape_exponent(r, 1.0, 1.0, 9) < 0
    assert E.phi(2.0, 0.5, 1.0) == E.phi(4.0, 1.0, 1.0)  # only eta/B matters
    assert E.phi_discrete(1, 0.1, 1.0) == pytest.approx(10.0)


def test_student_t_form_of_stationary_law():
    # P ~ L^-phi with L = L* + h z^2/2 is Student-t(nu = 2 phi - 1, scale sqrt(2L*/(h nu)))
    Ls, h, B, eta = 0.3, 1.7, 2.0, 0.5
    nu, sc = E.student_t_params(Ls, h, B, eta)
    p = E.phi(B, eta, h)
    z = np.linspace(-5, 5, 11)
    ratio = stats.t.pdf(z, nu, scale=sc) / (Ls + h * z * z / 2) ** -p
    assert np.ptp(ratio) / ratio.mean() < 1e-10


def test_mean_loss_quadratic_against_integral():
    for n, r in ((1, 2.0), (3, 4.0)):
        p = E.phi(r, 1.0, 1.0)
        w = lambda x: x ** (n - 1) * (0.5 + x * x / 2) ** -p  # noqa: E731
        num = integrate.quad(lambda x: (0.5 + x * x / 2) * w(x), 0, np.inf)[0]
        den = integrate.quad(w, 0, np.inf)[0]
        assert E.mean_loss_quadratic(0.5, n, r, 1.0, 1.0) == pytest.approx(num / den, rel=1e-7)
    assert E.mean_loss_quadratic(0.5, 4, 1.0, 1.0, 1.0) == float("inf")


def test_kesten_index_solves_its_equation():
    B, eta, h = 2, 0.3, 1.0
    phik = E.kesten_index(B, eta, h)
    beta = 2 * phik - 1
    x = np.random.default_rng(0).chisquare(B, 2_000_000)
    m = np.abs(1 - eta * h * x / B) ** beta
    se = m.std() / math.sqrt(m.size)
    assert abs(m.mean() - 1) < 4 * se  # Monte Carlo check of E|1 - eta h chi2_B / B|^beta = 1
    # companion paper: discrete-time index lies below the continuous-time phi
    assert E.kesten_index(1, 0.1, 1.0) < E.phi(1, 0.1, 1.0)


def test_fit_phi_matches_scipy():
    x = stats.t.rvs(7.0, scale=0.4, size=5000, random_state=1)
    nu, _, sc = stats.t.fit(x, floc=0.0)
    f = E.fit_phi_student_t(x)
    assert f["nu"] == pytest.approx(nu, rel=1e-3) and f["scale"] == pytest.approx(sc, rel=1e-3)
    assert f["phi"] == pytest.approx((f["nu"] + 1) / 2)
    assert f["phi_lo"] < f["phi"] < f["phi_hi"] < math.inf
    # Gaussian data: the profile interval cannot exclude nu -> inf
    g = E.fit_phi_student_t(np.random.default_rng(3).standard_normal(2000))
    assert g["phi_hi"] == math.inf and g["phi_lo"] > 3


# ------------------------------------------------------------------ quadrature
def test_mfpt_1d_brownian_closed_form():
    # zero drift, constant D, reflecting at 0, absorbing at b: T(x0) = (b^2 - x0^2) / (2D)
    D, b, x0 = 0.7, 2.0, 0.5
    T = E.mfpt_1d(lambda x: 0 * x, lambda x: D + 0 * x, x0, b, lower=0.0)
    assert T == pytest.approx((b * b - x0 * x0) / (2 * D), rel=1e-8)


def test_mfpt_1d_ou_against_closed_form_eq13():
    # the generic quadrature (drift integrated numerically) vs Eq. 13's closed-form psi
    A = family_a(1.0, 3.0)
    r = 4.0
    T1 = E.mfpt_eq13_1d(A.loss_np, -A.w, A.w, -6 * A.w, B=r, eta=1.0, h_star=1.0)
    dLdx = lambda x: A.delta_L * 4 * (x / A.w) * ((x / A.w) ** 2 - 1) / A.w  # noqa: E731
    T2 = E.mfpt_1d(lambda x: -dLdx(x), lambda x: A.loss_np(x) / r, -A.w, A.w, lower=-6 * A.w)
    assert T2 == pytest.approx(T1, rel=1e-6)


def test_mfpt_grid_convergence():
    A = family_a(1.0, 4.0)
    f = lambda n: E.mfpt_eq13_1d(A.loss_np, -A.w, A.w, -6 * A.w, B=10.0, eta=1.0, h_star=1.0, n_grid=n)  # noqa: E731
    assert f(200_001) == pytest.approx(f(400_001), rel=1e-7)
    assert f(200_001) == pytest.approx(E.mfpt_eq13_1d(A.loss_np, -A.w, A.w, -9 * A.w, B=10.0, eta=1.0, h_star=1.0,
                                                      n_grid=300_001), rel=1e-7)  # lower cut-off irrelevant


TABLE1 = {(5, 2): 1.049, (5, 4): 0.971, (5, 8): 0.952, (10, 2): 1.016, (10, 4): 0.983, (10, 8): 0.975,
          (20, 2): 1.005, (20, 4): 0.991, (20, 8): 0.987}


@pytest.mark.parametrize("r,c", sorted(TABLE1))
def test_table1_and_scale_symmetry(r, c):
    """Spec Sec. 12 Table 1 (+-0.002) and T2 (within 5%); MFPTs identical for dL in {0.1, 1, 10}."""
    Ts = []
    for dL in (0.1, 1.0, 10.0):
        A = family_a(dL, c)
        Ts.append(E.mfpt_eq13_1d(A.loss_np, -A.w, A.w, -6 * A.w, B=r, eta=1.0, h_star=1.0))
    assert np.ptp(Ts) / Ts[1] < 1e-10
    ratio = Ts[1] * E.kappa_1d(c, 1.0, -0.5, r, 1.0)
    assert abs(ratio - TABLE1[(r, c)]) <= 0.002
    assert abs(ratio - 1) <= 0.05


def test_table2_levelset_local_slopes():
    cs = [1.5, 2, 3, 5, 10, 20, 50]
    ref = {1: [9.66, 10.06, 10.29, 10.40, 10.46, 10.48], 5: [5.38, 6.31, 7.38, 8.00, 8.27, 8.40],
           10: [3.32, 3.19, 3.88, 4.88, 5.51, 5.79]}
    for n, want in ref.items():
        T = [E.mfpt_levelset(n, c, 10.0, 1.0, n_grid=100_001) for c in cs]
        got = np.diff(np.log(T)) / np.diff(np.log(cs))
        np.testing.assert_allclose(got, want, atol=0.02)
        # large-barrier slope formula of Sec. 6 approaches the asymptote 11 - n/2
        assert E.levelset_slope(1e6, 10.0, 1.0, 1.0, n) == pytest.approx(11 - n / 2, abs=1e-4)


def test_table3_quadrature_columns():
    # h* = 1, L* = 0.5, sigma2 = 1, B = 1, eta = 0.1 (spec Sec. 12 Table 3, deterministic columns)
    # printed values: agreement to half a unit of the last printed digit
    rows = ((1.2, 4.1, 3.8, 0.05), (1.5, 35.6, 24.3, 0.05), (1.75, 156, 75, 0.5), (2.0, 574, 192, 0.5))
    for c, q13, qex, tol in rows:
        assert abs(E.mfpt_levelset(1, c, 1.0, 0.1) - q13) <= tol
        assert abs(E.mfpt_levelset(1, c, 1.0, 0.1, noise="exact") - qex) <= tol


def test_radial_n1_equals_two_sided_1d():
    # reflecting at r = 0 for |z| == the symmetric two-sided problem: compare with mfpt_1d on [0, r_c]
    c, r = 2.0, 3.0
    rc = math.sqrt(2 * 0.5 * (c - 1))
    T = E.mfpt_1d(lambda x: -x, lambda x: (0.5 + x * x / 2) / r, 1e-9, rc, lower=0.0)
    assert E.mfpt_levelset(1, c, r, 1.0) == pytest.approx(T, rel=1e-6)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call", [
    lambda: E.kappa_1d(2.0, 1.0, -0.5, B=1.0, eta=0.0),
    lambda: E.kappa_1d(2.0, 1.0, -0.5, B=1.0, eta=-1.0),
    lambda: E.kappa_1d(1.0, 1.0, -0.5, B=1.0, eta=0.1),
    lambda: E.kappa_1d(0.5, 1.0, -0.5, B=1.0, eta=0.1),
    lambda: E.kappa_1d(2.0, 1.0, 0.5, B=1.0, eta=0.1),  # no barrier: saddle curvature > 0
    lambda: E.kappa_nd(2.0, np.eye(2), np.eye(2), 1.0, 0.1),  # no negative mode
    lambda: E.escape_exponent(1.0, 0.1, 1.0, n=0),
    lambda: E.mfpt_levelset(0, 2.0, 1.0, 0.1),
    lambda: E.mfpt_levelset(1, 1.0, 1.0, 0.1),
    lambda: DoubleWell(delta_L=0.0, c=2.0),  # no barrier
    lambda: DoubleWell(delta_L=1.0, c=1.0),
    lambda: DoubleWell(delta_L=1.0, c=2.0, n=0),
    lambda: QuadraticWell.isotropic(0),
    lambda: QuadraticWell(L_star=0.0, h=(1.0,)),
    lambda: LabelNoiseWell.sample(100, a=1.0, b=0.2),  # b <= a/2: no metastable well
])
def test_bad_input_raises_config_error(call):
    with pytest.raises(ConfigError):
        call()


def test_linear_regression_is_exact_and_thread_count_independent():
    """theta*, A and L* against a float64 lstsq oracle, and bit-identical for 1 and 2 torch threads
    (a threaded BLAS reduction over N moved L* and with it Table 3's S2 times)."""
    import torch

    from nnphys.escape.landscapes import LinearRegression

    n0 = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = LinearRegression.sample(40_000, 3, seed=11)
        torch.set_num_threads(2)
        b = LinearRegression.sample(40_000, 3, seed=11)
    finally:
        torch.set_num_threads(n0)
    assert a.L_star == b.L_star and torch.equal(a.theta_star, b.theta_star) and torch.equal(a.A, b.A)
    X, y = a.X.numpy(), a.y.numpy()
    th, *_ = np.linalg.lstsq(X, y, rcond=None)
    assert np.allclose(a.theta_star.numpy(), th, rtol=0, atol=1e-12)
    r = X @ th - y
    assert a.L_star == pytest.approx(r @ r / (2 * len(y)), rel=1e-12)
    assert np.allclose(a.A.numpy(), X.T @ X / len(y), rtol=1e-12, atol=0)
