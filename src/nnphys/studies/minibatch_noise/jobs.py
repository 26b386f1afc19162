"""The minibatch-noise jobs: one frozen dataclass per kind, and the planner :func:`jobs`.

Every job's seed is ``derive(spec.seed, KIND, its labels)`` (:mod:`nnphys.seeding`), never its
position. Every job carries the label-noise variance ``sigma2``; the computations are in
:mod:`~nnphys.studies.minibatch_noise.runs`, and each job's output records its ``kind``.
Sampling schemes are recorded in every output: theory checks use i.i.d. (with-replacement)
indices or fresh online data; the MLP reshuffles every epoch (without replacement).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nnphys.seeding import derive
from nnphys.studies.job import Job
from nnphys.studies.minibatch_noise import runs
from nnphys.studies.minibatch_noise.spec import Spec

_job = dataclasses.dataclass(frozen=True, kw_only=True)


def _tagged(job: Job, out: dict[str, Any]) -> dict[str, Any]:
    out["kind"] = job.KIND
    return out


@_job
class _Regression(Job):
    """What every job of this study carries."""

    sigma2: float
    seed: int


@_job
class Prop1(_Regression):
    """Prop. 1 against the empirical minibatch-gradient covariance at a fixed w, with and without
    replacement (row 1; C1)."""

    KIND = "prop1"
    N: int
    S: int
    draws: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_prop1(self))


@_job
class Online(_Regression):
    """One row of online Gaussian regression (:data:`~nnphys.studies.minibatch_noise.spec.ONLINE_CASES`): closed forms, the exact oracle
    and Monte Carlo (C0, C2, C3's regression term, C10, C13, C14)."""

    KIND = "online"
    case: str
    n_chains: int
    n_steps: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_online(self))


@_job
class Grid(_Regression):
    """1-D Σ and losses on a learning-rate grid up to the stability edge, one batch size (C0, C2)."""

    KIND = "grid"
    a: float
    S: int
    fractions: tuple[float, ...]
    n_chains: int
    n_steps: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_grid(self))


@_job
class Edge(_Regression):
    """The isotropic stability edge for every (D, S), and simulations below and above it (C0, C4)."""

    KIND = "edge"
    Ds: tuple[int, ...]
    Ss: tuple[int, ...]
    sim_D: int
    sim_S: int
    n_chains: int
    n_steps: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_edge(self))


@_job
class L2(_Regression):
    """The 1-D optimal weight decay for every (λ, S) and simulations at it (C5)."""

    KIND = "l2"
    cases: tuple[tuple[float, int], ...]
    n_chains: int
    n_steps: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_l2(self))


@_job
class Highdim(_Regression):
    """One data draw of the fixed-data high-dimensional checks (rows 13-15; C6, C6u, C7, C11s)."""

    KIND = "highdim"
    draw: int
    D: int
    over_burn_in: int
    n_chains: int
    n_steps: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_highdim(self))


@_job
class Scaling(_Regression):
    """Σ against S at a fixed ratio c = λ/S (C8)."""

    KIND = "scaling"
    c: float
    Ss: tuple[int, ...]
    n_chains: int
    n_steps: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_scaling(self))


@_job
class Tail(_Regression):
    """Hill tail indices of the 1-D stationary law at aλ = 1 for every S (row 16; C9, C9k)."""

    KIND = "tail"
    Ss: tuple[int, ...]
    n_chains: int
    n_steps: int
    frac: float

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_tail(self))


@_job
class Defects(_Regression):
    """Eq. 12's off-diagonal (row 10) and the sign of Thm 5's rank-1 term (row 18) (C0, C11, C11s)."""

    KIND = "defects"
    draws: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_defects(self))


@_job
class Mlp(_Regression):
    """One seed of the shared digits-MLP experiment (C3, C12); member s is escape-rate's member s."""

    KIND = "mlp"
    member: int
    width: int
    lr: float
    batch: int
    epochs: int
    top_k: int
    n_train: int

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_mlp(self))


@_job
class Width(Job):
    """Fig. 1 left at one width: a two-layer tanh net on digits, one epoch of SGD for every seed at
    the fixed λ and at λ ∝ 1/width (both arms in one ensemble; C15, C15f). Member seeds do not
    depend on the width, so seed s has the same minibatch order at every width."""

    KIND = "width"
    seed: int
    width: int
    lr: float
    ref_width: int
    n_seeds: int
    batch: int
    n_train: int
    div_factor: float

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_width(self))


@_job
class LogReg(Job):
    """Fig. 1 right: multinomial logistic regression on digits at λ, S with a weight-decay sweep
    including γ < 0, every (γ, seed) one member of one ensemble (C16); the same sweep at a small
    control λ with the same λ·steps (C16c)."""

    KIND = "logreg"
    seed: int
    gammas: tuple[float, ...]
    lr: float
    batch: int
    epochs: int
    n_seeds: int
    n_train: int
    control_lr: float

    def run(self) -> dict[str, Any]:
        return _tagged(self, runs.run_logreg(self))


def jobs(spec: Spec) -> list[Job]:
    """Every job of the sweep (the lab sets ``device``)."""
    base = {"sigma2": spec.sigma2}
    chains = {"n_chains": spec.n_chains, "n_steps": spec.n_steps}
    out: list[Job] = [Prop1(N=spec.prop1_n, S=spec.prop1_S, draws=spec.prop1_draws, seed=derive(spec.seed, "prop1"),
                            **base)]
    for name in spec.cases:
        out.append(Online(case=name, **chains, seed=derive(spec.seed, "online", name), **base))
    for S in spec.grid_batch_sizes:
        out.append(Grid(a=spec.grid_a, S=S, fractions=tuple(spec.grid_fractions), **chains,
                        seed=derive(spec.seed, "grid", S), **base))
    out.append(Edge(Ds=tuple(spec.edge_D), Ss=tuple(spec.edge_S), sim_D=spec.edge_sim_D, sim_S=spec.edge_sim_S,
                    **chains, seed=derive(spec.seed, "edge"), **base))
    out.append(L2(cases=tuple(tuple(c) for c in spec.l2_cases), **chains, seed=derive(spec.seed, "l2"), **base))
    for d in range(spec.hd_draws):
        out.append(Highdim(draw=d, D=spec.hd_D, over_burn_in=spec.hd_over_burn_in, n_chains=spec.hd_chains,
                           n_steps=spec.hd_steps, seed=derive(spec.seed, "highdim", d), **base))
    out.append(Scaling(c=spec.scaling_c, Ss=tuple(spec.scaling_S), **chains, seed=derive(spec.seed, "scaling"), **base))
    out.append(Tail(Ss=tuple(spec.tail_S), n_chains=spec.tail_chains, n_steps=spec.tail_steps, frac=spec.tail_frac,
                    seed=derive(spec.seed, "tail"), **base))
    out.append(Defects(draws=spec.prop1_draws, seed=derive(spec.seed, "defects"), **base))
    for s in range(spec.mlp_seeds):
        out.append(Mlp(member=s, seed=derive(spec.seed, "mlp", s), width=spec.mlp_width, lr=spec.mlp_lr,
                       batch=spec.mlp_batch, epochs=spec.mlp_epochs, top_k=spec.mlp_top_k, n_train=spec.mlp_n_train,
                       **base))
    for w in spec.fig1_widths:
        out.append(Width(seed=derive(spec.seed, "width"), width=w, lr=spec.fig1_lr, ref_width=spec.fig1_ref_width,
                         n_seeds=spec.fig1_seeds, batch=spec.fig1_batch, n_train=spec.fig1_n_train,
                         div_factor=spec.fig1_div_factor))
    if spec.logreg_gammas:
        out.append(LogReg(seed=derive(spec.seed, "logreg"), gammas=tuple(spec.logreg_gammas), lr=spec.logreg_lr,
                          batch=spec.logreg_batch, epochs=spec.logreg_epochs, n_seeds=spec.logreg_seeds,
                          n_train=spec.fig1_n_train, control_lr=spec.logreg_control_lr))
    return out
