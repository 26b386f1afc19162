"""plan's estimate: a cost model per job kind fit to stored timings by job size, with its error on
held-out jobs; a kind without timings borrows the study's cost per unit of work (stated)."""

from __future__ import annotations

import math

import numpy as np

from nnphys.cli import main
from nnphys.lab.store import Store, job_key


def test_fit_recovers_the_exponent_and_reports_held_out_error():
    from nnphys.lab.plan import fit_cost

    rng = np.random.default_rng(0)
    w = np.exp(rng.uniform(0, 5, size=40))
    t = 0.01 * w**1.5 * np.exp(rng.normal(0, 0.1, size=40))
    m = fit_cost(list(w), list(t))
    assert abs(m.b - 1.5) < 0.05 and m.source == "fit" and m.n == 40
    assert 1.0 < m.held_out < 1.2  # noise of sd 0.1 in log: median |error| ~ 0.07
    assert math.isclose(m.predict(1000.0), 0.01 * 1000**1.5, rel_tol=0.1)
    same = fit_cost([8.0, 8.0], [1.0, 3.0])  # work does not vary: b = 1, the prior
    assert same.b == 1.0 and same.source == "fit, b=1" and same.held_out is None


def test_work_counts_sizes_and_lists_not_seeds_or_rates():
    from nnphys.lab.plan import work

    job = {"kind": "net", "n": 200, "width": 128, "depth": 1, "lr": 0.1, "seed": 12345, "data_seeds": [1, 2, 3],
           "bias": True, "data": {"n_test": 10, "task": "digits"}, "member": 0}
    assert work(job) == 200 * 128 * 3 * 10


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
    # 4 jobs x 0.01 s x dim: 0.4 s at dim=10 (rounds to 0 s), 240 s = 4m00s at dim=6000
    assert "4 job(s) to run; about 0m00s on 1 worker(s)" in small, small
    assert "4 job(s) to run; about 4m00s on 1 worker(s)" in big, big
    assert "held-out error of the fits: within a factor 1.00" in big

    from nnphys.lab.plan import plan

    with Store(res, readonly=True) as s:
        p = plan(toy, toy.jobs(toy.make_spec("quick", {"n_jobs": 4, "dim": 6000})), s)
    m = p.kinds["-"].model
    assert (round(m.b, 6), m.n, m.source) == (1.0, 5, "fit") and m.describe().startswith("b=1.00 (fit), n=5")


def test_kind_without_timings_borrows_the_study_rate_as_a_stated_prior(tmp_path, toy):
    from nnphys.lab.plan import plan

    _timed_store(tmp_path, toy, [10, 20, 40])
    jobs = [j | {"kind": "other"} for j in toy.jobs(toy.make_spec("quick", {"n_jobs": 2, "dim": 100}))]
    with Store(tmp_path, readonly=True) as s:
        p = plan(toy, jobs, s)
    k = p.kinds["other"]
    assert k.model.source == "prior" and p.uses_prior() and math.isclose(k.estimate_s, 2 * 0.01 * 100)
