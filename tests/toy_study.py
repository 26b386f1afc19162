"""A small numpy-only study used by the foundation tests (never shipped in the registry)."""

from __future__ import annotations

import time

import numpy as np
from pydantic import Field, model_validator

from nnphys.errors import Diverged
from nnphys.studies.base import Claim, ClaimInfo, Figure, Study, StudySpec
from nnphys.stats import mean_se


class Spec(StudySpec):
    n_jobs: int = Field(6, ge=1, le=500, description="[default] number of jobs")
    dim: int = Field(8, ge=1, le=100_000, description="[default] vector length per job")
    sleep: float = Field(0.0, ge=0.0, le=5.0, description="[default] seconds each job sleeps")
    fail_every: int = Field(0, ge=0, le=500, description="[default] job i raises when i % fail_every == fail_every-1")
    diverge_every: int = Field(0, ge=0, le=500, description="[default] job i diverges likewise")
    tag: str = Field("a", max_length=20, description="[default] free label, part of every job")

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        # two cross-field checks, one naming its field and one not (the CLI reports both in one line)
        if self.fail_every and self.fail_every == self.diverge_every:
            raise ValueError(f"diverge_every must differ from fail_every (got both {self.fail_every})")
        if self.sleep * self.n_jobs > 60:
            raise ValueError(f"the sweep would sleep {self.sleep * self.n_jobs:g} s in all; keep it under 60")
        return self


PRESETS = {"quick": {}, "paper": {"n_jobs": 20, "dim": 64}}


def jobs(spec: Spec) -> list[dict]:
    out = []
    for i in range(spec.n_jobs):
        mode = "ok"
        if spec.fail_every and i % spec.fail_every == spec.fail_every - 1:
            mode = "raise"
        elif spec.diverge_every and i % spec.diverge_every == spec.diverge_every - 1:
            mode = "diverge"
        out.append({"seed": i, "dim": spec.dim, "sleep": spec.sleep, "mode": mode, "tag": spec.tag,
                    "device": spec.device})
    return out


def run(job: dict) -> dict:
    if job["sleep"]:
        time.sleep(job["sleep"])
    if job["mode"] == "raise":
        raise RuntimeError(f"job {job['seed']} raised on purpose")
    x = np.random.default_rng(job["seed"]).standard_normal(job["dim"])
    if job["mode"] == "diverge":
        raise Diverged("loss became nan at step 3", metrics={"steps": 3})
    return {"mean": float(x.mean()), "sq": float((x**2).sum()), "seed": job["seed"], "arrays": {"x": x}}


def analyse(spec: Spec, results) -> list[Claim]:
    ok = [r for r in results if r.ok]
    if len(ok) < 2:
        return [Claim("T1", "sample means are centred", "derived", "inconclusive", {"n": len(ok)}, "too few jobs")]
    m, se = mean_se([r.metrics["mean"] for r in ok])
    verdict = "holds" if abs(m) < 3 * se + 1e-12 else "fails"
    return [Claim("T1", "sample means are centred", "derived", verdict,
                  {"mean": float(m), "se": float(se), "n": len(ok)}, f"mean {m:.3f} ± {se:.3f} (n={len(ok)})")]


def figures(spec: Spec, results) -> list[Figure]:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([r.metrics["mean"] for r in results if r.ok], "o")
    return [Figure("means", fig, "per-job sample means")]


STUDY = Study(name="toy", papers=("A toy study (tests only)",), spec=Spec, presets=PRESETS, jobs=jobs, run=run,
              analyse=analyse, figures=figures, claims={"T1": ClaimInfo("sample means are centred", "derived")},
              description="numpy-only study for the foundation tests")
