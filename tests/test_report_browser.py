"""report.html in a real headless browser (Debian's chromium): the scorecard renders and no
figure is a broken image. Skipped only where chromium is absent and CI is not set."""

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
                                            w: i.naturalWidth, h: i.naturalHeight})),
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


def _check(page, tmp_path) -> dict:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
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
