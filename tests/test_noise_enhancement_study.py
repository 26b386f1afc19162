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
from nnphys.noise_enhancement import alpha_for, effective_batch_size
from nnphys.studies import calibration as CAL
from nnphys.studies import get_study
from nnphys.studies.base import Result
from nnphys.studies.noise_enhancement import STUDY
from nnphys.studies.noise_enhancement import _cells as NC
from nnphys.studies.noise_enhancement import claims as NE
from nnphys.studies.noise_enhancement import spec as NS


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
    assert q.match_alpha == pytest.approx(1.436492, abs=1e-6)  # B_eff = 16 at B_l = 128
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
    js = [j.params() for j in STUDY.jobs(spec)]
    json.dumps(js)
    train = [j for j in js if j["kind"] == "train"]
    assert {j["arm"] for j in train} == set(NS.ARMS) - {"S_double"}  # quick adds S_half (SGD at B_s/2) to the default arms
    assert next(j for j in train if j["arm"] == "S_half")["batch_size"] == 2
    assert set(STUDY.make_spec("paper").arms) == set(NS.DEFAULT_ARMS)  # paper keeps the five arms
    med = STUDY.make_spec("medium")  # the eta x alpha experiment: plain SGD at B_s/2, B_s, 2 B_s too
    assert set(med.arms) == set(NS.ARMS) and med.lr_design == "cells" and len(med.lr_grid) == 3
    mtrain = [j.params() for j in STUDY.jobs(med) if j.KIND == "train"]
    assert {j["batch_size"] for j in mtrain if j["arm"].startswith("S")} == {8, 16, 32}
    assert all(tuple(j["lrs"]) == (0.05, 0.1, 0.2) for j in mtrain)
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
    return spec, js, [Result.from_output(j, j.run()) for j in js]


@pytest.mark.slow
def test_end_to_end_tiny(tiny_results):
    spec, js, results = tiny_results
    claims = STUDY.analyse(spec, results)
    assert [c.id for c in claims] == list(NE.CLAIMS)
    for c in claims:
        assert c.verdict in ("holds", "fails", "inconclusive", "uninformative")
        assert c.tag == NE.CLAIMS[c.id].tag and c.rule["version"]
        assert isinstance(c.evidence, dict) and c.evidence
        json.dumps(c.evidence)
    figs = STUDY.figures(spec, results)
    assert {f.name for f in figs} == {"test_error_vs_beff", "alpha_sweep", "noise_factor_vs_alpha", "train_loss_curves",
                                      "test_error_curves"}
    # the training job logs what C3 audits and both budgets
    ne = next(r for r in results if r.params["kind"] == "train" and r.params["arm"] == "NE")
    assert ne.metrics["optimizer_steps"] == ne.params["total_steps"]
    assert ne.metrics["epochs_at"]["steps"] == pytest.approx(2 * ne.metrics["epochs_at_counting_B"]["steps"])
    assert ne.arrays["test_error"].shape == (len(ne.metrics["members"]), len(ne.arrays["eval_steps"]))


@pytest.mark.slow
def test_run_is_deterministic(tiny_results):
    spec, js, results = tiny_results
    job = next(j for j in js if j.KIND == "train" and j.arm == "NE" and j.data["task"] == "digits")
    again = job.run()
    first = next(r for r in results if r.params == job.params())
    assert json.dumps({k: v for k, v in again.items() if k != "arrays"}, sort_keys=True) == \
        json.dumps(first.metrics, sort_keys=True)
    for k, v in again["arrays"].items():
        assert np.array_equal(v, first.arrays[k], equal_nan=True)


@pytest.mark.slow
def test_analyse_copes_with_failed_and_missing(tiny_results):
    spec, js, results = tiny_results
    keep = [r for r in results if not (r.params["kind"] == "train" and r.params["arm"] in ("S", "LS"))]
    failed = Result(key="x", params=js[0].params(), status="failed", metrics={}, error="boom")
    claims = {c.id: c for c in STUDY.analyse(spec, keep + [failed])}
    assert claims["C6"].verdict == "inconclusive" and claims["C7"].verdict == "inconclusive"
    assert "missing" not in claims["C1"].evidence and claims["C1"].evidence["toy"]  # the toy is still there
    no_toy = [r for r in results if r.params["kind"] != "toy"]
    assert {c.id: c for c in STUDY.analyse(spec, no_toy)}["C1"].verdict == "inconclusive"
    assert all(c.verdict == "inconclusive" for c in STUDY.analyse(spec, []))
    STUDY.figures(spec, [])  # no crash on an empty store


@pytest.mark.slow
def test_fully_diverged_job_counts_as_divergence(tiny_results):
    """A job whose members all diverged (status 'diverged', no metrics) is LS at the trivial error in
    every seed for C7 (intention to treat), counted in each cell."""
    spec, js, results = tiny_results
    swapped = [Result(key="d", params=r.params, status="diverged", metrics={"died_at": [3]}, error="nan")
               if r.params["kind"] == "train" and r.params["arm"] == "LS" else r for r in results]
    c7 = {c.id: c for c in STUDY.analyse(spec, swapped)}["C7"]
    cells = c7.evidence["equal_steps"]["cells"]
    assert cells and all(c["diverged"]["LS"] == spec.n_seeds and c["mean"] > 0 for c in cells)
    assert c7.verdict in ("holds", "uninformative")  # uninformative when no tiny cell has the power


# ------------------------------------------------------------------------------------------------
# known-answer tests of the verdict logic on synthetic results
# ------------------------------------------------------------------------------------------------

Z = np.array([-1.3, -0.5, 0.0, 0.5, 1.3])  # fixed per-seed offsets shared by every arm of a seed (pairing)
KEYS = ("S", "S_half", "L", "L2", "LS", "LS_warmup", "NE(1)", "NE(1.436)", "NE(3)")


def J(key: str) -> np.ndarray:
    """A fixed arm x seed jitter pattern per variant (centred), so paired differences have s.d. > 0."""
    j = np.random.default_rng(KEYS.index(key)).standard_normal(5)
    return j - j.mean()



KA_SPEC = {"tasks": ["mnist1d_small", "digits"], "n_seeds": 5, "batch_small": 16, "batch_large": 128,
           "alphas": [1.0, 3.0], "lr_grid": [0.2], "steps": 100, "epochs": 2.0}
def _train_result(spec, task, arm, errs: dict, sd=0.01, jitter=0.002, dead: dict | None = None):
    """A done train job whose member (seed, variant) test error at budget ``b`` is
    ``errs[b][variant key] + sd * Z[seed] + jitter * J(variant)[seed]``; variant keys: the arm,
    ``NE(a)``, ``LS_warmup``. ``dead[variant key]``: the seeds (indices) that diverged."""
    job = next(j.params() for j in STUDY.jobs(spec) if j.KIND == "train" and j.task == task and j.arm == arm)
    members, final, best = [], {b: {"test_error": [], "train_loss": []} for b in NC.BUDGETS}, {b: [] for b in NC.BUDGETS}
    div = []
    for si, seed in enumerate(job["seeds"]):
        for v in job["variants"]:
            key = NC.ne_key(v["alpha"]) if arm == "NE" else ("LS_warmup" if v["warmup_steps"] else arm)
            members.append({"seed": seed, "alpha": v["alpha"], "lr": 0.2, "lr_used": 0.2 * job["lr_mult"],
                            "warmup_steps": v["warmup_steps"]})
            dv = si in (dead or {}).get(key, ())
            div.append(dv)
            for b in NC.BUDGETS:
                e = errs[b][key] + sd * Z[si] + jitter * J(key)[si]
                final[b]["test_error"].append(float("nan") if dv else e)
                final[b]["train_loss"].append(0.01)
                best[b].append(e)
    m = {"members": members, "final": final, "best_val_test_error": best, "diverged": div,
         "died_at": [-1] * len(members), "optimizer_steps": job["total_steps"],
         "train_loss_3q": {b: [0.011] * len(members) for b in NC.BUDGETS}}
    return Result(key=f"{task}/{arm}", params=job, status="done", metrics=m)


def _synthetic(spec, cells: dict, dead: dict | None = None, sd: float = 0.01):
    """``cells[task][budget]``: {arm key: mean test error}; every arm of the spec in every task."""
    return [_train_result(spec, task, arm, by_budget, sd=sd, dead=(dead or {}).get(task))
            for task, by_budget in cells.items() for arm in spec.arms]


def _row(S, L, m, n1, n3, L2, LS, LSw=None, Sh=None):
    spec = STUDY.make_spec("quick", KA_SPEC)
    return {"S": S, "S_half": S - 0.03 if Sh is None else Sh, "L": L, NC.ne_key(round(spec.match_alpha, 12)): m,
            "NE(1)": n1, "NE(3)": n3, "L2": L2, "LS": LS, "LS_warmup": LS if LSw is None else LSw}


# NE closes (and beats) the S-L gap, S_half beats S (room for C6); the mirror: NE worse than L, LS best
GOOD = _row(S=0.50, L=0.56, m=0.47, n1=0.53, n3=0.60, L2=0.56, LS=0.60)
BAD = _row(S=0.50, L=0.56, m=0.62, n1=0.64, n3=0.66, L2=0.55, LS=0.45)
CEILING = _row(S=0.015, L=0.016, m=0.015, n1=0.015, n3=0.014, L2=0.016, LS=0.017)  # 300 test rows: ~5 mistakes
DIRECTIONAL = ("C4", "C5", "C6", "C7", "C9")


def _claims(cells, spec_over=None, dead=None):
    spec = STUDY.make_spec("quick", {**KA_SPEC, **(spec_over or {})})
    return {c.id: c for c in STUDY.analyse(spec, _synthetic(spec, cells, dead))}


def _cells(claim, budget="equal_steps", alpha=None):
    """The judged cells of a claim's headline judgement (per alpha for C4 and C6)."""
    ev = claim.evidence[budget]
    if alpha is not None:
        ev = ev["per_alpha"][alpha]
    return {c["cell"]: c for c in ev["cells"]}


def test_clear_effect_holds_and_its_mirror_fails():
    """Paired effects of 3-6 points at a paired s.d. of ~0.001: every directional claim holds on
    GOOD and fails on BAD; the digits cell (a floor of test mistakes) is uninformative with the reason."""
    good = _claims({"mnist1d_small": {"steps": GOOD, "epochs": GOOD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    bad = _claims({"mnist1d_small": {"steps": BAD, "epochs": BAD}, "digits": {"steps": CEILING, "epochs": CEILING}})
    for cid in DIRECTIONAL:
        assert good[cid].verdict == "holds", (cid, good[cid].summary)
        assert bad[cid].verdict == "fails", (cid, bad[cid].summary)
        assert good[cid].rule["kind"] == "directional" and good[cid].rule["sesoi"] == NE.SESOI
        assert len(good[cid].rule["version"]) == 12
    c5 = _cells(good["C5"])
    assert c5["mnist1d_small/equal_steps"]["informative"]
    assert c5["mnist1d_small/equal_steps"]["mean"] == pytest.approx(0.56 - 0.47, abs=1e-9)  # paired mean: L - NE
    assert not c5["digits/equal_steps"]["informative"] and "floor" in c5["digits/equal_steps"]["why"]
    # C8: NE(alpha_match) 3 points below S: outside the 2-point margin -> fails; at S -> holds
    assert good["C8"].verdict == "fails"
    eq = _claims({"mnist1d_small": {"steps": {**GOOD, "NE(1.436)": 0.50}, "epochs": GOOD},
                  "digits": {"steps": CEILING, "epochs": CEILING}})
    assert eq["C8"].verdict == "holds" and eq["C8"].rule["kind"] == "equivalence"


def test_divergence_counts_against_its_arm():
    """NE(alpha_match) beats L by 4 points in its survivors, but 2 of 5 seeds diverged: those seeds
    count as the trivial error 0.9 (ITT), so C5's paired effect is the hand-computed ITT mean and the
    claim cannot hold (dropping them, as the old rule did, would make it hold)."""
    row = {**GOOD, "NE(1.436)": 0.52}
    cl = _claims({"mnist1d_small": {"steps": row, "epochs": row}, "digits": {"steps": CEILING, "epochs": CEILING}},
                 dead={"mnist1d_small": {"NE(1.436)": (0, 3)}})
    cell = _cells(cl["C5"])["mnist1d_small/equal_steps"]
    ne = 0.52 + 0.01 * Z + 0.002 * J("NE(1.436)")
    ne[[0, 3]] = 0.9
    want = (0.56 + 0.01 * Z + 0.002 * J("L")) - ne
    assert cell["mean"] == pytest.approx(want.mean(), abs=1e-9)
    assert cell["diverged"] == {"NE(1.436)": 2, "L": 0}
    assert cl["C5"].verdict != "holds"
    assert "2/5 div" in STUDY.tables(STUDY.make_spec("quick", KA_SPEC), _synthetic(
        STUDY.make_spec("quick", KA_SPEC), {"mnist1d_small": {"steps": row, "epochs": row}},
        {"mnist1d_small": {"NE(1.436)": (0, 3)}}))


def test_ls_divergence_is_an_outcome_and_nes_own_divergence_counts_too():
    """C7: LS diverged in every seed (a job with status 'diverged') is LS at the trivial error: NE holds.
    NE(alpha_match) diverged in every seed while LS trains: C7 fails (the old rule ignored NE's own divergence).
    (Seed spread 0.003 here: with every LS seed at 0.9 the paired differences carry NE's whole seed spread.)"""
    spec = STUDY.make_spec("quick", KA_SPEC)
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}}, sd=0.003)
    swapped = [Result(key="d", params=r.params, status="diverged", metrics={"died_at": [3]}, error="nan")
               if r.params["arm"] == "LS" else r for r in res]
    c7 = {c.id: c for c in STUDY.analyse(spec, swapped)}["C7"]
    cell = _cells(c7)["mnist1d_small/equal_steps"]
    assert cell["diverged"]["LS"] == 5 and cell["mean"] > 0.3 and c7.verdict == "holds"
    res = _synthetic(spec, {"mnist1d_small": {"steps": {**GOOD, "LS": 0.52}, "epochs": GOOD}},
                     dead={"mnist1d_small": {"NE(1.436)": (0, 1, 2, 3, 4)}}, sd=0.003)
    ne_dead = {c.id: c for c in STUDY.analyse(spec, res)}["C7"]
    assert ne_dead.verdict == "fails", ne_dead.summary


def test_c6_needs_room_where_more_noise_helps_plain_sgd():
    """C6 is judged only where S_half (SGD at B_s/2) is significantly better than S: without the arm
    or where it does not help, every cell is uninformative with that reason, even when NE beats S."""
    cells = {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}}
    good = _claims(cells)["C6"]
    assert good.verdict == "holds"
    assert "S_half below S" in _cells(good, alpha="NE(1.436)")["mnist1d_small/equal_steps"]["claim_room_rule"]
    no_arm = _claims(cells, {"arms": ["S", "L", "NE", "L2", "LS"]})["C6"]
    assert no_arm.verdict == "uninformative"
    why = _cells(no_arm, alpha="NE(1.436)")["mnist1d_small/equal_steps"]["why"]
    assert "no plain-SGD arm below B_s" in why
    flat = {**GOOD, "S_half": GOOD["S"]}
    c6 = _claims({"mnist1d_small": {"steps": flat, "epochs": flat}})["C6"]
    assert c6.verdict == "uninformative"
    assert "does not significantly help" in _cells(c6, alpha="NE(1.436)")["mnist1d_small/equal_steps"]["why"]


def test_pairing_is_by_seed_not_by_position():
    """Reversing the member order of one arm's job changes nothing: differences are taken seed by seed."""
    spec = STUDY.make_spec("quick", KA_SPEC)
    res = _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD}})
    before = _cells({c.id: c for c in STUDY.analyse(spec, res)}["C5"])["mnist1d_small/equal_steps"]
    r = next(r for r in res if r.params["arm"] == "L")
    rev = {k: (v[::-1] if isinstance(v, list) else {b: {kk: vv[::-1] for kk, vv in d.items()} if isinstance(d, dict) else d[::-1]
                                                    for b, d in v.items()})
           for k, v in r.metrics.items() if k in ("members", "final", "best_val_test_error", "diverged", "died_at")}
    r.metrics.update(rev)
    after = _cells({c.id: c for c in STUDY.analyse(spec, res)}["C5"])["mnist1d_small/equal_steps"]
    assert after["mean"] == pytest.approx(before["mean"]) and after["se"] == pytest.approx(before["se"])


def test_both_budgets_are_in_the_evidence():
    """Equal steps hold, equal gradient evaluations fail: the verdict is the equal-steps one (the
    paper's comparison) and the compute control's verdict and cells are in the evidence."""
    cl = _claims({"mnist1d_small": {"steps": GOOD, "epochs": BAD}})
    for cid in DIRECTIONAL:
        assert cl[cid].verdict == "holds", cid
        assert cl[cid].evidence["compute_control_verdict"] == "fails", cid
        assert cl[cid].evidence["equal_grad_evals"] and "compute control" in cl[cid].summary


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
    """A synthetic finite-population toy job: every mode and alpha with mean deviation ``z`` s.e. and a measured
    ratio off its theory by the relative ``ratio_err``."""
    modes = {}
    for mode in ("split", "independent", "replacement"):
        als = [{"alpha": a, "mean_dev": z * 1e-3, "mean_se": 1e-3, "theory": 1 + 2 * a + 2 * a * a,
                "ratio": (1 + 2 * a + 2 * a * a) * (1 + ratio_err), "ratio_se": 0.01} for a in (0.5, 1.0)]
        modes[mode] = {"alphas": als, "sgd_var": 1.0, "sgd_var_theory": 1.0}
    return Result(key="toy", params={"kind": "toy"}, status="done",
                  metrics={"modes": modes, "draws": 10**6, "n": 200, "batch_size": 20})


@pytest.mark.parametrize("ratio_err,z,want", [(0.002, 0.5, "holds"), (0.05, 0.5, "fails"), (0.002, 300.0, "fails")])
def test_c1_c2_known_answers_on_a_synthetic_toy(ratio_err, z, want):
    """C2 (TOST, margin 1 %) holds 0.2 % off the toy's theory ratio and fails 5 % off; C1 (TOST on the bias in
    units of the s.d. of one draw, margin C1_MARGIN = 0.15) holds at z = 0.5 s.e. (0.0005 s.d. at 10^6
    draws) and fails at z = 300 s.e. (0.3 s.d.)."""
    spec = STUDY.make_spec("quick", KA_SPEC)
    cl = {c.id: c for c in STUDY.analyse(spec, [_toy_result(ratio_err, z)])}
    assert cl["C1"].verdict == ("fails" if z / 1000 > NE.C1_MARGIN else "holds")
    assert cl["C2"].verdict == ("fails" if ratio_err > 0.01 else "holds")
    assert want in (cl["C1"].verdict, cl["C2"].verdict)
    assert cl["C1"].rule["kind"] == cl["C2"].rule["kind"] == "equivalence"


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
    """The guide's per-cell table (``STUDY.tables``): the synthetic means (the per-seed offsets Z and
    the jitter J have mean 0, so S's mean is 0.50 and S_half's 0.47 to the table's 3 decimals), plus
    the plateau table."""
    spec = STUDY.make_spec("quick", KA_SPEC)
    md = STUDY.tables(spec, _synthetic(spec, {"mnist1d_small": {"steps": GOOD, "epochs": GOOD},
                                              "digits": {"steps": CEILING, "epochs": CEILING}}))
    errors_part = md.split("Train loss at 3/4")[0]
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in errors_part.splitlines() if ln.startswith("| ")}
    assert lines["cell / budget"].split(" | ")[2:4] == ["S", "S_half"]
    small = lines["mnist1d_small / equal_steps"].split(" | ")
    assert small[2].startswith("0.500±") and small[3].startswith("0.470±")
    assert "div" not in lines["digits / equal_steps"]
    assert "0.011 → 0.01" in md  # plateau: train loss at 3/4 of the budget -> at its end


@pytest.mark.slow
def test_plateau_drop_from_metrics_equals_the_one_from_arrays(tiny_results):
    """The plateau check reads ``val_error_3q``; for results stored before it existed it reads the
    job's arrays: the two must agree, and both equal a loop over the stored curves."""
    spec, js, results = tiny_results
    r = next(r for r in results if r.params["kind"] == "train" and r.params["arm"] == "S")
    live = [i for i, d in enumerate(r.metrics["diverged"]) if not d]
    for bud in ("steps", "epochs"):
        got = NC.val_drop(r, bud, live)
        old = Result(key=r.key, params=r.params, status="done",
                     metrics={k: v for k, v in r.metrics.items() if k != "val_error_3q"}, inline_arrays=r.arrays)
        steps = [int(s) for s in r.arrays["eval_steps"]]
        j3, je = steps.index(round(0.75 * r.metrics["budgets"][bud])), steps.index(r.metrics["budgets"][bud])
        loop = np.mean([r.arrays["val_error"][i, j3] - r.arrays["val_error"][i, je] for i in live])
        assert got == pytest.approx(loop, abs=1e-12) and NC.val_drop(old, bud, live) == pytest.approx(loop, abs=1e-12)


def test_an_arm_that_has_not_plateaued_makes_its_comparisons_uninformative():
    """The plateau rule: NE beats L by 2 SESOI at the end of the budget, but its validation error is
    still falling by 3 SESOI over the last quarter: C5 must never hold, and its cells say why."""
    spec = STUDY.make_spec("quick")
    oc = CAL.operating_characteristics(STUDY, spec, "C5", 10, seed=4, scenarios=["not_converged"])
    assert oc["not_converged"]["holds"] == 0.0 and oc["not_converged"]["uninformative"] == 1.0, oc
    res = STUDY.calibration["C5"]["not_converged"](np.random.default_rng(0), spec)
    c5 = next(c for c in STUDY.analyse(spec, res) if c.id == "C5")
    assert "not converged" in json.dumps(c5.evidence)


def test_eta_cells_at_medium_hold_fail_and_show_the_best_batch_and_alpha():
    """``lr_design = "cells"`` (the medium eta x alpha experiment): every (task, eta) is a cell; C6 holds
    under its effect, fails under its opposite, is uninformative where more noise does not help plain
    SGD, and its evidence names per cell plain SGD's best batch and NE's best alpha with the paired
    difference."""
    spec = STUDY.make_spec("medium")
    oc = CAL.operating_characteristics(STUDY, spec, "C6", 6, seed=5, scenarios=["effect", "opposite", "floor"])
    assert oc["effect"]["holds"] >= 5 / 6 and oc["opposite"]["fails"] >= 5 / 6 and oc["floor"]["uninformative"] >= 5 / 6, oc
    res = STUDY.calibration["C6"]["effect"](np.random.default_rng(1), spec)
    c6 = next(c for c in STUDY.analyse(spec, res) if c.id == "C6")
    best = c6.evidence["best_per_cell"]
    assert set(best) == {f"{t}/eta={lr:g}/{b}" for t in spec.tasks for lr in (0.05, 0.1, 0.2)
                         for b in ("equal_steps", "equal_grad_evals")}
    one = best["mnist1d/eta=0.1/equal_steps"]
    assert one["best_sgd"]["B"] in (8, 16) and one["best_ne"]["variant"] == NE.ne_key(round(spec.match_alpha, 12))
    cells = c6.evidence["equal_steps"]["per_alpha"][NE.ne_key(round(spec.match_alpha, 12))]["cells"]
    assert {c["cell"] for c in cells} == {f"{t}/eta={lr:g}/equal_steps" for t in spec.tasks for lr in (0.05, 0.1, 0.2)}


@pytest.mark.slow
def test_resampled_old_results_take_the_plateau_point_of_the_resampled_members(tiny_results):
    """A result stored before ``val_error_3q`` existed reads it from its arrays; resampling the seeds must
    re-index it with the other metrics (the arrays are not resampled), so the old and the new store give
    the same plateau check on the same draw."""
    spec, js, results = tiny_results
    r = next(r for r in results if r.params["kind"] == "train" and r.params["arm"] == "S")
    old = Result(key=r.key, params=r.params, status="done",
                 metrics={k: v for k, v in r.metrics.items() if k != "val_error_3q"}, inline_arrays=r.arrays)
    from nnphys.studies.noise_enhancement.claims import resample

    for seed in range(3):
        a, b = resample([r], np.random.default_rng(seed))[0], resample([old], np.random.default_rng(seed))[0]
        live = [i for i, d in enumerate(a.metrics["diverged"]) if not d]
        for bud in ("steps", "epochs"):
            assert NC.val_drop(b, bud, live) == pytest.approx(NC.val_drop(a, bud, live), abs=1e-12)
