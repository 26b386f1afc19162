"""Tests of the noise-enhancement study: its exact per-sample Gram matrix against a per-sample loop,
its samplers, its theory values (spec §13), and a tiny end-to-end run (jobs -> run -> analyse ->
figures) that checks the claims' shape, not their verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nnphys.errors import ConfigError
from nnphys.nets import MLPEnsemble
from nnphys.studies import get_study
from nnphys.studies.base import Result
from nnphys.studies import noise_enhancement as NE

STUDY = NE.STUDY

TINY = {
    "tasks": ["digits", "depth_locality"], "n_seeds": 2, "steps": 12, "epochs": 0.5, "width": 8,
    "alphas": [1.0], "lr_grid": [0.05], "toy_draws": 4000, "probe_draws": 200, "probe_train_steps": 3,
    "probe_max_n": 300, "probe_bootstrap": 200, "n_curve": 3, "t3_n_train": 300, "t3_n_val": 50,
    "t3_n_test": 100, "batch_small": 4, "batch_large": 16, "n_eval_train": 200,
}


# ------------------------------------------------------------------------------------------------
# reference: the exact per-sample Gram matrix against per-sample gradients from a loop
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,param", [("classification", "standard"), ("regression", "ntk")])
def test_per_sample_gram_equals_loop(kind, param):
    g = torch.Generator().manual_seed(0)
    net = MLPEnsemble(1, 5, 7, 2, 3 if kind == "classification" else 1, param=param, seeds=[4],
                      sigma_b=0.3, dtype=torch.float64)
    x = torch.randn(9, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g) if kind == "classification" else torch.randn(9, generator=g, dtype=torch.float64)
    K, losses = NE.per_sample_gram(net, x, y, kind)
    params = list(net.parameters())
    rows = []
    for i in range(9):
        li = NE._member_losses(net(x[i : i + 1]), y[i : i + 1], kind)[0]
        rows.append(torch.cat([gi.reshape(-1) for gi in torch.autograd.grad(li, params)]))
    G = torch.stack(rows)
    torch.testing.assert_close(K, G @ G.T, rtol=1e-10, atol=1e-12)
    assert losses.shape == (9,)


def test_gram_trace_agrees_with_gradnoise():
    """tr C from our centred Gram matrix equals gradient_noise's trace_cov (an independent code path)."""
    from nnphys.gradnoise import gradient_noise

    g = torch.Generator().manual_seed(1)
    net = MLPEnsemble(1, 4, 6, 2, 3, seeds=[2], dtype=torch.float64)
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=g)
    K, _ = NE.per_sample_gram(net, x, y, "classification")
    Kc = K - K.mean(0, keepdim=True)
    Kc = Kc - Kc.mean(1, keepdim=True)
    seq = net.to_modules()[0]
    gn = gradient_noise(seq, lambda out, t: torch.nn.functional.cross_entropy(out, t, reduction="none"), x, y)
    assert float(torch.diagonal(Kc).mean()) == pytest.approx(gn.trace_cov, rel=1e-9)


def test_noise_shape_equals_parameter_space_computation():
    """The Gram-space subspace overlaps equal those of explicit P x P sample covariances of g_B and
    g_NE built from per-sample gradients (no truncation: m >= rank)."""
    g = torch.Generator().manual_seed(2)
    N, P, B, R = 30, 12, 5, 300
    G = torch.randn(N, P, generator=g, dtype=torch.float64) * torch.linspace(3, 0.2, P, dtype=torch.float64)
    Gc = G - G.mean(0)
    ia, ib = NE._draw_pairs(N, B, R, "split", g)
    res = NE.noise_shape(Gc @ Gc.T, ia, ib, [0.0, 1.5], m=N)
    da, db = Gc[ia].mean(1), Gc[ib].mean(1)  # (R, P): g_B - gbar, g_B' - gbar

    def top5(d):
        return torch.linalg.eigh(d.T @ d / R)[1].flip(1)[:, :5]

    e_sgd = top5(da)
    _, vec_c = torch.linalg.eigh(Gc.T @ Gc / N)
    exact = vec_c.flip(1)[:, :5]
    for a in (0.0, 1.5):
        e_ne = top5((1 + a) * da - a * db)
        assert res["overlap_sgd"][a] == pytest.approx(float((e_ne.T @ e_sgd).pow(2).sum() / 5), abs=1e-8)
        assert res["overlap_exact"][a] == pytest.approx(float((e_ne.T @ exact).pow(2).sum() / 5), abs=1e-8)
    assert res["overlap_sgd"][0.0] == pytest.approx(1.0)
    assert res["trace_fraction"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# theory values and samplers
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha,split,indep", [(0.5, 2.667, 2.5), (1.0, 5.444, 5.0), (2.0, 14.333, 13.0)])
def test_ratio_theory_table_spec13(alpha, split, indep):
    assert NE.ratio_theory(alpha, 20, 200, "split") == pytest.approx(split, abs=5e-4)
    assert NE.ratio_theory(alpha, 20, 200, "independent") == indep
    assert NE.ratio_theory(alpha, 20, 200, "replacement") == indep


def test_draw_pairs_modes():
    gen = torch.Generator().manual_seed(0)
    a, b = NE._draw_pairs(30, 5, 400, "split", gen)
    both = torch.cat([a, b], 1)
    assert all(len(set(r.tolist())) == 10 for r in both)  # 2B distinct rows per draw
    a, b = NE._draw_pairs(30, 5, 400, "independent", gen)
    assert all(len(set(r.tolist())) == 5 for r in a) and all(len(set(r.tolist())) == 5 for r in b)
    assert any(set(ra.tolist()) & set(rb.tolist()) for ra, rb in zip(a, b))  # the two may overlap
    a, _ = NE._draw_pairs(30, 5, 400, "replacement", gen)
    assert any(len(set(r.tolist())) < 5 for r in a)
    # uniform marginals: each row is in B with probability B/N (chi-square-free check: 5 s.e.)
    a, _ = NE._draw_pairs(30, 5, 4000, "split", gen)
    cnt = torch.bincount(a.reshape(-1), minlength=30).double() / 4000
    p = 5 / 30
    assert torch.all((cnt - p).abs() < 5 * (p * (1 - p) / 4000) ** 0.5)


def test_epoch_stream_covers_each_row_once_and_is_per_seed():
    s = NE._EpochStream(20, 4, [3, 7], "t", "cpu")
    rows = torch.cat([s.next() for _ in range(5)], dim=1)  # one epoch
    for r in rows:
        assert sorted(r.tolist()) == list(range(20))
    alone = NE._EpochStream(20, 4, [7], "t", "cpu")
    s2 = NE._EpochStream(20, 4, [3, 7], "t", "cpu")
    for _ in range(7):
        assert torch.equal(s2.next()[1], alone.next()[0])  # a seed's stream ignores the other seeds


# ------------------------------------------------------------------------------------------------
# spec and jobs
# ------------------------------------------------------------------------------------------------


def test_registered_and_presets_validate():
    assert get_study("noise-enhancement") is STUDY
    q = STUDY.make_spec("quick")
    assert q.match_alpha == pytest.approx(1.436492, abs=1e-6)  # B_eff = 16 at B_l = 128 (§9)
    assert NE.effective_batch_size(q.batch_large, q.match_alpha) == pytest.approx(16.0)
    STUDY.make_spec("paper")
    for name, field in STUDY.spec.model_fields.items():
        if name != "device":  # inherited from StudySpec (tag at the end there)
            assert field.description and field.description.startswith("["), name


def test_bad_spec_values():
    with pytest.raises(ValidationError):
        STUDY.make_spec("quick", {"batch_large": 8, "batch_small": 16})
    with pytest.raises(ValidationError):
        STUDY.make_spec("quick", {"tasks": ["fashion_mnist"]})  # no data_root
    with pytest.raises(ValidationError):
        STUDY.make_spec("quick", {"alphas": [-1.0]})
    with pytest.raises(ValidationError):
        STUDY.make_spec("quick", {"lr_grid": [0.0]})
    with pytest.raises(ConfigError):
        STUDY.jobs(STUDY.make_spec("quick", {"batch_large": 700, "tasks": ["digits"]}))  # 2 B_l > 1200


def test_jobs_json_and_budgets():
    spec = STUDY.make_spec("quick", TINY)
    js = STUDY.jobs(spec)
    json.dumps(js)
    train = [j for j in js if j["kind"] == "train"]
    assert {j["arm"] for j in train} == set(NE.ARMS)
    ne = next(j for j in train if j["arm"] == "NE")
    lj = next(j for j in train if j["arm"] == "L")
    assert ne["batch_size"] == lj["batch_size"] == 16 and ne["samples_per_step"] == 32
    assert ne["k_epochs"] == max(1, round(0.5 * 1200 / 32)) and lj["k_epochs"] == round(0.5 * 1200 / 16)
    assert [v["alpha"] for v in ne["variants"]] == pytest.approx(sorted([1.0, NE.alpha_for(16, 4)]))
    ls = next(j for j in train if j["arm"] == "LS")
    assert ls["lr_mult"] == 4.0 and len(ls["variants"]) == 2


# ------------------------------------------------------------------------------------------------
# end to end
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_results():
    spec = STUDY.make_spec("quick", TINY)
    js = STUDY.jobs(spec)
    return spec, js, [Result.from_output(j, STUDY.run(j)) for j in js]


@pytest.mark.slow
def test_end_to_end_tiny(tiny_results):
    spec, js, results = tiny_results
    claims = STUDY.analyse(spec, results)
    assert [c.id for c in claims] == list(NE.CLAIMS)
    for c in claims:
        assert c.verdict in ("holds", "fails", "inconclusive")
        assert c.tag == NE.CLAIMS[c.id].tag
        assert isinstance(c.evidence, dict) and c.evidence
        json.dumps(c.evidence)
    figs = STUDY.figures(spec, results)
    assert {f.name for f in figs} == {"test_error_vs_beff", "noise_factor_vs_alpha", "train_loss_curves"}
    # the training job logs what C3 audits and the budgets of §9
    ne = next(r for r in results if r.params["kind"] == "train" and r.params["arm"] == "NE")
    assert ne.metrics["optimizer_steps"] == ne.params["total_steps"]
    assert ne.metrics["epochs_at"]["steps"] == pytest.approx(2 * ne.metrics["epochs_at_counting_B"]["steps"])
    assert ne.arrays["test_error"].shape == (len(ne.metrics["members"]), len(ne.arrays["eval_steps"]))


@pytest.mark.slow
def test_run_is_deterministic(tiny_results):
    spec, js, results = tiny_results
    job = next(j for j in js if j["kind"] == "train" and j["arm"] == "NE" and j["data"]["task"] == "digits")
    again = STUDY.run(job)
    first = next(r for r in results if r.params == job)
    assert json.dumps({k: v for k, v in again.items() if k != "arrays"}, sort_keys=True) == \
        json.dumps(first.metrics, sort_keys=True)
    for k, v in again["arrays"].items():
        assert np.array_equal(v, first.arrays[k], equal_nan=True)


@pytest.mark.slow
def test_analyse_copes_with_failed_and_missing(tiny_results):
    spec, js, results = tiny_results
    keep = [r for r in results if not (r.params["kind"] == "train" and r.params["arm"] in ("S", "LS"))]
    failed = Result(key="x", params=js[0], status="failed", metrics={}, error="boom")
    claims = {c.id: c for c in STUDY.analyse(spec, keep + [failed])}
    assert claims["C6"].verdict == "inconclusive" and claims["C7"].verdict == "inconclusive"
    assert claims["C1"].verdict in ("holds", "fails")  # the toy is still there
    no_toy = [r for r in results if r.params["kind"] != "toy"]
    assert {c.id: c for c in STUDY.analyse(spec, no_toy)}["C1"].verdict == "inconclusive"
    assert all(c.verdict == "inconclusive" for c in STUDY.analyse(spec, []))
    STUDY.figures(spec, [])  # no crash on an empty store


@pytest.mark.slow
def test_fully_diverged_job_counts_as_divergence(tiny_results):
    """A job whose members all diverged (status 'diverged', no metrics) is LS's divergence for C7."""
    spec, js, results = tiny_results
    swapped = [Result(key="d", params=r.params, status="diverged", metrics={"died_at": [3]}, error="nan")
               if r.params["kind"] == "train" and r.params["arm"] == "LS" else r for r in results]
    c7 = {c.id: c for c in STUDY.analyse(spec, swapped)}["C7"]
    assert all(c7.evidence["cells"].values()) and c7.verdict == "holds"


def test_stacked_cnn_members_are_their_seeds():
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ens = NE.StackedCNN([5, 9])
    one = NE.StackedCNN([9])
    out = ens(x)
    assert out.shape == (2, 2, 10)
    torch.testing.assert_close(out[1], one(x)[0])
