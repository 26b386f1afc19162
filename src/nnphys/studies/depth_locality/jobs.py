"""The jobs of study ``depth-locality``: one frozen dataclass per kind, and the planner ``jobs(spec)``.

- :class:`NetJob` (``net``): every seed x learning rate of one ``(group, variant, target, k, N, L, H,
  alpha)`` trained as one stacked ensemble;
- :class:`KernelJob` (``kernel``): analytic NTK and NNGP ridgeless regression on the nets' data sets,
  every depth;
- :class:`BlindJob` (``blind``): claim C5, kernel regression on many small data sets.

The computations are in :mod:`.runs`. Every seed a job uses is in the job, planned with
:func:`nnphys.seeding.derive` from labels (data: seed index; init and minibatch order: seed index and
lr; permutation; C5 data set index), never from a position. ``Job.params()`` of every planned job is
the dict the store keys, so field names and values are part of the stored results.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from nnphys.seeding import derive
from nnphys.studies.depth_locality.runs import run_blind, run_kernel, run_net
from nnphys.studies.depth_locality.spec import TARGETS, Spec, sign_d
from nnphys.studies.job import Job

CONTROL_MIN_VAL = 500  # [default] validation draws of a control run that selects among several lrs


# ============================================================================================
# job kinds
# ============================================================================================


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeedGridJob(Job):
    """What a net and a kernel job share: one ``(group, variant, k, N)`` of the design and its data
    sets, one per seed (shared by both targets, every depth and every lr: the paired design)."""

    group: str  # main, lazy, width, robust or x2
    variant: str  # main, alpha=..., ntk_H=..., a C7 variant, or permuted
    k: int
    n: int  # training-set size N
    d: int
    law: str  # input law: cube or gauss
    target_kind: str  # regression or sign
    block_start: int
    global_norm: str
    tie_break: float | None
    n_test: int
    sigma_w2: float
    bias: bool
    permute_seed: int | None  # control X2: one fixed coordinate permutation; None: identity
    data_seeds: tuple[int, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetJob(SeedGridJob):
    """One stacked ensemble: ``len(data_seeds) x len(lrs)`` FC ReLU nets of one depth and width,
    members seed-major (member ``s * len(lrs) + i`` is seed ``s`` at ``lrs[i]``)."""

    KIND: ClassVar[str] = "net"
    target: str  # local or global
    depth: int  # hidden layers L
    width: int
    # the lazy-training output scale of nnphys.train.train_ensemble (its ``lazy_scale``); stored
    # under this name so the job keys of existing stores stay the same
    alpha: float
    center: bool  # subtract the initial output (lazy runs)
    init_seeds: tuple[int, ...]
    order_seeds: tuple[int, ...]
    loss: str
    param: str
    init: str
    sigma_b2: float
    lrs: tuple[float, ...]
    batch_size: int
    max_epochs: int
    stop_nmse: float
    stop_loss: float
    n_val: int
    kta_points: int

    def run(self) -> dict[str, Any]:
        return run_net(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KernelJob(SeedGridJob):
    """NTK and NNGP ridgeless regression on the data sets of the nets of one ``(group, variant, k, N)``,
    every depth from one pass of the recursion."""

    KIND: ClassVar[str] = "kernel"
    depths: tuple[int, ...]
    kernel_sigma_b2: float

    def run(self) -> dict[str, Any]:
        return run_kernel(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BlindJob(Job):
    """Claim C5: NTK and NNGP test MSE of both targets on the data sets ``dataset_seeds``."""

    KIND: ClassVar[str] = "blind"
    law: str
    k: int
    d: int
    n: int
    n_test: int
    depths: tuple[int, ...]
    kernel_sigma_b2: float
    bias: bool
    sigma_w2: float
    dataset_seeds: tuple[int, ...]

    def run(self) -> dict[str, Any]:
        return run_blind(self)


# ============================================================================================
# the planner
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
            s.update(target_kind="sign", loss=spec.sign_loss, d=sign_d(spec.d, spec.tie_break))
    return s


def _n_val(spec: Spec, grid: list[float]) -> int:
    """Validation draws of a control (lazy or width) run with lr grid ``grid``: none for one lr; else
    at least ``CONTROL_MIN_VAL``, so the lr is chosen on validation even when the main grid has a
    single lr and ``n_val = 0`` (the medium preset: its lazy lr was taken by list order)."""
    return max(spec.n_val, CONTROL_MIN_VAL) if len(grid) > 1 else 0


def _data_seeds(spec: Spec) -> tuple[int, ...]:
    return tuple(derive(spec.seed, "data", s) for s in range(spec.n_seeds))


def _permute_seed(spec: Spec, permute: bool) -> int | None:
    return derive(spec.seed, "permute") if permute else None


def _net_job(spec: Spec, group: str, variant: str, target: str, k: int, n: int, depth: int,
             settings: dict[str, Any], width: int | None = None, param: str | None = None,
             alpha: float = 1.0, permute: bool = False) -> NetJob:
    s = dict(settings)
    if alpha == 1.0 and depth in spec.max_epochs_by_depth:  # {} (quick, paper): max_epochs
        s["max_epochs"] = spec.max_epochs_by_depth[depth]
    if alpha != 1.0:
        grid = spec.lazy_lr_grid or sorted(set(s["lrs"]) | {round(v / 10, 12) for v in s["lrs"]})
        s["lrs"] = list(grid)
        s["n_val"] = _n_val(spec, grid)
        if spec.lazy_max_epochs is not None:  # None: the main cap (the job keys of the presets without it)
            s["max_epochs"] = spec.lazy_max_epochs
    if param is not None and param != s["param"]:
        s.update(param=param, sigma_b2=spec.sb2(param), lrs=spec.lrs(param=param))
        s["n_val"] = _n_val(spec, s["lrs"])
    if group == "width":  # its own grid and cap whatever the main runs' parameterisation
        if spec.width_lr_grid:
            s["lrs"] = list(spec.width_lr_grid)
            s["n_val"] = _n_val(spec, s["lrs"])
        if spec.width_max_epochs is not None:  # None: the alpha = 1 cap (the job keys of the presets without it)
            s["max_epochs"] = spec.width_max_epochs
    s["batch_size"] = min(s["batch_size"], n)
    s["lrs"] = tuple(s["lrs"])
    members = [(i, lr) for i in range(spec.n_seeds) for lr in s["lrs"]]  # seed-major, as run_net stacks them
    return NetJob(
        group=group, variant=variant, target=target, k=k, n=n, depth=depth, width=width or spec.width,
        alpha=float(alpha), center=alpha != 1.0, permute_seed=_permute_seed(spec, permute),
        data_seeds=_data_seeds(spec), init_seeds=tuple(derive(spec.seed, "init", i, lr) for i, lr in members),
        order_seeds=tuple(derive(spec.seed, "order", i, lr) for i, lr in members), **s)


_KERNEL_SETTINGS = ("d", "law", "target_kind", "block_start", "global_norm", "tie_break", "n_test", "sigma_w2")


def _kernel_job(spec: Spec, group: str, variant: str, k: int, n: int, settings: dict[str, Any],
                permute: bool = False, sigma_b2: float | None = None) -> KernelJob:
    """The analytic kernels on the data sets of ``(group, variant, k, n)``; ``sigma_b2``: the kernels'
    bias variance (None: the spec's, matched to its nets' init, ``Spec.kernel_sb2``)."""
    return KernelJob(group=group, variant=variant, k=k, n=n, depths=tuple(spec.depths),
                     kernel_sigma_b2=spec.kernel_sb2() if sigma_b2 is None else sigma_b2, bias=spec.bias,
                     permute_seed=_permute_seed(spec, permute),
                     data_seeds=_data_seeds(spec), **{key: settings[key] for key in _KERNEL_SETTINGS})


def main_jobs(spec: Spec, with_kernels: bool = True) -> list[Job]:
    """The main grid: per main cell (``Spec.main_cells``: variant ``main``, or one ``init/kind`` per init x
    target kind) both targets at every (k, N, L), plus the kernel baseline per (cell, k, N)."""
    out: list[Job] = []
    for variant, cs in spec.main_cells():
        main = _settings(cs)
        for k in cs.active_ks():
            for n in cs.ns_for(k):
                for target in TARGETS:
                    for L in cs.depths:
                        out.append(_net_job(cs, "main", variant, target, k, n, L, main))
                if cs.kernel_baseline and with_kernels:
                    out.append(_kernel_job(cs, "main", variant, k, n, main))
    return out


def jobs(spec: Spec) -> list[Job]:
    """All jobs of ``spec``: main grid, kernel baselines, C5 blindness, C6/C7 and the X2 controls."""
    out = main_jobs(spec)
    _, cs = spec.control_cell()  # the controls run at the first main cell's settings (spec itself: one cell)
    main = _settings(cs)
    cd = spec.ctrl_depths()
    for k in spec.active_ks():
        n = spec.ctrl_n(k)
        for target in TARGETS:
            for L in cd:
                for a in spec.alphas:
                    if a != 1.0:
                        out.append(_net_job(cs, "lazy", f"alpha={a:g}", target, k, n, L, main, alpha=a))
                for h in spec.width_sweep:
                    out.append(_net_job(cs, "width", f"ntk_H={h}", target, k, n, L, main, width=h, param="ntk"))
        if spec.width_sweep and spec.kernel_baseline:  # the width runs' own infinite-width limit (C6W)
            out.append(_kernel_job(cs, "width", "ntk", k, n, main, sigma_b2=cs.sb2("ntk") if cs.bias else 0.0))
        for v in spec.robustness:
            s = _settings(cs, v)
            for target in TARGETS:
                for L in cd:
                    out.append(_net_job(cs, "robust", v, target, k, n, L, s))
            if v == "sign" and spec.kernel_baseline:
                out.append(_kernel_job(cs, "robust", v, k, n, s))
        if spec.control_permutation:
            for target in TARGETS:
                for L in cd:
                    out.append(_net_job(cs, "x2", "permuted", target, k, n, L, main, permute=True))
            if spec.kernel_baseline:
                out.append(_kernel_job(cs, "x2", "permuted", k, n, main, permute=True))
    if spec.blind_datasets:
        for law in spec.blind_laws:
            for k in spec.active_ks():
                for start in range(0, spec.blind_datasets, spec.blind_chunk):
                    stop = min(spec.blind_datasets, start + spec.blind_chunk)
                    out.append(BlindJob(
                        law=law, k=k, d=spec.blind_d, n=spec.blind_n, n_test=spec.blind_n_test,
                        depths=tuple(spec.depths), kernel_sigma_b2=spec.kernel_sb2(), bias=spec.bias,
                        sigma_w2=spec.sw2(), dataset_seeds=tuple(derive(spec.seed, "blind", i) for i in range(start, stop))))
    return out
