"""The results store: one SQLite file (WAL mode) per results directory, plus per-job ``.npz``.

Only driver processes write (never the workers). A job's key is the sha256 of the canonical JSON of
``{"study", "schema", "job"}``; writing a result is

1. arrays -> ``arrays/<study>/<key>.npz.tmp-<pid>``, then ``os.replace`` to ``<key>.npz``;
2. one ``INSERT OR REPLACE`` of the row, in its own transaction.

A driver killed between 1 and 2 leaves an orphan ``.npz`` that the rerun overwrites; never a
half-written row (SQLite transactions are atomic) nor a half-written array (rename is atomic).
A driver killed during 1 leaves its ``.npz.tmp-<pid>``: opening the store for writing removes
such a temp file once its process is gone from this host and the file is older than
``TEMP_GRACE_S`` (a driver on another host sharing the store writes a temp for seconds only);
a temp of a live process is never touched.
Several drivers may share one store: WAL plus a busy timeout serialises their writes, and a
driver claims each job (a ``claims`` row: key, pid, host, start and heartbeat times) before it
runs it, so the others skip it; a claim whose process is gone (same host) or whose heartbeat is
older than ``LEASE_TIMEOUT_S`` (any host) is stale and is taken over.

Nothing is written before :func:`check_location` has passed: a location that is not a usable
nnphys store (a file, a foreign or damaged database, a newer version) is refused untouched.

Errors: a location refused by :func:`check_location` is a :class:`~nnphys.errors.StoreError`;
SQLite refusing an operation later (locked past the busy timeout, damaged, a full disk, a
read-only file, an I/O error) is a :class:`~nnphys.errors.StoreUnavailable` subclass, classified
by SQLite's error code (:func:`unavailable`). Every public :class:`Store` method raises these
instead of ``sqlite3`` exceptions; any other ``sqlite3`` error is a bug and propagates as it is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

import numpy as np

from nnphys.errors import (ConfigError, StoreBusy, StoreDamaged, StoreError, StoreFull, StoreIOError,
                           StoreReadOnly, StoreUnavailable, one_line)
from nnphys.studies.base import Result, canonical_json

DB_NAME = "nnphys.sqlite"
# ``PRAGMA user_version`` of the store. 0: the first format (no ``jobs.threads``, no ``runs.meta``,
# no ``claims``); 2 adds those; 3 adds ``jobs.run_id`` (the run that stored the row). Every writing
# command migrates an older store in place (ALTER TABLE ADD COLUMN: no row is lost or rewritten;
# rows stored before 3 keep a NULL run_id) and every reading command reads it as it is.
STORE_VERSION = 3
# A claim whose driver has not refreshed it for this long is stale and may be taken over by
# another driver. Drivers refresh their claims every HEARTBEAT_S seconds from a thread, so only
# a driver that is gone (or frozen for 10 minutes) loses them; on its own host a driver whose
# process is gone is stale at once.
LEASE_TIMEOUT_S = 600.0
HEARTBEAT_S = 30.0
# a temp array file of a process not alive here is removed once it is this old (see above)
TEMP_GRACE_S = 60.0

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
    arrays   TEXT,
    threads  INTEGER,
    run_id   INTEGER
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
    engine   TEXT,
    meta     TEXT
);
CREATE TABLE IF NOT EXISTS claims (
    key       TEXT PRIMARY KEY,
    study     TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    host      TEXT NOT NULL,
    started   REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""
# columns added since version 0, per table (the migration adds those a store lacks)
_ADDED = {"jobs": [("threads", "INTEGER"), ("run_id", "INTEGER")], "runs": [("meta", "TEXT")]}
# what makes a database an nnphys store (present since version 0)
_REQUIRED = {"jobs": {"key", "study", "params", "status", "metrics", "error", "started", "ended", "versions",
                      "arrays"},
             "runs": {"id", "study", "scale", "spec", "keys", "started", "ended", "executed", "engine"}}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_ELSEWHERE = "it was left untouched; move it away or choose another --results"


# SQLite's primary result codes (https://sqlite.org/rescode.html) -> the typed error for each
_TROUBLE: dict[int, type[StoreUnavailable]] = {
    5: StoreBusy,  # SQLITE_BUSY
    6: StoreBusy,  # SQLITE_LOCKED
    3: StoreReadOnly,  # SQLITE_PERM
    8: StoreReadOnly,  # SQLITE_READONLY
    14: StoreReadOnly,  # SQLITE_CANTOPEN
    10: StoreIOError,  # SQLITE_IOERR
    11: StoreDamaged,  # SQLITE_CORRUPT
    26: StoreDamaged,  # SQLITE_NOTADB
    13: StoreFull,  # SQLITE_FULL
}


def unavailable(path: str | Path, e: sqlite3.Error) -> StoreUnavailable | None:
    """The typed error for SQLite error ``e`` on the store at ``path``, or None when ``e`` is not
    trouble with the store itself (a wrong query, a closed connection: a bug)."""
    code = getattr(e, "sqlite_errorcode", None)
    kind = _TROUBLE.get(code & 0xFF) if isinstance(code, int) else None
    return None if kind is None else kind(str(path), one_line(e))


def _typed_errors(cls: type) -> type:
    """Class decorator: every public method of ``cls`` (and ``__init__``) raises
    :func:`unavailable`'s typed error in place of an ``sqlite3.DatabaseError`` it classifies."""
    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as e:
                typed = unavailable(getattr(self, "path", "?"), e)
                if typed is None:
                    raise
                raise typed from e
        return guarded

    for name, member in list(vars(cls).items()):
        if callable(member) and not isinstance(member, type) and (name == "__init__" or not name.startswith("_")):
            setattr(cls, name, wrap(member))
    return cls


def _columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in conn.execute(f"PRAGMA table_info('{t}')")} for t in tables
            if not t.startswith("sqlite_")}


def _connect_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(db.resolve()))}?mode=ro", uri=True, timeout=60.0,
                           isolation_level=None)


def check_location(root: str | Path, *, write: bool) -> int | None:
    """Everything about a results location that can be checked without writing a byte.

    Returns the version of the store found there, or ``None`` when there is none yet (no file,
    an empty file as a concurrent creator leaves for an instant, or a database without tables).
    Raises :class:`StoreError` naming the path for: a file where the directory (or one above it)
    should be; a directory or other non-file named ``nnphys.sqlite``; a file that is not SQLite,
    is truncated or damaged; an SQLite database of another schema; a store written by a newer
    nnphys; and, when ``write``, a location this process may not write."""
    root = Path(root)
    for p in (root, *root.parents):
        if p.is_dir():
            anchor = p
            break
        if p.exists() or p.is_symlink():
            if p.is_dir():  # another process created it between the two looks (drivers started together)
                anchor = p
                break
            where = "--results" if p == root else f"--results {str(root)!r} lies under a file"
            raise StoreError(str(p), f"is not a directory ({where}); --results must name a directory, "
                                     "existing or to be created")
    else:  # pragma: no cover - '/' or '.' always exists
        anchor = Path(".")
    if anchor != root:  # the directory would have to be created
        if write and not os.access(anchor, os.W_OK | os.X_OK):
            raise StoreError(str(anchor), f"is not writable, so --results {str(root)!r} cannot be created here")
        return None
    db = root / DB_NAME
    if not (db.exists() or db.is_symlink()):
        if write and not os.access(root, os.W_OK | os.X_OK):
            raise StoreError(str(root), "is not writable; choose another --results")
        return None
    if not db.is_file():
        raise StoreError(str(db), f"is {'a directory' if db.is_dir() else 'not a regular file'}, "
                                  f"not an nnphys store; {_ELSEWHERE}")
    deadline = time.monotonic() + 2.0
    while True:  # a header still being written by a concurrent creator: look again shortly
        try:
            with open(db, "rb") as fh:
                head = fh.read(100)
        except OSError as e:
            raise StoreError(str(db), f"cannot be read ({e.strerror or e})") from None
        if not head or len(head) >= 100 or not _SQLITE_MAGIC.startswith(head[:16]) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    size = db.stat().st_size
    if size == 0:
        return None
    if not head.startswith(_SQLITE_MAGIC) or len(head) < 100:
        raise StoreError(str(db), f"is not an SQLite database, so not an nnphys store; {_ELSEWHERE}")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and pages and size < page * pages:
        raise StoreError(str(db), f"is truncated ({size} bytes, its header says {page * pages}); {_ELSEWHERE}")
    if write and not os.access(db, os.W_OK):
        raise StoreError(str(db), "is not writable; choose another --results")
    deadline = time.monotonic() + 60.0
    while True:
        try:
            conn = _connect_ro(db)
            try:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                cols = _columns(conn)
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            finally:
                conn.close()
            break
        except sqlite3.OperationalError as e:  # another driver switching the journal mode
            if ("locked" in str(e) or "busy" in str(e)) and time.monotonic() < deadline:
                time.sleep(0.05 * (1 + random.random()))
                continue
            raise StoreError(str(db), f"cannot be read ({one_line(e)}); {_ELSEWHERE}") from None
        except sqlite3.DatabaseError as e:
            raise StoreError(str(db), f"is damaged or not a database ({one_line(e)}); "
                                      f"{_ELSEWHERE}") from None
    if check != "ok":
        raise StoreError(str(db), f"is damaged (integrity check: {one_line(check)[:120]}); {_ELSEWHERE}")
    if not cols:
        return None
    missing = [t for t, need in _REQUIRED.items() if not need <= cols.get(t, set())]
    if missing:
        raise StoreError(str(db), f"is an SQLite database but not an nnphys store (tables: "
                                  f"{', '.join(sorted(cols)) or 'none'}); {_ELSEWHERE}")
    if version > STORE_VERSION:
        raise StoreError(str(db), f"was written by a newer nnphys (store version {version}; this one reads "
                                  f"versions <= {STORE_VERSION}); upgrade nnphys or choose another --results")
    return version


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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


HOST = platform.node()


def remove_stale_temps(root: str | Path, grace_s: float = TEMP_GRACE_S) -> list[Path]:
    """Remove ``arrays/<study>/<key>.npz.tmp-<pid>`` files left by killed drivers: those whose
    ``pid`` is not a live process here and whose modification time is older than ``grace_s``.
    Returns the paths removed. Never touches a temp of a live process or any other file."""
    removed: list[Path] = []
    now = time.time()
    for tmp in Path(root).glob("arrays/*/*.npz.tmp-*"):
        pid_text = tmp.name.rsplit(".tmp-", 1)[1]
        if not pid_text.isdigit() or len(pid_text) > 10 or pid_alive(int(pid_text)):
            continue
        try:
            if not tmp.is_file() or now - tmp.stat().st_mtime < grace_s:
                continue
            tmp.unlink()
        except FileNotFoundError:  # another driver removed it first
            continue
        removed.append(tmp)
    return removed


@_typed_errors
class Store:
    """Results of every study under ``root``.

    ``Store(root)`` opens for writing: it checks the location first (:func:`check_location`,
    which writes nothing), then creates the directory and store if needed and migrates an older
    store in place. ``Store(root, readonly=True)`` opens an existing store for reading only and
    never changes a byte of it (status, report, export, plan). SQLite errors surface as typed
    :class:`~nnphys.errors.StoreUnavailable` errors (see the module docstring)."""

    def __init__(self, root: str | Path, *, readonly: bool = False):
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self.readonly = readonly
        self._run_of: dict[str, int] = {}  # study -> the run this process is executing (begin_run)
        self.removed_temps: list[Path] = []  # stale temp array files removed when opened for writing
        found = check_location(self.root, write=not readonly)
        if readonly:
            if found is None:
                raise StoreError(str(self.root), "holds no nnphys results store (run a study first)")
            try:
                self._conn = _connect_ro(self.path)
                self._conn.execute("PRAGMA busy_timeout=60000")
                self._cols = _columns(self._conn)
            except sqlite3.DatabaseError as e:
                raise StoreError(str(self.path), f"cannot be opened for reading ({e})") from None
            self.version = found
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(str(self.root), f"cannot be created ({e.strerror or e})") from None
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=60000")
        _enable_wal(self._conn, timeout=60.0)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._write() as c:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
            cols = _columns(c)
            for table, added in _ADDED.items():
                for name, kind in added:
                    if name not in cols[table]:
                        c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            c.execute(f"PRAGMA user_version = {STORE_VERSION}")
        self._cols = _columns(self._conn)
        self.version = STORE_VERSION
        self.removed_temps = remove_stale_temps(self.root)

    @property
    def upgrade_note(self) -> str | None:
        """For an older store opened read-only: what it lacks and how to proceed."""
        if self.version >= STORE_VERSION:
            return None
        return (f"store version {self.version} (this nnphys writes {STORE_VERSION}): readable as it is, "
                "without what it predates (thread counts and run provenance before 2, the run id of each job "
                "before 3); the next `nnphys run` on it upgrades it in place, "
                "keeping every row")

    def _has(self, table: str, column: str) -> bool:
        return column in self._cols.get(table, set())

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
        if self.readonly:
            raise RuntimeError("this Store was opened read-only")
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
        """Store one finished job and drop its claim. ``outcome``: status, metrics, arrays,
        error, started, ended, versions, threads (see :func:`nnphys.lab.execute.execute_job`).
        The row's ``run_id`` is that of the run of ``study`` this process began last (None outside
        a run)."""
        arrays = outcome.get("arrays") or {}
        rel = self._write_arrays(study, key, arrays) if arrays else None
        row = (
            key, study, to_json(job), outcome["status"], to_json(outcome.get("metrics") or {}),
            outcome.get("error"), outcome.get("started"), outcome.get("ended"),
            to_json(outcome.get("versions") or {}), rel, outcome.get("threads"), self._run_of.get(study),
        )
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO jobs (key, study, params, status, metrics, error, started, ended, "
                      "versions, arrays, threads, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)
            c.execute("DELETE FROM claims WHERE key = ?", (key,))

    def statuses(self, study: str, keys: Iterable[str] | None = None) -> dict[str, str]:
        """``{key: status}`` of the stored jobs of ``study`` (restricted to ``keys``)."""
        rows = self._conn.execute("SELECT key, status FROM jobs WHERE study = ?", (study,)).fetchall()
        out = dict(rows)
        if keys is not None:
            wanted = set(keys)
            out = {k: v for k, v in out.items() if k in wanted}
        return out

    def thread_counts(self, study: str, keys: Iterable[str] | None = None) -> dict[int | None, int]:
        """``{threads: number of finished jobs}`` (``None``: not recorded, e.g. a version-0 store
        or a remote worker's own setting unknown)."""
        if not self._has("jobs", "threads"):
            rows = [(k, None) for k in self.statuses(study, keys)]
        else:
            rows = self._conn.execute("SELECT key, threads FROM jobs WHERE study = ? AND status != 'failed'",
                                      (study,)).fetchall()
        wanted = set(keys) if keys is not None else None
        out: dict[int | None, int] = {}
        for k, t in rows:
            if wanted is None or k in wanted:
                out[t] = out.get(t, 0) + 1
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
        """Every job row as a dict with decoded JSON (for export); ``threads`` and ``run_id`` are None
        when unknown (a store or row from before they were recorded)."""
        cols = ["key", "study", "params", "status", "metrics", "error", "started", "ended", "versions", "arrays"]
        sel = cols + [c for c in ("threads", "run_id") if self._has("jobs", c)]
        q = f"SELECT {', '.join(sel)} FROM jobs"
        args: tuple = ()
        if study:
            q += " WHERE study = ?"
            args = (study,)
        out = []
        for r in self._conn.execute(q + " ORDER BY study, started", args):
            d = dict(zip(sel, r))
            d.setdefault("threads", None)
            d.setdefault("run_id", None)
            for c in ("params", "metrics", "versions"):
                d[c] = json.loads(d[c] or "{}")
            out.append(d)
        return out

    # -- claims (job leases shared by the drivers of one store) -------------------------
    def _stale(self, pid: int, host: str, heartbeat: float, now: float, stale_after: float) -> bool:
        return (host == HOST and not pid_alive(pid)) or now - heartbeat > stale_after

    def claim(self, study: str, key: str, *, redo: Iterable[str] = (), since: float = 0.0,
              stale_after: float = LEASE_TIMEOUT_S) -> str:
        """Try to claim job ``key`` for this process, atomically. Returns

        - ``"finished"``: it has a stored row (of a status not in ``redo``, or one written after
          ``since``, i.e. by another driver of this same sweep): nothing to do;
        - ``"busy"``: another live driver holds a fresh claim on it;
        - ``"claimed"``: this process now holds it (taking over a stale claim if there was one)."""
        now = time.time()
        with self._write() as c:
            row = c.execute("SELECT status, ended FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is not None and (row[0] not in set(redo) or (row[1] or 0) > since):
                return "finished"
            cl = c.execute("SELECT pid, host, heartbeat FROM claims WHERE key = ?", (key,)).fetchone()
            if cl is not None and (cl[0], cl[1]) != (os.getpid(), HOST) and not self._stale(*cl, now, stale_after):
                return "busy"
            c.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?,?)", (key, study, os.getpid(), HOST, now, now))
            return "claimed"

    def claims(self, study: str | None = None, *, live_only: bool = False,
               stale_after: float = LEASE_TIMEOUT_S) -> list[dict[str, Any]]:
        """The current claims (``key, study, pid, host, started, heartbeat``); with ``live_only``
        those that are not stale, i.e. jobs running now."""
        if "claims" not in self._cols:
            return []
        q = "SELECT key, study, pid, host, started, heartbeat FROM claims"
        rows = self._conn.execute(q + (" WHERE study = ?" if study else ""), (study,) if study else ()).fetchall()
        out = [dict(zip(("key", "study", "pid", "host", "started", "heartbeat"), r)) for r in rows]
        if live_only:
            now = time.time()
            out = [c for c in out if not self._stale(c["pid"], c["host"], c["heartbeat"], now, stale_after)]
        return out

    def release_stale(self, study: str | None = None, stale_after: float = LEASE_TIMEOUT_S) -> int:
        """Drop the stale claims (a killed driver's); returns how many."""
        now = time.time()
        with self._write() as c:
            stale = [cl["key"] for cl in self.claims(study)
                     if self._stale(cl["pid"], cl["host"], cl["heartbeat"], now, stale_after)]
            c.executemany("DELETE FROM claims WHERE key = ?", [(k,) for k in stale])
        return len(stale)

    def release_mine(self) -> int:
        """Drop every claim of this process (a driver's last act, also after an error)."""
        with self._write() as c:
            return c.execute("DELETE FROM claims WHERE pid = ? AND host = ?", (os.getpid(), HOST)).rowcount

    # -- runs (what was planned, for status, resume and the report) ---------------------
    def begin_run(self, study: str, scale: str | None, spec: dict[str, Any], keys: list[str], engine: str,
                  meta: dict[str, Any] | None = None) -> int:
        """Record a planned sweep; ``meta`` is its provenance (:func:`nnphys.lab.provenance.collect`)."""
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (study, scale, spec, keys, started, engine, meta) VALUES (?,?,?,?,?,?,?)",
                (study, scale, to_json(spec), json.dumps(keys), time.time(), engine, to_json(meta or {})),
            )
            self._run_of[study] = int(cur.lastrowid)
            return self._run_of[study]

    def end_run(self, run_id: int, executed: int) -> None:
        with self._write() as c:
            c.execute("UPDATE runs SET ended = ?, executed = ? WHERE id = ?", (time.time(), executed, run_id))

    _RUN_COLS = ("id", "study", "scale", "spec", "keys", "started", "ended", "executed", "engine")

    def runs(self, study: str | None = None) -> list[dict[str, Any]]:
        """Every recorded sweep (oldest first) as a dict; ``row["meta"]`` is its provenance dict
        (``{}`` for runs stored before provenance was recorded)."""
        sel = list(self._RUN_COLS) + (["meta"] if self._has("runs", "meta") else [])
        q = f"SELECT {', '.join(sel)} FROM runs" + (" WHERE study = ?" if study else "") + " ORDER BY id"
        return [self._decode_run(sel, r) for r in self._conn.execute(q, (study,) if study else ())]

    @staticmethod
    def _decode_run(sel: list[str], r: tuple) -> dict[str, Any]:
        d = dict(zip(sel, r))
        d["spec"] = json.loads(d["spec"])
        d["keys"] = json.loads(d["keys"])
        d["meta"] = json.loads(d.get("meta") or "{}")
        return d

    def latest_run(self, study: str) -> dict[str, Any] | None:
        """The last recorded sweep of ``study`` (see :meth:`runs`), or None."""
        sel = list(self._RUN_COLS) + (["meta"] if self._has("runs", "meta") else [])
        r = self._conn.execute(f"SELECT {', '.join(sel)} FROM runs WHERE study = ? ORDER BY id DESC LIMIT 1",
                               (study,)).fetchone()
        return None if r is None else self._decode_run(sel, r)

    def studies(self) -> list[str]:
        rows = self._conn.execute("SELECT DISTINCT study FROM runs UNION SELECT DISTINCT study FROM jobs").fetchall()
        return sorted(r[0] for r in rows)

    def integrity_ok(self) -> bool:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def open_readonly(results: str | Path, missing_ok: bool = False) -> Store | None:
    """The store under ``results`` opened read-only; None when there is none and ``missing_ok``,
    else a :class:`~nnphys.errors.ConfigError` naming ``--results``."""
    if check_location(results, write=False) is None:
        if missing_ok:
            return None
        raise ConfigError("--results", f"no results store in {str(results)!r} (run a study first)")
    return Store(results, readonly=True)
