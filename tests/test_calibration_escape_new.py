"""Calibration of the escape-rate claims T11 and T12 (T11, T12: Fig. 3b across dimensions on
genuine SGD): the study's real ``analyse`` on synthetic results with a known truth
(``nnphys.studies.escape_rate.calibration``) holds under the effect, fails under the opposite,
holds at most ~alpha of the time on the margin and never holds when too noisy to decide."""

from __future__ import annotations

import pytest

from nnphys.studies import calibration, get_study

NEW = ("T7tail", "T11", "T12")
N_DRAWS = 30  # [default] per scenario; check() widens its bounds by a binomial margin for small n


@pytest.mark.parametrize("cid", NEW)
def test_new_rule_is_calibrated(cid):
    study = get_study("escape-rate")
    rule = study.claims[cid].rule
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), cid, n_draws=N_DRAWS, seed=3)
    assert calibration.check(oc, rule.alpha, rule.kind) == [], oc


@pytest.mark.parametrize("cid", NEW)
def test_new_rule_never_holds_when_too_noisy(cid):
    study = get_study("escape-rate")
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), cid, n_draws=10, seed=4,
                                               scenarios=["noisy"])
    assert oc["noisy"]["holds"] == 0.0, oc


@pytest.mark.parametrize("cid", NEW)
def test_new_rule_is_calibrated_at_medium(cid):
    """The medium preset's four d values (d = 10 included) and four c per d."""
    study = get_study("escape-rate")
    rule = study.claims[cid].rule
    oc = calibration.operating_characteristics(study, study.make_spec("medium"), cid, n_draws=20, seed=5)
    assert calibration.check(oc, rule.alpha, rule.kind) == [], oc


def test_t7tail_counts_diverged_sgd_against_the_claim():
    study = get_study("escape-rate")
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), "T7tail", n_draws=5, seed=1,
                                               scenarios=["diverged"])
    assert oc["diverged"]["fails"] == 1.0
