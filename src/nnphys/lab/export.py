"""``nnphys export``: the store as a table pandas can use.

Tidy (the default): one row per (job, member, metric value) with the job's parameters as
columns. Fixed columns:

- ``study``, ``key``, ``status``, ``job_seconds``, ``error`` (the traceback of a failed job, only on
  its first row) and ``reason`` (its last line, on every row of the job);
- ``run_id``: the run that stored the row (empty for rows stored before runs were recorded per
  job) and ``overrides``: that run's preset and the fields the user overrode (``quick + d=64``);
- ``member``: the position in the job's member seeds (``None`` for a job-level value) and
  ``member_seed``: that seed. The member seeds are the job's list-valued parameter whose name
  contains ``seed`` and whose length equals the length of the metric's list (the rule of
  :func:`nnphys.studies._kit.take_members`, which the verdict-stability bootstrap resamples by);
- ``metric``: the dotted path of the value inside the job's metrics (``curves.loss``);
- ``index``: the position inside any other list on that path (``"3"``, or ``"2.7"`` nested);
- ``value`` (float; booleans as 0/1) or ``text`` (strings).

Parameters: nested dicts become dotted names (``data.task``), other lists JSON strings; a
parameter whose name collides with a fixed column is prefixed ``param_``. A job without metrics
(a failed one) still gets one row, with ``metric`` empty.

Wide (``tidy=False``, the old layout): one row per job, ``params.*``/``metrics.*``/``versions.*``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator

from nnphys.errors import ConfigError
from nnphys.lab.outcomes import reason
from nnphys.lab.runs import scale_text
from nnphys.lab.store import Store, open_readonly

FIXED = ("study", "key", "run_id", "overrides", "status", "reason", "job_seconds", "error", "member",
         "member_seed", "metric", "index", "value", "text")


# ---------------------------------------------------------------------------------------------
# wide
# ---------------------------------------------------------------------------------------------


def _flat(prefix: str, d: dict[str, Any], out: dict[str, Any]) -> None:
    for k, v in d.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            _flat(name, v, out)
        elif isinstance(v, (list, tuple)):
            out[name] = json.dumps(v)
        else:
            out[name] = v


def _run_columns(store: Store) -> Any:
    """``row -> {"run_id", "overrides"}`` for the store's job rows."""
    text = {r["id"]: scale_text(r) for r in store.runs()}
    return lambda r: {"run_id": r.get("run_id"), "overrides": text.get(r.get("run_id"))}


def _reason(r: dict[str, Any]) -> str | None:
    return reason(r["error"]) if r["status"] == "failed" else None


def flat_rows(store: Store, study: str | None = None) -> list[dict[str, Any]]:
    """One row per job (the wide layout)."""
    rows = []
    runs = _run_columns(store)
    for r in store.rows(study):
        row = {k: r[k] for k in ("key", "study", "status", "started", "ended", "error", "arrays")}
        row.update(runs(r), reason=_reason(r))
        _flat("params", r["params"], row)
        _flat("metrics", r["metrics"], row)
        _flat("versions", r["versions"], row)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# tidy
# ---------------------------------------------------------------------------------------------


def _member_lists(params: dict[str, Any], prefix: str = "") -> dict[str, list]:
    """``{dotted name: list}`` of the seed-named list parameters (candidate member axes)."""
    out: dict[str, list] = {}
    for k, v in params.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_member_lists(v, name + "."))
        elif isinstance(v, list) and v and "seed" in str(k).lower():
            out[name] = v
    return out


def _leaves(obj: Any, path: tuple[str, ...] = (), idx: tuple[tuple[int, int], ...] = ()) -> Iterator:
    """``(path, ((position, list length), ...), scalar)`` for every scalar inside ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (str(k),), idx)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, path, idx + ((i, len(obj)),))
    else:
        yield path, idx, obj


def _value(v: Any) -> tuple[float | None, str | None]:
    if v is None:
        return None, None
    if isinstance(v, bool):
        return float(v), None
    if isinstance(v, (int, float)):
        return float(v), None
    return None, str(v)


def _param_columns(params: dict[str, Any], drop: set[str]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _flat("", params, flat)
    return {(f"param_{k}" if k in FIXED else k): v for k, v in flat.items() if k not in drop}


def tidy_rows(store: Store, study: str | None = None) -> list[dict[str, Any]]:
    """One row per (job, member, metric value); see the module docstring for the columns."""
    rows: list[dict[str, Any]] = []
    runs = _run_columns(store)
    for r in store.rows(study):
        members = _member_lists(r["params"])
        by_len: dict[int, tuple[str, list]] = {}
        for name, seeds in members.items():
            by_len.setdefault(len(seeds), (name, seeds))
        used: set[str] = set()
        job_rows = []
        for path, idx, v in _leaves(r["metrics"]):
            member = seed = None
            rest = list(idx)
            for j, (pos, n) in enumerate(idx):
                if n in by_len:  # the first list level as long as a member-seed list is the member axis
                    name, seeds = by_len[n]
                    used.add(name)
                    member, seed = pos, seeds[pos]
                    del rest[j]
                    break
            value, text = _value(v)
            job_rows.append({"member": member, "member_seed": seed, "metric": ".".join(path),
                             "index": ".".join(str(p) for p, _ in rest) or None, "value": value, "text": text})
        if not job_rows:
            job_rows.append({"member": None, "member_seed": None, "metric": None, "index": None,
                             "value": None, "text": None})
        secs = (r["ended"] - r["started"]) if r["ended"] is not None and r["started"] is not None else None
        common = {"study": r["study"], "key": r["key"], **runs(r), "status": r["status"], "reason": _reason(r),
                  "job_seconds": secs}
        params = _param_columns(r["params"], used)
        for i, jr in enumerate(job_rows):
            rows.append({**common, "error": r["error"] if i == 0 else None, **jr, **params})
    return rows


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def _columns(rows: list[dict[str, Any]], first: tuple[str, ...] = ()) -> list[str]:
    seen = dict.fromkeys(c for c in first if any(c in r for r in rows))
    for r in rows:
        for c in r:
            seen.setdefault(c, None)
    return list(seen)


def export(store: Store, fmt: str, out: Path | None = None, study: str | None = None, *,
           tidy: bool = True) -> Path:
    """Write the store (only ``study`` when given) as CSV or Parquet, tidy unless ``tidy=False``;
    returns the path written (default ``<store>/results.<fmt>``)."""
    if fmt not in ("csv", "parquet"):
        raise ConfigError("--format", f"must be csv or parquet (got {fmt!r})")
    if study is not None and study not in store.studies():
        raise ConfigError("--study", f"no results of {study!r} in this store; it has: "
                          f"{', '.join(store.studies()) or '(none)'}")
    rows = tidy_rows(store, study) if tidy else flat_rows(store, study)
    cols = _columns(rows, FIXED if tidy else ())
    out = Path(out) if out is not None else store.root / f"results.{fmt}"
    if fmt == "csv":
        with open(out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
        return out
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("--format", "parquet needs pyarrow: pip install 'nnphys[parquet]'") from None
    table = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        kinds = {type(v) for v in vals if v is not None}
        if c == "value" or kinds == {int, float} or kinds == {float}:
            vals = [None if v is None else float(v) for v in vals]
        elif len(kinds) > 1:
            vals = [None if v is None else str(v) for v in vals]  # mixed types: keep them readable
        table[c] = pa.array(vals, type=pa.string()) if not kinds else vals
    pq.write_table(pa.table(table), out)
    return out


def check_output(path: Path) -> None:
    """A file ``export`` may write: not a folder nor a FIFO or device (it would block or swallow
    the table), in an existing folder, writable. A ConfigError naming ``--output`` otherwise."""
    if path.is_dir():
        raise ConfigError("--output", f"{str(path)!r} is a directory; give a file path")
    if path.exists() and not path.is_file():
        raise ConfigError("--output", f"{str(path)!r} is not a regular file; give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError("--output", f"folder {str(parent)!r} does not exist (or is not a folder); create it first")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("--output", f"{str(path)!r} is not writable")


def export_results(results: Path, fmt: str, output: Path | None = None, study: str | None = None, *,
                   tidy: bool = True) -> Path:
    """``nnphys export``: every check that needs no writing first (parquet support, the output
    path, the store read-only, the study filter), then :func:`export`; returns the path written."""
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("--format", "parquet needs pyarrow: pip install 'nnphys[parquet]'") from None
    if output is not None:
        check_output(output)
    with open_readonly(results) as store:
        if study is not None and study not in store.studies():
            raise ConfigError("--study", f"no results of {study!r} in {str(results)!r}; stored: "
                                         f"{', '.join(store.studies()) or '(none)'}")
        check_output(output if output is not None else store.root / f"results.{fmt}")
        try:
            return export(store, fmt, output, study, tidy=tidy)
        except OSError as e:
            if e.filename is None:
                raise
            raise ConfigError("--output", f"cannot write {e.filename} ({e.strerror or e})") from None
