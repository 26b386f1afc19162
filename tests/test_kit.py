"""The study kit and the seeding rule: known answers for the shared verdict rules."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from nnphys.seeding import derive, numpy_rng, torch_generator
from nnphys.studies._kit import ClaimBook, Missing, all_of, band_verdict, by_kind, need, spearman_test
from nnphys.studies.base import ClaimInfo, Result


def test_derive_depends_on_labels_not_position():
    a = [derive(0, "c", c) for c in (1.2, 1.5, 2.0)]
    b = [derive(0, "c", c) for c in (1.2, 1.35, 1.5, 2.0)]  # a value inserted in the sweep
    assert a[0] == b[0] and a[1] == b[2] and a[2] == b[3]
    assert len({derive(0, "x", i) for i in range(1000)}) == 1000
    assert derive(0, "x") != derive(1, "x")
    assert 0 <= derive(2**31, "big", 10**12) < 2**63


def test_derive_is_the_sha256_rule_and_numpy_ints_are_ints():
    # the rule written out independently of the module: sha256(repr(tuple)) first 8 bytes >> 1
    ref = int.from_bytes(hashlib.sha256(repr((7, "init", 3)).encode()).digest()[:8], "little") >> 1
    assert derive(7, "init", 3) == ref
    assert derive(7, "init", np.int64(3)) == ref


def test_derive_rejects_unstable_labels():
    with pytest.raises(TypeError, match="labels"):
        derive(0, object())
    with pytest.raises(TypeError, match="labels"):
        derive(0, ("ok", [1, 2]))


def test_generators_are_reproducible_streams():
    assert np.array_equal(numpy_rng(3, "a").normal(size=5), numpy_rng(3, "a").normal(size=5))
    assert not np.array_equal(numpy_rng(3, "a").normal(size=5), numpy_rng(3, "b").normal(size=5))
    g1, g2 = torch_generator(3, "a"), torch_generator(3, "a")
    assert torch.equal(torch.randn(4, generator=g1), torch.randn(4, generator=g2))


@pytest.mark.parametrize("ci, band, want", [
    ((0.9, 1.1), (0.8, 1.2), "holds"),
    ((0.5, 0.7), (0.8, 1.2), "fails"),
    ((1.3, 1.5), (0.8, 1.2), "fails"),
    ((0.7, 1.0), (0.8, 1.2), "inconclusive"),
    ((0.5, 1.5), (0.8, 1.2), "inconclusive"),
    ((float("nan"), 1.0), (0.8, 1.2), "inconclusive"),
    ((1.1, 0.9), (0.8, 1.2), "holds"),
])
def test_band_verdict(ci, band, want):
    assert band_verdict(*ci, *band) == want


def test_all_of():
    assert all_of(["holds", "holds"]) == "holds"
    assert all_of(["holds", "inconclusive"]) == "inconclusive"
    assert all_of(["holds", "fails", "inconclusive"]) == "fails"
    assert all_of([]) == "inconclusive"


def test_spearman_test_exact_and_asymptotic():
    rho, p = spearman_test([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert rho == pytest.approx(-1.0) and p == pytest.approx(2 / 120)
    x = np.arange(20.0)
    y = x + np.random.default_rng(0).normal(size=20) * 5
    from scipy import stats

    rho, p = spearman_test(x, y)
    ref = stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert all(math.isnan(v) for v in spearman_test([1, 2, 3], [1, 1, 1]))


def test_guard_turns_only_missing_into_inconclusive():
    book = ClaimBook({"C1": ClaimInfo("a statement", "paper")})
    groups = by_kind([Result("k", {"kind": "a"}, "done", {}), Result("k2", {"kind": "b"}, "failed", {})])
    assert set(groups) == {"a"}

    def claim():
        need(groups, "b")

    c = book.guard("C1", claim)
    assert c.verdict == "inconclusive" and "b jobs" in c.evidence["missing"]

    def buggy():
        return {}["nope"]

    with pytest.raises(KeyError):
        book.guard("C1", buggy)
    with pytest.raises(Missing):
        need({}, "x")


def test_take_members_reindexes_only_member_lists():
    from nnphys.studies._kit import resample_result, take_members

    m = {"err": [0.1, 0.2, 0.3], "depths": [1, 2], "final": {"e": np.array([1.0, 2.0, 3.0])}, "n": 3}
    out = take_members(m, np.array([2, 2, 0]), 3)
    assert out["err"] == [0.3, 0.3, 0.1] and out["depths"] == [1, 2] and out["n"] == 3
    assert out["final"]["e"].tolist() == [3.0, 3.0, 1.0]
    r = resample_result(Result("k", {}, "done", m), np.array([1, 1, 1]), 3)
    assert r.metrics["err"] == [0.2, 0.2, 0.2] and m["err"] == [0.1, 0.2, 0.3]


def test_link_claims_sets_only_named_figures():
    from nnphys.studies._kit import link_claims
    from nnphys.studies.base import Figure

    figs = [Figure("a", None), Figure("b", None, claims=("X",))]
    link_claims(figs, {"a": ["C1", "C2"]})
    assert figs[0].claims == ("C1", "C2") and figs[1].claims == ("X",)
