"""Input laws and the k-local / k-global targets of the depth-locality study.

The study guide ``docs/studies/depth-locality.md``, section "Definitions", states them. Papers: Mori & Ueda,
*Is deeper better? It depends on locality of relevant features* (arXiv 2005.12488) and
*Interplay between depth of neural networks and locality of target functions* (arXiv 2201.12082).
The exact target formulas are our reading [default]; their properties below are [derived].

Indices are cyclic, ``x_{i+d} = x_i``; windows are ``S_i = {i, ..., i+k-1} (mod d)`` and
``chi_S(x) = prod_{i in S} x_i``. With 1-based window positions:

- regression variant: ``f_loc(x) = chi_{S_b}(x)`` (``b = block_start``, default 1) and
  ``f_glob(x) = d^{-1/2} sum_{i=1}^d chi_{S_i}(x)`` (``norm="sqrt_d"``; ``norm="none"`` drops the factor).
  For ``d >= k+1`` the windows are distinct sets, so both have mean 0 and ``E f^2 = 1`` under both laws;
- sign variant: ``y = sgn f`` with the tie rule ``sgn(0) := +1``. On the cube ties of ``f_glob`` occur
  only for even ``d``; there the sign variant is refused unless ``tie_break`` is given explicitly.

Everything here is deterministic given a ``torch.Generator`` (``sample_inputs``) or an integer seed
(``make_dataset``, which always draws on the CPU so that a seed gives the same data on every device).

Public API (stable): ``sample_inputs``, ``k_local``, ``k_global``, ``sign_labels``, ``make_dataset``,
``TargetDataset``, ``window_sum_counts``, ``label_stats``, ``INPUT_LAWS``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Literal

import torch

from nnphys.errors import ConfigError

log = logging.getLogger(__name__)

INPUT_LAWS = ("cube", "gauss")
Law = Literal["cube", "gauss"]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_dk(d: int, k: int) -> None:
    if not isinstance(d, int) or d < 2:
        raise ConfigError("d", f"input dimension must be an integer >= 2 (got {d!r})")
    if not isinstance(k, int) or not 1 <= k <= d - 1:
        raise ConfigError(
            "k", f"must satisfy 1 <= k <= d - 1 so that the d windows are distinct (got k={k!r}, d={d})"
        )


def _check_law(law: str) -> None:
    if law not in INPUT_LAWS:
        raise ConfigError("input_law", f"must be one of {', '.join(INPUT_LAWS)} (got {law!r})")


def _check_x(x: torch.Tensor) -> int:
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ConfigError("x", "must be a tensor of shape (..., d)")
    if not x.is_floating_point():
        raise ConfigError("x", f"must be a floating tensor (got {x.dtype})")
    return int(x.shape[-1])


def _resolve_tie_break(d: int, sign: bool, tie_break: float | None) -> float:
    """The value given to ``sgn(0)``; even ``d`` needs it explicitly (module docstring)."""
    if tie_break is not None and tie_break not in (1, -1, 1.0, -1.0):
        raise ConfigError("tie_break", f"must be +1 or -1 (got {tie_break!r})")
    if sign and d % 2 == 0 and tie_break is None:
        raise ConfigError(
            "tie_break",
            f"the sign variant needs odd d (ties sgn(0) are common for even d, e.g. P(tie)=0.39 at "
            f"d=16, k=2); set tie_break=+1 or -1 explicitly to allow even d (got d={d})",
        )
    return 1.0 if tie_break is None else float(tie_break)


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def sample_inputs(
    n: int,
    d: int,
    law: str = "cube",
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw ``n`` i.i.d. inputs in dimension ``d``. Returns ``(n, d)``.

    ``law="cube"``: ``x_i`` uniform on ``{-1, +1}``; ``law="gauss"``: ``x_i ~ N(0, 1)``.
    ``generator`` is required for reproducibility (``None`` falls back to a fresh
    ``torch.Generator`` seeded 0, never the global RNG); the tensor is created on
    ``device`` (default: the generator's device).
    """
    _check_law(law)
    if not isinstance(n, int) or n < 0:
        raise ConfigError("n", f"must be an integer >= 0 (got {n!r})")
    if not isinstance(d, int) or d < 1:
        raise ConfigError("d", f"must be an integer >= 1 (got {d!r})")
    if generator is None:
        generator = torch.Generator(device=device or "cpu").manual_seed(0)
    dev = torch.device(device) if device is not None else generator.device
    if law == "cube":
        bits = torch.randint(0, 2, (n, d), generator=generator, device=dev)
        return (2 * bits - 1).to(dtype)
    return torch.randn((n, d), generator=generator, device=dev, dtype=dtype)


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


def sign_labels(f: torch.Tensor, tie_break: float = 1.0) -> torch.Tensor:
    """``sgn f`` with ``sgn(0) := tie_break``, same dtype/device as ``f``."""
    y = torch.sign(f)
    return torch.where(y == 0, torch.full_like(y, float(tie_break)), y)


def k_local(
    x: torch.Tensor,
    k: int,
    block_start: int = 1,
    *,
    sign: bool = False,
    tie_break: float | None = None,
) -> torch.Tensor:
    """k-local target ``chi_S(x) = prod_{j=0}^{k-1} x_{b+j}`` with cyclic 1-based start ``b``.

    ``x``: ``(..., d)``; returns ``(...)`` in ``x``'s dtype and device. ``sign=True`` returns the
    ±1 label ``sgn f`` (tie rule of :func:`sign_labels`; even ``d`` needs ``tie_break``, as for
    :func:`k_global`, because the sign variant is defined for odd ``d``).
    """
    d = _check_x(x)
    _check_dk(d, k)
    if not isinstance(block_start, int) or not 1 <= block_start <= d:
        raise ConfigError("block_start", f"must lie in 1..d={d} (got {block_start!r})")
    tb = _resolve_tie_break(d, sign, tie_break)
    idx = torch.tensor([(block_start - 1 + j) % d for j in range(k)], device=x.device)
    f = x.index_select(-1, idx).prod(dim=-1)
    return sign_labels(f, tb) if sign else f


def _window_products(x: torch.Tensor, k: int) -> torch.Tensor:
    """``(..., d)`` tensor of ``chi_{S_i}(x)``, ``i = 1..d`` (cyclic windows)."""
    p = x.clone()
    for j in range(1, k):
        p.mul_(torch.roll(x, shifts=-j, dims=-1))
    return p


def k_global(
    x: torch.Tensor,
    k: int,
    norm: str = "sqrt_d",
    *,
    sign: bool = False,
    tie_break: float | None = None,
) -> torch.Tensor:
    """k-global target ``f(x) = c_d sum_{i=1}^d prod_{j=0}^{k-1} x_{i+j}`` (indices mod d).

    ``c_d = d^{-1/2}`` for ``norm="sqrt_d"`` (then ``E f^2 = 1``), ``1`` for ``norm="none"``.
    ``x``: ``(..., d)``; returns ``(...)``. ``sign=True`` returns ``sgn f`` with ``sgn(0) := +1``;
    for even ``d`` it raises :class:`ConfigError` unless ``tie_break`` (+1 or -1) is given.
    """
    d = _check_x(x)
    _check_dk(d, k)
    if norm not in ("sqrt_d", "none"):
        raise ConfigError("global_norm", f"must be 'sqrt_d' or 'none' (got {norm!r})")
    tb = _resolve_tie_break(d, sign, tie_break)
    f = _window_products(x, k).sum(dim=-1)
    if norm == "sqrt_d":
        f = f / math.sqrt(d)
    return sign_labels(f, tb) if sign else f


# --------------------------------------------------------------------------------------------
# exact label statistics on the cube by a transfer matrix over the cycle
# --------------------------------------------------------------------------------------------


def window_sum_counts(d: int, k: int) -> dict[int, int]:
    """Exact law of ``S(x) = sum_{i=1}^d chi_{S_i}(x)`` for ``x`` uniform on ``{-1,1}^d``.

    Returns ``{s: #{x : S(x) = s}}`` (integers summing to ``2^d``). Cost ``O(4^k d^2)``: fix
    the first ``k-1`` coordinates, then sweep the cycle keeping the last ``k-1`` coordinates
    and the running sum, and close the cycle with the fixed ones.
    """
    _check_dk(d, k)
    m = k - 1
    counts: dict[int, int] = {}
    if m == 0:  # k = 1: S = sum of d independent signs
        for j in range(d + 1):
            counts[d - 2 * j] = math.comb(d, j)
        return counts
    for head in range(1 << m):  # bits of x_1..x_m (bit set -> -1)
        # state: (last m coordinates as a tuple of ±1, running sum) -> count
        first = tuple(-1 if head >> t & 1 else 1 for t in range(m))
        states: dict[tuple[tuple[int, ...], int], int] = {(first, 0): 1}
        for _ in range(m, d):  # add x_{m+1}, ..., x_d; each closes the window ending there
            nxt: dict[tuple[tuple[int, ...], int], int] = {}
            for (last, s), c in states.items():
                for v in (1, -1):
                    w = v * math.prod(last)
                    key = (last[1:] + (v,), s + w)
                    nxt[key] = nxt.get(key, 0) + c
            states = nxt
        for (last, s), c in states.items():
            # remaining m windows wrap around: they start at x_{d-m+1+t} and use the head
            seq = last + first
            extra = sum(math.prod(seq[t : t + k]) for t in range(m))
            counts[s + extra] = counts.get(s + extra, 0) + c
    return counts


def label_stats(
    d: int, k: int, target: str = "global", tie_break: float = 1.0, block_start: int = 1
) -> dict[str, float]:
    """Exact sign-label statistics on the cube [derived].

    Returns ``{"tie_rate": P(f=0), "p_plus": P(y=+1), "trivial_error": min(p, 1-p)}``
    for ``y = sgn f`` with ``sgn(0) := tie_break``. ``target`` is ``"local"`` or ``"global"``.
    """
    _check_dk(d, k)
    if target == "local":
        return {"tie_rate": 0.0, "p_plus": 0.5, "trivial_error": 0.5}
    if target != "global":
        raise ConfigError("target", f"must be 'local' or 'global' (got {target!r})")
    counts = window_sum_counts(d, k)
    tot = 2**d
    tie = counts.get(0, 0) / tot
    pos = sum(c for s, c in counts.items() if s > 0) / tot
    p_plus = pos + (tie if tie_break > 0 else 0.0)
    return {"tie_rate": tie, "p_plus": p_plus, "trivial_error": min(p_plus, 1 - p_plus)}


# --------------------------------------------------------------------------------------------
# data sets
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TargetDataset:
    """A synthetic train/test(/validation) set.

    ``x_*``: ``(n, d)``; ``y_*``: ``(n,)`` targets (regression values or ±1 labels); ``f_*``: the
    regression values ``f(x)`` behind the labels (equal to ``y_*`` for the regression variant).
    ``x_val``/``y_val``/``f_val`` have 0 rows when ``n_val=0``. ``info`` holds the logged
    diagnostics (JSON-able): ``n_dup_train_pairs``, ``n_test_in_train``, ``tie_rate_train``,
    ``tie_rate_test``, and for the sign variant ``p_plus_train``, ``p_plus_test``,
    ``trivial_error_test``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    f_train: torch.Tensor
    f_test: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    f_val: torch.Tensor
    info: dict[str, Any]


def duplicate_counts(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[int, int]:
    """``(# duplicate training pairs, # test rows that also lie in the training set)``.

    A row repeated ``c`` times contributes ``c (c-1) / 2`` pairs.
    """
    xt, xs = x_train.detach().cpu(), x_test.detach().cpu()
    if len(xt) == 0:
        return 0, 0
    d = xt.shape[1]
    if d <= 62 and bool((xt.abs() == 1).all()) and bool((xs.abs() == 1).all()):
        # cube: a row is a d-bit integer, so a 1-D unique suffices (much faster than unique(dim=0))
        w = 2 ** torch.arange(d, dtype=torch.int64)
        kt, ks = ((xt > 0).long() * w).sum(1), ((xs > 0).long() * w).sum(1)
        uniq, cnt = torch.unique(kt, return_counts=True)
        return int((cnt * (cnt - 1) // 2).sum()), int(torch.isin(ks, uniq).sum())
    uniq, cnt = torch.unique(xt, dim=0, return_counts=True)
    pairs = int((cnt * (cnt - 1) // 2).sum())
    if len(xs) == 0:
        return pairs, 0
    _, inv = torch.unique(torch.cat([uniq, xs]), dim=0, return_inverse=True)
    in_train = torch.isin(inv[len(uniq) :], inv[: len(uniq)])
    return pairs, int(in_train.sum())


def make_dataset(
    n_train: int,
    n_test: int,
    d: int,
    k: int,
    *,
    target: str = "local",
    law: str = "cube",
    variant: str = "regression",
    seed: int = 0,
    n_val: int = 0,
    block_start: int = 1,
    norm: str = "sqrt_d",
    tie_break: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> TargetDataset:
    """Draw a data set for the k-local or k-global target, deterministically from ``seed``.

    Inputs are drawn on the CPU from ``torch.Generator().manual_seed(seed)`` in the order train,
    test, validation, then moved to ``device``; so the same seed gives the same inputs for both
    targets, both variants, any ``n_val`` and any device. Test and validation points are fresh
    i.i.d. draws (population risk) [default].

    ``target``: ``"local"`` | ``"global"``; ``variant``: ``"regression"`` | ``"sign"``.
    Raises :class:`ConfigError` for ``d < 2``, ``k > d-1``, an unknown law/target/variant, or the
    sign variant at even ``d`` without ``tie_break``.
    """
    _check_law(law)
    _check_dk(d, k)
    if target not in ("local", "global"):
        raise ConfigError("target", f"must be 'local' or 'global' (got {target!r})")
    if variant not in ("regression", "sign"):
        raise ConfigError("target_kind", f"must be 'regression' or 'sign' (got {variant!r})")
    for name, v in (("n_train", n_train), ("n_test", n_test), ("n_val", n_val)):
        if not isinstance(v, int) or v < 0:
            raise ConfigError(name, f"must be an integer >= 0 (got {v!r})")
    sign = variant == "sign"
    tb = _resolve_tie_break(d, sign, tie_break)

    g = torch.Generator(device="cpu").manual_seed(int(seed))
    xs = [sample_inputs(n, d, law, g, dtype=dtype) for n in (n_train, n_test, n_val)]

    def fn(x: torch.Tensor) -> torch.Tensor:
        if target == "local":
            return k_local(x, k, block_start)
        return k_global(x, k, norm)

    fs = [fn(x) for x in xs]
    ys = [sign_labels(f, tb) if sign else f for f in fs]

    pairs, test_in_train = duplicate_counts(xs[0], xs[1]) if law == "cube" else (0, 0)
    info: dict[str, Any] = {
        "n_dup_train_pairs": pairs,
        "n_test_in_train": test_in_train,
        "tie_rate_train": float((fs[0] == 0).double().mean()) if n_train else 0.0,
        "tie_rate_test": float((fs[1] == 0).double().mean()) if n_test else 0.0,
    }
    if sign:
        p_tr = float((ys[0] > 0).double().mean()) if n_train else float("nan")
        p_te = float((ys[1] > 0).double().mean()) if n_test else float("nan")
        info.update(p_plus_train=p_tr, p_plus_test=p_te, trivial_error_test=min(p_te, 1 - p_te))
    log.info(
        "dataset d=%d k=%d %s/%s/%s seed=%d: %s", d, k, target, variant, law, seed, info
    )
    dev = torch.device(device)
    xs, ys, fs = ([t.to(dev) for t in ts] for ts in (xs, ys, fs))
    return TargetDataset(
        x_train=xs[0], y_train=ys[0], x_test=xs[1], y_test=ys[1], f_train=fs[0], f_test=fs[1],
        x_val=xs[2], y_val=ys[2], f_val=fs[2], info=info,
    )
