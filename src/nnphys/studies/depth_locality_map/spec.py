"""The spec of study ``depth-locality-map``: the map's axes, the per-cell settings and the presets.

Every setting not named here is depth-locality's default (:meth:`Spec.cell_spec`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from nnphys.nets import INITS
from nnphys.studies.base import StudySpec
from nnphys.studies.depth_locality.spec import Spec as DLSpec
from nnphys.studies.depth_locality.spec import sign_d


class Spec(StudySpec):
    """The map's axes and the per-cell settings (every other setting is depth-locality's default)."""

    inits: list[str] = Field(["torch_default", "he_normal:1", "he_normal"], min_length=1,
                             description="[default] init cells: 'family' or 'family:sigma_w2' (family in he_normal, "
                                         "lecun_normal, torch_default; no scale: the family's own)")
    ds: list[Annotated[int, Field(ge=3, le=4096)]] = Field([16, 32], min_length=1, description="[default] input dimensions d")
    ns: list[Annotated[int, Field(ge=2, le=10_000_000)]] = Field([1000, 2000], min_length=1, description="[default] N")
    widths: list[Annotated[int, Field(ge=1, le=65536)]] = Field([256], min_length=1, description="[default] widths H")
    ks: list[Annotated[int, Field(ge=1, le=64)]] = Field([2], min_length=1, description="[default] target orders k")
    depths: list[Annotated[int, Field(ge=1, le=1000)]] = Field([1, 2, 3, 4, 6, 8], min_length=2,
                                                                 description="[default] depths L")
    n_seeds: int = Field(5, ge=2, le=1000, description="[default] seeds per cell")
    lr_grid: list[Annotated[float, Field(gt=0, le=100)]] = Field([0.03, 0.1, 0.3], min_length=1,
                                                                   description="[default] lr grid, tuned per job on validation")
    max_epochs: int = Field(500, ge=1, le=1_000_000, description="[default] epoch cap")
    n_val: int = Field(1000, ge=0, le=1_000_000, description="[default] validation draws (lr selection only)")
    n_test: int = Field(5000, ge=10, le=10_000_000, description="[default] test draws")
    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed")
    max_epochs_by_depth: dict[Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=1, le=1_000_000)]] = Field(
        {}, description="[default] epoch cap per depth L (missing L: max_epochs), as depth-locality's")
    kernels: bool = Field(False, description="[default] the analytic NTK/NNGP baseline per cell on the nets' data "
                                             "sets (claim M4, C4's rule: the NTK half of the headline)")
    kinds: list[Literal["regression", "sign"]] = Field(
        ["regression"], min_length=1, description="[default] target kinds: regression targets and/or their sign "
                                                  "labels (classification error; even d runs at d+1, no ties)")
    lr_grid_by_init: dict[str, list[Annotated[float, Field(gt=0, le=100)]]] = Field(
        {}, description="[default] lr grid of the cells of one init label ('family' or 'family:sigma_w2'), "
                        "tuned per job on validation; missing label: lr_grid")

    @field_validator("inits")
    @classmethod
    def _inits(cls, v: list[str]) -> list[str]:
        for s in v:
            fam, _, scale = s.partition(":")
            if fam not in INITS:
                raise ValueError(f"family must be one of {', '.join(INITS)} (got {s!r})")
            if scale:
                try:
                    x = float(scale)
                except ValueError:
                    raise ValueError(f"scale must be a number (got {s!r})") from None
                if not (0 < x <= 100 and math.isfinite(x)):
                    raise ValueError(f"sigma_w2 must lie in (0, 100] (got {s!r})")
        if len(set(v)) != len(v):
            raise ValueError(f"must be distinct (got {v})")
        return v

    @field_validator("ds")
    @classmethod
    def _ds(cls, v: list[int], info) -> list[int]:
        ks = info.data.get("ks") or []
        if ks and min(v) < max(ks) + 1:
            raise ValueError(f"every d must be >= k+1 (got ds={v}, ks={ks})")
        return v

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"must be distinct (got {v})")
        return v

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"must be distinct (got {v})")
        return sorted(v)

    def cells(self) -> list[dict[str, Any]]:
        """One dict per cell: init, sigma_w2 (None: the family's), d, N, width, k and target kind."""
        out = []
        for s in self.inits:
            fam, _, scale = s.partition(":")
            for d in self.ds:
                for w in self.widths:
                    for n in self.ns:
                        for k in self.ks:
                            for kind in self.kinds:
                                out.append({"label": s, "init": fam, "sigma_w2": float(scale) if scale else None,
                                            "d": d, "N": n, "width": w, "k": k, "kind": kind})
        return out

    def cell_spec(self, c: dict[str, Any]) -> DLSpec:
        """The depth-locality spec whose main grid is cell ``c`` (controls off; kernels if ``kernels``)."""
        sign = c.get("kind", "regression") == "sign"
        extra: dict[str, Any] = {}
        if sign:  # the sign labels at odd d (no ties), as depth-locality's sign cells
            extra = {"target_kind": "sign", "d": sign_d(c["d"])}
        return DLSpec(ks=[c["k"]], d=c["d"], n_train=[c["N"]], init=c["init"], sigma_w2=c["sigma_w2"],
                       width=c["width"], depths=self.depths, n_seeds=self.n_seeds,
                       lr_grid=self.lr_grid_by_init.get(c["label"], self.lr_grid),
                       max_epochs=self.max_epochs, max_epochs_by_depth=self.max_epochs_by_depth,
                       n_val=self.n_val, n_test=self.n_test, seed=self.seed,
                       kta_points=0, kernel_baseline=self.kernels, alphas=[1.0], width_sweep=[], robustness=[],
                       control_permutation=False, blind_datasets=0, device=self.device, **extra)


PRESETS: dict[str, dict[str, Any]] = {
    # quick: two cells, a smoke test of the map (about a minute on 2 cores)
    "quick": {"inits": ["torch_default", "he_normal"], "ds": [16], "ns": [400], "widths": [64], "ks": [2],
              "depths": [1, 2, 4], "n_seeds": 3, "lr_grid": [0.03, 0.1], "max_epochs": 200, "n_val": 300,
              "n_test": 1000},
    # medium: the complement of depth-locality's medium design at d = 16 (the study runs d = 32):
    # 4 cells = PyTorch default and He init x N in {250, 1000}, H = 256, k = 2, regression, depths 1, 2, 4, 8,
    # 5 seeds; each init its own lr grid (He: the grid the timing pilot found to train the deepest net,
    # {0.003, 0.01}; the He cells of the old medium all diverged at its single lr 0.1), chosen per job on
    # 500 validation draws; the study's per-depth caps. Sized with the study to the lead's 40-min budget.
    "medium": {"inits": ["torch_default", "he_normal"], "ds": [16], "ns": [250, 1000], "widths": [256], "ks": [2],
               "kinds": ["regression"], "kernels": True, "depths": [1, 2, 4, 8], "n_seeds": 5, "lr_grid": [0.03, 0.1],
               "lr_grid_by_init": {"he_normal": [0.003, 0.01]}, "max_epochs": 2000,
               "max_epochs_by_depth": {1: 2000, 2: 1500, 4: 1000, 8: 800}, "n_val": 500, "n_test": 2000},
    "paper": {"inits": ["torch_default", "lecun_normal", "he_normal:1", "he_normal"], "ds": [16, 32],
              "ns": [500, 1000, 2000, 5000], "widths": [256, 512], "ks": [2, 3], "depths": [1, 2, 3, 4, 6, 8, 10],
              "max_epochs": 2000, "n_test": 10_000, "n_val": 2000},
}
