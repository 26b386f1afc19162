"""End-to-end run of the minibatch-noise study on a tiny spec, plus spec validation."""

from __future__ import annotations

import pydantic
import pytest

from nnphys.studies.job import Job
from nnphys.studies import get_study
from nnphys.studies.base import VERDICTS, Figure, Result

TINY = dict(n_chains=40, n_steps=60, cases=["row2", "row6", "row12", "row9a"], grid_fractions=[0.3, 0.9],
            prop1_draws=4000, edge_D=[2], edge_S=[1, 4], edge_sim_D=2, edge_sim_S=2, l2_cases=[(1.8, 10), (0.5, 1)],
            hd_D=10, hd_over_burn_in=1500, hd_draws=1, hd_chains=8, hd_steps=40, scaling_S=[1, 4, 8], tail_S=[1, 2], tail_chains=40,
            tail_steps=300, tail_frac=0.02, mlp_seeds=1, mlp_epochs=3, mlp_width=8, mlp_top_k=4, mlp_n_train=200)




@pytest.mark.slow
def test_tiny_end_to_end():
    st = get_study("minibatch-noise")
    spec = st.make_spec("quick", TINY)
    jobs = st.jobs(spec)
    assert all(isinstance(j.seed, int) and j.device == "cpu" for j in jobs)
    results = [Result.from_output(j, j.run(), key=str(i)) for i, j in enumerate(jobs)]
    # a repeated job is bit-identical on the CPU
    again = jobs[1].run()
    assert again["sim_diag"] == results[1].metrics["sim_diag"]
    claims = st.analyse(spec, results)
    assert [c.id for c in claims] == list(st.claims)
    for c in claims:
        assert c.verdict in VERDICTS and c.rule["version"] and c.evidence and c.summary
        assert c.tag == st.claims[c.id].tag
    figs = st.figures(spec, results)
    assert figs and all(isinstance(f, Figure) for f in figs)
    assert {"noise_vs_loss", "decoupling_spectra", "tail_exponent", "fixed_ratio_scaling"} <= {f.name for f in figs}
    assert all(f.claims and set(f.claims) <= set(st.claims) for f in figs)  # the report links claim -> figure
    dec = next(f for f in figs if f.name == "decoupling_spectra")  # rows: Gauss-Newton, Hessian
    n_checkpoints = len(next(r for r in results if r.params["kind"] == "mlp").metrics["checkpoints"])
    assert dec.claims == ("C12",) and len(dec.figure.axes) == 2 * n_checkpoints
    assert "hessian" in {c.id: c for c in claims}["C12"].evidence
    for f in figs:  # legends >= 8 pt
        for ax in f.figure.axes:
            leg = ax.get_legend()
            assert leg is None or all(t.get_fontsize() >= 8 for t in leg.get_texts())
    # missing / failed jobs -> affected claims inconclusive, no crash
    broken = [Result(key="x", params=r.params, status="failed", metrics={}, error="boom") if r.params["kind"] in
              ("tail", "mlp") else r for r in results]
    by_id = {c.id: c for c in st.analyse(spec, broken)}
    assert by_id["C9"].verdict == "inconclusive" and by_id["C12"].verdict == "inconclusive"


def test_spec_validation_and_presets():
    st = get_study("minibatch-noise")
    for scale in ("quick", "paper"):
        assert st.jobs(st.make_spec(scale))
    with pytest.raises(pydantic.ValidationError):
        st.make_spec("quick", dict(cases=["row99"]))
    with pytest.raises(pydantic.ValidationError):
        st.make_spec("quick", dict(prop1_S=30, prop1_n=10))
    with pytest.raises(pydantic.ValidationError):
        st.make_spec("quick", dict(mlp_lr=0.0))
    with pytest.raises(pydantic.ValidationError):
        st.make_spec("quick", dict(bogus=1))
    # typed jobs: one class per kind, each with its own KIND
    jobs = st.jobs(st.make_spec("quick"))
    assert all(isinstance(j, Job) for j in jobs) and len({type(j) for j in jobs}) == len({j.KIND for j in jobs})
