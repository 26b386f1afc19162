"""The results store: one SQLite file (WAL mode) per results directory, plus per-job ``.npz``.

Only the driver process writes. A job's key is the sha256 of the canonical JSON of
``{"study", "schema", "job"}``; writing a result is

1. arrays -> ``arrays/<study>/<key>.npz.tmp-<pid>``, then ``os.replace`` to ``<key>.npz``;
2. one ``INSERT OR REPLACE`` of the row, in its own transaction.

A driver killed between 1 and 2 leaves an orphan ``.npz`` that the rerun overwrites; never a
half-written row (SQLite transactions are atomic) nor a half-written array (rename is atomic).
Several drivers may share one store: WAL plus a busy timeout serialises their writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from nnphys.studies.base import Result, canonical_json

DB_NAME = "nnphys.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key      TEXT PRIMARY KEY,
    study    TEXT NOT NULL,
    params   TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('done', 'failed', 'diverged')),
    metrics  TEXT,
    error    TEXT,
    started  REAL,
    ended    REAL,
    versions TEXT,
    arrays   TEXT
);
CREATE INDEX IF NOT EXISTS jobs_study ON jobs (study, status);
CREATE TABLE IF NOT EXISTS runs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    study    TEXT NOT NULL,
    scale    TEXT,
    spec     TEXT NOT NULL,
    keys     TEXT NOT NULL,
    started  REAL NOT NULL,
    ended    REAL,
    executed INTEGER,
    engine   TEXT
);
"""


def job_key(study: str, schema_version: int, job: dict[str, Any]) -> str:
    """sha256 of the job's canonical JSON (sorted keys), the study name and its schema version."""
    blob = canonical_json({"study": study, "schema": schema_version, "job": job})
    return hashlib.sha256(blob.encode()).hexdigest()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the database in WAL mode (persistent in the file). Switching the journal mode needs an
    exclusive lock, and SQLite may answer SQLITE_BUSY at once, without the busy handler, while
    another process is creating the same file: so retry with jittered back-off until ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if not ("locked" in str(e) or "busy" in str(e)) or time.monotonic() > deadline:
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(2 * delay, 0.5)


class Store:
    """Results of every study under ``root`` (created on first use)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / DB_NAME
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=60000")
        _enable_wal(self._conn, timeout=60.0)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._write():
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)

    # -- plumbing -----------------------------------------------------------------------
    class _Txn:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self):
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb):
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            return False

    def _write(self) -> "_Txn":
        return Store._Txn(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- jobs ---------------------------------------------------------------------------
    def arrays_path(self, study: str, key: str) -> Path:
        return self.root / "arrays" / study / f"{key}.npz"

    def _write_arrays(self, study: str, key: str, arrays: dict[str, Any]) -> str:
        path = self.arrays_path(study, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as fh:
            # no fsync: like SQLite's synchronous=NORMAL, this survives a killed process (the
            # page cache is the kernel's), not a power cut, and keeps small jobs cheap
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
        return str(path.relative_to(self.root))

    def record(self, study: str, key: str, job: dict[str, Any], outcome: dict[str, Any]) -> None:
        """Store one finished job. ``outcome``: status, metrics, arrays, error, started, ended,
        versions (see :func:`nnphys.lab.execute.execute_job`)."""
        arrays = outcome.get("arrays") or {}
        rel = self._write_arrays(study, key, arrays) if arrays else None
        row = (
            key, study, to_json(job), outcome["status"], to_json(outcome.get("metrics") or {}),
            outcome.get("error"), outcome.get("started"), outcome.get("ended"),
            to_json(outcome.get("versions") or {}), rel,
        )
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?)", row)

    def statuses(self, study: str, keys: Iterable[str] | None = None) -> dict[str, str]:
        """``{key: status}`` of the stored jobs of ``study`` (restricted to ``keys``)."""
        rows = self._conn.execute("SELECT key, status FROM jobs WHERE study = ?", (study,)).fetchall()
        out = dict(rows)
        if keys is not None:
            wanted = set(keys)
            out = {k: v for k, v in out.items() if k in wanted}
        return out

    def results(self, study: str, keys: Iterable[str] | None = None) -> list[Result]:
        """Stored results of ``study``, in the order of ``keys`` when given."""
        rows = self._conn.execute(
            "SELECT key, params, status, metrics, error, started, ended, arrays FROM jobs WHERE study = ?",
            (study,),
        ).fetchall()
        by_key = {r[0]: r for r in rows}
        order = list(keys) if keys is not None else sorted(by_key)
        out = []
        for k in order:
            r = by_key.get(k)
            if r is None:
                continue
            out.append(Result(
                key=r[0], params=json.loads(r[1]), status=r[2], metrics=json.loads(r[3] or "{}"),
                error=r[4], started=r[5], ended=r[6],
                arrays_path=(self.root / r[7]) if r[7] else None,
            ))
        return out

    def rows(self, study: str | None = None) -> list[dict[str, Any]]:
        """Every job row as a dict with decoded JSON (for export)."""
        q = "SELECT key, study, params, status, metrics, error, started, ended, versions, arrays FROM jobs"
        args: tuple = ()
        if study:
            q += " WHERE study = ?"
            args = (study,)
        cols = ["key", "study", "params", "status", "metrics", "error", "started", "ended", "versions", "arrays"]
        out = []
        for r in self._conn.execute(q + " ORDER BY study, started", args):
            d = dict(zip(cols, r))
            for c in ("params", "metrics", "versions"):
                d[c] = json.loads(d[c] or "{}")
            out.append(d)
        return out

    # -- runs (what was planned, for status, resume and the report) ---------------------
    def begin_run(self, study: str, scale: str | None, spec: dict[str, Any], keys: list[str], engine: str) -> int:
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (study, scale, spec, keys, started, engine) VALUES (?,?,?,?,?,?)",
                (study, scale, to_json(spec), json.dumps(keys), time.time(), engine),
            )
            return int(cur.lastrowid)

    def end_run(self, run_id: int, executed: int) -> None:
        with self._write() as c:
            c.execute("UPDATE runs SET ended = ?, executed = ? WHERE id = ?", (time.time(), executed, run_id))

    def latest_run(self, study: str) -> dict[str, Any] | None:
        r = self._conn.execute(
            "SELECT id, study, scale, spec, keys, started, ended, executed, engine FROM runs "
            "WHERE study = ? ORDER BY id DESC LIMIT 1", (study,),
        ).fetchone()
        if r is None:
            return None
        return {"id": r[0], "study": r[1], "scale": r[2], "spec": json.loads(r[3]), "keys": json.loads(r[4]),
                "started": r[5], "ended": r[6], "executed": r[7], "engine": r[8]}

    def studies(self) -> list[str]:
        rows = self._conn.execute("SELECT DISTINCT study FROM runs UNION SELECT DISTINCT study FROM jobs").fetchall()
        return sorted(r[0] for r in rows)

    def integrity_ok(self) -> bool:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
