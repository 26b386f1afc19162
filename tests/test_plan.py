"""plan's estimate: a cost model per job kind fit to stored timings by job size, with its error on
held-out jobs; a kind without timings borrows the study's cost per unit of work (stated)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from nnphys.cli import main
from nnphys.lab.store import Store, job_key


def test_fit_recovers_the_exponents_and_reports_held_out_error():
    from nnphys.lab.plan import fit_cost

    rng = np.random.default_rng(0)
    n, width = np.exp(rng.uniform(0, 5, size=40)), np.exp(rng.uniform(0, 3, size=40))
    t = 0.01 * n**1.5 * width * np.exp(rng.normal(0, 0.1, size=40))
    feats = [{"n": math.log(a), "width": math.log(b), "depth": math.log(3)} for a, b in zip(n, width)]
    m = fit_cost(feats, list(t))
    assert abs(m.b["n"] - 1.5) < 0.05 and abs(m.b["width"] - 1.0) < 0.05 and "depth" not in m.b
    assert 1.0 < m.held_out < 1.2  # noise of sd 0.1 in log: median |error| ~ 0.07
    f = {"n": math.log(100.0), "width": math.log(10.0), "depth": math.log(3)}
    assert math.isclose(m.predict(f), 0.01 * 100**1.5 * 10, rel_tol=0.1) and m.outside(f) == []
    assert m.outside({**f, "depth": math.log(8)}) == ["depth"]  # never varied: an extrapolation
    one = fit_cost([{"n": 1.0}, {"n": 1.0}], [1.0, 3.0])  # nothing varies: the mean, no held-out error
    assert one.b == {} and one.held_out is None and math.isclose(one.predict({"n": 1.0}), math.sqrt(3))


def test_features_are_log_sizes_and_list_lengths_not_seeds_or_rates():
    from nnphys.lab.plan import features

    job = {"kind": "net", "n": 200, "width": 128, "lr": 0.1, "seed": 12345, "data_seeds": [1, 2, 3],
           "bias": True, "data": {"n_val": 0, "task": "digits"}}
    assert features(job) == pytest.approx({"n": math.log(200), "width": math.log(128), "data_seeds": math.log(3),
                                           "data.n_val": 0.0})


def _timed_store(root, toy, dims):
    """A store holding one finished toy job per dim, each taking 0.01 s per unit of dim."""
    with Store(root) as s:
        for i, dim in enumerate(dims):
            job = toy.jobs(toy.make_spec("quick", {"n_jobs": 1, "dim": dim}))[0] | {"seed": 100 + i}
            s.record("toy", job_key("toy", toy.schema_version, job), job,
                     {"status": "done", "metrics": {}, "started": 1000.0, "ended": 1000.0 + 0.01 * dim})


def test_plan_estimate_scales_with_job_size(capsys, tmp_path, toy):
    res = tmp_path / "res"
    _timed_store(res, toy, [10, 20, 40, 80, 160])
    assert main(["plan", "toy", "--set", "n_jobs=4", "--set", "dim=10", "--results", str(res)]) == 0
    small = " ".join(capsys.readouterr().out.split())
    assert main(["plan", "toy", "--set", "n_jobs=4", "--set", "dim=6000", "--results", str(res)]) == 0
    big = " ".join(capsys.readouterr().out.split())
    # 4 jobs x 0.01 s x dim: 0.4 s at dim=10 (rounds to 0 s), 240 s at dim=6000 (within 10 %: the ridge
    # penalty shrinks the exponent by 1 % and dim=6000 lies 37x beyond the stored range)
    assert "4 job(s) to run; about 0m00s on 1 worker(s)" in small, small
    m, sec = map(int, re.search(r"about (\d+)m(\d+)s on 1 worker", big).groups())
    assert abs(60 * m + sec - 240) < 24, big
    assert "held-out error: a median factor of 1.0" in big and "beyond the stored sizes in: dim" in big
    assert "extrapolated" not in small

    from nnphys.lab.plan import plan

    with Store(res, readonly=True) as s:
        p = plan(toy, toy.jobs(toy.make_spec("quick", {"n_jobs": 4, "dim": 6000})), s)
    m = p.kinds["-"].model
    assert abs(m.b["dim"] - 1) < 0.02 and (m.n, m.prior) == (5, False) and m.describe().startswith("t ~ dim^0.99; n=5")


def test_kind_without_timings_borrows_the_study_rate_as_a_stated_prior(tmp_path, toy):
    from nnphys.lab.plan import plan

    _timed_store(tmp_path, toy, [10, 20, 40])
    jobs = [j | {"kind": "other"} for j in toy.jobs(toy.make_spec("quick", {"n_jobs": 2, "dim": 100}))]
    with Store(tmp_path, readonly=True) as s:
        p = plan(toy, jobs, s)
    k = p.kinds["other"]
    # the median time per job of the study (0.2 s: dims 10, 20, 40), stated as a prior
    assert k.model.prior and p.uses_prior() and math.isclose(k.estimate_s, 2 * 0.2)
