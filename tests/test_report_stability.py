"""Known-answer tests of the verdict-stability bootstrap (nnphys.lab.stability) on the toy study."""

from __future__ import annotations

import math

import numpy as np
import pytest

import test_report_toy as toy
from nnphys.errors import ConfigError
from nnphys.lab.stability import FRAGILE_BELOW, verdict_stability


def _symmetric(n: int, centre: float, seed: int = 3) -> np.ndarray:
    """``centre`` +- the same n/2 offsets: the bootstrap mean is symmetric about ``centre``."""
    d = np.abs(np.random.default_rng(seed).standard_normal(n // 2))
    return centre + np.concatenate([d, -d])


def test_clear_effect_is_stable():
    # mean 1.0, s.e. ~0.1: a resampled mean <= 0 needs a ~10-sigma bootstrap draw, so every one of
    # the 200 resamples must agree (P(any disagreement) < 200 * 1e-20)
    x = _symmetric(40, 1.0) * 1.0
    spec = toy.Spec(n_seeds=40, threshold=0.0)
    st = verdict_stability(toy.make_study(), spec, toy.results_for(x))
    assert st.n_resamples == 200 and st.agree == {"E1": 1.0, "E2": 1.0}
    assert not st.fragile("E1") and st.seconds > 0


def test_effect_at_threshold_is_a_coin_flip():
    # the full-data mean is 1e-9 above the threshold and the data are symmetric about it, so a
    # resampled mean lands above with probability 1/2 - P(tie)/2 ~ 1/2. With n = 400 resamples the
    # agreement has s.e. sqrt(0.25 / 400) = 0.025: accept 0.5 +- 0.1 (4 s.e., two-sided p ~ 6e-5)
    x = _symmetric(30, 1e-9)
    spec = toy.Spec(n_seeds=30, threshold=0.0)
    study = toy.make_study()
    assert study.analyse(spec, toy.results_for(x))[0].verdict == "holds"
    st = verdict_stability(study, spec, toy.results_for(x), n_resamples=400)
    assert abs(st.agree["E1"] - 0.5) <= 4 * math.sqrt(0.25 / 400)
    assert st.fragile("E1") and st.agree["E1"] < FRAGILE_BELOW
    assert st.agree["E2"] == 1.0 and not st.fragile("E2")  # a seed-independent claim never moves
    assert abs(st.se("E1") - math.sqrt(st.agree["E1"] * (1 - st.agree["E1"]) / 400)) < 1e-12


def test_fixed_generator_reproduces_and_seed_changes_draws():
    x = _symmetric(30, 1e-9)
    spec, study = toy.Spec(n_seeds=30), toy.make_study()
    a = verdict_stability(study, spec, toy.results_for(x))
    b = verdict_stability(study, spec, toy.results_for(x))
    c = verdict_stability(study, spec, toy.results_for(x), seed=1)
    assert a.agree == b.agree
    assert c.agree["E1"] != a.agree["E1"]  # another stream: 200 coin flips agree exactly with p ~ 0.04


def test_no_hook_is_none_and_too_few_resamples_is_a_user_error():
    spec = toy.Spec()
    res = toy.results_for(_symmetric(30, 1.0))
    assert verdict_stability(toy.make_study(with_resample=False), spec, res) is None
    with pytest.raises(ConfigError, match="n_resamples"):
        verdict_stability(toy.make_study(), spec, res, n_resamples=50)
    assert verdict_stability(toy.make_study(), spec, res, n_resamples=50, allow_fewer=True).n_resamples == 50


def test_analysis_bug_in_a_resample_propagates():
    study = toy.make_study()

    def bad_resample(results, rng):
        raise ZeroDivisionError("bug")

    import dataclasses

    with pytest.raises(ZeroDivisionError):
        verdict_stability(dataclasses.replace(study, resample=bad_resample), toy.Spec(),
                          toy.results_for(_symmetric(30, 1.0)))
