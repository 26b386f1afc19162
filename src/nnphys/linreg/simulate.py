"""Monte Carlo of SGD on linear regression: R chains at once, float64, torch (online data or a
fixed data set), and the seeded generator :class:`SimRng`. See :mod:`nnphys.linreg`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
from scipy import linalg

from nnphys.errors import ConfigError
from nnphys.linreg._checks import _pos, _batch, _mom, _sym, _lr_matrix, _inf_like

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
    """Online Gaussian minibatch SGD (the paper's setting), R chains in one tensor, float64.

    Each step draws S fresh ``x ~ N(0, A)`` per chain, label ``y = uᵀx + ε``,
    ``ε ~ N(0, σ²)``; with ``B_input`` the model sees ``x̃ = x + ζ``, ``ζ ~ N(0, B_input)``
    (MBN §5). Gradient ``ĝ = 1/S Σ x̃(x̃ᵀw - y) + Γw``; momentum ``m ← μm + ĝ``,
    ``w ← w - Λm``. Chains start at ``w*`` (the population minimiser). Burn-in default
    ``⌈5/(λ a_min)⌉``. Diverged chains (non-finite or ``|v| > blowup``) are flagged and
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
    """Minibatch SGD on a fixed data set ``X (N, D)``, ``y (N,)`` (the high-dimensional setting of Thm 6), R chains,
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


__all__ = ["SimRng", "sample_batches", "SimResult", "simulate_online", "simulate_finite"]
