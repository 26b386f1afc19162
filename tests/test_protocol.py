"""The claim protocol (nnphys.studies.protocol) against independent computations, and the
calibration harness on a toy study: a sound rule passes it, rules that cannot fail or cannot
hold are caught by it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nnphys.studies import protocol as P
from nnphys.studies.base import ClaimInfo, Result, Study, StudySpec
from nnphys.studies import _kit, calibration


# -- statistics against scipy and naive oracles ----------------------------------------------------

def test_paired_matches_scipy_one_sample_t():
    rng = np.random.default_rng(1)
    d = rng.normal(0.3, 1.0, size=9)
    e = P.paired(d)
    ref = stats.ttest_1samp(d, 0.0, alternative="greater")
    assert e.n == 9 and e.df == 8
    assert P.p_greater(e) == pytest.approx(ref.pvalue, rel=1e-12)
    assert P.p_less(e) == pytest.approx(stats.ttest_1samp(d, 0.0, alternative="less").pvalue, rel=1e-12)


def test_welch_matches_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1, 1, 7), rng.normal(0, 3, 11)
    e = P.welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert P.p_greater(e) == pytest.approx(ref.pvalue, rel=1e-10)


def _holm_oracle(p, alpha):
    """Holm by its definition: H_(i) is rejected iff p_(j) <= alpha / (m - j + 1) for all j <= i."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [False] * m
    for rank, i in enumerate(order):
        if all(p[order[j]] <= alpha / (m - j) for j in range(rank + 1)):
            out[i] = True
    return out


@pytest.mark.parametrize("seed", range(20))
def test_holm_matches_its_definition(seed):
    rng = np.random.default_rng(seed)
    p = list(rng.uniform(0, 0.08, size=int(rng.integers(1, 8))))
    assert P.holm(p, 0.05) == _holm_oracle(p, 0.05)


def test_power_matches_monte_carlo():
    """Power of the one-sided paired t at the SESOI against simulated rejection rates (4 s.e.
    of a binomial proportion over 4000 draws)."""
    rng = np.random.default_rng(3)
    n, sd, sesoi = 8, 1.0, 0.9
    e = P.Effect(0.0, sd / math.sqrt(n), n - 1, n)
    pw = P.power(e, sesoi)
    d = rng.normal(sesoi, sd, size=(4000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    mc = float(np.mean(t > stats.t.ppf(0.95, n - 1)))
    # the formula uses the true s.e.; the simulated test estimates it, which the noncentral t accounts for
    assert abs(pw - mc) < 4 * math.sqrt(mc * (1 - mc) / 4000) + 0.01, (pw, mc)


def test_itt_and_room():
    v = P.itt([0.1, float("nan"), 0.3, 0.2], [False, False, True, False], worst=1.0)
    assert list(v) == [0.1, 1.0, 1.0, 0.2]
    assert P.room(0.5, 0.0, 1.0, 0.1) == (True, "")
    ok, why = P.room(0.05, 0.0, 1.0, 0.1)
    assert not ok and "floor" in why
    ok, why = P.room(0.95, 0.0, 1.0, 0.1)
    assert not ok and "ceiling" in why


def test_non_finite_differences_are_refused():
    with pytest.raises(ValueError, match="itt"):
        P.paired([0.1, float("nan")])


# -- the aggregation rule -------------------------------------------------------------------------

DIR = P.Rule("directional", sesoi=0.5)
EQ = P.Rule("equivalence", sesoi=0.5)


def _cells(rng, means, n=10, sd=0.5, rule=DIR):
    return [P.cell(f"c{i}", P.paired(rng.normal(m, sd, n)), rule) for i, m in enumerate(means)]


def test_directional_rule_operating_characteristics():
    rng = np.random.default_rng(4)
    v = {k: [P.judge(_cells(rng, [m] * 3), DIR).verdict for _ in range(400)]
         for k, m in {"effect": 1.0, "none": 0.0, "opposite": -0.5}.items()}
    assert v["effect"].count("holds") / 400 > 0.9
    assert v["none"].count("holds") / 400 <= 0.05 + 2.33 * math.sqrt(0.05 * 0.95 / 400)
    assert v["opposite"].count("fails") / 400 > 0.95


def test_one_opposite_cell_fails_the_claim_after_holm():
    rng = np.random.default_rng(5)
    cells = _cells(rng, [1.0, 1.0]) + [P.cell("bad", P.paired(rng.normal(-3, 0.5, 10)), DIR)]
    j = P.judge(cells, DIR)
    assert j.verdict == "fails" and "bad" in j.evidence["opposite_after_holm"]


def test_uninformative_cells_do_not_block_and_are_named():
    rng = np.random.default_rng(6)
    floor = P.cell("floor", P.paired(rng.normal(1, 1, 10)), DIR, room=P.room(0.01, 0, 1, 0.5))
    j = P.judge([floor], DIR)
    assert j.verdict == "uninformative" and "floor" in j.summary
    j = P.judge([floor, *_cells(rng, [1.5])], DIR)
    assert j.verdict == "holds" and j.evidence["n_informative"] == 1


def test_underpowered_claim_is_uninformative():
    rng = np.random.default_rng(7)
    j = P.judge([P.cell("few", P.paired(rng.normal(0, 5, 3)), DIR)], DIR)
    assert j.verdict == "uninformative" and "power" in j.summary


def test_equivalence_needs_a_margin_not_non_significance():
    """A noisy cell whose CI covers 0 but also the margin must not hold (the old 'not
    significantly different' reading would have said equal)."""
    noisy = P.cell("noisy", P.Effect(0.1, 1.0, 4, 5), EQ)  # CI covers 0 and the margin
    assert P.judge([noisy], EQ).verdict == "uninformative" and "too imprecise" in noisy.why
    mid = P.cell("mid", P.Effect(0.3, 0.12, 19, 20), EQ)  # precise enough, but its CI crosses +margin
    assert mid.informative and P.judge([mid], EQ).verdict == "inconclusive"
    tight = P.cell("tight", P.Effect(0.02, 0.05, 19, 20), EQ)
    assert P.judge([tight], EQ).verdict == "holds"
    far = P.cell("far", P.Effect(2.0, 0.05, 19, 20), EQ)
    assert P.judge([tight, far], EQ).verdict == "fails"


def test_equivalence_at_the_margin_holds_at_most_alpha():
    rng = np.random.default_rng(9)
    hits = sum(P.judge(_cells(rng, [0.5], n=12, rule=EQ), EQ).verdict == "holds" for _ in range(600))
    assert hits / 600 <= 0.05 + 2.33 * math.sqrt(0.05 * 0.95 / 600)


def test_identity():
    r = P.Rule("identity", sesoi=1e-9)
    ok = P.judge([P.cell("a", P.Effect(1e-12, 0, 0, 1), r)], r)
    bad = P.judge([P.cell("a", P.Effect(1e-12, 0, 0, 1), r), P.cell("b", P.Effect(-1e-6, 0, 0, 1), r)], r)
    assert ok.verdict == "holds" and bad.verdict == "fails" and "b" in bad.summary


def test_rule_validation():
    with pytest.raises(ValueError):
        P.Rule("directional", sesoi=0)
    with pytest.raises(ValueError):
        P.Rule("bogus", sesoi=1)


# -- versions ------------------------------------------------------------------------------------

def test_rule_version_changes_with_code_and_parameters():
    def f1(x):
        return x + 1

    def f2(x):
        return x + 2

    v = P.rule_version(DIR, f1)
    assert v == P.rule_version(P.Rule("directional", sesoi=0.5), f1)
    assert v != P.rule_version(DIR, f2)
    assert v != P.rule_version(P.Rule("directional", sesoi=0.4), f1)


# -- the calibration harness on a toy study ---------------------------------------------------------

class ToySpec(StudySpec):
    seeds: int = 10


def _toy_study(decide) -> Study:
    claims = {"D1": ClaimInfo("arm b beats arm a (paired over seeds)", "default",
                              rule=P.Rule("directional", sesoi=0.5, null="no gain", fails_if="gain < 0.5"))}
    book = _kit.ClaimBook(claims)

    @book.rule("D1")
    def claim_d1(results):
        return decide(book, results)

    def analyse(spec, results):
        return [claim_d1(results)]

    def gen(mu, base=0.6):
        def g(rng, spec):
            a = rng.normal(base, 0.3, spec.seeds)
            b = a - mu + rng.normal(0, 0.4, spec.seeds)
            return [Result(key=str(i), params={"seed": i}, status="done", metrics={"a": float(x), "b": float(y)})
                    for i, (x, y) in enumerate(zip(a, b))]
        return g

    return Study(name="toy-cal", papers=(), spec=ToySpec, presets={"quick": {}, "paper": {}}, jobs=lambda s: [],
                 run=lambda j: {}, analyse=analyse, figures=lambda s, r: [], claims=claims,
                 calibration={"D1": {"effect": gen(1.2), "none": gen(0.0), "opposite": gen(-1.2),
                                     "floor": gen(1.2, base=0.1)}})


def _sound(book, results):
    a = np.array([r.metrics["a"] for r in results])
    b = np.array([r.metrics["b"] for r in results])
    rule = book.claims["D1"].rule
    c = P.cell("all", P.paired(a - b), rule, room=P.room(float(a.mean()), 0.0, 10.0, rule.sesoi))
    return book.judged("D1", P.judge([c], rule))


def _cannot_fail(book, results):
    a = np.array([r.metrics["a"] for r in results])
    b = np.array([r.metrics["b"] for r in results])
    return book.make("D1", "holds" if (a - b).mean() > 0 else "inconclusive", {})


def _cannot_hold(book, results):
    a = np.array([r.metrics["a"] for r in results])
    b = np.array([r.metrics["b"] for r in results])
    return book.make("D1", "fails" if (a - b).mean() < 1e9 else "holds", {})


def test_harness_passes_a_sound_rule_and_stamps_versions():
    st = _toy_study(_sound)
    spec = ToySpec()
    oc = calibration.operating_characteristics(st, spec, "D1", n_draws=60)
    assert calibration.check(oc, 0.05) == [], oc
    c = st.analyse(spec, st.calibration["D1"]["effect"](np.random.default_rng(0), spec))[0]
    assert len(c.rule["version"]) == 12 and c.rule["sesoi"] == 0.5 and c.rule["kind"] == "directional"
    table = calibration.study_table(st, spec, n_draws=20)
    assert "| D1 | directional |" in table and "| — | yes |" in table


@pytest.mark.parametrize("decide,expect", [(_cannot_fail, "P(fails | opposite)"), (_cannot_hold, "P(holds | effect)")])
def test_harness_catches_rules_that_cannot_fail_or_hold(decide, expect):
    st = _toy_study(decide)
    oc = calibration.operating_characteristics(st, ToySpec(), "D1", n_draws=40)
    bad = calibration.check(oc, 0.05)
    assert any(expect in b for b in bad), bad


def test_calibration_block_is_written_between_markers(tmp_path):
    st = _toy_study(_sound)
    guide = tmp_path / "toy-cal.md"
    guide.write_text("# Guide\n\nbefore\n<!-- calibration:begin -->\nold table\n<!-- calibration:end -->\nafter\n")
    table = calibration.stamped_table(st, "quick", 10)
    assert calibration.write_block(guide, table)
    text = guide.read_text()
    assert "old table" not in text and "before" in text and text.endswith("<!-- calibration:end -->\nafter\n")
    assert "--draws 10" in text and "| D1 | directional |" in text
    two = tmp_path / "two.md"
    two.write_text("<!-- calibration:begin scale=medium -->\nM\n<!-- calibration:end -->\n"
                   "<!-- calibration:begin scale=quick -->\nQ\n<!-- calibration:end -->\n")
    assert calibration.write_block(two, "NEW\n", "quick")
    assert two.read_text() == ("<!-- calibration:begin scale=medium -->\nM\n<!-- calibration:end -->\n"
                               "<!-- calibration:begin scale=quick -->\nNEW\n<!-- calibration:end -->\n")
    (tmp_path / "none.md").write_text("no markers\n")
    assert not calibration.write_block(tmp_path / "none.md", table)


def test_list_claims_prints_each_rule(capsys):
    from nnphys.cli import main
    from nnphys.studies import register, unregister

    st = _toy_study(_sound)
    register(st)
    try:
        assert main(["list", "--claims"]) == 0
    finally:
        unregister(st.name)
    out = capsys.readouterr().out
    block = out[out.index("toy-cal"):]
    assert "rule: directional" in block and "SESOI 0.5" in block and "fails if: gain < 0.5" in block


def test_zero_spread_cell_is_judged_exactly_not_dropped():
    """Seeds that all agree (a fit on fixed data, every seed at the divergence value) give s.e. 0:
    the cell is judged exactly, so a cell all at -2 fails the claim and cannot be outvoted."""
    rng = np.random.default_rng(11)
    flat = P.cell("flat", P.paired([-2.0] * 10), DIR)
    assert flat.informative
    j = P.judge([flat, *_cells(rng, [1.5])], DIR)
    assert j.verdict == "fails" and "flat" in j.evidence["opposite_after_holm"]
    far = P.cell("far", P.paired([3.0] * 8), EQ)
    assert P.judge([far, P.cell("tight", P.Effect(0.0, 0.05, 19, 20), EQ)], EQ).verdict == "fails"


def _share(verdicts, v):
    return sum(x == v for x in verdicts) / len(verdicts)


def _bound(p, n):
    return p + 2.33 * math.sqrt(p * (1 - p) / n)


def test_divergence_cannot_make_a_zero_mean_hold():
    """Null with mean exactly 0 and skew: with probability 0.1 a seed diverges (its difference is
    the worst value, -10), otherwise the difference is N(+1.11, 1). Inverse-variance pooling let
    the cells without a divergence dominate (P(holds) 0.53 with 4 cells); design weights do not."""
    rng = np.random.default_rng(12)
    rule = P.Rule("directional", sesoi=1.0)
    out = []
    for _ in range(600):
        cells = []
        for c in range(4):
            d = rng.normal(1.11, 1.0, 8)
            d[rng.random(8) < 0.1] = -10.0
            cells.append(P.cell(f"c{c}", P.paired(d), rule))
        out.append(P.judge(cells, rule).verdict)
    assert _share(out, "holds") <= _bound(0.05, 600) + 0.03, _share(out, "holds")


@pytest.mark.parametrize("n_cells,n", [(2, 5), (4, 5), (4, 8)])
def test_fails_at_most_alpha_when_the_effect_is_exactly_the_sesoi(n_cells, n):
    rng = np.random.default_rng(13 + n_cells + n)
    sesoi = 1.2
    out = [P.judge([P.cell(f"c{i}", P.paired(rng.normal(sesoi, 1.0, n)), P.Rule("directional", sesoi=sesoi))
                    for i in range(n_cells)], P.Rule("directional", sesoi=sesoi)).verdict for _ in range(800)]
    assert _share(out, "fails") <= _bound(0.05, 800), _share(out, "fails")


def test_noisy_equivalence_cell_neither_blocks_nor_dilutes():
    tight = P.cell("tight", P.Effect(0.0, 0.05, 19, 20), EQ)
    noisy = P.cell("noisy", P.Effect(0.3, 20.0, 2, 3), EQ)
    assert not noisy.informative and "too imprecise" in noisy.why
    assert P.judge([tight, noisy], EQ).verdict == "holds"


def test_direction_less_is_negated():
    less = P.Rule("directional", sesoi=0.5, direction="less")
    rng = np.random.default_rng(14)
    c = P.cell("c", P.paired(rng.normal(-1.5, 0.3, 10)), less)
    assert c.effect.mean > 0 and P.judge([c], less).verdict == "holds"


def test_imprecise_equivalence_cell_can_fail_but_not_hold():
    """A cell too noisy to ever show equivalence is still evidence when it lies clearly outside."""
    out = P.cell("out", P.Effect(-0.8, 0.05 * 8, 2, 3), EQ)  # |dev| 0.8 > 0.5, but s.e. 0.4
    assert not out.informative and out.testable
    far = P.cell("far", P.Effect(-5.0, 0.5, 30, 31), EQ)
    assert P.judge([far], EQ).verdict == "fails"
    assert P.judge([out], EQ).verdict == "uninformative"
