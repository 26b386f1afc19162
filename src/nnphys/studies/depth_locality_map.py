"""Study ``depth-locality-map``: where does the depth-locality interplay live? (issue 10 item 2)

A grid of *cells* over the init family and scale, the training-set size N, the input dimension d,
the width H and the target order k. Each cell is the main grid of study ``depth-locality`` at those
settings (both targets, every depth, ``n_seeds`` seeds, lr tuned per job; the very same jobs, so a
store shares them) and gets, from ``_depth_cells``:

- the informativeness verdict with its reason (the rule fixed before outcomes, see ``_depth_cells``);
- the per-seed least-squares depth slopes of the local and global errors with 2 s.e. intervals,
  their paired gap, the L_min and L_max errors, and the seeds a significant local slope would need;
- the C1/C2/C3 cell verdicts.

Claims M1-M3 say *where* C1-C3 hold: among the informative cells, a claim ``holds`` on the map when
it holds in at least ``holds_frac`` of them, ``fails`` when it fails in more than ``1 - holds_frac``,
and is ``inconclusive`` otherwise or when no cell is informative; the evidence lists the cells.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import Field, field_validator

from nnphys.studies import _kit
from nnphys.studies import depth_locality as dl
from nnphys.studies._depth_cells import aggregate
from nnphys.studies._kit import Missing
from nnphys.studies.base import Claim, ClaimInfo, Figure, Result, Study, StudySpec, canonical_json

CLAIMS = {
    "M1": ClaimInfo("C1 (depth helps k-local) holds in >= holds_frac of the informative cells of the map", "paper"),
    "M2": ClaimInfo("C2 (depth hurts k-global) holds in >= holds_frac of the informative cells of the map", "paper"),
    "M3": ClaimInfo("C3 (interplay: local slope < 0 < global slope, both established) holds in >= holds_frac "
                    "of the informative cells of the map", "paper"),
}
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
    informative_l1_frac: float = Field(0.8, gt=0, le=1, description="[default] informativeness rule (1), as depth-locality")
    trivial_frac: float = Field(0.9, gt=0, le=1, description="[default] informativeness rule (2), as depth-locality")
    holds_frac: float = Field(0.5, gt=0, le=1, description="[default] a map claim holds in >= this fraction of the "
                                                           "informative cells (fixed before outcomes)")

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
                       informative_l1_frac=self.informative_l1_frac, trivial_frac=self.trivial_frac,
                       min_informative_n=1, kta_points=0, kernel_baseline=False, alphas=[1.0], width_sweep=[], robustness=[],
                       control_k1=False, control_permutation=False, blind_datasets=0, device=self.device)


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
    """Per cell: its settings, the depth-locality cell trend and the C1-C3 cell verdicts."""
    out = []
    keyed = {canonical_json(r.params): r for r in results}  # once: analyse runs >= 200 times in the bootstrap
    for c in spec.cells():
        cs = spec.cell_spec(c)
        mine = [keyed[k] for k in map(canonical_json, dl.jobs(cs)) if k in keyed]
        t = dl.main_cells(dl._runs(cs, mine), cs)[0]
        dead = sorted({(r.params["target"], r.params["depth"]) for r in mine if r.status == "diverged"})
        if dead and not t["informative"]:
            # a net whose every member diverged says nothing about depth: the cell cannot discriminate
            # (uninformative, named), which is not the same as results still to come (missing)
            t = {**t, "informative": False,
                 "reason": "diverged: every seed of " + ", ".join(f"{tg} L={L}" for tg, L in dead)}
        verdicts = {cid: aggregate([t], cid, [c["k"]], 1)[0] for cid in ("C1", "C2", "C3")}
        lo, gl = t["local"], t["global"]
        L0, Lm = str(spec.depths[0]), str(t["L_max"]) if t["L_max"] is not None else None
        out.append({**c, "informative": t["informative"], "reason": t["reason"], "L_max": t["L_max"],
                    "err_L1": {"local": lo["mean"][L0], "global": gl["mean"][L0]},
                    "err_Lmax": {"local": lo["mean"].get(Lm) if Lm else None, "global": gl["mean"].get(Lm) if Lm else None},
                    "slope_local": lo.get("slope"), "slope_global": gl.get("slope"), "slope_gap": t.get("slope_gap"),
                    "seeds_needed_local_slope": (lo.get("slope") or {}).get("seeds_needed"), "verdicts": verdicts})
    return out


def _name(c: dict[str, Any]) -> str:
    return f"{c['label']} d={c['d']} N={c['N']} H={c['width']} k={c['k']}"


def claim_map(cid: str, cells: list[dict[str, Any]], spec: Spec) -> Claim:
    src = "C" + cid[1]
    if all(c["informative"] is None for c in cells):
        raise Missing("net results of every cell")
    inf = [c for c in cells if c["informative"]]
    hold = [c for c in inf if c["verdicts"][src] == "holds"]
    fail = [c for c in inf if c["verdicts"][src] == "fails"]
    if not inf:
        verdict = "inconclusive"
    elif len(hold) >= spec.holds_frac * len(inf):
        verdict = "holds"
    elif len(fail) > (1 - spec.holds_frac) * len(inf):
        verdict = "fails"
    else:
        verdict = "inconclusive"
    unin = [c for c in cells if not c["informative"]]
    summary = (f"{src} holds in {len(hold)}/{len(inf)} informative cells ({'; '.join(map(_name, hold)) or 'none'}); "
               f"fails in {len(fail)} ({'; '.join(map(_name, fail)) or 'none'}); "
               f"{len(unin)}/{len(cells)} cells uninformative or missing")
    return BOOK.make(cid, verdict, {"cells": cells, "informative": len(inf), "holds_in": [_name(c) for c in hold],
                                    "fails_in": [_name(c) for c in fail], "holds_frac": spec.holds_frac,
                                    "seeds": spec.n_seeds}, summary)


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    cells = map_cells(spec, results)
    return [BOOK.guard(cid, claim_map, cid, cells, spec) for cid in CLAIMS]


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """Phase diagram: one panel per (d, H, k), rows = init cells, columns = N; colour = sign and
    significance (2 s.e., paired over seeds) of local slope - global slope; U = uninformative."""
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
            g = c["slope_gap"]  # global - local
            if g and g.get("significant") is not None:
                grid[i, j] = 0 if not g["significant"] else (-1 if g["mean"] > 0 else 1)  # -1: local < global
            txt = "U" if c["informative"] is False else ("?" if c["informative"] is None else c["verdicts"]["C3"][0].upper())
            ax.text(j, i, txt, ha="center", va="center", fontsize=9)
        ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(spec.ns)), [str(n) for n in spec.ns])
        ax.set_yticks(range(len(spec.inits)), spec.inits)
        ax.set_xlabel("N")
        ax.set_title(f"d={d}, H={w}, k={k}")
    return [Figure("regime_map", fig,
                   "Regime map: blue = local depth slope significantly below the global one (the interplay's "
                   "direction), red = significantly above, grey = n.s., blank = not evaluable; letters: C3 cell "
                   "verdict (H/F/I), U = uninformative (rule of depth-locality; coloured all the same), ? = missing. "
                   f"{spec.n_seeds} seeds per cell.", claims=("M1", "M2", "M3"))]


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    return dl.resample(results, rng)


STUDY = Study(
    name="depth-locality-map",
    papers=dl.STUDY.papers,
    spec=Spec, presets=PRESETS, jobs=jobs, run=run, analyse=analyse, figures=figures, claims=CLAIMS,
    schema_version=1,
    description="Regime map of the depth-locality interplay over init family/scale, N, d, width and k: per cell "
                "the local and global depth slopes with CIs, informativeness and the C1-C3 verdicts.",
    resample=resample,
    headline=("M1", "M2", "M3"),  # [default] where C1-C3 hold over the map
)
