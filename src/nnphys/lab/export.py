"""``nnphys export``: every stored job as one flat row (params.* and metrics.* columns)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from nnphys.errors import ConfigError
from nnphys.lab.store import Store


def _flat(prefix: str, d: dict[str, Any], out: dict[str, Any]) -> None:
    for k, v in d.items():
        name = f"{prefix}.{k}"
        if isinstance(v, dict):
            _flat(name, v, out)
        elif isinstance(v, (list, tuple)):
            out[name] = json.dumps(v)
        else:
            out[name] = v


def flat_rows(store: Store, study: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for r in store.rows(study):
        row = {k: r[k] for k in ("key", "study", "status", "started", "ended", "error", "arrays")}
        _flat("params", r["params"], row)
        _flat("metrics", r["metrics"], row)
        _flat("versions", r["versions"], row)
        rows.append(row)
    return rows


def export(store: Store, fmt: str, out: Path | None = None, study: str | None = None) -> Path:
    """Write the rows as CSV or Parquet; returns the path written."""
    if fmt not in ("csv", "parquet"):
        raise ConfigError("--format", f"must be csv or parquet (got {fmt!r})")
    rows = flat_rows(store, study)
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    out = out or store.root / f"results.{fmt}"
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
        if len(kinds) > 1 and not kinds <= {int, float}:
            vals = [None if v is None else str(v) for v in vals]  # mixed types: keep them readable
        elif kinds == {int, float}:
            vals = [None if v is None else float(v) for v in vals]
        table[c] = vals
    pq.write_table(pa.table(table), out)
    return out
