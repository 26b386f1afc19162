"""The stacked training loop (nnphys.noise_enhancement.stacked): a member trains as it would alone, the loop
equals a hand-written per-model SGD / NE loop, and a diverging member is frozen without
disturbing the others."""

from __future__ import annotations

import pytest
import torch

from nnphys.noise_enhancement.stacked import member_errors, member_losses, train_stacked
from nnphys.errors import Diverged
from nnphys.nets import MLPEnsemble
from nnphys.noise_enhancement.sampling import PairSampler


def _data(n=64, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return {"x_train": x, "y_train": y, "x_val": x[:16], "y_val": y[:16], "x_test": x[16:40], "y_test": y[16:40],
            "kind": "classification", "d_out": 3}


def _train(seeds, group, alpha, lr, ne=True, steps=20):
    data = _data()
    net = MLPEnsemble(len(group), 5, 8, 2, 3, seeds=[seeds[g] for g in group])
    out = train_stacked(net, data, group=group, seeds=seeds, ne_alpha=alpha, lr=lr, warmup_steps=[0.0] * len(group),
                        batch_size=8, ne=ne, sampling="split", tag="t", total_steps=steps,
                        eval_steps=[0, steps // 2, steps], n_eval_train=64)
    return net, out


def test_member_equals_its_solo_run():
    _, both = _train([3, 7], [0, 1], [1.0, 1.0], [0.1, 0.1])
    _, solo = _train([7], [0], [1.0], [0.1])
    torch.testing.assert_close(torch.tensor(both["arrays"]["test_error"][1]), torch.tensor(solo["arrays"]["test_error"][0]))
    torch.testing.assert_close(torch.tensor(both["arrays"]["train_loss"][1]), torch.tensor(solo["arrays"]["train_loss"][0]),
                               rtol=1e-5, atol=1e-6)
    assert both["optimizer_steps"] == 20 and both["diverged"] == [False, False]


def test_loop_equals_hand_written_ne_steps():
    """Reference: the same batches (same PairSampler stream), gradients of one net by autograd,
    g_NE = (1 + a) g_B - a g_B', theta -= lr g_NE, for 6 steps."""
    data, a, lr, steps = _data(), 0.7, 0.05, 6
    net, _ = _train([11], [0], [a], [lr], steps=steps)
    ref = MLPEnsemble(1, 5, 8, 2, 3, seeds=[11])
    ps = PairSampler(64, 8, True, "split", [11], "t")
    params = list(ref.parameters())
    for _ in range(steps):
        ia, ib = ps.next()
        g = [torch.autograd.grad(member_losses(ref(data["x_train"][i[0]]), data["y_train"][i[0]], "classification").sum(), params)
             for i in (ia, ib)]
        with torch.no_grad():
            for p, ga, gb in zip(params, *g):
                p -= lr * ((1 + a) * ga - a * gb)
    for p, q in zip(net.parameters(), params):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_diverging_member_is_frozen_and_others_untouched():
    _, mixed = _train([3, 7], [0, 1], [0.0, 0.0], [0.1, 1e6], ne=False)
    _, solo = _train([3], [0], [0.0], [0.1], ne=False)
    assert mixed["diverged"] == [False, True] and mixed["died_at"][1] >= 0
    torch.testing.assert_close(torch.tensor(mixed["arrays"]["test_error"][0]), torch.tensor(solo["arrays"]["test_error"][0]))
    with pytest.raises(Diverged):
        _train([3], [0], [0.0], [1e6], ne=False)


def test_member_errors_and_losses():
    out = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])  # (M=1, b=2, 2 classes)
    y = torch.tensor([0, 0])
    assert member_errors(out, y, "classification").tolist() == [0.5]
    want = -(torch.log_softmax(out[0], -1)[[0, 1], [0, 0]]).mean()
    torch.testing.assert_close(member_losses(out, y, "classification")[0], want)
    assert member_losses(out[..., :1], torch.tensor([1.0, 0.0]), "regression").tolist() == [pytest.approx(0.5)]
