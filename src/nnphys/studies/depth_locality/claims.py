"""The claims of study ``depth-locality``: C1-C8 (with C6W, the width half of C6) and the controls X2, X2K.

Every claim goes through the claim protocol (``nnphys.studies.protocol``): its rule is pre-registered
with the claim (test, SESOI, alpha, informativeness, fails-if), each cell gives one paired per-seed
effect with intention to treat, room to move and power (:mod:`.cells`, :mod:`.controls`), and
``P.judge`` aggregates the cells. One function per claim, named after its id; the first paragraph of
its docstring is the claim's statement, the next one its rule in words. The guide
(``docs/studies/depth-locality.md``, "Claims and their rules") gives the same table in prose.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from typing import Any, Callable

import numpy as np

from nnphys.studies import _kit
from nnphys.studies import protocol as P
from nnphys.studies._kit import Missing
from nnphys.studies.base import Claim, Result
from nnphys.studies.depth_locality import cells as _cells
from nnphys.studies.depth_locality import controls as ctl
from nnphys.studies.depth_locality.cells import Runs, depth_cell, net_key, planned, resample_seeds, runs_of
from nnphys.studies.depth_locality.spec import Spec

# ---- pre-registered rules (fixed from the claims, before any run) ----
# [default] SESOI of a depth effect: 0.1 x the trivial error between L_min and L_max. Why: the papers'
# figures show depth changing the error by tens of percent where the error is a sizable fraction of the
# trivial one; a change below a tenth of the trivial error is not the effect they describe.
SESOI_DEPTH = 0.1
# [default] X2 equivalence margin: 0.05 x trivial, half the depth SESOI (a permutation that moved the
# error by half the smallest depth effect of interest would already confound C1-C3).
MARGIN_PERM = 0.05
# [default] C5 equivalence margin: 0.02 x trivial. The theorem says 0; C5 doubles as a kernel-code test,
# and a local/global gap of 2 % of the trivial error is a 5-30 % bug at NTK errors of 0.07-0.4 (the
# range the guide's C5 section gives for these data sets).
MARGIN_BLIND = 0.02
# [derived] X2K tolerance: kernels depend on x.x' only, which a coordinate permutation keeps to
# rounding; 1e-6 x trivial leaves room for the float64 solve's rounding (jitter 1e-8 tr/N), not for a bug.
TOL_KERNEL = 1e-6
# [default] C8 tolerance: no run may violate the regime (a fraction of flagged seeds, identity at 0).
TOL_C8 = 1e-12

# the cell code the claim functions call enters every rule's version (the protocol hashes the claim
# function's own source, which here is a thin call into these modules)
_CELL_CODE = hashlib.sha256("".join(inspect.getsource(m) for m in (_cells, ctl)).encode()).hexdigest()[:12]
_PAIRED = "paired per seed (same data set, init stream and minibatch order at every depth)"
_ROOM = "err(L_min)/trivial leaves the SESOI on both sides in [0, 1] (P.room), C8 regime met, power >= 0.8 at the SESOI"
_FAILS = "pooled effect significantly < 0, or a cell significantly < 0 (Holm), or the pooled upper bound < SESOI"


def _dir(null: str, alt: str, fails: str, **params) -> P.Rule:
    return P.Rule(kind="directional", direction="greater", sesoi=SESOI_DEPTH, alpha=P.ALPHA, power=0.8, null=null,
                  alternative=alt, fails_if=fails, unit="trivial error (err / trivial; trivial = 1 for nMSE)",
                  params={"design": _PAIRED, "L": "L_min vs L_max of the spec's depths", "itt_worst": 1.0,
                          "sesoi_why": "[default] the papers' figures show depth effects of tens of percent of "
                                       "the error; below 0.1 x trivial is not the effect they describe",
                          "cell_code": _CELL_CODE, **params})


BOOK = _kit.ClaimBook()


@dataclasses.dataclass(frozen=True)
class Context:
    """What every claim reads: the results indexed by job (``runs``) and the keys of the planned
    main net jobs (C8 counts a planned job without a result as missing)."""

    runs: Runs
    main_keys: list[tuple]


def context(spec: Spec, results: list[Result]) -> Context:
    main = [net_key(p) for p in planned(spec).values() if p["kind"] == "net" and p["group"] == "main"]
    return Context(runs_of(spec, results), main)


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    """Claims C1-C8 and controls X2, X2K from the results of ``spec``'s jobs. Only missing data
    (``_kit.Missing``) turns a claim ``inconclusive``; any other exception is a bug and propagates."""
    return BOOK.analyse(spec, context(spec, results))


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """Seeds drawn with replacement, one draw shared by every net and kernel job (:mod:`.cells`)."""
    return resample_seeds(results, rng)


# ============================================================================================
# shared steps: cells per (k, N), judged under a claim's rule
# ============================================================================================


def depth_cells(cid: str, runs: Runs, spec: Any, group: str = "main", variant: str = "main", ns_for=None,
                depths: list[int] | None = None, rule: P.Rule | None = None,
                label=lambda k, n: f"k={k} N={n}") -> tuple[list[P.Cell], list[str]]:
    """The C1/C2/C3 cells (:func:`.cells.depth_cell`) of every (k, N) of one group/variant, and the
    cells whose results are missing (named; they are left out, never judged)."""
    depths = depths or spec.depths
    ns_for = ns_for or spec.ns_for
    cells, missing = [], []
    for k in spec.active_ks():
        for n in ns_for(k):
            try:
                cells.append(depth_cell(cid, runs, group, variant, k, n, depths[0], depths[-1],
                                        rule or BOOK.claims[cid].rule, label=label(k, n)))
            except Missing as e:
                missing.append(f"{label(k, n)}: {e.what}")
    return cells, missing


def judged(cid: str, cells: list[P.Cell], missing: list[str], **evidence: Any) -> Claim:
    """``P.judge`` of ``cells`` under ``cid``'s rule, with the missing cells and ``evidence`` added;
    :class:`Missing` when no cell has data."""
    if not cells:
        raise Missing("; ".join(missing) or "no cell")
    j = P.judge(cells, BOOK.claims[cid].rule)
    j.evidence.update({"missing_cells": missing, **evidence})
    if missing:
        j = dataclasses.replace(j, summary=f"{j.summary}; missing: {len(missing)} cell(s)")
    return BOOK.judged(cid, j)


def main_depth_cells(cid: str, runs: Runs, spec: Spec, rule: P.Rule | None = None) -> tuple[list[P.Cell], list[str]]:
    """The C1/C2/C3 cells of every main cell (``Spec.main_cells``: N x init x target kind) and (k, N):
    one cell each, all judged together by ``P.judge`` (the one aggregation rule, as in the map)."""
    cells, missing = [], []
    for variant, cs in spec.main_cells():
        label = (lambda k, n: f"k={k} N={n}") if variant == "main" else (lambda k, n, v=variant: f"{v} k={k} N={n}")
        c, m = depth_cells(cid, runs, cs, "main", variant, rule=rule, label=label)
        cells += c
        missing += m
    return cells, missing


def _c123(cid: str, spec: Spec, ctx: Context) -> Claim:
    cells, missing = main_depth_cells(cid, ctx.runs, spec)
    return judged(cid, cells, missing, seeds=spec.n_seeds, depths=[spec.depths[0], spec.depths[-1]])


def _judge(cid: str, cells_of: Callable, spec: Spec, ctx: Context, *args: Any) -> Claim:
    """``judged`` of the cells ``cells_of(runs, spec, *args, rule)`` returns (:mod:`.controls`)."""
    cells, missing, ev = cells_of(ctx.runs, spec, *args, BOOK.claims[cid].rule)
    return judged(cid, cells, missing, **ev)


# ============================================================================================
# the claims, in the order of the report
# ============================================================================================


@BOOK.claim("C1", tag="paper", rule=_dir("mean d <= 0", "mean d >= SESOI (0.1 x trivial)", _FAILS, room=_ROOM))
def c1(spec: Spec, ctx: Context) -> Claim:
    """depth helps learning k-local targets. Rule [default]: d_s = [err_loc(L_min) - err_loc(L_max)] /
    trivial per seed, pooled over the informative (k, N) cells (P.judge), one-sided paired t, SESOI 0.1

    Rule: per main (k, N) cell, each seed's local error at the shallowest depth minus that at the
    deepest, in units of the trivial error (a diverged seed at the trivial error); a cell is
    informative when the shallow local error leaves 0.1 of room on both sides, every compared run
    interpolated with P > N, and the pooled test has power 0.8 at the SESOI. Holds when the pooled
    effect is significantly > 0 and no cell is significantly < 0 (Holm); fails when the pooled effect
    or a cell is significantly < 0, or the pooled upper bound is below 0.1."""
    return _c123("C1", spec, ctx)


@BOOK.claim("C2", tag="paper", rule=_dir("mean d <= 0", "mean d >= SESOI (0.1 x trivial)", _FAILS, room=_ROOM))
def c2(spec: Spec, ctx: Context) -> Claim:
    """depth hurts learning k-global targets. Rule [default]: d_s = [err_glob(L_max) - err_glob(L_min)] /
    trivial per seed, pooled over the informative (k, N) cells, one-sided paired t, SESOI 0.1

    Rule: as C1, on the global target with the sign turned (the deep global error minus the shallow
    one); room is judged on the shallow global error."""
    return _c123("C2", spec, ctx)


@BOOK.claim("C3", tag="paper", rule=_dir(
    "mean interaction <= 0", "mean interaction >= SESOI", _FAILS,
    room="both targets' err(L_min)/trivial leave the SESOI on both sides; C8 regime; power"))
def c3(spec: Spec, ctx: Context) -> Claim:
    """interplay: depth favours k-local over k-global targets. Rule [default]: the interaction d_s =
    [glob(L_max) - glob(L_min)] - [loc(L_max) - loc(L_min)] (trivial units) per seed, same cells,
    one-sided paired t, SESOI 0.1; informative only with room on both targets

    Rule: as C1, on the per-seed interaction contrast; a cell needs room on both targets (with one
    target pinned at the floor or the ceiling the contrast only restates C1 or C2)."""
    return _c123("C3", spec, ctx)


@BOOK.claim("C4", tag="paper", rule=_dir(
    "mean d <= 0 (the net's local depth trend is the NTK's or worse)", "mean d >= SESOI", _FAILS,
    room="the contrast's range [-(ntk0 + 1 - net0), (1 - ntk0) + net0] holds the SESOI on both sides; "
         "C8 regime; power"))
def c4(spec: Spec, ctx: Context) -> Claim:
    """the NTK does not capture the nets' depth dependence. Rule [default]: on the nets' own data sets
    (matched sigma_w^2, sigma_b^2), relative to the NTK depth favours the net on k-local targets: d_s =
    [ntk_loc(L_max) - ntk_loc(L_min)] - [net_loc(L_max) - net_loc(L_min)] > 0 (the net-NTK local gap
    grows with depth), one-sided paired t, SESOI 0.1

    Rule: per main (k, N) cell, each seed's change of the NTK's local error with depth minus the
    net's, on the same data set; informative when the contrast's possible range, given the shallow
    errors, holds 0.1 on both sides, the regime holds and the power suffices. Verdict as C1. The NTK
    and NNGP curves of every kernel job are recorded alongside."""
    return _judge("C4", ctl.c4_cells, spec, ctx)


@BOOK.claim("C5", tag="derived", rule=P.Rule(
    kind="equivalence", sesoi=MARGIN_BLIND, alpha=P.ALPHA, power=0.8,
    null="|E[mse_loc - mse_glob]| >= margin", alternative="|E[mse_loc - mse_glob]| < margin",
    fails_if="the pooled CI lies outside +-margin", unit="test MSE (E f^2 = 1, so trivial = 1)",
    params={"design": "paired per data set (both targets on the same inputs)", "min_datasets": 200,
            "margin_why": "[default] 2 % of the trivial error: a 5-30 % bug at the §12 NTK errors",
            "cell_code": _CELL_CODE}))
def c5(spec: Spec, ctx: Context) -> Claim:
    """kernel regression is exactly blind to locality (§8): NTK and NNGP test MSE of k-local and
    k-global agree in expectation over data sets, every L, both laws. Rule: TOST per (law, k, kernel,
    L) on the paired per-data-set difference, margin 0.02

    Rule: per (input law, k, kernel, depth), the local minus the global test MSE on each of many small
    data sets (both targets on the same inputs); a cell with fewer than 200 data sets is
    uninformative. Holds when every informative cell is shown within +-0.02 (two one-sided tests);
    fails when a cell lies significantly outside (Holm). Not run when ``blind_datasets = 0``."""
    if not spec.blind_datasets:
        return BOOK.inconclusive("C5", "not run (blind_datasets = 0)", run=False)
    return _judge("C5", ctl.c5_cells, spec, ctx)


@BOOK.claim("C6", tag="paper", rule=_dir(
    "mean d <= 0 (laziness does not shrink the interplay)", "mean d >= SESOI", _FAILS,
    room="IC(alpha=1) - IC(NTK) >= SESOI (an interplay to shrink); every alpha=1 run met the stopping rule; "
         "power", itt_worst_d=0.0, rule_version=2,
    lazy_outcome="a lazy (alpha_max) run that diverged, exploded (train nMSE > 1) or missed the stopping rule "
                 "counts as d = 0 for its seed (no shrink): an outcome, not data; version 1 made the cell "
                 "uninformative instead"))
def c6(spec: Spec, ctx: Context) -> Claim:
    """feature learning drives it: the depth dependence of the local/global gap shrinks toward the
    NTK's as the lazy scale alpha grows. Rule [default]: IC = [glob(L_max) - glob(L_min)] - [loc(L_max)
    - loc(L_min)] per seed at the control N and depths; d_s = IC_s(alpha=1) - IC_s(alpha_max), one-sided
    paired t, SESOI 0.1; a diverged, exploded or unconverged lazy run counts as d = 0 (no shrink)

    Rule: per k at the control cell, N and depths, each seed's interaction contrast at alpha = 1 minus
    that at the largest alpha; informative when every alpha = 1 run met the stopping rule and the
    alpha = 1 contrast exceeds the NTK's by 0.1 (an interplay to remove); a lazy run that failed to
    converge is an outcome (no shrink). Verdict as C1. The first-layer movement and kernel-target
    alignment are reported beside it, not judged."""
    c = _judge("C6", ctl.c6_cells, spec, ctx)
    failed = [(x["cell"], x["lazy_seeds_failed"], x.get("lazy_unreached", 0), x.get("lazy_diverged", 0))
              for x in c.evidence.get("cells", []) if x.get("lazy_seeds_failed")]
    if failed:  # say in the summary when the verdict rests on lazy runs that failed (no shrink by the rule)
        c = dataclasses.replace(c, summary=f"{c.summary}; lazy runs failed (counted as no shrink): " + ", ".join(
            f"{name}: {n}/{spec.n_seeds} seeds ({u} runs unconverged, {d} diverged)" for name, n, u, d in failed))
    return c


@BOOK.claim("C6W", tag="paper", rule=_dir(
    "mean d <= 0 (width does not shrink the interplay)", "mean d >= SESOI", _FAILS,
    room="IC(H_min) - IC(NTK) >= SESOI, the NTK with the width runs' sigma_w^2 and sigma_b^2 (an interplay to "
         "shrink); every H_min run met the stopping rule; power", itt_worst_d=0.0,
    widths="the spec's width_sweep, ntk parameterisation, alpha = 1, the control cell's sigma_w^2; its own lr "
           "grid (width_lr_grid) chosen per job on validation",
    wide_outcome="a widest run that diverged, exploded (train nMSE > 1) or missed the stopping rule counts as "
                 "d = 0 for its seed (no shrink), as in C6"))
def c6w(spec: Spec, ctx: Context) -> Claim:
    """feature learning drives it (width): in the ntk parameterisation the depth dependence of the
    local/global gap shrinks toward the NTK's as the width H grows. Rule [default]: IC per seed at the
    control N and depths as C6; d_s = IC_s(H_min) - IC_s(H_max), one-sided paired t, SESOI 0.1; a
    diverged, exploded or unconverged widest run counts as d = 0 (no shrink)

    Rule: per k at the control cell's sigma_w^2, N and depths, each seed's interaction contrast of the
    narrowest ntk-parameterised net minus that of the widest (alpha = 1, lr chosen on validation per
    job); informative when every narrowest run met the stopping rule and its contrast exceeds the
    NTK's (same sigma_w^2 and sigma_b^2) by 0.1; a widest run that failed is an outcome (no shrink).
    Verdict as C1. The contrast at every width and the first-layer movement are reported beside it.
    Not run without a width sweep of two or more widths."""
    if len(set(spec.width_sweep)) < 2:
        return BOOK.inconclusive("C6W", "not run (width_sweep has fewer than two widths)", run=False)
    return _judge("C6W", ctl.c6w_cells, spec, ctx)


@BOOK.claim("C7", tag="default", rule=_dir(
    "mean d <= 0", "mean d >= SESOI", _FAILS, room=_ROOM,
    coverage="holds only if all five variants ran (else inconclusive)"))
def c7(spec: Spec, ctx: Context) -> Claim:
    """robustness: the depth effects of C1 (local) and C2 (global) under each variant run (other lr
    rule, batch 16 and 256, other input law, other target variant), each (variant, k, target) a cell of
    the C1/C2 rule; holds needs all five variants run

    Rule: C1's and C2's cells for every variant run, at the control N and depths, pooled under the
    C1/C2 rule; a verdict that would hold is inconclusive while a variant was not run."""
    cells, missing, ev = ctl.c7_cells(ctx.runs, spec, BOOK.claims["C7"].rule)
    c = judged("C7", cells, missing, **ev)
    if c.verdict == "holds" and ev["not_run"]:  # the pre-registered coverage condition of C7's rule
        c = dataclasses.replace(c, verdict="inconclusive",
                                summary=f"{c.summary}; inconclusive: variants not run {ev['not_run']}")
    return c


@BOOK.claim("C8", tag="paper", rule=P.Rule(
    kind="identity", sesoi=TOL_C8, alpha=P.ALPHA, power=0.8, null="-", alternative="-",
    fails_if="any main run diverged, missed the stopping rule, or has P <= N",
    unit="fraction of flagged seeds", params={"cell_code": _CELL_CODE}))
def c8(spec: Spec, ctx: Context) -> Claim:
    """every reported main run interpolates (stopping rule met) with P > N. Rule: identity, the
    fraction of flagged seeds of every main net job is 0; cells outside this regime are uninformative
    for C1-C4

    Rule: per planned main net job, the fraction of its seeds that diverged, missed the stopping rule
    or have no more parameters than training points; holds when every fraction is 0, fails otherwise."""
    return _judge("C8", ctl.c8_cells, spec, ctx, ctx.main_keys)


@BOOK.claim("X2", tag="derived", rule=P.Rule(
    kind="equivalence", sesoi=MARGIN_PERM, alpha=P.ALPHA, power=0.8,
    null="|E d| >= margin", alternative="|E d| < margin", fails_if="the pooled CI lies outside +-margin",
    unit="trivial error", params={"design": "paired per seed (same data set and init stream)",
                                  "itt_worst": 1.0,
                                  "margin_why": "[default] half the depth SESOI",
                                  "cell_code": _CELL_CODE}))
def x2(spec: Spec, ctx: Context) -> Claim:
    """control (nets): a fixed coordinate permutation, applied to train and test alike, leaves the
    error distribution unchanged (input law and init are permutation-invariant; this is also the true
    null that replaces the old X1). Rule: d_s = mean over the control depths of [err_perm - err] /
    trivial per seed, TOST per (k, target) cell (intersection-union over cells, Holm for 'outside'),
    margin 0.05

    Rule: per (k, target) at the control N, each seed's permuted-minus-original error averaged over
    the control depths (same data set and init stream); holds when every informative cell is shown
    within +-0.05, fails when a cell lies significantly outside (Holm). Not run without
    ``control_permutation``."""
    if not spec.control_permutation:
        return BOOK.inconclusive("X2", "control X2 not run", run=False)
    return _judge("X2", ctl.x2_cells, spec, ctx)


@BOOK.claim("X2K", tag="derived", rule=P.Rule(
    kind="identity", sesoi=TOL_KERNEL, alpha=P.ALPHA, power=0.8, null="-", alternative="-",
    fails_if="any |err_perm - err| / trivial > 1e-6", unit="trivial error",
    params={"cell_code": _CELL_CODE}))
def x2k(spec: Spec, ctx: Context) -> Claim:
    """control (kernels): NTK and NNGP regression errors are identical, to rounding, under the
    permutation (dot-product kernels). Rule: identity, max over seeds and depths of |err_perm - err| /
    trivial <= 1e-6

    Rule: per (k, kernel, target), the largest deviation between the permuted and the original
    kernel regression errors over seeds and depths, in trivial units; holds when none exceeds 1e-6,
    fails otherwise. Not run without ``control_permutation`` and ``kernel_baseline``."""
    if not spec.control_permutation or not spec.kernel_baseline:
        return BOOK.inconclusive("X2K", "control X2 (kernels) not run", run=False)
    return _judge("X2K", ctl.x2k_cells, spec, ctx)


CLAIMS = BOOK.claims  # {id: ClaimInfo(statement, tag, rule)}, for the Study and nnphys list
