"""docs_tables: the results blocks of the guides come from a run (stamp, verdicts, stability)."""

from __future__ import annotations

import re

import json
import shutil
from pathlib import Path

import pytest

import test_report_toy as toy
from nnphys.lab.docs_tables import main, update_docs
from nnphys.lab.report import write_report
from nnphys.lab.store import Store

DOCS = Path(__file__).resolve().parents[1] / "docs" / "studies"

GUIDE = """# Study `rtoy`

Intro text stays.

<!-- results:begin -->
| claim | verdict |
|---|---|
| E1 | typed by hand |
<!-- results:end -->

Between blocks.

<!-- results:begin scale=paper -->
paper numbers stay until a paper run
<!-- results:end -->
Tail.
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("docs_tables")
    study = toy.make_study()
    fragile = toy.make_study("rtoy-fragile")
    m = study.run(study.jobs(toy.Spec(effect=0.0))[0])["mean"]
    with Store(tmp_path / "res") as store:
        toy.fill_store(store, study, toy.Spec(effect=3.0))
        toy.fill_store(store, fragile, toy.Spec(effect=0.0, threshold=m - 1e-9))
        toy.fill_store(store, toy.make_study("rtoy-nohook", with_resample=False), toy.Spec())
        write_report(store, [study, fragile, toy.make_study("rtoy-nohook", with_resample=False)])
    return tmp_path / "res"


def test_blocks_between_markers_are_regenerated(results, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("rtoy", "rtoy-fragile", "rtoy-nohook"):
        (docs / f"{name}.md").write_text(GUIDE)
    assert main([str(results), "--docs", str(docs)]) == 0
    card = json.loads((results / "scorecard.json").read_text())
    text = (docs / "rtoy.md").read_text()
    assert "typed by hand" not in text and "Intro text stays." in text and text.endswith("<!-- results:end -->\nTail.\n")
    assert "paper numbers stay until a paper run" in text  # a scale=paper block is not filled by a quick run
    assert f"from the report of {card['generated']}" in text and "scale `quick`" in text
    assert "commit not recorded" in text and "2/2 jobs done" in text
    assert re.search(r"\| E1 \| paper \| holds \| 100 % \| (`[0-9a-f]{12}`|—) \| mean", text), text
    assert "no verdict was fragile in this run" in text
    frag = (docs / "rtoy-fragile.md").read_text()
    assert "**fragile**" in frag and "fragile in this run: E1 (" in frag
    assert "Verdict stability: n/a" in (docs / "rtoy-nohook.md").read_text()
    # idempotent: a second pass changes nothing
    before = {p.name: p.read_text() for p in docs.iterdir()}
    out = update_docs(results, docs)
    assert all("unchanged" in what for _, what in out)
    assert before == {p.name: p.read_text() for p in docs.iterdir()}


def test_guides_without_markers_are_left_alone(results, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rtoy.md").write_text("# no markers\n")
    out = dict(update_docs(results, docs))
    assert "markers; left alone" in out["rtoy"] and "no guide" in out["rtoy-fragile"]
    assert (docs / "rtoy.md").read_text() == "# no markers\n"


def test_real_guides_on_temporary_copies(results, tmp_path):
    # the repository's guides, copied: whatever markers they have, text outside them survives
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    (docs / "rtoy.md").write_text(GUIDE)
    before = {p.name: p.read_text() for p in docs.glob("*.md") if p.name != "rtoy.md"}
    update_docs(results, docs)
    assert before == {p.name: p.read_text() for p in docs.glob("*.md") if p.name != "rtoy.md"}


def test_user_errors_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert main([str(tmp_path)]) == 2
    assert "no results store" in capsys.readouterr().err


def test_a_study_s_own_tables_come_from_the_same_run(tmp_path):
    """``Study.tables`` (e.g. noise-enhancement's per-cell table) is rendered from the run's results
    into the block, next to the claims table; a study without it adds nothing."""
    import dataclasses

    from nnphys.studies import register, unregister

    def tables(spec, results):
        return f"| extra | {len(results)} jobs, effect {spec.effect:g} |"

    study = register(dataclasses.replace(toy.make_study("rtoy-tables"), tables=tables))
    try:
        with Store(tmp_path / "res") as store:
            toy.fill_store(store, study, toy.Spec(effect=2.5))
            write_report(store, [study])
        n_jobs = len(study.jobs(toy.Spec(effect=2.5)))
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "rtoy-tables.md").write_text(GUIDE)
        assert main([str(tmp_path / "res"), "--docs", str(docs)]) == 0
        text = (docs / "rtoy-tables.md").read_text()
        block = text.split("<!-- results:begin -->")[1].split("<!-- results:end -->")[0]
        assert f"| extra | {n_jobs} jobs, effect 2.5 |" in block
    finally:
        unregister("rtoy-tables")


def test_rule_versions_recorded_and_revisions_marked(tmp_path):
    """Publishing records each claim's rule version; a later rule at the same scale is marked."""
    from nnphys.lab import published

    reg = tmp_path / "published.json"
    published.record("s", "quick", "abc", "2026-01-01", {"C1": "v1", "C2": "v2"}, reg)
    pub = published.load(reg)
    assert published.revised(pub, "s", "quick", "C1", "v1") is None
    assert "rule v1" in published.revised(pub, "s", "quick", "C1", "v9")
    assert "not versioned or claim new" in published.revised(pub, "s", "quick", "C3", "v3")
    assert published.revised(pub, "s", "medium", "C1", "v9") is None  # never published at medium
    published.record("s", "quick", "def", "2026-01-02", {"C1": "v9"}, reg)
    assert published.revised(published.load(reg), "s", "quick", "C1", "v9") is None
