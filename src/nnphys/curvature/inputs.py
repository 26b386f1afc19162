"""The input and output conventions shared by the practitioner tools (``gradient_noise``,
``decoupling_check``, ``hessian_top`` / ``hessian_trace`` / ``hessian_density``,
``escape_outlook``, ``hessian_vs_ggn`` and ``NoiseEnhancedSGD.step_loader``).

One call shape::

    tool(model, loss_fn, data, *, k=..., ...)

- ``data``: one batch ``(X, y)`` of tensors with a leading sample axis ``N``, or a **re-iterable**
  of ``(x, y)`` batches (a ``DataLoader``, a list of pairs). The curvature tools iterate over it once
  per matrix-vector product, so a one-shot iterator or generator is refused (it would be exhausted
  after the first pass). A batch has exactly two items: a third (sample weights, indices) is refused
  rather than silently dropped.
- ``loss_fn(output, target) -> (n,)``: the per-sample losses ``ℓ_n`` (``reduction="none"``),
  ``L = (1/N) Σ_n ℓ_n``. A scalar (a mean- or sum-reduced loss) is refused with a message naming
  ``loss_fn``; :class:`~nnphys.noise_enhancement.NoiseEnhancedSGD` accepts the same per-sample loss and averages
  it, so one ``loss_fn`` serves every tool.
- dtypes are never changed: a floating input ``X`` whose dtype differs from the model's floating
  parameters (float64 data, float32 model) is refused, naming both dtypes.
- vocabulary: ``k`` is the number of eigenpairs / eigenvalues, ``n_matvec`` a number of
  matrix-vector products (``max_matvec`` a cap on it). The old names (``top_k``, ``max_iter``,
  ``trace_matvecs``, a positional ``k``, the positional ``(X, y)`` form of the gradient-noise
  tools) still work and emit a ``DeprecationWarning``.

Result objects derive from :class:`Result`: ``repr`` is a short summary (at most ten lines) and
``to_dict()`` gives plain Python numbers and lists.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

from nnphys.errors import ConfigError

_MISSING = object()


class DataTypeError(ConfigError, TypeError):
    """``data`` (or a batch of it) has the wrong kind: a one-shot iterator, a 3-tuple, a single
    tensor, a dtype that does not match the model. A :class:`ConfigError` (the CLI prints one
    line and exits 2) that is also a ``TypeError``."""


# ----------------------------------------------------------------------------- data


def _describe(b: Any) -> str:
    if isinstance(b, (tuple, list)):
        inner = ", ".join(f"tensor{tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
                          for t in b)
        return f"a {type(b).__name__} of {len(b)} items ({inner})"
    return f"a {type(b).__name__}"


def _check_pair(b: Any, where: str) -> tuple[Tensor, Tensor]:
    if isinstance(b, (tuple, list)) and len(b) == 2 and all(isinstance(t, Tensor) for t in b):
        return b[0], b[1]
    raise DataTypeError(
        "data",
        f"{where} must be a pair (x, y) of tensors (got {_describe(b)}); pass only inputs and "
        "targets, e.g. a DataLoader over TensorDataset(X, y)",
    )


def is_batch(data: Any) -> bool:
    """``data`` is a single batch: a tuple or list whose items are all tensors."""
    return isinstance(data, (tuple, list)) and len(data) > 0 and all(isinstance(t, Tensor) for t in data)


def batches_of(data: Any, chunk_size: int | None = None) -> Callable[[], Iterator[tuple[Tensor, Tensor]]]:
    """A re-callable factory of ``(x (n, ...), y (n, ...))`` chunks over ``data``; checks its form.

    A batch ``(X, y)`` is split into ``chunk_size`` rows (default: one chunk); a re-iterable of
    batches yields its batches (``chunk_size`` does not re-split them). Raises
    :class:`DataTypeError` for a single tensor, a non-iterable, a one-shot iterator, or a batch
    that is not a pair of tensors, and :class:`ConfigError` for mismatched sample axes.
    """
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ConfigError("chunk_size", f"must be None or an integer >= 1 (got {chunk_size!r})")
    if is_batch(data):
        X, y = _check_pair(data, "a batch")
        if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0] or X.shape[0] < 1:
            raise ConfigError("data", f"(X, y) need the same leading sample axis, N >= 1 "
                              f"(got {tuple(X.shape)}, {tuple(y.shape)})")
        cs = chunk_size or X.shape[0]
        return lambda: ((X[i:i + cs], y[i:i + cs]) for i in range(0, X.shape[0], cs))
    if isinstance(data, Tensor):
        raise DataTypeError("data", f"must be a pair (X, y) or a re-iterable of (x, y) batches "
                            f"(got a single tensor of shape {tuple(data.shape)}); pass (X, y)")
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise DataTypeError("data", "must be a pair (X, y) of tensors or a re-iterable of (x, y) "
                            f"batches such as a DataLoader (got {type(data).__name__})")
    if iter(data) is data:
        raise DataTypeError(
            "data", f"is a one-shot iterator ({type(data).__name__}) that would be exhausted after "
            "the first pass, and the tools iterate over the data several times; pass a DataLoader, "
            "a list of (x, y) batches, or one batch (X, y)")

    def batches() -> Iterator[tuple[Tensor, Tensor]]:
        for i, b in enumerate(data):
            x, t = _check_pair(b, f"batch {i}")
            if x.ndim == 0 or t.ndim == 0 or x.shape[0] != t.shape[0]:
                raise ConfigError("data", f"batch {i}: x and y need the same leading sample axis "
                                  f"(got {tuple(x.shape)}, {tuple(t.shape)})")
            yield x, t

    return batches


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype of the model's floating parameters (the first one), or None."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def check_dtype(x: Tensor, dtype: torch.dtype | None) -> None:
    """Refuse a floating input whose dtype differs from the model's (nothing is cast)."""
    if dtype is not None and x.is_floating_point() and x.dtype != dtype:
        short = str(dtype).removeprefix("torch.")
        raise DataTypeError(
            "data", f"inputs are {str(x.dtype).removeprefix('torch.')} but the model's parameters are "
            f"{short}; nnphys does not cast (it would change the numbers): pass X.to(torch.{short}) "
            f"or model.to(torch.{str(x.dtype).removeprefix('torch.')})")


def materialise(data: Any, model: nn.Module) -> tuple[Tensor, Tensor]:
    """All of ``data`` as one batch ``(X (N, ...), y (N, ...))`` on the model's device, checked
    (:func:`batches_of`, :func:`check_dtype`); a batch ``(X, y)`` is returned as is (moved)."""
    chunks = list(batches_of(data)())
    if not chunks:
        raise ConfigError("data", "holds no samples")
    xs, ts = zip(*chunks)
    X = xs[0] if len(xs) == 1 else torch.cat(xs)
    y = ts[0] if len(ts) == 1 else torch.cat(ts)
    check_dtype(X, model_dtype(model))
    dev = next((p.device for p in model.parameters()), X.device)
    return X.to(dev), y.to(dev)


def legacy_xy(fn: str, data: Any, args: tuple) -> tuple[Any, tuple]:
    """Accept the deprecated positional form ``fn(model, loss_fn, X, y, ...)``: returns
    ``((X, y), remaining positional args)``."""
    if isinstance(data, Tensor) and args and isinstance(args[0], Tensor):
        warnings.warn(f"{fn}(model, loss_fn, X, y) is deprecated; pass the batch as one argument: "
                      f"{fn}(model, loss_fn, (X, y))", DeprecationWarning, stacklevel=3)
        return (data, args[0]), args[1:]
    return data, args


def renamed(fn: str, new: str, new_value: Any, old: str, old_value: Any, default: Any) -> Any:
    """Resolve a keyword renamed from ``old`` to ``new`` (the old one warns; both is an error)."""
    if old_value is not _MISSING and old_value is not None:
        if new_value is not _MISSING and new_value is not None:
            raise ConfigError(new, f"given together with its deprecated alias {old!r}; pass only {new}")
        warnings.warn(f"{fn}: {old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
        return old_value
    return default if new_value is _MISSING or new_value is None else new_value


def no_extra(fn: str, args: tuple) -> None:
    if args:
        raise TypeError(f"{fn}() takes (model, loss_fn, data) positionally and everything else by "
                        f"keyword (got {len(args)} extra positional argument(s))")


# ----------------------------------------------------------------------------- losses


def check_per_sample(losses: Tensor, n: int) -> Tensor:
    """``losses`` must be ``(n,)``: the per-sample losses of a chunk of ``n`` samples."""
    if isinstance(losses, Tensor) and tuple(losses.shape) == (n,):
        return losses
    shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
    if isinstance(losses, Tensor) and losses.ndim == 0:
        raise ConfigError(
            "loss_fn", f"returned a scalar (a mean- or sum-reduced loss) but per-sample losses of "
            f"shape ({n},) are needed; use reduction='none', e.g. nn.CrossEntropyLoss(reduction='none')")
    raise ConfigError(
        "loss_fn", f"must return per-sample losses of shape ({n},) (got shape {shape}); use "
        "reduction='none' (e.g. nn.MSELoss(reduction='none')) and sum/mean over trailing output "
        "dims yourself")


# ----------------------------------------------------------------------------- results


def fmt_values(t: Any, head: int = 6, spec: str = ".4g") -> str:
    """``[a, b, c, … (k values)]``: at most ``head`` numbers of a 1-D tensor or sequence."""
    vals = t.tolist() if isinstance(t, Tensor) else list(t)
    shown = ", ".join(format(float(v), spec) for v in vals[:head])
    more = f", … ({len(vals)} values)" if len(vals) > head else ""
    return f"[{shown}{more}]"


def _plain(v: Any, full: bool) -> Any:
    if isinstance(v, Result):
        return v.to_dict(full=full)
    if isinstance(v, Tensor):
        return v.detach().cpu().tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x, full) for x in v]
    if isinstance(v, float) or isinstance(v, (int, bool, str)) or v is None:
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


class Result:
    """Mixin of the tools' frozen result dataclasses (declare them with ``repr=False``).

    ``repr(result)`` is ``str(result)``, a summary of at most ten lines; ``to_dict()`` turns
    tensors into (nested) lists and nested results into dicts; fields named in ``_bulky``
    (per-sample or per-parameter arrays: eigenvectors ``(P, k)``, per-sample norms ``(N,)``...)
    are left out unless ``full=True``. Non-finite floats stay ``nan`` / ``inf``.
    """

    _bulky: tuple[str, ...] = ()

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not full and f.name in self._bulky:
                continue
            out[f.name] = _plain(getattr(self, f.name), full)
        return out

    def __repr__(self) -> str:
        return str(self)


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` (strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
