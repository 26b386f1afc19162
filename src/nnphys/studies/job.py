"""Typed jobs: one small frozen dataclass per job kind.

A study's ``jobs(spec)`` returns instances of :class:`Job` subclasses, one class per kind of
work (a training sweep, a kernel solve, a Monte-Carlo batch). Each class names its fields and
their types, so a spec field can be followed from the command line (``--set depths=…``) through
``jobs(spec)`` to the attribute its ``run`` reads (``job.depths``) and on to the tensor.

- ``KIND`` (a class constant) names the kind; it is stored as ``params["kind"]``;
- ``device`` is a property of the run, not of the study's planning: ``jobs(spec)`` leaves it at
  its default and the lab sets it once, from the spec, with :meth:`Job.on`;
- :meth:`Job.params` is the JSON-able dict the store keys, stores and hands to ``analyse``
  (``Result.params``): the fields, ``kind`` and ``device``;
- :meth:`Job.run` does the work and returns JSON-able metrics (numpy arrays under ``"arrays"``);
  it may raise :class:`nnphys.errors.Diverged`.

Jobs cross process boundaries (Dask pickles them), so they hold only plain values.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
    """Base of every typed job (see the module docstring)."""

    KIND: ClassVar[str] = ""
    device: str = "cpu"

    def params(self) -> dict[str, Any]:
        """The stored parameters: every field, plus ``kind``. Tuples become lists (JSON)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if self.KIND:
            out["kind"] = self.KIND
        return out

    def on(self, device: str) -> "Job":
        """This job on ``device`` (the lab calls it once per planned job)."""
        return self if device == self.device else dataclasses.replace(self, device=device)

    def run(self) -> dict[str, Any]:  # pragma: no cover - every kind overrides it
        raise NotImplementedError(f"{type(self).__name__} does not define run()")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Job":
        """The job whose :meth:`params` are ``params`` (``kind`` dropped; lists stay lists)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def params_of(job: Any) -> dict[str, Any]:
    """The stored parameters of a planned job: a typed :class:`Job`'s :meth:`~Job.params`, or a
    plain dict as it is (a plug-in study may still plan dicts)."""
    return job.params() if isinstance(job, Job) else dict(job)


def run_job(job: Job) -> dict[str, Any]:
    """``job.run()``: the ``run`` of a study whose jobs are typed (a module-level function, so
    that it pickles for a process pool)."""
    return job.run()
