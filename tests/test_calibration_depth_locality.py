"""Calibration of every depth-locality and depth-locality-map claim: the real ``analyse`` on
synthetic results with a known truth (``depth_locality.calibration``) must hold under the effect, fail
under the opposite, hold at most at α under no effect, and be uninformative on a floor
(``nnphys.studies.calibration.check``).

The design calibrated is the ``medium`` preset (5 seeds; the scale whose verdicts the guide
publishes). ``quick`` (3 seeds, one C7 variant) is a smoke scale: C7 cannot hold there by its
coverage condition and X2's equivalence has too little power, which the guide's quick table shows.
CI draws few result sets per scenario (the checks' binomial margins widen accordingly); the guide's
table uses 200 (``python -m nnphys.studies.calibration --study depth-locality --scale medium``).
"""

from __future__ import annotations

import pytest

from nnphys.studies import calibration as cal
from nnphys.studies.depth_locality import STUDY as DL
from nnphys.studies.depth_locality_map import STUDY as MAP

N_DRAWS = 30  # [default] CI only: the budget of the suite (<= ~40 s for this file on 2 cores)
CHECKED = ("effect", "none", "opposite", "floor")


@pytest.mark.parametrize("study,cid", [(DL, c) for c in DL.calibration] + [(MAP, c) for c in MAP.calibration])
def test_claim_is_calibrated(study, cid):
    spec = study.make_spec("medium")
    scen = [s for s in CHECKED if s in study.calibration[cid]]
    oc = cal.operating_characteristics(study, spec, cid, N_DRAWS, seed=1, scenarios=scen)
    rule = study.claims[cid].rule
    assert cal.check(oc, rule.alpha, rule.kind) == []
    assert "effect" in oc and "opposite" in oc  # every claim can hold and can fail


def test_c6_diverged_lazy_runs_never_support_the_claim():
    """ITT at the effect level for C6: a diverged or unconverged lazy seed counts as 'no shrink', never as the NTK."""
    oc = cal.operating_characteristics(DL, DL.make_spec("medium"), "C6", 8, seed=2, scenarios=["diverged", "unconverged"])
    # rule version 2: an unconverged lazy run is an outcome (no shrink), so it can fail the claim, never hold it
    assert oc["diverged"]["holds"] == 0 and oc["unconverged"]["holds"] == 0 and oc["unconverged"]["fails"] >= 0.8


def test_a_claim_the_design_does_not_run_is_named_not_run():
    """C6W needs a width sweep: quick has none, so its calibration row says 'not run' instead of
    reporting operating characteristics of a claim that can only be inconclusive there."""
    assert "width_sweep" in cal.not_run(DL, DL.make_spec("quick"), "C6W")
    assert cal.not_run(DL, DL.make_spec("medium"), "C6W") == ""
    assert cal.not_run(DL, DL.make_spec("quick"), "C6") == ""
