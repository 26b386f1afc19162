"""Top eigenpairs by thick-restart Lanczos with full reorthogonalisation, and the spectral
density by stochastic Lanczos quadrature (SLQ).

Thick restart (Wu & Simon 2000; the symmetric Krylov-Schur method): the basis ``V (P, m)`` is
kept orthonormal by two passes of classical Gram-Schmidt against every column (full
reorthogonalisation, "twice is enough"), the projected matrix ``T = Vᵀ H V`` is stored densely,
and ``H V = V T + f e_mᵀ`` holds throughout. A Ritz pair ``(θ_i, V s_i)`` then has residual
``||H V s_i - θ_i V s_i|| = ||f|| |s_{m,i}|``. When the basis reaches ``max_basis`` columns it is
compressed to the ``k + ⌈(max_basis - k)/2⌉`` wanted Ritz vectors and the Krylov process continues
from ``f / ||f||``. Memory ``O(max_basis · P)`` (twice that with the stored products below),
``max_basis = max(2k + 20, 40)`` by default (capped at ``P``).

Convergence [default]: every wanted Ritz pair has residual ``r_i <= tol · max(|θ_i|, 10⁻³ max_j |θ_j|)``
(relative to its own eigenvalue, as ARPACK and hessian-eigenthings, with a floor at 10⁻³ of the
operator's scale so that bulk eigenvalues near 0 can converge). The returned residuals are
recomputed explicitly, ``r_i = ||H u_i - θ_i u_i||``, from the products already made: the raw
products ``W = H V`` are kept beside the basis (and compressed with it at a restart), so
``H u_i = W s_i`` without a new product (``verify="fresh"`` spends k new products instead, as
before 2026-12-07), and ``bound_i = min(r_i, r_i² / gap_i)`` bounds ``|θ_i - λ_i|`` for the
eigenvalue ``λ_i`` nearest ``θ_i`` (Weyl / Kato-Temple; ``gap_i`` the distance from ``θ_i`` to the
nearest other Ritz value, an estimate of the true gap).

Breakdown (``β ≈ 0``, ``V`` an invariant subspace): the run continues from a fresh random
direction orthogonal to ``V``; if the latest sequence (since the previous breakdown) holds a
wanted Ritz vector, it does not stop there even when every residual is 0, because one Krylov
sequence shows one copy of a repeated eigenvalue and the complement may hold more.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from nnphys.curvature.inputs import Result, fmt_values, no_extra, renamed
from nnphys.curvature.operator import CurvatureOperator, check_k, check_pos, operator
from nnphys.errors import ConfigError

_WHICH = ("LA", "LM", "SA")


@dataclasses.dataclass(frozen=True, repr=False)
class HessianTop(Result):
    """Top-``k`` eigenpairs of the curvature operator (float64, CPU).

    Attributes:
        eigenvalues: ``(k,)`` ordered by ``which`` (``"LA"``: descending).
        eigenvectors: ``(P, k)`` orthonormal columns.
        residuals: ``(k,)`` ``||H u_i - θ_i u_i||`` recomputed explicitly from the stored
            products (``verify="fresh"``: from new products; ``verify=False``: from the Lanczos
            relation).
        bounds: ``(k,)`` ``min(r_i, r_i²/gap_i)``, a bound on each eigenvalue's error.
        converged: every residual met ``tol · max(|θ_i|, 1e-3 max|θ|)`` (10x slack on the recomputed ones).
        n_matvec: curvature-vector products used (including the k residual checks with
            ``verify="fresh"``).
        n_restarts, tol, which, curvature: as run.
        n_params, n_samples, loss: ``P``, ``N`` and ``L`` at the evaluation point.
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    residuals: Tensor
    bounds: Tensor
    converged: bool
    n_matvec: int
    n_restarts: int
    tol: float
    which: str
    curvature: str
    n_params: int
    n_samples: int
    loss: float

    _bulky = ("eigenvectors",)

    def __str__(self) -> str:
        return (f"HessianTop({self.curvature} top-{len(self.eigenvalues)}, {self.which}, P={self.n_params}, "
                f"N={self.n_samples}, L={self.loss:.6g})\n"
                f"  eigenvalues: {fmt_values(self.eigenvalues, 8, '.6g')}\n"
                f"  max residual {float(self.residuals.max()):.2e}, "
                f"{'converged' if self.converged else 'NOT converged'} after {self.n_matvec} products")


def _orth(V: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Two passes of classical Gram-Schmidt of ``w`` against the columns of ``V``."""
    if V.shape[1] == 0:
        return w, torch.zeros(0, dtype=w.dtype)
    h = V.T @ w
    w = w - V @ h
    h2 = V.T @ w
    return w - V @ h2, h + h2


def _ref(theta: Tensor, scale: float) -> Tensor:
    """Per-pair residual reference ``max(|θ_i|, 1e-3 · max_j |θ_j|)`` [default]."""
    return theta.abs().clamp_min(1e-3 * scale)


def _select(theta: Tensor, k: int, which: str) -> Tensor:
    key = {"LA": -theta, "SA": theta, "LM": -theta.abs()}[which]
    return torch.argsort(key)[:k]


def _random_unit(P: int, gen: torch.Generator) -> Tensor:
    v = torch.randn(P, dtype=torch.float64, generator=gen)
    return v / v.norm()


def lanczos_top(op: CurvatureOperator, k: int, *, tol: float = 1e-6, max_iter: int = 1000,
                seed: int = 0, which: str = "LA", max_basis: int | None = None,
                v0: Tensor | None = None, verify: bool | str = True) -> HessianTop:
    """Thick-restart Lanczos on a built operator (see :func:`hessian_top`)."""
    P = op.P
    check_k(k, P)
    check_pos("tol", tol)
    check_pos("max_iter", max_iter, integer=True)
    if which not in _WHICH:
        raise ConfigError("which", f"must be one of {_WHICH} (got {which!r})")
    if not (isinstance(verify, bool) or verify == "fresh"):
        raise ConfigError("verify", f"must be True, False or 'fresh' (got {verify!r})")
    m_max = max(2 * k + 20, 40) if max_basis is None else max_basis
    if isinstance(m_max, bool) or not isinstance(m_max, int) or m_max < k + 2 and m_max < P:
        raise ConfigError("max_basis", f"must be an integer >= k + 2 (got {max_basis!r})")
    m_max = min(m_max, P)
    keep = min(k + (m_max - k + 1) // 2, m_max - 1) if m_max < P else m_max
    from nnphys.seeding import torch_generator

    gen = torch_generator(seed, "curvature.lanczos")
    q = _random_unit(P, gen) if v0 is None else (v0.double() / v0.double().norm())
    V = torch.zeros(P, 0, dtype=torch.float64)
    keep_w = verify is True  # store the products: W = H V, so that H u = W s costs no product
    W = torch.zeros(P, 0, dtype=torch.float64) if keep_w else None
    T = torch.zeros(0, 0, dtype=torch.float64)
    used0 = op.n_matvec
    restarts, converged = 0, False
    seq0 = 0  # first column of the current Krylov sequence (after a breakdown restart)
    theta = S = None
    beta = 0.0
    while True:
        # extend the basis by q
        w = op.matvec(q)
        V = torch.cat([V, q[:, None]], 1)
        if keep_w:
            W = torch.cat([W, w.to(torch.float64)[:, None]], 1)
        w, h = _orth(V, w)
        j = V.shape[1]
        Tn = torch.zeros(j, j, dtype=torch.float64)
        Tn[: j - 1, : j - 1] = T
        Tn[:, j - 1] = h
        Tn[j - 1, :] = h
        T = Tn
        beta = float(w.norm())
        theta, S = torch.linalg.eigh(0.5 * (T + T.T))
        idx = _select(theta, min(k, j), which)
        scale = float(theta.abs().max()) or 1.0
        res = beta * S[-1, idx].abs()
        done_iter = op.n_matvec - used0 >= max_iter
        breakdown = beta <= 1e-14 * scale
        # an invariant subspace whose latest sequence (since the last breakdown) holds a wanted
        # Ritz vector: the complement may hold further copies of that eigenvalue, which a single
        # Krylov sequence cannot show; do not stop, continue from a fresh direction
        fresh = breakdown and bool((S[seq0:, idx] ** 2).sum(0).max() > 0.5)
        if j >= k and not fresh and bool((res <= tol * _ref(theta[idx], scale)).all()):
            converged = True
            break
        if done_iter or j == P:
            converged = j == P
            break
        if breakdown:  # invariant subspace: continue from a fresh direction
            w, _ = _orth(V, torch.randn(P, dtype=torch.float64, generator=gen))
            w, _ = _orth(V, w)
            beta_new = float(w.norm())
            q = w / beta_new
            seq0 = j
            continue
        q = w / beta
        if j >= m_max:  # thick restart onto the `keep` wanted Ritz vectors
            sel = _select(theta, keep, which)
            Ssel = S[:, sel]
            V = V @ Ssel
            if keep_w:
                W = W @ Ssel
            T = torch.diag(theta[sel])
            seq0 = 0
            # H V' = V' Θ + f (S[-1, sel])ᵀ: the next column q = f/β couples through h = V'ᵀ H q
            restarts += 1
    sel = _select(theta, k, which)
    vals = theta[sel]
    U0 = V @ S[:, sel]
    U, Rq = torch.linalg.qr(U0)  # re-orthonormalise against rounding; columns keep their order
    sign = torch.sign((U * U0).sum(0))
    U = U * sign[None, :]
    if verify:
        if keep_w:  # H U = (H V) S R⁻¹ from the stored products: explicit, and no product spent
            HU0 = W @ S[:, sel]
            R = torch.linalg.solve_triangular(Rq, HU0, upper=True, left=False) * sign[None, :]
        else:  # verify="fresh": one new product per pair
            R = torch.stack([op.matvec(U[:, i]) for i in range(k)], 1)
        vals = (U * R).sum(0)  # Rayleigh quotients of the returned vectors
        order = _select(vals, k, which)  # rounding may swap (near-)equal values
        vals, U, R, sel = vals[order], U[:, order], R[:, order], sel[order]
        resid = (R - U * vals[None, :]).norm(dim=0)
    else:  # the Lanczos relation H V S = V S Θ + f e_jᵀ S: r_i = β |S[-1, i]|, no product
        resid = beta * S[-1, sel].abs()
    others = theta.clone()
    gaps = torch.stack([
        (torch.cat([others[:i], others[i + 1:]]) - vals[c]).abs().min()
        if len(others) > 1 else torch.tensor(math.inf, dtype=torch.float64)
        for c, i in enumerate(sel.tolist())
    ])
    bounds = torch.minimum(resid, resid ** 2 / gaps.clamp_min(1e-300))
    scale = max(float(vals.abs().max()), float(theta.abs().max())) or 1.0
    return HessianTop(
        eigenvalues=vals, eigenvectors=U, residuals=resid, bounds=bounds,
        converged=bool(converged and (resid <= 10 * tol * _ref(vals, scale)).all()),
        # (verify=False: the same residuals the loop stopped on, so the slack is not needed)
        n_matvec=op.n_matvec - used0, n_restarts=restarts, tol=float(tol), which=which,
        curvature=op.curvature, n_params=P, n_samples=op.N, loss=op.loss,
    )


def hessian_top(model, loss_fn, data, *args, k: int | None = None, tol: float = 1e-6,
                max_matvec: int | None = None, seed: int = 0, which: str = "LA",
                curvature: str = "hessian", chunk_size: int | None = None, hvp_method: str = "auto",
                max_basis: int | None = None, max_iter: int | None = None,
                verify: bool | str = True) -> HessianTop:
    """Top-``k`` eigenpairs of ``∇²L`` (or the Gauss-Newton ``G``) of ``model`` on ``data``.

    Args:
        model, loss_fn, data: see :mod:`nnphys.curvature.operator`; ``loss_fn(out, y) -> (n,)``.
            ``model`` may be a built :class:`CurvatureOperator` (then the next two are ignored).
        k: number of eigenpairs, ``1 <= k <= P`` (default 1; a positional ``k`` is deprecated).
        tol: convergence when every residual ``||H u - θ u|| <= tol · max(|θ|, 1e-3 max|θ|)`` [default].
        max_matvec: cap on curvature-vector products (default 1000; was ``max_iter``).
        seed: start vector ``N(0, I_P)`` from ``nnphys.seeding.torch_generator(seed, "curvature.lanczos")``.
        which: ``"LA"`` largest algebraic (default), ``"LM"`` largest magnitude, ``"SA"`` smallest.
        curvature: ``"hessian"`` or ``"ggn"``. chunk_size, hvp_method (its ``method``): see :class:`CurvatureOperator`.
        max_basis: Krylov basis size before a thick restart (default ``max(2k + 20, 40)``).
        verify: recompute each returned pair's residual ``||H u - θ u||`` and Rayleigh quotient
            explicitly. ``True`` (default): from the products already made, kept as ``W = H V``
            beside the basis, ``H u = W s`` (no product spent; a second ``max_basis × P`` array).
            ``"fresh"``: one new product per pair (``k`` products; the default before 2026-12-07,
            which also catches an operator that changes between calls). ``False``: residuals from
            the Lanczos relation ``β |s_{j,i}|`` and the Ritz values, which hold up to rounding with
            the full reorthogonalisation used here (the tests check all three against dense ``eigh``).

    Returns:
        :class:`HessianTop`.
    """
    k = positional_k("hessian_top", args, k, 1)
    max_matvec = renamed("hessian_top", "max_matvec", max_matvec, "max_iter", max_iter, 1000)
    op = operator(model, loss_fn, data, curvature=curvature, chunk_size=chunk_size, method=hvp_method)
    return lanczos_top(op, k, tol=tol, max_iter=max_matvec, seed=seed, which=which, max_basis=max_basis,
                       verify=verify)


def positional_k(fn: str, args: tuple, k, default: int):
    """The deprecated positional ``k`` after ``data`` (it warns), else the keyword ``k``."""
    if args:
        if k is not None:
            raise TypeError(f"{fn}() got k both positionally and by keyword")
        import warnings

        warnings.warn(f"{fn}(model, loss_fn, data, k): a positional k is deprecated; pass k=",
                      DeprecationWarning, stacklevel=3)
        k, args = args[0], args[1:]
    no_extra(fn, args)
    return default if k is None else k


# ----------------------------------------------------------------------------- SLQ


def lanczos_tridiag(op: CurvatureOperator, v: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """``m`` steps of Lanczos from ``v`` with full reorthogonalisation: Gauss quadrature nodes
    ``θ (m',)`` and weights ``τ² (m',)`` (first components squared, summing to 1) with
    ``Σ_j τ_j² θ_j^p = vᵀ H^p v / vᵀv`` exactly for ``p <= 2m' - 1`` (``m' <= m``: fewer on breakdown)."""
    P = op.P
    V = torch.zeros(P, 0, dtype=torch.float64)
    q = v.double() / v.double().norm()
    alphas, betas = [], []
    for j in range(min(m, P)):
        w = op.matvec(q)
        V = torch.cat([V, q[:, None]], 1)
        a = float(q @ w)
        w, _ = _orth(V, w)
        alphas.append(a)
        b = float(w.norm())
        if j + 1 == min(m, P) or b <= 1e-12 * max(abs(x) for x in alphas):
            break
        betas.append(b)
        q = w / b
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if betas:
        bt = torch.tensor(betas, dtype=torch.float64)
        T = T + torch.diag(bt, 1) + torch.diag(bt, -1)
    theta, S = torch.linalg.eigh(T)
    return theta, S[0] ** 2


@dataclasses.dataclass(frozen=True, repr=False)
class SpectralDensity(Result):
    """SLQ estimate of the spectral density ``ρ(λ) = (1/P) Σ_i δ(λ - λ_i)`` of the curvature.

    Attributes:
        grid: ``(G,)`` λ values; density: ``(G,)`` ``ρ`` broadened by a Gaussian of width ``sigma``
            (integrates to 1 over the grid up to truncation).
        nodes, weights: ``(n_v, m)`` Gauss quadrature nodes / weights per probe vector (weights of a
            vector sum to 1; rows shorter than ``m`` are padded with weight 0).
        sigma, n_params, curvature, n_matvec: as run.
    """

    grid: Tensor
    density: Tensor
    nodes: Tensor
    weights: Tensor
    sigma: float
    n_params: int
    curvature: str
    n_matvec: int

    _bulky = ("grid", "density", "nodes", "weights")

    def __str__(self) -> str:
        m1, s1 = self.moment(1)
        nz = self.nodes[self.weights > 0]
        return (f"SpectralDensity({self.curvature}, SLQ: {self.nodes.shape[0]} probes x {self.nodes.shape[1]} "
                f"steps, P={self.n_params}, sigma={self.sigma:.3g}, {self.n_matvec} products)\n"
                f"  Ritz range [{float(nz.min()):.4g}, {float(nz.max()):.4g}]; "
                f"tr/P = {m1:.4g} ± {s1:.2g}; mass above 0: {self.mass_above(0.0):.3g}")

    def moment(self, p: int) -> tuple[float, float]:
        """``(estimate, standard error)`` of ``tr(H^p) / P`` from the quadrature (unbiased over the
        Rademacher probes for ``p <= 2m - 1``)."""
        per = (self.weights * self.nodes ** p).sum(1)
        n = per.shape[0]
        se = float(per.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan
        return float(per.mean()), se

    def mass_above(self, x: float) -> float:
        """Estimated fraction of eigenvalues above ``x`` (from the quadrature, no broadening)."""
        return float(((self.nodes > x) * self.weights).sum(1).mean())

    def plot(self, ax=None, *, log: bool = True):
        """Draw ``ρ(λ)`` (log scale by default, as eigenvalue densities span decades)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(self.grid.numpy(), self.density.numpy(), label=f"SLQ ({self.curvature}), σ={self.sigma:.2g}")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=max(float(self.density.max()) * 1e-12, 1e-300))
        ax.set_xlabel("eigenvalue λ")
        ax.set_ylabel("density ρ(λ)")
        ax.legend(fontsize=8)
        return ax


def density_from_quadrature(nodes: Tensor, weights: Tensor, *, sigma: float | None = None,
                            n_grid: int = 1000) -> tuple[Tensor, Tensor, float]:
    """Gaussian-broadened density on a grid from per-probe quadrature rules."""
    lo, hi = float(nodes[weights > 0].min()), float(nodes[weights > 0].max())
    width = hi - lo if hi > lo else max(abs(hi), 1.0)
    s = 0.01 * width if sigma is None else float(sigma)
    grid = torch.linspace(lo - 5 * s, hi + 5 * s, n_grid, dtype=torch.float64)
    z = (grid[:, None] - nodes.reshape(-1)[None, :]) / s
    dens = (torch.exp(-0.5 * z * z) * weights.reshape(-1)[None, :]).sum(1)
    dens = dens / (nodes.shape[0] * s * math.sqrt(2 * math.pi))
    return grid, dens, s


def slq_density(op: CurvatureOperator, *, n_v: int = 10, m: int = 80, sigma: float | None = None,
                n_grid: int = 1000, seed: int = 0) -> SpectralDensity:
    """SLQ on a built operator (see :func:`hessian_density`)."""
    check_pos("n_v", n_v, integer=True)
    check_pos("m", m, integer=True)
    if sigma is not None:
        check_pos("sigma", sigma)
    check_pos("n_grid", n_grid, integer=True)
    m = min(m, op.P)
    used0 = op.n_matvec
    nodes = torch.zeros(n_v, m, dtype=torch.float64)
    weights = torch.zeros(n_v, m, dtype=torch.float64)
    for i in range(n_v):
        v = rademacher(op.P, seed, "curvature.slq", i)
        th, w = lanczos_tridiag(op, v, m)
        nodes[i, : len(th)] = th
        nodes[i, len(th):] = th[-1]
        weights[i, : len(w)] = w
    grid, dens, s = density_from_quadrature(nodes, weights, sigma=sigma, n_grid=n_grid)
    return SpectralDensity(grid=grid, density=dens, nodes=nodes, weights=weights, sigma=s,
                           n_params=op.P, curvature=op.curvature, n_matvec=op.n_matvec - used0)


def rademacher(P: int, seed: int, *labels) -> Tensor:
    """``(P,)`` float64 ±1 probe from ``nnphys.seeding.torch_generator(seed, *labels)``."""
    from nnphys.seeding import torch_generator

    gen = torch_generator(seed, *labels)
    return torch.randint(0, 2, (P,), generator=gen).double() * 2 - 1


def hessian_density(model, loss_fn, data, *args, n_v: int = 10, m: int = 80, sigma: float | None = None,
                    n_grid: int = 1000, seed: int = 0, curvature: str = "hessian",
                    chunk_size: int | None = None, hvp_method: str = "auto") -> SpectralDensity:
    """Spectral density of the curvature by stochastic Lanczos quadrature (Lin, Saad & Yang 2016;
    the estimator of PyHessian's ``density``): ``n_v`` Rademacher probes, ``m`` Lanczos steps each
    (full reorthogonalisation), Gauss quadrature per probe, Gaussian broadening ``sigma``
    (default 1% of the Ritz-value range [default]) on ``n_grid`` points. Cost ``n_v · m`` products.

    Returns :class:`SpectralDensity` (``.plot()``, ``.moment(p)``, ``.mass_above(x)``).
    """
    no_extra("hessian_density", args)
    op = operator(model, loss_fn, data, curvature=curvature, chunk_size=chunk_size, method=hvp_method)
    return slq_density(op, n_v=n_v, m=m, sigma=sigma, n_grid=n_grid, seed=seed)
