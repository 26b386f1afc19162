"""The figure of study ``depth-locality-map``: the regime map (where the C3 interplay shows).

Every cell is drawn and labelled: its colour says the direction of the C3 interaction (a colour
legend under the panels names each colour), its text gives the estimate ``d ± s.e.`` and whether the
cell is informative; an uninformative cell is hatched, a cell with no data says "missing". No cell is
left blank, so an informative cell cannot be mistaken for an empty one."""

from __future__ import annotations

import math
from typing import Any

from nnphys.studies import _kit
from nnphys.studies import protocol as P
from nnphys.studies.base import Figure, Result
from nnphys.studies.depth_locality_map.claims import map_cells
from nnphys.studies.depth_locality_map.spec import Spec

# cell category -> (colour, legend text); the order is the legend's
CATEGORY = {
    "for": ("#4c8fd0", "interplay: d > 0 (one-sided p < α)"),
    "against": ("#d9534f", "opposite: d < 0 (one-sided p < α)"),
    "neither": ("#d0d0d0", "neither significant"),
    "untested": ("#fff2b3", "no test (no finite s.e.)"),
    "missing": ("#ffffff", "missing (no results)"),
}
UNINFORMATIVE_HATCH = "///"


def init_name(label: str) -> str:
    """An init cell's label in words: ``he_normal:1`` -> ``He normal, σ_w²=1``."""
    fam, _, scale = label.partition(":")
    name = {"torch_default": "PyTorch default", "he_normal": "He normal", "lecun_normal": "LeCun normal",
            "he_uniform": "He uniform", "glorot_normal": "Glorot normal"}.get(fam, fam.replace("_", " "))
    return f"{name}, σ_w²={scale}" if scale else name


def category(c3: Any) -> str:
    """The colour category of a C3 protocol cell (``None``: missing)."""
    if c3 is None:
        return "missing"
    pg, pl = P.p_greater(c3.effect), P.p_less(c3.effect)
    if math.isnan(pg) or math.isnan(pl):
        return "untested"
    return "for" if pg < P.ALPHA else ("against" if pl < P.ALPHA else "neither")


def cell_text(c3: Any) -> str:
    """Two lines: the estimate and the cell's state (never empty)."""
    if c3 is None:
        return "missing"
    e = c3.effect
    est = f"d={e.mean:.3g}" + (f"\n±{e.se:.2g}" if math.isfinite(e.se) else "") if math.isfinite(e.mean) else "d n/a"
    return f"{est}\n{'informative' if c3.informative else 'uninformative'}"


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """Phase diagram: one panel per (d, H, k), rows = init cells, columns = N; colour = the C3 cell's
    interaction effect (blue: significantly in the claimed direction at the one-sided alpha, red:
    significantly opposite, grey: neither), with a colour legend; text: the estimate and whether the
    cell is informative; hatched: uninformative."""
    from matplotlib.patches import Patch, Rectangle

    cells = map_cells(spec, results)
    panels = sorted({(c["d"], c["width"], c["k"], c.get("kind", "regression")) for c in cells})
    ncols = min(len(panels), 2)
    nrows = -(-len(panels) // ncols)
    fig, axes = _kit.subplots(nrows, ncols, width=max(4.2, 1.9 + 1.2 * len(spec.ns)),
                              height=max(2.6, 1.3 + 0.85 * len(spec.inits)))
    seen: set[str] = set()
    any_uninformative = False
    for ax, (d, w, k, kind) in zip(axes, panels):
        for c in cells:
            if (c["d"], c["width"], c["k"], c.get("kind", "regression")) != (d, w, k, kind):
                continue
            i, j = spec.inits.index(c["label"]), spec.ns.index(c["N"])
            c3 = c["C3"]
            cat = category(c3)
            seen.add(cat)
            unin = c3 is not None and not c3.informative
            any_uninformative |= unin
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=CATEGORY[cat][0], edgecolor="black", lw=0.8,
                                   hatch=UNINFORMATIVE_HATCH if unin else None))
            ax.text(j, i, cell_text(c3), ha="center", va="center", fontsize=_kit.LEGEND_PT,
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0, "pad": 1.5})
        ax.set_xlim(-0.5, len(spec.ns) - 0.5)
        ax.set_ylim(len(spec.inits) - 0.5, -0.5)
        ax.set_xticks(range(len(spec.ns)), [str(n) for n in spec.ns])
        ax.set_yticks(range(len(spec.inits)), [init_name(s) for s in spec.inits])
        ax.set_xlabel("training-set size N")
        ax.set_title(f"input dim d={d}, width H={w}, locality k={k}"
                     + ("" if kind == "regression" else f",\n{kind} labels (classification error, d+1 if d even)"))
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    handles = [Patch(facecolor=CATEGORY[c][0], edgecolor="black", label=CATEGORY[c][1]) for c in CATEGORY
               if c in seen or c in ("for", "against", "neither")]
    if any_uninformative:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=UNINFORMATIVE_HATCH,
                             label="uninformative (room, regime or power)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=_kit.LEGEND_PT,
               title="C3 interaction d = [global(L_max) − global(L_min)] − [local(L_max) − local(L_min)]",
               title_fontsize=_kit.LEGEND_PT)
    return [Figure("regime_map", fig,
                   "Regime map: the C3 cell's interaction d = [glob(L_max) - glob(L_min)] - [loc(L_max) - loc(L_min)] "
                   "(paired over seeds; the text gives d ± s.e.); blue = significantly > 0 (the interplay's direction, "
                   "one-sided p < 0.05, uncorrected), red = significantly < 0, grey = neither; hatched = uninformative "
                   f"(room, regime or power); 'missing' = no results. {spec.n_seeds} seeds per cell.",
                   claims=("M1", "M2", "M3"))]
