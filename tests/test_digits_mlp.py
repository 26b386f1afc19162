"""The shared digits-MLP noise experiment: one init, deterministic, thread-count independent, and
escape-rate T9/T9b and minibatch-noise C3/C12 read the same numbers from the same run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnphys.studies._shared.digits_mlp import (PROBES, DigitsNoiseConfig, decoupling_by_epoch, glorot_uniform_mlp, half_mse,
                                 hessian_evidence, hessian_probe, late_slope, run_digits_noise, worst_factor)
from nnphys.errors import ConfigError
from nnphys.studies import get_study
from nnphys.studies.base import Result

SMALL = dict(width=8, epochs=4, lr=0.05, batch=50, n_train=200, top_k=3, seed=7, checkpoints=(0, 2, 4))


def test_glorot_uniform_bounds_and_variance():
    g = torch.Generator().manual_seed(0)
    m = glorot_uniform_mlp(64, 300, g)
    W = m[2].weight.detach()  # 300 x 300
    b = math.sqrt(6 / 600)
    assert float(W.abs().max()) <= b
    # U(-b, b) has variance b^2/3; 90000 draws: relative s.e. of the variance ~ 0.3 %
    assert abs(float(W.var()) / (b * b / 3) - 1) < 0.015
    assert all(float(layer.bias.detach().abs().max()) == 0 for layer in m if isinstance(layer, torch.nn.Linear))


def test_late_slope_recovers_a_power_law():
    L = np.geomspace(1.0, 1e-3, 41)
    rng = np.random.default_rng(0)
    N = 2.5 * L ** 1.3 * np.exp(0.01 * rng.standard_normal(41))
    f = late_slope(L, N)
    assert abs(f["slope"] - 1.3) < 4 * f["se"] and f["se"] < 0.02 and f["n"] == 21
    exact = late_slope(L, 2.5 * L ** 0.7)
    assert exact["slope"] == pytest.approx(0.7, abs=1e-12) and exact["slope_early"] == pytest.approx(0.7, abs=1e-12)
    assert math.isnan(late_slope([1.0, 0.5], [1.0, 0.5])["slope"])


def test_worst_factor():
    assert worst_factor([1.0, 2.0, 0.25]) == 4.0
    assert worst_factor([1.0, float("nan"), 1.2]) == pytest.approx(1.2)
    assert worst_factor([0.0, 1.0]) == math.inf  # a vanished coupled eigenvalue is a mismatch
    assert math.isnan(worst_factor([float("nan")]))


@pytest.mark.parametrize("bad", [dict(n_train=1797), dict(batch=201), dict(top_k=0), dict(checkpoints=(5,))])
def test_config_rejects(bad):
    with pytest.raises(ConfigError):
        DigitsNoiseConfig(**{**SMALL, **bad})


def test_run_deterministic_thread_independent_and_probe_seam():
    cfg = DigitsNoiseConfig(**SMALL)
    calls = []

    def probe(model, loss_fn, X, y, top_k):
        calls.append(top_k)
        return {"n": int(X.shape[0])}

    n0 = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = run_digits_noise(cfg, probes={**PROBES, "extra": probe})
        torch.set_num_threads(1)
        b = run_digits_noise(cfg)
    finally:
        torch.set_num_threads(n0)
    assert torch.get_num_threads() == n0
    assert a["loss"] == b["loss"] and a["trace_cov"] == b["trace_cov"]
    for ep in ("0", "2", "4"):
        assert a["checkpoints"][ep]["gauss_newton"] == b["checkpoints"][ep]["gauss_newton"]
        assert a["checkpoints"][ep]["extra"] == {"n": 200}
    assert calls == [3, 3, 3] and set(b["checkpoints"]["4"]) == {"gauss_newton", "hessian"}
    # the Hessian probe measures, it does not train: the run without it has the same trajectory
    gn_only = run_digits_noise(cfg, probes={"gauss_newton": PROBES["gauss_newton"]})
    assert gn_only["loss"] == b["loss"] and gn_only["checkpoints"]["4"]["gauss_newton"] == b["checkpoints"]["4"]["gauss_newton"]
    for ep in ("0", "4"):  # same coupled matrix, Gram eigensolve vs Lanczos (float32 products)
        h, g = b["checkpoints"][ep]["hessian"], b["checkpoints"][ep]["gauss_newton"]
        np.testing.assert_allclose(h["coupled"], g["coupled"], rtol=1e-4)
        np.testing.assert_allclose(h["ggn_eigenvalues"], g["gn_eigenvalues"], rtol=1e-4)
        assert h["converged"] and h["loss"] == pytest.approx(g["loss"], rel=1e-6)
    assert len(a["loss"]) == 5 and a["N"] == 200 and a["loss"][-1] < a["loss"][0]
    # another seed changes the init: different numbers
    c = run_digits_noise(DigitsNoiseConfig(**{**SMALL, "seed": 8}))
    assert c["loss"][0] != a["loss"][0]
    per = decoupling_by_epoch(a)
    assert list(per) == ["0", "2", "4"]
    assert per["4"]["max_ratio"] == worst_factor(a["checkpoints"]["4"]["gauss_newton"]["ratio"])


def test_both_studies_report_the_same_run():
    """T9/T9b (escape-rate) and C3/C12 (minibatch-noise) on one configuration: one run, same numbers."""
    mlp = dict(mlp_width=8, mlp_epochs=4, mlp_lr=0.05, mlp_batch=50, mlp_n_train=200, mlp_top_k=3)
    er, mb = get_study("escape-rate"), get_study("minibatch-noise")
    se = er.make_spec("quick", {**mlp, "seed": 3})
    sm = mb.make_spec("quick", {**mlp, "seed": 3, "mlp_seeds": 2})
    je = next(j for j in er.jobs(se) if j.KIND == "mlp")
    jm = [j for j in mb.jobs(sm) if j.KIND == "mlp"]
    assert je.seed == jm[0].seed != jm[1].seed
    oe, om = je.run(), jm[0].run()
    assert oe["loss"] == om["loss"] and oe["checkpoints"]["4"] == om["checkpoints"]["4"]
    ce = {c.id: c for c in er.analyse(se, [Result.from_output(je, oe)])}
    cm = {c.id: c for c in mb.analyse(sm, [Result.from_output(jm[0], om)])}
    assert ce["T9b"].evidence["worst_factor_by_epoch"]["4"][0] == cm["C12"].evidence["worst_factor_per_checkpoint_and_seed"]["4"][0]
    assert ce["T9b"].evidence["rms_log_ratio_by_epoch"]["4"] == cm["C12"].evidence["rms_log_ratio_by_epoch"]["4"]
    he, hm = ce["T9b"].evidence["hessian"], cm["C12"].evidence["hessian"]
    assert he["by_epoch"]["4"]["max_ratio"] == hm["by_epoch"]["4"]["max_ratio"] and he["holds_same_criterion"] is not None
    assert he["by_epoch"]["4"]["overlap"] == hm["by_epoch"]["4"]["overlap"]
    assert ce["T9"].evidence["per_seed"][0]["slope"] == cm["C3"].evidence["mlp_slopes"][0]
    assert ce["T9"].verdict == cm["C3"].verdict == "uninformative"  # one seed each: the same statistic, no spread
    # the other claims have no data: inconclusive, naming what is missing
    assert ce["T10"].verdict == "inconclusive" and "gap" in ce["T10"].evidence["missing"]
    assert cm["C1"].verdict == "inconclusive" and "prop1" in cm["C1"].evidence["missing"]


def test_hessian_probe_equals_dense_hessian_and_eigh():
    """The Hessian probe on a tiny float64 MLP (P = 115) against dense matrices: H from
    torch.autograd.functional.hessian, G, C = (1/N) sum l J^T J and C_1 from explicit Jacobians, + eigh."""
    from torch.func import functional_call, jacrev

    g = torch.Generator().manual_seed(3)
    model = glorot_uniform_mlp(6, 7, g).double()
    X = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.sign(torch.randn(40, generator=g, dtype=torch.float64))
    k = 5
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def unflat(t):
        out, i = {}, 0
        for n, sh in zip(names, shapes):
            out[n] = t[i:i + sh.numel()].reshape(sh)
            i += sh.numel()
        return out

    f = lambda t: functional_call(model, unflat(t), (X,)).reshape(-1)  # noqa: E731
    H = torch.autograd.functional.hessian(lambda t: half_mse(f(t), y).mean(), theta)
    J = jacrev(f)(theta)                                   # (N, P)
    ell = half_mse(f(theta), y).detach()
    L = float(ell.mean())
    G = J.T @ J / 40
    C = J.T @ (ell[:, None] * J) / 40
    grads = (f(theta) - y).detach()[:, None] * J           # per-sample gradients (N, P)
    C1 = grads.T @ grads / 40 - torch.outer(grads.mean(0), grads.mean(0))
    top = lambda M: [t.flip(-1)[..., :k] for t in torch.linalg.eigh(M)]  # noqa: E731
    (lh, Uh), (lg, Ug), (lc, _) = top(H), top(G), top(C)

    d = hessian_probe(model, half_mse, X, y, k, tol=1e-10)
    rel = dict(rtol=1e-8, atol=0)
    np.testing.assert_allclose(d["eigenvalues"], lh.numpy(), **rel)
    np.testing.assert_allclose(d["ggn_eigenvalues"], lg.numpy(), **rel)
    np.testing.assert_allclose(d["coupled"], lc.numpy(), **rel)
    np.testing.assert_allclose(d["decoupled"], (L * lh).numpy(), **rel)
    np.testing.assert_allclose(d["ratio"], (lc / (L * lh)).numpy(), **rel)
    np.testing.assert_allclose(d["eigenvalue_ratio"], (lh / lg).numpy(), **rel)
    assert d["loss"] == pytest.approx(L, rel=1e-12)
    assert d["overlap"] == pytest.approx(float((Uh.T @ Ug).pow(2).sum()) / k, abs=1e-7)
    VCV = Uh.T @ C @ Uh                                    # sign of U cancels in every quantity below
    np.testing.assert_allclose(d["coupled_along_h"], torch.diagonal(VCV).numpy(), rtol=1e-7)
    cos = float((VCV * torch.diag(lh)).sum() / (VCV.norm() * torch.diag(lh).norm()))
    assert d["ch_alignment"] == pytest.approx(cos, abs=1e-8)
    slope = np.polyfit(np.log(lh.numpy()), np.log(torch.diagonal(VCV).numpy()), 1)[0]
    assert d["ch_gamma"] == pytest.approx(slope, abs=1e-7)
    np.testing.assert_allclose(d["noise_ratio"], (torch.diagonal(Uh.T @ C1 @ Uh) / (2 * L * lh)).numpy(), rtol=1e-7)
    assert d["n_nonpositive"] == 0 and d["converged"] and d["max_rel_bound"] < 1e-10


def test_hessian_evidence_reads_the_probe_or_says_it_is_absent():
    probe = lambda r: {"ratio": [r, 1.0], "loss": 0.1, "ch_alignment": 0.9, "ch_gamma": 1.0,  # noqa: E731
                       "eigenvalue_ratio": [1.0, 2.5], "overlap": 0.8, "noise_ratio": [1.0, 1.0], "n_nonpositive": 0}
    runs = [{"checkpoints": {"0": {"hessian": probe(3.0)}, "10": {"hessian": probe(1.2)}}},
            {"checkpoints": {"0": {"hessian": probe(1.0)}, "10": {"hessian": probe(1 / 1.4)}}}]
    ev = hessian_evidence(runs, judged_epochs=[10])
    assert ev["by_epoch"]["10"]["max_ratio"] == pytest.approx([1.2, 1.4]) and ev["holds_same_criterion"] is True
    assert ev["by_epoch"]["0"]["h_over_g_worst"] == [2.5, 2.5]
    assert hessian_evidence(runs)["holds_same_criterion"] is False  # epoch 0 has a factor 3
    assert hessian_evidence([{"checkpoints": {"0": {"gauss_newton": {}}}}])["holds_same_criterion"] is None
