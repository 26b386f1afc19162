"""Simulators S1-S5 of the escape-rate study (``docs/studies/escape-rate.md``), vectorised over
``R`` chains, with first-passage bookkeeping that keeps censored chains apart.

- S1 :func:`simulate_sde` ``(noise="eq13")``: Euler-Maruyama of Eq. 13,
  ``dz = -grad L dt + sqrt(2 eta L / B) H*^(1/2) dW`` with ``H* = H(theta*)`` frozen;
- S2 :func:`simulate_sde` ``(clock="tau")``: Eq. 15 in the random time ``tau``,
  ``dz = -grad log L dtau + sqrt(2 eta / B) H*^(1/2) dW_tau``, converting ``t = int dtau / L``;
- S3 :func:`simulate_sde` ``(noise="exact")``: the exact covariance of Gaussian linear regression
  (population limit), ``B Sigma = 2 L A + (A z)(A z)^T`` on :class:`QuadraticWell` (``A = diag h``);
- S4 :func:`simulate_sgd_oracle`: synthetic SGD, step ``eta``, ``g = grad L + sqrt(2L) xi_B``,
  ``xi_B`` the mean of ``B`` zero-mean draws of covariance ``H*`` (Gaussian or Rademacher);
- S5 :func:`simulate_sgd`: genuine minibatch SGD (indices distinct within a batch) on an MSE
  model that exposes ``residual_and_jac`` (:class:`LinearRegression`, :class:`LabelNoiseWell`).

Escape events are checked every step (S1-S3 at grid times; a Brownian-motion continuity
correction shifts the barrier by ``0.5826 sigma sqrt(dt)`` when asked, Broadie-Glasserman-Kou).
Chains that have escaped are dropped every ``block`` steps (compaction), so late steps are
cheap. Randomness: one ``torch.Generator`` per call, seeded. With ``crn=True`` each chain gets
the same noise stream whatever the other chains do (common random numbers, for the scale-symmetry
test); otherwise noise is drawn for the surviving chains only (faster).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import torch
from scipy import stats as st

from nnphys.errors import ConfigError
from nnphys.escape.landscapes import DoubleWell, QuadraticWell

__all__ = ["FirstPassage", "simulate_sde", "simulate_sgd_oracle", "simulate_sgd", "sample_sde",
           "sample_sgd", "minibatch_indices", "BGK_BETA"]

BGK_BETA = 0.5825971579390106  # -zeta(1/2)/sqrt(2 pi): discrete-monitoring barrier shift


# --------------------------------------------------------------------------- results
@dataclasses.dataclass
class FirstPassage:
    """First-passage times of ``R`` chains. ``times``: ``(R,)`` hitting time in units of ``t``
    for chains with ``event``, the censoring time (time at the step cap) otherwise."""

    times: np.ndarray
    event: np.ndarray
    dt: float
    t_max: float

    @property
    def n(self) -> int:
        return int(self.times.size)

    @property
    def n_events(self) -> int:
        return int(self.event.sum())

    @property
    def censored_fraction(self) -> float:
        return 1.0 - self.n_events / max(self.n, 1)

    def exp_mle(self, level: float = 0.95) -> tuple[float, float, float]:
        """Censored-exponential MLE of the mean time, ``sum(times) / events``, with the chi-square
        interval ``[2T/chi2_{2k+2}(1-a/2), 2T/chi2_{2k}(a/2)]`` (exact for an exponential law)."""
        k, T = self.n_events, float(self.times.sum())
        if k == 0:
            lo = 2 * T / st.chi2.ppf(0.5 + level / 2, 2)
            return float("inf"), lo, float("inf")
        a = 1 - level
        return T / k, 2 * T / st.chi2.ppf(1 - a / 2, 2 * k + 2), 2 * T / st.chi2.ppf(a / 2, 2 * k)

    def mean_ci(self, level: float = 0.95) -> tuple[float, float, float]:
        """Sample mean with Student-t CI; ``nan`` when any chain is censored (never averaged)."""
        if self.n_events < self.n or self.n < 2:
            return float("nan"), float("nan"), float("nan")
        m = float(self.times.mean())
        se = float(self.times.std(ddof=1)) / math.sqrt(self.n)
        q = st.t.ppf(0.5 + level / 2, self.n - 1)
        return m, m - q * se, m + q * se

    def km_tail(self, level: float = 0.95) -> tuple[float, float, float]:
        """Mean time under type-I censoring at ``t_max`` without assuming an exponential law for
        the bulk: the restricted mean ``E[min(T, t_max)]`` (exact) plus ``S(t_max)`` times an
        exponential tail whose mean is the censored-exponential MLE over chains alive at
        ``t_max / 2`` (exact for a tail that has reached its slowest mode). Normal CI by the
        delta method."""
        T = np.minimum(self.times, self.t_max)
        R = self.n
        rmst = float(T.mean())
        var = float(T.var(ddof=1)) / R if R > 1 else float("nan")
        pc = self.censored_fraction
        if pc == 0:
            m = rmst
        else:
            t0 = 0.5 * self.t_max
            late = self.times > t0
            k = int((late & self.event).sum())
            if k == 0:
                return float("inf"), rmst, float("inf")
            theta = float((T[late] - t0).sum()) / k
            m = rmst + pc * theta
            var += (pc * theta) ** 2 * (1.0 / k + (1 - pc) / (R * pc))
        q = st.norm.ppf(0.5 + level / 2)
        se = math.sqrt(var)
        return m, m - q * se, m + q * se

    def estimate(self, level: float = 0.95) -> dict:
        """Mean time with CI: the sample mean (Student-t CI) when nothing is censored, else the
        restricted mean plus an exponential tail (:meth:`km_tail`); ``method`` says which. The
        censored fraction and the plain censored-exponential MLE (:meth:`exp_mle`) are always
        reported."""
        if self.n_events == self.n:
            m, lo, hi = self.mean_ci(level)
            method = "mean"
        else:
            m, lo, hi = self.km_tail(level)
            method = "km_exp_tail"
        em = self.exp_mle(level)
        return {"mean": m, "lo": lo, "hi": hi, "method": method, "n": self.n,
                "censored_fraction": self.censored_fraction, "t_max": self.t_max,
                "exp_mle": em[0], "exp_mle_ci": [em[1], em[2]]}


# --------------------------------------------------------------------------- helpers
def _check_common(B: float, eta: float, n_chains: int, t_max: float) -> None:
    if not (eta > 0 and math.isfinite(eta)):
        raise ConfigError("eta", f"must be > 0 (got {eta})")
    if not B > 0:
        raise ConfigError("B", f"must be > 0 (got {B})")
    if n_chains < 1:
        raise ConfigError("n_chains", f"must be >= 1 (got {n_chains})")
    if not t_max > 0:
        raise ConfigError("t_max", f"must be > 0 (got {t_max})")


def _event_spec(land, event: str, dt: float, B: float, eta: float, correction: bool, clock: str = "t"):
    """``(kind, threshold)``: escape when ``stat >= threshold``; ``kind`` is ``"z1"`` (first
    coordinate) or ``"L"`` (the loss, level set ``L >= c L*``). With ``correction`` the barrier
    moves towards the start by ``0.5826 sigma sqrt(dt)``, ``sigma`` the noise amplitude there
    (in the tau clock the noise is additive, ``sigma^2 = 2 eta h* / B``)."""
    if isinstance(land, DoubleWell):
        b, kind = land.event_coordinate("other" if event == "auto" else event)
        if correction:
            Lb = float(land.loss_np(np.array(b))) if clock == "t" else 1.0
            b -= BGK_BETA * math.sqrt(2 * eta * land.h_star * Lb / B * dt)
        return kind, b
    if isinstance(land, QuadraticWell):
        if event not in ("auto", "levelset"):
            raise ConfigError("event", f"a quadratic well only has the level-set event (got {event!r})")
        thr = land.c * land.L_star
        if correction:
            # isotropic radial shift dr at r_c, mapped to L: dL = |grad L| dr = h r_c dr
            h = land.h_star
            r_c = math.sqrt(2 * (thr - land.L_star) / h)
            dr = BGK_BETA * math.sqrt(2 * eta * h * (thr if clock == "t" else 1.0) / B * dt)
            thr = land.L_star + 0.5 * h * max(r_c - dr, 0.0) ** 2
        return "L", thr
    raise ConfigError("landscape", f"unsupported landscape {type(land).__name__}")


def _whiten_pool(pool: torch.Tensor, P: int) -> torch.Tensor:
    """``(M, P)`` pool centred and whitened to identity covariance (population, 1/M), so that a draw
    from it has the covariance of a standard normal; the step scales it by ``H*^(1/2)``."""
    pool = torch.as_tensor(pool, dtype=torch.float64)
    if pool.ndim == 1:
        pool = pool[:, None]
    if pool.ndim != 2 or pool.shape[1] != P or pool.shape[0] < 2:
        raise ConfigError("pool", f"needs shape (M >= 2, {P}) (got {tuple(pool.shape)})")
    pc = pool - pool.mean(0)
    cov = pc.T @ pc / pc.shape[0]
    try:
        chol = torch.linalg.cholesky(cov)
    except RuntimeError:
        raise ConfigError("pool", "its covariance is singular: the pool must span all P directions") from None
    return torch.linalg.solve_triangular(chol, pc.T, upper=False).T


class _Noise:
    """Block-wise normal draws, either for the surviving chains only or (``crn``) for all chains
    followed by a gather, so that each chain's stream is independent of the others' fate."""

    def __init__(self, R: int, P: int, block: int, seed: int, dtype, device, crn: bool, kind: str, B: int,
                 rng_dtype=None, pool: torch.Tensor | None = None):
        self.g = torch.Generator(device=device).manual_seed(int(seed))
        self.R, self.P, self.block, self.dtype, self.device = R, P, block, dtype, device
        self.crn, self.kind, self.B = crn, kind, B
        self.rng_dtype = dtype if rng_dtype is None else rng_dtype
        self.pool = None if pool is None else _whiten_pool(pool, P).to(device=device, dtype=dtype)

    def draw(self, alive: torch.Tensor, K: int | None = None) -> torch.Tensor:
        m = self.R if self.crn else alive.numel()
        shape = (self.block if K is None else K, m, self.P)
        if self.kind == "gaussian":
            xi = torch.randn(shape, generator=self.g, dtype=self.rng_dtype, device=self.device).to(self.dtype)
        elif self.kind == "pool":
            # sqrt(B) x the mean of B rows drawn uniformly, with replacement, from the whitened pool
            idx = torch.randint(0, self.pool.shape[0], (*shape[:2], self.B), generator=self.g, device=self.device)
            xi = self.pool[idx].sum(-2) / math.sqrt(self.B)
        elif self.kind == "rademacher":
            # mean of B Rademacher draws, scaled to unit variance: (2 Bin(B, 1/2) - B) / sqrt(B)
            cnt = torch.full(shape, float(self.B), dtype=self.dtype, device=self.device)
            k = torch.binomial(cnt, torch.full_like(cnt, 0.5), generator=self.g)
            xi = (2 * k - self.B) / math.sqrt(self.B)
        else:
            raise ConfigError("noise_kind", f"must be 'gaussian', 'rademacher' or 'pool' (got {self.kind!r})")
        return xi[:, alive] if self.crn else xi


# --------------------------------------------------------------------------- S1-S4
def simulate_sde(land, *, B: float, eta: float, dt: float, n_chains: int, t_max: float, seed: int,
                 event: str = "auto", noise: str = "eq13", clock: str = "t", correction: bool = False,
                 crn: bool = False, block: int = 64, dtype=torch.float64, device="cpu",
                 noise_kind: str = "gaussian", start: torch.Tensor | None = None, fused: bool = True,
                 rng_dtype=None, engine: str = "auto", threads: int | None = None,
                 pool: torch.Tensor | None = None) -> FirstPassage:
    """First passage of Eq. 13 (S1), Eq. 15 (S2, ``clock="tau"``, ``dt`` is then ``dtau``) or the
    exact-covariance SDE (S3, ``noise="exact"``) from the minimum of ``land`` to its escape event
    (``DoubleWell``: the other minimum, or ``event="saddle"``; ``QuadraticWell``: ``L >= c L*``).

    Returns a :class:`FirstPassage` over ``n_chains`` chains; chains still inside at ``t_max`` are
    censored. 1-D problems run a fused in-place kernel (a handful of ops per step over the
    chain vector; ``fused=False`` forces the generic update, for tests); ``n``-D ones the generic
    update. ``rng_dtype=torch.float32`` draws the normals in single precision (about 4x cheaper
    on CPU, the bottleneck) and casts them to ``dtype``; the default draws in ``dtype``.

    ``engine``: ``"torch"`` (the vectorised path above), ``"compiled"`` (the per-chain numba kernel
    of :mod:`nnphys.escape.kernels`, float64, its own per-chain random streams, so every chain's path
    is common to all calls with the same seed whatever ``crn``; Eq. 13 in the ``t`` clock with
    Gaussian noise from the minimum, on the CPU only) or ``"auto"`` (compiled when numba is installed
    and the problem qualifies). On the compiled path ``dtype``, ``rng_dtype``, ``block`` and
    ``fused`` (torch-path knobs) are ignored, and ``crn`` always holds; pass ``engine="torch"`` to
    get them. ``threads``: threads of the compiled kernel (default: torch's
    intra-op thread count, which the lab pins per job)."""
    _check_common(B, eta, n_chains, t_max)
    if engine not in ("auto", "torch", "compiled"):
        raise ConfigError("engine", f"must be 'auto', 'torch' or 'compiled' (got {engine!r})")
    if not (dt > 0 and math.isfinite(dt)):
        raise ConfigError("dt", f"must be > 0 (got {dt})")
    if noise not in ("eq13", "exact"):
        raise ConfigError("noise", f"must be 'eq13' or 'exact' (got {noise!r})")
    if noise == "exact" and not isinstance(land, QuadraticWell):
        raise ConfigError("noise", "the exact covariance is implemented for the regression well (QuadraticWell)")
    if clock not in ("t", "tau"):
        raise ConfigError("clock", f"must be 't' or 'tau' (got {clock!r})")
    if clock == "tau" and noise != "eq13":
        raise ConfigError("clock", "the tau-SDE (Eq. 15) exists for Eq. 13 noise only")
    kind, thr = _event_spec(land, event, dt, B, eta, correction, clock)
    R, P = int(n_chains), land.P
    why_not = _compiled_refusal(land, clock, noise, noise_kind, start, device)
    if engine == "compiled" and why_not:
        raise ConfigError("engine", f"the compiled kernel does not cover this problem: {why_not}")
    if engine == "compiled" or (engine == "auto" and not why_not and _kernels().available()):
        return _simulate_compiled(land, kind, thr, B=B, eta=eta, dt=dt, n_chains=R, t_max=t_max, seed=seed,
                                  threads=threads)
    z = (land.start(R, dtype, device) if start is None else start.to(device=device, dtype=dtype).clone())
    hsq = torch.as_tensor(np.sqrt(land.hess_diag_full), dtype=dtype, device=device)
    if (noise_kind == "pool") != (pool is not None):
        raise ConfigError("pool", "give a pool exactly when noise_kind='pool'")
    if noise_kind == "pool" and noise != "eq13":
        raise ConfigError("noise_kind", "the pool noise exists for Eq. 13 noise only")
    rng = _Noise(R, P + (noise == "exact"), block, seed, dtype, device, crn, noise_kind, int(B), rng_dtype, pool)
    alive = torch.arange(R, device=device)
    times = torch.full((R,), float("nan"), dtype=torch.float64, device=device)
    tcur = torch.zeros(R, dtype=torch.float64, device=device) if clock == "tau" else None
    n_steps = int(math.ceil(t_max / dt - 1e-9)) if clock == "t" else None
    fused = fused and P == 1 and clock == "t" and noise == "eq13"
    amp2 = 2 * eta / B * dt  # noise variance per unit L and unit curvature
    step = 0
    while alive.numel() > 0:
        if clock == "t" and step >= n_steps:
            break
        K = block if clock == "tau" else min(block, n_steps - step)
        xi = rng.draw(alive, K)
        m = alive.numel()
        stat = torch.empty(K, m, dtype=dtype, device=device)
        tbuf = torch.empty(K, m, dtype=torch.float64, device=device) if clock == "tau" else None
        if fused:
            zz = z[:, 0].contiguous()
            _fused_block_1d(land, zz, xi[:, :, 0], stat, amp2 * land.hess_diag_full[0], dt, kind)
            z = stat[-1].unsqueeze(1).clone() if kind == "z1" else zz.unsqueeze(1)
        else:
            for k in range(K):
                L, grad = land.loss_grad(z)
                if clock == "t":
                    amp = torch.sqrt(amp2 * L)[:, None] * hsq
                    dz = amp * xi[k, :, :P] - grad * dt
                    if noise == "exact":
                        # rank-one part of B Sigma, (A z)(A z)^T, with its own scalar normal
                        Az = z * hsq * hsq
                        dz = dz + Az * (math.sqrt(eta / B * dt) * xi[k, :, P:])
                    z = z + dz
                else:
                    z = z - grad / L[:, None] * dt + math.sqrt(amp2) * hsq * xi[k]
                    tcur[alive] += dt / L.to(torch.float64)
                    tbuf[k] = tcur[alive]
                if kind == "z1":
                    stat[k] = z[:, 0]
                else:  # the level-set statistic is the next step's L: compute it once
                    stat[k] = land.loss(z)
        # first hit inside the block
        anyhit = (stat >= thr).any(0)  # not amax: a chain that diverges to nan after crossing keeps its hit
        tt = torch.zeros(m, dtype=torch.float64, device=device)
        cols = anyhit.nonzero()[:, 0]
        if cols.numel() > 0:  # first crossing step, only for the (few) chains that crossed
            first = torch.argmax((stat[:, cols] >= thr).to(torch.int8), 0)
            if clock == "t":
                tt[cols] = (step + first + 1).to(torch.float64) * dt
            else:
                tt[cols] = tbuf[:, cols].gather(0, first[None])[0]
        drop = anyhit
        if clock == "tau":  # censor each chain at its own clock
            cens = (tcur[alive] >= t_max) & ~anyhit
            times[alive[cens]] = -tcur[alive[cens]]  # negative marks a censored time
            drop = anyhit | cens
        if bool(drop.any()):
            done = alive[anyhit]
            times[done] = tt[anyhit]
            keep = ~drop
            alive, z = alive[keep], z[keep]
        step += K
    if clock == "tau":
        event_mask = times > 0
        times = times.abs()
        t_cens = float(t_max)
    else:
        event_mask = ~torch.isnan(times)
        t_cens = float(n_steps * dt)
        times[~event_mask] = t_cens
    return FirstPassage(times=times.cpu().numpy(), event=event_mask.cpu().numpy(), dt=float(dt),
                        t_max=float(t_cens))


def _kernels():
    """:mod:`nnphys.escape.kernels`, imported on first use: importing numba costs about 0.4 s, which
    every CLI call that merely lists the studies would otherwise pay."""
    from nnphys.escape import kernels as escape_kernels

    return escape_kernels


def _compiled_refusal(land, clock, noise, noise_kind, start, device) -> str:
    """Why the compiled kernel cannot run this problem ("" when it can)."""
    if clock != "t" or noise != "eq13" or noise_kind != "gaussian":
        return "it runs Eq. 13 with Gaussian noise in the t clock only"
    if start is not None:
        return "it starts every chain at the minimum"
    if torch.device(device).type != "cpu":
        return "it runs on the CPU"
    if not isinstance(land, (DoubleWell, QuadraticWell)):
        return f"unsupported landscape {type(land).__name__}"
    return ""


def _simulate_compiled(land, kind: str, thr: float, *, B, eta, dt, n_chains, t_max, seed, threads) -> FirstPassage:
    n_steps = int(math.ceil(t_max / dt - 1e-9))
    threads = threads or torch.get_num_threads()  # the job's thread budget (lab.execute pins torch's)
    kw = dict(n_chains=n_chains, seed=seed, n_steps=n_steps, thr=thr, dt=dt, L_star=land.L_star, threads=threads)
    if isinstance(land, DoubleWell):
        # the zero-curvature bulk neither drifts nor diffuses under Eq. 13: only the n outlier
        # coordinates are simulated
        h = land.curvatures
        curv = 4.0 * h / land.h_star
        steps = _kernels().first_passage_steps("double_well", noise=np.sqrt(2 * eta / B * dt * h), curv=curv,
                                               delta_L=land.delta_L, w=land.w, **kw)
    else:
        h = np.asarray(land.h, dtype=np.float64)
        steps = _kernels().first_passage_steps("quadratic", noise=np.sqrt(2 * eta / B * dt * h), curv=h, **kw)
    event = steps >= 0
    t_cens = float(n_steps * dt)
    times = np.where(event, steps * dt, t_cens)
    return FirstPassage(times=times, event=event, dt=float(dt), t_max=t_cens)


def _fused_block_1d(land, z: torch.Tensor, xi: torch.Tensor, out: torch.Tensor, a2: float, dt: float,
                    kind: str) -> None:
    """``K`` Euler-Maruyama steps of 1-D Eq. 13 for a chain vector ``z`` ``(m,)``; writes the
    event statistic of each step to ``out[k]`` (``z`` itself for the double well, so the state
    lives in ``out`` and no copy is made; ``L`` for the quadratic well)."""
    s = torch.empty_like(z)
    amp = torch.empty_like(z)
    K = xi.shape[0]
    if isinstance(land, DoubleWell):
        # L = L0 + dL s^2, s = z^2/w^2 - 1; L' = 4 dL z s / w^2
        iw2, dL, L0 = 1.0 / land.w ** 2, land.delta_L, land.L_star
        m1 = torch.full_like(z, -1.0)
        base = torch.full_like(z, a2 * L0)
        g = 4 * dL * iw2 * dt
        cur = z
        for k in range(K):
            torch.addcmul(m1, cur, cur, value=iw2, out=s)
            torch.addcmul(base, s, s, value=a2 * dL, out=amp)
            amp.sqrt_().mul_(xi[k]).add_(cur)
            torch.addcmul(amp, cur, s, value=-g, out=out[k])
            cur = out[k]
    else:
        # L_k = L* + h z^2 / 2 is both the event statistic and the next step's noise scale
        h, Ls = land.h[0], land.L_star
        Lfull = torch.full_like(z, Ls)
        prev = torch.addcmul(Lfull, z, z, value=0.5 * h)
        for k in range(K):
            torch.mul(prev, a2, out=amp).sqrt_().mul_(xi[k])
            z.mul_(1 - h * dt).add_(amp)
            torch.addcmul(Lfull, z, z, value=0.5 * h, out=out[k])
            prev = out[k]


def simulate_sgd_oracle(land, *, B: int, eta: float, n_chains: int, max_steps: int, seed: int,
                        noise_kind: str = "gaussian", noise: str = "eq13", crn: bool = False,
                        device="cpu", dtype=torch.float64, block: int = 64, engine: str = "auto",
                        pool: torch.Tensor | None = None) -> FirstPassage:
    """S4, the synthetic-SGD oracle: ``z <- z - eta (grad L + sqrt(2L) xi_B)`` with ``xi_B`` the
    mean of ``B`` zero-mean draws of covariance ``H*`` (``noise_kind``: ``"gaussian"``,
    ``"rademacher"``, i.e. ``H*^(1/2) r``, or ``"pool"``: ``H*^(1/2) p`` with ``p`` drawn uniformly
    from the rows of ``pool`` ``(M, P)`` after centring and whitening, e.g. the per-sample gradients
    of a data set at its minimum, which keeps the data's noise shape and only that);
    ``noise="exact"`` adds the rank-one regression term.
    It is Euler-Maruyama with ``dt = eta`` and a chosen noise law; the hitting step is the
    definition (no monitoring correction). Times are ``t = eta k``. ``engine``: as in
    :func:`simulate_sde` (the compiled kernel covers the 1-D Gaussian case)."""
    if int(B) != B or B < 1:
        raise ConfigError("B", f"must be an integer >= 1 (got {B})")
    return simulate_sde(land, B=B, eta=eta, dt=eta, n_chains=n_chains, t_max=max_steps * eta, seed=seed,
                        noise=noise, crn=crn, device=device, dtype=dtype, block=block, noise_kind=noise_kind,
                        engine=engine, pool=pool)


# --------------------------------------------------------------------------- S5
def minibatch_indices(g: torch.Generator, R: int, N: int, B: int, device="cpu") -> torch.Tensor:
    """``(R, B)`` indices, distinct within each row, uniform over ``B``-subsets of ``range(N)``:
    draw with replacement and redraw the rows that hold a duplicate (rare for ``B << N``)."""
    if not 1 <= B <= N:
        raise ConfigError("B", f"must satisfy 1 <= B <= N (got B={B}, N={N})")
    idx = torch.randint(0, N, (R, B), generator=g, device=device)
    if B == 1:
        return idx
    if 2 * B > N:  # dense regime: exact permutations
        return torch.argsort(torch.rand(R, N, generator=g, device=device), 1)[:, :B]
    while True:
        srt = idx.sort(1).values
        bad = (srt[:, 1:] == srt[:, :-1]).any(1)
        nb = int(bad.sum())
        if nb == 0:
            return idx
        idx[bad] = torch.randint(0, N, (nb, B), generator=g, device=device)


def simulate_sgd(model, *, B: int, eta: float, n_chains: int, max_steps: int, seed: int,
                 event: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor,
                 crn: bool = False, check_every: int = 1, block: int = 256) -> FirstPassage:
    """S5: genuine minibatch SGD ``theta <- theta - (eta / B) sum_{mu in batch} r_mu grad f_mu``
    (``L_B = (1/B) sum l_mu``, the paper's minibatch loss with its typo corrected) on ``R`` chains.

    ``model`` exposes ``residual_and_jac(theta (R,P), idx (R,B)) -> (r (R,B), J (R,B,P))`` and
    ``X`` (its data, for ``N`` and the device); ``event(theta) -> (R,) bool`` tests escape;
    ``start``: ``(P,)`` initial point (e.g. ``theta*``). Times are ``t = eta k``."""
    _check_common(B, eta, n_chains, max_steps * eta)
    if int(B) != B or B < 1:
        raise ConfigError("B", f"must be an integer >= 1 (got {B})")
    N = model.X.shape[0]
    device = model.X.device
    R = int(n_chains)
    g = torch.Generator(device=device).manual_seed(int(seed))
    theta = start.to(device=device, dtype=model.X.dtype).expand(R, -1).clone()
    alive = torch.arange(R, device=device)
    times = torch.full((R,), float("nan"), dtype=torch.float64)
    for k in range(1, max_steps + 1):
        idx = minibatch_indices(g, R if crn else alive.numel(), N, int(B), device)
        if crn:
            idx = idx[alive]
        r, J = model.residual_and_jac(theta, idx)
        theta = theta - (eta / B) * (r[..., None] * J).sum(1)
        if k % check_every == 0:
            hit = event(theta)
            if bool(hit.any()):
                times[alive[hit].cpu()] = k * eta
                keep = ~hit
                alive, theta = alive[keep], theta[keep]
                if alive.numel() == 0:
                    break
    ev = ~torch.isnan(times)
    times[~ev] = max_steps * eta
    return FirstPassage(times=times.numpy(), event=ev.numpy(), dt=float(eta), t_max=float(max_steps * eta))


# --------------------------------------------------------------------------- stationary samples
def sample_sde(land, *, B: float, eta: float, dt: float, n_chains: int, burn_in: float, n_samples: int,
               every: float, seed: int, dtype=torch.float64, device="cpu", block: int = 64,
               start: torch.Tensor | None = None) -> torch.Tensor:
    """Samples of Eq. 13 (no absorbing boundary): ``(n_samples, R, P)`` states at times
    ``burn_in + j * every``, ``j = 0..n_samples-1``. Used for the stationary law (T7, T8)."""
    _check_common(B, eta, n_chains, burn_in + every)
    R, P = int(n_chains), land.P
    z = land.start(R, dtype, device) if start is None else start.to(device=device, dtype=dtype).clone()
    hsq = torch.as_tensor(np.sqrt(land.hess_diag_full), dtype=dtype, device=device)
    rng = _Noise(R, P, block, seed, dtype, device, False, "gaussian", int(B))
    amp2 = 2 * eta / B * dt
    marks = [int(round((burn_in + j * every) / dt)) for j in range(n_samples)]
    out = torch.empty(n_samples, R, P, dtype=dtype, device=device)
    alive = torch.arange(R, device=device)
    step, j, xi, kb = 0, 0, None, block
    while j < n_samples:
        while j < n_samples and marks[j] == step:
            out[j] = z
            j += 1
        if j >= n_samples:
            break
        if kb == block:
            xi, kb = rng.draw(alive), 0
        L, grad = land.loss_grad(z)
        z = z - grad * dt + torch.sqrt(amp2 * L)[:, None] * hsq * xi[kb]
        kb += 1
        step += 1
    return out


def sample_sgd(model, *, B: int, eta: float, n_chains: int, burn_in_steps: int, n_samples: int,
               every: int, seed: int, start: torch.Tensor) -> torch.Tensor:
    """Genuine-SGD samples ``(n_samples, R, P)`` of ``theta`` every ``every`` steps after
    ``burn_in_steps`` (the paper samples every 100 iterations, Fig. 3a)."""
    N = model.X.shape[0]
    device = model.X.device
    g = torch.Generator(device=device).manual_seed(int(seed))
    theta = start.to(device=device, dtype=model.X.dtype).expand(int(n_chains), -1).clone()
    out = torch.empty(n_samples, int(n_chains), theta.shape[1], dtype=theta.dtype, device=device)
    total = burn_in_steps + (n_samples - 1) * every
    j = 0
    for k in range(total + 1):
        if k >= burn_in_steps and (k - burn_in_steps) % every == 0:
            out[j] = theta
            j += 1
            if j == n_samples:
                break
        idx = minibatch_indices(g, int(n_chains), N, int(B), device)
        r, J = model.residual_and_jac(theta, idx)
        theta = theta - (eta / B) * (r[..., None] * J).sum(1)
    return out
