"""The escape-rate jobs: one frozen dataclass per kind, and the planner :func:`jobs`.

Every job's seed is ``derive(spec.seed, KIND, the values that tell it apart from the others of its
kind)`` (:mod:`nnphys.seeding`), never its position; Table 3's data set (``Gap.data_seed``) has its
own stream shared by every c. The computations are in :mod:`~nnphys.studies.escape_rate.runs`.
Times are in units of ``t = eta k``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from nnphys.seeding import derive
from nnphys.studies.escape_rate import runs
from nnphys.studies.escape_rate.spec import Spec
from nnphys.studies.job import Job

_job = dataclasses.dataclass(frozen=True, kw_only=True)


@_job
class Theory(Job):
    """Formula identities (T1), eq. 16 against the exact quadrature of Eq. 13 and Tables 1-2 (T2),
    the quadrature MFPTs the Monte Carlo claims compare with (T3-T6)."""

    KIND = "theory"
    quad_ratios: tuple[float, ...]
    quad_cs: tuple[float, ...]
    delta_Ls: tuple[float, ...]
    a_ratio: float
    a_cs: tuple[float, ...]
    levelset_ratio: float
    b_ratio: float
    b_ns: tuple[int, ...]
    b_cs: tuple[float, ...]
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_theory(self)


@_job
class _SDE(Job):
    """The Euler-Maruyama settings every SDE Monte Carlo job carries."""

    dt: float
    correction: bool
    tail: float  # step cap = tail x the predicted mean time; later chains are censored


@_job
class Levelset(_SDE):
    """S1 on the 1-D level set against the exact MFPT of Eq. 13, at one ``dt`` (T3)."""

    KIND = "levelset"
    ratio: float
    c: float
    chains: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_levelset(self)


@_job
class Symmetry(_SDE):
    """Scale symmetry with common random numbers: S1 on family A and genuine SGD on family C (T4)."""

    KIND = "symmetry"
    ratio: float
    c: float
    delta_Ls: tuple[float, ...]
    chains: int
    gap_N: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_symmetry(self)


@_job
class FamilyA(_SDE):
    """S1 on family A at one c (T5)."""

    KIND = "family_a"
    ratio: float
    c: float
    chains: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_family_a(self)


@_job
class FamilyB(_SDE):
    """S1 on family B with ``n`` outlier directions at one c (T6)."""

    KIND = "family_b"
    ratio: float
    n: int
    c: float
    bulk: int
    chains: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_family_b(self)


@_job
class PhiSDE(_SDE):
    """Student-t fits of the S1 stationary law at every ratio (T7sde)."""

    KIND = "phi_sde"
    ratios: tuple[float, ...]
    samples: int
    chains: int
    ci: str  # how the profile CI is widened for correlated samples ("design_effect")
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_phi_sde(self)


@_job
class PhiSGD(Job):
    """Student-t fits of genuine SGD's stationary law at one eta, every B (T7)."""

    KIND = "phi_sgd"
    eta: float
    Bs: tuple[int, ...]
    N: int
    chains: int
    samples: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_phi_sgd(self)


@_job
class PhiTail(Job):
    """Genuine SGD's stationary law at one eta, every B, read two ways (T7tail): the Student-t MLE
    of theta - theta* (the bulk, T7's statistic) and the Hill estimate of the loss tail (the
    density's tail), chains as the unit. Same samples as the phi_sgd job of the same eta (same
    seeds and data set)."""

    KIND = "phi_tail"
    eta: float
    Bs: tuple[int, ...]
    N: int
    chains: int
    samples: int
    n_boot: int
    sample_seed: int  # the phi_sgd job's seed of the same eta: its data set and SGD samples
    seed: int  # the bootstrap and the Hill reference curve

    def run(self) -> dict[str, Any]:
        return runs.run_phi_tail(self)


@_job
class Instability(_SDE):
    """Growth of <log L> between two times, on both sides of n_c (T8)."""

    KIND = "instability"
    ratio: float
    ns: tuple[int, ...]
    times: tuple[float, float]
    chains: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_instability(self)


@_job
class Mlp(Job):
    """One seed of the shared digits-MLP experiment (T9, T9b); seed ``member`` = minibatch-noise's
    member of the same number, so equal settings give the same numbers in both studies."""

    KIND = "mlp"
    member: int
    width: int
    epochs: int
    lr: float
    batch: int
    top_k: int
    n_train: int
    seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_mlp(self)


@_job
class Gap(_SDE):
    """Table 3 at one c: genuine SGD (S5), the SGD oracles (S4) and the SDEs (S1-S3) (T10)."""

    KIND = "gap"
    c: float
    B: int
    eta: float
    N: int
    chains: int
    t_max: float
    s4_pool: bool
    seed: int
    data_seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_gap(self)


@_job
class EscapeND(Job):
    """Fig. 3b across dimensions: genuine SGD on d-dimensional linear regression (x ~ N(0, I_d)),
    first passage from theta* to the level set L >= c L*, at one (d, c) (T11, T12). ``target`` is
    the Eq. 13 quadrature time (in steps, nominal h* = 1, L* = 1/2) that ``c`` was solved for."""

    KIND = "escape_nd"
    d: int
    c: float
    target: float
    B: int
    eta: float
    N: int
    chains: int
    max_steps: int
    seed: int
    data_seed: int

    def run(self) -> dict[str, Any]:
        return runs.run_escape_nd(self)


def nd_c(d: int, target_steps: float, B: int, eta: float) -> float:
    """The c at which the Eq. 13 level-set quadrature (h* = 1, L* = 1/2, ``d`` dimensions) gives a
    mean escape time of ``target_steps`` steps of size ``eta``; rounded to 3 decimals (the job's key)."""
    from scipy.optimize import brentq

    from nnphys.escape import mfpt_levelset

    f = lambda lc: math.log(mfpt_levelset(d, math.exp(lc), B, eta, n_grid=20_001) / eta) - math.log(target_steps)  # noqa: E731
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return round(math.exp(brentq(f, 1e-6, hi, xtol=1e-6)), 3)


def jobs(spec: Spec) -> list[Job]:
    """Every job of the sweep (the lab sets ``device``)."""
    sde = {"dt": spec.dt, "correction": spec.correction, "tail": spec.tail}
    seed = lambda kind, *labels: derive(spec.seed, kind, *labels)  # noqa: E731
    out: list[Job] = [Theory(quad_ratios=tuple(spec.quad_ratios), quad_cs=tuple(spec.quad_cs),
                             delta_Ls=tuple(spec.delta_Ls), a_ratio=spec.a_ratio, a_cs=tuple(spec.a_cs),
                             levelset_ratio=spec.levelset_ratio, b_ratio=spec.b_ratio, b_ns=tuple(spec.b_ns),
                             b_cs=tuple(spec.b_cs), seed=seed("theory"))]
    # the uncorrected dt-convergence runs, then the corrected one at dt / 2
    for dtv, corr in [(d, False) for d in spec.levelset_dts] + [(spec.dt / 2, True)]:
        out.append(Levelset(ratio=spec.levelset_ratio, c=spec.levelset_c, chains=spec.sde_chains, dt=dtv,
                            correction=corr, tail=spec.tail, seed=seed("levelset", float(dtv), bool(corr))))
    out.append(Symmetry(ratio=spec.a_ratio, c=spec.sym_c, delta_Ls=tuple(spec.delta_Ls), chains=spec.sym_chains,
                        gap_N=spec.gap_N, **sde, seed=seed("symmetry")))
    for c in spec.a_cs:
        out.append(FamilyA(ratio=spec.a_ratio, c=c, chains=spec.sde_chains, **sde, seed=seed("family_a", float(c))))
    for n in spec.b_ns:
        for c in spec.b_cs:
            out.append(FamilyB(ratio=spec.b_ratio, n=n, c=c, bulk=spec.b_bulk, chains=max(spec.chains // 2, 20),
                               dt=2 * spec.dt, correction=spec.correction, tail=spec.tail,
                               seed=seed("family_b", int(n), float(c))))
    out.append(PhiSDE(ratios=tuple(spec.phi_ratios), samples=spec.phi_samples, chains=spec.chains * 2,
                      ci="design_effect", dt=min(spec.dt, 0.005), correction=spec.correction, tail=spec.tail,
                      seed=seed("phi_sde")))
    for eta in spec.sgd_etas:
        out.append(PhiSGD(eta=eta, Bs=tuple(spec.sgd_Bs), N=spec.sgd_N, chains=spec.sgd_chains,
                          samples=spec.sgd_samples, seed=seed("phi_sgd", float(eta))))
        out.append(PhiTail(eta=eta, Bs=tuple(spec.sgd_Bs), N=spec.sgd_N, chains=spec.sgd_chains,
                           samples=spec.sgd_samples, n_boot=400, sample_seed=seed("phi_sgd", float(eta)),
                           seed=seed("phi_tail", float(eta))))
    out.append(Instability(ratio=spec.nc_ratio, ns=tuple(spec.nc_ns), times=tuple(spec.nc_times),  # type: ignore[arg-type]
                           chains=spec.chains // 2, **sde, seed=seed("instability")))
    for s in range(spec.mlp_seeds):
        out.append(Mlp(member=s, width=spec.mlp_width, epochs=spec.mlp_epochs, lr=spec.mlp_lr, batch=spec.mlp_batch,
                       top_k=spec.mlp_top_k, n_train=spec.mlp_n_train, seed=seed("mlp", int(s))))
    for c in spec.gap_cs:
        out.append(Gap(c=c, B=spec.gap_B, eta=spec.gap_eta, N=spec.gap_N, chains=spec.gap_chains, t_max=spec.gap_t_max,
                       dt=2 * spec.dt, correction=spec.correction, tail=spec.tail, s4_pool=True,
                       seed=seed("gap", float(c)), data_seed=seed("gap", "data")))
    for d in spec.nd_ds:
        for tgt in spec.nd_targets:
            c = nd_c(int(d), float(tgt), spec.gap_B, spec.gap_eta)
            out.append(EscapeND(d=int(d), c=c, target=float(tgt), B=spec.gap_B, eta=spec.gap_eta, N=spec.gap_N,
                                chains=spec.nd_chains, max_steps=int(math.ceil(spec.nd_cap * tgt)),
                                seed=seed("escape_nd", int(d), float(tgt)), data_seed=seed("escape_nd", "data", int(d))))
    return out
