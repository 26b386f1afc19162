"""Landscape families of the escape-rate study (``docs/studies/escape-rate.md``).

Each family sets the log barrier ``log c`` and the linear barrier ``dL`` independently at fixed
Hessians:

- :class:`DoubleWell` -- families A (``n = 1``) and B (``n >= 1``):
  ``L = L0 + dL G(z / w)``, ``G(u) = (u_1^2 - 1)^2 + sum_{i>=2} a_i u_i^2``, ``w = sqrt(8 dL / h*)``,
  ``L0 = dL / (c - 1)``; optional frozen bulk coordinates with zero curvature;
- :class:`QuadraticWell` -- ``L = L* + (1/2) z^T diag(h) z``, escape = first passage to the
  level set ``L >= c L*`` (the paper's proxy, Fig. 3b);
- :class:`LinearRegression` -- family C, a finite Gaussian data set with MSE loss; genuine SGD
  (simulator S5) and its population (``N -> inf``) exact noise covariance;
- :class:`LabelNoiseWell` -- family D [default, proposed]: ``f = x theta + z q(theta)``,
  ``q = theta^2 - 1 + gamma theta``, ``y = eps``.

Functions act on torch tensors of shape ``(R, P)`` (``R`` chains, ``P`` coordinates) and keep
dtype and device.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from nnphys.errors import ConfigError

__all__ = ["DoubleWell", "QuadraticWell", "LinearRegression", "LabelNoiseWell", "family_a", "family_b", "mfpt_family_a"]


@dataclasses.dataclass(frozen=True)
class DoubleWell:
    """Families A and B of the study guide. Coordinates ``z in R^P``, ``P = n + n_bulk``; the first
    ``n`` are the outlier subspace, the rest a zero-curvature bulk (frozen under Eq. 13).

    ``h_perp``: curvatures of ``z_2..z_n`` at the minimum (default ``h*``: ``H* = h* I_n``, the
    paper's isotropic case, eq. 20 exact); the saddle has ``diag(-h*/2, h_perp)``.
    Minimum ``z* = (-w, 0, ...)``, saddle at 0, the other minimum at ``(+w, 0, ...)``."""

    delta_L: float
    c: float
    h_star: float = 1.0
    n: int = 1
    h_perp: tuple[float, ...] | None = None
    n_bulk: int = 0

    def __post_init__(self) -> None:
        if not (self.delta_L > 0 and math.isfinite(self.delta_L)):
            raise ConfigError("delta_L", f"a barrier needs delta_L > 0 (got {self.delta_L})")
        if not (self.c > 1 and math.isfinite(self.c)):
            raise ConfigError("c", f"a barrier needs c = L_s / L* > 1 (got {self.c})")
        if not self.h_star > 0:
            raise ConfigError("h_star", f"must be > 0 (got {self.h_star})")
        if int(self.n) != self.n or self.n < 1:
            raise ConfigError("n", f"must be an integer >= 1 (got {self.n})")
        if self.n_bulk < 0:
            raise ConfigError("n_bulk", f"must be >= 0 (got {self.n_bulk})")
        if self.h_perp is not None and (len(self.h_perp) != self.n - 1 or min(self.h_perp, default=1) <= 0):
            raise ConfigError("h_perp", f"needs n - 1 = {self.n - 1} positive curvatures (got {self.h_perp})")

    # geometry ------------------------------------------------------------------
    @property
    def P(self) -> int:
        return self.n + self.n_bulk

    @property
    def w(self) -> float:
        return math.sqrt(8.0 * self.delta_L / self.h_star)

    @property
    def L_star(self) -> float:
        return self.delta_L / (self.c - 1.0)

    @property
    def L_saddle(self) -> float:
        return self.L_star + self.delta_L

    @property
    def curvatures(self) -> np.ndarray:
        """``(n,)`` Hessian eigenvalues at the minimum on the outlier subspace."""
        hp = self.h_perp if self.h_perp is not None else (self.h_star,) * (self.n - 1)
        return np.array((self.h_star, *hp), dtype=np.float64)

    @property
    def hess_min(self) -> np.ndarray:
        return np.diag(self.curvatures)

    @property
    def hess_saddle(self) -> np.ndarray:
        h = self.curvatures.copy()
        h[0] = -self.h_star / 2
        return np.diag(h)

    @property
    def hess_diag_full(self) -> np.ndarray:
        """``(P,)`` diagonal of ``H(theta*)`` including the zero bulk (the noise shape of Eq. 13)."""
        return np.concatenate([self.curvatures, np.zeros(self.n_bulk)])

    def start(self, R: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
        z = torch.zeros(R, self.P, dtype=dtype, device=device)
        z[:, 0] = -self.w
        return z

    # loss ----------------------------------------------------------------------
    def _a(self, ref: torch.Tensor) -> torch.Tensor:
        # G's transverse coefficients so that the curvature of z_i at the minimum is h_i
        return torch.as_tensor(4.0 * self.curvatures[1:] / self.h_star, dtype=ref.dtype, device=ref.device)

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        """``(R, P) -> (R,)``."""
        u = z[:, : self.n] / self.w
        G = (u[:, 0] ** 2 - 1) ** 2
        if self.n > 1:
            G = G + (self._a(z) * u[:, 1:] ** 2).sum(1)
        return self.L_star + self.delta_L * G

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        """``(R, P) -> (R, P)``; zero on the bulk."""
        g = torch.zeros_like(z)
        u = z[:, : self.n] / self.w
        g[:, 0] = self.delta_L * 4 * u[:, 0] * (u[:, 0] ** 2 - 1) / self.w
        if self.n > 1:
            g[:, 1 : self.n] = self.delta_L * 2 * self._a(z) * u[:, 1:] / self.w
        return g

    def loss_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L (R,), grad L (R, P))`` sharing intermediates (the simulators' hot path)."""
        w, dL = self.w, self.delta_L
        u = z[:, : self.n] * (1.0 / w)
        u0 = u[:, 0]
        s = u0 * u0 - 1
        L = torch.addcmul(torch.full_like(s, self.L_star), s, s, value=dL)
        g = torch.zeros_like(z)
        g[:, 0] = (4 * dL / w) * u0 * s
        if self.n > 1:
            au = self._a(z) * u[:, 1:]
            L = L + dL * (au * u[:, 1:]).sum(1)
            g[:, 1 : self.n] = (2 * dL / w) * au
        return L, g

    def loss_np(self, x: np.ndarray) -> np.ndarray:
        """1-D cut along ``z_1`` (float64 numpy), for the quadrature."""
        return self.L_star + self.delta_L * ((x / self.w) ** 2 - 1) ** 2

    def event_coordinate(self, event: str) -> tuple[float, str]:
        """``(b, kind)``: escape when ``z_1 >= b``. ``event``: ``"other"`` (the other minimum,
        ``~1/kappa``), ``"saddle"`` (``~1/(2 kappa)``)."""
        if event == "other":
            return self.w, "z1"
        if event == "saddle":
            return 0.0, "z1"
        raise ConfigError("event", f"must be 'other' or 'saddle' for a double well (got {event!r})")


def family_a(delta_L: float, c: float, h_star: float = 1.0) -> DoubleWell:
    """Family A: the 1-D double well ``L0 + dL (u^2 - 1)^2`` (``H* = h*``, ``H_s = -h*/2``)."""
    return DoubleWell(delta_L=delta_L, c=c, h_star=h_star, n=1)


def family_b(n: int, delta_L: float, c: float, h_star: float = 1.0, h_perp=None, n_bulk: int = 0) -> DoubleWell:
    """Family B: ``n``-dim double well; eq. 17 predicts
    ``kappa = h*/(2 sqrt2 pi) c^-(B/(eta h*) + 1 - n/2)`` in the isotropic case."""
    return DoubleWell(delta_L=delta_L, c=c, h_star=h_star, n=n,
                      h_perp=None if h_perp is None else tuple(h_perp), n_bulk=n_bulk)


@dataclasses.dataclass(frozen=True)
class QuadraticWell:
    """``L = L* + (1/2) sum_i h_i z_i^2`` with level-set escape ``L >= c L*`` (the paper's level-set escape).
    ``h``: ``(P,)`` curvatures (zeros allowed: frozen bulk)."""

    L_star: float
    h: tuple[float, ...]
    c: float = 2.0

    def __post_init__(self) -> None:
        if not self.L_star > 0:
            raise ConfigError("L_star", f"Eq. 13 needs L* > 0 (got {self.L_star})")
        if not (self.c > 1 and math.isfinite(self.c)):
            raise ConfigError("c", f"a level set above the minimum needs c > 1 (got {self.c})")
        if len(self.h) < 1 or min(self.h) < 0 or max(self.h) <= 0:
            raise ConfigError("h", f"curvatures must be >= 0 with one > 0 (got {self.h})")

    @classmethod
    def isotropic(cls, n: int, L_star: float = 0.5, h: float = 1.0, c: float = 2.0) -> "QuadraticWell":
        if int(n) != n or n < 1:
            raise ConfigError("n", f"must be an integer >= 1 (got {n})")
        return cls(L_star=L_star, h=(h,) * int(n), c=c)

    @property
    def P(self) -> int:
        return len(self.h)

    @property
    def hess_diag_full(self) -> np.ndarray:
        return np.asarray(self.h, dtype=np.float64)

    @property
    def h_star(self) -> float:
        return float(max(self.h))

    def start(self, R: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
        return torch.zeros(R, self.P, dtype=dtype, device=device)

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        hv = torch.as_tensor(self.h, dtype=z.dtype, device=z.device)
        return self.L_star + 0.5 * (hv * z * z).sum(1)

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.h, dtype=z.dtype, device=z.device) * z

    def loss_grad(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.as_tensor(self.h, dtype=z.dtype, device=z.device) * z
        return self.L_star + 0.5 * (g * z).sum(1), g


@dataclasses.dataclass(frozen=True)
class LinearRegression:
    """Family C: ``f = theta . x``, ``L = (1/2N) |X theta - y|^2`` with ``x ~ N(0, I_d)``,
    ``y ~ N(0, sigma2)`` independent of ``x`` (the paper's Fig. 3 model). ``theta*`` is the
    least-squares solution, ``L(theta) = L* + (1/2) z^T A z`` exactly with ``A = X^T X / N``.
    ``scale`` multiplies ``y`` (the exact symmetry ``y -> sqrt(lambda) y``)."""

    X: torch.Tensor  # (N, d) float64
    y: torch.Tensor  # (N,)
    theta_star: torch.Tensor  # (d,)
    A: torch.Tensor  # (d, d)
    L_star: float

    @classmethod
    def sample(cls, N: int, d: int, sigma2: float = 1.0, seed: int = 0, scale: float = 1.0,
               device="cpu") -> "LinearRegression":
        if N < d + 1:
            raise ConfigError("N", f"needs N > d (got N={N}, d={d})")
        g = torch.Generator().manual_seed(int(seed))
        X = torch.randn(N, d, generator=g, dtype=torch.float64)
        y = math.sqrt(sigma2) * torch.randn(N, generator=g, dtype=torch.float64) * math.sqrt(scale)
        return cls.from_data(X.to(device), y.to(device))

    @classmethod
    def from_data(cls, X: torch.Tensor, y: torch.Tensor) -> "LinearRegression":
        """``A``, ``theta*`` and ``L*`` by numpy's pairwise sums over the N samples (float64, one
        fixed order): a BLAS reduction splits N across threads and changed ``L*`` in its last
        bits with the thread count (Table 3's S2 times moved with it)."""
        N = X.shape[0]
        Xn, yn = X.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()
        A = (Xn[:, :, None] * Xn[:, None, :]).sum(0) / N
        theta = np.linalg.solve(A, (Xn * yn[:, None]).sum(0) / N)
        r = (Xn * theta).sum(1) - yn
        t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=X.device)  # noqa: E731
        return cls(X=X, y=y, theta_star=t(theta), A=t(A), L_star=float((r * r).sum() / (2 * N)))

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def curvatures(self) -> np.ndarray:
        return torch.linalg.eigvalsh(self.A).cpu().numpy()

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """``(R, d) -> (R,)`` via the exact quadratic form (no pass over the data)."""
        z = theta - self.theta_star
        return self.L_star + 0.5 * ((z @ self.A) * z).sum(1)

    def residual_and_jac(self, theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample residuals ``(R, B)`` and Jacobians ``(R, B, d)`` of the minibatch ``idx``."""
        Xb = self.X[idx]
        return (Xb * theta[:, None, :]).sum(-1) - self.y[idx], Xb


@dataclasses.dataclass(frozen=True)
class LabelNoiseWell:
    """Family D [default, proposed]: ``f(theta; (x, z)) = x theta + z q(theta)``,
    ``q = theta^2 - 1 + gamma theta``, ``y = eps``; ``x, z, eps`` Gaussian with variances
    ``a, b, sigma2``. Population loss ``L = (1/2)[sigma2 + a theta^2 + b q^2]``; metastable if
    ``b > a/2`` and ``gamma != 0``. Raising ``sigma2`` moves ``L*`` and ``L_s`` together (``c``
    varies at fixed ``dL`` and Hessians). Here ``H* != `` Gauss-Newton (a caveat of this family)."""

    X: torch.Tensor  # (N, 2): columns x, z
    y: torch.Tensor  # (N,)
    gamma: float

    @classmethod
    def sample(cls, N: int, a: float = 1.0, b: float = 2.0, sigma2: float = 1.0, gamma: float = 0.3,
               seed: int = 0, device="cpu") -> "LabelNoiseWell":
        if not (b > a / 2 and gamma != 0):
            raise ConfigError("b", f"family D has a barrier only for b > a/2 and gamma != 0 (got a={a}, b={b}, gamma={gamma})")
        g = torch.Generator().manual_seed(int(seed))
        X = torch.randn(N, 2, generator=g, dtype=torch.float64) * torch.tensor([math.sqrt(a), math.sqrt(b)], dtype=torch.float64)
        y = math.sqrt(sigma2) * torch.randn(N, generator=g, dtype=torch.float64)
        return cls(X=X.to(device), y=y.to(device), gamma=float(gamma))

    def q(self, th: torch.Tensor) -> torch.Tensor:
        return th * th - 1 + self.gamma * th

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        """``(R, 1) -> (R,)``; exact empirical loss (one pass over the data)."""
        th = theta[:, :1]
        f = th * self.X[None, :, 0] + self.q(th) * self.X[None, :, 1]
        return 0.5 * ((f - self.y) ** 2).mean(1)

    def residual_and_jac(self, theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        th = theta[:, :1]
        xb, zb = self.X[idx, 0], self.X[idx, 1]
        r = th * xb + self.q(th) * zb - self.y[idx]
        return r, (xb + (2 * th + self.gamma) * zb)[..., None]

    def critical_points(self, lo: float = -4.0, hi: float = 4.0, n_grid: int = 20001) -> dict[str, float]:
        """Minima and saddle of the empirical 1-D loss (grid + sign changes of L')."""
        th = torch.linspace(lo, hi, n_grid, dtype=torch.float64)[:, None]
        L = self.loss(th).numpy()
        dL = np.gradient(L, th[:, 0].numpy())
        idx = np.where(np.sign(dL[:-1]) != np.sign(dL[1:]))[0]
        pts = th[idx, 0].numpy()
        kinds = ["min" if dL[i] < 0 else "max" for i in idx]
        if kinds.count("min") < 2:
            raise ConfigError("gamma", "this data set has no metastable minimum (no barrier)")
        return {"points": pts.tolist(), "kinds": kinds, "loss": L[idx].tolist()}


def mfpt_family_a(delta_L: float, c: float, ratio: float) -> float:
    """Exact mean first-passage time of Eq. 13 on family A (``h* = 1``, ``eta = 1``,
    ``B = ratio = B/(eta h*)``) from the minimum over the saddle, by the 1-D quadrature
    :func:`nnphys.escape.theory.mfpt_eq13_1d` (reflecting wall at ``-6 w``)."""
    from nnphys.escape.theory import mfpt_eq13_1d

    A = family_a(delta_L, c)
    return mfpt_eq13_1d(A.loss_np, -A.w, A.w, -6 * A.w, B=ratio, eta=1.0, h_star=1.0)
