"""Fig. 1 of the minibatch-noise paper (claims C15, C15f, C16): the vectorised tanh-net and
logistic-regression ensembles against naive per-member oracles (a loop, float64, autograd or
numpy), and the claims' outcome definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnphys.studies.minibatch_noise import _fig1 as F
from nnphys.studies.minibatch_noise import claims as C


def _autograd_step(p: dict[str, torch.Tensor], m: int, xb: torch.Tensor, y1: torch.Tensor, lr: float):
    """Oracle: member ``m`` alone, autograd on (1/2)·mean (f - y)², one SGD step."""
    q = {k: v[m].clone().requires_grad_(True) for k, v in p.items()}
    f = torch.tanh(xb @ q["W1"].T + q["b1"]) @ q["W2"].T + q["b2"]
    loss = 0.5 * ((f - y1) ** 2).mean()
    loss.backward()
    return {k: (v - lr * v.grad).detach() for k, v in q.items()}, float(loss.detach())


def test_tanh_step_matches_a_per_member_autograd_loop():
    x, y, _, _ = F.digits_pixels(200, seed=3)
    y1 = torch.nn.functional.one_hot(y, 10).to(torch.float64)
    p = F.init_tanh(7, [11, 12, 13])
    p["b1"] += 0.1 * torch.randn(p["b1"].shape, dtype=torch.float64)  # nonzero biases exercise their gradients
    idx = torch.stack([torch.randperm(200, generator=torch.Generator().manual_seed(s))[:16] for s in (1, 2, 3)])
    lrs = [0.5, 0.0, 2.0]  # 0 must freeze its member exactly
    want = [_autograd_step(p, m, x[idx[m]], y1[idx[m]], lrs[m]) for m in range(3)]
    before = {k: v.clone() for k, v in p.items()}
    loss = F.tanh_step(p, x[idx], y1[idx], torch.tensor(lrs, dtype=torch.float64))
    for m in range(3):
        assert float(loss[m]) == pytest.approx(want[m][1], rel=1e-12)
        for k in p:
            torch.testing.assert_close(p[k][m], want[m][0][k], rtol=1e-10, atol=1e-12)
    for k in p:
        assert torch.equal(p[k][1], before[k][1])


def test_first_epoch_members_are_independent_and_divergence_is_recorded():
    kw = dict(batch=32, n_train=400, data_seed=5, div_factor=100.0)
    both = F.tanh_first_epoch(50, [0.3, 40.0], [1, 2], [3, 4], **kw)
    alone = F.tanh_first_epoch(50, [0.3], [1], [3], **kw)
    np.testing.assert_allclose(both["batch_losses"][0], alone["batch_losses"][0], rtol=1e-12)
    assert both["var"][0] == pytest.approx(alone["var"][0], rel=1e-12)
    # the variance is the population variance of the recorded batch losses
    assert both["var"][0] == pytest.approx(float(np.var(both["batch_losses"][0])), rel=1e-12)
    assert both["diverged"] == [False, True]
    assert math.isinf(both["var"][1]) and math.isnan(both["L1"][1])
    first_bad = int(np.flatnonzero(np.isnan(both["batch_losses"][1]))[0])
    assert np.all(np.isnan(both["batch_losses"][1][first_bad:]))


def _numpy_logreg(gamma: float, order_seed: int, *, lr, batch, epochs, n_train, data_seed):
    """Oracle: one member, a plain numpy loop over steps and samples' softmax (float64)."""
    x, y, xt, yt = (t.numpy() for t in F.digits_pixels(n_train, data_seed))
    xa = np.hstack([x, np.ones((len(x), 1))])
    xta = np.hstack([xt, np.ones((len(xt), 1))])
    W = np.zeros((10, 65))
    g = torch.Generator().manual_seed(order_seed)
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=g).numpy()
        for s in range(n_train // batch):
            grad = np.zeros_like(W)
            for i in order[s * batch:(s + 1) * batch]:
                z = W @ xa[i]
                pr = np.exp(z - z.max())
                pr /= pr.sum()
                pr[y[i]] -= 1.0
                grad += np.outer(pr, xa[i])
            W = W - lr * (grad / batch + gamma * W)
    z = xta @ W.T
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    return float(np.mean(lse - z[np.arange(len(yt)), yt])), float(np.mean(z.argmax(1) != yt))


def test_logreg_sweep_matches_a_per_member_numpy_loop():
    kw = dict(lr=1.5, batch=16, epochs=2, n_train=160, data_seed=4)
    gammas, seeds = [-0.01, 0.0, 0.02], [7, 8]
    out = F.logreg_sweep(gammas, seeds, **kw)
    for i, gm in enumerate(gammas):
        for j, s in enumerate(seeds):
            loss, err = _numpy_logreg(gm, s, **kw)
            assert out["test_loss"][i][j] == pytest.approx(loss, rel=1e-10)
            assert out["test_err"][i][j] == pytest.approx(err, abs=1e-12)


def test_instability_counts_divergence_as_the_cap_and_the_cap_bounds_every_stable_run():
    K = 100.0
    cap = C.logvar_cap(K)
    arm = {"var": [1e-4, math.inf, 0.0], "L0": [0.05, 0.05, 0.05], "diverged": [False, True, False]}
    y = C.instability(arm, K)
    assert y[0] == pytest.approx(math.log10(1e-4 / 0.05**2))
    assert y[1] == cap and y[2] == C.LOGVAR_FLOOR
    # any losses in [0, K·L0] have log10(Var/L0²) <= cap (the extreme: half at 0, half at K·L0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        L = rng.uniform(0, K * 0.05, rng.integers(2, 50))
        assert math.log10(np.var(L) / 0.05**2) <= cap + 1e-12
    assert math.log10(np.var([0.0, K * 0.05]) / 0.05**2) == pytest.approx(cap)


def test_gamma_star_breaks_ties_towards_zero_and_never_picks_a_diverged_member():
    g = [-0.002, -0.001, 0.0, 0.001]
    vals = [[math.nan, 1.0], [0.5, 0.2], [0.5, 0.3], [0.7, 0.2]]
    assert C.gamma_star(g, vals).tolist() == [0.0, -0.001]


def _synthetic(*pairs):
    from nnphys.studies.minibatch_noise.calibration import CALIBRATION

    rng = np.random.default_rng(0)
    return [r for cid, scen in pairs for r in CALIBRATION[cid][scen](rng, None)]


def test_figures_draw_fig1_and_name_rows_by_their_settings():
    import re

    from nnphys.studies import get_study

    study = get_study("minibatch-noise")
    rs = _synthetic(("C15", "diverged"), ("C16", "diverged"), ("C2", "effect"), ("C4", "effect"), ("C5", "effect"))
    figs = {f.name: f for f in study.figures(study.make_spec("quick"), rs)}
    assert {"fig1_width", "fig1_weight_decay", "stability_edge", "optimal_weight_decay", "sigma_rows"} <= set(figs)
    assert set(figs["fig1_width"].claims) == {"C15", "C15f"} and "C16" in figs["fig1_weight_decay"].claims
    labels = [t.get_text() for f in figs.values() for ax in f.figure.axes if ax.get_legend()
              for t in ax.get_legend().get_texts()]
    assert labels and not [t for t in labels if re.search(r"\brow\s?\d", t)], labels
    assert any("S = 50" in t for t in labels)  # row 2 named by its setting
    import matplotlib.pyplot as plt

    for f in figs.values():
        plt.close(f.figure)


def test_resampling_keeps_each_seed_paired_across_widths():
    from nnphys.studies import get_study

    study = get_study("minibatch-noise")
    rs = _synthetic(("C15", "effect"))
    # tag every seed's value with its index so the redraw can be traced
    for r in rs:
        for arm in r.metrics["arms"].values():
            arm["L0"] = [float(i + 1) for i in range(len(arm["L0"]))]
    out = study.resample(rs, np.random.default_rng(5))
    picks = [tuple(r.metrics["arms"][a]["L0"]) for r in out if r.params["kind"] == "width" for a in ("fixed", "scaled")]
    assert len(picks) == 6 and len(set(picks)) == 1


@pytest.mark.parametrize("over", [{"fig1_batch": 1000}, {"logreg_gammas": [0.001, 0.002]}, {"fig1_widths": [25, 25]}])
def test_spec_refuses_fig1_settings_that_cannot_be_judged(over):
    from nnphys.errors import ConfigError
    from nnphys.studies import get_study

    with pytest.raises((ConfigError, ValueError)):
        get_study("minibatch-noise").make_spec("quick", over)
