"""gradient_noise / decoupling_check against a naive float64 oracle (one autograd.grad per
sample, flattened gradients, dense numpy algebra on an N x P matrix)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nnphys.errors import ConfigError
from nnphys.gradnoise import NoiseTracker, decoupling_check, gradient_noise, per_sample_gram

DT = torch.float64




def mse(out, t):
    """Paper's per-sample MSE 0.5 (f - y)^2, summed over outputs -> (N,)."""
    return 0.5 * ((out - t) ** 2).reshape(out.shape[0], -1).sum(1)


def oracle_rows(model, f, X, y):
    """(N, P) per-sample gradients of f(model(x_n), y_n) (scalar), float64 loop."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        v = f(model(X[i:i + 1]), y[i:i + 1]).sum()
        g = torch.autograd.grad(v, params, allow_unused=True)
        rows.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                               for gi, p in zip(g, params)]))
    return torch.stack(rows).detach().numpy()


def oracle_stats(model, X, y, B, replacement, k):
    G = oracle_rows(model, mse, X, y)
    n = G.shape[0]
    gbar = G.mean(0)
    M = G - gbar
    C1 = M.T @ M / n  # P x P: fine for the tiny test nets
    fac = 1 / B if replacement else (n - B) / (B * (n - 1))
    ev = np.sort(np.linalg.eigvalsh(C1))[::-1][:k]
    return dict(norms=np.linalg.norm(G, axis=1), gbar=np.linalg.norm(gbar),
                tr=np.trace(C1), trB=fac * np.trace(C1), ev=ev, G=G)


def mlp(bias=True, din=5, width=7, dout=1, seed=0, act=nn.Tanh):
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(din, width, bias=bias), act(),
                             nn.Linear(width, width, bias=bias), act(),
                             nn.Linear(width, dout, bias=bias)).to(DT)


def data(n=24, din=5, dout=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, din, generator=g, dtype=DT), torch.randn(n, dout, generator=g, dtype=DT)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("bias,act", [(True, nn.Tanh), (False, nn.Tanh),
                                      (True, lambda: nn.ReLU(inplace=True))])
@pytest.mark.parametrize("replacement", [True, False])
def test_fast_path_matches_loop_oracle(bias, act, replacement):
    model = mlp(bias=bias, dout=3, act=act)
    X, y = data(dout=3)
    o = oracle_stats(model, X, y, 5, replacement, 6)
    gn = gradient_noise(model, mse, (X, y), batch_size=5, replacement=replacement, k=6)
    assert gn.method == "linear"
    assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
    assert rel(gn.grad_norm, o["gbar"]) <= 1e-10
    assert rel(gn.trace_cov, o["tr"]) <= 1e-10
    assert rel(gn.trace_noise, o["trB"]) <= 1e-10
    assert rel(gn.cov_eigenvalues, o["ev"]) <= 1e-10
    # Gram route: the sum of all N eigenvalues of the centred Gram equals tr C_1
    full = gradient_noise(model, mse, (X, y), k=X.shape[0])
    assert rel(full.cov_eigenvalues.sum(), o["tr"]) <= 1e-10


@pytest.mark.parametrize("method", ["linear", "vmap", "loop"])
@pytest.mark.parametrize("bias", [True, False])
def test_per_sample_gram_matches_loop_oracle(method, bias):
    """The library's one per-sample Gram K = G G^T (gradient_noise's, and the NE probe's through
    noise_enhancement.noise.per_sample_gram) against the float64 loop oracle, every method; with a
    conv layer on the fast path (tokens: materialised per-sample weight gradients)."""
    model = mlp(bias=bias, dout=3)
    X, y = data(dout=3)
    K, losses = per_sample_gram(model, mse, (X, y), method=method)
    G = oracle_rows(model, mse, X, y)
    assert K.dtype == torch.float64 and K.shape == (X.shape[0],) * 2
    assert rel(K.numpy(), G @ G.T) <= 1e-10
    assert rel(losses.numpy(), mse(model(X), y).detach().numpy()) <= 1e-12
    with torch.random.fork_rng():
        torch.manual_seed(3)
        conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=bias), nn.Tanh(), nn.Flatten(),
                             nn.Linear(3 * 5 * 5, 2, bias=bias)).to(DT)
    Xc = torch.randn(10, 2, 5, 5, generator=torch.Generator().manual_seed(4), dtype=DT)
    yc = torch.randn(10, 2, generator=torch.Generator().manual_seed(5), dtype=DT)
    Kc, _ = per_sample_gram(conv, mse, (Xc, yc), method="auto" if method == "linear" else method)
    Gc = oracle_rows(conv, mse, Xc, yc)
    assert rel(Kc.numpy(), Gc @ Gc.T) <= 1e-10


def test_lanczos_spectrum_path_matches_dense():
    """N > 512 with few eigenvalues uses Lanczos (scipy eigsh) instead of dense eigvalsh."""
    model = mlp(din=3, width=4)
    X, y = data(n=600, din=3)
    few = gradient_noise(model, mse, (X, y), k=5).cov_eigenvalues
    dense = gradient_noise(model, mse, (X, y), k=200).cov_eigenvalues[:5]
    assert rel(few, dense) <= 1e-10


def test_mean_gradient_normalisation():
    """(1/N) Σ ∇ℓ_n = ∇L with ℓ = 0.5 (f - y)^2 (the normalisation, unit-tested)."""
    model = mlp()
    X, y = data()
    G = oracle_rows(model, mse, X, y)
    L = mse(model(X), y).mean()
    g = torch.autograd.grad(L, list(model.parameters()))
    full = torch.cat([t.reshape(-1) for t in g]).detach().numpy()
    assert rel(G.mean(0), full) < 1e-12
    gn = gradient_noise(model, mse, (X, y))
    assert rel(gn.grad_norm, np.linalg.norm(full)) < 1e-12
    assert abs(gn.loss - float(L.detach())) < 1e-12


class ScaledLinear(nn.Module):
    """A module with a raw nn.Parameter used directly: no fast path."""

    def __init__(self, din, dout):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = nn.Parameter(torch.randn(dout, din, generator=g, dtype=DT) / din**0.5)
        self.s = nn.Parameter(torch.ones(dout, dtype=DT))

    def forward(self, x):
        return torch.tanh(x @ self.w.T) * self.s


@pytest.mark.parametrize("method", ["auto", "vmap", "loop"])
def test_fallback_matches_oracle(method):
    model = nn.Sequential(ScaledLinear(5, 6), nn.LayerNorm(6, dtype=DT), nn.Linear(6, 2, dtype=DT))
    X, y = data(dout=2)
    o = oracle_stats(model, X, y, 4, False, 5)
    gn = gradient_noise(model, mse, (X, y), batch_size=4, k=5, method=method, chunk_size=7)
    assert gn.method == ("vmap" if method == "auto" else method)
    assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
    assert rel(gn.trace_noise, o["trB"]) <= 1e-10
    assert rel(gn.cov_eigenvalues, o["ev"]) <= 1e-10


def test_sequence_and_shared_layers_fast_path():
    """Token axis and a layer called twice: per-sample gradients sum over tokens and calls."""

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4, dtype=DT)
            self.b = nn.Linear(4, 1, dtype=DT)

        def forward(self, x):  # x: (N, T, 4)
            h = torch.tanh(self.a(torch.tanh(self.a(x))))  # self.a shared
            return self.b(h).mean(1)

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Seq()
    g = torch.Generator().manual_seed(2)
    X = torch.randn(10, 3, 4, generator=g, dtype=DT)
    y = torch.randn(10, 1, generator=g, dtype=DT)
    o = oracle_stats(model, X, y, 2, True, 4)
    gn = gradient_noise(model, mse, (X, y), batch_size=2, replacement=True, k=4)
    assert gn.method == "linear"
    assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
    assert rel(gn.cov_eigenvalues, o["ev"]) <= 1e-10


def test_conv2d_fast_path():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.ReLU(),
                              nn.Conv2d(3, 2, 2, dilation=2), nn.Flatten(),
                              nn.Linear(2 * 2 * 2, 1)).to(DT)
    g = torch.Generator().manual_seed(5)
    X = torch.randn(9, 2, 8, 8, generator=g, dtype=DT)
    y = torch.randn(9, 1, generator=g, dtype=DT)
    o = oracle_stats(model, X, y, 3, False, 4)
    gn = gradient_noise(model, mse, (X, y), batch_size=3, k=4)
    assert gn.method == "linear"
    assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
    assert rel(gn.cov_eigenvalues, o["ev"]) <= 1e-10


@pytest.mark.parametrize("chunk", [None, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_per_sample_kernel_heads_and_chunks(monkeypatch, chunk, bias):
    """The conv blocks (torch's grouped weight-gradient kernel, samples chunked; Q heads through
    decoupling_check's Gram) against the float64 per-sample loop, with and without bias (the
    backward then targets the first layer's weight)."""
    import nnphys.gradnoise as gnmod

    if chunk is not None:  # force several sample chunks on a small N
        monkeypatch.setattr(gnmod, "_conv_chunk", lambda m, q: chunk)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2, bias=bias), nn.Tanh(),
                              nn.Conv2d(3, 4, 3, padding=(1, 0), dilation=(1, 2), bias=bias),
                              nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 2, 3, bias=bias)).to(DT)
    g = torch.Generator().manual_seed(6)
    X = torch.randn(11, 2, 12, 12, generator=g, dtype=DT)
    y = torch.randn(11, 3, generator=g, dtype=DT)
    o = oracle_stats(model, X, y, 3, True, 5)
    gn = gradient_noise(model, mse, (X, y), batch_size=3, replacement=True, k=5)
    assert gn.method == "linear"
    assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
    assert rel(gn.grad_norm, o["gbar"]) <= 1e-10
    assert rel(gn.cov_eigenvalues, o["ev"]) <= 1e-10
    # Q = 3 heads: the Gauss-Newton trace (1/N) Σ_n Σ_c ||∇f_nc||² of decoupling_check
    params = list(model.parameters())
    gn_tr = 0.0
    for i in range(X.shape[0]):
        out = model(X[i:i + 1]).reshape(-1)
        for c in range(3):
            gs = torch.autograd.grad(out[c], params, retain_graph=True)
            gn_tr += float(sum((t * t).sum() for t in gs)) / X.shape[0]
    assert rel(decoupling_check(model, mse, (X, y), k=4).gauss_newton_trace, gn_tr) <= 1e-10


def test_layers_whose_input_needs_no_gradient_are_all_seen():
    """The fast path's backward targets the first layers' parameters only: a second layer that
    reads a constant (a buffer), not X, and an X that itself requires grad must not be missed."""

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(5, 4, dtype=DT)
            self.c = nn.Linear(3, 4, bias=False, dtype=DT)
            self.out = nn.Linear(4, 2, dtype=DT)
            self.register_buffer("const", torch.linspace(-1, 1, 3, dtype=DT))

        def forward(self, x):
            return self.out(torch.tanh(self.a(x) * self.c(self.const.expand(x.shape[0], 3))))

    with torch.random.fork_rng():
        torch.manual_seed(2)
        model = TwoInputs()
    X, y = data(dout=2)
    o = oracle_stats(model, X, y, 4, False, 4)
    for x in (X, X.clone().requires_grad_(True)):
        gn = gradient_noise(model, mse, (x, y), batch_size=4, k=4)
        assert gn.method == "linear"
        assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
        assert rel(gn.grad_norm, o["gbar"]) <= 1e-10
        assert rel(gn.cov_eigenvalues, o["ev"]) <= 1e-10


def test_fast_path_in_sample_chunks_matches_loop_oracle():
    """k = 0: the fast path runs over chunks of samples (chunk_size; default 256 with a Conv2d) and shares the
    sums Σ_n g_n between them; every layer kind, against the float64 loop."""
    with torch.random.fork_rng():
        torch.manual_seed(4)
        conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten(),
                             nn.Linear(3 * 4 * 4, 2)).to(DT)
        tok = nn.Sequential(nn.Linear(4, 5, dtype=DT), nn.Tanh(), nn.Flatten(), nn.Linear(15, 2, dtype=DT))
    g = torch.Generator().manual_seed(7)
    cases = [(mlp(dout=2), *data(n=13, dout=2)),
             (conv, torch.randn(13, 2, 8, 8, generator=g, dtype=DT), torch.randn(13, 2, generator=g, dtype=DT)),
             (tok, torch.randn(13, 3, 4, generator=g, dtype=DT), torch.randn(13, 2, generator=g, dtype=DT))]
    for model, X, y in cases:
        o = oracle_stats(model, X, y, 3, False, 1)
        for cs in (1, 5, 13):
            gn = gradient_noise(model, mse, (X, y), batch_size=3, method="linear", chunk_size=cs)
            assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10
            assert rel(gn.grad_norm, o["gbar"]) <= 1e-10
            assert rel(gn.trace_noise, o["trB"]) <= 1e-10
            assert rel(gn.per_sample_losses, mse(model(X), y).detach()) <= 1e-12


def test_frozen_parameters_are_excluded():
    model = mlp()
    model[2].weight.requires_grad_(False)
    X, y = data()
    o = oracle_stats(model, X, y, 1, True, 3)
    gn = gradient_noise(model, mse, (X, y), k=3)
    assert gn.n_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert rel(gn.per_sample_grad_norms, o["norms"]) <= 1e-10


@pytest.mark.parametrize("method", ["linear", "vmap"])
def test_decoupling_check_matches_dense(method):
    """Dense P x P versions of (1/N) Σ ℓ C_f and L (1/N) Σ C_f against the Gram route."""
    model = mlp(dout=2)
    X, y = data(dout=2)
    params = list(model.parameters())
    n = X.shape[0]
    ell = mse(model(X), y).detach().numpy()
    coupled = 0
    gn = 0
    for i in range(n):
        out = model(X[i:i + 1]).reshape(-1)
        for c in range(out.shape[0]):
            g = torch.autograd.grad(out[c], params, retain_graph=True)
            v = torch.cat([t.reshape(-1) for t in g]).detach().numpy()
            coupled = coupled + ell[i] * np.outer(v, v) / n
            gn = gn + np.outer(v, v) / n
    dec = ell.mean() * gn
    k = 6
    res = decoupling_check(model, mse, (X, y), k=k, method=method)
    assert rel(res.coupled_eigenvalues, np.sort(np.linalg.eigvalsh(coupled))[::-1][:k]) < 1e-10
    assert rel(res.decoupled_eigenvalues, np.sort(np.linalg.eigvalsh(dec))[::-1][:k]) < 1e-10
    assert rel(res.coupled_trace, np.trace(coupled)) < 1e-10
    assert rel(res.gauss_newton_trace, np.trace(gn)) < 1e-10
    # C-H alignment, H's top eigenvalues and C along H's eigenvectors, all in P x P
    align = np.sum(coupled * gn) / (np.linalg.norm(coupled) * np.linalg.norm(gn))
    assert abs(res.alignment - align) < 1e-10
    hv, V = np.linalg.eigh(gn)
    order = np.argsort(hv)[::-1][:k]
    c_along = np.einsum("pi,pq,qi->i", V[:, order], coupled, V[:, order])
    assert rel(res.gn_eigenvalues, hv[order]) < 1e-10
    assert rel(res.coupled_along_gn, c_along) < 1e-8
    gamma = np.polyfit(np.log(hv[order]), np.log(c_along), 1)[0]
    assert abs(res.gamma - gamma) < 1e-6
    assert 0 < res.alignment < 1  # the losses differ across samples


def test_alignment_is_one_when_every_sample_has_the_same_loss():
    """Decoupling is exact when ℓ_μ is constant: C = L H, so alignment 1 and gamma 1."""
    model = mlp()
    X, _ = data()
    with torch.no_grad():
        y = model(X) + 0.5  # every residual is -0.5
    res = decoupling_check(model, mse, (X, y), k=4)
    assert abs(res.alignment - 1) < 1e-12
    assert abs(res.gamma - 1) < 1e-9
    assert rel(res.coupled_along_gn, res.loss * res.gn_eigenvalues) < 1e-10


def test_minibatch_covariance_monte_carlo():
    """tr C_B is the variance of an actual minibatch gradient (both sampling schemes):
    Monte Carlo over 4000 minibatches, tolerance 5 standard errors of the MC variance."""
    model = mlp(width=4)
    X, y = data(n=12)
    G = oracle_rows(model, mse, X, y)
    gbar = G.mean(0)
    rng = np.random.default_rng(0)
    B, R = 4, 4000
    for replacement in (True, False):
        if replacement:
            idx = rng.integers(0, 12, size=(R, B))
        else:
            idx = np.argsort(rng.random((R, 12)), axis=1)[:, :B]
        dev = G[idx].mean(1) - gbar
        d2 = (dev**2).sum(1)
        gn = gradient_noise(model, mse, (X, y), batch_size=B, replacement=replacement)
        se = d2.std(ddof=1) / np.sqrt(R)
        assert abs(d2.mean() - gn.trace_noise) < 5 * se, (replacement, d2.mean(), gn.trace_noise)


def test_noise_tracker_records():
    model = mlp()
    X, y = data()
    tr = NoiseTracker(model, mse, (X, y), batch_size=4, every=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(6):
        opt.zero_grad()
        mse(model(X), y).mean().backward()
        opt.step()
        tr(step)
    arr = tr.as_arrays()
    assert list(arr["step"]) == [0, 2, 4]
    assert np.all(arr["trace_noise"] > 0) and np.all(np.diff(arr["loss"]) < 0)


def test_bad_inputs_raise_config_errors():
    model = mlp()
    X, y = data(n=10)
    with pytest.raises(ConfigError, match="batch_size"):
        gradient_noise(model, mse, (X, y), batch_size=11)
    with pytest.raises(ConfigError, match="batch_size"):
        gradient_noise(model, mse, (X, y), batch_size=0)
    with pytest.raises(ConfigError, match="data.*same leading sample axis"):
        gradient_noise(model, mse, (X, y[:9]))
    with pytest.raises(ConfigError, match="loss_fn.*reduction='none'"):
        gradient_noise(model, nn.MSELoss(), (X, y))
    with pytest.raises(ConfigError, match="loss_fn"):
        gradient_noise(model, nn.MSELoss(), (X, y), method="vmap")
    with pytest.raises(ConfigError, match="method"):
        gradient_noise(model, mse, (X, y), method="fast")
    with pytest.raises(ConfigError, match="k: must be <= N = 10"):
        gradient_noise(model, mse, (X, y), k=11)
    bn = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).to(DT)
    with pytest.raises(ConfigError, match="BatchNorm"):
        gradient_noise(bn, mse, (X, y))
    with pytest.raises(ConfigError, match="method"):
        gradient_noise(nn.Sequential(ScaledLinear(5, 1)), mse, (X, y), method="linear")
    # with replacement any B >= 1 is fine
    assert gradient_noise(model, mse, (X, y), batch_size=11, replacement=True).trace_noise > 0


# ----------------------------------------------------------------------------- the one call shape


def _loader(X, y, batch_size=7, shuffle=True):
    ds = torch.utils.data.TensorDataset(X, y)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(0))


def test_dataloader_list_and_batch_give_the_same_statistics():
    model = mlp(dout=2)
    X, y = data(dout=2)
    ref = gradient_noise(model, mse, (X, y), batch_size=4, k=5)
    unshuffled = gradient_noise(model, mse, _loader(X, y, shuffle=False), batch_size=4, k=5)
    shuffled = gradient_noise(model, mse, _loader(X, y), batch_size=4, k=5)
    pairs = gradient_noise(model, mse, [(X[:10], y[:10]), (X[10:], y[10:])], batch_size=4, k=5)
    for other in (unshuffled, shuffled, pairs):
        assert abs(other.trace_noise - ref.trace_noise) <= 1e-12 * ref.trace_noise
        assert rel(other.noise_eigenvalues, ref.noise_eigenvalues) <= 1e-10
        assert abs(other.loss - ref.loss) <= 1e-12 * abs(ref.loss)
    assert torch.equal(unshuffled.per_sample_grad_norms, ref.per_sample_grad_norms)


def test_deprecated_positional_form_and_top_k_still_work():
    model = mlp()
    X, y = data()
    ref = gradient_noise(model, mse, (X, y), batch_size=4, k=3)
    with pytest.warns(DeprecationWarning, match=r"gradient_noise\(model, loss_fn, X, y\) is deprecated"):
        old = gradient_noise(model, mse, X, y, batch_size=4, replacement=False)  # digits_noise's call
    assert old.trace_noise == ref.trace_noise
    with pytest.warns(DeprecationWarning, match="top_k= is deprecated; use k="):
        old = gradient_noise(model, mse, X, y, batch_size=4, top_k=3)
    assert torch.equal(old.noise_eigenvalues, ref.noise_eigenvalues)
    with pytest.raises(ConfigError, match="k: given together with its deprecated alias 'top_k'"):
        gradient_noise(model, mse, (X, y), k=3, top_k=3)
    dref = decoupling_check(model, mse, (X, y), k=4)
    with pytest.warns(DeprecationWarning):
        dold = decoupling_check(model, mse, X, y, 4)  # old positional top_k
    assert torch.equal(dold.coupled_eigenvalues, dref.coupled_eigenvalues)
    with pytest.warns(DeprecationWarning):
        tr = NoiseTracker(model, mse, X, y, batch_size=4)
    assert tr(0).trace_noise == ref.trace_noise


def test_misuse_gives_one_clear_error():
    from nnphys.curvature.inputs import DataTypeError

    model = mlp()
    X, y = data()
    gen = ((X[i:i + 6], y[i:i + 6]) for i in range(0, 24, 6))
    with pytest.raises(DataTypeError, match="data: is a one-shot iterator .* would be exhausted") as e:
        gradient_noise(model, mse, gen)
    assert isinstance(e.value, TypeError) and isinstance(e.value, ConfigError)
    with pytest.raises(DataTypeError, match="data: inputs are float64 but the model's parameters are "
                                            "float32; nnphys does not cast"):
        gradient_noise(mlp().float(), mse, (X, y))
    w = torch.ones(24, dtype=DT)
    with pytest.raises(DataTypeError, match=r"data: a batch must be a pair \(x, y\) of tensors \(got a "
                                            r"tuple of 3 items"):
        gradient_noise(model, mse, (X, y, w))
    three = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y, w), batch_size=8)
    with pytest.raises(DataTypeError, match=r"data: batch 0 must be a pair"):
        gradient_noise(model, mse, three)
    with pytest.raises(ConfigError, match=r"loss_fn: returned a scalar \(a mean- or sum-reduced loss\).*"
                                          r"reduction='none'"):
        gradient_noise(model, lambda o, t: mse(o, t).mean(), (X, y))
    with pytest.raises(DataTypeError, match="data: .*got a single tensor"):
        gradient_noise(model, mse, X)


def test_repr_is_short_and_to_dict_is_plain():
    import json

    model = mlp(dout=3)
    X, y = data(n=200, dout=3)
    gn = gradient_noise(model, mse, (X, y), batch_size=8, k=50)
    text = repr(gn)
    assert len(text.splitlines()) <= 10 and len(text) < 1000, text
    assert "tr C_B" in text and "(50 values)" in text
    d = gn.to_dict()
    json.dumps(d)
    assert "per_sample_grad_norms" not in d and len(gn.to_dict(full=True)["per_sample_grad_norms"]) == 200
    assert d["trace_noise"] == gn.trace_noise and d["noise_eigenvalues"] == gn.noise_eigenvalues.tolist()
    assert d["noise_to_signal"] == pytest.approx(gn.trace_noise / gn.grad_norm ** 2, rel=1e-15)
    dc = decoupling_check(model, mse, (X, y), k=30)
    assert len(repr(dc).splitlines()) <= 10 and len(repr(dc)) < 1000
    json.dumps(dc.to_dict())
