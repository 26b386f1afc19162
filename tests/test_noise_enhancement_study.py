"""Tests of the noise-enhancement study: spec and jobs, known-answer tests of the verdict logic on
synthetic results (per-cell verdicts, the informativeness rule, the compute control, the seed
resampling), and a tiny end-to-end run (jobs -> run -> analyse -> figures). The library code it
calls is tested in test_ne_noise, test_sampling, test_ensemble_sgd, test_convnet, test_optim, test_data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nnphys.errors import ConfigError
from nnphys.optim import alpha_for, effective_batch_size
from nnphys.studies import get_study
from nnphys.studies.base import Result
from nnphys.studies import _ne_cells as NC
from nnphys.studies import noise_enhancement as NE

STUDY = NE.STUDY

TINY = {
    "tasks": ["digits", "depth_locality"], "n_seeds": 2, "steps": 12, "epochs": 0.5, "width": 8,
    "alphas": [1.0], "lr_grid": [0.05], "toy_draws": 4000, "probe_draws": 200, "probe_train_steps": 3,
    "probe_max_n": 300, "probe_bootstrap": 200, "n_curve": 3, "t3_n_train": 300, "t3_n_val": 50,
    "t3_n_test": 100, "batch_small": 4, "batch_large": 16, "n_eval_train": 200,
}


# ------------------------------------------------------------------------------------------------
# spec and jobs
# ------------------------------------------------------------------------------------------------


def test_registered_and_presets_validate():
    assert get_study("noise-enhancement") is STUDY
    q = STUDY.make_spec("quick")
    assert q.match_alpha == pytest.approx(1.436492, abs=1e-6)  # B_eff = 16 at B_l = 128 (§9)
    assert effective_batch_size(q.batch_large, q.match_alpha) == pytest.approx(16.0)
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
    assert [v["alpha"] for v in ne["variants"]] == pytest.approx(sorted([1.0, alpha_for(16, 4)]))
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
    assert {f.name for f in figs} == {"test_error_vs_beff", "alpha_sweep", "noise_factor_vs_alpha", "train_loss_curves"}
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
    assert all(c["criterion_met"] for c in c7.evidence["cells"].values())
    assert c7.verdict in ("holds", "inconclusive")  # inconclusive when no cell is informative


# ------------------------------------------------------------------------------------------------
# known-answer tests of the verdict logic on synthetic results
# ------------------------------------------------------------------------------------------------

Z = np.array([-1.3, -0.5, 0.0, 0.5, 1.3])  # fixed per-seed offsets: sd 0.92, se 0.41 (x the scale)
KA_SPEC = {"tasks": ["mnist1d_small", "digits"], "n_seeds": 5, "batch_small": 16, "batch_large": 128,
           "alphas": [1.0, 3.0], "lr_grid": [0.2], "steps": 100, "epochs": 2.0}


def _train_result(spec, task, arm, errs: dict, sd=0.01):
    """A done train job whose member (seed, variant) test error at budget ``b`` is
    ``errs[b][variant key] + sd * Z[seed]``; variant keys: the arm, ``NE(a)``, ``LS_warmup``."""
    job = next(j for j in STUDY.jobs(spec) if j["kind"] == "train" and j["task"] == task and j["arm"] == arm)
    members, final, best = [], {b: {"test_error": [], "train_loss": []} for b in NE.BUDGETS}, {b: [] for b in NE.BUDGETS}
    for si, seed in enumerate(job["seeds"]):
        for v in job["variants"]:
            key = NE.ne_key(v["alpha"]) if arm == "NE" else ("LS_warmup" if v["warmup_steps"] else arm)
            members.append({"seed": seed, "alpha": v["alpha"], "lr": 0.2, "lr_used": 0.2 * job["lr_mult"],
                            "warmup_steps": v["warmup_steps"]})
            for b in NE.BUDGETS:
                e = errs[b][key] + sd * Z[si]
                final[b]["test_error"].append(e)
                final[b]["train_loss"].append(0.01)
                best[b].append(e)
    m = {"members": members, "final": final, "best_val_test_error": best, "diverged": [False] * len(members),
         "died_at": [-1] * len(members), "optimizer_steps": job["total_steps"],
         "train_loss_3q": {b: [0.011] * len(members) for b in NE.BUDGETS}}
    return Result(key=f"{task}/{arm}", params=job, status="done", metrics=m)


def _synthetic(spec, cells: dict):
    """``cells[task][budget]``: {arm key: mean test error}; all arms of every task."""
    out = []
    for task, by_budget in cells.items():
        for arm in NE.ARMS:
            out.append(_train_result(spec, task, arm, by_budget))
    return out


def _row(S, L, m, n1, n3, L2, LS, LSw=None):
    spec = STUDY.make_spec("quick", KA_SPEC)
    return {"S": S, "L": L, NE.ne_key(round(spec.match_alpha, 12)): m, "NE(1)": n1, "NE(3)": n3, "L2": L2,
            "LS": LS, "LS_warmup": LS if LSw is None else LSw}


# NE closes (and beats) the S-L gap; the mirror: NE makes it worse than L, LS is best
GOOD = _row(S=0.50, L=0.56, m=0.50, n1=0.53, n3=0.47, L2=0.56, LS=0.60)
BAD = _row(S=0.50, L=0.56, m=0.62, n1=0.64, n3=0.66, L2=0.55, LS=0.45)
CEILING = _row(S=0.015, L=0.016, m=0.015, n1=0.015, n3=0.014, L2=0.016, LS=0.017)  # 300 test rows: ~5 mistakes
NO_GAP = _row(S=0.50, L=0.505, m=0.45, n1=0.47, n3=0.44, L2=0.50, LS=0.52)
HEADLINE = ("C4", "C5", "C6", "C7", "C8", "C9")


def _claims(cells):
    spec = STUDY.make_spec("quick", KA_SPEC)
    return {c.id: c for c in STUDY.analyse(spec, _synthetic(spec, cells))}


def test_informative_cell_where_ne_must_hold():
    cl = _claims({"mnist1d_small": {"steps": GOOD, "epochs": GOOD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    for cid in HEADLINE:
        c = cl[cid]
        assert c.verdict == "holds", (cid, c.summary)
        assert c.evidence["cells"]["mnist1d_small/equal_steps"]["verdict"] == "holds"
        assert c.evidence["cells"]["digits/equal_steps"]["verdict"] == "uninformative"
        assert "floor" in c.evidence["cells"]["digits/equal_steps"]["why"]
        assert c.evidence["headline_cells"] == (["mnist1d_small/equal_steps", "mnist1d_small/equal_grad_evals"]
                                                if cid == "C9" else ["mnist1d_small/equal_steps"])


def test_mirrored_cell_where_ne_must_fail():
    cl = _claims({"mnist1d_small": {"steps": BAD, "epochs": BAD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    for cid in HEADLINE:
        assert cl[cid].verdict == "fails", (cid, cl[cid].summary)
        assert cl[cid].evidence["cells"]["mnist1d_small/equal_steps"]["verdict"] == "fails"


def test_only_uninformative_cells_give_inconclusive_never_fails():
    """A ceiling (floor of test mistakes) and a non-significant S-L gap are uninformative, even
    where NE's numbers would 'fail' or 'hold'."""
    cl = _claims({"mnist1d_small": {"steps": NO_GAP, "epochs": NO_GAP}, "digits": {"steps": CEILING, "epochs": CEILING}})
    for cid in HEADLINE:
        c = cl[cid]
        assert c.verdict == "inconclusive", (cid, c.summary)
        assert c.evidence["headline_cells"] == []
        assert "not significant" in c.evidence["cells"]["mnist1d_small/equal_steps"]["why"]
        assert "no informative headline cell" in c.summary


def test_compute_control_reported_apart_from_the_headline():
    """Equal steps hold, equal gradient evaluations fail: C4-C8 hold with a failing control; C9
    (judged on both budgets) fails."""
    cl = _claims({"mnist1d_small": {"steps": GOOD, "epochs": BAD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    for cid in ("C4", "C5", "C6", "C7", "C8"):
        assert cl[cid].verdict == "holds" and cl[cid].evidence["compute_control_verdict"] == "fails", cid
    assert cl["C9"].verdict == "fails"


def test_one_failing_informative_cell_fails_the_conjunction():
    spec = STUDY.make_spec("quick", {**KA_SPEC, "tasks": ["mnist1d_small", "mnist1d"]})
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}, "mnist1d": {"steps": BAD, "epochs": BAD}})
    c5 = {c.id: c for c in STUDY.analyse(spec, res)}["C5"]
    assert c5.verdict == "fails" and c5.evidence["tally"] == {"holds": 1, "fails": 1, "n/a": 0}


def test_informativeness_rule_boundaries():
    """The gap must exceed 2 sqrt(se_S^2 + se_L^2); the floor counts mistakes on the test rows."""
    spec = STUDY.make_spec("quick", KA_SPEC)
    se = 0.01
    at = 2 * np.hypot(se, se)
    s = {"mean": 0.5, "se": se, "n": 5, "n_diverged": 0}
    assert NC.informative(spec, "mnist1d", {"S": s, "L": {**s, "mean": 0.5 + at * 1.01}})[0] is True
    assert NC.informative(spec, "mnist1d", {"S": s, "L": {**s, "mean": 0.5 + at * 0.99}})[0] is False
    assert NC.informative(spec, "mnist1d", {"S": {**s, "mean": 0.6}, "L": s})[0] is False  # L better: no gap to close
    # digits, 300 test rows: 9.9 mistakes is a floor, 10.2 is not (the gap itself is large here)
    lo = {"mean": 0.01, "se": 0.0001, "n": 5, "n_diverged": 0}
    assert NC.informative(spec, "digits", {"S": lo, "L": {**lo, "mean": 9.9 / 300}})[0] is False
    assert NC.informative(spec, "digits", {"S": lo, "L": {**lo, "mean": 10.2 / 300}})[0] is True
    assert NC.informative(spec, "depth_locality", {"S": lo, "L": {**lo, "mean": 0.02}})[0] is True  # no floor for MSE
    assert NC.informative(spec, "mnist1d", {"S": None, "L": s})[0] is None


def test_resample_is_paired_and_stable_on_a_clear_effect():
    spec = STUDY.make_spec("quick", KA_SPEC)
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    rng = np.random.default_rng(0)
    same = 0
    for _ in range(30):
        rs = STUDY.resample(res, rng)
        seeds = {r.params["arm"]: [m["seed"] for m in r.metrics["members"]] for r in rs if r.params["task"] == "digits"}
        # one draw for every job: member k of each arm is the same seed (NE and LS hold several variants per seed)
        s_order = seeds["S"]
        assert seeds["NE"][:: len(spec.ne_alphas)] == s_order and seeds["LS"][::2] == s_order
        same += {c.id: c for c in STUDY.analyse(spec, rs)}["C5"].verdict == "holds"
    assert same >= 27  # the effect is 6 s.e. wide; a resample with < 2 distinct seeds may lose it
    assert [r.params for r in STUDY.resample(res, rng)] == [r.params for r in res]


def test_analyse_raises_on_a_bug_instead_of_inconclusive():
    spec = STUDY.make_spec("quick", KA_SPEC)
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    del res[0].metrics["final"]["steps"]["test_error"]  # malformed metrics: a bug, not missing data
    with pytest.raises(KeyError):
        STUDY.analyse(spec, res)


def _toy_result(ratio_err=0.0, z=0.5):
    """A synthetic §13 toy job: every mode and alpha with mean deviation ``z`` s.e. and a measured
    ratio off its theory by the relative ``ratio_err``."""
    modes = {}
    for mode in ("split", "independent", "replacement"):
        als = [{"alpha": a, "mean_dev": z * 1e-3, "mean_se": 1e-3, "theory": 1 + 2 * a + 2 * a * a,
                "ratio": (1 + 2 * a + 2 * a * a) * (1 + ratio_err), "ratio_se": 0.01} for a in (0.5, 1.0)]
        modes[mode] = {"alphas": als, "sgd_var": 1.0, "sgd_var_theory": 1.0}
    return Result(key="toy", params={"kind": "toy"}, status="done",
                  metrics={"modes": modes, "draws": 10**6, "n": 200, "batch_size": 20})


@pytest.mark.parametrize("ratio_err,z,want", [(0.002, 0.5, "holds"), (0.05, 0.5, "fails"), (0.002, 6.0, "fails")])
def test_c1_c2_known_answers_on_a_synthetic_toy(ratio_err, z, want):
    """C2 holds within 1% of the §13 ratio and fails at 5%; C1 fails when the mean is 6 s.e. off."""
    spec = STUDY.make_spec("quick", KA_SPEC)
    cl = {c.id: c for c in STUDY.analyse(spec, [_toy_result(ratio_err, z)])}
    assert cl["C1"].verdict == ("fails" if z > 4 else "holds")
    assert cl["C2"].verdict == ("fails" if ratio_err > 0.01 else "holds")
    assert want in (cl["C1"].verdict, cl["C2"].verdict)


def test_c3_known_answers():
    spec = STUDY.make_spec("quick", KA_SPEC)
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}})
    assert {c.id: c for c in STUDY.analyse(spec, res)}["C3"].verdict == "holds"
    bad = [Result(key=r.key, params={**r.params, "batch_size": 64}, status="done", metrics=r.metrics)
           if r.params["arm"] == "NE" else r for r in res]  # NE at another B than L
    assert {c.id: c for c in STUDY.analyse(spec, bad)}["C3"].verdict == "fails"
    assert {c.id: c for c in STUDY.analyse(spec, [])}["C3"].verdict == "inconclusive"


def test_alpha_sweep_marks_diverged_seeds_and_legends_are_8pt():
    spec = STUDY.make_spec("quick", KA_SPEC)
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    ne = next(r for r in res if r.params["arm"] == "NE" and r.params["task"] == "mnist1d_small")
    for k, mi in enumerate(ne.metrics["members"]):  # NE(3) diverges in every seed
        if mi["alpha"] == 3.0:
            ne.metrics["diverged"][k] = True
    figs = {f.name: f for f in STUDY.figures(spec, res)}
    ax = figs["alpha_sweep"].figure.axes[0]  # mnist1d_small, equal steps
    marks = [c for c in ax.collections if c.get_label() == "diverged seeds (count)"]
    assert len(marks) == 1 and marks[0].get_offsets()[:, 0].tolist() == [3.0]
    assert [t.get_text() for t in ax.texts] == ["5"]
    for f in figs.values():
        for a in f.figure.axes:
            if a.get_legend():
                assert all(t.get_fontsize() >= 8 for t in a.get_legend().get_texts())


def test_markdown_tables_show_each_cell_with_its_reading():
    """The guide's per-cell table (``STUDY.tables``): the synthetic means (the per-seed offsets Z
    have mean 0, so S's mean is 0.50 to the table's 3 decimals) and the informativeness reading
    per cell, plus the plateau table."""
    spec = STUDY.make_spec("quick", KA_SPEC)
    md = STUDY.tables(spec, _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD},
                                              "digits": {"steps": CEILING, "epochs": CEILING}}))
    errors_part = md.split("Train loss at 3/4")[0]
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in errors_part.splitlines() if ln.startswith("| ")}
    small = lines["mnist1d_small / equal_steps"]
    assert small.endswith("| informative |")
    assert small.split(" | ")[2].startswith("0.500±")
    assert "uninformative: floor" in lines["digits / equal_steps"]
    assert "0.011 → 0.01" in md  # plateau: train loss at 3/4 of the budget -> at its end
