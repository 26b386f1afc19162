"""Tests of nnphys.nets: the stacked ensemble against M plain nn.Module nets (float64 oracle)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnphys.errors import ConfigError
from nnphys.nets import MLPEnsemble, ScaledLinear, param_count




def _oracle_net(seed, d, h, L, d_out, param, bias, sigma_w, sigma_b):
    """Independent construction of one net from the layer map of ``nnphys.nets`` (float64, nn.Linear/ScaledLinear)."""
    g = torch.Generator().manual_seed(seed)
    dims = [d] + [h] * L + [d_out]
    layers = []
    for l in range(L + 1):
        w = torch.randn(dims[l + 1], dims[l], generator=g, dtype=torch.float64)
        b = torch.randn(dims[l + 1], generator=g, dtype=torch.float64) if bias else None
        if param == "standard":
            lin = nn.Linear(dims[l], dims[l + 1], bias=bias, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(w * sigma_w / math.sqrt(dims[l]))
                if bias:
                    lin.bias.copy_(b * sigma_b)
            layers.append(lin)
        else:
            layers.append(ScaledLinear(w, b, sigma_w / math.sqrt(dims[l]), sigma_b if bias else 0.0))
        if l < L:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("param", ["standard", "ntk"])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_independent_nets(param, bias):
    d, h, L, d_out, M = 5, 7, 3, 2, 4
    seeds = [3, 11, 0, 7]
    sb = 0.3
    ens = MLPEnsemble(M, d, h, L, d_out, param=param, bias=bias, sigma_b=sb, seeds=seeds, dtype=torch.float64)
    x = torch.randn(6, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    xm = torch.randn(M, 6, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out, outm = ens(x), ens(xm)
    assert out.shape == (M, 6, d_out) and outm.shape == (M, 6, d_out)
    mods = ens.to_modules()
    for m, s in enumerate(seeds):
        ref = _oracle_net(s, d, h, L, d_out, param, bias, 2**0.5, sb)
        torch.testing.assert_close(out[m], ref(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(outm[m], ref(xm[m]), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(mods[m](x), ref(x), rtol=1e-12, atol=1e-12)
    # a member equals the single net of its seed, whatever the ensemble around it
    single = MLPEnsemble(1, d, h, L, d_out, param=param, bias=bias, sigma_b=sb, seeds=[seeds[2]], dtype=torch.float64)
    torch.testing.assert_close(single(x)[0], out[2], rtol=0, atol=0)


def test_standard_init_variance():
    """He init: Var W = sigma_w^2 / n_in; 4-sigma band of the sample variance of 2e5 draws."""
    ens = MLPEnsemble(2, 100, 1000, 1, param="standard", seeds=[0, 1], dtype=torch.float64)
    w = ens.weights[0].detach()
    v = float(w.var())
    n = w.numel()
    assert abs(v - 2 / 100) < 4 * (2 / 100) * math.sqrt(2 / n)
    assert float(ens.biases[0].detach().abs().max()) == 0.0  # b = 0 in the standard parameterisation


def test_roundtrip_from_modules():
    ens = MLPEnsemble(3, 4, 6, 2, param="ntk", seeds=[1, 2, 3], dtype=torch.float64)
    back = MLPEnsemble.from_modules(ens.to_modules(), param="ntk")
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(back(x), ens(x), rtol=0, atol=0)
    with pytest.raises(ConfigError) as e:
        MLPEnsemble.from_modules(ens.to_modules(), param="standard")
    assert e.value.field == "param"
    std = MLPEnsemble(2, 4, 6, 2, seeds=[1, 2], dtype=torch.float64)
    assert all(isinstance(mod, (nn.Linear, nn.ReLU)) for net in std.to_modules() for mod in net)


def test_param_count_matches_modules():
    for bias in (True, False):
        ens = MLPEnsemble(1, 9, 5, 3, bias=bias)
        assert ens.n_params == sum(p.numel() for p in ens.parameters()) == param_count(9, 5, 3, 1, bias)


@pytest.mark.parametrize(
    "kw,field",
    [({"depth": 0}, "depth"), ({"width": 0}, "width"), ({"param": "mup"}, "param"),
     ({"sigma_w": -1.0}, "sigma_w"), ({"seeds": [1]}, "seeds")],
)
def test_bad_config(kw, field):
    args = dict(n_members=2, d_in=3, width=4, depth=2)
    args.update(kw)
    with pytest.raises(ConfigError) as e:
        MLPEnsemble(**args)
    assert e.value.field == field


def test_bad_input_shape():
    ens = MLPEnsemble(2, 3, 4, 1)
    with pytest.raises(ValueError):
        ens(torch.zeros(3, 5, 3))


# ---------------------------------------------------------------------------------------------
# init families
# ---------------------------------------------------------------------------------------------


def _linear_default_draws(n_nets: int, n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and biases of ``n_nets`` fresh ``nn.Linear(n_in, n_out)`` (PyTorch's own init),
    scaled by ``sqrt(n_in)`` so that both are U(-1, 1) if nn.Linear is Kaiming-uniform(a=sqrt 5)."""
    torch.manual_seed(1234)
    ws, bs = [], []
    for _ in range(n_nets):
        lin = nn.Linear(n_in, n_out, dtype=torch.float64)
        ws.append(lin.weight.detach().ravel())
        bs.append(lin.bias.detach().ravel())
    return torch.cat(ws) * math.sqrt(n_in), torch.cat(bs) * math.sqrt(n_in)


def _check_u11_moments(u: torch.Tensor, what: str) -> None:
    """Moments of U(-1, 1): E u = 0, E u^2 = 1/3, E u^4 = 1/5 (a Gaussian of the same variance has
    E u^4 = 1/3, so the 4th moment tells the two apart). Tolerance: 5 standard errors of each sample
    moment, the s.e. from the uniform law's own higher moments (E u^6 = 1/7, E u^8 = 1/9)."""
    n = u.numel()
    u = u.double()
    m1, m2, m4 = float(u.mean()), float((u**2).mean()), float((u**4).mean())
    assert abs(m1) < 5 * math.sqrt((1 / 3) / n), (what, m1)
    assert abs(m2 - 1 / 3) < 5 * math.sqrt((1 / 5 - 1 / 9) / n), (what, m2)
    assert abs(m4 - 1 / 5) < 5 * math.sqrt((1 / 9 - 1 / 25) / n), (what, m4)
    assert float(u.abs().max()) <= 1.0 + 1e-12, what


def test_torch_default_init_equals_nn_linear_in_distribution():
    from scipy import stats

    d, h, n_nets = 24, 40, 150
    ens = MLPEnsemble(n_nets, d, h, 1, init="torch_default", seeds=list(range(n_nets)), dtype=torch.float64)
    ours = {
        "W1": ens.weights[0].detach().ravel() * math.sqrt(d), "b1": ens.biases[0].detach().ravel() * math.sqrt(d),
        "W2": ens.weights[1].detach().ravel() * math.sqrt(h), "b2": ens.biases[1].detach().ravel() * math.sqrt(h),
    }
    ref = dict(zip(("W1", "b1"), _linear_default_draws(n_nets, d, h)))
    ref.update(zip(("W2", "b2"), _linear_default_draws(n_nets, h, 1)))
    for name in ours:
        _check_u11_moments(ours[name], f"ours {name}")
        _check_u11_moments(ref[name], f"nn.Linear {name}")
        # two-sample KS test of our draws against PyTorch's own (alpha = 1e-3)
        assert stats.ks_2samp(ours[name].numpy(), ref[name].numpy()).pvalue > 1e-3, name
    # the Gaussian families are not uniform: He's 4th moment is 3 Var^2
    he = MLPEnsemble(n_nets, d, h, 1, seeds=list(range(n_nets)), dtype=torch.float64).weights[0].detach()
    v = float((he**2).mean())
    assert abs(float((he**4).mean()) / v**2 - 3.0) < 0.1
    assert abs(v * d - 2.0) < 0.05 and ens.sigma_w**2 == pytest.approx(1 / 3)


def test_init_family_scales():
    """An explicit sigma_w rescales every family: Var W = sigma_w^2 / fan_in (4-sigma band)."""
    for init, sw2 in (("lecun_normal", 1.0), ("torch_default", 0.7), ("he_normal", 0.5)):
        ens = MLPEnsemble(4, 50, 500, 1, init=init, sigma_w=math.sqrt(sw2), seeds=[0, 1, 2, 3], dtype=torch.float64)
        w = ens.weights[0].detach()
        kurt = 9 / 5 if init == "torch_default" else 3.0
        assert abs(float(w.var()) * 50 - sw2) < 4 * sw2 * math.sqrt((kurt - 1) / w.numel()), init
    assert MLPEnsemble(1, 3, 4, 1, init="lecun_normal").sigma_w == 1.0
    with pytest.raises(ConfigError) as e:
        MLPEnsemble(1, 3, 4, 1, init="glorot")
    assert e.value.field == "init"


@pytest.mark.parametrize("param", ["standard", "ntk"])
def test_torch_default_to_modules_reproduces_ensemble(param):
    ens = MLPEnsemble(3, 5, 8, 3, 2, param=param, init="torch_default", seeds=[4, 5, 6], dtype=torch.float64)
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    out = ens(x)
    for m, net in enumerate(ens.to_modules()):
        torch.testing.assert_close(net(x), out[m], rtol=1e-12, atol=1e-12)
    back = MLPEnsemble.from_modules(ens.to_modules(), param=param, sigma_w=ens.sigma_w, sigma_b=ens.sigma_b)
    torch.testing.assert_close(back(x), out, rtol=0, atol=0)
