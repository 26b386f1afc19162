"""Tests of the depth-locality study: spec validation, jobs, a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from nnphys.studies import get_study
from nnphys.studies.base import Result, canonical_json
from nnphys.studies.depth_locality import CLAIMS, STUDY, jobs, run

TINY = dict(
    d=6, ks=[2], n_train=[40], n_train_by_k={}, n_val=30, n_test=60, depths=[1, 2], width=16,
    lr_grid=[0.01, 0.03], max_epochs=40, n_seeds=2, alphas=[1.0, 100.0], width_sweep=[],
    robustness=["batch16"], control_k1=True, control_permutation=True, blind_datasets=4, blind_d=5,
    blind_n=20, blind_n_test=40, blind_chunk=4, blind_laws=["cube"], min_informative_n=1,
)




def test_registered():
    assert get_study("depth-locality") is STUDY
    assert set(STUDY.claims) == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "X1", "X2"}
    for cid, info in CLAIMS.items():
        assert info.tag in ("paper", "derived", "default")
    for name, f in STUDY.spec.model_fields.items():
        if name == "device":
            continue
        assert f.description and f.description.startswith("["), name


@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_presets_valid_and_jobs_jsonable(scale):
    spec = STUDY.make_spec(scale)
    js = jobs(spec)
    keys = [canonical_json(j) for j in js]
    assert len(set(keys)) == len(keys)
    for j in js:
        assert j["device"] == "cpu"
        assert json.loads(json.dumps(j)) == j
        assert "data_seeds" in j or "dataset_seeds" in j


def _field_of(err: ValidationError) -> str:
    """The spec field named by the first error (an element error ``depths.0`` names ``depths``)."""
    return str(err.errors()[0]["loc"][0])


def test_bad_d_vs_k_names_d():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"d": 3, "ks": [2, 3]})
    assert _field_of(e.value) == "d"


def test_no_bias_depth1_odd_k_refused_unless_overridden():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"bias": False, "ks": [3], "depths": [1, 2]})
    assert _field_of(e.value) == "bias"
    STUDY.make_spec("quick", {"bias": False, "ks": [3], "depths": [1, 2], "allow_no_bias_odd_k": True})
    STUDY.make_spec("quick", {"bias": False, "ks": [2], "depths": [1, 2]})  # even k is fine (§9)
    STUDY.make_spec("quick", {"bias": False, "ks": [3], "depths": [2, 4]})  # L >= 2 is fine


def test_sign_variant_even_d_needs_tie_break():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"target_kind": "sign", "d": 16})
    assert _field_of(e.value) == "tie_break"
    STUDY.make_spec("quick", {"target_kind": "sign", "d": 16, "tie_break": 1.0})
    STUDY.make_spec("quick", {"target_kind": "sign", "d": 17})


@pytest.mark.parametrize("bad", [{"n_seeds": 0}, {"width": 0}, {"depths": [0, 1]}, {"lr_grid": [-0.1]},
                                 {"alphas": [0.5]}, {"nonsense": 1}])
def test_bad_fields(bad):
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", bad)
    assert _field_of(e.value) == next(iter(bad))


def test_sign_robustness_variant_uses_odd_d():
    spec = STUDY.make_spec("quick", {**TINY, "robustness": ["sign"]})
    sj = [j for j in jobs(spec) if j.get("variant") == "sign" and j["kind"] == "net"]
    assert sj and all(j["d"] == 7 and j["target_kind"] == "sign" and j["loss"] == "logistic" for j in sj)


def test_net_job_is_deterministic():
    spec = STUDY.make_spec("quick", TINY)
    job = next(j for j in jobs(spec) if j["kind"] == "net")
    a, b = run(job), run(job)
    ha, hb = a.pop("arrays")["history"], b.pop("arrays")["history"]
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b and (ha == hb).all()
    assert len(a["err"]) == TINY["n_seeds"] and a["lr"] in TINY["lr_grid"]
    assert a["kta_points"] == 40 and len(a["kta_trained"]) == TINY["n_seeds"]
    assert all(-1 <= v <= 1 for v in a["kta_init"] + a["kta_trained"]) and all(v > 0 for v in a["w1_rel_change"])


@pytest.mark.slow
def test_tiny_end_to_end():
    spec = STUDY.make_spec("quick", TINY)
    js = jobs(spec)
    results = [Result.from_output(j, run(j)) for j in js]
    claims = STUDY.analyse(spec, results)
    ids = [c.id for c in claims]
    assert sorted(ids) == sorted(CLAIMS)
    for c in claims:
        assert c.verdict in ("holds", "fails", "inconclusive")
        assert c.tag == CLAIMS[c.id].tag
        assert isinstance(c.evidence, dict) and c.evidence
        json.dumps(c.to_dict())
    by = {c.id: c for c in claims}
    # C5 ran 4 < 200 data sets and C7 ran 1 of 5 variants: neither may claim `holds`
    assert by["C5"].verdict != "holds" and by["C7"].verdict != "holds"
    assert by["C7"].evidence["not_run"] == ["lr_other", "batch256", "law_other", "sign"]
    figs = STUDY.figures(spec, results)
    assert {f.name for f in figs} >= {"error_vs_depth"}
    assert "error_vs_n" not in {f.name for f in figs}  # one N per k: no single-point "curves"
    # missing and failed jobs: analyse copes and the affected claims turn inconclusive
    kept = [r for r in results if r.params["kind"] != "kernel"]
    kept[0] = Result(key="", params=kept[0].params, status="failed", metrics={}, error="boom")
    claims2 = {c.id: c for c in STUDY.analyse(spec, kept)}
    assert claims2["C4"].verdict == "inconclusive"
    # the only cell lost its L=1 local job: C1 is inconclusive and names what is missing
    assert claims2["C1"].verdict == "inconclusive" and "missing" in claims2["C1"].evidence
    assert all(c.verdict in ("holds", "fails", "inconclusive") for c in claims2.values())
    assert all(math.isfinite(r["L"]) for r in by["C6"].evidence["rows"]) or not by["C6"].evidence["rows"]


# =============================================================================================
# known-answer tests of the verdict logic on synthetic results (issue 10 item 3, issue 13 item 7)
# =============================================================================================

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nnphys.studies._depth_cells import Rule, Runs, cell_trend, informative  # noqa: E402
from nnphys.studies.depth_locality import _key, main_jobs, resample  # noqa: E402
from nnphys.train import select_lr  # noqa: E402

SYN = dict(TINY, d=8, ks=[2], n_train=[40, 80], depths=[1, 2, 3, 4], n_seeds=4, kernel_baseline=False,
           robustness=[], control_k1=False, control_permutation=False, blind_datasets=0, alphas=[1.0])


def _synthetic(spec, err, *, diverged_jobs=(), unreached=lambda key, s: False, noise=0.01):
    """Done results of every main net job with ``err(target, k, N, L)`` + N(0, noise) per seed
    (fixed generator), every run interpolating with P > N unless ``unreached``."""
    rng = np.random.default_rng(7)
    out = []
    for j in main_jobs(spec, with_kernels=False):
        key = _key(j)
        if key in diverged_jobs:
            out.append(Result(key="", params=j, status="diverged", metrics={}, error="every member diverged"))
            continue
        n = spec.n_seeds
        e = [float(err(j["target"], j["k"], j["n"], j["depth"]) + noise * rng.standard_normal()) for _ in range(n)]
        reached = [not unreached(key, s) for s in range(n)]
        out.append(Result(key="", params=j, status="done", metrics={
            "err": e, "reached": reached, "diverged": [False] * n, "p_over_n": 10.0, "trivial_err": [1.0] * n,
            "stop_reason": ["criterion" if r else "epoch_cap" for r in reached], "w1_rel_change": [0.1 * j["depth"]] * n}))
    return out


def _interplay(t, k, n, L):  # local falls with depth, global rises
    return 0.4 - 0.05 * L if t == "local" else 0.3 + 0.1 * L


def _mirrored(t, k, n, L):
    return _interplay("global" if t == "local" else "local", k, n, L)


def _verdicts(spec, results):
    return {c.id: c for c in STUDY.analyse(spec, results)}


def test_clean_interplay_holds_and_mirror_fails():
    spec = STUDY.make_spec("quick", SYN)
    by = _verdicts(spec, _synthetic(spec, _interplay))
    assert [by[c].verdict for c in ("C1", "C2", "C3", "C8")] == ["holds"] * 4
    assert by["C1"].evidence["informative_cells"] == 2
    mb = _verdicts(spec, _synthetic(spec, _mirrored))
    assert [mb[c].verdict for c in ("C1", "C2", "C3")] == ["fails"] * 3


def _runs_of(spec, err):
    return Runs(main_jobs(spec, with_kernels=False), _synthetic(spec, err), _key)


@pytest.mark.parametrize("err,expect,word", [
    (_interplay, True, ""),
    (lambda t, k, n, L: 0.9, False, "learns neither"),                                   # L=1 trivial on both
    (lambda t, k, n, L: 0.5 if L == 1 else 0.95, False, "deepest"),                      # deep nets trivial on both
    (lambda t, k, n, L: 0.3 if t == "local" else 1.2, False, "hopeless"),                # global hopeless everywhere
    (lambda t, k, n, L: 0.3 if t == "local" else (1.2 if L > 1 else 0.95), True, ""),    # not hopeless at L=1
])
def test_informativeness_rule(err, expect, word):
    spec = STUDY.make_spec("quick", SYN)
    inf, why = informative(_runs_of(spec, err), ("main", "main", 2, 40), spec.depths, Rule())
    assert inf is expect and word in why


def test_no_informative_cell_is_inconclusive_never_fails():
    spec = STUDY.make_spec("quick", SYN)
    by = _verdicts(spec, _synthetic(spec, lambda t, k, n, L: 0.95 + 0.01 * L))
    for cid in ("C1", "C2", "C3"):
        assert by[cid].verdict == "inconclusive", cid
        assert by[cid].evidence["informative_cells"] == 0
        assert "uninformative" in by[cid].summary


def test_c3_flat_local_curve_is_not_a_sign_difference():
    """Bug (issue 10): C3 compared only the signs of Spearman rho, so a flat local curve with a
    slightly negative rho and a rising global one counted as 'slopes differ'."""
    spec = STUDY.make_spec("quick", SYN)
    flat = lambda t, k, n, L: (0.3 - 0.001 * L) if t == "local" else 0.3 + 0.1 * L  # noqa: E731
    by = _verdicts(spec, _synthetic(spec, flat, noise=0.02))
    assert by["C3"].verdict == "fails"
    assert all(r["pass"] is False for r in by["C3"].evidence["rows"])


def test_c3_uses_the_depths_of_c1_c2():
    """Bug (issue 10): C3 gave a verdict from all depths while C1/C2 were inconclusive (L_max = 1)."""
    spec = STUDY.make_spec("quick", SYN)
    res = _synthetic(spec, _interplay, unreached=lambda key, s: key[5] > 1 and s == 0)
    by = _verdicts(spec, res)
    assert by["C1"].verdict == by["C2"].verdict == "inconclusive"
    assert by["C3"].verdict == "inconclusive"
    assert by["C8"].verdict == "fails"


def test_c8_counts_jobs_in_which_every_member_diverged():
    """Bug (issue 10): C8 left out diverged jobs and printed 'holds 36/36'."""
    spec = STUDY.make_spec("quick", SYN)
    dead = {("main", "main", t, 2, 40, 1) for t in ("local", "global")}
    c8 = _verdicts(spec, _synthetic(spec, _interplay, diverged_jobs=dead))["C8"]
    assert c8.verdict == "fails" and c8.evidence["flagged"] == 2 * spec.n_seeds
    assert c8.evidence["runs"] == len(main_jobs(spec, with_kernels=False)) * spec.n_seeds


def test_select_lr_when_every_lr_has_a_diverged_seed():
    """Bug (issue 10): with a diverged seed at every lr the first lr was taken silently."""
    nan = float("nan")
    val = torch.tensor([[nan, 0.2], [nan, nan], [0.1, 0.3]])
    div = torch.isnan(val)
    best, rule = select_lr(val, div, ~div)
    assert (best, rule) == (1, "all_lrs_have_diverged_seeds")  # lr 1 has 1 diverged seed, lr 0 has 2
    val2 = torch.tensor([[0.5, 0.2], [0.4, 0.3], [0.6, 0.1]])
    assert select_lr(val2, torch.zeros(3, 2, dtype=torch.bool), torch.ones(3, 2, dtype=torch.bool)) == (1, "clean")
    # an lr with a diverged seed is out while another has none, even with a lower validation error
    div3 = torch.tensor([[True, False], [False, False], [False, False]])
    val3 = torch.tensor([[nan, 0.9], [0.1, 0.9], [0.1, 0.9]])
    assert select_lr(val3, div3, ~div3) == (1, "clean")


def test_power_estimate_and_slopes():
    spec = STUDY.make_spec("quick", SYN)
    c = cell_trend(_runs_of(spec, _interplay), ("main", "main", 2, 40), spec.depths, Rule())
    s = c["local"]["slope"]
    assert s["mean"] == pytest.approx(-0.05, abs=0.01) and s["significant"]
    # (2 sd / |m|)^2 with sd = se sqrt(n): consistent with the 2 s.e. rule being met at n seeds
    assert s["seeds_needed"] <= s["n"]
    assert c["c3"] is True and c["slope_gap"]["mean"] == pytest.approx(0.15, abs=0.02)


def test_resample_shares_one_draw_and_is_reproducible():
    spec = STUDY.make_spec("quick", SYN)
    res = _synthetic(spec, _interplay)
    for r in res:  # err encodes the seed index so the draw can be read back
        r.metrics["err"] = [float(i) for i in range(spec.n_seeds)]
    a = resample(res, np.random.default_rng(3))
    b = resample(res, np.random.default_rng(3))
    draws = {tuple(r.metrics["err"]) for r in a}
    assert len(draws) == 1 and [r.metrics for r in a] == [r.metrics for r in b]
    assert res[0].metrics["err"] == [0.0, 1.0, 2.0, 3.0]  # originals untouched


def test_block_start_checked_by_the_spec():
    with pytest.raises(ValidationError) as e:
        STUDY.make_spec("quick", {"d": 16, "block_start": 17})
    assert _field_of(e.value) == "block_start"


def test_figures_from_synthetic_results_mark_diverged():
    spec = STUDY.make_spec("quick", SYN)
    res = _synthetic(spec, _interplay, diverged_jobs={("main", "main", "local", 2, 80, 4)})
    figs = {f.name: f for f in STUDY.figures(spec, res)}
    assert {"error_vs_depth", "error_vs_n", "feature_learning"} <= set(figs)
    labels = [t.get_text() for ax in figs["error_vs_depth"].figure.axes if ax.get_legend()
              for t in ax.get_legend().get_texts()]
    assert labels and all(ax.get_legend() is None or ax.get_legend().get_texts()[0].get_fontsize() >= 8
                          for ax in figs["error_vs_depth"].figure.axes)
    marked = [c for ax in figs["error_vs_depth"].figure.axes for c in ax.collections
              if c.get_label().startswith("diverged")]
    assert marked


# =============================================================================================
# the regime map (issue 10 item 2): known answers on synthetic cells
# =============================================================================================


def _map_results(spec, err):
    """Synthetic done results for every map job: ``err(init, target, L)`` + N(0, 0.01) per seed."""
    rng = np.random.default_rng(11)
    out = []
    for j in MAP.jobs(spec):
        n = len(j["data_seeds"])
        e = [float(err(j["init"], j["target"], j["depth"]) + 0.01 * rng.standard_normal()) for _ in range(n)]
        out.append(Result(key="", params=j, status="done", metrics={
            "err": e, "reached": [True] * n, "diverged": [False] * n, "p_over_n": 10.0, "trivial_err": [1.0] * n,
            "stop_reason": ["criterion"] * n}))
    return out


from nnphys.studies.depth_locality_map import STUDY as MAP  # noqa: E402


def test_map_says_where_claims_hold():
    spec = MAP.make_spec("quick")
    # torch_default: clean interplay; he_normal: deep nets trivial on both targets (uninformative)
    err = lambda init, t, L: _interplay(t, 2, 0, L) if init == "torch_default" else (0.5 if L == 1 else 0.97)  # noqa: E731
    by = {c.id: c for c in MAP.analyse(spec, _map_results(spec, err))}
    assert [by[m].verdict for m in ("M1", "M2", "M3")] == ["holds"] * 3
    assert by["M3"].evidence["informative"] == 1 and by["M3"].evidence["holds_in"][0].startswith("torch_default")
    assert "1/1 informative" in by["M3"].summary and "1/2 cells uninformative" in by["M3"].summary
    mirror = {c.id: c for c in MAP.analyse(spec, _map_results(spec, lambda i, t, L: _mirrored(t, 2, 0, L)))}
    assert [mirror[m].verdict for m in ("M1", "M2", "M3")] == ["fails"] * 3
    none = {c.id: c for c in MAP.analyse(spec, _map_results(spec, lambda i, t, L: 0.95))}
    assert all(c.verdict == "inconclusive" for c in none.values())
    figs = MAP.figures(spec, _map_results(spec, err))
    assert [f.name for f in figs] == ["regime_map"]
    cell = by["M3"].evidence["cells"][0]
    assert cell["slope_local"]["ci"][1] < 0 < cell["slope_global"]["ci"][0] and cell["seeds_needed_local_slope"] >= 2


def test_map_spec_checks():
    with pytest.raises(ValidationError) as e:
        MAP.make_spec("quick", {"inits": ["glorot"]})
    assert _field_of(e.value) == "inits"
    assert len(MAP.make_spec("medium").cells()) >= 12
    m = MAP.make_spec("medium")
    assert set(m.ds) == {16, 32} and min(m.widths) >= 256 and min(m.ns) >= 1000 and m.n_seeds == 5
    assert m.depths[0] == 1 and m.depths[-1] == 8 and len(m.lr_grid) == 1


def test_map_cell_with_a_fully_diverged_net_is_uninformative_not_missing():
    """A cell where every seed of some (target, depth) diverged is `uninformative` with the reason
    named; the other cell keeps its verdict and the claims count only informative cells."""
    import dataclasses

    spec = MAP.make_spec("quick")
    err = lambda init, t, L: _interplay(t, 2, 0, L)  # noqa: E731
    res = _map_results(spec, err)
    first = min(spec.depths)  # with L = 1 gone the cell has no baseline (a deeper loss only shrinks L_max)
    res = [dataclasses.replace(r, status="diverged") if r.params["init"] != "torch_default" and r.params["depth"] == first
           else r for r in res]
    by = {c.id: c for c in MAP.analyse(spec, res)}
    cells = by["M3"].evidence["cells"]
    dead = [c for c in cells if c["init"] != "torch_default"]
    assert dead and all(c["informative"] is False and c["reason"].startswith("diverged") for c in dead)
    assert by["M3"].verdict == "holds" and by["M3"].evidence["informative"] == 1
