"""Tests of nnphys.ntk: reference values (the study guide ``docs/studies/depth-locality.md``, "Definitions",
reference values), independent code paths, Monte Carlo of finite nets, hypercube spectrum vs
brute-force eigh, kernel regression and the exact locality-blindness of kernel regression (claim C5)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from nnphys.errors import ConfigError
from nnphys.ntk import (
    empirical_ntk,
    hypercube_eigenvalues,
    hypercube_kernel,
    kernel_predict,
    kernel_regression,
    krawtchouk,
    ntk_kernel,
)
from nnphys.targets import k_global, k_local, make_dataset, sample_inputs
from ntk_reference import reference_kernel_arccos

SQ2 = math.sqrt(2.0)




def _cube(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([1.0, -1.0], repeat=d)), dtype=torch.float64)


def _pairs(d: int = 8) -> torch.Tensor:
    """x, its antipode, a point orthogonal to x (x.x' = 0)."""
    x = torch.ones(d, dtype=torch.float64)
    o = torch.cat([torch.ones(d // 2), -torch.ones(d // 2)]).double()
    return torch.stack([x, -x, o])


# ------------------------------------------------------------------ reference values: diagonals and special pairs


def test_diagonals_without_bias():
    x = sample_inputs(5, 10, "cube", torch.Generator().manual_seed(0))
    th, sg = ntk_kernel(x, depth=7, bias=False, get=("ntk", "nngp"), all_depths=True)
    for L in range(8):
        torch.testing.assert_close(sg[L].diagonal(), torch.full((5,), 2.0, dtype=torch.float64), rtol=1e-14, atol=0)
        torch.testing.assert_close(th[L].diagonal(), torch.full((5,), 2.0 * (L + 1), dtype=torch.float64), rtol=1e-14, atol=0)


@pytest.mark.parametrize("fast_cube", [True, False])
def test_diagonals_with_bias(fast_cube):
    sb2 = 0.1
    x = sample_inputs(4, 9, "cube", torch.Generator().manual_seed(1))
    th, sg = ntk_kernel(x, depth=6, sigma_b=math.sqrt(sb2), get=("ntk", "nngp"), all_depths=True, fast_cube=fast_cube)
    for L in range(7):
        l = L + 1  # Sigma^(l), Theta^(l) with l = L + 1
        assert sg[L].diagonal().tolist() == pytest.approx([2 + l * sb2] * 4, rel=1e-14)
        want = 2 * (L + 1) + sb2 * (L + 1) * (L + 2) / 2
        assert th[L].diagonal().tolist() == pytest.approx([want] * 4, rel=1e-14)
    assert sg[3, 0, 0].item() == pytest.approx(2.4, rel=1e-14)
    assert th[3, 0, 0].item() == pytest.approx(9.0, rel=1e-14)


@pytest.mark.parametrize("fast_cube", [True, False])
def test_special_pairs(fast_cube):
    """Reference table (6 decimals; guide, "Definitions"), sigma_b = 0; antipodal L=1 is exactly 0."""
    want = {
        1: ((0.0, 0.0), (0.636620, 0.636620)),
        2: ((0.636620, 0.636620), (1.371417, 0.987462)),
        3: ((1.371417, 0.987462), (2.120776, 1.209651)),
    }
    th, sg = ntk_kernel(_pairs(), depth=3, bias=False, get=("ntk", "nngp"), all_depths=True, fast_cube=fast_cube)
    for L, ((a_ntk, a_gp), (o_ntk, o_gp)) in want.items():
        assert th[L, 0, 1].item() == pytest.approx(a_ntk, abs=5e-7)
        assert sg[L, 0, 1].item() == pytest.approx(a_gp, abs=5e-7)
        assert th[L, 0, 2].item() == pytest.approx(o_ntk, abs=5e-7)
        assert sg[L, 0, 2].item() == pytest.approx(o_gp, abs=5e-7)
    assert th[1, 0, 1].item() == 0.0 and sg[1, 0, 1].item() == 0.0
    assert th[2, 0, 1].item() == pytest.approx(2 / math.pi, rel=1e-14)


# ------------------------------------------------------------------ independent code paths


def test_atan2_form_matches_clipped_arccos_reference():
    g = torch.Generator().manual_seed(2)
    x1, x2 = sample_inputs(30, 7, "gauss", g), sample_inputs(20, 7, "gauss", g)
    sb2 = 0.1
    th, sg = ntk_kernel(x1, x2, depth=5, sigma_b=math.sqrt(sb2), get=("ntk", "nngp"), all_depths=True)
    rth, rsg = reference_kernel_arccos(x1, x2, depth=5, sigma_w2=2.0, sigma_b2=sb2)
    for L in range(6):  # entries are O(1); atol covers cancellation in the few small ones
        torch.testing.assert_close(th[L], rth[L], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(sg[L], rsg[L], rtol=1e-12, atol=1e-14)
    # cube, bias-free, including exact duplicates and antipodes (arccos is exact there after the clip)
    xc = _cube(5)
    th = ntk_kernel(xc, depth=4, bias=False)
    rth, _ = reference_kernel_arccos(xc, xc, depth=4, sigma_w2=2.0, sigma_b2=0.0)
    torch.testing.assert_close(th, rth[4], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("law", ["cube", "gauss"])
def test_block_computation_equals_unblocked(law):
    g = torch.Generator().manual_seed(3)
    x1, x2 = sample_inputs(23, 6, law, g), sample_inputs(17, 6, law, g)
    kw = dict(depth=4, get=("ntk", "nngp"), all_depths=True, fast_cube=False)
    full = ntk_kernel(x1, x2, block_size=23, **kw)
    for bs in (1, 5, 7):
        part = ntk_kernel(x1, x2, block_size=bs, **kw)
        for a, b in zip(full, part):
            torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)
    gram_full = ntk_kernel(x1, depth=4, block_size=23, fast_cube=False)
    gram_part = ntk_kernel(x1, depth=4, block_size=4, fast_cube=False)
    torch.testing.assert_close(gram_full, gram_part, rtol=1e-14, atol=1e-14)


def test_fast_cube_path_equals_generic_path_and_symmetry():
    x = sample_inputs(40, 11, "cube", torch.Generator().manual_seed(4))
    x = torch.cat([x, x[:3]])  # exact duplicates
    for kw in (dict(bias=False), dict(sigma_b=0.3), dict(param="standard", width=512)):
        fast = ntk_kernel(x, depth=6, get=("ntk", "nngp"), all_depths=True, block_size=9, **kw)
        slow = ntk_kernel(x, depth=6, get=("ntk", "nngp"), all_depths=True, fast_cube=False, **kw)
        for a, b in zip(fast, slow):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)
            torch.testing.assert_close(a, a.transpose(-1, -2), rtol=0, atol=0)
        # x2 given explicitly: same values, duplicates give the diagonal value (no sqrt(ulp) loss)
        k2 = ntk_kernel(x, x.clone(), depth=6, fast_cube=False, **kw)
        torch.testing.assert_close(k2, slow[0][6], rtol=1e-15, atol=0)
        assert torch.equal(k2[40:, :3], k2[:3, :3])


def test_gram_symmetry_and_explicit_x2_gauss():
    x = sample_inputs(37, 6, "gauss", torch.Generator().manual_seed(16))
    th, sg = ntk_kernel(x, depth=5, get=("ntk", "nngp"), block_size=5)
    assert torch.equal(th, th.T) and torch.equal(sg, sg.T)
    torch.testing.assert_close(th, ntk_kernel(x, x.clone(), depth=5), rtol=1e-14, atol=0)
    # diagonal = the exact diagonal recursion Theta^(L+1)(x,x) = q (L+1) + ... (here via depth 0 check)
    q1 = 2 * (x * x).sum(-1) / 6 + 0.1
    torch.testing.assert_close(ntk_kernel(x, depth=0).diagonal(), q1, rtol=1e-15, atol=0)
    # off-diagonal block of a cross kernel equals the Gram entries
    full = ntk_kernel(x, depth=5)
    part = ntk_kernel(x[:10], x[10:], depth=5)
    torch.testing.assert_close(part, full[:10, 10:], rtol=1e-13, atol=0)


def test_all_depths_float32_and_dtype():
    x1 = sample_inputs(12, 5, "gauss", torch.Generator().manual_seed(5))
    alld = ntk_kernel(x1, depth=4, all_depths=True)
    assert alld.shape == (5, 12, 12) and alld.dtype == torch.float64
    for L in range(5):
        torch.testing.assert_close(alld[L], ntk_kernel(x1, depth=L), rtol=1e-15, atol=0)
    k32 = ntk_kernel(x1.float(), depth=4, dtype=torch.float32)
    assert k32.dtype == torch.float32
    torch.testing.assert_close(k32.double(), alld[4], rtol=2e-5, atol=1e-5)
    assert ntk_kernel(x1.float(), depth=2).dtype == torch.float64  # float64 by default
    assert ntk_kernel(x1.float(), depth=2, dtype=None).dtype == torch.float32


def test_bad_input_raises_config_error():
    x = torch.ones(3, 4, dtype=torch.float64)
    for kw in (dict(depth=-1), dict(depth=2, param="mup"), dict(depth=2, param="standard"),
               dict(depth=2, get="ntkk"), dict(depth=2, sigma_w=0.0), dict(depth=2, sigma_b=-1.0),
               dict(depth=2, block_size=0), dict(depth=1.5)):
        with pytest.raises(ConfigError):
            ntk_kernel(x, **kw)
    with pytest.raises(ConfigError):
        ntk_kernel(x, torch.ones(2, 5), depth=1)
    with pytest.raises(ConfigError):
        ntk_kernel(torch.ones(4), depth=1)
    with pytest.raises(ConfigError):
        hypercube_eigenvalues(2, 0)
    with pytest.raises(ConfigError):
        hypercube_eigenvalues([1.0, 2.0], 3)
    with pytest.raises(ConfigError):
        kernel_regression(torch.eye(3), torch.ones(2, 4), torch.ones(3))
    with pytest.raises(ConfigError):
        kernel_regression(torch.eye(3), torch.ones(2, 3), torch.ones(4))
    with pytest.raises(ConfigError):
        kernel_regression(torch.eye(3), torch.ones(2, 3), torch.ones(3), ridge=-1.0)


# ------------------------------------------------------------------ Monte Carlo: finite nets


class _MLP(nn.Module):
    """FC ReLU net of ``nnphys.nets``'s layer map (ntk or standard param.), weights given explicitly."""

    def __init__(self, Ws, bs, param, sw, sb, bias):
        super().__init__()
        self.W = nn.ParameterList([nn.Parameter(w.clone()) for w in Ws])
        self.b = nn.ParameterList([nn.Parameter(b.clone()) for b in bs]) if bias else None
        self.param, self.sw, self.sb = param, sw, sb

    def forward(self, x):
        a = x
        for i, W in enumerate(self.W):
            if self.param == "ntk":
                z = a @ W.T * (self.sw / math.sqrt(W.shape[1]))
                if self.b is not None:
                    z = z + self.sb * self.b[i]
            else:
                z = a @ W.T + (self.b[i] if self.b is not None else 0.0)
            a = torch.relu(z) if i < len(self.W) - 1 else z
        return a.squeeze(-1)


def _draw(M, dims, param, sw, g, dtype):
    Ws, bs = [], []
    for i in range(len(dims) - 1):
        std = 1.0 if param == "ntk" else sw / math.sqrt(dims[i])
        Ws.append(torch.randn(M, dims[i + 1], dims[i], generator=g, dtype=dtype) * std)
        b = torch.randn(M, dims[i + 1], generator=g, dtype=dtype)
        bs.append(b if param == "ntk" else torch.zeros_like(b))
    return Ws, bs


def _ntk_from_weights(x, Ws, bs, param, sw, sb, bias):
    """Explicit back-propagation formula of the empirical NTK for an ensemble. Returns ``(M, P, P)``.

    Theta = sum_layers (s_i^2 a_i.a_i' + beta b_i^2) (delta_i.delta_i'), delta = df/dz.
    """
    M = Ws[0].shape[0]
    a = x.to(Ws[0].dtype).expand(M, *x.shape)
    acts, pres = [a], []
    scales = [sw / math.sqrt(W.shape[2]) if param == "ntk" else 1.0 for W in Ws]
    bsc = (sb if param == "ntk" else 1.0) if bias else 0.0
    for i, W in enumerate(Ws):
        z = scales[i] * a @ W.transpose(1, 2) + bsc * bs[i][:, None, :]
        pres.append(z)
        a = torch.relu(z)
        acts.append(a)
    delta = torch.ones(M, x.shape[0], 1, dtype=Ws[0].dtype)
    theta = torch.zeros(M, x.shape[0], x.shape[0], dtype=torch.float64)
    for i in range(len(Ws) - 1, -1, -1):
        ai = acts[i]
        feat = scales[i] ** 2 * ai @ ai.transpose(1, 2) + (1.0 if bias else 0.0) * bsc**2
        theta += (feat * (delta @ delta.transpose(1, 2))).double()
        if i > 0:
            delta = scales[i] * (delta @ Ws[i]) * (pres[i - 1] > 0)
    return theta


@pytest.mark.parametrize("param,bias", [("ntk", True), ("ntk", False), ("standard", True), ("standard", False)])
def test_backprop_formula_matches_empirical_ntk(param, bias):
    g = torch.Generator().manual_seed(6)
    x = sample_inputs(4, 5, "gauss", g)
    dims = [5, 16, 16, 1]
    Ws, bs = _draw(2, dims, param, SQ2, g, torch.float64)
    bs = [b + (0.0 if param == "ntk" else 0.3) for b in bs]  # nonzero biases in standard param too
    theta = _ntk_from_weights(x, Ws, bs, param, SQ2, 0.5, bias)
    for m in range(2):
        net = _MLP([W[m] for W in Ws], [b[m] for b in bs], param, SQ2, 0.5, bias)
        torch.testing.assert_close(empirical_ntk(net, x), theta[m], rtol=1e-12, atol=1e-12)


def test_empirical_ntk_plain_sequential_and_cross():
    torch.manual_seed(0)  # nn.Linear's own init uses the global RNG; the check is seed-independent
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    x1 = sample_inputs(3, 5, "gauss", torch.Generator().manual_seed(7))
    x2 = sample_inputs(2, 5, "gauss", torch.Generator().manual_seed(8))
    W1, b1, W2, b2 = (p.detach() for p in net.parameters())
    want = _ntk_from_weights(torch.cat([x1, x2]), [W1[None], W2[None]], [b1[None], b2[None]], "standard", SQ2, 1.0, True)[0]
    torch.testing.assert_close(empirical_ntk(net, x1, x2), want[:3, 3:], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(empirical_ntk(net, x1), want[:3, :3], rtol=1e-12, atol=1e-12)
    multi = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    assert empirical_ntk(multi, x1, x2).shape == (3, 2, 3, 3)


def _mc(x, L, H, M, param, bias, sb, seed, chunk=25):
    g = torch.Generator().manual_seed(seed)
    dims = [x.shape[1]] + [H] * L + [1]
    out = []
    for m0 in range(0, M, chunk):
        Ws, bs = _draw(min(chunk, M - m0), dims, param, SQ2, g, torch.float32)
        out.append(_ntk_from_weights(x, Ws, bs, param, SQ2, sb, bias))
    th = torch.cat(out)
    return th.mean(0), th.std(0) / math.sqrt(M)


def _mc_points():
    return torch.tensor([[1.0, 1, 1, 1, 1, 1], [1, -1, 1, 1, -1, 1], [1, 1, -1, -1, -1, 1]], dtype=torch.float64)


@pytest.mark.parametrize("bias", [True, False])
def test_monte_carlo_one_hidden_layer_exact_mean(bias):
    """L=1: layer-1 pre-activations are exactly Gaussian, so E[Theta_H] = Theta exactly at any H.

    H = 1024, 400 inits; |mean - analytic| <= 4 s.e. per entry (6 distinct entries).
    """
    x = _mc_points()
    sb = math.sqrt(0.1)
    mean, se = _mc(x, 1, 1024, 400, "ntk", bias, sb, seed=10)
    an = ntk_kernel(x, depth=1, sigma_b=sb, bias=bias)
    assert ((mean - an).abs() <= 4 * se + 1e-12).all(), ((mean - an) / se)


def test_monte_carlo_standard_parameterisation():
    """Standard param., L=1, H=2048, 300 inits: E[Theta_H] = H K + beta + sigma_w^2 Kdot (x.x'+beta) exactly."""
    x = _mc_points()
    H = 2048
    mean, se = _mc(x, 1, H, 300, "standard", True, 0.0, seed=11)
    an = ntk_kernel(x, depth=1, param="standard", width=H)
    assert ((mean - an).abs() <= 4 * se).all(), ((mean - an) / se)
    # the NNGP is unchanged by the parameterisation
    torch.testing.assert_close(ntk_kernel(x, depth=2, param="standard", width=H, get="nngp"),
                               ntk_kernel(x, depth=2, sigma_b=0.0, get="nngp"))


@pytest.mark.slow
def test_monte_carlo_two_hidden_layers():
    """L=2, H=1024, 200 inits, with biases. Tolerance 4 s.e. + finite-width bias allowance 2 L/H |Theta|
    (E[Theta_H] - Theta = O(L/H) from L=2 on); tighter than the design's Monte Carlo check (atol 0.01, rtol 0.05)."""
    x = _mc_points()
    sb = math.sqrt(0.1)
    mean, se = _mc(x, 2, 1024, 200, "ntk", True, sb, seed=12)
    an = ntk_kernel(x, depth=2, sigma_b=sb)
    tol = 4 * se + 2 * 2 / 1024 * an.abs()
    assert ((mean - an).abs() <= tol).all(), ((mean - an) / se)
    assert ((mean - an).abs() <= 0.01 + 0.05 * an.abs()).all()


# ------------------------------------------------------------------ hypercube spectrum


def _sf7_tol(v: float) -> float:
    """Half a unit in the 7th significant figure."""
    return 0.5 * 10 ** (math.floor(math.log10(abs(v))) - 6)


def test_krawtchouk_against_walsh_sums():
    """M[k, j] = sum over the points x with j minus signs of chi_S(x), |S| = k (the inner sum of the eigenvalue formula);
    checked by enumeration at d = 6, plus the symmetry C(d,k) M[k,j] = C(d,j) M[j,k]."""
    d = 6
    M = krawtchouk(d)
    X = _cube(d)
    nminus = (X < 0).sum(-1)
    for k in range(d + 1):
        chi = X[:, :k].prod(-1)  # S = first k coordinates
        for j in range(d + 1):
            assert M[k, j].item() == chi[nminus == j].sum().item()
            assert math.comb(d, k) * M[k, j].item() == math.comb(d, j) * M[j, k].item()


def test_hypercube_eigenvalues_spec_values_and_brute_force():
    d = 8
    ref = [2.313601, 2.652856e-1, 5.719520e-2, 1.500905e-2, 8.809854e-3, 5.664396e-3, 5.339228e-3,
           4.286658e-3, 4.453871e-3]
    lam = hypercube_eigenvalues(3, d, bias=False)
    for a, b in zip(lam.tolist(), ref):
        assert abs(a - b) <= _sf7_tol(b)
    assert sum(math.comb(d, k) * lam[k].item() for k in range(d + 1)) == pytest.approx(8.0, rel=1e-13)
    # brute force: eigh of the 256 x 256 Gram matrix / 256, with multiplicities C(8, k)
    X = _cube(d)
    for get, lam_k in (("ntk", lam), ("nngp", hypercube_eigenvalues(3, d, bias=False, get="nngp"))):
        for fast in (True, False):
            ev = torch.linalg.eigvalsh(ntk_kernel(X, depth=3, bias=False, get=get, fast_cube=fast)) / 2**d
            want = torch.cat([lam_k[k].repeat(math.comb(d, k)) for k in range(d + 1)]).sort().values
            # NTK: 1e-12 relative. NNGP: its smallest eigenvalues (~9e-5) sit near eigh's
            # backward error eps |K| ~ 3e-16, so an absolute 20 eps lambda_max is added there
            atol = 0.0 if get == "ntk" else 20 * 2.2e-16 * lam_k[0].item()
            torch.testing.assert_close(ev, want, rtol=1e-12, atol=atol)
    gp = hypercube_eigenvalues(3, d, bias=False, get="nngp")
    assert abs(gp[0].item() - 1.238835) <= _sf7_tol(1.238835)
    assert abs(gp[1].item() - 5.372926e-2) <= _sf7_tol(5.372926e-2)
    assert sum(math.comb(d, k) * gp[k].item() for k in range(d + 1)) == pytest.approx(2.0, rel=1e-13)


def test_walsh_functions_are_eigenvectors():
    d = 7
    X = _cube(d)
    K = ntk_kernel(X, depth=2, sigma_b=0.3)
    lam = hypercube_eigenvalues(2, d, sigma_b=0.3)
    for S in ([0], [1, 4], [0, 2, 5], list(range(7))):
        chi = X[:, S].prod(-1)
        torch.testing.assert_close(K @ chi / 2**d, lam[len(S)] * chi, rtol=1e-12, atol=1e-13)


def test_hypercube_eigenvalues_input_forms():
    d = 10
    vals = hypercube_kernel(d, depth=2, get="nngp", bias=False)
    pts = torch.where(torch.arange(d)[None, :] < torch.arange(d + 1)[:, None], -1.0, 1.0).double()  # row j: j minus signs
    one = torch.ones(1, d, dtype=torch.float64)
    torch.testing.assert_close(vals, ntk_kernel(one, pts, depth=2, get="nngp", bias=False)[0], rtol=1e-15, atol=0)

    def kappa(rho):
        j = torch.round((1 - rho) * d / 2).long()
        return ntk_kernel(one, pts[j], depth=2, get="nngp", bias=False)[0]

    a = hypercube_eigenvalues(vals, d)
    torch.testing.assert_close(hypercube_eigenvalues(kappa, d), a, rtol=1e-15, atol=0)
    torch.testing.assert_close(hypercube_eigenvalues(2, d, get="nngp", bias=False), a, rtol=1e-15, atol=0)
    # (x.x'/d)^2 = d^-2 sum_ij x_i x_j x'_i x'_j: lambda_0 = 1/d, lambda_2 = 2/d^2, others 0
    lam = hypercube_eigenvalues(lambda r: r**2, d)
    want = torch.zeros(d + 1, dtype=torch.float64)
    want[0], want[2] = 1 / d, 2 / d**2
    torch.testing.assert_close(lam, want, rtol=1e-13, atol=1e-16)


def test_depth_ratio_table_d32():
    """Reference values (guide, "Definitions"): lambda_2 / lambda_0 at d=32, sigma_b=0, 3 significant figures."""
    want = {1: 2.87e-3, 2: 1.77e-3, 4: 9.86e-4, 6: 6.76e-4, 8: 5.12e-4, 10: 4.12e-4}
    tab = hypercube_kernel(32, depth=10, bias=False, all_depths=True)
    for L, r in want.items():
        lam = hypercube_eigenvalues(tab[L], 32)
        ratio = (lam[2] / lam[0]).item()
        assert abs(ratio - r) <= 0.5 * 10 ** (math.floor(math.log10(r)) - 2), (L, ratio)


def test_bias_free_one_hidden_layer_identities():
    """The bias rule (guide, "Definitions"): Theta(rho) - Theta(-rho) = 4 rho, Sigma(rho) - Sigma(-rho) = 2 rho; at d=32
    lambda_1 = 1/16 exactly and lambda_k = 0 for odd k >= 3."""
    d = 32
    rho = 1 - 2 * torch.arange(d + 1, dtype=torch.float64) / d
    th = hypercube_kernel(d, depth=1, bias=False)
    sg = hypercube_kernel(d, depth=1, bias=False, get="nngp")
    torch.testing.assert_close(th - th.flip(0), 4 * rho, rtol=0, atol=1e-14)
    torch.testing.assert_close(sg - sg.flip(0), 2 * rho, rtol=0, atol=1e-14)
    lam = hypercube_eigenvalues(1, d, bias=False)
    assert lam[1].item() == pytest.approx(0.0625, rel=1e-13)
    assert all(abs(lam[k].item()) < 1e-15 for k in range(3, d + 1, 2))
    assert lam[2].item() > 1e-6  # even degrees survive
    # with bias or at L=2 the odd degree 3 is learnable
    assert hypercube_eigenvalues(1, d, sigma_b=0.3)[3].item() > 1e-9
    assert hypercube_eigenvalues(2, d, bias=False)[3].item() > 1e-9


# ------------------------------------------------------------------ kernel regression


def test_kernel_regression_matches_direct_solve_and_interpolates():
    g = torch.Generator().manual_seed(13)
    xtr, xte = sample_inputs(40, 6, "gauss", g), sample_inputs(15, 6, "gauss", g)
    y = torch.stack([k_local(xtr, 2), k_global(xtr, 2)], dim=1)
    ktr, kte = ntk_kernel(xtr, depth=3), ntk_kernel(xte, xtr, depth=3)
    scale = ktr.trace().item() / 40
    for ridge in (None, 1e-2, 1.0):
        res = kernel_regression(ktr, kte, y, ridge=ridge)
        lam = (1e-8 if ridge is None else ridge) * scale
        assert res.jitter == pytest.approx(lam) and res.jitter_rel == (1e-8 if ridge is None else ridge)
        direct = kte @ torch.linalg.solve(ktr + lam * torch.eye(40, dtype=torch.float64), y)
        torch.testing.assert_close(res.pred, direct, rtol=1e-9, atol=1e-9)
        single = kernel_regression(ktr, kte, y[:, 1], ridge=ridge)
        torch.testing.assert_close(single.pred, res.pred[:, 1], rtol=1e-12, atol=1e-12)
    fit = kernel_regression(ktr, ktr, y).pred
    torch.testing.assert_close(fit, y, rtol=0, atol=1e-5)


def test_kernel_regression_jitter_escalation():
    g = torch.Generator().manual_seed(14)
    n = 30
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    ev = torch.linspace(1.0, 2.0, n, dtype=torch.float64)
    scale = ev.sum().item() / n
    ev[0] = -5e-7 * scale  # needs lambda >= 5e-7 tr/N -> first success at 1e-6
    K = Q @ torch.diag(ev) @ Q.T
    K = (K + K.T) / 2
    res = kernel_regression(K, K[:5], torch.ones(n))
    assert res.jitter_rel == pytest.approx(1e-6)
    ev[0] = -1e-3 * scale  # beyond the cap 1e-4
    K = Q @ torch.diag(ev) @ Q.T
    with pytest.raises(torch.linalg.LinAlgError):
        kernel_regression((K + K.T) / 2, K[:5], torch.ones(n))
    # duplicate training points: singular PSD Gram, the relative jitter suffices
    x = sample_inputs(20, 5, "cube", g)
    x = torch.cat([x, x[:5]])
    ktr = ntk_kernel(x, depth=2, bias=False)
    res = kernel_regression(ktr, ktr, k_local(x, 2))
    assert res.jitter_rel == 1e-8
    torch.testing.assert_close(res.pred, k_local(x, 2), rtol=0, atol=1e-4)


# ------------------------------------------------------------------ exact locality-blindness (claim C5)


def _blindness(law, depths, n_sets, n_test, d=12, N=150, seed0=1000):
    """Normalised test MSE of ridgeless NTK regression (sigma_b = 0), k=2, local and global targets
    on the *same* inputs (one factorisation, paired differences). Returns {L: (n_sets, 2) array}."""
    errs = {L: [] for L in depths}
    for s in range(n_sets):
        ds = make_dataset(N, n_test, d, 2, law=law, seed=seed0 + s)
        y_tr = torch.stack([k_local(ds.x_train, 2), k_global(ds.x_train, 2)], 1)
        y_te = torch.stack([k_local(ds.x_test, 2), k_global(ds.x_test, 2)], 1)
        res = kernel_predict(ds.x_train, y_tr, ds.x_test, depths=depths, bias=False)
        for L in depths:
            errs[L].append(((res[L].pred - y_te) ** 2).mean(0) / y_te.var(0))
    return {L: torch.stack(v) for L, v in errs.items()}


@pytest.mark.slow
def test_locality_blindness_cube_reference_values():
    """d=12, N=150, k=2, 240 data sets of 2000 test points. (i) Paired local - global difference within
    3 s.e. of 0 (exact equality of expectations); (ii) both means within 3 combined s.e. of the
    reference values 0.074 +- 0.001 (L=1) and 0.395 +- 0.003 (L=4) (guide, "Definitions"), treating
    their +- as a s.e."""
    errs = _blindness("cube", [1, 4], 240, 2000)
    for L, ref, ref_se in ((1, 0.074, 0.001), (4, 0.395, 0.003)):
        e = errs[L]
        diff = e[:, 0] - e[:, 1]
        se_diff = diff.std().item() / math.sqrt(len(diff))
        assert abs(diff.mean().item()) <= 3 * se_diff, (L, diff.mean().item(), se_diff)
        for j in range(2):
            m, se = e[:, j].mean().item(), e[:, j].std().item() / math.sqrt(len(e))
            assert abs(m - ref) <= 3 * math.hypot(se, ref_se), (L, j, m, se)


@pytest.mark.slow
def test_locality_blindness_gauss():
    """Gaussian inputs: the same exact equality (signed-permutation invariance), 150 data sets of 500 test points."""
    errs = _blindness("gauss", [1, 4], 150, 500)
    for L in (1, 4):
        diff = errs[L][:, 0] - errs[L][:, 1]
        se_diff = diff.std().item() / math.sqrt(len(diff))
        assert abs(diff.mean().item()) <= 3 * se_diff, (L, diff.mean().item(), se_diff)


# ------------------------------------------------------------------ device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = sample_inputs(50, 9, "gauss", torch.Generator().manual_seed(15))
    xc = make_dataset(50, 10, 9, 2, seed=1).x_train
    for inp in (x, xc):
        cpu = ntk_kernel(inp, depth=5, get=("ntk", "nngp"), all_depths=True)
        gpu = ntk_kernel(inp.cuda(), depth=5, get=("ntk", "nngp"), all_depths=True)
        for a, b in zip(cpu, gpu):
            assert b.device.type == "cuda"
            torch.testing.assert_close(a, b.cpu(), rtol=1e-10, atol=1e-12)
    ktr = ntk_kernel(x.cuda(), depth=2)
    res = kernel_regression(ktr, ktr[:5], k_local(x, 2).cuda())
    assert res.pred.device.type == "cuda"


def test_kernel_target_alignment_known_answers():
    from nnphys.ntk import kernel_target_alignment

    y = torch.tensor([1.0, -1.0, 1.0, 1.0])
    assert kernel_target_alignment(3.0 * torch.outer(y, y), y) == pytest.approx(1.0, abs=1e-15)
    assert kernel_target_alignment(torch.eye(4), y) == pytest.approx(0.5, abs=1e-15)  # 1/sqrt(N)
    assert kernel_target_alignment(-torch.outer(y, y), y) == pytest.approx(-1.0, abs=1e-15)
    # a kernel of a target orthogonal to y has zero alignment with y
    z = torch.tensor([1.0, 1.0, -1.0, 1.0])
    assert abs(z @ y) == 0 and kernel_target_alignment(torch.outer(z, z), y) == pytest.approx(0.0, abs=1e-15)
