"""Calibration of every escape-rate and minibatch-noise claim's rule: the study's real ``analyse``
on synthetic results with a known truth (``STUDY.calibration``; generators in
``nnphys.studies.escape_rate.calibration`` and ``nnphys.studies.minibatch_noise.calibration``) must hold under the effect,
fail under the opposite, hold at most ~α of the time under no effect (equivalence: a deviation on
the margin) and be uninformative where the data cannot decide (``calibration.check``).

Small draws here (CI budget ~40 s per study); the guides' tables use 200 draws
(``python -m nnphys.studies.calibration --study NAME --draws 200``).
"""

from __future__ import annotations

import pytest

from nnphys.studies import calibration, get_study

STUDIES = ("escape-rate", "minibatch-noise")
N_DRAWS = 20  # [default] per scenario; check() widens its bounds by a binomial margin for small n


@pytest.mark.parametrize("name", STUDIES)
def test_every_claim_is_calibrated_in_every_scenario_its_rule_has(name):
    study = get_study(name)
    assert set(study.calibration) == set(study.claims)
    for cid, gens in study.calibration.items():
        kind = study.claims[cid].rule.kind
        assert {"effect", "opposite"} <= set(gens), cid
        if kind != "identity":
            assert "none" in gens, cid


@pytest.mark.parametrize("name,cid", [(n, c) for n in STUDIES for c in get_study(n).claims])
def test_rule_is_calibrated(name, cid):
    study = get_study(name)
    rule = study.claims[cid].rule
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), cid, n_draws=N_DRAWS, seed=1)
    assert calibration.check(oc, rule.alpha, rule.kind) == [], oc


def test_t7_counts_diverged_sgd_against_the_claim():
    study = get_study("escape-rate")
    oc = calibration.operating_characteristics(study, study.make_spec("quick"), "T7", n_draws=5, seed=1,
                                               scenarios=["diverged"])
    assert oc["diverged"]["fails"] == 1.0
