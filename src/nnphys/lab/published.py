"""Pre-registration bookkeeping: which rule version each published verdict was reached under.

``published_rules.json`` (beside this module, committed with the guides) maps
``study -> scale -> {"commit", "generated", "rules": {claim id: rule version}}`` for every
results block of ``docs/studies/`` (``python -m nnphys.lab.docs_tables`` records it when it fills
a block). A claim whose current rule version differs from the one published at the same scale —
or that was published before versions were recorded — was revised after a published run: the
report marks it, and its guide's history must say what changed, why and which verdict moved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("published_rules.json")


def load(path: Path = PATH) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def record(study: str, scale: str, commit: str | None, generated: str, rules: dict[str, str],
           path: Path = PATH) -> None:
    """Store the rule versions of a newly published block (replaces that study's scale entry)."""
    pub = load(path)
    pub.setdefault(study, {})[scale] = {"commit": commit, "generated": generated, "rules": dict(sorted(rules.items()))}
    path.write_text(json.dumps(pub, indent=1, sort_keys=True) + "\n")


def revised(pub: dict[str, Any], study: str, scale: str | None, cid: str, version: str | None) -> str | None:
    """A one-line mark when claim ``cid`` was judged by another rule in the published ``scale``
    run of ``study``; ``None`` when it was not published there or the rule is unchanged."""
    entry = (pub.get(study) or {}).get(scale or "")
    if entry is None or version is None:
        return None
    old = entry.get("rules", {}).get(cid)
    if old == version:
        return None
    when = f"{entry.get('generated', '?')}, commit {str(entry.get('commit'))[:12]}"
    if old is None:
        return f"rule revised after a published run ({scale}, {when}: rule not versioned or claim new)"
    return f"rule revised after a published run ({scale}, {when}: rule {old})"
