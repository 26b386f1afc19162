"""report.html in a real headless browser (Debian's chromium): the scorecard renders, no figure is
a broken image, and every study figure shows its smallest text at a legible size at the report's
width (the real noise-enhancement, depth-locality(-map) and decoupling figures, drawn from synthetic
results by tests/test_figures.py). Skipped only where chromium is absent and CI is not set."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import pytest

import test_report_toy as toy
from nnphys.lab.report import write_report
from nnphys.lab.store import Store

pytestmark = pytest.mark.slow

# runs on the page's load event, after every <img> has loaded or failed
CHECK_JS = """<script>window.addEventListener("load", () => {
  const card = document.querySelector("#scorecard-table table");
  const box = card ? card.getBoundingClientRect() : {width: 0, height: 0};
  const out = {
    first_h2: document.querySelector("h2") ? document.querySelector("h2").textContent : null,
    scorecard_rows: document.querySelectorAll("#scorecard-table tr.study-row").length,
    scorecard_box: [box.width, box.height],
    fragile: document.querySelectorAll(".fragile").length,
    images: [...document.images].map(i => ({src: i.getAttribute("src"), complete: i.complete,
                                            w: i.naturalWidth, h: i.naturalHeight,
                                            shown_w: i.getBoundingClientRect().width,
                                            text_pt: i.dataset.textPt ? Number(i.dataset.textPt) : null,
                                            dpi: i.dataset.dpi ? Number(i.dataset.dpi) : null})),
  };
  const pre = document.createElement("pre");
  pre.id = "nnphys-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI (.ci/run installs it with apt-get)")
    pytest.skip("chromium not installed (apt-get install -y chromium)")


WINDOW = (1280, 1024)  # a laptop's browser window: the report's 1200 px column fits in it
MIN_TEXT_PX = 10.0  # the smallest text a figure may show on screen (8 pt at 120 dpi is 13.3 px at full size)


def _check(page, tmp_path) -> dict:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           f"--window-size={WINDOW[0]},{WINDOW[1]}",
           f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files",
           "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="nnphys-check">(.*?)</pre>', dom, re.S)
    assert m, f"the check script did not run; DOM head: {dom[:300]!r}"
    return json.loads(html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    study, other = toy.make_study(), toy.make_study("rtoy-nohook", with_resample=False)
    with Store(root / "res") as store:
        toy.fill_store(store, study, toy.Spec(small_legend=True))
        toy.fill_store(store, other, toy.Spec())
        _, page, reps = write_report(store, [study, other])
    return page, sum(len(r.figures) for r in reps)


def _with_check(page, name: str, edit=lambda s: s):
    out = page.with_name(name)
    out.write_text(edit(page.read_text()).replace("</body>", CHECK_JS + "</body>"))
    return out


def test_scorecard_and_every_figure_render(report, tmp_path):
    page, n_figures = report
    got = _check(_with_check(page, "check.html"), tmp_path)
    assert got["first_h2"] == "Scorecard" and got["scorecard_rows"] == 2
    assert got["scorecard_box"][0] > 100 and got["scorecard_box"][1] > 40  # laid out, not collapsed
    # the studies' figures plus the verdict x stability overview, which is laid out at a readable width
    assert len(got["images"]) == n_figures + 1 == 4
    overview = [i for i in got["images"] if i["src"] == "figures/overview.png"]
    assert len(overview) == 1 and overview[0]["w"] >= 400
    broken = [i["src"] for i in got["images"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
    assert not broken, broken


def test_the_check_sees_a_broken_image(report, tmp_path):
    # negative control: the same page with one figure path broken must be caught
    page, _ = report
    got = _check(_with_check(page, "broken.html", lambda s: s.replace("arm_means.png", "missing.png", 1)), tmp_path)
    assert [i["w"] for i in got["images"] if i["src"].endswith("missing.png")] == [0]


def shown_text_px(img: dict) -> float:
    """The on-screen size (CSS px) of a figure's smallest text: its size in pt at the PNG's dpi,
    scaled by how much the browser shrank the image."""
    return img["text_pt"] * img["dpi"] / 72 * img["shown_w"] / img["w"]


@pytest.fixture(scope="module")
def figures_report(tmp_path_factory):
    """A report whose one study shows the real figures of noise-enhancement, depth-locality(-map)
    and the decoupling plot (tests/test_figures.py draws them from synthetic results)."""
    import test_figures as tf
    from nnphys.studies.base import Figure, Study

    drawn = tf.all_figures()

    def figures(spec, results):
        return [Figure(name.replace("/", "--").replace(" ", "_").replace("(", "").replace(")", ""), fig, name)
                for name, fig in drawn]

    study = Study(name="rfigs", papers=("the studies' figures (browser test)",), spec=toy.Spec,
                  presets={"quick": {"n_arms": 1, "n_seeds": 2}, "paper": {}}, jobs=toy.jobs, run=toy.run,
                  analyse=lambda spec, results: [], figures=figures, claims={}, description="real figures")
    root = tmp_path_factory.mktemp("browser-figs")
    with Store(root / "res") as store:
        toy.fill_store(store, study, toy.Spec(n_arms=1, n_seeds=2))
        _, page, reps = write_report(store, [study])
    return page, len(reps[0].figures)


def test_every_study_figure_is_legible_at_the_report_width(figures_report, tmp_path):
    page, n = figures_report
    got = _check(_with_check(page, "legible.html"), tmp_path)
    figs = [i for i in got["images"] if i["text_pt"] is not None]
    assert len(figs) == n >= 10
    assert all(i["complete"] and i["w"] > 0 and i["dpi"] == 120 for i in figs)
    small = {i["src"]: (i["w"], round(i["shown_w"]), round(shown_text_px(i), 1)) for i in figs
             if shown_text_px(i) < MIN_TEXT_PX}
    assert not small, f"(png width, shown width, smallest text px) below {MIN_TEXT_PX} px: {small}"


def test_the_legibility_check_sees_a_shrunk_figure(figures_report, tmp_path):
    # negative control: the same page in a 500 px column shrinks the two-panel-wide figures below 10 px
    page, _ = figures_report
    got = _check(_with_check(page, "narrow.html", lambda s: s.replace("max-width:1200px", "max-width:500px", 1)),
                 tmp_path)
    assert any(shown_text_px(i) < MIN_TEXT_PX for i in got["images"] if i["text_pt"] is not None)
