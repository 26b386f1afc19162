"""Compiled first-passage kernels for the SDE of Eq. 13 (simulator S1 of ``docs/studies/escape-rate.md``) on families A, B
(double wells, any ``n``) and the level-set well, on the CPU.

The vectorised torch simulator (:func:`nnphys.escape.simulate.simulate_sde`) is bound by the generation
of normals (torch's CPU ``randn`` gives about 50-100 M/s) and by memory traffic: every step reads and
writes the whole chain vector several times. Here each chain lives in registers for its whole life
and draws its own normals as it goes:

- uniform bits: xoshiro256** (Blackman & Vigna 2018), one stream per chain, its state seeded by
  SplitMix64 from ``(seed, chain index)``; a chain's path therefore depends on nothing but the seed
  and its index (common random numbers across calls, threads and chain counts, for free);
- normals: the Marsaglia-Tsang ziggurat (J. Stat. Softw. 5(8), 2000) with 256 layers, 52-bit
  magnitudes and the layer index taken from separate bits (Doornik 2005), the exact tail
  by Marsaglia's 1964 method;
- time steps: the same Euler-Maruyama update as the torch kernel (``z <- z - L'(z) dt +
  sqrt(2 eta h* L(z) dt / B) xi``), checked against the event after every step;
- latency hiding: a thread advances ``LANES`` chains in turn, so consecutive steps of different
  chains overlap in the CPU pipeline; a lane whose chain has finished takes the next chain of its
  chunk. Chunks of chains are spread over the threads.

Only the step count of each chain leaves the kernel (``-1`` for a censored chain). This module
needs ``numba`` (the ``fast`` extra); :func:`available` says whether it is installed.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading

import numpy as np

try:  # optional: the torch path works without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

__all__ = ["available", "first_passage_steps", "normals", "ziggurat_tables", "LANES"]

LANES = 8
_CHUNK = 512
_LOCK = threading.Lock()  # numba's default threading layer must not be entered by two threads at once

# ziggurat constants for 256 layers of equal area V under exp(-x^2/2) (Marsaglia & Tsang 2000)
_ZIG_R = 3.6541528853610088
_ZIG_V = 0.00492867323399


def available() -> bool:
    """``True`` when ``numba`` is importable, so the compiled kernels can run."""
    return numba is not None


def ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(k, w, f)``, each ``(256,)``: acceptance thresholds on the 52-bit magnitude (uint64),
    the magnitude-to-``x`` scale of each layer, and ``exp(-x_i^2/2)`` at each layer's right edge
    ``x_i``. Layer 0 is the base strip with the tail; layer 255 has edge ``r``; layer 1 is the top."""
    m1 = 2.0 ** 52
    k = np.zeros(256, dtype=np.float64)
    w = np.zeros(256, dtype=np.float64)
    f = np.zeros(256, dtype=np.float64)
    dn = tn = _ZIG_R
    q = _ZIG_V / math.exp(-0.5 * dn * dn)
    k[0] = (dn / q) * m1
    k[1] = 0.0
    w[0] = q / m1
    w[255] = dn / m1
    f[0] = 1.0
    f[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = (dn / tn) * m1
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m1
    return np.floor(k).astype(np.uint64), w, f


if numba is not None:
    _U = np.uint64

    @njit(inline="always")
    def _rotl(x, k):
        return (x << _U(k)) | (x >> _U(64 - k))

    @njit(inline="always")
    def _splitmix(x):
        """SplitMix64 step: ``(new state, output)``."""
        x = x + _U(0x9E3779B97F4A7C15)
        z = x
        z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
        return x, z ^ (z >> _U(31))

    @njit(inline="always")
    def _seed_lane(st, j, seed, chain):
        x = _U(seed) * _U(0xD1B54A32D192ED03) ^ (_U(chain) + _U(0x632BE59BD9B4E019))
        for i in range(4):
            x, o = _splitmix(x)
            st[j, i] = o

    @njit(inline="always")
    def _next(st, j):
        """xoshiro256** output of lane ``j``'s stream."""
        s0, s1, s2, s3 = st[j, 0], st[j, 1], st[j, 2], st[j, 3]
        out = _rotl(s1 * _U(5), 7) * _U(9)
        t = s1 << _U(17)
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 45)
        st[j, 0], st[j, 1], st[j, 2], st[j, 3] = s0, s1, s2, s3
        return out

    @njit(inline="always")
    def _unif(st, j):
        """Uniform on ``(0, 1]`` (53 bits), never 0 so that ``log`` is finite."""
        return (float(_next(st, j) >> _U(11)) + 1.0) * (1.0 / 9007199254740992.0)

    @njit(inline="always")
    def _candidate(st, j, wt):
        """One 64-bit draw split into a layer index (8 bits), a sign (1 bit) and a 52-bit magnitude
        ``u``: ``(layer, u, x = +-u w[layer])``."""
        r = _next(st, j)
        idx = int(r & _U(0xFF))
        r >>= _U(8)
        u = r >> _U(1) & _U(0x000FFFFFFFFFFFFF)
        x = float(u) * wt[idx]
        if (r & _U(1)) != _U(0):
            x = -x
        return idx, u, x

    @njit
    def _normal_slow(st, j, idx, x, kt, wt, ft):
        """Ziggurat rejection branch (< 1 % of draws): the tail, or a wedge test, then retry."""
        while True:
            if idx == 0:  # tail beyond r (Marsaglia 1964)
                while True:
                    xx = -math.log(_unif(st, j)) / 3.6541528853610088
                    yy = -math.log(_unif(st, j))
                    if yy + yy >= xx * xx:
                        break
                return (3.6541528853610088 + xx) * (1.0 if x >= 0 else -1.0)
            if ft[idx] + _unif(st, j) * (ft[idx - 1] - ft[idx]) < math.exp(-0.5 * x * x):
                return x
            idx, u, x = _candidate(st, j, wt)
            if u < kt[idx]:
                return x

    @njit(inline="always")
    def _normal(st, j, kt, wt, ft):
        idx, u, x = _candidate(st, j, wt)
        if u < kt[idx]:
            return x
        return _normal_slow(st, j, idx, x, kt, wt, ft)

    @njit(cache=True)
    def _normals_kernel(n, seed, chain, kt, wt, ft):
        st = np.empty((1, 4), dtype=np.uint64)
        _seed_lane(st, 0, seed, chain)
        out = np.empty(n)
        for i in range(n):
            out[i] = _normal(st, 0, kt, wt, ft)
        return out

    @njit(parallel=True, cache=True)
    def _normal_sum_kernel(n_groups, n, seed, kt, wt, ft):
        """Sum of ``n_groups * n * LANES`` normals drawn lane by lane as the first-passage kernel
        draws them (the same parallel structure, which LLVM optimises better than a serial loop):
        the generator's throughput without the Euler step, for benchmarks."""
        out = np.zeros(n_groups)
        for c in prange(n_groups):
            st = np.empty((LANES, 4), dtype=np.uint64)
            for j in range(LANES):
                _seed_lane(st, j, seed, c * LANES + j)
            acc = 0.0
            for _ in range(n):
                for j in range(LANES):
                    acc += _normal(st, j, kt, wt, ft)
            out[c] = acc
        return out.sum()

    @njit(inline="always")
    def _start(z, lvl, j, z0, kind, L0, ca):
        for i in range(z.shape[1]):
            z[j, i] = 0.0
        z[j, 0] = z0
        lvl[j] = L0 + ca[0] * z0 * z0 if kind == 1 else 0.0

    @njit(parallel=True, cache=True)
    def _fp_kernel(kind, n_chains, seed, n_steps, z0, thr, iw, dL, L0, ca, cz, cn, kt, wt, ft, chunk):
        """Step counts of ``n_chains`` chains in ``P = ca.size`` dimensions (``-1``: censored).

        ``kind`` 0, double well (families A, B): ``u = iw z``, ``s = u_0^2 - 1``,
        ``L = L0 + dL (s^2 + sum_{i>=1} ca_i u_i^2)``; ``z_0 -= cz_0 u_0 s``, ``z_i -= cz_i u_i``;
        event ``z_0 >= thr``.
        ``kind`` 1, quadratic well: ``L = L0 + sum_i ca_i z_i^2``, ``z_i *= cz_i``; event ``L >= thr``.
        Both add ``sqrt(L) cn_i xi_i`` with ``L`` at the start of the step (Euler-Maruyama), so
        ``cn_i = sqrt(2 eta h_i dt / B)``; the chain starts at ``(z0, 0, ..., 0)``."""
        P = ca.size
        out = np.full(n_chains, -1, dtype=np.int64)
        n_chunks = (n_chains + chunk - 1) // chunk
        for c in prange(n_chunks):
            lo = c * chunk
            hi = min(lo + chunk, n_chains)
            st = np.empty((LANES, 4), dtype=np.uint64)
            z = np.empty((LANES, P))
            lvl = np.empty(LANES)
            k = np.zeros(LANES, dtype=np.int64)
            who = np.full(LANES, -1, dtype=np.int64)
            nxt = lo
            active = 0
            for j in range(LANES):
                if nxt < hi:
                    who[j] = nxt
                    _seed_lane(st, j, seed, nxt)
                    _start(z, lvl, j, z0, kind, L0, ca)
                    nxt += 1
                    active += 1
            while active > 0:
                for j in range(LANES):
                    if who[j] < 0:
                        continue
                    if kind == 0 and P == 1:  # family A: the hot 1-D case, kept free of inner loops
                        u0 = z[j, 0] * iw
                        s = u0 * u0 - 1.0
                        z0n = z[j, 0] - cz[0] * u0 * s + math.sqrt(L0 + dL * s * s) * cn[0] * _normal(st, j, kt, wt, ft)
                        z[j, 0] = z0n
                        hit = z0n >= thr
                    elif kind == 0:
                        u0 = z[j, 0] * iw
                        s = u0 * u0 - 1.0
                        G = s * s
                        for i in range(1, P):
                            ui = z[j, i] * iw
                            G += ca[i] * ui * ui
                        amp = math.sqrt(L0 + dL * G)
                        z0n = z[j, 0] - cz[0] * u0 * s + amp * cn[0] * _normal(st, j, kt, wt, ft)
                        for i in range(1, P):
                            z[j, i] += -cz[i] * (z[j, i] * iw) + amp * cn[i] * _normal(st, j, kt, wt, ft)
                        z[j, 0] = z0n
                        hit = z0n >= thr
                    else:
                        amp = math.sqrt(lvl[j])
                        lv = L0
                        for i in range(P):
                            zi = z[j, i] * cz[i] + amp * cn[i] * _normal(st, j, kt, wt, ft)
                            z[j, i] = zi
                            lv += ca[i] * zi * zi
                        lvl[j] = lv
                        hit = lv >= thr
                    kj = k[j] + 1
                    k[j] = kj
                    if hit or kj >= n_steps:
                        if hit:
                            out[who[j]] = kj
                        if nxt < hi:
                            who[j] = nxt
                            _seed_lane(st, j, seed, nxt)
                            _start(z, lvl, j, z0, kind, L0, ca)
                            k[j] = 0
                            nxt += 1
                        else:
                            who[j] = -1
                            active -= 1
        return out


_TABLES: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _tables():
    global _TABLES
    if _TABLES is None:
        _TABLES = ziggurat_tables()
    return _TABLES


def _require() -> None:
    if numba is None:
        from nnphys.errors import ConfigError

        raise ConfigError("engine", "the compiled kernel needs numba: pip install 'nnphys[fast]'")


def normals(n: int, seed: int, chain: int = 0) -> np.ndarray:
    """``(n,)`` standard normals of chain ``chain``'s stream (the draws the kernel uses), for tests."""
    _require()
    return _normals_kernel(int(n), int(seed), int(chain), *_tables())


def normal_throughput(n: int, seed: int = 0) -> float:
    """Sum of about ``n`` normals drawn in ``LANES`` interleaved streams on one thread (benchmarks
    time it against the first-passage kernel)."""
    _require()
    with _numba_threads(1):
        return float(_normal_sum_kernel(2, max(int(n) // (2 * LANES), 1), int(seed), *_tables()))


def first_passage_steps(kind: str, *, n_chains: int, seed: int, n_steps: int, thr: float, dt: float,
                        noise: np.ndarray, delta_L: float = 0.0, w: float = 1.0, L_star: float,
                        curv: np.ndarray, threads: int | None = None) -> np.ndarray:
    """``(n_chains,)`` int64: the step (``1..n_steps``) at which each chain first reaches the event,
    ``-1`` when it never does (censored). ``P = len(curv)`` coordinates.

    ``kind="double_well"`` (families A/B, start ``(-w, 0, ...)``): ``u = z / w``,
    ``L = L* + delta_L ((u_0^2 - 1)^2 + sum_{i>=1} curv_i u_i^2)``, event ``z_0 >= thr``
    (``curv_i = 4 h_i / h*``: the transverse coefficients of :class:`DoubleWell`, ``curv_0`` unused).
    ``kind="quadratic"`` (start 0): ``L = L* + sum_i curv_i z_i^2 / 2`` (``curv = h``), event ``L >= thr``.
    ``noise``: ``(P,)`` per-step noise scale per unit ``sqrt(L)``, ``sqrt(2 eta h_i dt / B)``.
    ``threads``: numba threads (default: torch's count when torch is loaded, else numba's)."""
    _require()
    kt, wt, ft = _tables()
    curv = np.ascontiguousarray(curv, dtype=np.float64)
    noise = np.ascontiguousarray(noise, dtype=np.float64)
    if kind == "double_well":
        iw = 1.0 / w
        code, z0, ca = 0, -w, curv.copy()
        cz = 2.0 * delta_L * iw * dt * curv
        cz[0] = 4.0 * delta_L * iw * dt
    elif kind == "quadratic":
        code, z0, iw, ca = 1, 0.0, 1.0, 0.5 * curv
        cz = 1.0 - curv * dt
    else:  # pragma: no cover - callers pass one of the two
        raise ValueError(kind)
    with _numba_threads(threads):
        return _fp_kernel(code, int(n_chains), int(seed), int(n_steps), float(z0), float(thr), float(iw),
                          float(delta_L), float(L_star), ca, cz, noise, kt, wt, ft, _CHUNK)


@contextlib.contextmanager
def _numba_threads(threads: int | None):
    """Run a kernel on ``threads`` numba threads, then restore numba's count *and torch's*: numba's
    OpenMP layer sets the process's OpenMP thread count, which torch reads, so restoring numba's
    default would otherwise leave the rest of a job (and the recorded thread count) at numba's
    default instead of the job's pinned torch threads.

    ``threads=None``: torch's thread count when torch is loaded (a job's pinned budget: numba's
    own default is every core, whatever the job was given), else numba's."""
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    threads = threads or torch_threads
    with _LOCK:
        old = numba.get_num_threads()
        if threads:
            numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(old)
            if torch is not None and torch.get_num_threads() != torch_threads:
                torch.set_num_threads(torch_threads)
