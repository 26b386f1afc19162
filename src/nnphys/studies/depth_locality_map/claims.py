"""The claims of study ``depth-locality-map``: M1-M4, depth-locality's C1-C4 over the map's cells.

Each map cell gives one C1, C2 and C3 protocol cell (:func:`nnphys.studies.depth_locality.cells.depth_cell`:
paired per-seed L_min vs L_max effects in trivial units, intention to treat, room to move, the C8
regime, power) and ``P.judge`` aggregates them under the very rules of depth-locality's C1-C3 (one
aggregation rule, the same in the study and the map). The evidence lists every cell, judged or
uninformative with its reason, so the map still says *where* an effect shows.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from nnphys.studies import _kit
from nnphys.studies import protocol as P
from nnphys.studies._kit import Missing
from nnphys.studies.base import Claim, Result, canonical_json
from nnphys.studies.depth_locality import claims as dl_claims
from nnphys.studies.depth_locality.cells import Runs, depth_cell, net_key, ntk_cell, planned
from nnphys.studies.depth_locality_map.spec import Spec

SOURCE = {"M1": "C1", "M2": "C2", "M3": "C3", "M4": "C4"}  # the depth-locality claim each map claim applies
BOOK = _kit.ClaimBook()


def cell_name(c: dict[str, Any]) -> str:
    kind = c.get("kind", "regression")
    return f"{c['label']} d={c['d']} N={c['N']} H={c['width']} k={c['k']}" + ("" if kind == "regression" else f" {kind}")


def map_cells(spec: Spec, results: list[Result]) -> list[dict[str, Any]]:
    """Per map cell: its settings and its C1, C2, C3 protocol cells (``None`` where results are missing,
    with ``missing`` naming them)."""
    out = []
    keyed = {canonical_json(r.params): r for r in results}  # once: analyse runs >= 200 times in the bootstrap
    for c in spec.cells():
        plan = planned(spec.cell_spec(c))  # cached: the harness calls analyse many times
        runs = Runs(plan, [keyed[k] for k in plan if k in keyed], net_key)
        row: dict[str, Any] = {**c, "name": cell_name(c), "missing": None}
        for m, cid in SOURCE.items():
            if cid == "C4" and not spec.kernels:
                row[cid] = None
                continue
            try:
                cell = ntk_cell if cid == "C4" else functools.partial(depth_cell, cid)
                row[cid] = cell(runs, "main", "main", c["k"], c["N"], spec.depths[0], spec.depths[-1],
                                BOOK.claims[m].rule, label=cell_name(c))
            except Missing as e:
                row[cid], row["missing"] = None, row["missing"] or e.what  # the first missing input
        out.append(row)
    return out


def context(spec: Spec, results: list[Result]) -> list[dict[str, Any]]:
    """What every claim reads: the map's cells (:func:`map_cells`)."""
    return map_cells(spec, results)


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    return BOOK.analyse(spec, context(spec, results))


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """Seeds drawn with replacement, one draw shared by every job (as depth-locality's)."""
    return dl_claims.resample(results, rng)


def _claim(cid: str, cells: list[dict[str, Any]], spec: Spec) -> Claim:
    src = SOURCE[cid]
    judged = [c[src] for c in cells if c[src] is not None]
    if not judged:
        raise Missing("net results of every cell")
    j = P.judge(judged, BOOK.claims[cid].rule)
    missing = [f"{c['name']}: {c['missing']}" for c in cells if c[src] is None]
    j.evidence.update({"missing_cells": missing, "seeds": spec.n_seeds, "depths": [spec.depths[0], spec.depths[-1]]})
    return BOOK.judged(cid, j)


@BOOK.claim("M1", tag="paper", rule=dl_claims.CLAIMS["C1"].rule)
def m1(spec: Spec, cells: list[dict[str, Any]]) -> Claim:
    """C1 (depth helps k-local) over the map's cells, under C1's rule (P.judge over the informative
    cells)

    Rule: depth-locality's C1 rule, each map cell one C1 cell (the local error at the shallowest minus
    the deepest depth, per seed, in trivial units), pooled over the informative cells."""
    return _claim("M1", cells, spec)


@BOOK.claim("M2", tag="paper", rule=dl_claims.CLAIMS["C2"].rule)
def m2(spec: Spec, cells: list[dict[str, Any]]) -> Claim:
    """C2 (depth hurts k-global) over the map's cells, under C2's rule

    Rule: depth-locality's C2 rule, each map cell one C2 cell (the global error at the deepest minus
    the shallowest depth), pooled over the informative cells."""
    return _claim("M2", cells, spec)


@BOOK.claim("M3", tag="paper", rule=dl_claims.CLAIMS["C3"].rule)
def m3(spec: Spec, cells: list[dict[str, Any]]) -> Claim:
    """C3 (interplay: depth favours k-local over k-global) over the map's cells, under C3's rule

    Rule: depth-locality's C3 rule, each map cell one C3 cell (the per-seed interaction contrast, room
    on both targets), pooled over the informative cells."""
    return _claim("M3", cells, spec)


@BOOK.claim("M4", tag="paper", rule=dl_claims.CLAIMS["C4"].rule)
def m4(spec: Spec, cells: list[dict[str, Any]]) -> Claim:
    """C4 (the NTK does not capture the nets' depth dependence: the net-NTK local gap grows with depth)
    over the map's cells, under C4's rule: the NTK half of the map's headline

    Rule: depth-locality's C4 rule, each map cell one C4 cell (per seed, the NTK's change of the local
    error from the shallowest to the deepest depth minus the net's, on the same data set, matched
    sigma_w^2, sigma_b^2), pooled over the informative cells. Not run without ``kernels``."""
    if not spec.kernels:
        return BOOK.inconclusive("M4", "not run (kernels = false)", run=False)
    return _claim("M4", cells, spec)


CLAIMS = BOOK.claims  # {id: ClaimInfo(statement, tag, rule)}
