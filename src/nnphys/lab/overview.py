"""The report's one-glance figure: every claim of every study, its verdict and its stability.

One row per study, one tile per claim in the study's order. Colour: the verdict (green holds,
red fails, amber inconclusive, grey uninformative). The number under the id: the verdict's
stability (bootstrap agreement, :mod:`nnphys.lab.stability`), "n/a" when the study does not
resample its seeds; a fragile verdict (agreement below :data:`~nnphys.lab.stability.FRAGILE_BELOW`)
is hatched. A thick frame marks the study's headline claims; the tag ([paper], [derived],
[default]) is the letter in the tile's corner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from nnphys.lab.stability import FRAGILE_BELOW

COLOURS = {"holds": "#4caf50", "fails": "#e53935", "inconclusive": "#ffb300", "uninformative": "#bdbdbd"}
TAG_LETTER = {"paper": "P", "derived": "D", "default": "d"}
MAX_COLS = 12  # tiles per line; a study with more claims wraps onto further lines


def rows_of(reports: Sequence[Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``[(study, [{id, verdict, tag, agree, fragile, headline}, ...]), ...]`` from the report's
    study reports (the data the figure draws; tests read it)."""
    out = []
    for rep in reports:
        heads = {c.id for c in rep.headline()} if rep.claims else set()
        st = rep.stability
        tiles = [{"id": c.id, "verdict": c.verdict, "tag": c.tag,
                  "agree": None if st is None else st.agree.get(c.id),
                  "fragile": bool(st is not None and st.fragile(c.id)), "headline": c.id in heads}
                 for c in rep.claims]
        out.append((rep.name, tiles))
    return out


def figure(rows: list[tuple[str, list[dict[str, Any]]]]):
    """The matplotlib figure of :func:`rows_of`'s rows (None when no study has a claim)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    lines = []  # (label, tiles of one line)
    for name, tiles in rows:
        if not tiles:
            continue
        for i in range(0, len(tiles), MAX_COLS):
            lines.append((name if i == 0 else "", tiles[i:i + MAX_COLS]))
    if not lines:
        return None
    ncols = max(len(t) for _, t in lines)
    fig, ax = plt.subplots(figsize=(2.2 + 0.78 * ncols, 0.9 + 0.62 * len(lines)), layout="constrained")
    for r, (label, tiles) in enumerate(lines):
        y = len(lines) - 1 - r
        ax.text(-0.15, y + 0.45, label, ha="right", va="center", fontsize=9)
        for c, t in enumerate(tiles):
            ax.add_patch(Rectangle((c + 0.04, y + 0.06), 0.92, 0.8, facecolor=COLOURS.get(t["verdict"], "white"),
                                   edgecolor="black", linewidth=2.2 if t["headline"] else 0.5,
                                   hatch="///" if t["fragile"] else None))
            box = dict(facecolor="white", alpha=0.8, linewidth=0, pad=0.6) if t["fragile"] else None
            ax.text(c + 0.5, y + 0.58, t["id"], ha="center", va="center", fontsize=8.5, fontweight="bold", bbox=box)
            stab = "n/a" if t["agree"] is None else f"{t['agree']:.0%}"
            ax.text(c + 0.5, y + 0.3, stab, ha="center", va="center", fontsize=8, bbox=box)
            ax.text(c + 0.9, y + 0.8, TAG_LETTER.get(t["tag"], "?"), ha="right", va="top", fontsize=6.5)
    ax.set_xlim(-0.05, ncols + 0.05)
    ax.set_ylim(-0.05, len(lines) + 0.05)
    ax.axis("off")
    handles = [Patch(facecolor=col, edgecolor="black", label=v) for v, col in COLOURS.items()]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label=f"fragile (< {FRAGILE_BELOW:.0%})"))
    handles.append(Patch(facecolor="white", edgecolor="black", linewidth=2.2, label="headline claim"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8,
              frameon=False, handlelength=1.5)
    ax.set_title("Verdicts and their stability (letter: tag P = [paper], D = [derived], d = [default])", fontsize=9)
    return fig


def write(reports: Sequence[Any], directory: Path) -> Path | None:
    """Draw the overview into ``directory/overview.png`` (and ``.pdf``); its path, or None when
    no study has a claim."""
    import matplotlib.pyplot as plt

    fig = figure(rows_of(reports))
    if fig is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / "overview.png"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(directory / "overview.pdf", bbox_inches="tight")
    plt.close(fig)
    return png
