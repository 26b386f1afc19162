"""Study ``depth-locality-map``: where does the depth-locality interplay live? (issue 10 item 2)

A grid of *cells* over the init family and scale, the training-set size N, the input dimension d,
the width H and the target order k. Each cell is the main grid of study ``depth-locality`` at those
settings (both targets, every depth, ``n_seeds`` seeds, lr tuned per job; the very same jobs, so a
store shares them).

Claims M1-M3 are C1-C3 over the map: each map cell gives one C1, C2 and C3 protocol cell
(``_depth_cells.depth_cell``: paired per-seed L_min vs L_max effects in trivial units, ITT, room to move,
C8 regime, power) and ``P.judge`` aggregates them under the very rules of depth-locality's C1-C3 (one
aggregation rule, the same in the study and the map). The evidence lists every cell, judged or
uninformative with its reason, so the map still says *where* an effect shows.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator

from nnphys.studies import _depth_calibration, _kit
from nnphys.studies import depth_locality as dl
from nnphys.studies import protocol as P
from nnphys.studies._depth_cells import depth_cell
from nnphys.studies._kit import Missing
from nnphys.studies.base import Claim, ClaimInfo, Figure, Result, Study, StudySpec, canonical_json

CLAIMS = {
    "M1": ClaimInfo("C1 (depth helps k-local) over the map's cells, under C1's rule (P.judge over the "
                    "informative cells)", "paper", rule=dl.CLAIMS["C1"].rule),
    "M2": ClaimInfo("C2 (depth hurts k-global) over the map's cells, under C2's rule", "paper",
                    rule=dl.CLAIMS["C2"].rule),
    "M3": ClaimInfo("C3 (interplay: depth favours k-local over k-global) over the map's cells, under "
                    "C3's rule", "paper", rule=dl.CLAIMS["C3"].rule),
}
SOURCE = {"M1": "C1", "M2": "C2", "M3": "C3"}
BOOK = _kit.ClaimBook(CLAIMS)
INITS = ("he_normal", "lecun_normal", "torch_default")


class Spec(StudySpec):
    """The map's axes and the per-cell settings (every other setting is depth-locality's default)."""

    inits: list[str] = Field(["torch_default", "he_normal:1", "he_normal"], min_length=1,
                             description="[default] init cells: 'family' or 'family:sigma_w2' (family in he_normal, "
                                         "lecun_normal, torch_default; no scale: the family's own)")
    ds: list[Annotated[int, Field(ge=3, le=4096)]] = Field([16, 32], min_length=1, description="[default] input dimensions d")
    ns: list[Annotated[int, Field(ge=2, le=10_000_000)]] = Field([1000, 2000], min_length=1, description="[default] N")
    widths: list[Annotated[int, Field(ge=1, le=65536)]] = Field([256], min_length=1, description="[default] widths H")
    ks: list[Annotated[int, Field(ge=1, le=64)]] = Field([2], min_length=1, description="[default] target orders k")
    depths: list[Annotated[int, Field(ge=1, le=1000)]] = Field([1, 2, 3, 4, 6, 8], min_length=2,
                                                                 description="[default] depths L")
    n_seeds: int = Field(5, ge=2, le=1000, description="[default] seeds per cell")
    lr_grid: list[Annotated[float, Field(gt=0, le=100)]] = Field([0.03, 0.1, 0.3], min_length=1,
                                                                   description="[default] lr grid, tuned per job on validation")
    max_epochs: int = Field(500, ge=1, le=1_000_000, description="[default] epoch cap")
    n_val: int = Field(1000, ge=0, le=1_000_000, description="[default] validation draws (lr selection only)")
    n_test: int = Field(5000, ge=10, le=10_000_000, description="[default] test draws")
    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed")

    @field_validator("inits")
    @classmethod
    def _inits(cls, v: list[str]) -> list[str]:
        for s in v:
            fam, _, scale = s.partition(":")
            if fam not in INITS:
                raise ValueError(f"family must be one of {', '.join(INITS)} (got {s!r})")
            if scale:
                try:
                    x = float(scale)
                except ValueError:
                    raise ValueError(f"scale must be a number (got {s!r})") from None
                if not (0 < x <= 100 and math.isfinite(x)):
                    raise ValueError(f"sigma_w2 must lie in (0, 100] (got {s!r})")
        if len(set(v)) != len(v):
            raise ValueError(f"must be distinct (got {v})")
        return v

    @field_validator("ds")
    @classmethod
    def _ds(cls, v: list[int], info) -> list[int]:
        ks = info.data.get("ks") or []
        if ks and min(v) < max(ks) + 1:
            raise ValueError(f"every d must be >= k+1 (got ds={v}, ks={ks})")
        return v

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"must be distinct (got {v})")
        return v

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"must be distinct (got {v})")
        return sorted(v)

    def cells(self) -> list[dict[str, Any]]:
        """One dict per cell: init, sigma_w2 (None: the family's), d, N, width, k."""
        out = []
        for s in self.inits:
            fam, _, scale = s.partition(":")
            for d in self.ds:
                for w in self.widths:
                    for n in self.ns:
                        for k in self.ks:
                            out.append({"label": s, "init": fam, "sigma_w2": float(scale) if scale else None,
                                        "d": d, "N": n, "width": w, "k": k})
        return out

    def cell_spec(self, c: dict[str, Any]) -> dl.Spec:
        """The depth-locality spec whose main grid is cell ``c`` (controls and kernels off)."""
        return dl.Spec(ks=[c["k"]], d=c["d"], n_train=[c["N"]], init=c["init"], sigma_w2=c["sigma_w2"],
                       width=c["width"], depths=self.depths, n_seeds=self.n_seeds, lr_grid=self.lr_grid,
                       max_epochs=self.max_epochs, n_val=self.n_val, n_test=self.n_test, seed=self.seed,
                       kta_points=0, kernel_baseline=False, alphas=[1.0], width_sweep=[], robustness=[],
                       control_permutation=False, blind_datasets=0, device=self.device)


PRESETS: dict[str, dict[str, Any]] = {
    # quick: two cells, a smoke test of the map (about a minute on 2 cores)
    "quick": {"inits": ["torch_default", "he_normal"], "ds": [16], "ns": [400], "widths": [64], "ks": [2],
              "depths": [1, 2, 4], "n_seeds": 3, "lr_grid": [0.03, 0.1], "max_epochs": 200, "n_val": 300,
              "n_test": 1000},
    # medium: 12 cells (3 inits x 2 d x 2 N), d in {16, 32}, H = 256, depths 1-8 (1, 2, 4, 8), 5 seeds;
    # one lr (0.1, the one the pilots selected at most depths) to approach the 60-min budget
    "medium": {"depths": [1, 2, 4, 8], "lr_grid": [0.1], "max_epochs": 300, "n_val": 0, "n_test": 2000},
    "paper": {"inits": ["torch_default", "lecun_normal", "he_normal:1", "he_normal"], "ds": [16, 32],
              "ns": [500, 1000, 2000, 5000], "widths": [256, 512], "ks": [2, 3], "depths": [1, 2, 3, 4, 6, 8, 10],
              "max_epochs": 2000, "n_test": 10_000, "n_val": 2000},
}


def jobs(spec: Spec) -> list[dict[str, Any]]:
    """The main-grid net jobs of every cell (identical to depth-locality's, so a store shares them)."""
    out, seen = [], set()
    for c in spec.cells():
        for j in dl.jobs(spec.cell_spec(c)):
            key = canonical_json(j)
            if key not in seen:
                seen.add(key)
                out.append(j)
    return out


def run(job: dict[str, Any]) -> dict[str, Any]:
    return dl.run(job)


def map_cells(spec: Spec, results: list[Result]) -> list[dict[str, Any]]:
    """Per map cell: its settings and its C1, C2, C3 protocol cells (``None`` where results are missing,
    with ``missing`` naming them)."""
    out = []
    keyed = {canonical_json(r.params): r for r in results}  # once: analyse runs >= 200 times in the bootstrap
    for c in spec.cells():
        cs = spec.cell_spec(c)
        plan = dl._plan(cs.model_dump_json(), type(cs))  # cached: the harness calls analyse many times
        runs = dl.Runs(plan, [keyed[k] for k in plan if k in keyed], dl._key)
        row: dict[str, Any] = {**c, "name": _name(c), "missing": None}
        for m, cid in SOURCE.items():
            try:
                row[cid] = depth_cell(cid, runs, "main", "main", c["k"], c["N"], spec.depths[0], spec.depths[-1],
                                      CLAIMS[m].rule, label=_name(c))
            except Missing as e:
                row[cid], row["missing"] = None, e.what
        out.append(row)
    return out


def _name(c: dict[str, Any]) -> str:
    return f"{c['label']} d={c['d']} N={c['N']} H={c['width']} k={c['k']}"


def _claim(cid: str, cells: list[dict[str, Any]], spec: Spec) -> Claim:
    src = SOURCE[cid]
    judged = [c[src] for c in cells if c[src] is not None]
    if not judged:
        raise Missing("net results of every cell")
    j = P.judge(judged, CLAIMS[cid].rule)
    missing = [f"{c['name']}: {c['missing']}" for c in cells if c[src] is None]
    j.evidence.update({"missing_cells": missing, "seeds": spec.n_seeds, "depths": [spec.depths[0], spec.depths[-1]]})
    return BOOK.judged(cid, j)


@BOOK.rule("M1")
def claim_m1(cells: list[dict[str, Any]], spec: Spec) -> Claim:
    return _claim("M1", cells, spec)


@BOOK.rule("M2")
def claim_m2(cells: list[dict[str, Any]], spec: Spec) -> Claim:
    return _claim("M2", cells, spec)


@BOOK.rule("M3")
def claim_m3(cells: list[dict[str, Any]], spec: Spec) -> Claim:
    return _claim("M3", cells, spec)


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    cells = map_cells(spec, results)
    return [BOOK.guard(cid, fn, cells, spec) for cid, fn in (("M1", claim_m1), ("M2", claim_m2), ("M3", claim_m3))]


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """Phase diagram: one panel per (d, H, k), rows = init cells, columns = N; colour = the C3 cell's
    interaction effect (blue: significantly in the claimed direction at the one-sided alpha, red:
    significantly opposite, grey: neither); letters: U = uninformative, ? = missing."""
    from matplotlib.colors import ListedColormap

    cells = map_cells(spec, results)
    panels = sorted({(c["d"], c["width"], c["k"]) for c in cells})
    fig, axes = _kit.subplots(1, len(panels), width=1.2 + 0.9 * len(spec.ns), height=1.0 + 0.5 * len(spec.inits))
    cmap = ListedColormap(["tab:blue", "lightgrey", "tab:red"])
    for ax, (d, w, k) in zip(axes, panels):
        grid = np.full((len(spec.inits), len(spec.ns)), np.nan)
        for c in cells:
            if (c["d"], c["width"], c["k"]) != (d, w, k):
                continue
            i, j = spec.inits.index(c["label"]), spec.ns.index(c["N"])
            c3 = c["C3"]
            if c3 is not None:
                grid[i, j] = -1 if P.p_greater(c3.effect) < P.ALPHA else (1 if P.p_less(c3.effect) < P.ALPHA else 0)
            txt = "?" if c3 is None else ("" if c3.informative else "U")
            ax.text(j, i, txt, ha="center", va="center", fontsize=9)
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(spec.ns)), [str(n) for n in spec.ns])
        ax.set_yticks(range(len(spec.inits)), spec.inits)
        ax.set_xlabel("N")
        ax.set_title(f"d={d}, H={w}, k={k}")
    return [Figure("regime_map", fig,
                   "Regime map: the C3 cell's interaction d = [glob(L_max) - glob(L_min)] - [loc(L_max) - loc(L_min)] "
                   "(paired over seeds); blue = significantly > 0 (the interplay's direction, one-sided p < 0.05, "
                   "uncorrected), red = significantly < 0, grey = neither; U = uninformative (room, regime or "
                   f"power), ? = missing. {spec.n_seeds} seeds per cell.", claims=("M1", "M2", "M3"))]


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    return dl.resample(results, rng)


STUDY = Study(
    name="depth-locality-map",
    papers=dl.STUDY.papers,
    spec=Spec, presets=PRESETS, jobs=jobs, run=run, analyse=analyse, figures=figures, claims=CLAIMS,
    schema_version=1,
    description="Regime map of the depth-locality interplay over init family/scale, N, d, width and k: per cell "
                "the C1-C3 protocol cells (paired L_min vs L_max effects, room, power), judged by C1-C3's rules.",
    resample=resample,
    calibration=_depth_calibration.map_calibration(),
    headline=("M1", "M2", "M3"),  # [default] where C1-C3 hold over the map
)
