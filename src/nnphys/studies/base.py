"""The study contract.

A study is a package in ``nnphys.studies`` (``spec``, ``jobs``, ``claims``, ``figures``,
``calibration``; docs/architecture.md, "How to add a study") whose ``__init__`` defines
``STUDY = Study(...)`` with:

- ``spec``: a pydantic model (subclass of :class:`StudySpec`), every field typed, bounded and
  documented, ``extra="forbid"``. Field defaults are the spec's [default]s;
- ``presets``: ``{"quick": {...}, "paper": {...}}``, field overrides per scale;
- ``jobs(spec) -> list[Job]``: independent, coarse units, each a typed, frozen
  :class:`~nnphys.studies.job.Job` (one dataclass per kind) that includes its seed(s); the lab
  sets its ``device`` from the spec. ``Job.params()`` is what the store keys and keeps;
- ``job.run() -> dict``: a pure function of the job. It returns JSON-able metrics; numpy arrays
  may be returned under the key ``"arrays"`` (a ``{name: ndarray}`` dict) and are stored in a
  per-job ``.npz`` file. Raise :class:`nnphys.errors.Diverged` when the loss turns non-finite.
  (A plug-in may still plan plain dicts and give ``Study(run=...)``, a function of the dict.)
- ``analyse(spec, results) -> list[Claim]``: verdicts with evidence. It receives the spec too
  because the pass criteria depend on it and because one store may hold results of several
  specs of the same study;
- ``figures(spec, results) -> list[Figure]``;
- ``headline``: the ids of the claims the report's scorecard leads with (all ``paper`` claims
  when empty);
- ``resample(results, rng) -> list[Result]`` (optional): the same results with the seeds drawn
  with replacement (e.g. ensemble members re-indexed by one draw shared by every job of a seed
  grid, see :func:`nnphys.studies._kit.take_members`). The report's verdict-stability bootstrap
  calls ``analyse(spec, resample(results, rng))`` a few hundred times, so it must be cheap and
  must not touch arrays on disk unless the claims need them. ``None``: the study's verdicts are
  not computed from seeds (or it has not said how), and its stability is reported as n/a.

``claims`` maps each claim id to its one-line statement and tag, for ``nnphys list``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["holds", "fails", "inconclusive", "uninformative"]
VERDICTS: tuple[str, ...] = ("holds", "fails", "inconclusive", "uninformative")

# bounded element types for list-valued spec fields (every number a user sets has bounds)
PosInt = Annotated[int, Field(ge=1, le=1_000_000_000)]
PosFloat = Annotated[float, Field(gt=0, le=1e12)]
NonNegFloat = Annotated[float, Field(ge=0, le=1e12)]
Tag = Literal["paper", "derived", "default"]
Status = Literal["done", "failed", "diverged"]


class StudySpec(BaseModel):
    """Base of every study's ``Spec``: strict, frozen, and device-aware."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="[default] torch device for training and kernels (cpu or cuda)"
    )


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checked claim.

    ``evidence`` holds the numbers (means, standard errors, CIs, seeds, regime) as JSON-able
    values; ``summary`` is a one-line human reading of them for the report table.
    """

    id: str
    statement: str
    tag: Tag
    verdict: Verdict
    evidence: dict[str, Any]
    summary: str = ""
    # the pre-registered rule (nnphys.studies.protocol.Rule.to_dict() plus its "version"); empty
    # for a claim not yet judged through the protocol
    rule: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {'/'.join(VERDICTS)}, got {self.verdict!r}")
        if self.tag not in ("paper", "derived", "default"):
            raise ValueError(f"tag must be paper/derived/default, got {self.tag!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Figure:
    """A matplotlib figure with a file stem and a caption; the report writes PNG and PDF."""

    name: str
    figure: Any  # matplotlib.figure.Figure
    caption: str = ""
    claims: tuple[str, ...] = ()  # ids of the claims this figure shows (the report links them)


@dataclasses.dataclass
class Result:
    """One finished job as read back from the store."""

    key: str
    params: dict[str, Any]
    status: Status
    metrics: dict[str, Any]
    error: str | None = None
    arrays_path: Path | None = None
    started: float | None = None
    ended: float | None = None
    inline_arrays: dict[str, np.ndarray] | None = None  # arrays held in memory (tests, in-process runs)

    @classmethod
    def from_output(cls, job: Any, out: dict[str, Any], key: str = "") -> "Result":
        """A ``done`` Result straight from ``run(job)``'s output, arrays kept in memory.
        For tests and notebooks that call a study without the store; ``job``: a typed job or
        its params."""
        from nnphys.studies.job import params_of

        out = dict(out)
        arrays = out.pop("arrays", None) or {}
        return cls(key=key, params=params_of(job), status="done", metrics=out,
                   inline_arrays={k: np.asarray(v) for k, v in arrays.items()})

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The job's arrays (loaded on demand from its ``.npz``); empty when it has none."""
        if self.inline_arrays is not None:
            return self.inline_arrays
        if self.arrays_path is None or not Path(self.arrays_path).exists():
            return {}
        with np.load(self.arrays_path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    @property
    def ok(self) -> bool:
        return self.status == "done"


@dataclasses.dataclass(frozen=True)
class ClaimInfo:
    statement: str
    tag: Tag
    rule: Any = None  # nnphys.studies.protocol.Rule, pre-registered beside the statement


@dataclasses.dataclass(frozen=True)
class Study:
    """A registered study (see the module docstring for the contract)."""

    name: str
    papers: tuple[str, ...]
    spec: type[StudySpec]
    presets: dict[str, dict[str, Any]]
    jobs: Callable[[StudySpec], list[Any]]  # typed Jobs (or plain dicts, with ``run``)
    analyse: Callable[[StudySpec, list[Result]], list[Claim]]
    figures: Callable[[StudySpec, list[Result]], list[Figure]]
    claims: dict[str, ClaimInfo]
    schema_version: int = 1
    description: str = ""
    resample: Callable[[list[Result], np.random.Generator], list[Result]] | None = None
    headline: tuple[str, ...] = ()  # the claims a reader of the paper calls its headline result
    # optional: extra markdown tables (e.g. a per-cell results table) for the guide's results block,
    # filled by ``python -m nnphys.lab.docs_tables`` from the same run as the claims
    tables: Callable[[StudySpec, list[Result]], str] | None = None
    # optional: {claim id: {scenario: generator(rng, spec) -> list[Result]}}, synthetic results
    # with a known truth for the calibration harness (nnphys.studies.calibration)
    calibration: dict[str, dict[str, Callable[[np.random.Generator, StudySpec], list[Result]]]] | None = None
    # optional: checks of a spec that need no job but more than its fields (files on disk, a
    # service); raises nnphys.errors.ConfigError naming the field. The lab calls it after jobs(spec)
    # and before it opens the store, so a sweep that cannot work is refused before anything runs
    check: Callable[[StudySpec], None] | None = None
    # the function a worker calls with one planned job; None (typed jobs): ``job.run()``
    run: Callable[[Any], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        missing = {"quick", "paper"} - set(self.presets)
        if missing:
            raise ValueError(f"study {self.name}: presets missing scales {sorted(missing)}")

    @property
    def runner(self) -> Callable[[Any], dict[str, Any]]:
        """What a worker calls with one planned job."""
        from nnphys.studies.job import run_job

        return self.run if self.run is not None else run_job

    def make_spec(self, scale: str = "quick", overrides: dict[str, Any] | None = None) -> StudySpec:
        """Spec at ``scale`` with ``overrides`` on top (pydantic validates every field)."""
        if scale not in self.presets:
            from nnphys.errors import ConfigError

            raise ConfigError("scale", f"must be one of {sorted(self.presets)} (got {scale!r})")
        return self.spec(**{**self.presets[scale], **(overrides or {})})


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, floats by repr. Used for job keys."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
