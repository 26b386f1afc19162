"""The figure of study ``depth-locality-map``: the regime map (where the C3 interplay shows)."""

from __future__ import annotations

import numpy as np

from nnphys.studies import _kit
from nnphys.studies import protocol as P
from nnphys.studies.base import Figure, Result
from nnphys.studies.depth_locality_map.claims import map_cells
from nnphys.studies.depth_locality_map.spec import Spec


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
