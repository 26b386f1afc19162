"""What each recorded run was: its preset and the fields a user overrode, for the report and
the export. A run records the overrides it was given (``runs.meta["overrides"]``, the values as
the Spec took them); for a run stored before they were recorded only its scale is known (its
full spec is in the report's provenance)."""

from __future__ import annotations

import json
from typing import Any


def run_overrides(run: dict[str, Any]) -> dict[str, Any]:
    """The fields the user overrode in ``run`` (``{}`` when none or not recorded)."""
    meta = run.get("meta") if isinstance(run.get("meta"), dict) else {}
    ov = meta.get("overrides")
    return dict(ov) if isinstance(ov, dict) else {}


def overrides_text(overrides: dict[str, Any]) -> str:
    """``a=1, b=[1, 2]`` (sorted by name; values as JSON), or ``none``."""
    if not overrides:
        return "none"
    return ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(overrides.items()))


def scale_text(run: dict[str, Any]) -> str:
    """The run's preset, with ``+ overrides`` when the user changed fields of it
    (``quick + n_jobs=3``; ``custom`` for a run without a scale)."""
    scale = str(run.get("scale") or "custom")
    ov = run_overrides(run)
    return f"{scale} + {overrides_text(ov)}" if ov else scale
