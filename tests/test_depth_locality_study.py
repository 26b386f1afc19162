"""Tests of the depth-locality study: spec validation, jobs, a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from nnphys.studies import get_study
from nnphys.studies.base import Result, canonical_json
from nnphys.studies.depth_locality import STUDY
from nnphys.studies.depth_locality.claims import CLAIMS
from nnphys.studies.depth_locality.jobs import BlindJob, KernelJob, NetJob, jobs

TINY = dict(
    d=6, ks=[2], n_train=[40], n_train_by_k={}, n_val=30, n_test=60, depths=[1, 2], width=16,
    lr_grid=[0.01, 0.03], max_epochs=40, n_seeds=2, alphas=[1.0, 100.0], width_sweep=[],
    robustness=["batch16"], control_permutation=True, blind_datasets=4, blind_d=5,
    blind_n=20, blind_n_test=40, blind_chunk=4, blind_laws=["cube"],
)




def test_registered():
    assert get_study("depth-locality") is STUDY
    assert set(STUDY.claims) == {"C1", "C2", "C3", "C4", "C5", "C6", "C6W", "C7", "C8", "X2", "X2K"}
    for cid, info in CLAIMS.items():
        assert info.tag in ("paper", "derived", "default")
        assert info.rule is not None and not info.statement.startswith("["), cid  # pre-registered; tag printed apart
        assert set(STUDY.calibration[cid]) >= {"effect", "opposite"}, cid
    for name, f in STUDY.spec.model_fields.items():
        if name == "device":
            continue
        assert f.description and f.description.startswith("["), name


@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_presets_valid_and_jobs_jsonable(scale):
    spec = STUDY.make_spec(scale)
    js = jobs(spec)
    keys = [canonical_json(j.params()) for j in js]
    assert len(set(keys)) == len(keys)
    for j in js:
        assert isinstance(j, (NetJob, KernelJob, BlindJob))
        p = j.params()
        assert p["device"] == "cpu" and p["kind"] == j.KIND
        assert json.loads(json.dumps(p)) == p
        assert type(j).from_params(p).params() == p  # the params name every field
        assert "data_seeds" in p or "dataset_seeds" in p


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
    STUDY.make_spec("quick", {"bias": False, "ks": [2], "depths": [1, 2]})  # even k is fine (the odd part of an L=1 net without bias is linear)
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
    sj = [j for j in jobs(spec) if isinstance(j, NetJob) and j.variant == "sign"]
    assert sj and all(j.d == 7 and j.target_kind == "sign" and j.loss == "logistic" for j in sj)


def test_net_job_is_deterministic():
    spec = STUDY.make_spec("quick", TINY)
    job = next(j for j in jobs(spec) if isinstance(j, NetJob))
    a, b = job.run(), job.run()
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
    results = [Result.from_output(j, j.run()) for j in js]
    claims = STUDY.analyse(spec, results)
    ids = [c.id for c in claims]
    assert sorted(ids) == sorted(CLAIMS)
    for c in claims:
        assert c.verdict in ("holds", "fails", "inconclusive", "uninformative")
        assert c.tag == CLAIMS[c.id].tag
        assert c.rule["version"] and c.rule["kind"] == CLAIMS[c.id].rule.kind
        assert isinstance(c.evidence, dict) and c.evidence
        json.dumps(c.to_dict())
    by = {c.id: c for c in claims}
    # C5 ran 4 < 200 data sets (every cell uninformative) and C7 ran 1 of 5 variants: neither may hold
    assert by["C5"].verdict == "uninformative" and by["C7"].verdict != "holds"
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
    assert all(c.verdict in ("holds", "fails", "inconclusive", "uninformative") for c in claims2.values())


# =============================================================================================
# known-answer tests of the verdict logic on synthetic results
# =============================================================================================

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nnphys.studies.depth_locality.claims import resample  # noqa: E402
from nnphys.studies.depth_locality.jobs import main_jobs  # noqa: E402
from nnphys.train import select_lr  # noqa: E402

SYN = dict(TINY, d=8, ks=[2], n_train=[40, 80], depths=[1, 2, 3, 4], n_seeds=4, kernel_baseline=False,
           robustness=[], control_permutation=False, blind_datasets=0, alphas=[1.0])


def _synthetic(spec, err, *, diverged_jobs=(), unreached=lambda key, s: False, noise=0.01):
    """Done results of every main net job with ``err(target, k, N, L)`` + N(0, noise) per seed
    (fixed generator), every run interpolating with P > N unless ``unreached``."""
    rng = np.random.default_rng(7)
    out = []
    for job in main_jobs(spec, with_kernels=False):
        j = job.params()
        key = (j["group"], j["variant"], j["target"], j["k"], j["n"], j["depth"])
        if key in diverged_jobs:
            out.append(Result(key="", params=j, status="diverged", metrics={}, error="every member diverged"))
            continue
        n = spec.n_seeds
        e = [float(err(j["target"], j["k"], j["n"], j["depth"]) + noise * rng.standard_normal()) for _ in range(n)]
        reached = [not unreached(key, s) for s in range(n)]
        out.append(Result(key="", params=j, status="done", metrics={
            "err": e, "reached": reached, "diverged": [False] * n, "p_over_n": 10.0, "trivial_err": [1.0] * n,
            "stop_reason": ["criterion" if r else "epoch_cap" for r in reached], "w1_rel_change": [0.1 * j["depth"]] * n,
            "train_nmse": [5e-4 if r else 2e-2 for r in reached]}))
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
    assert by["C1"].evidence["n_informative"] == 2
    # the paired per-seed effect, in trivial units: local 0.35 -> 0.2, global 0.4 -> 0.7
    assert by["C1"].evidence["pooled"]["mean"] == pytest.approx(0.15, abs=0.02)
    assert by["C3"].evidence["pooled"]["mean"] == pytest.approx(0.45, abs=0.03)
    mb = _verdicts(spec, _synthetic(spec, _mirrored))
    assert [mb[c].verdict for c in ("C1", "C2", "C3")] == ["fails"] * 3


def test_floor_is_uninformative_not_fails():
    """Defect of the old rule: 'depth helps local' was judged where the local error at L = 1 was
    already ~0.01 x trivial (no room to fall by the SESOI), and a hopeless global target blocked C1."""
    spec = STUDY.make_spec("quick", SYN)
    by = _verdicts(spec, _synthetic(spec, lambda t, k, n, L: 0.01 if t == "local" else 0.97 + 0.005 * L,
                                    noise=0.002))
    for cid in ("C1", "C2", "C3"):
        assert by[cid].verdict == "uninformative", cid
        assert by[cid].evidence["n_informative"] == 0
    assert "floor" in by["C1"].summary and "ceiling" in by["C2"].summary
    # a hopeless global target (1.2 x trivial) leaves the local-only claim C1 judged
    hope = _verdicts(spec, _synthetic(spec, lambda t, k, n, L: (0.4 - 0.05 * L) if t == "local" else 1.2))
    assert hope["C1"].verdict == "holds" and hope["C2"].verdict == "uninformative"


def test_a_diverged_deep_net_counts_against_depth_helps():
    """Divergence is an outcome (ITT): the old rule dropped the diverged depth (L_max shrank) and
    could still say 'depth helps'; now the diverged seeds count at the trivial error."""
    spec = STUDY.make_spec("quick", SYN)
    dead = {("main", "main", "local", 2, n, 4) for n in (40, 80)}
    by = _verdicts(spec, _synthetic(spec, _interplay, diverged_jobs=dead))
    assert by["C1"].verdict == "fails"
    assert by["C1"].evidence["diverged"] == {"local L=4": 2 * spec.n_seeds, "local L=1": 0}
    assert by["C1"].evidence["pooled"]["mean"] == pytest.approx(0.35 - 1.0, abs=0.02)


def test_unconverged_runs_make_the_cell_uninformative():
    """C8's regime: a compared run short of the stopping rule puts the cell outside the papers'
    interpolating setting; the cell is uninformative with the count, and C8 fails."""
    spec = STUDY.make_spec("quick", SYN)
    res = _synthetic(spec, _interplay, unreached=lambda key, s: key[5] > 1 and s == 0)
    by = _verdicts(spec, res)
    for cid in ("C1", "C2", "C3"):
        assert by[cid].verdict == "uninformative"
        assert "stopping rule unmet in" in by[cid].summary
    assert by["C8"].verdict == "fails"


def test_c8_counts_jobs_in_which_every_member_diverged():
    """Bug (fixed): C8 left out diverged jobs and printed 'holds 36/36'."""
    spec = STUDY.make_spec("quick", SYN)
    dead = {("main", "main", t, 2, 40, 1) for t in ("local", "global")}
    c8 = _verdicts(spec, _synthetic(spec, _interplay, diverged_jobs=dead))["C8"]
    assert c8.verdict == "fails"
    assert sum(c["flagged"] for c in c8.evidence["cells"]) == 2 * spec.n_seeds
    assert c8.evidence["n_cells"] == len(main_jobs(spec, with_kernels=False))


def test_c4_can_fail_now():
    """Defect of the old C4: it compared the NTK's local curve with the NTK's global one, which C5
    makes equal, so it held whatever the nets did. Now a net whose local curve follows the NTK's fails."""
    from nnphys.studies.depth_locality.calibration import gen_c4

    spec = STUDY.make_spec("quick")
    rng = np.random.default_rng(5)
    assert _verdicts(spec, gen_c4("none")(rng, spec))["C4"].verdict == "fails"
    assert _verdicts(spec, gen_c4("opposite")(rng, spec))["C4"].verdict == "fails"
    assert _verdicts(spec, gen_c4("effect")(rng, spec))["C4"].verdict == "holds"


def test_c6_unconverged_lazy_runs_never_hold():
    from nnphys.studies.depth_locality.calibration import gen_c6

    spec = STUDY.make_spec("medium")
    c6 = _verdicts(spec, gen_c6("unconverged")(np.random.default_rng(2), spec))["C6"]
    # rule version 2: an unconverged lazy run is an outcome (no shrink, d = 0), not data, so
    # lazy runs that never converge count against the claim instead of keeping it silent
    assert c6.verdict == "fails"
    assert all(c["lazy_seeds_failed"] == spec.n_seeds for c in c6.evidence["cells"])
    assert c6.evidence["pooled"]["mean"] == 0.0


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


def test_lazy_runs_select_their_lr_on_validation():
    """Defect (audit): the medium preset ran the lazy lr grid with n_val = 0, so the lr was the first
    of the list; a control run with several lrs now always has a validation set."""
    for scale in ("quick", "medium"):
        spec = STUDY.make_spec(scale)
        lazy = [j for j in jobs(spec) if isinstance(j, NetJob) and j.group == "lazy"]
        assert lazy and all(len(j.lrs) > 1 and j.n_val >= 500 for j in lazy), scale
    quick = STUDY.make_spec("quick")
    assert {j.n_val for j in jobs(quick) if isinstance(j, NetJob) and j.group == "lazy"} == {quick.n_val}  # quick jobs unchanged


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
# the regime map: known answers on synthetic cells
# =============================================================================================


def _map_results(spec, err):
    """Synthetic done results for every map job: ``err(init, target, L)`` + N(0, 0.01) per seed."""
    rng = np.random.default_rng(11)
    out = []
    for job in MAP.jobs(spec):
        j = job.params()
        n = len(j["data_seeds"])
        e = [float(err(j["init"], j["target"], j["depth"]) + 0.01 * rng.standard_normal()) for _ in range(n)]
        out.append(Result(key="", params=j, status="done", metrics={
            "err": e, "reached": [True] * n, "diverged": [False] * n, "p_over_n": 10.0, "trivial_err": [1.0] * n,
            "stop_reason": ["criterion"] * n, "train_nmse": [5e-4] * n}))
    return out


from nnphys.studies.depth_locality_map import STUDY as MAP  # noqa: E402


def test_map_says_where_claims_hold():
    spec = MAP.make_spec("quick")
    # torch_default: clean interplay; he_normal: local on the floor, global at the ceiling (no room)
    err = lambda init, t, L: _interplay(t, 2, 0, L) if init == "torch_default" else (0.01 if t == "local" else 0.97)  # noqa: E731
    by = {c.id: c for c in MAP.analyse(spec, _map_results(spec, err))}
    assert [by[m].verdict for m in ("M1", "M2", "M3")] == ["holds"] * 3
    cells = {c["cell"]: c for c in by["M3"].evidence["cells"]}
    assert by["M3"].evidence["n_informative"] == 1
    assert [n for n, c in cells.items() if c["informative"]][0].startswith("torch_default")
    assert "floor" in [c for n, c in cells.items() if n.startswith("he_normal")][0]["why"]
    mirror = {c.id: c for c in MAP.analyse(spec, _map_results(spec, lambda i, t, L: _mirrored(t, 2, 0, L)))}
    assert [mirror[m].verdict for m in ("M1", "M2", "M3")] == ["fails"] * 3
    none = {c.id: c for c in MAP.analyse(spec, _map_results(spec, lambda i, t, L: 0.005 if t == "local" else 0.99))}
    assert all(none[m].verdict == "uninformative" for m in ("M1", "M2", "M3"))
    assert none["M4"].verdict == "inconclusive"  # quick runs no kernels: M4 not run
    figs = MAP.figures(spec, _map_results(spec, err))
    assert [f.name for f in figs] == ["regime_map"]


def test_map_and_study_judge_the_same_data_alike():
    """The old study used an OR over N (min_informative_n = 1) and the map a 50 % majority, so they
    published different verdicts for the same data; both now use P.judge on the same cells."""
    mspec = MAP.make_spec("quick", {"inits": ["torch_default"], "ns": [200, 400]})
    err = lambda init, t, L: (0.4 - 0.02 * L) if t == "local" else (0.3 + 0.12 * L)  # noqa: E731
    res = _map_results(mspec, err)
    cs = mspec.cell_spec(mspec.cells()[0])
    dspec = STUDY.spec(**{**cs.model_dump(), "n_train": [200, 400]})
    assert {canonical_json(j.params()) for j in jobs(dspec)} == {canonical_json(r.params) for r in res}
    m = {c.id: c for c in MAP.analyse(mspec, res)}
    d = {c.id: c for c in STUDY.analyse(dspec, res)}
    for mid, cid in (("M1", "C1"), ("M2", "C2"), ("M3", "C3")):
        assert m[mid].verdict == d[cid].verdict
        assert m[mid].evidence["pooled"] == d[cid].evidence["pooled"]


def test_map_spec_checks():
    with pytest.raises(ValidationError) as e:
        MAP.make_spec("quick", {"inits": ["glorot"]})
    assert _field_of(e.value) == "inits"
    m = MAP.make_spec("medium")
    assert len(m.cells()) == 4 and {c["init"] for c in m.cells()} == {"torch_default", "he_normal"}
    assert m.ds == [16] and min(m.widths) >= 256 and m.n_seeds >= 5 and m.depths[0] == 1 and m.depths[-1] == 8
    # every init its own lr grid, chosen on validation (the old medium ran He at its single lr 0.1)
    jobs_ = [j for j in MAP.jobs(m) if isinstance(j, NetJob)]
    grids = {j.init: j.lrs for j in jobs_}
    assert grids["he_normal"] != grids["torch_default"] and all(len(g) >= 2 for g in grids.values())
    assert all(j.n_val >= 500 for j in jobs_)


def test_map_cell_with_a_fully_diverged_net_counts_by_itt():
    """A cell where every seed of the L = 1 nets diverged has its baseline at the ITT value (the
    trivial error): no room to move, so uninformative with the reason named; the other cell keeps
    its verdict."""
    import dataclasses

    spec = MAP.make_spec("quick")
    err = lambda init, t, L: _interplay(t, 2, 0, L)  # noqa: E731
    res = _map_results(spec, err)
    first = min(spec.depths)
    res = [dataclasses.replace(r, status="diverged") if r.params["init"] != "torch_default" and r.params["depth"] == first
           else r for r in res]
    by = {c.id: c for c in MAP.analyse(spec, res)}
    dead = [c for c in by["M3"].evidence["cells"] if not c["cell"].startswith("torch_default")]
    assert dead and all(c["informative"] is False and "ceiling" in c["why"] for c in dead)
    assert by["M3"].verdict == "holds" and by["M3"].evidence["n_informative"] == 1
    assert by["M3"].evidence["diverged"]["local L=1"] == spec.n_seeds


# ---------------------------------------------------------------------------------------------
# the medium design (main cells N x init x target kind), the k rule, the sign-label fix
# ---------------------------------------------------------------------------------------------


def test_medium_is_the_decisive_design():
    """d = 32, k = 2, depths 1-8, four main cells (two inits x regression/sign), each init its own lr
    grid chosen on validation, both targets and every init on the same data sets per seed."""
    spec = STUDY.make_spec("medium")
    cells = dict(spec.main_cells())
    assert set(cells) == {f"{i}/{k}" for i in ("he_normal", "torch_default") for k in ("regression", "sign")}
    assert spec.control_cell()[0] == "he_normal/regression"
    main = [j for j in jobs(spec) if isinstance(j, NetJob) and j.group == "main"]
    assert {j.k for j in main} == {2} and sorted({j.depth for j in main}) == [1, 2, 4, 8]
    assert {j.n for j in main} == set(spec.n_train) and len(spec.n_train) >= 2
    assert all(len(j.lrs) >= 2 and j.n_val > 0 for j in main)  # lr chosen on held-out validation data
    assert {j.lrs for j in main if j.init == "he_normal"} != {j.lrs for j in main if j.init == "torch_default"}
    assert {j.d for j in main if j.target_kind == "sign"} == {33} and {j.loss for j in main if j.target_kind == "sign"} == {"mse"}
    # paired: one data set per seed, shared by both targets, every depth and both inits (per d)
    assert len({(j.d, j.data_seeds) for j in main}) == 2
    kern = [j for j in jobs(spec) if isinstance(j, KernelJob) and j.group == "main"]
    assert len(kern) == len(cells) * len(spec.n_train)
    assert {j.sigma_w2 for j in kern} == {2.0, 1 / 3}


def test_k_rule():
    from nnphys.studies.depth_locality.spec import learnable

    assert learnable(2, 32, 10) and not learnable(3, 32, 5488) and learnable(3, 32, 5489)  # 1 + 32 + 496 + 4960
    assert learnable(3, 16, 800)  # 697: quick's k = 3 cell stays
    spec = STUDY.make_spec("medium")
    assert spec.active_ks() == [2] and spec.ns_for(3) == []
    assert STUDY.make_spec("quick").active_ks() == [2, 3]
    assert STUDY.make_spec("medium", {"n_train": [250, 6000]}).ns_for(3) == [6000]


def test_a_sign_label_net_that_fit_its_data_is_not_exploded():
    """Bug (fixed): the exploded test (train nMSE > 1) was applied to logistic-loss runs, whose logits
    grow past +-1 as the loss falls, so a sign-label net at loss 0.005 read as diverged."""
    from nnphys.studies.depth_locality.cells import _exploded

    m = {"train_loss": [0.005, 0.9], "train_nmse": [13.0, 13.0]}
    assert _exploded({"loss": "logistic"}, m, 2).tolist() == [False, True]  # log 2 = 0.693 is the zero output's loss
    assert _exploded({"loss": "mse"}, m, 2).tolist() == [True, True]


def test_medium_cells_are_judged_together():
    """C1-C4 have one cell per (main cell, N); the map-style labels name the cell."""
    from nnphys.studies.depth_locality.calibration import gen_c4

    spec = STUDY.make_spec("medium")
    by = _verdicts(spec, gen_c4("effect")(np.random.default_rng(0), spec))
    for cid in ("C1", "C4"):
        names = [c["cell"] for c in by[cid].evidence["cells"]]
        assert len(names) == 4 * len(spec.n_train) and any(n.startswith("torch_default/sign") for n in names), names
    assert by["C4"].verdict == "holds"


def test_single_cell_presets_keep_the_main_variant():
    """Without main_inits/main_kinds the main grid is the one cell 'main' (quick's job keys unchanged)."""
    spec = STUDY.make_spec("quick")
    assert [v for v, _ in spec.main_cells()] == ["main"] and spec.main_cells()[0][1] is spec
    assert {j.variant for j in jobs(spec) if isinstance(j, NetJob) and j.group == "main"} == {"main"}


def test_map_m4_is_c4_over_the_map_cells():
    """The NTK half of the map's headline: M4 applies C4's rule per map cell (kernels on the cells' data)."""
    from nnphys.studies.depth_locality_map.calibration import gen_map_c4

    spec = MAP.make_spec("medium")
    assert spec.kernels and MAP.claims["M4"].rule == CLAIMS["C4"].rule
    by = {c.id: c for c in MAP.analyse(spec, gen_map_c4("effect")(np.random.default_rng(0), spec))}
    assert by["M4"].verdict == "holds" and by["M4"].evidence["n_cells"] == len(spec.cells())
    by = {c.id: c for c in MAP.analyse(spec, gen_map_c4("none")(np.random.default_rng(0), spec))}
    assert by["M4"].verdict == "fails"
    quick = MAP.make_spec("quick")
    assert {c.id: c for c in MAP.analyse(quick, [])}["M4"].verdict == "inconclusive"  # not run without kernels


def test_tiny_multi_cell_end_to_end():
    """The medium design's shape at toy size, run for real: two inits x regression/sign labels (odd d),
    each init its own lr grid; every claim gets a verdict and C1/C4 one cell per (main cell, N)."""
    spec = STUDY.make_spec("quick", {**TINY, "d": 6, "main_inits": ["he_normal", "torch_default"],
                                     "main_kinds": ["regression", "sign"], "sign_loss": "mse",
                                     "lr_grid_by_init": {"he_normal": [0.003, 0.01], "torch_default": [0.03, 0.1]},
                                     "max_epochs_by_depth": {1: 30, 2: 20}, "lazy_max_epochs": 25,
                                     "lazy_lr_grid": [0.003, 0.01], "robustness": [], "blind_datasets": 0})
    js = jobs(spec)
    results = [Result.from_output(j, j.run()) for j in js]
    main = [j for j in js if isinstance(j, NetJob) and j.group == "main"]
    assert {j.max_epochs for j in main} == {30, 20} and {j.d for j in main if j.target_kind == "sign"} == {7}
    assert {j.max_epochs for j in js if isinstance(j, NetJob) and j.group == "lazy"} == {25}
    by = {c.id: c for c in STUDY.analyse(spec, results)}
    assert all(c.verdict in ("holds", "fails", "inconclusive", "uninformative") for c in by.values())
    names = [c["cell"] for c in by["C1"].evidence["cells"]]
    assert sorted(names) == sorted(f"{v} k=2 N=40" for v, _ in spec.main_cells())
    assert len(by["C4"].evidence["cells"]) == 4
    figs = STUDY.figures(spec, results)
    assert "error_vs_depth" in {f.name for f in figs}


# ---------------------------------------------------------------------------------------------
# C6W: the width half of C6 (ntk parameterisation, alpha = 1)
# ---------------------------------------------------------------------------------------------


def test_width_sweep_runs_on_its_own_ntk_grid_with_its_own_kernel():
    """The width runs are ntk-parameterised at the control cell's sigma_w^2 and choose their lr on
    validation from their own grid (an ntk-param. lr is not a standard-param. one); their NTK has their
    own bias variance (ntk param.: 0.1), not the control cell's (He, standard: 0)."""
    spec = STUDY.make_spec("medium")
    wide = [j for j in jobs(spec) if isinstance(j, NetJob) and j.group == "width"]
    assert sorted({j.width for j in wide}) == [128, 512, 2048]
    assert {j.param for j in wide} == {"ntk"} and {j.lrs for j in wide} == {(0.1, 0.3)}
    assert {j.n_val for j in wide} == {500} and {j.alpha for j in wide} == {1.0}
    assert {j.sigma_w2 for j in wide} == {2.0} and {j.sigma_b2 for j in wide} == {0.1}
    ctrl = {j.data_seeds for j in jobs(spec) if isinstance(j, NetJob) and j.group == "main"
            and j.variant == "he_normal/regression" and j.n == 250}
    assert {j.data_seeds for j in wide} == ctrl  # paired with the control cell's data sets
    assert {j.max_epochs for j in wide if j.depth == 8} == {spec.max_epochs_by_depth[8]}
    kern = [j for j in jobs(spec) if isinstance(j, KernelJob) and j.group == "width"]
    assert len(kern) == 1 and kern[0].kernel_sigma_b2 == 0.1 and kern[0].sigma_w2 == 2.0
    # no width sweep, no width jobs and C6W not run
    quick = STUDY.make_spec("quick")
    assert not [j for j in jobs(quick) if getattr(j, "group", None) == "width"]


def test_c6w_shrink_holds_failed_wide_runs_never_hold():
    from nnphys.studies.depth_locality.calibration import gen_c6w

    spec = STUDY.make_spec("medium")
    rng = np.random.default_rng(4)
    ok = _verdicts(spec, gen_c6w("effect")(rng, spec))["C6W"]
    assert ok.verdict == "holds" and ok.evidence["cells"][0]["ic_H_min"] > 0.3
    assert [r["H"] for r in ok.evidence["width_rows"]] == [128, 512, 2048]
    assert _verdicts(spec, gen_c6w("opposite")(rng, spec))["C6W"].verdict == "fails"
    assert _verdicts(spec, gen_c6w("floor")(rng, spec))["C6W"].verdict == "uninformative"
    bad = _verdicts(spec, gen_c6w("unconverged")(rng, spec))["C6W"]
    # a widest run that missed the stopping rule is an outcome (no shrink), never support
    assert bad.verdict == "fails" and bad.evidence["cells"][0]["wide_seeds_failed"] == spec.n_seeds
    quick = STUDY.make_spec("quick")
    c = _verdicts(quick, gen_c6w("effect")(rng, quick))["C6W"]
    assert c.verdict == "inconclusive" and c.evidence["run"] is False


def test_tiny_width_sweep_end_to_end():
    """Real width jobs (two widths, ntk param.) and their kernel job: C6W is judged and its figure drawn."""
    spec = STUDY.make_spec("quick", dict(TINY, width_sweep=[8, 32], width_lr_grid=[0.1, 0.3], alphas=[1.0],
                                         robustness=[], control_permutation=False, blind_datasets=0))
    js = [j for j in jobs(spec)]
    assert any(getattr(j, "group", None) == "width" for j in js)
    results = [Result.from_output(j, j.run()) for j in js]
    c = _verdicts(spec, results)["C6W"]
    assert c.verdict != "inconclusive" and c.evidence["n_cells"] == 1 and c.evidence["cells"][0]["kernel_job"]
    assert {r["H"] for r in c.evidence["width_rows"]} == {8, 32}
    assert "width_sweep" in {f.name for f in STUDY.figures(spec, results)}


def test_width_runs_take_their_own_grid_when_the_main_runs_are_ntk_parameterised_too():
    spec = STUDY.make_spec("quick", dict(TINY, param="ntk", width_sweep=[8, 16], width_lr_grid=[0.7],
                                         width_max_epochs=7))
    wide = [j for j in jobs(spec) if isinstance(j, NetJob) and j.group == "width"]
    assert wide and {j.lrs for j in wide} == {(0.7,)} and {j.max_epochs for j in wide} == {7}


def test_c6_takes_the_ntk_contrast_in_trivial_units_at_a_sign_control_cell():
    """At a sign-label control cell the two targets' trivial errors differ; the NTK's contrast must be in
    the nets' units (the calibration's NTK rises alike for both targets, so its contrast is 0 there)."""
    from nnphys.studies.depth_locality.calibration import gen_c6

    spec = STUDY.make_spec("medium", {"main_kinds": ["sign", "regression"]})
    assert spec.control_cell()[0].endswith("/sign")
    c6 = _verdicts(spec, gen_c6("effect")(np.random.default_rng(5), spec))["C6"]
    assert all(abs(c["ic_ntk"]) < 1e-9 for c in c6.evidence["cells"])
