"""Analytic NNGP and NTK of deep fully connected ReLU nets, kernel regression, hypercube spectrum.

The definitions are in the study guide ``docs/studies/depth-locality.md``, section "Definitions"
(kernels; the bias rule). Background: Jacot, Gabriel, Hongler, *Neural tangent kernel* (arXiv
1806.07572); Arora et al., *On exact computation with an infinitely wide neural net* (arXiv 1904.11955).

Recursion (Jacot et al.; Arora et al.). ``Sigma^(1)(x,x') = sigma_w^2 x.x'/d + sigma_b^2``; for ``l = 1..L`` with
``q = Sigma^(l)(x,x)``, ``q' = Sigma^(l)(x',x')``, ``c = Sigma^(l)(x,x')``::

    s = sqrt(max(q q' - c^2, 0)),  theta = atan2(s, c)      [q q' shrunk by 4 d eps, see _tau]
    K^(l)    = (s + (pi - theta) c) / (2 pi)          # E relu(u) relu(v)
    Kdot^(l) = (pi - theta) / (2 pi)                  # E relu'(u) relu'(v)
    Sigma^(l+1) = sigma_w^2 K^(l) + sigma_b^2                          (NNGP)
    Theta^(l+1) = Sigma^(l+1) + sigma_w^2 Kdot^(l) Theta^(l)           (NTK, ntk param., Theta^(1) = Sigma^(1))
    Theta^(l+1)_std = n_l K^(l) + beta + sigma_w^2 Kdot^(l) Theta^(l)_std   (standard param., Theta^(1)_std = x.x' + beta)

The depth-``L`` kernels (``L`` hidden layers) are ``Sigma^(L+1)`` and ``Theta^(L+1)``.

Numerics. float64 by default (float32 accepted). The atan2 form avoids ``arccos`` of a rounded
ratio past ±1. Near ``rho = 1`` one ulp in ``c`` becomes ``sqrt(ulp) ~ 1e-8`` in ``Kdot``, so:
the diagonal ``q`` of every layer is pushed through the *same* elementwise operations (no fused
multiply-adds) as the off-diagonal entries, a Gram matrix gets its diagonal from ``|x|^2`` and is
made exactly symmetric, and ``q q'`` is shrunk by ``4 d eps`` (``_tau``) so that a duplicate pair
whose ``c`` and ``q`` were rounded differently still gets ``theta = 0``. The Gram matrix of one set
is computed on its upper triangle, in row blocks (peak memory ~ the output plus a few blocks). On
the hypercube (all entries ±1) every entry is a function of the integer ``x.x'`` alone, so the
recursion is run once on the ``d+1`` possible values and the Gram matrix is an exact table
look-up (``fast_cube=True``; the generic path is the reference). ReLU kernels are positively
homogeneous and ``sigma_w^2 = 2`` keeps ``q`` constant, so no rescaling between layers is needed.

Public API (stable): ``ntk_kernel``, ``hypercube_kernel``, ``hypercube_eigenvalues``,
``kernel_regression``, ``KernelRegression``, ``kernel_predict``, ``empirical_ntk``,
``kernel_target_alignment``.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch

from nnphys.errors import ConfigError

_INV_2PI = 1.0 / (2.0 * math.pi)
_GETS = ("ntk", "nngp")


# --------------------------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------------------------


class _Hyper(NamedTuple):
    depth: int
    sw2: float  # sigma_w^2
    sb2: float  # sigma_b^2 (0 without bias)
    beta: float  # trainable-bias indicator (standard param.)
    standard: bool
    width: int
    gets: tuple[str, ...]
    tau: float = 0.0  # s^2 = (1 - tau) q q' - c^2: absorbs rounding of c vs q (see _tau)


def _hyper(depth, sigma_w, sigma_b, bias, param, width, get) -> _Hyper:
    if not isinstance(depth, int) or depth < 0:
        raise ConfigError("depth", f"number of hidden layers must be an integer >= 0 (got {depth!r})")
    if param not in ("ntk", "standard"):
        raise ConfigError("param", f"must be 'ntk' or 'standard' (got {param!r})")
    if not sigma_w > 0:
        raise ConfigError("sigma_w", f"must be > 0 (got {sigma_w!r})")
    standard = param == "standard"
    if sigma_b is None:
        sigma_b = 0.0 if standard else math.sqrt(0.1)
    if sigma_b < 0:
        raise ConfigError("sigma_b", f"must be >= 0 (got {sigma_b!r})")
    if standard and (not isinstance(width, int) or width < 1):
        raise ConfigError("width", f"the standard parameterisation needs the hidden width n_l >= 1 (got {width!r})")
    gets = (get,) if isinstance(get, str) else tuple(get)
    if not gets or any(g not in _GETS for g in gets):
        raise ConfigError("get", f"must be 'ntk', 'nngp' or a tuple of them (got {get!r})")
    return _Hyper(
        depth=depth,
        sw2=float(sigma_w) ** 2,
        sb2=float(sigma_b) ** 2 if bias else 0.0,
        beta=1.0 if bias else 0.0,
        standard=standard,
        width=int(width or 0),
        gets=gets,
    )


# --------------------------------------------------------------------------------------------
# the recursion on a block (in place, single-op kernels only: no fused multiply-add, so the
# diagonal vector and a duplicate off-diagonal entry see bit-identical arithmetic)
# --------------------------------------------------------------------------------------------


def _relu_layer(c: torch.Tensor, theta: torch.Tensor | None, qq: torch.Tensor, s: torch.Tensor,
                th: torch.Tensor, h: _Hyper) -> None:
    """One layer: ``c <- Sigma^(l+1)``, ``theta <- Theta^(l+1)`` in place.

    ``c``: ``Sigma^(l)`` block; ``qq``: ``q q'`` broadcastable to ``c`` (a 0-dim tensor when every
    ``q`` is equal); ``s``, ``th``: scratch of ``c``'s shape. Uses
    ``Sigma^(l+1) = c t + sigma_w^2 s / 2pi + sigma_b^2`` with ``t = sigma_w^2 Kdot``.
    """
    torch.mul(c, c, out=s)
    torch.sub(qq, s, out=s)  # q q' - c^2
    s.clamp_(min=0.0).sqrt_()
    torch.atan2(s, c, out=th)
    th.mul_(-h.sw2 * _INV_2PI).add_(0.5 * h.sw2)  # t = sigma_w^2 (pi - theta) / 2pi
    s.mul_(h.sw2 * _INV_2PI)
    c.mul_(th).add_(s)  # sigma_w^2 K
    if theta is not None:
        theta.mul_(th)  # sigma_w^2 Kdot Theta^(l)
        if h.standard:
            theta.add_(c, alpha=h.width / h.sw2)  # + n_l K
            if h.beta:
                theta.add_(h.beta)
    if h.sb2:
        c.add_(h.sb2)  # Sigma^(l+1)
    if theta is not None and not h.standard:
        theta.add_(c)


def _diag_sequence(q1: torch.Tensor, h: _Hyper) -> list[torch.Tensor]:
    """``[Sigma^(l)(x,x) for l = 1..L]`` via the same elementwise ops as the off-diagonal entries."""
    out = [q1]
    c = q1.clone()
    s, th = torch.empty_like(c), torch.empty_like(c)
    nn = h._replace(standard=False, width=0)  # theta not needed
    for _ in range(h.depth - 1):
        _relu_layer(c, None, c * c * (1.0 - h.tau), s, th, nn)
        out.append(c.clone())
    return out


def _recursion_block(c: torch.Tensor, theta: torch.Tensor | None, q_rows: list[torch.Tensor],
                     q_cols: list[torch.Tensor] | None, h: _Hyper, store: Callable[[int, torch.Tensor | None, torch.Tensor], None]
                     ) -> None:
    """Run layers 1..L on a block; ``store(l, theta, c)`` is called for depth l = 0..L.

    ``q_rows[l]``: ``(B,)`` and ``q_cols[l]``: ``(N2,)`` diagonals of ``Sigma^(l+1)`` for a ``(B, N2)``
    block ``c``; for a 1-D ``c`` (cube table) both are 0-dim. ``q_cols=None``: every norm is
    equal and ``q_rows[l]`` is the 0-dim product ``q q'`` itself.
    """
    store(0, theta, c)
    if q_cols is None:
        q_rows = [q * (1.0 - h.tau) for q in q_rows]
    else:  # sqrt on both sides keeps q_i q_j symmetric bit for bit
        a = math.sqrt(1.0 - h.tau)
        q_rows, q_cols = [q * a for q in q_rows], [q * a for q in q_cols]
    s, th = torch.empty_like(c), torch.empty_like(c)
    qq = torch.empty_like(c) if q_cols is not None else None
    for l in range(h.depth):
        if q_cols is None:  # q_rows[l] is q q' itself (0-dim)
            _relu_layer(c, theta, q_rows[l], s, th, h)
            store(l + 1, theta, c)
            continue
        if c.dim() == 2:
            torch.mul(q_rows[l].unsqueeze(-1), q_cols[l].unsqueeze(-2), out=qq)
        else:
            qq.copy_(q_rows[l] * q_cols[l])
        _relu_layer(c, theta, qq, s, th, h)
        store(l + 1, theta, c)


def _each_block(fn: Callable[[tuple[int, int, int]], None], tasks: list[tuple[int, int, int]],
                device: torch.device) -> None:
    """``fn(task)`` for every block. On a CPU with ``n = torch.get_num_threads() > 1`` the blocks
    run on ``n`` Python threads with torch's intra-op pool at one thread, then the pool size is
    restored. The recursion is a dozen elementwise ops per layer on ~1 MB blocks: run as intra-op
    parallel regions, each op is one OpenMP fork/join, ~10^4 per Gram matrix, and on a busy
    machine one late thread stalls every one of them. Whole blocks per thread (torch ops release
    the GIL) need no join until the end. Elementwise results do not depend on the thread count."""
    n = torch.get_num_threads()
    if device.type != "cpu" or n <= 1 or len(tasks) <= 1:
        for t in tasks:
            fn(t)
        return
    from concurrent.futures import ThreadPoolExecutor

    torch.set_num_threads(1)
    try:
        # OpenMP's thread count is per thread: each worker sets its own, or its ops fork teams of n
        with ThreadPoolExecutor(max_workers=min(n, len(tasks)), initializer=torch.set_num_threads,
                                initargs=(1,)) as pool:
            for _ in pool.map(fn, tasks):
                pass
    finally:
        torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------
# public kernels
# --------------------------------------------------------------------------------------------


def _tau(d: int, dtype: torch.dtype) -> float:
    """Relative shrink of ``q q'`` in ``s^2 = q q' - c^2``.

    For a duplicate pair, ``c = x.x/d`` (from a matmul) and ``q = |x|^2/d`` (a row sum) may differ by
    up to ``(d-1) eps`` each; then ``q q' - c^2`` is ``±4 d eps q^2`` instead of 0 and ``s ~ q sqrt(eps)``
    would put a ~1e-8 error into ``Kdot``. Shrinking ``q q'`` by ``tau = 4 d eps`` sends such pairs to
    ``theta = 0`` exactly; for any other pair it moves ``s^2`` by ``tau q q'``, the same order as the
    rounding of ``c^2`` itself.
    """
    return 4.0 * max(d, 1) * torch.finfo(dtype).eps


def _is_cube(x: torch.Tensor) -> bool:
    return bool(x.numel() > 0 and (x.abs() == 1).all())


def ntk_kernel(
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    depth: int,
    sigma_w: float = math.sqrt(2.0),
    sigma_b: float | None = None,
    bias: bool = True,
    param: str = "ntk",
    width: int | None = None,
    get: str | Sequence[str] = "ntk",
    all_depths: bool = False,
    block_size: int | None = None,
    dtype: torch.dtype | None = torch.float64,
    fast_cube: bool = True,
):
    """Analytic NTK / NNGP of a depth-``depth`` FC ReLU net (the recursion of the module docstring).

    Args:
        x1: ``(N1, d)`` inputs; ``x2``: ``(N2, d)`` or ``None`` (Gram matrix of ``x1``).
        depth: number of hidden layers ``L >= 0`` (0 gives the linear kernels ``Sigma^(1)``, ``Theta^(1)``).
        sigma_w, sigma_b: weight and bias *standard deviations* (``sigma_w^2 = 2`` He default;
            ``sigma_b = None`` means ``sqrt(0.1)`` in the ntk and 0 in the standard parameterisation).
        bias: trainable hidden/output biases (``beta``); ``False`` also sets ``sigma_b^2 := 0`` (the bias rule).
        param: ``"ntk"`` or ``"standard"``; the standard NTK needs ``width`` (``n_l = H``).
        get: ``"ntk"``, ``"nngp"`` or a tuple of both (the result is then a tuple in that order).
        all_depths: return every depth ``0..L`` from the one pass, stacked as ``(L+1, N1, N2)``
            (index = depth).
        block_size: rows per block (default: adaptive, about min(2^17, N1 N2 / 16) entries per block).
        dtype: computation/output dtype (default float64; ``None`` keeps ``x1``'s floating dtype).
        fast_cube: use the exact look-up path when every entry of ``x1`` and ``x2`` is ±1.

    Returns:
        ``(N1, N2)`` (or ``(L+1, N1, N2)``) tensor(s) on ``x1.device``.
    """
    h = _hyper(depth, sigma_w, sigma_b, bias, param, width, get)
    if not isinstance(x1, torch.Tensor) or x1.dim() != 2:
        raise ConfigError("x1", "must be a tensor of shape (N1, d)")
    if dtype is None:
        dtype = x1.dtype if x1.is_floating_point() else torch.float64
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError("dtype", f"must be float32 or float64 (got {dtype})")
    dev = x1.device
    xa = x1.to(dtype)
    xb = xa if x2 is None else x2.to(device=dev, dtype=dtype)
    # x2 equal to x1: take the Gram path (exact symmetry and diagonal)
    sym = x2 is None or (xb.shape == xa.shape and bool(torch.equal(xa, xb)))
    xb = xa if sym else xb
    if xb.dim() != 2 or xb.shape[1] != xa.shape[1]:
        raise ConfigError("x2", f"must have shape (N2, {xa.shape[1]}) (got {tuple(xb.shape)})")
    n1, d = xa.shape
    n2 = xb.shape[0]
    if d < 1:
        raise ConfigError("x1", "needs d >= 1 features")
    h = h._replace(tau=_tau(d, dtype))
    user_block = block_size is not None
    # ~1 MB (float64) scratch per buffer keeps a block in cache; at most 1/16 of the output so that
    # the few scratch buffers stay small next to it
    block_elems = max(1 << 12, min(1 << 17, n1 * n2 // 16))
    if block_size is None:
        block_size = max(1, min(n1, block_elems // max(n2, 1)))
    elif not isinstance(block_size, int) or block_size < 1:
        raise ConfigError("block_size", f"must be an integer >= 1 (got {block_size!r})")

    want_ntk, want_nngp = "ntk" in h.gets, "nngp" in h.gets
    lead = (h.depth + 1,) if all_depths else ()
    out_ntk = torch.empty(lead + (n1, n2), dtype=dtype, device=dev) if want_ntk else None
    out_nngp = torch.empty(lead + (n1, n2), dtype=dtype, device=dev) if want_nngp else None

    if fast_cube and _is_cube(xa) and (sym or _is_cube(xb)):
        tab_ntk, tab_nngp = _cube_tables(d, h, dtype, dev)
        for r0 in range(0, n1, block_size):
            r1 = min(n1, r0 + block_size)
            g = xa[r0:r1] @ xb.T  # exact integers d - 2j
            idx = g.neg_().add_(d).mul_(0.5).long().view(-1)  # exact halves of even integers
            for tab, out in ((tab_ntk, out_ntk), (tab_nngp, out_nngp)):
                if out is None:
                    continue
                if all_depths:
                    out[:, r0:r1] = torch.index_select(tab, 1, idx).view(h.depth + 1, r1 - r0, n2)
                else:
                    torch.index_select(tab[h.depth], 0, idx, out=out[r0:r1].view(-1))
        return _pack(h.gets, out_ntk, out_nngp)

    # generic path
    sq1 = (xa * xa).sum(-1)
    sq2 = sq1 if sym else (xb * xb).sum(-1)
    q_rows = _diag_sequence(sq1.div(d).mul_(h.sw2).add_(h.sb2), h)
    q_cols = q_rows if sym else _diag_sequence(sq2.div(d).mul_(h.sw2).add_(h.sb2), h)
    # equal norms (cube, sphere): q q' is one number per layer, no outer product needed
    q0 = q_rows[0][:1]
    const_q = bool((q_rows[0] == q0).all()) and bool((q_cols[0] == q0).all())
    tasks = []  # (r0, r1, c0): disjoint pieces of the output, in row order
    r0 = 0
    while r0 < n1:
        c0 = r0 if sym else 0  # symmetric: upper triangle (columns >= r0), mirrored below
        rows = block_size if user_block else max(1, block_elems // max(n2 - c0, 1))
        r1 = min(n1, r0 + rows)
        tasks.append((r0, r1, c0))
        r0 = r1

    def block(task: tuple[int, int, int]) -> None:
        r0, r1, c0 = task
        g = xa[r0:r1] @ xb[c0:].T
        if sym:  # exact symmetry, and a diagonal equal to q bit for bit (see module docstring)
            sqr = g[:, : r1 - r0]
            up = torch.triu(sqr, 1)
            sqr.copy_(up + up.T)
            sqr.diagonal().copy_(sq1[r0:r1])
        c = g.div(d).mul_(h.sw2).add_(h.sb2)
        theta = None
        if want_ntk:
            theta = (g + h.beta) if h.standard else c.clone()

        def store(l, t, cc):
            if not all_depths and l != h.depth:
                return
            for out, val in ((out_ntk, t), (out_nngp, cc)):
                if out is None:
                    continue
                o = out[l] if all_depths else out
                o[r0:r1, c0:] = val
                if sym:  # rows below this block, columns of this block: no other block writes there
                    o[r1:, r0:r1] = val[:, r1 - r0 :].T

        if const_q:
            qr = [(q[0] * q[0]).reshape(()) for q in q_rows]
            _recursion_block(c, theta, qr, None, h, store)
        else:
            _recursion_block(c, theta, [q[r0:r1] for q in q_rows], [q[c0:] for q in q_cols], h, store)

    _each_block(block, tasks, dev)
    return _pack(h.gets, out_ntk, out_nngp)


def _pack(gets, out_ntk, out_nngp):
    res = tuple(out_ntk if g == "ntk" else out_nngp for g in gets)
    return res[0] if len(res) == 1 else res


def _cube_tables(d: int, h: _Hyper, dtype, device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(L+1, d+1)`` tables of Theta^(l+1), Sigma^(l+1) at ``x.x' = d - 2j``, ``j = 0..d``, ``|x|^2 = d``.

    Uses the same operations as the generic path, so both paths agree to rounding of atan2.
    """
    h = h._replace(tau=_tau(d, dtype))
    g = torch.arange(d, -d - 1, -2, dtype=dtype, device=device)  # x.x' = d - 2j
    c = g.div(d).mul_(h.sw2).add_(h.sb2)
    q = torch.full((1,), float(d), dtype=dtype, device=device).div_(d).mul_(h.sw2).add_(h.sb2)
    qs = _diag_sequence(q, h)
    want_ntk, want_nngp = "ntk" in h.gets, "nngp" in h.gets
    tab_ntk = torch.empty(h.depth + 1, d + 1, dtype=dtype, device=device) if want_ntk else None
    tab_nngp = torch.empty(h.depth + 1, d + 1, dtype=dtype, device=device) if want_nngp else None
    theta = ((g + h.beta) if h.standard else c.clone()) if want_ntk else None

    def store(l, t, cc):
        if tab_ntk is not None:
            tab_ntk[l] = t
        if tab_nngp is not None:
            tab_nngp[l] = cc

    _recursion_block(c, theta, [qq[0] for qq in qs], [qq[0] for qq in qs], h, store)
    return tab_ntk, tab_nngp


def hypercube_kernel(
    d: int,
    *,
    depth: int,
    sigma_w: float = math.sqrt(2.0),
    sigma_b: float | None = None,
    bias: bool = True,
    param: str = "ntk",
    width: int | None = None,
    get: str = "ntk",
    all_depths: bool = False,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Kernel values ``kappa(rho_j)`` on the cube, ``rho_j = 1 - 2j/d``, ``j = 0..d`` (guide: "Definitions", kernels).

    Returns ``(d+1,)`` (or ``(L+1, d+1)`` with ``all_depths``). Same arguments as :func:`ntk_kernel`,
    with a single ``get``.
    """
    if not isinstance(d, int) or d < 1:
        raise ConfigError("d", f"must be an integer >= 1 (got {d!r})")
    if get not in _GETS:
        raise ConfigError("get", f"must be 'ntk' or 'nngp' (got {get!r})")
    h = _hyper(depth, sigma_w, sigma_b, bias, param, width, get)
    tab_ntk, tab_nngp = _cube_tables(d, h, dtype, torch.device(device))
    tab = tab_ntk if get == "ntk" else tab_nngp
    return tab if all_depths else tab[depth]


def krawtchouk(d: int) -> torch.Tensor:
    """``(d+1, d+1)`` integer matrix ``M[k, j] = sum_s (-1)^s C(k,s) C(d-k, j-s)`` (guide: "Definitions", kernels), float64.

    Entries are exact (``|M| <= 2^d``; exact in float64 for ``d <= 53``).
    """
    rows = []
    for k in range(d + 1):
        rows.append([
            sum((-1) ** s * math.comb(k, s) * math.comb(d - k, j - s) for s in range(0, min(k, j) + 1))
            for j in range(d + 1)
        ])
    return torch.tensor(rows, dtype=torch.float64)


def hypercube_eigenvalues(kappa, d: int, **kernel_kwargs) -> torch.Tensor:
    """Eigenvalues ``lambda_k`` (``k = 0..d``) of a dot-product kernel under the uniform cube law (guide: "Definitions", kernels).

    ``lambda_k = 2^-d sum_j kappa(1 - 2j/d) K_k(j)``, multiplicity ``C(d, k)``; the Walsh function
    ``chi_S`` with ``|S| = k`` is its eigenfunction. ``kappa`` is either

    - an ``int`` depth: the analytic kernel of :func:`hypercube_kernel` with ``kernel_kwargs``
      (``get``, ``sigma_w``, ``sigma_b``, ``bias``, ``param``, ``width``);
    - a callable mapping a float64 tensor of ``rho`` values to kernel values;
    - a sequence / tensor of the ``d+1`` values ``kappa(1 - 2j/d)``.

    Returns a float64 ``(d+1,)`` tensor on the CPU. ``sum_k C(d,k) lambda_k = kappa(1)``.
    """
    if not isinstance(d, int) or d < 1 or d > 53:
        raise ConfigError("d", f"must be an integer in 1..53 (got {d!r})")
    if isinstance(kappa, bool):
        raise ConfigError("kappa", "must be a depth, a callable or d+1 values")
    if isinstance(kappa, int):
        vals = hypercube_kernel(d, depth=kappa, **kernel_kwargs)
    elif callable(kappa):
        rho = 1.0 - 2.0 * torch.arange(d + 1, dtype=torch.float64) / d
        vals = torch.as_tensor(kappa(rho), dtype=torch.float64)
    else:
        vals = torch.as_tensor(kappa, dtype=torch.float64)
    vals = vals.detach().to("cpu", torch.float64).reshape(-1)
    if vals.numel() != d + 1:
        raise ConfigError("kappa", f"needs d+1 = {d + 1} values (got {vals.numel()})")
    return krawtchouk(d) @ vals / 2.0**d


# --------------------------------------------------------------------------------------------
# kernel ridge(less) regression
# --------------------------------------------------------------------------------------------


class KernelRegression(NamedTuple):
    """Predictions ``(N_test,)`` or ``(N_test, m)`` and the absolute ridge ``lambda`` actually used."""

    pred: torch.Tensor
    jitter: float
    #: ``lambda / (tr K / N)``, the relative value that was used
    jitter_rel: float


def kernel_regression(
    K_train: torch.Tensor,
    K_test_train: torch.Tensor,
    y: torch.Tensor,
    *,
    ridge: float | None = None,
    rel_jitter: float = 1e-8,
    max_rel_jitter: float = 1e-4,
) -> KernelRegression:
    """Kernel ridge(less) regression ``f(x) = K(x, X) [K(X, X) + lambda I]^-1 Y``.

    ``ridge`` is *relative*: ``lambda = ridge * tr K / N`` (the study's ablation grid
    ``{1e-6, 1e-4, 1e-2, 1}``); ``ridge=None`` is the ridgeless predictor with the jitter
    ``lambda = rel_jitter * tr K / N``. Cholesky in float64; on failure ``lambda`` is multiplied by
    10 until ``max(max_rel_jitter, ridge) * tr K / N``; beyond that ``torch.linalg.LinAlgError``.

    Shapes: ``K_train (N, N)``, ``K_test_train (M, N)``, ``y (N,)`` or ``(N, m)`` (several targets
    share one factorisation). Returns :class:`KernelRegression` (``pred, jitter, jitter_rel``);
    ``pred`` has ``y``'s trailing shape, float64, on ``K_train``'s device.
    """
    if K_train.dim() != 2 or K_train.shape[0] != K_train.shape[1]:
        raise ConfigError("K_train", f"must be square (N, N) (got {tuple(K_train.shape)})")
    n = K_train.shape[0]
    if K_test_train.dim() != 2 or K_test_train.shape[1] != n:
        raise ConfigError("K_test_train", f"must have shape (M, {n}) (got {tuple(K_test_train.shape)})")
    if y.shape[0] != n or y.dim() > 2:
        raise ConfigError("y", f"must have shape ({n},) or ({n}, m) (got {tuple(y.shape)})")
    rel = rel_jitter if ridge is None else ridge
    if not rel >= 0:
        raise ConfigError("ridge", f"must be >= 0 (got {rel!r})")
    K = K_train.to(torch.float64)
    Y = y.to(device=K.device, dtype=torch.float64)
    Y2 = Y.unsqueeze(-1) if Y.dim() == 1 else Y
    scale = float(K.diagonal().sum()) / n
    cap = max(max_rel_jitter, rel)
    cur = rel
    eye = torch.eye(n, dtype=K.dtype, device=K.device)
    while True:
        L, info = torch.linalg.cholesky_ex(K + (cur * scale) * eye)
        if int(info) == 0:
            break
        nxt = cur * 10 if cur > 0 else 1e-12
        if nxt > cap * (1 + 1e-9):
            raise torch.linalg.LinAlgError(
                f"kernel_regression: Cholesky failed up to relative jitter {cur:g} (tr/N = {scale:g})"
            )
        cur = nxt
    alpha = torch.cholesky_solve(Y2, L)
    pred = K_test_train.to(device=K.device, dtype=torch.float64) @ alpha
    if Y.dim() == 1:
        pred = pred.squeeze(-1)
    return KernelRegression(pred, cur * scale, cur)


def kernel_predict(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    *,
    depths: Sequence[int],
    get: str = "ntk",
    ridge: float | None = None,
    rel_jitter: float = 1e-8,
    **kernel_kwargs,
) -> dict[int, KernelRegression]:
    """NTK or NNGP regression at several depths from one pass of the recursion.

    Returns ``{L: KernelRegression}`` for each ``L`` in ``depths``.
    """
    if get not in _GETS:
        raise ConfigError("get", f"must be 'ntk' or 'nngp' (got {get!r})")
    depths = list(depths)
    if not depths:
        raise ConfigError("depths", "must not be empty")
    lmax = max(depths)
    ktr = ntk_kernel(x_train, depth=lmax, get=get, all_depths=True, **kernel_kwargs)
    kte = ntk_kernel(x_test, x_train, depth=lmax, get=get, all_depths=True, **kernel_kwargs)
    return {L: kernel_regression(ktr[L], kte[L], y_train, ridge=ridge, rel_jitter=rel_jitter) for L in depths}


# --------------------------------------------------------------------------------------------
# empirical NTK of a finite net (for checks)
# --------------------------------------------------------------------------------------------


def empirical_ntk(model: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """Empirical NTK ``Theta(x, x') = sum_p df(x)/dp df(x')/dp`` of a finite net via ``torch.func``.

    ``model`` maps ``(N, d)`` to ``(N,)`` or ``(N, 1)`` (scalar output) or ``(N, m)``. Only
    parameters with ``requires_grad`` count. Returns ``(N1, N2)`` for scalar outputs, else
    ``(N1, N2, m, m)``, in the parameters' dtype on their device.

    The sum over parameters is taken one parameter tensor at a time, so the memory peak is the
    Jacobian of the largest tensor, ``N * m * max_p numel(p)``, not of all ``P`` parameters at
    once (``N * m * P``: 8.6 GB for 64 points of a depth-8, width-2048 net). The model is applied to
    one input at a time (``vmap``), so a model whose outputs couple the inputs of a batch (batch
    norm in training mode) is not supported.
    """
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def jac(name: str, x: torch.Tensor) -> torch.Tensor:
        def f(p, xi):  # one input's outputs (m,): per-sample Jacobians cost one batched backward,
            out = functional_call(model, ({**params, name: p}, buffers), (xi.unsqueeze(0),))
            return out.reshape(-1)  # where jacrev of the batch output would take N of them

        j = vmap(jacrev(f), in_dims=(None, 0))(params[name], x)  # (N, m, *shape)
        return j.reshape(j.shape[0], j.shape[1], -1)

    k = None
    for name in params:
        j1 = jac(name, x1)
        j2 = j1 if x2 is None else jac(name, x2)
        part = torch.einsum("apk,bqk->abpq", j1, j2)
        k = part if k is None else k + part
        del j1, j2
    if k is None:
        raise ConfigError("model", "has no parameter with requires_grad")
    return k[..., 0, 0] if k.shape[-1] == 1 else k


def kernel_target_alignment(k: torch.Tensor, y: torch.Tensor) -> float:
    """Kernel-target alignment ``A(K, y) = y^T K y / (||K||_F ||y||^2)`` (Cristianini et al., *On
    kernel-target alignment*, NIPS 2001: the alignment of ``K`` with ``y y^T``), in ``[-1, 1]``.

    ``k``: ``(N, N)``; ``y``: ``(N,)``. ``A = 1`` iff ``K`` is a positive multiple of ``y y^T``;
    ``A(I, y) = 1 / sqrt(N)``. Computed in float64."""
    k, y = k.double(), y.double().reshape(-1)
    if k.shape != (y.numel(), y.numel()):
        raise ConfigError("k", f"must be (N, N) with N = len(y) = {y.numel()} (got {tuple(k.shape)})")
    return float(y @ k @ y / (torch.linalg.matrix_norm(k) * (y @ y)))
