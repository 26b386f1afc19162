"""End-to-end run of the escape-rate study on a tiny spec: jobs -> run -> analyse -> figures."""

from __future__ import annotations

import pydantic
import pytest

from nnphys.studies import get_study
from nnphys.studies.base import VERDICTS, Result

TINY = {
    "chains": 60, "dt": 0.02, "tail": 3.0, "quad_ratios": [5.0], "quad_cs": [2.0, 4.0], "delta_Ls": [0.1, 1.0],
    "levelset_ratio": 2.0, "levelset_c": 1.5, "levelset_dts": [0.04], "a_ratio": 1.0, "a_cs": [1.5, 2.0],
    "sym_chains": 40, "b_ratio": 1.0, "b_ns": [1, 2], "b_cs": [1.5, 2.0], "b_bulk": 1, "phi_ratios": [2.0],
    "phi_samples": 3, "sgd_etas": [0.3], "sgd_Bs": [1], "sgd_N": 200, "sgd_chains": 5, "sgd_samples": 4,
    "nc_ratio": 0.5, "nc_ns": [1, 4], "nc_times": [1.0, 2.0], "mlp_width": 8, "mlp_epochs": 4, "mlp_top_k": 3, "mlp_n_train": 200,
    "gap_cs": [1.2, 1.5], "gap_N": 200, "gap_chains": 20, "gap_t_max": 40.0,
    "nd_ds": [1, 2], "nd_targets": [10.0, 30.0], "nd_chains": 30,
}




@pytest.mark.slow
def test_tiny_end_to_end():
    study = get_study("escape-rate")
    spec = study.make_spec("quick", TINY)
    jobs = study.jobs(spec)
    assert len({j.seed for j in jobs}) == len(jobs) and all(j.device == "cpu" for j in jobs)
    results = [Result.from_output(j, j.run(), key=str(i)) for i, j in enumerate(jobs)]
    claims = study.analyse(spec, results)
    assert [c.id for c in claims] == list(study.claims)
    for c in claims:
        assert c.verdict in VERDICTS and c.rule["version"] and c.evidence and c.tag == study.claims[c.id].tag
    # deterministic formula claims hold even at this size
    by = {c.id: c for c in claims}
    assert by["T1"].verdict == "holds"
    figs = study.figures(spec, results)
    assert {f.name for f in figs} == {"escape_vs_c", "escape_vs_deltaL", "escape_vs_n", "phi_vs_B", "phi_fit_vs_pred",
                                      "decoupling_spectra", "passage_times", "fig3b_dimensions", "escape_survival",
                                      "stationary_tail", "instability", "dt_convergence"}
    assert all(f.claims and set(f.claims) <= set(study.claims) for f in figs)  # the report links claim -> figure
    dec = next(f for f in figs if f.name == "decoupling_spectra")  # rows: Gauss-Newton, Hessian
    n_checkpoints = len(next(r for r in results if r.params["kind"] == "mlp").metrics["checkpoints"])
    assert dec.claims == ("T9b",) and len(dec.figure.axes) == 2 * n_checkpoints
    assert "hessian" in by["T9b"].evidence and by["T9b"].evidence["judged_epoch"] == "4"
    for f in figs:  # legends >= 8 pt
        for ax in f.figure.axes:
            leg = ax.get_legend()
            assert leg is None or all(t.get_fontsize() >= 8 for t in leg.get_texts())
    # a missing job makes its claims inconclusive, not an exception
    partial = [r for r in results if r.params["kind"] != "gap"]
    by2 = {c.id: c for c in study.analyse(spec, partial)}
    assert by2["T10"].verdict == "inconclusive"
    # a failed job is ignored the same way
    failed = [Result(key="x", params=r.params, status="failed", metrics={}) if r.params["kind"] == "theory" else r
              for r in results]
    assert {c.id: c for c in study.analyse(spec, failed)}["T2"].verdict == "inconclusive"


def test_run_is_deterministic():
    study = get_study("escape-rate")
    spec = study.make_spec("quick", TINY)
    job = next(j for j in study.jobs(spec) if j.KIND == "family_a")
    assert job.run() == job.run()


@pytest.mark.parametrize("bad", [{"a_cs": [1.0, 2.0]}, {"gap_cs": [0.5, 2.0]}, {"b_ns": [0, 1]}, {"dt": 0.0},
                                 {"gap_eta": -0.1}, {"nc_times": [2.0, 1.0]}, {"bogus": 1}])
def test_bad_spec_rejected(bad):
    with pytest.raises((pydantic.ValidationError, ValueError)):
        get_study("escape-rate").make_spec("quick", bad)


def test_presets_validate():
    study = get_study("escape-rate")
    for scale in ("quick", "medium", "paper"):
        spec = study.make_spec(scale)
        assert len(study.jobs(spec)) > 10
