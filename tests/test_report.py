"""The report: scorecard first, table of contents, claims with stability and figure links, short
evidence with the full JSON collapsible, provenance from the run's meta, legend check."""

from __future__ import annotations

import json
import re

import pytest

import test_report_toy as toy
from nnphys.errors import ConfigError
from nnphys.lab.report import SUMMARY_CHARS, short, write_report
from nnphys.lab.store import Store
from nnphys.seeding import SEED_RULE

META = {"git_commit": "0123abc", "git_dirty": True, "argv": ["nnphys", "run", "rtoy", "--set", "tag=a b"],
        "engine": "process", "workers": 2, "threads": 1, "host": "lab-host", "cpu_model": "Toy CPU 9000",
        "cpu_count": 16, "device": "cpu", "python": "3.11.7", "versions": {"numpy": "2.0", "torch": "2.13"}}


class MetaStore(Store):
    """A store whose ``runs`` rows carry provenance meta, as the CLI's store does."""

    def runs(self, study=None):
        run = self.latest_run(study)
        return [{**run, "meta": META}]


def _report(tmp_path, store_cls=Store, **spec_kw):
    study = toy.make_study()
    other = toy.make_study("rtoy-nohook", with_resample=False)
    with store_cls(tmp_path / "res") as store:
        toy.fill_store(store, study, toy.Spec(**spec_kw))
        toy.fill_store(store, other, toy.Spec(**spec_kw))
        md, html, reps = write_report(store, [study, other], n_resamples=200)
    return md.read_text(), html.read_text(), reps


def test_scorecard_opens_the_report_then_contents(tmp_path):
    md, html, reps = _report(tmp_path, effect=3.0)
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads[:2] == ["## Scorecard", "## Contents"]
    rows = [line for line in md.splitlines() if line.startswith("| [rtoy")]
    assert len(rows) == 2
    assert "[E1](#claim-rtoy-e1) **holds** (100 %)" in rows[0]  # headline = the [paper] claim; E2 is not
    assert "E2" not in rows[0].split("|")[3]
    assert "A toy paper (report tests)" in rows[0] and "quick; 2/2 jobs done" in rows[0]
    assert "The headline (E1) holds at quick scale; 2/2 claims hold; no verdict is fragile." in rows[0]
    assert "[E1](#claim-rtoy-nohook-e1) **holds** |" in rows[1]  # no stability shown without a hook
    assert html.index("id='scorecard'") < html.index("id='contents'") < html.index("id='study-rtoy'")
    # every link of the scorecard and claims tables points at an anchor that exists
    ids = set(re.findall(r"id=['\"]([^'\"]+)['\"]", html))
    hrefs = set(re.findall(r"href='#([^']+)'", html))
    assert hrefs and hrefs <= ids, hrefs - ids
    md_ids = set(re.findall(r'<a id="([^"]+)"></a>', md))
    assert set(re.findall(r"\]\(#([^)]+)\)", md)) <= md_ids


def test_claim_rows_link_figures_stability_and_short_evidence(tmp_path):
    md, html, reps = _report(tmp_path, effect=3.0)
    row = next(line for line in md.splitlines() if line.startswith("| E1 |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[4] == "100 %" and cells[6] == "[arm_means](#fig-rtoy-arm_means)"  # caption names E1
    assert len(cells[5]) <= SUMMARY_CHARS and cells[5].endswith("…") and "padding" in cells[5]
    e2 = next(line for line in md.splitlines() if line.startswith("| E2 |"))
    assert "arms=2" in e2 and "[figures](#figures-rtoy)" in e2  # no summary: compact evidence; study figures
    nohook = md[md.index('<a id="study-rtoy-nohook">'):]
    assert re.search(r'\| \*\*holds\*\*<a id="claim-rtoy-nohook-e1"></a>(<br><sub>rule [0-9a-f]{12}</sub>)? \| n/a \|',
                     nohook), nohook[:600]
    # the full evidence stays, in the collapsible JSON
    block = md[md.index("<details>"):md.index("</details>")]
    ev = json.loads(block[block.index("```json") + 7:block.rindex("```")])
    assert ev["E1"]["n"] == 30 and "E2" in ev
    assert "<details><summary>Full evidence</summary>" in html
    card = json.loads((tmp_path / "res" / "scorecard.json").read_text())
    assert card["studies"]["rtoy"]["claims"][0]["agree"] == 1.0
    assert card["studies"]["rtoy-nohook"]["stability"] is None


def test_fragile_verdict_is_marked_in_scorecard_and_table(tmp_path):
    # effect 0 with threshold at the sample mean of arm 0 makes E1 a coin flip under resampling
    study = toy.make_study()
    spec0 = toy.Spec(effect=0.0)
    m = study.run(study.jobs(spec0)[0])["mean"]
    md, html, reps = _report(tmp_path, effect=0.0, threshold=m - 1e-9)
    assert reps[0].stability.fragile("E1")
    row = next(line for line in md.splitlines() if line.startswith("| [rtoy]"))
    assert "% fragile)" in row and "fragile: E1" in row
    e1 = next(line for line in md.splitlines() if line.startswith("| E1 |"))
    assert re.search(r"\| \d+ % fragile \|", e1)
    assert "<span class='fragile'>" in html


def test_provenance_from_meta_and_seed_rule(tmp_path):
    md, html, _ = _report(tmp_path, store_cls=MetaStore, n_seeds=20)
    prov = md[md.index('<a id="study-rtoy-provenance">'):md.index('<a id="study-rtoy-nohook">')]
    assert "**git commit**: 0123abc (dirty: uncommitted changes)" in prov
    assert "**command**: nnphys run rtoy --set 'tag=a b'" in prov
    assert "**engine**: process; workers 2; threads 1" in prov
    assert "**host**: lab-host; CPU Toy CPU 9000; 16 cores" in prov
    assert "**library versions**: numpy 2.0, torch 2.13" in prov
    assert f"**seed rule**: {SEED_RULE}" in prov
    assert "**seeds**: 40 distinct values derived by the seed rule (base seed 0)" in prov
    assert "None" not in prov
    assert "200 bootstrap resamples" in prov


def test_provenance_of_an_old_store_says_not_recorded(tmp_path):
    md, _, _ = _report(tmp_path)
    assert "**git commit**: not recorded" in md and "**command**: not recorded" in md
    assert "**host**: not recorded" in md and "**device**: cpu (from the spec)" in md


def test_figures_png_pdf_and_small_legends_flagged(tmp_path):
    md, html, reps = _report(tmp_path, small_legend=True)
    figs = tmp_path / "res" / "figures" / "rtoy"
    assert (figs / "arm_means.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (figs / "arm_means.pdf").read_bytes().startswith(b"%PDF")
    assert reps[0].legend_warnings == ["tiny_legend: legend text at 6.0 pt (< 8 pt)"]
    assert "**legend too small**: tiny_legend" in md and "arm_means: legend" not in md


def test_short_cuts_at_words():
    assert short("a  b\nc") == "a b c"
    s = short("word " * 100, 30)
    assert len(s) <= 30 and s.endswith("word…")


@pytest.mark.parametrize("bad", [0, 199])
def test_report_refuses_too_few_resamples_unless_allowed(tmp_path, bad):
    study = toy.make_study()
    with Store(tmp_path / "res") as store:
        toy.fill_store(store, study, toy.Spec())
        with pytest.raises(ConfigError, match="--resamples"):
            write_report(store, [study], n_resamples=bad)
        assert not (tmp_path / "res" / "report.md").exists()
        if bad:
            _, _, reps = write_report(store, [study], n_resamples=bad, allow_fewer=True)
            assert reps[0].stability.n_resamples == bad


def test_stability_bug_is_shown_not_hiding_claims(tmp_path):
    import dataclasses

    def bad(results, rng):
        raise ZeroDivisionError("resample bug")

    study = dataclasses.replace(toy.make_study(), resample=bad)
    with Store(tmp_path / "res") as store:
        toy.fill_store(store, study, toy.Spec())
        md, _, reps = write_report(store, [study])
    text = md.read_text()
    assert reps[0].claims and "ZeroDivisionError: resample bug" in text and "| error |" in text


def test_seed_range_of_small_seeds(tmp_path):
    from nnphys.lab.report import _seed_range

    assert _seed_range([]) == "-" and _seed_range([0, 1, 2]) == "0, 1, 2"
    assert _seed_range(list(range(100, 120))) == "20 distinct values in [100, 119]"
