"""Calibration of the minibatch-noise Fig. 1 claims (C15, C15f, C16, C16c): the study's real ``analyse``
on synthetic results with a known truth must hold under the effect, fail under the opposite, hold
at most ~α under no effect (equivalence: a deviation on the margin), be uninformative where the
data cannot decide, and treat divergence as an outcome (all seeds diverged at the largest width:
C15 holds, C15f fails; diverged members of the γ sweep are never the optimum)."""

from __future__ import annotations

import pytest

from nnphys.studies import calibration, get_study

N_DRAWS = 30  # [default] per scenario; check() widens its bounds by a binomial margin


@pytest.mark.parametrize("cid", ["C15", "C15f", "C16", "C16c"])
def test_fig1_rule_is_calibrated(cid):
    study = get_study("minibatch-noise")
    rule = study.claims[cid].rule
    assert {"effect", "opposite", "none", "floor"} <= set(study.calibration[cid])
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), cid, n_draws=N_DRAWS, seed=2)
    assert calibration.check(oc, rule.alpha, rule.kind) == [], oc


@pytest.mark.parametrize("cid,verdict", [("C15", "holds"), ("C15f", "fails"), ("C16", "holds")])
def test_divergence_is_an_outcome(cid, verdict):
    study = get_study("minibatch-noise")
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), cid, n_draws=10, seed=3,
                                               scenarios=["diverged"])
    assert oc["diverged"][verdict] == 1.0, oc
