"""Honest outcomes of a sweep: why jobs failed, in one line each, and what failed jobs mean for the
claims computed from the rest.

A failed job is stored with its traceback (:func:`nnphys.lab.execute.execute_job`). Users see the
traceback's last line (the exception and its message) via :func:`reason`; the full text stays in
the store and ``nnphys export``.

Rule for verdicts (:func:`guard_claims`): a study's ``analyse`` sees only the jobs that finished,
and a claim computed on a partial grid may read ``holds`` (or ``fails``) only because the evidence
against it (or for it) is in the jobs that failed. The lab cannot tell, in general, which claim
depends on which job, so when any planned job of a study failed every ``holds``/``fails`` verdict of
that study is shown as ``inconclusive`` with ``jobs failed: N (first reason)`` in its summary; the
verdict the analysis reached on the partial data is kept in the evidence
(``verdict_on_partial_data``). Diverged jobs are outcomes the studies judge themselves, not
failures. A complete rerun (``nnphys run STUDY --rerun failed``) gives the verdicts back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from nnphys.errors import one_line
from nnphys.studies.base import Claim

REASON_CHARS = 300  # a reason longer than this is cut (the store keeps the whole traceback)


def reason(error: str | None) -> str:
    """The one-line reason of a failed job: the last non-empty line of its stored traceback (the
    exception's type without its module path, and its message)."""
    lines = [ln.strip() for ln in str(error or "").splitlines() if ln.strip()]
    if not lines:
        return "no reason recorded"
    last = lines[-1]
    head, sep, msg = last.partition(": ")
    if sep and " " not in head and "." in head:  # nnphys.errors.ConfigError: ... -> ConfigError: ...
        last = f"{head.rsplit('.', 1)[1]}: {msg}"
    last = one_line(last)
    return last if len(last) <= REASON_CHARS else last[: REASON_CHARS - 1] + "…"


@dataclasses.dataclass(frozen=True)
class Failure:
    """Jobs that failed for one reason: how many and the key of the first."""

    reason: str
    count: int
    first_key: str


def failures(results: Iterable[Any]) -> list[Failure]:
    """The failed results grouped by reason, in order of first appearance. ``results``: objects
    with ``status``, ``error`` and ``key`` (store Results) or dicts with those keys (store rows)."""
    groups: dict[str, list[str]] = {}
    for r in results:
        get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k, None)
        if get("status") != "failed":
            continue
        groups.setdefault(reason(get("error")), []).append(str(get("key")))
    return [Failure(why, len(keys), keys[0]) for why, keys in groups.items()]


def failure_lines(study: str, fails: Sequence[Failure]) -> list[str]:
    """One line per reason: ``study: N job(s) failed: reason (first: key)``."""
    return [f"{study}: {f.count} job(s) failed: {f.reason} (first: job {f.first_key[:12]})" for f in fails]


def failed_note(fails: Sequence[Failure]) -> str | None:
    """``jobs failed: N (first reason)``, or None when nothing failed."""
    n = sum(f.count for f in fails)
    if not n:
        return None
    more = f"; {len(fails) - 1} other reason(s)" if len(fails) > 1 else ""
    return f"jobs failed: {n} ({fails[0].reason}{more})"


def guard_claims(claims: Sequence[Claim], fails: Sequence[Failure]) -> list[Claim]:
    """``claims`` as they may be shown when the jobs in ``fails`` failed (see the module
    docstring): unchanged when nothing failed, else every holds/fails becomes inconclusive."""
    note = failed_note(fails)
    if note is None:
        return list(claims)
    out = []
    for c in claims:
        if c.verdict == "inconclusive":
            out.append(dataclasses.replace(c, summary=f"{note}; {c.summary}" if c.summary else note))
            continue
        evidence = {**c.evidence, "verdict_on_partial_data": c.verdict, "jobs_failed": note}
        summary = f"{note}; on the finished jobs alone: {c.verdict}" + (f" ({c.summary})" if c.summary else "")
        out.append(dataclasses.replace(c, verdict="inconclusive", evidence=evidence, summary=summary))
    return out
