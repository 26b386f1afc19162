"""`nnphys probe`'s report.html in a real headless browser, for a user's MLP and a user's CNN (the
modules of tests/test_probe.py): the page loads in the browser and every figure it shows loads
(no broken image; a broken path is caught). Skipped only where chromium is absent and CI is not set."""

from __future__ import annotations

import pytest

from nnphys.cli import main
from test_probe import user_modules  # noqa: F401  (the fixture)
from test_report_browser import CHECK_JS, _check

pytestmark = pytest.mark.slow

def _open(out, tmp_path, edit=lambda s: s):
    page = out / "check.html"
    page.write_text(edit((out / "report.html").read_text()).replace("</body>", CHECK_JS + "</body>"))
    return _check(page, tmp_path)


@pytest.mark.parametrize("factory, args", [("probe_user_mlp:make", ["--batch-size", "8"]),
                                           ("probe_user_cnn:make", [])])
def test_probe_report_renders(user_modules, tmp_path, factory, args):  # noqa: F811
    out = user_modules / factory.split(":")[0]
    assert main(["probe", factory, "--out", str(out), "--k", "3", "--n-matvec", "9", *args]) == 0
    got = _open(out, tmp_path)
    imgs = got["images"]
    assert sorted(i["src"] for i in imgs) == ["gradient_noise.png", "hessian_density.png", "hessian_top.png"]
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in imgs), imgs
    html = (out / "check.html").read_text()
    assert "tr H (Hutch++, 9 products)" in html and "escape exponent" in html
    # negative control: a broken figure path is seen as broken
    bad = _open(out, tmp_path, lambda s: s.replace("hessian_top.png", "missing.png", 1))
    assert [i["w"] for i in bad["images"] if i["src"] == "missing.png"] == [0]
