"""The report's verdict x stability overview: the data it draws and the figure it writes."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

from nnphys.lab import overview  # noqa: E402
from nnphys.lab.stability import FRAGILE_BELOW  # noqa: E402


def _rep(name, verdicts, agree=None, head=()):
    claims = [SimpleNamespace(id=f"C{i}", verdict=v, tag="paper" if i % 2 else "derived") for i, v in enumerate(verdicts)]
    st = None if agree is None else SimpleNamespace(agree=dict(zip((c.id for c in claims), agree)),
                                                   fragile=lambda cid, a=dict(zip((c.id for c in claims), agree)): a[cid] < FRAGILE_BELOW)
    return SimpleNamespace(name=name, claims=claims, stability=st,
                           headline=lambda: [c for c in claims if c.id in head])


def test_rows_carry_verdict_stability_tag_and_headline():
    reps = [_rep("a", ["holds", "fails", "uninformative"], [1.0, 0.5, 0.9], head=("C1",)), _rep("b", ["inconclusive"])]
    rows = overview.rows_of(reps)
    assert [r[0] for r in rows] == ["a", "b"]
    a = rows[0][1]
    assert [t["verdict"] for t in a] == ["holds", "fails", "uninformative"]
    assert [t["fragile"] for t in a] == [False, True, False]
    assert [t["headline"] for t in a] == [False, True, False]
    assert rows[1][1][0]["agree"] is None and rows[1][1][0]["fragile"] is False


def test_figure_draws_one_tile_per_claim_in_its_verdict_colour(tmp_path):
    reps = [_rep("a", ["holds", "fails"] * 8, [0.95] * 16), _rep("b", ["uninformative"], [0.7])]
    fig = overview.figure(overview.rows_of(reps))
    tiles = [p for p in fig.axes[0].patches]
    assert len(tiles) == 17  # 16 claims wrap onto two lines, plus one
    cols = [matplotlib.colors.to_hex(p.get_facecolor()) for p in tiles]
    assert cols[:2] == [overview.COLOURS["holds"], overview.COLOURS["fails"]]
    assert tiles[-1].get_hatch() == "///"  # 0.7 < FRAGILE_BELOW
    png = overview.write(reps, tmp_path)
    assert png is not None and png.stat().st_size > 1000 and (tmp_path / "overview.pdf").exists()


def test_no_claims_no_figure(tmp_path):
    assert overview.write([_rep("a", [])], tmp_path) is None
