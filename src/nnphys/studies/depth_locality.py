"""Study ``depth-locality``: is deeper better? It depends on the locality of the target.

Papers: Mori & Ueda, *Is deeper better? It depends on locality of relevant features* (arXiv
2005.12488) and *Interplay between depth of neural networks and locality of target functions* (arXiv
2201.12082). Spec: ``specs/depth-locality.md`` (§ numbers below refer to it).

The experiment, top to bottom:

1. Data (§2-§3): inputs on the cube ``{-1,1}^d`` (or Gaussian); the k-local target
   ``prod_{i<k} x_i`` and the k-global target ``d^{-1/2} sum_i prod_j x_{i+j}`` (regression, or their
   signs). One data set per seed, shared by both targets, all depths and all learning rates.
2. Nets (§4, §10): FC ReLU nets of depth ``L`` (hidden layers) and width ``H``, init family ``init``
   [default], trained by plain SGD to the interpolation criterion. A job trains every seed x learning
   rate of one ``(variant, target, k, N, L, H, alpha)`` as one stacked ensemble; the learning rate is
   selected per job on a validation set (``lr_mode="tuned"``) or fixed.
3. Baselines (§5-§6): analytic NTK and NNGP ridgeless regression on the same data, all depths, with
   the nets' sigma_w^2 and bias variance (``Spec.kernel_sb2`` says where they cannot match exactly).
4. Exact kernel blindness to locality (§8, claim C5): many small data sets, NTK and NNGP.
5. Controls: lazy scale ``alpha`` (C6), robustness variants (C7), permutation (X2 nets, X2K kernels;
   the old k = 1 control X1 was not a null on the cube and is gone).
6. Claims C1-C8, X2, X2K (§11) through the claim protocol (``nnphys.studies.protocol``): each rule is
   pre-registered in ``CLAIMS`` (test, SESOI, alpha, informativeness, fails-if), each (k, N) gives a
   paired per-seed effect with intention to treat, room to move and power (``_depth_cells``), and
   ``P.judge`` aggregates the cells. Synthetic results for the calibration harness are in
   ``_depth_calibration``. The regime map over init, N, d and H is the study ``depth-locality-map``.

Seeds: every stream is ``nnphys.seeding.derive(seed, label, ...)`` of its own labels (data: seed
index; init and minibatch order: seed index and lr; permutation; C5 data set index), never a position.
Job execution lives in ``_depth_run``, the cell analysis in ``_depth_cells``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from nnphys.errors import ConfigError
from nnphys.seeding import derive
from nnphys.studies import _depth_calibration, _depth_cells, _depth_figs, _depth_run, _kit
from nnphys.studies import _depth_controls as ctl
from nnphys.studies import protocol as P
from nnphys.studies._depth_cells import TARGETS, Runs, depth_cell, resample_seeds
from nnphys.studies._depth_controls import ROBUST_VARIANTS
from nnphys.studies._kit import Missing
from nnphys.studies.base import Claim, ClaimInfo, Figure, Result, Study, StudySpec, canonical_json

STANDARD_LR_GRID = (0.003, 0.01, 0.03, 0.05, 0.1)
NTK_LR_GRID = (0.03, 0.1, 0.3, 1.0)

# ---- pre-registered rules (fixed from the claims, before any run; ``nnphys.studies.protocol``) ----
# [default] SESOI of a depth effect: 0.1 x the trivial error between L_min and L_max. Why: the papers'
# figures show depth changing the error by tens of percent where the error is a sizable fraction of the
# trivial one; a change below a tenth of the trivial error is not the effect they describe.
SESOI_DEPTH = 0.1
# [default] X2 equivalence margin: 0.05 x trivial, half the depth SESOI (a permutation that moved the
# error by half the smallest depth effect of interest would already confound C1-C3).
MARGIN_PERM = 0.05
# [default] C5 equivalence margin: 0.02 x trivial. The theorem says 0; C5 doubles as a kernel-code test,
# and a local/global gap of 2 % of the trivial error is a 5-30 % bug at the NTK errors of §12 (0.07-0.4).
MARGIN_BLIND = 0.02
# [derived] X2K tolerance: kernels depend on x.x' only, which a coordinate permutation keeps to
# rounding; 1e-6 x trivial leaves room for the float64 solve's rounding (jitter 1e-8 tr/N), not for a bug.
TOL_KERNEL = 1e-6
# [default] C8 tolerance: no run may violate the regime (a fraction of flagged seeds, identity at 0).
TOL_C8 = 1e-12

# the cell code the claim functions call enters every rule's version (the protocol hashes the claim
# function's own source, which here is a thin call into these modules)
_CELL_CODE = hashlib.sha256("".join(inspect.getsource(m) for m in (_depth_cells, ctl)).encode()).hexdigest()[:12]
_PAIRED = "paired per seed (same data set, init stream and minibatch order at every depth)"
_ROOM = "err(L_min)/trivial leaves the SESOI on both sides in [0, 1] (P.room), C8 regime met, power >= 0.8 at the SESOI"


def _dir(null: str, alt: str, fails: str, **params) -> P.Rule:
    return P.Rule(kind="directional", direction="greater", sesoi=SESOI_DEPTH, alpha=P.ALPHA, power=0.8, null=null,
                  alternative=alt, fails_if=fails, unit="trivial error (err / trivial; trivial = 1 for nMSE)",
                  params={"design": _PAIRED, "L": "L_min vs L_max of the spec's depths", "itt_worst": 1.0,
                          "sesoi_why": "[default] the papers' figures show depth effects of tens of percent of "
                                       "the error; below 0.1 x trivial is not the effect they describe",
                          "cell_code": _CELL_CODE, **params})


_FAILS = "pooled effect significantly < 0, or a cell significantly < 0 (Holm), or the pooled upper bound < SESOI"

CLAIMS = {
    "C1": ClaimInfo(
        "depth helps learning k-local targets. Rule [default]: d_s = [err_loc(L_min) - err_loc(L_max)] / "
        "trivial per seed, pooled over the informative (k, N) cells (P.judge), one-sided paired t, SESOI 0.1", "paper",
        rule=_dir("mean d <= 0", "mean d >= SESOI (0.1 x trivial)", _FAILS, room=_ROOM)),
    "C2": ClaimInfo(
        "depth hurts learning k-global targets. Rule [default]: d_s = [err_glob(L_max) - err_glob(L_min)] / "
        "trivial per seed, pooled over the informative (k, N) cells, one-sided paired t, SESOI 0.1", "paper",
        rule=_dir("mean d <= 0", "mean d >= SESOI (0.1 x trivial)", _FAILS, room=_ROOM)),
    "C3": ClaimInfo(
        "interplay: depth favours k-local over k-global targets. Rule [default]: the interaction "
        "d_s = [glob(L_max) - glob(L_min)] - [loc(L_max) - loc(L_min)] (trivial units) per seed, same cells, "
        "one-sided paired t, SESOI 0.1; informative only with room on both targets", "paper",
        rule=_dir("mean interaction <= 0", "mean interaction >= SESOI", _FAILS,
                  room="both targets' err(L_min)/trivial leave the SESOI on both sides; C8 regime; power")),
    "C4": ClaimInfo(
        "the NTK does not capture the nets' depth dependence. Rule [default]: on the nets' own data sets "
        "(matched sigma_w^2, sigma_b^2), relative to the NTK depth favours the net on k-local targets: d_s = "
        "[ntk_loc(L_max) - ntk_loc(L_min)] - [net_loc(L_max) - net_loc(L_min)] > 0 (the net-NTK local gap grows "
        "with depth), one-sided paired t, SESOI 0.1", "paper",
        rule=_dir("mean d <= 0 (the net's local depth trend is the NTK's or worse)",
                  "mean d >= SESOI", _FAILS,
                  room="the contrast's range [-(ntk0 + 1 - net0), (1 - ntk0) + net0] holds the SESOI on both sides; "
                       "C8 regime; power")),
    "C5": ClaimInfo(
        "kernel regression is exactly blind to locality (§8): NTK and NNGP test MSE of k-local and "
        "k-global agree in expectation over data sets, every L, both laws. Rule: TOST per (law, k, kernel, L) "
        "on the paired per-data-set difference, margin 0.02", "derived",
        rule=P.Rule(kind="equivalence", sesoi=MARGIN_BLIND, alpha=P.ALPHA, power=0.8,
                    null="|E[mse_loc - mse_glob]| >= margin", alternative="|E[mse_loc - mse_glob]| < margin",
                    fails_if="the pooled CI lies outside +-margin", unit="test MSE (E f^2 = 1, so trivial = 1)",
                    params={"design": "paired per data set (both targets on the same inputs)", "min_datasets": 200,
                            "margin_why": "[default] 2 % of the trivial error: a 5-30 % bug at the §12 NTK errors",
                            "cell_code": _CELL_CODE})),
    "C6": ClaimInfo(
        "feature learning drives it: the depth dependence of the local/global gap shrinks toward the "
        "NTK's as the lazy scale alpha grows. Rule [default]: IC = [glob(L_max) - glob(L_min)] - [loc(L_max) - "
        "loc(L_min)] per seed at the control N and depths; d_s = IC_s(alpha=1) - IC_s(alpha_max), one-sided paired "
        "t, SESOI 0.1; unconverged lazy runs make the cell uninformative, diverged ones count as d = 0", "paper",
        rule=_dir("mean d <= 0 (laziness does not shrink the interplay)", "mean d >= SESOI", _FAILS,
                  room="IC(alpha=1) - IC(NTK) >= SESOI (an interplay to shrink); every alpha=1 and alpha_max run "
                       "met the stopping rule; power", itt_worst_d=0.0)),
    "C7": ClaimInfo(
        "robustness: the depth effects of C1 (local) and C2 (global) under each variant run (other lr "
        "rule, batch 16 and 256, other input law, other target variant), each (variant, k, target) a cell of "
        "the C1/C2 rule; holds needs all five variants run", "default",
        rule=_dir("mean d <= 0", "mean d >= SESOI", _FAILS, room=_ROOM,
                  coverage="holds only if all five variants ran (else inconclusive)")),
    "C8": ClaimInfo(
        "every reported main run interpolates (stopping rule met) with P > N. Rule: identity, the "
        "fraction of flagged seeds of every main net job is 0; cells outside this regime are uninformative "
        "for C1-C4", "paper",
        rule=P.Rule(kind="identity", sesoi=TOL_C8, alpha=P.ALPHA, power=0.8, null="-", alternative="-",
                    fails_if="any main run diverged, missed the stopping rule, or has P <= N",
                    unit="fraction of flagged seeds", params={"cell_code": _CELL_CODE})),
    "X2": ClaimInfo(
        "control (nets): a fixed coordinate permutation, applied to train and test alike, leaves the "
        "error distribution unchanged (input law and init are permutation-invariant; this is also the true "
        "null that replaces the old X1). Rule: d_s = mean over the control depths of [err_perm - err] / trivial "
        "per seed, TOST per (k, target) cell (intersection-union over cells, Holm for 'outside'), margin 0.05",
        "derived",
        rule=P.Rule(kind="equivalence", sesoi=MARGIN_PERM, alpha=P.ALPHA, power=0.8,
                    null="|E d| >= margin", alternative="|E d| < margin", fails_if="the pooled CI lies outside +-margin",
                    unit="trivial error", params={"design": "paired per seed (same data set and init stream)",
                                                  "itt_worst": 1.0,
                                                  "margin_why": "[default] half the depth SESOI",
                                                  "cell_code": _CELL_CODE})),
    "X2K": ClaimInfo(
        "control (kernels): NTK and NNGP regression errors are identical, to rounding, under the "
        "permutation (dot-product kernels). Rule: identity, max over seeds and depths of |err_perm - err| / "
        "trivial <= 1e-6", "derived",
        rule=P.Rule(kind="identity", sesoi=TOL_KERNEL, alpha=P.ALPHA, power=0.8, null="-", alternative="-",
                    fails_if="any |err_perm - err| / trivial > 1e-6", unit="trivial error",
                    params={"cell_code": _CELL_CODE})),
}
BOOK = _kit.ClaimBook(CLAIMS)


# ============================================================================================
# spec and presets
# ============================================================================================


class Spec(StudySpec):
    """Every field carries its provenance tag (§0): [paper], [derived] or [default] (ours)."""

    # --- targets and data (§2, §3) ---
    ks: list[Annotated[int, Field(ge=1, le=64)]] = Field([2, 3], min_length=1, description="[default] target orders k (§10: 2 and 3)")
    d: int = Field(32, ge=2, le=4096, description="[default] input dimension d (§10: 32; 16 in CI; needs d >= k+1)")
    input_law: Literal["cube", "gauss"] = Field("cube", description="[default] input law (§2; cube is primary)")
    target_kind: Literal["regression", "sign"] = Field(
        "regression", description="[default] regression targets (primary) or their sign labels (§3)")
    sign_loss: Literal["logistic", "mse"] = Field(
        "logistic", description="[default] loss of the sign variant: BCE-with-logits or MSE on ±1 labels (§4)")
    block_start: int = Field(1, ge=1, le=4096, description="[default] 1-based start of the local window (§3)")
    global_norm: Literal["sqrt_d", "none"] = Field("sqrt_d", description="[default] k-global normalisation (§3)")
    tie_break: float | None = Field(
        None, ge=-1, le=1, description="[default] sgn(0) for the sign variant; required (+1 or -1) for even d (§3)")
    n_train: list[Annotated[int, Field(ge=1, le=10_000_000)]] = Field(
        [250, 500, 1000, 2000, 5000, 10000], min_length=1,
        description="[default] training-set sizes N (§10 learning-curve grid); used for every k "
                    "unless n_train_by_k names that k")
    n_train_by_k: dict[Annotated[int, Field(ge=1, le=64)], list[Annotated[int, Field(ge=1, le=10_000_000)]]] = Field(
        {}, description="[default] per-k override of n_train; pick N where the cells have room to move "
                        "(_depth_cells: err(L_min)/trivial at least the SESOI from 0 and from 1)")
    n_val: int = Field(2000, ge=0, le=1_000_000, description="[default] validation draws, used only to select lr (§10)")
    n_test: int = Field(10_000, ge=10, le=10_000_000, description="[default] fresh i.i.d. test draws per run (§10)")
    # --- nets (§4) ---
    depths: list[Annotated[int, Field(ge=1, le=1000)]] = Field([1, 2, 3, 4, 6, 8, 10], min_length=2, description="[default] depths L (hidden layers) (§4)")
    width: int = Field(512, ge=1, le=65536, description="[default] hidden width H (§4)")
    param: Literal["standard", "ntk"] = Field("standard", description="[default] parameterisation (§4)")
    allow_no_bias_odd_k: bool = Field(
        False, description="[derived] override of the §9 rule refusing bias=False with L=1 and odd k>=3")
    bias: bool = Field(True, description="[default] bias switch beta (§4, §9)")
    init: Literal["he_normal", "lecun_normal", "torch_default"] = Field(
        "he_normal", description="[default] init family (the papers' init could not be confirmed): he_normal, "
                                 "lecun_normal, or torch_default = nn.Linear's Kaiming-uniform(a=sqrt5) weights and "
                                 "uniform +-1/sqrt(fan_in) biases (nnphys.nets)")
    sigma_w2: float | None = Field(
        None, gt=0, le=100, description="[default] weight variance scale sigma_w^2 (Var W = sigma_w^2/fan_in; "
                                        "None: the family's, 2 he_normal, 1 lecun_normal, 1/3 torch_default) (§4)")
    sigma_b2: float | None = Field(
        None, ge=0, le=100, description="[default] bias variance sigma_b^2 (None: 0 standard, 0.1 ntk; torch_default "
                                        "standard: 1/3, a per-fan-in scale, Var b = sigma_b^2/fan_in) (§4)")
    # --- training (§10) ---
    kta_points: int = Field(128, ge=0, le=100_000, description="[default] C6 evidence: training points on which the "
                            "kernel-target alignment of each net's empirical NTK is taken at init and after "
                            "training (0: not computed)")
    lr_mode: Literal["tuned", "fixed"] = Field("tuned", description="[default] lr tuned per job on validation, or fixed (§10)")
    lr_grid: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        None, description="[default] lr grid (None: {0.003,0.01,0.03,0.05,0.1} standard, {0.03,0.1,0.3,1} ntk) (§10)")
    lr_fixed: float = Field(0.05, gt=0, le=100, description="[default] lr of lr_mode='fixed' (§10 sensitivity run)")
    batch_size: int = Field(32, ge=1, le=1_000_000, description="[default] minibatch size (§10)")
    max_epochs: int = Field(2000, ge=1, le=1_000_000, description="[default] epoch cap (§10)")
    stop_nmse: float = Field(1e-3, gt=0, le=1, description="[default] regression stop: train normalised MSE below (§10)")
    stop_loss: float = Field(1e-2, gt=0, le=10, description="[default] sign stop: 100% train accuracy and loss below (§10)")
    n_seeds: int = Field(5, ge=1, le=1000, description="[default] seeds per configuration (§10)")
    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed of the data and init streams")
    # --- baselines and controls ---
    kernel_baseline: bool = Field(True, description="[default] analytic NTK and NNGP regression on the same data (§6, C4)")
    kernel_sigma_b2: float | None = Field(
        None, ge=0, le=100, description="[default] sigma_b^2 of the analytic kernels (ntk param., with the net's "
                                        "sigma_w^2); None: the net's bias init variance (torch_default: the first "
                                        "layer's 1/(3d)), 0 without bias")
    alphas: list[Annotated[float, Field(gt=0, le=1e6)]] = Field([1.0, 10.0, 100.0], description="[default] lazy scales alpha for C6 (§4); alpha=1 is the main run")
    lazy_lr_grid: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        None, description="[default] lr grid of the alpha>1 runs (None: the main grid plus each value / 10, "
                          "because the linearised model cannot catapult and diverges at lrs a deep alpha=1 net survives)")
    width_sweep: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        [128, 512, 2048], description="[default] widths of the C6 width control (ntk param., alpha=1); [] skips it")
    control_depths: list[Annotated[int, Field(ge=1, le=1000)]] | None = Field(
        None, description="[default] depths of the C6/C7/X2 runs (None: min and max of depths)")
    control_n_by_k: dict[Annotated[int, Field(ge=1, le=64)], Annotated[int, Field(ge=1, le=10_000_000)]] = Field(
        {}, description="[default] N of the C6/C7/X2 runs per k (missing k: the smallest N of that k)")
    robustness: list[Literal["lr_other", "batch16", "batch256", "law_other", "sign"]] = Field(
        list(ROBUST_VARIANTS), description="[default] C7 variants run (each changes one thing of the main run; §11)")
    control_permutation: bool = Field(True, description="[derived] run control X2 (fixed coordinate permutation)")
    blind_datasets: int = Field(200, ge=0, le=100_000, description="[derived] C5: number of data sets (>= 200 per §11); 0 skips C5")
    blind_d: int = Field(12, ge=3, le=64, description="[derived] C5: input dimension (§12 uses 12)")
    blind_n: int = Field(150, ge=2, le=10_000, description="[derived] C5: training-set size (§12 uses 150)")
    blind_n_test: int = Field(2000, ge=10, le=100_000, description="[derived] C5: test points per data set (§12 uses 2000)")
    blind_laws: list[Literal["cube", "gauss"]] = Field(["cube", "gauss"], description="[derived] C5: input laws")
    blind_chunk: int = Field(100, ge=1, le=100_000, description="[default] C5: data sets per job")
    # ---- cross-field checks: each names its field (declared after the fields it reads) ----
    @field_validator("d")
    @classmethod
    def _d_vs_k(cls, d: int, info: ValidationInfo) -> int:
        ks = info.data.get("ks") or []
        if ks and d < max(ks) + 1:
            raise ValueError(f"must be >= k+1 for every k in ks so the d windows are distinct (got d={d}, ks={ks})")
        return d

    @field_validator("block_start")
    @classmethod
    def _block(cls, b: int, info: ValidationInfo) -> int:
        d = info.data.get("d")
        if d is not None and b > d:
            raise ValueError(f"must lie in 1..d (got block_start={b}, d={d})")
        return b

    @field_validator("blind_d")
    @classmethod
    def _blind_d(cls, bd: int, info: ValidationInfo) -> int:
        ks = info.data.get("ks") or []
        if ks and info.data.get("blind_datasets") and bd < max(ks) + 1:
            raise ValueError(f"must be >= k+1 for every k in ks, or C5 would skip that k (got blind_d={bd}, ks={ks})")
        return bd

    @field_validator("ks")
    @classmethod
    def _ks(cls, ks: list[int]) -> list[int]:
        if any(k < 1 for k in ks) or len(set(ks)) != len(ks):
            raise ValueError(f"must be distinct integers >= 1 (got {ks})")
        return ks

    @field_validator("tie_break")
    @classmethod
    def _tie(cls, tb: float | None, info: ValidationInfo) -> float | None:
        if tb is not None and tb not in (1.0, -1.0):
            raise ValueError(f"must be +1 or -1 (got {tb})")
        d = info.data.get("d")
        if info.data.get("target_kind") == "sign" and d is not None and d % 2 == 0 and tb is None:
            raise ValueError(f"the sign variant needs odd d or an explicit tie_break (+1/-1) (got d={d})")
        return tb

    @field_validator("n_train")
    @classmethod
    def _n(cls, n: list[int]) -> list[int]:
        if any(v < 2 for v in n):
            raise ValueError(f"every N must be >= 2 (got {n})")
        return n

    @field_validator("n_train_by_k")
    @classmethod
    def _nk(cls, nk: dict[int, list[int]], info: ValidationInfo) -> dict[int, list[int]]:
        for k, ns in nk.items():
            if not ns or any(v < 2 for v in ns):
                raise ValueError(f"k={k}: needs a non-empty list of N >= 2 (got {ns})")
        return nk

    @field_validator("depths")
    @classmethod
    def _depths(cls, ds: list[int]) -> list[int]:
        if any(L < 1 for L in ds) or len(set(ds)) != len(ds):
            raise ValueError(f"must be distinct integers >= 1 (got {ds})")
        return sorted(ds)

    @field_validator("lr_grid")
    @classmethod
    def _grid(cls, g: list[float] | None) -> list[float] | None:
        if g is not None and (not g or any(not (v > 0 and math.isfinite(v)) for v in g)):
            raise ValueError(f"must be a non-empty list of learning rates > 0 (got {g})")
        return g

    @field_validator("lazy_lr_grid")
    @classmethod
    def _lgrid(cls, g: list[float] | None) -> list[float] | None:
        return cls._grid(g)

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, a: list[float]) -> list[float]:
        if any(not (v >= 1 and math.isfinite(v)) for v in a):
            raise ValueError(f"every alpha must be a finite number >= 1 (got {a})")
        return a

    @field_validator("width_sweep")
    @classmethod
    def _widths(cls, w: list[int]) -> list[int]:
        if any(v < 1 for v in w):
            raise ValueError(f"widths must be >= 1 (got {w})")
        return w

    @field_validator("robustness")
    @classmethod
    def _rob(cls, r: list[str]) -> list[str]:
        return list(dict.fromkeys(r))

    @field_validator("bias")
    @classmethod
    def _bias_rule(cls, bias: bool, info: ValidationInfo) -> bool:
        # §9: without hidden biases the odd part of an L=1 net is linear, so odd k >= 3 is unlearnable
        odd = [k for k in info.data.get("ks") or [] if k % 2 == 1 and k >= 3]
        if not bias and 1 in (info.data.get("depths") or []) and odd and not info.data.get("allow_no_bias_odd_k"):
            raise ValueError(f"bias=False with depth L=1 cannot learn odd k>=3 (k={odd}): normalised MSE >= 1 "
                             "for any weights (§9); set allow_no_bias_odd_k=true to run it anyway")
        return bias

    # ---- derived settings ----
    def ns_for(self, k: int) -> list[int]:
        return sorted(self.n_train_by_k.get(k, self.n_train))

    def lrs(self, lr_mode: str | None = None, param: str | None = None) -> list[float]:
        mode = lr_mode or self.lr_mode
        if mode == "fixed":
            return [self.lr_fixed]
        if self.lr_grid is not None:
            return list(self.lr_grid)
        return list(STANDARD_LR_GRID if (param or self.param) == "standard" else NTK_LR_GRID)

    def ctrl_depths(self) -> list[int]:
        return sorted(set(self.control_depths or [self.depths[0], self.depths[-1]]))

    def ctrl_n(self, k: int) -> int:
        return self.control_n_by_k.get(k, self.ns_for(k)[0])

    def sw2(self) -> float:
        from nnphys.nets import INIT_SIGMA_W2

        return INIT_SIGMA_W2[self.init] if self.sigma_w2 is None else self.sigma_w2

    def sb2(self, param: str | None = None) -> float:
        """The net's bias init variance scale (nnphys.nets.default_sigma_b)."""
        from nnphys.nets import default_sigma_b

        return default_sigma_b(param or self.param, self.init) ** 2 if self.sigma_b2 is None else self.sigma_b2

    def kernel_sb2(self) -> float:
        """The analytic kernels' sigma_b^2, matched to the net's init: the bias variance itself, for
        torch_default (standard) the first layer's sigma_b^2/d. Where they cannot match exactly:
        nn.Linear's hidden-layer bias variance sigma_b^2/H differs from the first layer's and the
        kernel recursion has one sigma_b^2 (1/(3H) -> 0 as H -> infinity, so the first layer's is
        used); and uniform first-layer weights give pre-activations that are sums of d uniform terms,
        Gaussian only as d -> infinity (the infinite-width kernels depend on the init variance only)."""
        if not self.bias:
            return 0.0
        if self.kernel_sigma_b2 is not None:
            return self.kernel_sigma_b2
        sb2 = self.sb2()
        return sb2 / self.d if self.init == "torch_default" and self.param == "standard" else sb2




PRESETS: dict[str, dict[str, Any]] = {
    # quick: <= 5 min on 2 CPU cores (docs/studies/depth-locality.md gives the measured time). Regime
    # chosen by the informativeness rule, not by the verdict: the issue-10 probe table had
    # sigma_w^2 = 1/3 cells at d = 16 and 32 informative, He (sigma_w^2 = 2) ones with depth hurting
    # both or deep nets trivial; a 1-thread pilot of this grid (k=2 N=400, k=3 N=800) found both
    # cells informative. Controls are trimmed to fit (C7 runs one variant, so it cannot hold).
    "quick": {
        "d": 16, "ks": [2, 3], "n_train": [400], "n_train_by_k": {2: [200, 400], 3: [800]},
        "init": "torch_default", "n_val": 500, "n_test": 2000, "depths": [1, 2, 4, 6], "width": 128, "kta_points": 64,
        "lr_grid": [0.03, 0.1], "max_epochs": 300, "n_seeds": 3,
        "alphas": [1.0, 100.0], "width_sweep": [], "robustness": ["batch256"],
        "control_permutation": True, "control_depths": [1, 4],
        "blind_datasets": 200, "blind_n": 100, "blind_n_test": 500, "blind_chunk": 200,
    },
    # medium: the guide's published verdicts come from this scale (run by the lead). One lr (0.1, the
    # one the pilots selected at most depths), depths 1, 2, 4, 8 and n_val = 0 to approach the 60-min
    # budget on 2 CPU cores; the estimate from measured per-epoch costs is in the guide.
    "medium": {
        "d": 32, "ks": [2, 3], "n_train": [1000], "n_train_by_k": {2: [1000, 2000], 3: [1000]},
        "init": "torch_default", "n_val": 0, "n_test": 2000, "depths": [1, 2, 4, 8], "width": 256,
        "lr_grid": [0.1], "max_epochs": 300, "n_seeds": 5, "alphas": [1.0, 100.0], "width_sweep": [],
        "robustness": list(ROBUST_VARIANTS), "control_permutation": True,
        "control_depths": [1, 8], "blind_datasets": 200,
    },
    "paper": {
        "d": 32, "ks": [2, 3], "n_train": [250, 500, 1000, 2000, 5000, 10000],
        "n_test": 10_000, "n_val": 2000, "depths": [1, 2, 3, 4, 6, 8, 10], "width": 512,
        "max_epochs": 2000, "n_seeds": 5, "alphas": [1.0, 10.0, 100.0], "width_sweep": [128, 512, 2048],
        "robustness": list(ROBUST_VARIANTS), "control_permutation": True,
        "blind_datasets": 300,
    },
}


# ============================================================================================
# jobs
# ============================================================================================


def _settings(spec: Spec, variant: str = "main") -> dict[str, Any]:
    """The run settings of the main grid, with one change for a C7 variant."""
    s = {
        "d": spec.d, "law": spec.input_law, "target_kind": spec.target_kind,
        "loss": "mse" if spec.target_kind == "regression" else spec.sign_loss,
        "block_start": spec.block_start, "global_norm": spec.global_norm, "tie_break": spec.tie_break,
        "param": spec.param, "bias": spec.bias, "init": spec.init, "sigma_w2": spec.sw2(),
        "sigma_b2": spec.sb2(), "lrs": spec.lrs(), "batch_size": spec.batch_size,
        "max_epochs": spec.max_epochs, "stop_nmse": spec.stop_nmse, "stop_loss": spec.stop_loss,
        "n_val": spec.n_val if len(spec.lrs()) > 1 else 0, "n_test": spec.n_test, "kta_points": spec.kta_points,
    }
    if variant == "lr_other":
        s["lrs"] = spec.lrs("fixed" if spec.lr_mode == "tuned" else "tuned")
        s["n_val"] = spec.n_val if len(s["lrs"]) > 1 else 0
    elif variant == "batch16":
        s["batch_size"] = 16
    elif variant == "batch256":
        s["batch_size"] = 256
    elif variant == "law_other":
        s["law"] = "gauss" if spec.input_law == "cube" else "cube"
    elif variant == "sign":
        if spec.target_kind == "sign":
            s.update(target_kind="regression", loss="mse", tie_break=None)
        else:
            d = spec.d if spec.d % 2 == 1 or spec.tie_break is not None else spec.d + 1
            s.update(target_kind="sign", loss=spec.sign_loss, d=d)
    return s


CONTROL_MIN_VAL = 500  # [default] validation draws of a control run that selects among several lrs


def _n_val(spec: Spec, grid: list[float]) -> int:
    """Validation draws of a control (lazy or width) run with lr grid ``grid``: none for one lr; else
    at least ``CONTROL_MIN_VAL``, so the lr is chosen on validation even when the main grid has a
    single lr and ``n_val = 0`` (the medium preset: its lazy lr was taken by list order)."""
    return max(spec.n_val, CONTROL_MIN_VAL) if len(grid) > 1 else 0


def _data_seeds(spec: Spec) -> list[int]:
    return [derive(spec.seed, "data", s) for s in range(spec.n_seeds)]


def _net_job(spec: Spec, group: str, variant: str, target: str, k: int, n: int, depth: int,
             settings: dict[str, Any], width: int | None = None, param: str | None = None,
             alpha: float = 1.0, permute: bool = False) -> dict[str, Any]:
    s = dict(settings)
    if alpha != 1.0:
        grid = spec.lazy_lr_grid or sorted(set(s["lrs"]) | {round(v / 10, 12) for v in s["lrs"]})
        s["lrs"] = list(grid)
        s["n_val"] = _n_val(spec, grid)
    if param is not None and param != s["param"]:
        s.update(param=param, sigma_b2=spec.sb2(param), lrs=spec.lrs(param=param))
        s["n_val"] = _n_val(spec, s["lrs"])
    s["batch_size"] = min(s["batch_size"], n)
    members = [(i, lr) for i in range(spec.n_seeds) for lr in s["lrs"]]  # seed-major, as run_net stacks them
    return {
        "kind": "net", "group": group, "variant": variant, "target": target, "k": k, "n": n,
        "depth": depth, "width": width or spec.width, "alpha": float(alpha), "center": alpha != 1.0,
        "permute_seed": derive(spec.seed, "permute") if permute else None, "data_seeds": _data_seeds(spec),
        "init_seeds": [derive(spec.seed, "init", i, lr) for i, lr in members],
        "order_seeds": [derive(spec.seed, "order", i, lr) for i, lr in members],
        **s, "device": spec.device,
    }


def _kernel_job(spec: Spec, group: str, variant: str, k: int, n: int, settings: dict[str, Any],
                permute: bool = False) -> dict[str, Any]:
    keys = ("d", "law", "target_kind", "block_start", "global_norm", "tie_break", "n_test", "sigma_w2")
    return {
        "kind": "kernel", "group": group, "variant": variant, "k": k, "n": n, "depths": spec.depths,
        "kernel_sigma_b2": spec.kernel_sb2(), "bias": spec.bias,
        "permute_seed": derive(spec.seed, "permute") if permute else None,
        "data_seeds": _data_seeds(spec), **{kk: settings[kk] for kk in keys}, "device": spec.device,
    }


def main_jobs(spec: Spec, with_kernels: bool = True) -> list[dict[str, Any]]:
    """The main grid: both targets at every (k, N, L), plus the kernel baseline per (k, N)."""
    out: list[dict[str, Any]] = []
    main = _settings(spec)
    for k in spec.ks:
        for n in spec.ns_for(k):
            for target in TARGETS:
                for L in spec.depths:
                    out.append(_net_job(spec, "main", "main", target, k, n, L, main))
            if spec.kernel_baseline and with_kernels:
                out.append(_kernel_job(spec, "main", "main", k, n, main))
    return out


def jobs(spec: Spec) -> list[dict[str, Any]]:
    """All jobs of ``spec``: main grid, kernel baselines, C5 blindness, C6/C7 and the X controls."""
    out = main_jobs(spec)
    main = _settings(spec)
    cd = spec.ctrl_depths()
    for k in spec.ks:
        n = spec.ctrl_n(k)
        for target in TARGETS:
            for L in cd:
                for a in spec.alphas:
                    if a != 1.0:
                        out.append(_net_job(spec, "lazy", f"alpha={a:g}", target, k, n, L, main, alpha=a))
                for h in spec.width_sweep:
                    out.append(_net_job(spec, "width", f"ntk_H={h}", target, k, n, L, main, width=h, param="ntk"))
        for v in spec.robustness:
            s = _settings(spec, v)
            for target in TARGETS:
                for L in cd:
                    out.append(_net_job(spec, "robust", v, target, k, n, L, s))
            if v == "sign" and spec.kernel_baseline:
                out.append(_kernel_job(spec, "robust", v, k, n, s))
        if spec.control_permutation:
            for target in TARGETS:
                for L in cd:
                    out.append(_net_job(spec, "x2", "permuted", target, k, n, L, main, permute=True))
            if spec.kernel_baseline:
                out.append(_kernel_job(spec, "x2", "permuted", k, n, main, permute=True))
    if spec.blind_datasets:
        for law in spec.blind_laws:
            for k in spec.ks:
                for start in range(0, spec.blind_datasets, spec.blind_chunk):
                    stop = min(spec.blind_datasets, start + spec.blind_chunk)
                    out.append({
                        "kind": "blind", "law": law, "k": k, "d": spec.blind_d, "n": spec.blind_n,
                        "n_test": spec.blind_n_test, "depths": spec.depths, "kernel_sigma_b2": spec.kernel_sb2(),
                        "bias": spec.bias, "sigma_w2": spec.sw2(),
                        "dataset_seeds": [derive(spec.seed, "blind", i) for i in range(start, stop)],
                        "device": spec.device,
                    })
    return out


# ============================================================================================
# run
# ============================================================================================


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (pure function of ``job``); dispatches on ``job["kind"]`` (see ``_depth_run``)."""
    kind = job.get("kind")
    if kind == "net":
        return _depth_run.run_net(job)
    if kind == "kernel":
        return _depth_run.run_kernel(job)
    if kind == "blind":
        return _depth_run.run_blind(job)
    raise ConfigError("kind", f"unknown job kind {kind!r}")


# ============================================================================================
# claims: every claim through the protocol (``P.cell`` per cell, ``P.judge`` over cells, the rule
# pre-registered in CLAIMS). C1-C3 are here; C4-C8 and X2, X2K are in ``_depth_controls``.
# ============================================================================================


def _key(p: dict[str, Any]) -> tuple:
    return (p["group"], p["variant"], p["target"], p["k"], p["n"], p["depth"])


@functools.lru_cache(maxsize=16)
def _plan(spec_json: str, cls: type) -> dict[str, dict[str, Any]]:
    """``{canonical_json(job): job}`` of a spec's jobs, cached: the calibration harness and the
    verdict-stability bootstrap call ``analyse`` hundreds of times on one spec."""
    return {canonical_json(j): j for j in jobs(cls.model_validate_json(spec_json))}


def _runs(spec: Spec, results: list[Result]) -> Runs:
    return Runs(_plan(spec.model_dump_json(), type(spec)), results, _key)


def depth_cells(cid: str, runs: Runs, spec: Any, group: str = "main", variant: str = "main", ns_for=None,
                depths: list[int] | None = None, rule: P.Rule | None = None,
                label=lambda k, n: f"k={k} N={n}") -> tuple[list[P.Cell], list[str]]:
    """The C1/C2/C3 cells (``_depth_cells.depth_cell``) of every (k, N) of one group/variant, and the
    cells whose results are missing (named; they are left out, never judged)."""
    depths = depths or spec.depths
    ns_for = ns_for or spec.ns_for
    cells, missing = [], []
    for k in spec.ks:
        for n in ns_for(k):
            try:
                cells.append(depth_cell(cid, runs, group, variant, k, n, depths[0], depths[-1],
                                        rule or CLAIMS[cid].rule, label=label(k, n)))
            except Missing as e:
                missing.append(f"{label(k, n)}: {e.what}")
    return cells, missing


def judged(cid: str, cells: list[P.Cell], missing: list[str], **evidence: Any) -> Claim:
    """``P.judge`` of ``cells`` under ``cid``'s rule, with the missing cells and ``evidence`` added;
    :class:`Missing` when no cell has data."""
    if not cells:
        raise Missing("; ".join(missing) or "no cell")
    j = P.judge(cells, CLAIMS[cid].rule)
    j.evidence.update({"missing_cells": missing, **evidence})
    if missing:
        j = dataclasses.replace(j, summary=f"{j.summary}; missing: {len(missing)} cell(s)")
    return BOOK.judged(cid, j)


def _c123(cid: str, runs: Runs, spec: Spec) -> Claim:
    cells, missing = depth_cells(cid, runs, spec)
    return judged(cid, cells, missing, seeds=spec.n_seeds, depths=[spec.depths[0], spec.depths[-1]])


@BOOK.rule("C1")
def claim_c1(runs: Runs, spec: Spec) -> Claim:
    return _c123("C1", runs, spec)


@BOOK.rule("C2")
def claim_c2(runs: Runs, spec: Spec) -> Claim:
    return _c123("C2", runs, spec)


@BOOK.rule("C3")
def claim_c3(runs: Runs, spec: Spec) -> Claim:
    return _c123("C3", runs, spec)


def _judge(cid: str, cells_of, runs: Runs, spec: Spec, *args: Any) -> Claim:
    """``judged`` of the cells ``cells_of(runs, spec, *args, rule)`` returns (``_depth_controls``)."""
    cells, missing, ev = cells_of(runs, spec, *args, CLAIMS[cid].rule)
    return judged(cid, cells, missing, **ev)


@BOOK.rule("C4")
def claim_c4(runs: Runs, spec: Spec) -> Claim:
    return _judge("C4", ctl.c4_cells, runs, spec)


@BOOK.rule("C5")
def claim_c5(runs: Runs, spec: Spec) -> Claim:
    if not spec.blind_datasets:
        return BOOK.inconclusive("C5", "not run (blind_datasets = 0)", run=False)
    return _judge("C5", ctl.c5_cells, runs, spec)


@BOOK.rule("C6")
def claim_c6(runs: Runs, spec: Spec) -> Claim:
    return _judge("C6", ctl.c6_cells, runs, spec)


@BOOK.rule("C7")
def claim_c7(runs: Runs, spec: Spec) -> Claim:
    cells, missing, ev = ctl.c7_cells(runs, spec, CLAIMS["C7"].rule)
    c = judged("C7", cells, missing, **ev)
    if c.verdict == "holds" and ev["not_run"]:  # the pre-registered coverage condition of C7's rule
        c = dataclasses.replace(c, verdict="inconclusive",
                                summary=f"{c.summary}; inconclusive: variants not run {ev['not_run']}")
    return c


@BOOK.rule("C8")
def claim_c8(runs: Runs, spec: Spec, planned: list[tuple]) -> Claim:
    return _judge("C8", ctl.c8_cells, runs, spec, planned)


@BOOK.rule("X2")
def claim_x2(runs: Runs, spec: Spec) -> Claim:
    if not spec.control_permutation:
        return BOOK.inconclusive("X2", "control X2 not run", run=False)
    return _judge("X2", ctl.x2_cells, runs, spec)


@BOOK.rule("X2K")
def claim_x2k(runs: Runs, spec: Spec) -> Claim:
    if not spec.control_permutation or not spec.kernel_baseline:
        return BOOK.inconclusive("X2K", "control X2 (kernels) not run", run=False)
    return _judge("X2K", ctl.x2k_cells, runs, spec)


def figure_cells(runs: Runs, spec: Spec) -> list[dict[str, Any]]:
    """Per main (k, N): whether its C3 cell is informative (``None``: data missing), for the figures."""
    out = []
    for k in spec.ks:
        for n in spec.ns_for(k):
            try:
                c = depth_cell("C3", runs, "main", "main", k, n, spec.depths[0], spec.depths[-1], CLAIMS["C3"].rule)
                out.append({"k": k, "N": n, "informative": bool(c.informative)})
            except Missing:
                out.append({"k": k, "N": n, "informative": None})
    return out


# ============================================================================================
# analyse
# ============================================================================================


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    """Claims C1-C8 and controls X2, X2K from the results of ``spec``'s jobs. Only missing data
    (``_kit.Missing``) turns a claim ``inconclusive``; any other exception is a bug and propagates."""
    runs = _runs(spec, results)
    claims = [BOOK.guard(cid, fn, runs, spec) for cid, fn in (("C1", claim_c1), ("C2", claim_c2), ("C3", claim_c3))]
    claims.append(BOOK.guard("C4", claim_c4, runs, spec))
    claims.append(BOOK.guard("C5", claim_c5, runs, spec))
    claims.append(BOOK.guard("C6", claim_c6, runs, spec))
    claims.append(BOOK.guard("C7", claim_c7, runs, spec))
    main_keys = [_key(j) for j in _plan(spec.model_dump_json(), type(spec)).values()
                 if j["kind"] == "net" and j["group"] == "main"]  # = main_jobs(spec, with_kernels=False)
    claims.append(BOOK.guard("C8", claim_c8, runs, spec, main_keys))
    claims.append(BOOK.guard("X2", claim_x2, runs, spec))
    claims.append(BOOK.guard("X2K", claim_x2k, runs, spec))
    return claims


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """Seeds drawn with replacement, one draw shared by every net and kernel job (``_depth_cells``)."""
    return resample_seeds(results, rng)


# ============================================================================================
# figures
# ============================================================================================

def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """Test error vs depth (nets vs NTK, local vs global), vs N where >= 2 N per k ran, first-layer
    movement vs depth (C6 evidence) and C5 blindness; error bars are +-1 s.e. over seeds
    (drawing code: ``_depth_figs``)."""
    runs = _runs(spec, results)
    return _kit.link_claims(_depth_figs.figures(spec, runs, figure_cells(runs, spec)), FIGURE_CLAIMS)


FIGURE_CLAIMS = {"error_vs_depth": ("C1", "C2", "C3", "C4", "C8"), "error_vs_n": ("C1", "C2"),
                 "feature_learning": ("C6",), "c5_ntk_blindness": ("C5",)}


# ============================================================================================
# registration
# ============================================================================================

STUDY = Study(
    name="depth-locality",
    papers=("Is deeper better? It depends on locality of relevant features (arXiv 2005.12488)",
            "Interplay between depth of neural networks and locality of target functions (arXiv 2201.12082)"),
    spec=Spec, presets=PRESETS, jobs=jobs, run=run, analyse=analyse, figures=figures, claims=CLAIMS,
    # 2: label-derived seeds (nnphys.seeding), init family, matched kernel sigma_b^2, informativeness rule.
    # The claim protocol changed the analysis only (and dropped the X1 jobs): job keys are unchanged.
    schema_version=2,
    description="Depth vs locality of target functions: SGD-trained FC ReLU nets of varying depth on k-local "
                "and k-global targets, against the analytic NTK/NNGP (exactly blind to locality), with lazy, "
                "robustness and permutation controls; every claim judged by the claim protocol (paired per-seed "
                "effects, SESOI, room to move, power, intention to treat).",
    resample=resample,
    calibration=_depth_calibration.study_calibration(),
    headline=("C1", "C2", "C3"),  # [default] the interplay the papers lead with
)
