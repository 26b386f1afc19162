"""``nnphys status``: what a store holds of each study's last planned run. Reads only.

Per study, against the job keys its latest run planned: how many are stored as done, failed or
diverged, how many a live driver is running now (claimed, see :mod:`nnphys.lab.store`), how many
are missing (planned, neither stored nor running), the thread counts the finished jobs ran with,
and one line per reason that jobs failed for (:func:`nnphys.lab.outcomes.failure_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnphys.lab.outcomes import failure_lines, failures
from nnphys.lab.store import Store


# the columns of ``nnphys status`` (short, so that the table fits 80 columns) and their legend
COLUMNS = ("study", "scale", "plan", "done", "fail", "div", "run", "miss", "thr")
LEGEND = ("plan: jobs planned by the last run; fail: failed; div: diverged; run: being run by a live driver; "
          "miss: planned, not yet stored; thr: threads per job")


@dataclass
class StudyStatus:
    study: str
    scale: str  # the preset of the latest run ("-" when the study has no recorded run)
    planned: int
    done: int
    failed: int
    diverged: int
    running: int  # claimed by a live driver
    threads: dict[int | None, int]  # {threads per job: finished jobs}; None: not recorded
    failed_lines: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        """Planned jobs neither stored nor running."""
        return self.planned - self.done - self.failed - self.diverged - self.running

    @property
    def mixed_threads(self) -> bool:
        """Whether the finished jobs ran with more than one known thread count."""
        return len([t for t in self.threads if t is not None]) > 1

    def cells(self) -> list[str]:
        """The row of ``nnphys status``: study, scale, plan, done, fail, div, run, miss, thr."""
        return [self.study, self.scale, *map(str, (self.planned, self.done, self.failed, self.diverged,
                                                   self.running, self.missing)), self.thread_note()]

    def thread_note(self) -> str:
        """``1``, ``1,2 MIXED``, ``1+?`` (some not recorded) or ``-`` (none recorded)."""
        known = sorted(t for t in self.threads if t is not None)
        if not known:
            return "-"
        text = ",".join(map(str, known)) + ("+?" if None in self.threads else "")
        return text + (" MIXED" if len(known) > 1 else "")

    def mixed_line(self) -> str:
        """What a mix of thread counts means for the results, in one line."""
        parts = ", ".join(f"{c} job(s) with {t} thread(s)" for t, c in sorted(self.threads.items(), key=str))
        return (f"{self.study}: its results mix thread counts ({parts}); jobs run with different --threads "
                "may differ in the last bits, so compare or resume with one --threads "
                "(a fresh --results for a bit-identical set)")


def study_status(store: Store, name: str) -> StudyStatus:
    """The status of study ``name`` in ``store`` (see the module docstring)."""
    run = store.latest_run(name)
    keys = run["keys"] if run else []
    st = store.statuses(name, keys)
    n = {s: sum(v == s for v in st.values()) for s in ("done", "failed", "diverged")}
    planned = set(keys)
    running = sum(c["key"] in planned for c in store.claims(name, live_only=True))
    fails = failures(store.results(name, [k for k, v in st.items() if v == "failed"]))
    return StudyStatus(name, str(run["scale"] if run else "-"), len(keys), n["done"], n["failed"], n["diverged"],
                       running, store.thread_counts(name, keys), failure_lines(name, fails))


def store_status(store: Store) -> list[StudyStatus]:
    """:func:`study_status` of every study in the store, by name."""
    return [study_status(store, name) for name in store.studies()]


def notes(rows: list[StudyStatus]) -> list[str]:
    """The lines below the table: every study's failure reasons, then every mix of thread counts."""
    return [line for r in rows for line in r.failed_lines] + [r.mixed_line() for r in rows if r.mixed_threads]
