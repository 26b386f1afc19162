"""Calibration of every escape-rate claim's rule: the study's real ``analyse`` on synthetic results
with a known truth (``STUDY.calibration``, generators in
``nnphys.studies._escape_calibration``) must hold under the effect, fail under the
opposite, hold at most ~α of the time under no effect (equivalence: a deviation on the margin) and
be uninformative where the data cannot decide (``calibration.check``).

Small draws here (CI budget ~40 s for the study); the guide's table uses 200 draws
(``python -m nnphys.studies.calibration --study escape-rate --draws 200``).
"""

from __future__ import annotations

import pytest

from nnphys.studies import calibration
from nnphys.studies import get_study

STUDY = get_study("escape-rate")
SPEC = STUDY.make_spec("quick")
N_DRAWS = 20  # [default] per scenario; check() widens its bounds by a binomial margin for small n


def test_every_claim_is_calibrated_in_every_scenario_its_rule_has():
    assert set(STUDY.calibration) == set(STUDY.claims)
    for cid, gens in STUDY.calibration.items():
        kind = STUDY.claims[cid].rule.kind
        assert {"effect", "opposite"} <= set(gens), cid
        if kind != "identity":
            assert "none" in gens, cid


@pytest.mark.parametrize("cid", list(STUDY.claims))
def test_rule_is_calibrated(cid):
    rule = STUDY.claims[cid].rule
    oc = calibration.operating_characteristics(STUDY, SPEC, cid, n_draws=N_DRAWS, seed=1)
    assert calibration.check(oc, rule.alpha, rule.kind) == [], oc


def test_t7_counts_diverged_sgd_against_the_claim():
    oc = calibration.operating_characteristics(STUDY, SPEC, "T7", n_draws=5, seed=1, scenarios=["diverged"])
    assert oc["diverged"]["fails"] == 1.0
