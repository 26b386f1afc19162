"""A numpy-only study for the report, stability, export and docs-table tests (never registered
globally), and a helper that stores its results without the runner.

Each job is one arm with ``n_seeds`` members; member m of arm a draws
``x = effect * (a == 0) + N(0, 1)`` from its own seed. Claim E1 [paper]: arm 0's mean exceeds
``threshold`` (a point rule, so a mean at the threshold flips under resampling); claim E2
[derived]: the number of arms is ``n_arms`` (independent of the seeds).
"""

from __future__ import annotations

import time

import numpy as np
from pydantic import Field

from nnphys.seeding import derive, numpy_rng
from nnphys.studies import _kit
from nnphys.studies.base import ClaimInfo, Figure, Result, Study, StudySpec

CLAIMS = {"E1": ClaimInfo("arm 0's mean exceeds the threshold", "paper"),
          "E2": ClaimInfo("there are n_arms arms", "derived")}
BOOK = _kit.ClaimBook(CLAIMS)


class Spec(StudySpec):
    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed")
    n_arms: int = Field(2, ge=1, le=20, description="[default] arms (jobs)")
    n_seeds: int = Field(30, ge=2, le=1000, description="[default] members per arm")
    effect: float = Field(2.0, ge=-100, le=100, description="[default] mean shift of arm 0")
    threshold: float = Field(0.0, ge=-100, le=100, description="[default] E1's threshold")
    small_legend: bool = Field(False, description="[default] draw one figure with a 6 pt legend")


def jobs(spec: Spec) -> list[dict]:
    return [{"arm": a, "effect": spec.effect, "seeds": [derive(spec.seed, "member", a, m) for m in range(spec.n_seeds)],
             "device": spec.device} for a in range(spec.n_arms)]


def run(job: dict) -> dict:
    x = [float(numpy_rng(s).standard_normal()) + (job["effect"] if job["arm"] == 0 else 0.0) for s in job["seeds"]]
    return {"x": x, "mean": float(np.mean(x)), "arrays": {"x": np.asarray(x)}}


def analyse(spec: Spec, results: list[Result]) -> list:
    ok = [r for r in results if r.ok]
    arm0 = [r for r in ok if r.params["arm"] == 0]
    if not arm0:
        e1 = BOOK.missing("E1", "arm 0")
    else:
        m, se = _kit.mean_se(arm0[0].metrics["x"])
        e1 = BOOK.holds_if("E1", bool(m > spec.threshold), {"mean": float(m), "se": float(se), "n": spec.n_seeds},
                           f"mean {m:.3f} ± {se:.3f} vs threshold {spec.threshold:g} " + "padding " * 40)
    e2 = BOOK.holds_if("E2", len(ok) == spec.n_arms, {"arms": len(ok)})  # no summary: the report renders one
    return [e1, e2]


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    ok = sorted((r for r in results if r.ok), key=lambda r: r.params["arm"])
    fig, (ax,) = _kit.subplots()
    ms = [_kit.mean_se(r.metrics["x"]) for r in ok]
    _kit.errorbar(ax, [r.params["arm"] for r in ok], [m for m, _ in ms], [s for _, s in ms], label="mean ± s.e.")
    _kit.legend(ax)
    out = [Figure("arm_means", fig, "E1: per-arm mean over seeds (± 1 s.e.)")]
    if spec.small_legend:
        fig2, (ax2,) = _kit.subplots()
        ax2.plot([0, 1], [0, 1], label="tiny")
        ax2.legend(fontsize=6)
        out.append(Figure("tiny_legend", fig2, "a figure whose legend is too small"))
    return out


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """Members drawn with replacement, one index draw shared by every arm (paired)."""
    n = len(results[0].params["seeds"])
    idx = rng.integers(0, n, n)
    return [_kit.resample_result(r, idx, n) for r in results]


def make_study(name: str = "rtoy", with_resample: bool = True) -> Study:
    return Study(name=name, papers=("A toy paper (report tests)",), spec=Spec,
                 presets={"quick": {}, "paper": {"n_seeds": 100}}, jobs=jobs, run=run, analyse=analyse,
                 figures=figures, claims=CLAIMS, description="toy study of the report tests",
                 resample=resample if with_resample else None)


def fill_store(store, study: Study, spec: Spec, scale: str = "quick") -> list[str]:
    """Run every job of ``spec`` in-process and store it as the runner would (one run row)."""
    from nnphys.lab.store import job_key

    js = study.jobs(spec)
    keys = [job_key(study.name, study.schema_version, j) for j in js]
    run_id = store.begin_run(study.name, scale, spec.model_dump(), keys, "inline")
    for k, j in zip(keys, js):
        t0 = time.time()
        out = dict(study.run(j))
        arrays = out.pop("arrays", None)
        store.record(study.name, k, j, {"status": "done", "metrics": out, "arrays": arrays, "started": t0,
                                        "ended": time.time(), "versions": {"numpy": np.__version__}})
    store.end_run(run_id, len(js))
    return keys


def results_for(x0: np.ndarray, n_arms: int = 2) -> list[Result]:
    """In-memory results whose arm 0 has exactly the member values ``x0``."""
    n = len(x0)
    out = []
    for a in range(n_arms):
        x = list(map(float, x0)) if a == 0 else [0.0] * n
        out.append(Result(key=str(a), params={"arm": a, "seeds": list(range(n)), "effect": 0.0}, status="done",
                          metrics={"x": x, "mean": float(np.mean(x))}))
    return out


def test_toy_run_is_deterministic_and_shifted():
    spec = Spec(effect=5.0, n_seeds=10)
    a, b = (run(jobs(spec)[0]) for _ in range(2))
    assert a["x"] == b["x"] and a["mean"] > 2.5  # 10 draws of N(5, 1): mean > 2.5 unless a 7.9-sigma fluke


def test_toy_resample_keeps_arms_paired():
    res = results_for(np.arange(5.0))
    res[1].metrics["x"] = list(np.arange(5.0) * 10)
    r0, r1 = resample(res, np.random.default_rng(1))
    assert [10 * v for v in r0.metrics["x"]] == r1.metrics["x"] and r0.metrics["x"] != list(np.arange(5.0))
