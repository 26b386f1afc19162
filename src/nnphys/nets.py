"""Fully connected ReLU nets and stacked ensembles of them (study depth-locality; its guide
``docs/studies/depth-locality.md``, section "Definitions", states the nets).

Shapes (the stable contract other modules code against)
-------------------------------------------------------
An :class:`MLPEnsemble` holds ``M = n_members`` nets of the same architecture in one set of
tensors. Widths are ``n_0 = d_in``, ``n_1 = ... = n_L = width``, ``n_{L+1} = d_out``; ``L = depth``
is the number of hidden layers. For layer ``l = 1..L+1``:

- ``weights[l-1]``: ``(M, n_l, n_{l-1})`` (same layout as ``nn.Linear.weight``, one per member);
- ``biases[l-1]``: ``(M, n_l)`` (absent when ``bias=False``).

``forward(x)`` takes ``x`` of shape ``(B, d_in)`` (one batch shared by all members) or
``(M, B, d_in)`` (one batch per member) and returns ``(M, B, d_out)``. Member ``m`` computes exactly
the net ``to_modules()[m]`` (an ``nn.Sequential`` of :class:`ScaledLinear` and ``nn.ReLU``).

Layer map, with ``a^(0) = x``, ``a^(l) = relu(z^(l))``, ``f = z^(L+1)``::

    z^(l) = c_w(l) * a^(l-1) @ W^(l)^T + c_b * b^(l)

- ``param="standard"``: ``c_w = 1``, ``c_b = 1``; init ``W ~ N(0, sigma_w^2 / n_{l-1})``,
  ``b ~ N(0, sigma_b^2)`` (``sigma_b = 0`` by default: ``b = 0``, trainable);
- ``param="ntk"``: ``c_w = sigma_w / sqrt(n_{l-1})``, ``c_b = sigma_b`` (default ``sqrt(0.1)``);
  init ``W, b ~ N(0, 1)``.

Init families (``init``, a [default] choice: the papers' init could not be confirmed):

- ``"he_normal"`` (default, ``sigma_w^2 = 2``) and ``"lecun_normal"`` (``sigma_w^2 = 1``): the
  Gaussian rules above; the family only fixes the default ``sigma_w`` (an explicit one wins);
- ``"torch_default"``: what ``nn.Linear.reset_parameters`` does, Kaiming-uniform with ``a = sqrt(5)``:
  ``W ~ U(-s, s)`` with ``s = sigma_w sqrt(3 / n_{l-1})`` (default ``sigma_w^2 = 1/3``, so
  ``s = 1/sqrt(n_{l-1})``: ``Var W = sigma_w^2 / n_{l-1}`` as in the Gaussian rule), and biases
  ``b ~ U(-c, c)`` with ``c = sigma_b sqrt(3 / n_{l-1})`` (default ``sigma_b^2 = 1/3``, so
  ``c = 1/sqrt(n_{l-1})``). Note the bias variance ``sigma_b^2 / n_{l-1}`` is *per fan-in* here, unlike
  the Gaussian families' absolute ``sigma_b^2`` (that is nn.Linear's rule). In the ``ntk``
  parameterisation the uniform draws have unit variance (``U(-sqrt 3, sqrt 3)``).

The output layer uses the same rule as hidden layers (``sigma_w`` scaling).

Seeding: member ``m`` draws its parameters from ``torch.Generator().manual_seed(seeds[m])`` on the
CPU, layer by layer (``W^(1), b^(1), W^(2), ...``), in float64, then casts to ``dtype`` and moves to
``device``. So member ``m`` of any ensemble equals ``MLPEnsemble(1, ..., seeds=[seeds[m]])`` on every
device, and a seed means the same net whatever the ensemble around it.

Parameter count: ``P = d H + (L-1) H^2 + H d_out + bias * (L H + d_out)``
(:func:`param_count`).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import nn

from nnphys.errors import ConfigError

PARAMS = ("standard", "ntk")
INITS = ("he_normal", "lecun_normal", "torch_default")
# default sigma_w^2 of each family (torch_default: Kaiming-uniform a=sqrt(5) -> gain^2 = 2/(1+5) = 1/3)
INIT_SIGMA_W2 = {"he_normal": 2.0, "lecun_normal": 1.0, "torch_default": 1.0 / 3.0}


def default_sigma_w(init: str = "he_normal") -> float:
    """The family's default weight scale ``sigma_w`` (``sqrt(INIT_SIGMA_W2[init])``)."""
    if init not in INITS:
        raise ConfigError("init", f"must be one of {', '.join(INITS)} (got {init!r})")
    return math.sqrt(INIT_SIGMA_W2[init])


def default_sigma_b(param: str, init: str = "he_normal") -> float:
    """The default bias scales: ``sigma_b = 0`` (standard: bias init std) and ``sqrt(0.1)`` (ntk);
    ``torch_default`` in the standard parameterisation: ``sqrt(1/3)`` (nn.Linear's biases)."""
    if param == "standard":
        return math.sqrt(1.0 / 3.0) if init == "torch_default" else 0.0
    return math.sqrt(0.1)


def init_draw(n_out: int, n_in: int, g: torch.Generator, *, init: str, param: str, sigma_w: float,
              sigma_b: float, bias: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One layer's ``(W (n_out, n_in), b (n_out,) or None)`` in float64 from ``g`` (module docstring).

    Draw order: ``W`` then ``b``. Gaussian families draw ``randn``; ``torch_default`` draws
    ``rand`` and maps ``u -> (2u - 1) * bound``."""
    if init == "torch_default":
        w = torch.rand(n_out, n_in, generator=g, dtype=torch.float64) * 2 - 1
        b = torch.rand(n_out, generator=g, dtype=torch.float64) * 2 - 1 if bias else None
        if param == "standard":
            w = w * (sigma_w * math.sqrt(3.0 / n_in))
            b = None if b is None else b * (sigma_b * math.sqrt(3.0 / n_in))
        else:
            w = w * math.sqrt(3.0)
            b = None if b is None else b * math.sqrt(3.0)
        return w, b
    w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    b = torch.randn(n_out, generator=g, dtype=torch.float64) if bias else None
    if param == "standard":
        w = w * (sigma_w / math.sqrt(n_in))
        b = None if b is None else b * sigma_b
    return w, b


def param_count(d_in: int, width: int, depth: int, d_out: int = 1, bias: bool = True) -> int:
    """Number of trainable parameters ``P`` of one net (the module docstring's count, generalised to ``d_out``)."""
    p = d_in * width + (depth - 1) * width * width + width * d_out
    if bias:
        p += depth * width + d_out
    return p


def layer_scales(
    d_in: int, width: int, depth: int, d_out: int, param: str, sigma_w: float, sigma_b: float, bias: bool
) -> list[tuple[float, float]]:
    """``[(c_w(l), c_b(l)) for l = 1..L+1]``: the multipliers of the layer map (module docstring)."""
    dims = [d_in] + [width] * depth + [d_out]
    out = []
    for l in range(1, depth + 2):
        if param == "standard":
            out.append((1.0, 1.0 if bias else 0.0))
        else:
            out.append((sigma_w / math.sqrt(dims[l - 1]), sigma_b if bias else 0.0))
    return out


class ScaledLinear(nn.Module):
    """``y = w_scale * x @ weight^T + b_scale * bias``; a plain net's layer (for ``to_modules``).

    ``weight``: ``(n_out, n_in)``; ``bias``: ``(n_out,)`` or ``None``. With ``w_scale = b_scale = 1`` it
    is ``nn.Linear``; the scales carry the ``ntk`` parameterisation, so that SGD on ``weight`` is SGD
    on the ``ntk``-parameterised net.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, w_scale: float, b_scale: float):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.w_scale = float(w_scale)
        self.b_scale = float(b_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.linear(x, self.weight) * self.w_scale if self.w_scale != 1.0 else (
            torch.nn.functional.linear(x, self.weight)
        )
        if self.bias is not None:
            y = y + self.b_scale * self.bias
        return y

    def extra_repr(self) -> str:
        n_out, n_in = self.weight.shape
        return f"{n_in}->{n_out}, w_scale={self.w_scale:.4g}, b_scale={self.b_scale:.4g}, bias={self.bias is not None}"


class MLPEnsemble(nn.Module):
    """``M`` fully connected ReLU nets held in stacked tensors (shapes: module docstring).

    Args:
        n_members: ``M >= 1``.
        d_in, width, depth, d_out: ``n_0``, ``H``, ``L >= 1`` hidden layers, ``n_{L+1}``.
        param: ``"standard"`` or ``"ntk"`` (the layer map above).
        bias: the bias switch ``beta``.
        init: ``"he_normal"`` | ``"lecun_normal"`` | ``"torch_default"`` (module docstring).
        sigma_w: weight scale; ``None`` gives the family's (:data:`INIT_SIGMA_W2`; He: ``sqrt 2``).
        sigma_b: bias scale; ``None`` gives the default of the parameterisation and family
            (:func:`default_sigma_b`).
        seeds: one seed per member (default ``0..M-1``); member ``m`` is the single net of seed
            ``seeds[m]``.
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        n_members: int,
        d_in: int,
        width: int,
        depth: int,
        d_out: int = 1,
        *,
        param: str = "standard",
        bias: bool = True,
        init: str = "he_normal",
        sigma_w: float | None = None,
        sigma_b: float | None = None,
        seeds: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        for name, v, lo in (("n_members", n_members, 1), ("d_in", d_in, 1), ("width", width, 1),
                            ("depth", depth, 1), ("d_out", d_out, 1)):
            if not isinstance(v, int) or v < lo:
                raise ConfigError(name, f"must be an integer >= {lo} (got {v!r})")
        if param not in PARAMS:
            raise ConfigError("param", f"must be one of {', '.join(PARAMS)} (got {param!r})")
        sigma_w = default_sigma_w(init) if sigma_w is None else float(sigma_w)
        if not (sigma_w > 0 and math.isfinite(sigma_w)):
            raise ConfigError("sigma_w", f"must be a finite number > 0 (got {sigma_w!r})")
        sigma_b = default_sigma_b(param, init) if sigma_b is None else float(sigma_b)
        if not (sigma_b >= 0 and math.isfinite(sigma_b)):
            raise ConfigError("sigma_b", f"must be a finite number >= 0 (got {sigma_b!r})")
        seeds = list(range(n_members)) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != n_members:
            raise ConfigError("seeds", f"needs one seed per member (got {len(seeds)} for {n_members} members)")

        self.n_members, self.d_in, self.width, self.depth, self.d_out = n_members, d_in, width, depth, d_out
        self.param, self.bias, self.sigma_w, self.sigma_b = param, bool(bias), float(sigma_w), sigma_b
        self.init = init
        self.seeds = seeds
        self.dims = [d_in] + [width] * depth + [d_out]
        self.scales = layer_scales(d_in, width, depth, d_out, param, self.sigma_w, sigma_b, self.bias)

        ws: list[list[torch.Tensor]] = [[] for _ in range(depth + 1)]
        bs: list[list[torch.Tensor]] = [[] for _ in range(depth + 1)]
        for s in seeds:
            g = torch.Generator(device="cpu").manual_seed(s)
            for l in range(depth + 1):
                w, b = init_draw(self.dims[l + 1], self.dims[l], g, init=init, param=param,
                                 sigma_w=self.sigma_w, sigma_b=sigma_b, bias=self.bias)
                ws[l].append(w)
                if b is not None:
                    bs[l].append(b)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.stack(w).to(dtype=dtype, device=device)) for w in ws]
        )
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.stack(b).to(dtype=dtype, device=device)) for b in bs] if self.bias else []
        )

    # ------------------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Trainable parameters of one member (``P`` of the module docstring)."""
        return param_count(self.d_in, self.width, self.depth, self.d_out, self.bias)

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            if x.shape[1] != self.d_in:
                raise ValueError(f"x must be (B, {self.d_in}) or (M, B, {self.d_in}); got {tuple(x.shape)}")
            return x.unsqueeze(0).expand(self.n_members, -1, -1)
        if x.dim() == 3 and x.shape[0] == self.n_members and x.shape[2] == self.d_in:
            return x
        raise ValueError(
            f"x must be (B, {self.d_in}) or ({self.n_members}, B, {self.d_in}); got {tuple(x.shape)}"
        )

    def layer(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """Pre-activation ``z^(l+1)`` of layer index ``l`` (0-based) from ``a``: ``(M, B, n_l)``."""
        cw, cb = self.scales[l]
        wt = self.weights[l].transpose(1, 2)
        if self.bias and cb != 0.0:
            return torch.baddbmm(self.biases[l].unsqueeze(1), a, wt, beta=cb, alpha=cw)
        z = torch.bmm(a, wt)
        return z * cw if cw != 1.0 else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, d_in)`` or ``(M, B, d_in)`` -> ``(M, B, d_out)``."""
        a = self._expand(x).to(self.weights[0].dtype)
        for l in range(self.depth):
            a = torch.relu(self.layer(l, a))
        return self.layer(self.depth, a)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """``forward`` without autograd, in chunks of ``chunk`` rows; same shapes as ``forward``."""
        xe = self._expand(x)
        outs = [self.forward(xe[:, i : i + chunk]) for i in range(0, xe.shape[1], chunk)]
        if not outs:
            return xe.new_zeros(self.n_members, 0, self.d_out, dtype=self.weights[0].dtype)
        return torch.cat(outs, dim=1)

    # ------------------------------------------------------------------------------------------
    def to_modules(self) -> list[nn.Sequential]:
        """``M`` independent ``nn.Sequential`` nets (copies) computing the members' functions.

        Layers are ``nn.Linear`` where the scales are 1 (``standard``), :class:`ScaledLinear` otherwise.
        """
        nets = []
        for m in range(self.n_members):
            layers: list[nn.Module] = []
            for l in range(self.depth + 1):
                cw, cb = self.scales[l]
                w, b = self.weights[l][m].detach(), (self.biases[l][m].detach() if self.bias else None)
                if cw == 1.0 and (b is None or cb == 1.0):
                    lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype, device=w.device)
                    with torch.no_grad():
                        lin.weight.copy_(w)
                        if b is not None:
                            lin.bias.copy_(b)
                    layers.append(lin)
                else:
                    layers.append(ScaledLinear(w, b, cw, cb))
                if l < self.depth:
                    layers.append(nn.ReLU())
            nets.append(nn.Sequential(*layers))
        return nets

    @classmethod
    def from_modules(
        cls,
        nets: Iterable[nn.Sequential],
        *,
        param: str = "standard",
        sigma_w: float = 2**0.5,
        sigma_b: float | None = None,
    ) -> "MLPEnsemble":
        """Stack nets made of ``nn.Linear``/:class:`ScaledLinear` and ``nn.ReLU`` into an ensemble.

        Every net must have the same layer sizes and bias switch. The scales of ``param`` (with
        ``sigma_w``, ``sigma_b``) are used; for :class:`ScaledLinear` layers they must agree with
        the layers' own ``w_scale``/``b_scale``. Parameters are copied (dtype/device of the first net).
        """
        nets = list(nets)
        if not nets:
            raise ConfigError("nets", "needs at least one net")
        lins = []
        for net in nets:
            ls = [mod for mod in net if isinstance(mod, (nn.Linear, ScaledLinear))]
            others = [mod for mod in net if not isinstance(mod, (nn.Linear, ScaledLinear, nn.ReLU))]
            if others or len(ls) < 2:
                raise ConfigError("nets", "each net must be Linear/ScaledLinear layers separated by ReLU")
            lins.append(ls)
        first = lins[0]
        dims = [first[0].weight.shape[1]] + [lin.weight.shape[0] for lin in first]
        bias = first[0].bias is not None
        for ls in lins:
            if [ls[0].weight.shape[1]] + [lin.weight.shape[0] for lin in ls] != dims:
                raise ConfigError("nets", "all nets must have the same layer sizes")
            if any((lin.bias is not None) != bias for lin in ls):
                raise ConfigError("nets", "all layers must agree on the bias switch")
        if len(set(dims[1:-1])) != 1:
            raise ConfigError("nets", f"hidden layers must have one width (got {dims[1:-1]})")
        w0 = first[0].weight
        ens = cls(len(nets), dims[0], dims[1], len(dims) - 2, dims[-1], param=param, bias=bias,
                  sigma_w=sigma_w, sigma_b=sigma_b, dtype=w0.dtype, device=w0.device)
        for l, (cw, cb) in enumerate(ens.scales):
            for ls in lins:
                lin = ls[l]
                if isinstance(lin, nn.Linear) and (cw != 1.0 or (bias and cb != 1.0)):
                    raise ConfigError("param", f"nn.Linear layers carry no scales; use ScaledLinear for {param!r}")
                if isinstance(lin, ScaledLinear) and (
                    not math.isclose(lin.w_scale, cw) or (bias and not math.isclose(lin.b_scale, cb))
                ):
                    raise ConfigError("param", f"layer {l + 1} scales ({lin.w_scale}, {lin.b_scale}) "
                                               f"differ from {param!r} ones ({cw}, {cb})")
        with torch.no_grad():
            for l in range(len(dims) - 1):
                ens.weights[l].copy_(torch.stack([ls[l].weight.detach() for ls in lins]))
                if bias:
                    ens.biases[l].copy_(torch.stack([ls[l].bias.detach() for ls in lins]))
        return ens
