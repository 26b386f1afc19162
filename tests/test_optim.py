"""Tests of nnphys.noise_enhancement.optimizer: NoiseEnhancedSGD, its batched form, and the alpha <-> B_eff relations.

Kinds: reference values of f(alpha), B_eff and the finite-population toy [derived]; Monte Carlo against the derived mean and
covariance (tolerances from the stated CI); reference equality against torch.optim.SGD (alpha = 0,
float64, exact); batched form against the per-model optimizer; behaviour (state_dict, param groups,
schedulers, bad input).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from nnphys.errors import ConfigError
from nnphys.nets import MLPEnsemble
from nnphys.noise_enhancement.optimizer import NoiseEnhancedSGD, alpha_for, effective_batch_size, ne_update_, ne_covariance_factor

# ------------------------------------------------------------------------------------------------
# reference values (B_eff, the finite-population toy) [derived]
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha,f", [(0, 1), (0.5, 2.5), (1, 5), (2, 13), (3, 25)])
def test_ne_covariance_factor_table(alpha, f):
    assert ne_covariance_factor(alpha) == f


def test_alpha_match_gives_f8_exactly():
    a = 0.5 * (math.sqrt(15) - 1)
    assert ne_covariance_factor(a) == pytest.approx(8.0, abs=1e-12)
    assert alpha_for(1024, 128) == pytest.approx(1.436492, abs=1e-6)
    assert alpha_for(128, 16) == pytest.approx(a, abs=1e-12)


@pytest.mark.parametrize("r,alpha", [(10, 1.6794), (8, 1.4365), (16, 2.2839), (5, 1.0), (13, 2.0)])
def test_alpha_for_inverse_values(r, alpha):
    # the last two are the SVAG correspondence l = 5 -> 1, l = 13 -> 2
    assert alpha_for(1024, 1024 / r) == pytest.approx(alpha, abs=5e-5)
    assert ne_covariance_factor(alpha_for(1024, 1024 / r)) == pytest.approx(r, rel=1e-12)


@pytest.mark.parametrize("alpha,beff", [(0, 1024), (0.5, 409.6), (1, 204.8), (2, 78.8), (3, 41.0)])
def test_beff_table_at_1024(alpha, beff):
    assert effective_batch_size(1024, alpha) == pytest.approx(beff, abs=0.05)


def test_independent_mode_round_trip():
    n, b = 200, 20
    for a in (0.0, 0.5, 1.0, 2.0):
        be = effective_batch_size(b, a, "independent", n_samples=n)
        assert 1 / be - 1 / n == pytest.approx(ne_covariance_factor(a) * (1 / b - 1 / n), rel=1e-12)
        assert alpha_for(b, be, "independent", n_samples=n) == pytest.approx(a, abs=1e-10)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), -float("inf")])
def test_bad_alpha_rejected_everywhere(bad):
    p = [nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError):
        NoiseEnhancedSGD(p, lr=0.1, alpha=bad)
    with pytest.raises(ConfigError):
        NoiseEnhancedSGD(p, lr=0.1, alpha=bad)
    with pytest.raises(ConfigError):
        ne_covariance_factor(bad)
    with pytest.raises(ConfigError):
        ne_update_([torch.zeros(2, 3)], [torch.zeros(2, 3)], [torch.zeros(2, 3)], 0.1, torch.tensor([0.0, bad]))


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_lr_rejected(lr):
    with pytest.raises(ConfigError) as e:
        NoiseEnhancedSGD([nn.Parameter(torch.zeros(3))], lr=lr, alpha=1.0)
    assert e.value.field == "lr"


def test_bad_group_and_other_options_rejected():
    w, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(1))
    opt = NoiseEnhancedSGD([w], lr=0.1, alpha=1.0)
    with pytest.raises(ConfigError):
        opt.add_param_group({"params": [b], "alpha": -1.0})
    assert len(opt.param_groups) == 1  # the bad group was not kept
    with pytest.raises(ConfigError):
        NoiseEnhancedSGD([w], lr=0.1, alpha=1.0, nesterov=True)  # needs momentum
    with pytest.raises(ConfigError):
        NoiseEnhancedSGD([w], lr=0.1, alpha=1.0, weight_decay=-1)
    with pytest.raises(ConfigError):
        alpha_for(16, 32)  # B_eff > B
    with pytest.raises(ConfigError):
        effective_batch_size(16, 1.0, "independent")  # needs N


def test_step_without_closure_is_refused():
    w = nn.Parameter(torch.ones(2))
    opt = NoiseEnhancedSGD([w], lr=0.1, alpha=1.0)
    (w**2).sum().backward()
    with pytest.raises(ConfigError):
        opt.step()


# ------------------------------------------------------------------------------------------------
# Monte Carlo: mean and covariance of g_NE on a quadratic problem [derived]
# ------------------------------------------------------------------------------------------------


def _quadratic_problem(n=50, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    return c


def test_optimizer_mc_unbiased_and_covariance_factor():
    """Per-sample loss l_i = |theta - c_i|^2 / 2, so g_B = theta - mean(c_B) and, with replacement,
    Cov[g_B] = C / B exactly (C the population covariance of c). From a fixed theta with lr = 1 the
    step is -g_NE. R = 4000 draws: mean within 4.5 s.e. per coordinate; trace ratio within 4 s.e.
    of f(alpha), the s.e. of the trace estimate from its sample fourth moment."""
    c = _quadratic_problem()
    n, d, bsz, alpha, R = len(c), c.shape[1], 5, 1.5, 4000
    theta0 = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)
    theta = nn.Parameter(theta0.clone())
    opt = NoiseEnhancedSGD([theta], lr=1.0, alpha=alpha)
    gen = torch.Generator().manual_seed(1)

    def closure():
        idx = torch.randint(0, n, (bsz,), generator=gen)
        loss = 0.5 * ((theta - c[idx]) ** 2).sum(1).mean()
        loss.backward()
        return loss

    g = torch.empty(R, d, dtype=torch.float64)
    for r in range(R):
        with torch.no_grad():
            theta.copy_(theta0)
        opt.step(closure)
        g[r] = theta0 - theta.detach()
    grad_L = theta0 - c.mean(0)
    C = torch.cov(c.T, correction=0)
    se = g.std(0) / math.sqrt(R)
    assert torch.all((g.mean(0) - grad_L).abs() < 4.5 * se)
    sq = ((g - grad_L) ** 2).sum(1)  # unbiased for tr Cov since the mean is known exactly
    tr_hat, tr_se = sq.mean(), sq.std() / math.sqrt(R)
    tr_theory = ne_covariance_factor(alpha) * torch.trace(C) / bsz
    assert abs(tr_hat - tr_theory) < 4 * tr_se
    assert tr_se / tr_theory < 0.05  # the test has power: it resolves f = 7 from f = 6 +- ...


def _without_replacement_pairs(R, n, b, gen):
    """R draws of 2b distinct indices in random order (first b: B, last b: B'), the `split` mode:
    the 2b smallest of n i.i.d. uniform keys, sorted by key, are a uniform random ordered subset."""
    return torch.rand(R, n, generator=gen).topk(2 * b, dim=1, largest=False).indices


@pytest.mark.slow
def test_finite_population_toy_table():
    """The finite-population toy: N = 200, B = 20, scalar per-sample gradients. Var[g_NE] / Var[g_B] is f(alpha)
    for `independent` draws and f + 2 alpha (1 + alpha) B / (N - B) for `split` (table: 2.667,
    5.444, 14.333 at alpha = 0.5, 1, 2), with Var[g_B] = (N - B) / (B (N - 1)) C exactly. g_NE is
    computed by ne_update_ (M = R scalar members, lr = 1). R = 1e5 draws per mode; tolerance
    4 s.e. of the variance estimate (from its fourth moment); the s.e. is < 0.6% of the value."""
    n, b, R = 200, 20, 100_000
    gen = torch.Generator().manual_seed(7)
    gi = torch.randn(n, generator=gen, dtype=torch.float64) ** 2  # skewed per-sample gradients
    C = float(gi.var(correction=0))
    var_b = (n - b) / (b * (n - 1)) * C
    split_idx = _without_replacement_pairs(R, n, b, gen)
    ind_a = _without_replacement_pairs(R, n, b, gen)[:, :b]
    ind_b = _without_replacement_pairs(R, n, b, gen)[:, :b]
    mean_of = lambda idx: gi[idx].mean(1)  # noqa: E731
    pairs = {"split": (mean_of(split_idx[:, :b]), mean_of(split_idx[:, b:])), "independent": (mean_of(ind_a), mean_of(ind_b))}
    for alpha, split_ratio in ((0.5, 2.667), (1.0, 5.444), (2.0, 14.333)):
        f = ne_covariance_factor(alpha)
        assert f + 2 * alpha * (1 + alpha) * b / (n - b) == pytest.approx(split_ratio, abs=5e-4)
        # the split variance equals without-replacement SGD at B' = B / f
        bp = b / f
        assert split_ratio * var_b == pytest.approx((n - bp) / (bp * (n - 1)) * C, rel=2e-4)
        for mode, want in (("split", f + 2 * alpha * (1 + alpha) * b / (n - b)), ("independent", f)):
            p = torch.zeros(R, dtype=torch.float64)
            ne_update_([p], [pairs[mode][0]], [pairs[mode][1]], 1.0, torch.full((R,), alpha, dtype=torch.float64))
            g = -p
            dev2 = (g - gi.mean()) ** 2  # the mean is exact (unbiasedness), so this is unbiased for Var
            ratio = dev2.mean() / var_b
            se = dev2.std() / math.sqrt(R) / var_b
            assert abs(g.mean() - gi.mean()) < 4 * g.std() / math.sqrt(R), mode
            assert abs(ratio - want) < 4 * se, (mode, alpha, float(ratio), want, float(se))
            assert se / want < 0.006


def test_sgd_variance_finite_population():
    """Var[g_B] itself matches (N - B) / (B (N - 1)) C for without-replacement draws,
    and at B = 4 (the split-mode B_eff at alpha = 1) too."""
    n, R = 200, 100_000
    gen = torch.Generator().manual_seed(3)
    gi = torch.randn(n, generator=gen, dtype=torch.float64)
    C = float(gi.var(correction=0))
    for b in (20, 4):
        g = gi[_without_replacement_pairs(R, n, b, gen)[:, :b]].mean(1)
        dev2 = (g - gi.mean()) ** 2
        want = (n - b) / (b * (n - 1)) * C
        assert abs(dev2.mean() - want) < 4 * dev2.std() / math.sqrt(R)


# ------------------------------------------------------------------------------------------------
# alpha = 0 is torch.optim.SGD, step for step, bit for bit (float64) [derived]
# ------------------------------------------------------------------------------------------------


def _mlp(seed=0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return net


def _batches(n_steps, b=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (b,), generator=g))
            for _ in range(n_steps)]


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.3},
        {"momentum": 0.8, "nesterov": True},
        {"weight_decay": 1e-2},
        {"momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
    ],
)
def test_alpha0_equals_torch_sgd_exactly(kw):
    net_a, net_b = _mlp(), _mlp()
    # two parameter groups with their own lr and weight decay
    groups = lambda net: [  # noqa: E731
        {"params": net[0].parameters()},
        {"params": net[2].parameters(), "lr": 0.03, "weight_decay": 1e-3},
    ]
    sgd = torch.optim.SGD(groups(net_a), lr=0.1, foreach=False, **kw)
    ne = NoiseEnhancedSGD(groups(net_b), lr=0.1, alpha=0.0, **kw)
    sch_a = torch.optim.lr_scheduler.StepLR(sgd, step_size=3, gamma=0.5)
    sch_b = torch.optim.lr_scheduler.StepLR(ne, step_size=3, gamma=0.5)
    first, second = _batches(10, seed=1), _batches(10, seed=2)
    loss_fn = nn.CrossEntropyLoss()
    for t in range(10):
        x, y = first[t]

        def closure_a():
            sgd.zero_grad()
            loss = loss_fn(net_a(x), y)
            loss.backward()
            return loss

        sgd.step(closure_a)
        ne.step_batches(net_b, loss_fn, first[t], second[t])  # B' is ignored at alpha = 0
        sch_a.step()
        sch_b.step()
        for pa, pb in zip(net_a.parameters(), net_b.parameters()):
            assert torch.equal(pa, pb), f"step {t}"
    assert ne.param_groups[1]["lr"] == sgd.param_groups[1]["lr"] == 0.03 * 0.5**3


def test_full_batch_ne_is_gradient_descent_and_reaches_the_optimum():
    """With B = B' = the whole data set, g_NE = grad L for any alpha: NE is GD and converges to the
    least-squares solution (an optimizer run to its known optimum)."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 4, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64) + 0.1 * torch.randn(40, generator=g, dtype=torch.float64)
    w = nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = NoiseEnhancedSGD([w], lr=0.3, alpha=2.0)
    model = lambda x: x @ w  # noqa: E731
    mse = lambda out, t: ((out - t) ** 2).mean()  # noqa: E731
    for _ in range(500):
        opt.step_batches(model, mse, (X, y), (X, y))
    w_star = torch.linalg.lstsq(X, y).solution
    assert torch.allclose(w.detach(), w_star, atol=1e-10)


def test_noisy_ne_converges_to_a_neighbourhood_of_the_optimum():
    """Stochastic NE (alpha = 1, B = 4) on least squares: the average of late iterates is close
    to the optimum (noise with zero mean), and the stationary spread is finite."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 2, generator=g, dtype=torch.float64)
    y = X @ torch.tensor([1.0, -1.0], dtype=torch.float64) + 0.3 * torch.randn(64, generator=g, dtype=torch.float64)
    w = nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = NoiseEnhancedSGD([w], lr=0.04, alpha=1.0)
    gs = torch.Generator().manual_seed(5)
    model = lambda x: x @ w  # noqa: E731
    mse = lambda out, t: ((out - t) ** 2).mean()  # noqa: E731
    tail = []
    for t in range(1500):
        ia, ib = torch.randint(0, 64, (4,), generator=gs), torch.randint(0, 64, (4,), generator=gs)
        opt.step_batches(model, mse, (X[ia], y[ia]), (X[ib], y[ib]))
        if t >= 500:
            tail.append(w.detach().clone())
    w_star = torch.linalg.lstsq(X, y).solution
    assert torch.linalg.norm(torch.stack(tail).mean(0) - w_star) < 0.05


# ------------------------------------------------------------------------------------------------
# closure semantics, groups with their own alpha, state_dict
# ------------------------------------------------------------------------------------------------


def test_closure_called_twice_and_per_group_alpha():
    w1, w2 = nn.Parameter(torch.zeros(2, dtype=torch.float64)), nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = NoiseEnhancedSGD([{"params": [w1]}, {"params": [w2], "alpha": 2.0}], lr=1.0, alpha=0.5)
    targets = iter([torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, -1.0], dtype=torch.float64)])
    calls = []

    def closure():  # does not zero the gradients: the optimizer must
        t = next(targets)
        calls.append(t)
        loss = -(w1 * t).sum() - (w2 * t).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 2
    ga, gb = -calls[0], -calls[1]
    assert torch.allclose(w1.detach(), -((1 + 0.5) * ga - 0.5 * gb))
    assert torch.allclose(w2.detach(), -((1 + 2.0) * ga - 2.0 * gb))
    assert float(loss.detach()) == 0.0  # the loss on B, at theta = 0
    assert torch.allclose(w2.grad, (1 + 2.0) * ga - 2.0 * gb)  # p.grad holds g_NE after the step


def test_state_dict_round_trip_mid_training_same_trajectory():
    loss_fn = nn.CrossEntropyLoss()
    first, second = _batches(8, seed=11), _batches(8, seed=12)

    def make(net):
        opt = NoiseEnhancedSGD(net.parameters(), lr=0.1, alpha=1.3, momentum=0.9, weight_decay=1e-3, nesterov=True)
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
        return opt, sch

    net = _mlp(3)
    opt, sch = make(net)
    for t in range(4):
        opt.step_batches(net, loss_fn, first[t], second[t])
        sch.step()
    saved = (copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict()), copy.deepcopy(sch.state_dict()))
    for t in range(4, 8):
        opt.step_batches(net, loss_fn, first[t], second[t])
        sch.step()

    net2 = _mlp(99)  # different init: everything must come from the state dicts
    opt2, sch2 = make(net2)
    net2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    sch2.load_state_dict(saved[2])
    assert opt2.param_groups[0]["alpha"] == 1.3
    for t in range(4, 8):
        opt2.step_batches(net2, loss_fn, first[t], second[t])
        sch2.step()
    for pa, pb in zip(net.parameters(), net2.parameters()):
        assert torch.equal(pa, pb)


# ------------------------------------------------------------------------------------------------
# the batched form equals the per-model optimizer
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"momentum": 0.9, "weight_decay": 1e-3}, {"momentum": 0.5, "nesterov": True}])
def test_batched_update_equals_per_model_optimizer(kw):
    M, d, B = 3, 6, 10
    alphas = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
    lrs = torch.tensor([0.1, 0.05, 0.02], dtype=torch.float64)
    ens = MLPEnsemble(M, d, 8, 2, d_out=4, seeds=[1, 2, 3], dtype=torch.float64)
    nets = ens.to_modules()
    opts = [NoiseEnhancedSGD(n.parameters(), lr=float(lrs[m]), alpha=float(alphas[m]), **kw) for m, n in enumerate(nets)]
    g = torch.Generator().manual_seed(0)
    loss_fn = nn.CrossEntropyLoss()
    params = list(ens.parameters())
    bufs = None
    for _ in range(3):
        xa, xb = (torch.randn(M, B, d, generator=g, dtype=torch.float64) for _ in range(2))
        ya, yb = (torch.randint(0, 4, (M, B), generator=g) for _ in range(2))

        def grads(x, y):
            out = ens(x)  # (M, B, 4); sum of member means -> each member's own mean-loss gradient
            loss = sum(loss_fn(out[m], y[m]) for m in range(M))
            return torch.autograd.grad(loss, params)

        bufs = ne_update_(params, grads(xa, ya), grads(xb, yb), lrs, alphas, momentum_buffers=bufs, **kw)
        for m in range(M):
            opts[m].step_batches(nets[m], loss_fn, (xa[m], ya[m]), (xb[m], yb[m]))
    ref = MLPEnsemble.from_modules(nets)
    for p, q in zip(ens.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_batched_scalar_alpha_matches_tensor_alpha():
    g = torch.Generator().manual_seed(0)
    p1 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    p2 = p1.clone()
    ga, gb = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    ne_update_([p1], [ga], [gb], 0.1, 1.5)
    ne_update_([p2], [ga], [gb], torch.full((4,), 0.1, dtype=torch.float64), torch.full((4,), 1.5, dtype=torch.float64))
    torch.testing.assert_close(p1, p2, rtol=1e-14, atol=1e-15)
    with pytest.raises(ConfigError):
        ne_update_([p1], [ga], [gb], 0.1, torch.ones(3, dtype=torch.float64))  # wrong M


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_step_matches_cpu():
    net_c, net_g = _mlp(), _mlp().cuda()
    opt_c = NoiseEnhancedSGD(net_c.parameters(), lr=0.1, alpha=1.0, momentum=0.9)
    opt_g = NoiseEnhancedSGD(net_g.parameters(), lr=0.1, alpha=1.0, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    a, b = _batches(3, seed=1), _batches(3, seed=2)
    for t in range(3):
        opt_c.step_batches(net_c, loss_fn, a[t], b[t])
        opt_g.step_batches(net_g, loss_fn, tuple(v.cuda() for v in a[t]), tuple(v.cuda() for v in b[t]))
    for p, q in zip(net_c.parameters(), net_g.parameters()):
        torch.testing.assert_close(p, q.cpu(), rtol=1e-10, atol=1e-12)
    sd = opt_g.state_dict()
    opt_g.load_state_dict(sd)
    assert next(iter(opt_g.state.values()))["momentum_buffer"].is_cuda


def test_numpy_free_of_global_rng():
    """The optimizer draws no random numbers itself: the global RNGs are untouched by a step."""
    net = _mlp()  # (nn.Linear's own init uses the global RNG; it is overwritten from a Generator)
    s_t, s_n = torch.get_rng_state(), np.random.get_state()[1].copy()
    opt = NoiseEnhancedSGD(net.parameters(), lr=0.1, alpha=1.0)
    a, b = _batches(1, seed=1), _batches(1, seed=2)
    opt.step_batches(net, nn.CrossEntropyLoss(), a[0], b[0])
    assert torch.equal(torch.get_rng_state(), s_t)
    assert np.array_equal(np.random.get_state()[1], s_n)


# ------------------------------------------------------------------------------------------------
# one DataLoader: step_loader, and the per-sample loss convention of the other tools
# ------------------------------------------------------------------------------------------------


def _regression_loader(n=64, batch_size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    w_star = torch.tensor([[1.5, -2.0, 0.5]], dtype=torch.float64)
    y = X @ w_star.T + 0.25  # realisable: every per-sample gradient vanishes at the optimum
    ds = torch.utils.data.TensorDataset(X, y)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True,
                                     generator=torch.Generator().manual_seed(seed + 1))
    return dl, w_star, X, y


def test_step_loader_trains_to_the_known_optimum():
    """NE (alpha = 1.5, B = 8, i.e. B_eff = 8/8.5) from one shuffling DataLoader reaches the exact
    least-squares solution of a realisable linear regression (the noise vanishes there), with the
    per-sample loss the other tools take."""
    dl, w_star, _, _ = _regression_loader()
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    opt = NoiseEnhancedSGD(model.parameters(), lr=0.05, alpha=1.5)
    loss_fn = nn.MSELoss(reduction="none")
    per_sample = lambda out, t: loss_fn(out, t).sum(1)  # noqa: E731   (n,)
    first = None
    for epoch in range(150):
        losses = opt.step_loader(model, per_sample, dl)
        assert losses.shape == (4,)  # 8 batches -> 4 NE steps
        first = float(losses[0]) if first is None else first
    assert first > 1.0
    assert torch.allclose(model.weight.detach(), w_star, atol=1e-8)
    assert abs(float(model.bias.detach()) - 0.25) < 1e-8


def test_step_loader_pairs_consecutive_batches_and_accepts_both_reductions():
    dl, _, X, y = _regression_loader(n=40, batch_size=8)  # 5 batches: 2 steps, the 5th unused
    batches = [(X[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)]
    torch.manual_seed(1)
    a = nn.Linear(3, 1).double()
    b = copy.deepcopy(a)
    opt_a = NoiseEnhancedSGD(a.parameters(), lr=0.1, alpha=0.7)
    opt_b = NoiseEnhancedSGD(b.parameters(), lr=0.1, alpha=0.7)
    la = opt_a.step_loader(a, lambda o, t: ((o - t) ** 2).sum(1), batches)       # per sample (n,)
    opt_b.step_batches(b, lambda o, t: ((o - t) ** 2).mean(), batches[0], batches[1])  # mean
    opt_b.step_batches(b, lambda o, t: ((o - t) ** 2).mean(), batches[2], batches[3])
    assert la.shape == (2,)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=1e-14, atol=1e-15)
    with pytest.warns(UserWarning, match="single batch"):
        assert opt_a.step_loader(a, nn.MSELoss(), batches[:1]).shape == (0,)


def test_step_batches_refuses_a_loss_that_is_neither_mean_nor_per_sample():
    model = nn.Linear(3, 2).double()
    opt = NoiseEnhancedSGD(model.parameters(), lr=0.1, alpha=1.0)
    x, t = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"loss_fn: must return the batch's mean loss \(a scalar\) or its "
                                          r"per-sample losses of shape \(4,\) \(got \(4, 2\)\)"):
        opt.step_batches(model, nn.MSELoss(reduction="none"), (x, t), (x, t))
    with pytest.raises(ConfigError, match="batch: must be a pair"):
        opt.step_loader(model, nn.MSELoss(), [(x, t, t), (x, t, t)])
