"""The spec of study ``depth-locality``: every field with its provenance tag, the presets per scale.

Tags: [paper] (stated by the papers), [derived] (follows mathematically, checked by the tests),
[default] (our choice, always a field). Section names in parentheses refer to the study guide
``docs/studies/depth-locality.md``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from nnphys.studies.base import StudySpec

STANDARD_LR_GRID = (0.003, 0.01, 0.03, 0.05, 0.1)
NTK_LR_GRID = (0.03, 0.1, 0.3, 1.0)
TARGETS = ("local", "global")  # the k-local and the k-global target
# the C7 run variants, each changing one thing of the main run (guide: "Claims and their rules")
ROBUST_VARIANTS = ("lr_other", "batch16", "batch256", "law_other", "sign")


class Spec(StudySpec):
    """Every field carries its provenance tag: [paper], [derived] or [default] (ours)."""

    # --- targets and data (guide: "Definitions", inputs and targets) ---
    ks: list[Annotated[int, Field(ge=1, le=64)]] = Field([2, 3], min_length=1, description="[default] target orders k (2 and 3)")
    d: int = Field(32, ge=2, le=4096, description="[default] input dimension d (32; 16 in CI; needs d >= k+1)")
    input_law: Literal["cube", "gauss"] = Field("cube", description="[default] input law (cube is primary)")
    target_kind: Literal["regression", "sign"] = Field(
        "regression", description="[default] regression targets (primary) or their sign labels")
    sign_loss: Literal["logistic", "mse"] = Field(
        "logistic", description="[default] loss of the sign variant: BCE-with-logits or MSE on ±1 labels")
    block_start: int = Field(1, ge=1, le=4096, description="[default] 1-based start of the local window")
    global_norm: Literal["sqrt_d", "none"] = Field("sqrt_d", description="[default] k-global normalisation")
    tie_break: float | None = Field(
        None, ge=-1, le=1, description="[default] sgn(0) for the sign variant; required (+1 or -1) for even d")
    n_train: list[Annotated[int, Field(ge=1, le=10_000_000)]] = Field(
        [250, 500, 1000, 2000, 5000, 10000], min_length=1,
        description="[default] training-set sizes N (a learning-curve grid); used for every k "
                    "unless n_train_by_k names that k")
    n_train_by_k: dict[Annotated[int, Field(ge=1, le=64)], list[Annotated[int, Field(ge=1, le=10_000_000)]]] = Field(
        {}, description="[default] per-k override of n_train; pick N where the cells have room to move "
                        "(room to move: err(L_min)/trivial at least the SESOI from 0 and from 1)")
    n_val: int = Field(2000, ge=0, le=1_000_000, description="[default] validation draws, used only to select lr")
    n_test: int = Field(10_000, ge=10, le=10_000_000, description="[default] fresh i.i.d. test draws per run")
    # --- nets (guide: "Definitions", nets) ---
    depths: list[Annotated[int, Field(ge=1, le=1000)]] = Field([1, 2, 3, 4, 6, 8, 10], min_length=2, description="[default] depths L (hidden layers)")
    width: int = Field(512, ge=1, le=65536, description="[default] hidden width H")
    param: Literal["standard", "ntk"] = Field("standard", description="[default] parameterisation")
    allow_no_bias_odd_k: bool = Field(
        False, description="[derived] override of the bias rule refusing bias=False with L=1 and odd k>=3")
    bias: bool = Field(True, description="[default] bias switch beta")
    init: Literal["he_normal", "lecun_normal", "torch_default"] = Field(
        "he_normal", description="[default] init family (the papers' init could not be confirmed): he_normal, "
                                 "lecun_normal, or torch_default = nn.Linear's Kaiming-uniform(a=sqrt5) weights and "
                                 "uniform +-1/sqrt(fan_in) biases (nnphys.nets)")
    sigma_w2: float | None = Field(
        None, gt=0, le=100, description="[default] weight variance scale sigma_w^2 (Var W = sigma_w^2/fan_in; "
                                        "None: the family's, 2 he_normal, 1 lecun_normal, 1/3 torch_default)")
    sigma_b2: float | None = Field(
        None, ge=0, le=100, description="[default] bias variance sigma_b^2 (None: 0 standard, 0.1 ntk; torch_default "
                                        "standard: 1/3, a per-fan-in scale, Var b = sigma_b^2/fan_in)")
    # --- training (guide: "Definitions", training) ---
    kta_points: int = Field(128, ge=0, le=100_000, description="[default] C6 evidence: training points on which the "
                            "kernel-target alignment of each net's empirical NTK is taken at init and after "
                            "training (0: not computed)")
    lr_mode: Literal["tuned", "fixed"] = Field("tuned", description="[default] lr tuned per job on validation, or fixed")
    lr_grid: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        None, description="[default] lr grid (None: {0.003,0.01,0.03,0.05,0.1} standard, {0.03,0.1,0.3,1} ntk)")
    lr_fixed: float = Field(0.05, gt=0, le=100, description="[default] lr of lr_mode='fixed' (a sensitivity run)")
    batch_size: int = Field(32, ge=1, le=1_000_000, description="[default] minibatch size")
    max_epochs: int = Field(2000, ge=1, le=1_000_000, description="[default] epoch cap")
    stop_nmse: float = Field(1e-3, gt=0, le=1, description="[default] regression stop: train normalised MSE below")
    stop_loss: float = Field(1e-2, gt=0, le=10, description="[default] sign stop: 100% train accuracy and loss below")
    n_seeds: int = Field(5, ge=1, le=1000, description="[default] seeds per configuration")
    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed of the data and init streams")
    # --- baselines and controls ---
    kernel_baseline: bool = Field(True, description="[default] analytic NTK and NNGP regression on the same data (C4)")
    kernel_sigma_b2: float | None = Field(
        None, ge=0, le=100, description="[default] sigma_b^2 of the analytic kernels (ntk param., with the net's "
                                        "sigma_w^2); None: the net's bias init variance (torch_default: the first "
                                        "layer's 1/(3d)), 0 without bias")
    alphas: list[Annotated[float, Field(gt=0, le=1e6)]] = Field([1.0, 10.0, 100.0], description="[default] lazy scales alpha for C6; alpha=1 is the main run")
    lazy_lr_grid: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        None, description="[default] lr grid of the alpha>1 runs (None: the main grid plus each value / 10, "
                          "because the linearised model cannot catapult and diverges at lrs a deep alpha=1 net survives)")
    width_sweep: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        [128, 512, 2048], description="[default] widths of the C6 width control (ntk param., alpha=1); [] skips it")
    width_lr_grid: list[Annotated[float, Field(gt=0, le=100)]] | None = Field(
        None, description="[default] lr grid of the width-sweep runs (ntk param.), chosen per job on validation "
                          "(None: lr_grid, else the ntk grid {0.03, 0.1, 0.3, 1}); an ntk-param. lr is not a "
                          "standard-param. one (the hidden layers' effective lr is lr / H)")
    width_max_epochs: int | None = Field(
        None, ge=1, le=1_000_000, description="[default] epoch cap of the width-sweep runs (None: the alpha = 1 "
                                              "cap of their depth)")
    control_depths: list[Annotated[int, Field(ge=1, le=1000)]] | None = Field(
        None, description="[default] depths of the C6/C7/X2 runs (None: min and max of depths)")
    control_n_by_k: dict[Annotated[int, Field(ge=1, le=64)], Annotated[int, Field(ge=1, le=10_000_000)]] = Field(
        {}, description="[default] N of the C6/C7/X2 runs per k (missing k: the smallest N of that k)")
    robustness: list[Literal["lr_other", "batch16", "batch256", "law_other", "sign"]] = Field(
        list(ROBUST_VARIANTS), description="[default] C7 variants run (each changes one thing of the main run)")
    control_permutation: bool = Field(True, description="[derived] run control X2 (fixed coordinate permutation)")
    blind_datasets: int = Field(200, ge=0, le=100_000, description="[derived] C5: number of data sets (>= 200 for an informative cell); 0 skips C5")
    blind_d: int = Field(12, ge=3, le=64, description="[derived] C5: input dimension (the reference values use 12)")
    blind_n: int = Field(150, ge=2, le=10_000, description="[derived] C5: training-set size (the reference values use 150)")
    blind_n_test: int = Field(2000, ge=10, le=100_000, description="[derived] C5: test points per data set (the reference values use 2000)")
    blind_laws: list[Literal["cube", "gauss"]] = Field(["cube", "gauss"], description="[derived] C5: input laws")
    blind_chunk: int = Field(100, ge=1, le=100_000, description="[default] C5: data sets per job")
    # --- the main grid's cells (guide: "The medium design"): init x target kind, each its own lr grid ---
    main_inits: list[Literal["he_normal", "lecun_normal", "torch_default"]] = Field(
        [], description="[default] init families of the main grid, each a cell with its family's sigma_w^2 and bias "
                        "variance and its own lr grid (lr_grid_by_init); []: the single cell of init/sigma_w2 "
                        "(variant 'main'); the first is the control cell's (C6, C7, X2)")
    main_kinds: list[Literal["regression", "sign"]] = Field(
        [], description="[default] target kinds of the main grid (regression targets and their sign labels, "
                        "classification error); []: target_kind only. A sign cell at even d without tie_break "
                        "runs at d+1 (no ties), as C7's sign variant")
    lr_grid_by_init: dict[str, list[Annotated[float, Field(gt=0, le=100)]]] = Field(
        {}, description="[default] lr grid of the main cells of one init family (chosen on validation per job); "
                        "missing family: lr_grid")
    k_rule: Literal["all", "learnable"] = Field(
        "all", description="[default] which (k, N) are run: all, or 'learnable' = k <= 2 always and k >= 3 only "
                           "where N >= sum_{j<=k} C(d, j), the number of parity monomials of degree <= k (fixed "
                           "before any run; guide: 'The k = 3 rule')")
    max_epochs_by_depth: dict[Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        {}, description="[default] epoch cap of the alpha = 1 runs per depth L (missing L: max_epochs); a run "
                        "stops at the stopping rule, so a cap only bounds the cost of members that never meet it")
    lazy_max_epochs: int | None = Field(
        None, ge=1, le=1_000_000, description="[default] epoch cap of the alpha > 1 (lazy) runs (None: max_epochs)")
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
        # the bias rule (guide: "Definitions"): without hidden biases the odd part of an L=1 net is linear, so odd k >= 3 is unlearnable
        odd = [k for k in info.data.get("ks") or [] if k % 2 == 1 and k >= 3]
        if not bias and 1 in (info.data.get("depths") or []) and odd and not info.data.get("allow_no_bias_odd_k"):
            raise ValueError(f"bias=False with depth L=1 cannot learn odd k>=3 (k={odd}): normalised MSE >= 1 "
                             "for any weights; set allow_no_bias_odd_k=true to run it anyway")
        return bias

    # ---- derived settings ----
    def ns_for(self, k: int) -> list[int]:
        ns = sorted(self.n_train_by_k.get(k, self.n_train))
        return [n for n in ns if learnable(k, self.d, n)] if self.k_rule == "learnable" else ns

    def active_ks(self) -> list[int]:
        """The ks with at least one N to run (``k_rule``); every k of ``ks`` when ``k_rule = 'all'``."""
        return [k for k in self.ks if self.ns_for(k)]

    def main_cells(self) -> list[tuple[str, "Spec"]]:
        """The main grid's cells ``(variant, cell spec)``: ``[("main", self)]`` without ``main_inits`` and
        ``main_kinds`` (the single-cell presets, job keys unchanged); else one ``"init/kind"`` per init x
        kind, each the spec with that init (its family's sigma_w^2 and bias variance), that target kind
        and its lr grid. The first is the control cell (C6 lazy runs, C7 variants, X2)."""
        if not self.main_inits and not self.main_kinds:
            return [("main", self)]
        out = []
        for init in self.main_inits or [self.init]:
            for kind in self.main_kinds or [self.target_kind]:
                up: dict[str, Any] = {"init": init, "target_kind": kind, "main_inits": [], "main_kinds": [],
                                      "lr_grid": self.lr_grid_by_init.get(init, self.lr_grid)}
                if self.main_inits:
                    up.update(sigma_w2=None, sigma_b2=None, kernel_sigma_b2=None)
                if kind == "sign":
                    up["d"] = sign_d(self.d, self.tie_break)
                out.append((f"{init}/{kind}", self.model_copy(update=up)))
        return out

    def control_cell(self) -> tuple[str, "Spec"]:
        return self.main_cells()[0]

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


def sign_d(d: int, tie_break: float | None = None) -> int:
    """The input dimension of a sign-label run: ``d``, or ``d + 1`` when ``d`` is even and no tie break
    is set (an odd d leaves no ties among the global target's sign labels)."""
    return d if d % 2 == 1 or tie_break is not None else d + 1


def learnable(k: int, d: int, n: int) -> bool:
    """The k rule [default], fixed before any run: k <= 2 always; k >= 3 only when ``n`` reaches the number
    of parity monomials of degree <= k in d coordinates, ``sum_{j<=k} C(d, j)``. Below it a dot-product
    kernel (the NTK at every depth) cannot fit a degree-k parity (its spectrum fits lower degrees first),
    and the medium run of 44ee175 measured the 3-global target at 1.23-1.51 x trivial at every depth
    (d = 32, N = 1000; the count is 5489). Quick's k = 3 cell (d = 16, N = 800 >= 697) passes it."""
    return k <= 2 or n >= sum(math.comb(d, j) for j in range(k + 1))


PRESETS: dict[str, dict[str, Any]] = {
    # quick: <= 5 min on 2 CPU cores (the guide gives the measured time). Regime chosen by the
    # informativeness rule, not by the verdict (guide: "How the quick preset was chosen": sigma_w^2 = 1/3
    # cells at d = 16 and 32 were informative, He ones had depth hurting both targets or deep nets
    # trivial; a pilot of this grid found both cells informative). Controls are trimmed to fit (C7 runs
    # one variant, so it cannot hold).
    "quick": {
        "d": 16, "ks": [2, 3], "n_train": [400], "n_train_by_k": {2: [200, 400], 3: [800]},
        "init": "torch_default", "n_val": 500, "n_test": 2000, "depths": [1, 2, 4, 6], "width": 128, "kta_points": 64,
        "lr_grid": [0.03, 0.1], "max_epochs": 300, "n_seeds": 3,
        "alphas": [1.0, 100.0], "width_sweep": [], "robustness": ["batch256"],
        "control_permutation": True, "control_depths": [1, 4],
        "blind_datasets": 200, "blind_n": 100, "blind_n_test": 500, "blind_chunk": 200,
    },
    # medium ("the decisive experiment"; guide: "The medium design"): d = 32, k = 2 (k = 3 only
    # where the k rule says its target is learnable: nowhere at N <= 1000, d = 32), N spanning the hard
    # regime, depths 1, 2, 4, 8, both targets on the same data, four main cells = two inits (He first:
    # the control cell, whose lazy runs converge; PyTorch's default) x two target kinds (regression; sign
    # labels, classification error, at d = 33, trained with MSE on the +-1 labels: the logistic stopping rule
    # needed 2-5x the epochs in the pilot), each init with its own lr grid chosen per job on n_val
    # validation draws. Trimmed to the lead's 40-min budget on 2 cores (guide: "Cost of medium"): N = 500
    # and 2000 dropped and 5 seeds (the issue asks 10). The lr grids, caps and the control cell come from
    # a timing pilot of single jobs (epochs to the stopping rule and divergence per lr; no errors read).
    # The width sweep (C6W: the spec's widths 128, 512, 2048, ntk param., alpha = 1, at the control cell,
    # N and depths) runs on its own ntk-param. lr grid {0.1, 0.3}, from a second such pilot (2026-12-07:
    # lr 1 diverged at L = 8 for H = 32 and 512, lr 0.03 needed 300-800 epochs; 0.1 and 0.3 met the
    # stopping rule within 670 epochs at L = 1 and 210 at L = 8 for H = 32-2048), under the per-depth caps.
    "medium": {
        "d": 32, "ks": [2, 3], "k_rule": "learnable", "n_train": [250, 1000], "n_train_by_k": {},
        "main_inits": ["he_normal", "torch_default"], "main_kinds": ["regression", "sign"], "sign_loss": "mse",
        "init": "he_normal", "lr_grid": [0.003, 0.01], "lr_fixed": 0.005,  # C7 lr_other: one fixed lr for He
        "lr_grid_by_init": {"he_normal": [0.003, 0.01], "torch_default": [0.03, 0.1]},
        "n_val": 500, "n_test": 2000, "depths": [1, 2, 4, 8], "width": 256, "kta_points": 64,
        "max_epochs": 2000, "max_epochs_by_depth": {1: 2000, 2: 1500, 4: 1000, 8: 800}, "n_seeds": 5,
        "alphas": [1.0, 10.0, 100.0], "lazy_lr_grid": [0.003, 0.01], "lazy_max_epochs": 1500,
        "width_sweep": [128, 512, 2048], "width_lr_grid": [0.1, 0.3],
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
