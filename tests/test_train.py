"""Tests of nnphys.train: the fused ensemble SGD against M nn.Module nets + torch.optim.SGD (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from nnphys.errors import ConfigError
from nnphys.nets import MLPEnsemble
from nnphys.train import train_ensemble

F64 = torch.float64




def _data(n, d, M=None, seed=0, d_out=1):
    g = torch.Generator().manual_seed(seed)
    shape = (n, d) if M is None else (M, n, d)
    x = torch.randint(0, 2, shape, generator=g).to(F64) * 2 - 1
    y = x[..., 0] * x[..., 1] + 0.3 * x[..., 2]
    return x, y


def _reference(ens, x, y, lrs, B, epochs, order_seeds, loss="mse", alpha=1.0, center=False):
    """M independent nets, torch.optim.SGD, same per-member batches (oracle for train_ensemble)."""
    nets = ens.to_modules()
    out = []
    for m, net in enumerate(nets):
        xm = x if x.dim() == 2 else x[m]
        ym = y if y.dim() == 1 else y[m]
        n = xm.shape[0]
        f0 = net(xm).detach()[:, 0] if center else torch.zeros(n, dtype=F64)
        opt = torch.optim.SGD(net.parameters(), lr=float(lrs[m]))
        g = torch.Generator().manual_seed(order_seeds[m])
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            for s in range(0, n, B):
                i = perm[s : s + B]
                fa = alpha * (net(xm[i])[:, 0] - f0[i])
                if loss == "mse":
                    lv = torch.nn.functional.mse_loss(fa, ym[i])
                else:
                    lv = torch.nn.functional.binary_cross_entropy_with_logits(fa, (ym[i] + 1) / 2)
                opt.zero_grad()
                (lv / alpha**2).backward()
                opt.step()
        out.append(net)
    return out


@pytest.mark.parametrize(
    "param,bias,alpha,center,per_member",
    [("standard", True, 1.0, False, False), ("standard", False, 1.0, False, True),
     ("ntk", True, 10.0, True, False), ("ntk", False, 1.0, True, True), ("standard", True, 3.0, True, False)],
)
def test_ensemble_sgd_equals_independent_nets(param, bias, alpha, center, per_member):
    M, d, h, L, n, B, E = 3, 6, 8, 3, 20, 6, 3  # N not a multiple of B: the short last batch too
    seeds = [5, 1, 9]
    x, y = _data(n, d, M if per_member else None)
    lrs = [0.01, 0.03, 0.02] if param == "standard" else [0.1, 0.3, 0.2]
    ens = MLPEnsemble(M, d, h, L, param=param, bias=bias, sigma_b=0.2, seeds=seeds, dtype=F64)
    refs = _reference(ens, x, y, lrs, B, E, seeds, alpha=alpha, center=center)
    res = train_ensemble(ens, x, y, lr=lrs, batch_size=B, max_epochs=E, lazy_scale=alpha, center=center,
                         stop_nmse=0.0)
    assert res.epochs.tolist() == [E] * M and res.steps.tolist() == [E * 4] * M
    assert not res.reached.any() and res.stop_reason == ["epoch_cap"] * M
    got = ens.to_modules()
    for m in range(M):
        for p, q in zip(got[m].parameters(), refs[m].parameters()):
            # float64, a few dozen steps: only summation-order rounding separates the two paths
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_logistic_full_batch_equals_reference():
    M, d, n = 2, 5, 16
    x, y = _data(n, d)
    y = torch.where(y >= 0, 1.0, -1.0).to(F64)
    ens = MLPEnsemble(M, d, 6, 2, seeds=[0, 1], dtype=F64)
    refs = _reference(ens, x, y, [0.05, 0.1], n, 5, [0, 1], loss="logistic")
    train_ensemble(ens, x, y, lr=[0.05, 0.1], batch_size=None, loss="logistic", max_epochs=5, stop_loss=0.0)
    for m in range(M):
        for p, q in zip(ens.to_modules()[m].parameters(), refs[m].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_stopping_is_per_member_and_freezes():
    """A small-lr member keeps training after the large-lr one stops; the stopped one is frozen."""
    x, y = _data(32, 6)
    M = 2
    ens = MLPEnsemble(M, 6, 64, 1, seeds=[0, 0], dtype=F64)  # identical members, different lr
    res = train_ensemble(ens, x, y, lr=[0.02, 0.007], batch_size=8, max_epochs=400, stop_nmse=1e-2,
                         x_test=x, y_test=y)
    assert res.reached.tolist() == [True, True]
    e0, e1 = res.epochs.tolist()
    assert e0 < e1
    assert float(res.train_nmse[0]) < 1e-2 and float(res.train_nmse[1]) < 1e-2
    # after member 0 stopped its loss history is flat (frozen), while member 1's still moves
    h = res.history
    assert torch.all(h[0, e0:] == h[0, e0])
    assert h[1, e0] != h[1, e1]
    # re-running member 0 alone for exactly e0 epochs gives the same parameters (it was frozen
    # after e0 epochs; more training would move them by far more than bmm rounding, ~1e-15)
    solo = MLPEnsemble(1, 6, 64, 1, seeds=[0], dtype=F64)
    train_ensemble(solo, x, y, lr=0.02, batch_size=8, max_epochs=e0, stop_nmse=0.0, order_seeds=[0])
    torch.testing.assert_close(solo.weights[0][0], ens.weights[0][0], rtol=1e-12, atol=1e-13)
    assert not torch.allclose(ens.weights[0][0], ens.weights[0][1], rtol=1e-6)


def test_divergence_is_per_member():
    x, y = _data(32, 6)
    ens = MLPEnsemble(2, 6, 32, 3, seeds=[0, 1], dtype=torch.float32)
    res = train_ensemble(ens, x, y, lr=[0.01, 50.0], batch_size=8, max_epochs=20, x_test=x, y_test=y)
    assert res.diverged.tolist() == [False, True]
    assert res.stop_reason[1] == "diverged" and res.epochs[1] <= 2
    assert math.isnan(float(res.test_nmse[1])) and math.isfinite(float(res.test_nmse[0]))
    assert res.epochs[0] > res.epochs[1]
    assert torch.isfinite(ens.weights[0][0]).all()  # the healthy member is untouched by the other's NaNs


def test_label_stopping_rule():
    x, y = _data(24, 6)
    y = torch.where(y >= 0, 1.0, -1.0).to(F64)
    ens = MLPEnsemble(1, 6, 64, 2, seeds=[3], dtype=F64)
    res = train_ensemble(ens, x, y, lr=0.05, batch_size=8, loss="logistic", max_epochs=2000)
    assert res.reached.item() and res.train_acc.item() == 1.0 and res.train_loss.item() < 1e-2


def test_cross_entropy_runs_and_learns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g, dtype=F64)
    c = x[:, :3].argmax(1)
    ens = MLPEnsemble(2, 5, 32, 2, d_out=3, seeds=[0, 1], dtype=F64)
    res = train_ensemble(ens, x, c, lr=0.1, batch_size=10, loss="cross_entropy", max_epochs=500,
                         x_test=x, y_test=c)
    assert res.reached.all() and float(res.test_err.max()) == 0.0


@pytest.mark.parametrize(
    "kw,field",
    [({"lr": 0.0}, "lr"), ({"lr": [0.1, -1.0]}, "lr"), ({"batch_size": 99}, "batch_size"),
     ({"loss": "hinge"}, "loss"), ({"lazy_scale": 0.0}, "lazy_scale"), ({"max_epochs": 0}, "max_epochs")],
)
def test_bad_config(kw, field):
    x, y = _data(10, 4)
    ens = MLPEnsemble(2, 4, 5, 1, dtype=F64)
    args = dict(lr=0.1)
    args.update(kw)
    with pytest.raises(ConfigError) as e:
        train_ensemble(ens, x, y, **args)
    assert e.value.field == field
