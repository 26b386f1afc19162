"""Study ``escape-rate``: the power-law escape rate of SGD, theory against simulation.

Paper: Mori, Ziyin, Liu, Ueda, *Power-law escape rate of SGD* (arXiv 2105.09557, ICML 2022).
Spec: ``specs/escape-rate.md`` (section and test ids T1-T10 below refer to it).

Top to bottom:

1. ``theory`` job (T1, T2, T5 quadrature part, Table 1, Table 2): formula identities, the exact
   mean-first-passage quadrature of Eq. 13 on family A against eq. 16, the radial level-set
   quadrature and its local slopes.
2. Monte Carlo of the SDE (simulator S1; S2/S3 in T10): the level-set MFPT with its ``dt``
   convergence (T3), the scale symmetry with common random numbers (T4, also genuine SGD on
   family C), the log-barrier slope on family A (T5), the ``n``-sweep on family B (T6), the
   Student-t fit of the stationary law (T7), the instability above ``n_c`` (T8).
3. Genuine SGD: the stationary exponent against ``phi`` (T7; ``phi_disc`` and the Kesten index reported),
   noise ∝ loss and the decoupling spectra of an MLP on digits (T9, T9b), and the gap between
   discrete SGD and the SDE on the paper's regression test (T10, Table 3).

Seeds: ``derive(seed, kind, its swept values)`` (:mod:`nnphys.seeding`); Table 3's data set has its own
stream shared by every c. Runners: :mod:`nnphys.studies._escape_rate_runs`; figures:
:mod:`nnphys.studies._escape_rate_figures`; the MLP run is :mod:`nnphys.digits_noise`'s.

Verdicts: every claim pre-registers its rule in ``CLAIMS`` (:mod:`nnphys.studies.protocol`) and is
judged by ``P.judge``. The SDE checks (S1 against Eq. 13's quadrature and closed forms: T1-T6,
T7sde, T8) are [derived] consistency claims; the paper's headlines are judged on genuine SGD (T7:
the stationary exponent per (eta, B); T9, T9b: the digits MLP with seeds as the unit; T10: the
exponent of the level-set time in c). Synthetic calibration: :mod:`nnphys.studies._escape_calibration`.

Times are in units of ``t = eta k``. Escape-time estimates report the censored fraction; a run
with censored chains is estimated by the censored-exponential MLE, never by a plain mean.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from nnphys import escape as E
from nnphys.digits_noise import (BULK_FRACTION, DECOUPLING_MARGIN, GAUSS_NEWTON_RULE, NOISE_LOSS_MARGIN, decoupling_by_epoch,
                                 decoupling_rms, final_epoch, hessian_evidence, late_slope, rms_by_epoch)
from nnphys.seeding import derive
from nnphys.studies._escape_rate_runs import RUNNERS
from nnphys.studies import protocol as P
from nnphys.studies._escape_calibration import CALIBRATION
from nnphys.studies._claim_cells import WORST, equivalence_rule, exact as _exact, identity_cells, identity_rule, judged
from nnphys.studies._digits_claims import decoupling_cell, noise_loss_cell
from nnphys.studies._kit import ClaimBook, Missing, by_kind
from nnphys.studies.base import Claim, ClaimInfo, Figure, Result, Study, StudySpec, PosFloat, PosInt

# ================================================================================================
# claims (statement and tag; the verdict logic is one function per claim below)
# ================================================================================================

_identity = identity_rule
_equiv = equivalence_rule


# T10 / T7 / T9 / T9b margins are [default]s fixed from the claims (why: in each rule's params).
T10_MARGIN = 0.10
T7_MARGIN = 0.20

CLAIMS = {
    "T1": ClaimInfo("Formula identities: eq. 17 at n=1 is eq. 16; kappa depends on c only; kappa_tau + determinants give eq. 17; "
                    "frozen Arrhenius shares eq. 17's leading exponent as c -> 1+", "derived",
                    rule=_identity("a relative error above 1e-12 (exact identities) or 1e-5 (the c -> 1+ limit, "
                                   "taken by finite differences)", tol_identities=1e-12, tol_limit=1e-5)),
    "T2": ClaimInfo("Eq. 16 matches the exact MFPT quadrature of Eq. 13 on family A within 5% (and its local slopes "
                    "within 5% of 1/2 + B/(eta h*)) for B/(eta h*) >= 5, c >= 2; Tables 1 and 2 reproduced", "derived",
                    rule=_identity("any MFPT x kappa16 or quadrature slope off eq. 16 by > 5% in the regime; a Table 1 "
                                   "entry off by > 0.002, a Table 2 slope by > 0.02; MFPTs at fixed c spread by > 1e-10",
                                   tol_eq16=0.05, tol_table1=0.002, tol_table2=0.02, tol_scale_symmetry=1e-10)),
    "T3": ClaimInfo("Euler-Maruyama S1 (continuity-corrected, smallest dt) reproduces the exact level-set MFPT of Eq. 13 "
                    "within 5%", "default",
                    rule=_equiv(0.05, "log(MC mean / quadrature)", "log ratio",
                                "[default] 5 %: the spec's measured residual discretisation bias at dt = 1e-3 "
                                "(36.6 vs 35.6, 3 %) rounded up; a larger gap is a simulator defect")),
    "T4": ClaimInfo("Scale symmetry: at fixed c and Hessians, escape does not depend on dL (S1 and genuine SGD with common "
                    "random numbers: >= 99.9% identical hitting steps; quadrature MFPTs equal)", "derived",
                    rule=_identity("fewer than 99.9% identical hitting steps (S1 or SGD), or quadrature MFPTs at fixed c "
                                   "spread by > 1e-10", tol_fraction_differing=1e-3, tol_quadrature=1e-10)),
    "T5": ClaimInfo("Eq. 13 (S1 Monte Carlo, family A): the local slopes of log t in log c equal the exact quadrature's "
                    "(log barrier), not the frozen-Arrhenius slopes (linear barrier)", "derived",
                    rule=_equiv(0.10, "MC local slope / quadrature slope - 1", "relative slope deviation",
                                "[default] 10 % of the slope: well inside the gap to the frozen-Arrhenius rival "
                                "(its slopes differ from eq. 16's by r (c2 - c1)/log(c2/c1) - 1/2 - r, >= 29 % on "
                                "the quick c grid at B/(eta h*) = 2)")),
    "T6": ClaimInfo("Eq. 13 (S1 Monte Carlo, family B): the slope of log t in log c changes by -1/2 per outlier dimension "
                    "(eq. 17)", "derived",
                    rule=_equiv(0.15, "d slope / d n + 1/2", "slope per dimension",
                                "[default] the spec's T6 tolerance (±0.15, under a third of the effect -1/2)")),
    "T7sde": ClaimInfo("Eq. 13 (S1 Monte Carlo): the stationary law is P ~ L^-phi with phi = 1 + B/(eta h*) (Student-t "
                       "MLE)", "derived",
                       rule=_equiv(0.03, "phi_fit / phi - 1", "relative deviation",
                                   "[default] the spec's T7 tolerance for the SDE (3 %)")),
    "T7": ClaimInfo("Genuine SGD (linear regression, Fig. 3a setting): the stationary law is P ~ L^-phi with "
                    "phi = 1 + B/(eta h*) (Student-t MLE per (eta, B))", "paper",
                    rule=_equiv(T7_MARGIN, "phi / phi_fit - 1", "relative deviation of 1/phi",
                                "[default] the paper's 'fairly good' agreement read as within 20 % of phi: on the "
                                "log axes of Fig. 3a a factor 1.2 is the smallest gap a reader sees. Measured on "
                                "1/phi (phi/phi_fit - 1) so that phi_fit = inf (a Gaussian-like bulk) is the finite "
                                "value -1; a diverged run counts as phi_fit = 1/2 (not normalisable)")),
    "T8": ClaimInfo("Eq. 13 (S1 Monte Carlo): instability for n >= n_c = 2(B/(eta h*) + 1): <log L> grows with run "
                    "length above n_c, not below", "derived",
                    rule=P.Rule(kind="directional", direction="greater", sesoi=0.5,
                                null="<log L> grows as much at n >= n_c as at the largest stable n",
                                alternative="<log L> grows more at every n >= n_c than at the largest n < n_c",
                                fails_if="the pooled growth difference is significantly negative, or its upper "
                                         "bound is below 0.5",
                                unit="growth of <log L> between t1 and t2, minus that at the largest n < n_c",
                                params={"sesoi_why": "[default] 0.5 in log L = a factor 1.65 in the typical loss "
                                                     "between the two read-out times: the old 'stable: no growth "
                                                     "> 0.5' threshold"})),
    "T9": ClaimInfo("Gradient noise is proportional to the loss late in training: the log-log slope of N = tr C_1 "
                    "against L over the last half of the epochs is 1 (seeds as the unit; minibatch-noise C3)", "paper",
                    rule=_equiv(NOISE_LOSS_MARGIN, "late slope - 1", "slope",
                                "[default] the spec's T9 band [0.8, 1.2] (nnphys.digits_noise.NOISE_LOSS_MARGIN)")),
    "T9b": ClaimInfo("Decoupling after training: the top-k (bulk excluded) eigenvalues of (1/N) sum l C_f and "
                     "L (1/N) sum C_f agree (RMS log ratio, seeds as the unit; init reported, not judged; "
                     "minibatch-noise C12)", "paper",
                     rule=_equiv(DECOUPLING_MARGIN, "RMS log eigenvalue ratio", "log ratio",
                                 "[default] a factor 1.5 on the typical rank (nnphys.digits_noise.DECOUPLING_MARGIN); "
                                 f"bulk: decoupled eigenvalue < {BULK_FRACTION:g} x the largest")),
    "T10": ClaimInfo("Genuine SGD (Fig. 3b setting): the slope of log t_p in log c equals the paper's exponent "
                     "B/(eta h*) + 1 - n/2 (absolute times against the Eq. 13 quadrature reported, not judged)", "paper",
                     rule=_equiv(T10_MARGIN, "SGD slope / (B/(eta h*) + 1 - n/2) - 1", "relative slope deviation",
                                 "[default] 10 % of the exponent: over the plotted range c in [1, 2] it changes t_p "
                                 "by a factor 2^(0.1 x 10.5) = 2, the smallest gap visible on Fig. 3b's log-log axes")),
}


# ================================================================================================
# spec
# ================================================================================================


class Spec(StudySpec):
    """Fields carry their provenance tag: [paper], [derived] (spec Sec. 11/12) or [default] (ours)."""

    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed; a job's seed is derive(seed, kind, its swept values) (nnphys.seeding)")
    chains: int = Field(2000, ge=20, le=10**7, description="[default] SDE chains per Monte Carlo run (Sec. 10: >= 1000)")
    sde_chains: int = Field(20_000, ge=20, le=10**8, description="[default] chains of the 1-D Eq. 13 runs (T3 level set, T5 family A): cheap on the compiled kernel")
    dt: float = Field(0.01, gt=0, le=0.1, description="[default] Euler-Maruyama step (units of 1/h*) for S1-S3")
    correction: bool = Field(True, description="[default] Brownian continuity correction of the barrier (0.5826 sigma sqrt(dt))")
    tail: float = Field(6.0, ge=2, le=100, description="[default] step cap = tail x predicted mean time; later chains are censored")
    # T2 / Table 1
    quad_ratios: list[PosFloat] = Field([5.0, 10.0, 20.0], min_length=1, description="[derived] B/(eta h*) of Table 1")
    quad_cs: list[PosFloat] = Field([2.0, 4.0, 8.0], min_length=2, description="[derived] c of Table 1")
    delta_Ls: list[PosFloat] = Field([0.1, 1.0, 10.0], min_length=2, description="[derived] linear barriers at fixed c (knob 1, Sec. 9)")
    # T3
    levelset_ratio: float = Field(10.0, gt=0, le=1000, description="[paper] B/(eta h*) of the level-set check (Table 3: B=1, eta=0.1)")
    levelset_c: float = Field(1.5, gt=1, le=100, description="[derived] c of the level-set check (quadrature 35.6)")
    levelset_dts: list[PosFloat] = Field([0.02, 0.01], min_length=1, description="[default] dt values of the uncorrected convergence runs")
    # T4 / T5
    a_ratio: float = Field(2.0, gt=0, le=1000, description="[default] B/(eta h*) of the family-A Monte Carlo")
    a_cs: list[PosFloat] = Field([1.5, 2.0, 3.0], min_length=2, description="[default] c grid of the family-A knob-2 sweep")
    sym_c: float = Field(1.5, gt=1, le=100, description="[default] fixed c of the knob-1 (scale-symmetry) runs")
    sym_chains: int = Field(1000, ge=10, le=10**6, description="[default] chains of the common-random-number symmetry runs")
    # T6
    b_ratio: float = Field(10.0, gt=0, le=1000, description="[derived] B/(eta h*) of the family-B n-sweep (Sec. 11: >= 10)")
    b_ns: list[PosInt] = Field([1, 2, 3], min_length=2, description="[default] outlier dimensions n of family B")
    b_cs: list[PosFloat] = Field([1.2, 1.5, 2.0], min_length=2, description="[default] c grid of the family-B sweep (mean times 50-13000 at B/(eta h*) = 10)")
    b_bulk: int = Field(0, ge=0, le=1000, description="[default] frozen zero-curvature bulk coordinates added to family B")
    # T7
    phi_ratios: list[PosFloat] = Field([1.0, 2.0, 4.0], min_length=1, description="[default] B/(eta h*) of the S1 stationary fit (Fig. 3a plots phi against B; the ratios are ours)")
    phi_samples: int = Field(100, ge=1, le=10**4, description="[default] samples per chain for the Student-t fit (spaced by 1/h*; 100 x 4000 chains resolve phi to about 1-2 %)")
    sgd_etas: list[PosFloat] = Field([0.1, 0.3], min_length=1, description="[default] learning rates of the SGD stationary fit (Fig. 3a: three values, unstated)")
    sgd_Bs: list[PosInt] = Field([1, 2, 4], min_length=1, description="[default] batch sizes of the SGD stationary fit")
    sgd_N: int = Field(10_000, ge=100, le=10**7, description="[default] data-set size of the SGD stationary fit (the paper's Fig. 3a used 1e5; 1e4 here, as in Fig. 3b)")
    sgd_chains: int = Field(200, ge=1, le=10**6, description="[default] SGD chains of the stationary fit")
    sgd_samples: int = Field(50, ge=2, le=10**5, description="[default] samples per SGD chain, every 100 iterations (Fig. 3a)")
    # T8
    nc_ratio: float = Field(1.0, gt=0, le=100, description="[default] B/(eta h*) of the instability check (n_c = 2(r+1))")
    nc_ns: list[PosInt] = Field([1, 2, 3, 4, 6], min_length=2, description="[default] dimensions of the instability check")
    nc_times: list[PosFloat] = Field([10.0, 20.0], min_length=2, max_length=2, description="[default] two read-out times of <log L>")
    # T9
    mlp_width: int = Field(100, ge=1, le=10**5, description="[paper] hidden width (Sec. 13: 784-100-100-1; here digits 64-100-100-1)")
    mlp_epochs: int = Field(100, ge=4, le=10**5, description="[default] training epochs on digits")
    mlp_lr: float = Field(0.1, gt=0, le=10, description="[default] SGD learning rate of the MLP (paper: 0.01 on MNIST)")
    mlp_batch: int = Field(100, ge=1, le=10**5, description="[paper] minibatch size B (Sec. 13: 100)")
    mlp_n_train: int = Field(1500, ge=20, le=1500, description="[default] digits training images used (all 1500 by default)")
    mlp_seeds: int = Field(1, ge=1, le=100, description="[default] MLP training seeds (T9, T9b judge with seeds as the unit: "
                                                          "one seed is uninformative; seed s = minibatch-noise's member s)")
    mlp_top_k: int = Field(20, ge=1, le=1000, description="[default] eigenvalues probed in the decoupling check (the spec's T9 top-20; the paper compares histograms)")
    # T10
    gap_cs: list[PosFloat] = Field([1.2, 1.5, 1.75], min_length=2, description="[default] c of Table 3 (d = 1; our measurement grid, the paper does not state its c range)")
    gap_B: int = Field(1, ge=1, le=10**5, description="[paper] batch size of Table 3")
    gap_eta: float = Field(0.1, gt=0, le=10, description="[paper] learning rate of Table 3")
    gap_N: int = Field(10_000, ge=100, le=10**7, description="[paper] data-set size of Table 3")
    gap_chains: int = Field(400, ge=10, le=10**6, description="[default] chains per simulator in T10 (Table 3: 2000)")
    gap_t_max: float = Field(2000.0, gt=0, le=1e7, description="[default] time cap of the T10 runs (censored beyond)")

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        for name in ("quad_cs", "a_cs", "b_cs", "gap_cs"):
            if min(getattr(self, name)) <= 1:
                raise ValueError(f"{name}: every c must be > 1 (a barrier needs L_s > L*)")
        for name in ("quad_ratios", "phi_ratios", "delta_Ls", "levelset_dts", "sgd_etas", "nc_times"):
            if min(getattr(self, name)) <= 0:
                raise ValueError(f"{name}: values must be > 0")
        if min(self.b_ns) < 1 or min(self.nc_ns) < 1:
            raise ValueError("b_ns, nc_ns: dimensions must be >= 1")
        if min(self.sgd_Bs) < 1 or max(self.sgd_Bs) > self.sgd_N:
            raise ValueError("sgd_Bs: need 1 <= B <= sgd_N")
        if self.mlp_batch > self.mlp_n_train or self.mlp_top_k > self.mlp_n_train:
            raise ValueError("mlp_batch and mlp_top_k must be <= mlp_n_train")
        if self.nc_times[1] <= self.nc_times[0]:
            raise ValueError("nc_times: need t1 < t2")
        return self


PRESETS: dict[str, dict[str, Any]] = {
    "quick": {},
    "paper": {
        "chains": 10_000, "sde_chains": 100_000, "dt": 0.002, "levelset_dts": [0.01, 0.003, 0.001], "a_ratio": 5.0,
        "a_cs": [1.5, 2.0, 3.0, 4.0, 8.0], "sym_chains": 10_000, "b_ratio": 10.0, "b_ns": [1, 2, 3, 4, 5],
        "b_cs": [1.2, 1.5, 1.75, 2.0], "phi_ratios": [1.0, 2.0, 4.0, 8.0, 16.0], "phi_samples": 100,
        "sgd_etas": [0.1, 0.3, 1.0], "sgd_Bs": [1, 2, 4, 8, 16], "sgd_N": 100_000, "sgd_chains": 1000,
        "sgd_samples": 100, "nc_ns": [1, 2, 3, 4, 5, 6, 8], "mlp_epochs": 500, "mlp_seeds": 5,
        "gap_cs": [1.2, 1.5, 1.75, 2.0], "gap_chains": 2000, "gap_t_max": 30_000.0,
    },
}


def _ci(est: dict) -> tuple[float, float]:
    """s.e. of log(mean) from a 95% CI."""
    return (math.log(est["hi"]) - math.log(est["lo"])) / (2 * 1.96) if est["lo"] > 0 and math.isfinite(est["hi"]) else float("nan")


# ================================================================================================
# jobs
# ================================================================================================


def jobs(spec: Spec) -> list[dict[str, Any]]:
    common = {"device": spec.device, "dt": spec.dt, "correction": spec.correction, "tail": spec.tail}
    out: list[dict[str, Any]] = [{"kind": "theory", "quad_ratios": spec.quad_ratios, "quad_cs": spec.quad_cs,
                                  "delta_Ls": spec.delta_Ls, "a_ratio": spec.a_ratio, "a_cs": spec.a_cs,
                                  "levelset_ratio": spec.levelset_ratio, "b_ratio": spec.b_ratio,
                                  "b_ns": spec.b_ns, "b_cs": spec.b_cs, "device": spec.device}]
    for dtv in spec.levelset_dts:
        out.append({"kind": "levelset", "ratio": spec.levelset_ratio, "c": spec.levelset_c, "chains": spec.sde_chains,
                    **common, "dt": dtv, "correction": False})
    out.append({"kind": "levelset", "ratio": spec.levelset_ratio, "c": spec.levelset_c, "chains": spec.sde_chains,
                **common, "dt": spec.dt / 2, "correction": True})
    out.append({"kind": "symmetry", "ratio": spec.a_ratio, "c": spec.sym_c, "delta_Ls": spec.delta_Ls,
                "chains": spec.sym_chains, "gap_N": spec.gap_N, **common})
    for c in spec.a_cs:
        out.append({"kind": "family_a", "ratio": spec.a_ratio, "c": c, "chains": spec.sde_chains, **common})
    for n in spec.b_ns:
        for c in spec.b_cs:
            out.append({"kind": "family_b", "ratio": spec.b_ratio, "n": n, "c": c, "bulk": spec.b_bulk,
                        "chains": max(spec.chains // 2, 20), **common, "dt": 2 * spec.dt})
    out.append({"kind": "phi_sde", "ratios": spec.phi_ratios, "samples": spec.phi_samples, "chains": spec.chains * 2,
                "ci": "design_effect",
                **common, "dt": min(spec.dt, 0.005)})
    for eta in spec.sgd_etas:
        out.append({"kind": "phi_sgd", "eta": eta, "Bs": spec.sgd_Bs, "N": spec.sgd_N, "chains": spec.sgd_chains,
                    "samples": spec.sgd_samples, "device": spec.device})
    out.append({"kind": "instability", "ratio": spec.nc_ratio, "ns": spec.nc_ns, "times": spec.nc_times,
                "chains": spec.chains // 2, **common})
    for s in range(spec.mlp_seeds):
        out.append({"kind": "mlp", "member": s, "width": spec.mlp_width, "epochs": spec.mlp_epochs, "lr": spec.mlp_lr,
                    "batch": spec.mlp_batch, "top_k": spec.mlp_top_k, "n_train": spec.mlp_n_train, "device": spec.device})
    for c in spec.gap_cs:
        out.append({"kind": "gap", "c": c, "B": spec.gap_B, "eta": spec.gap_eta, "N": spec.gap_N,
                    "chains": spec.gap_chains, "t_max": spec.gap_t_max, **common, "dt": 2 * spec.dt,
                    "s4_pool": True})
    for j in out:
        j["seed"] = derive(spec.seed, j["kind"], *_seed_labels(j))
        if j["kind"] == "gap":  # Table 3: one data set shared by every c (its own stream)
            j["data_seed"] = derive(spec.seed, "gap", "data")
    return out


def _seed_labels(job: dict[str, Any]) -> tuple:
    """The values that tell a job apart from the others of its kind (never its position)."""
    kind = job["kind"]
    if kind == "levelset":
        return (float(job["dt"]), bool(job["correction"]))
    if kind in ("family_a", "gap"):
        return (float(job["c"]),)
    if kind == "family_b":
        return (int(job["n"]), float(job["c"]))
    if kind == "phi_sgd":
        return (float(job["eta"]),)
    if kind == "mlp":  # member s of minibatch-noise's MLP seeds: equal settings give the same numbers in both studies
        return (int(job["member"]),)
    return ()


# ================================================================================================
# run
# ================================================================================================


def run(job: dict[str, Any]) -> dict[str, Any]:
    """One job: the runner of its kind (:mod:`nnphys.studies._escape_rate_runs`)."""
    return RUNNERS[job["kind"]](job)


# ================================================================================================
# analyse
# ================================================================================================


BOOK = ClaimBook(CLAIMS)


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    """Every claim from the done jobs, each judged by its pre-registered rule (``CLAIMS[id].rule``)
    through :func:`nnphys.studies.protocol.judge`. Missing data (a :class:`_kit.Missing`) makes a
    claim ``inconclusive`` naming what is missing; any other exception is a bug and propagates."""
    k = by_kind(results, ok_only=False)
    return [BOOK.guard(cid, f, spec, k) for cid, f in CLAIM_FNS.items()]


def _done(k, kind: str) -> list[Result]:
    """The done results of ``kind`` (:class:`Missing` when there are none)."""
    rs = [r for r in k.get(kind, []) if r.ok]
    if not rs:
        raise Missing(f"{kind} jobs (none done)")
    return rs


def _theory(k) -> dict:
    return _done(k, "theory")[0].metrics


def _identity_cells(cid: str, checks: dict[str, tuple[float, float]]) -> list:
    return identity_cells(CLAIMS[cid].rule, checks)


def _judged(cid: str, cells: list, evidence: dict[str, Any], summary: str) -> Claim:
    return judged(BOOK, cid, cells, evidence, summary)


@BOOK.rule("T1")
def _a_t1(spec, k) -> Claim:
    th = _theory(k)
    ids = th["identities"]
    checks = {"eq17(n=1) = eq16": (ids["n1"], 1e-12), "kappa depends on c only": (ids["scale"], 1e-12),
              "kappa_tau + determinants = eq17": (ids["tau"], 1e-12),
              # the c -> 1+ comparison is a limit taken by finite differences, hence its looser tolerance
              "frozen Arrhenius leading exponent": (ids["arrhenius_lead"], 1e-5)}
    ev = {**ids, "coef_of_r_eq17": th["d17"], "coef_of_r_arrhenius": th["d_arrhenius"], "exact_coef": th["lead_exponent"]}
    return _judged("T1", _identity_cells("T1", checks), ev,
                   f"identities max rel. err {max(ids['n1'], ids['scale'], ids['tau']):.1e}; leading coefficient at "
                   f"c->1+: eq.17 {th['d17']:.4f}, frozen Arrhenius {th['d_arrhenius']:.4f}, exact {th['lead_exponent']:.4f}")


TABLE1 = {"5|2": 1.049, "5|4": 0.971, "5|8": 0.952, "10|2": 1.016, "10|4": 0.983, "10|8": 0.975,
          "20|2": 1.005, "20|4": 0.991, "20|8": 0.987}
TABLE2 = {"1": [9.66, 10.06, 10.29, 10.40, 10.46, 10.48], "5": [5.38, 6.31, 7.38, 8.00, 8.27, 8.40],
          "10": [3.32, 3.19, 3.88, 4.88, 5.51, 5.79]}


@BOOK.rule("T2")
def _a_t2(spec, k) -> Claim:
    th = _theory(k)
    t1 = th["table1"]
    regime = {key: v for key, v in t1.items() if float(key.split("|")[0]) >= 5 and float(key.split("|")[1]) >= 2}
    slopes = {r: [s / (0.5 + float(r)) - 1 for s in v] for r, v in th["quad_slopes"].items() if float(r) >= 5}
    checks: dict[str, tuple[float, float]] = {}
    for key, v in regime.items():
        checks[f"MFPT x kappa16 - 1 at r|c = {key}"] = (v - 1, 0.05)
    for r, v in slopes.items():
        checks[f"quadrature slopes / eq.16 - 1 at r = {r}"] = (max(abs(x) for x in v), 0.05)
    for key in TABLE1:
        if key in t1:
            checks[f"Table 1 {key}"] = (t1[key] - TABLE1[key], 0.002)
    for n, ref in TABLE2.items():
        if n in th["table2"]:
            checks[f"Table 2 n={n}"] = (max(abs(a - b) for a, b in zip(th["table2"][n], ref)), 0.02)
    checks["MFPT spread over dL at fixed c"] = (th["sym_spread"], 1e-10)
    ev = {"mfpt_x_kappa16": t1, "quad_slope_rel_dev_from_eq16": slopes,
          "table2_local_slopes": {n: [round(a, 3) for a in v] for n, v in th["table2"].items()},
          "max_rel_spread_over_dL": th["sym_spread"]}
    worst = max((abs(v - 1) for v in regime.values()), default=math.nan)
    return _judged("T2", _identity_cells("T2", checks), ev,
                   f"MFPT x kappa16 in [{min(t1.values()):.3f}, {max(t1.values()):.3f}], worst |dev| in regime {worst:.3f}")


@BOOK.rule("T3")
def _a_t3(spec, k) -> Claim:
    rows = sorted(_done(k, "levelset"), key=lambda r: (r.metrics["correction"], -r.metrics["dt"]))
    quad = rows[0].metrics["quad"]
    tab = [{"dt": r.metrics["dt"], "correction": r.metrics["correction"], **r.metrics["estimate"]} for r in rows]
    corr = [t for t in tab if t["correction"]]
    if not corr:
        raise Missing("a continuity-corrected levelset run")
    best = min(corr, key=lambda t: t["dt"])
    se = _ci(best)
    cell = P.cell(f"dt={best['dt']:g} corrected", P.known(math.log(best["mean"] / quad), se), CLAIMS["T3"].rule,
                  room=None if math.isfinite(se) else (False, "no finite CI (all chains censored)"),
                  extra={"mean": best["mean"], "quadrature": quad, "censored_fraction": best["censored_fraction"]})
    unc = [t for t in tab if not t["correction"]]
    ev = {"quadrature": quad, "runs": tab,
          "uncorrected_decreasing_with_dt": all(a["mean"] >= b["mean"] for a, b in zip(unc, unc[1:]))}
    return _judged("T3", [cell], ev, f"quadrature {quad:.2f}; S1 dt={best['dt']:g} corrected {best['mean']:.2f} "
                   f"[{best['lo']:.2f}, {best['hi']:.2f}]; uncorrected " + ", ".join(f"dt={t['dt']:g}: {t['mean']:.1f}" for t in unc))


@BOOK.rule("T4")
def _a_t4(spec, k) -> Claim:
    m = _done(k, "symmetry")[0].metrics
    th = _theory(k)
    checks = {"S1 fraction of differing hitting steps": (1 - m["identical_fraction"], 1e-3),
              "SGD fraction of differing hitting steps": (1 - m["sgd_identical_fraction"], 1e-3),
              "quadrature MFPT spread over dL": (th["sym_spread"], 1e-10)}
    ests = {f"{dl:g}": round(e["mean"], 6) for dl, e in zip(m["delta_Ls"], m["estimates"])}
    ev = {"S1_identical_fraction": m["identical_fraction"], "S5_identical_fraction": m["sgd_identical_fraction"],
          "S1_mean_times_by_dL": ests, "c": spec.sym_c, "ratio": spec.a_ratio, "n_sgd_chains": m["n_sgd"]}
    return _judged("T4", _identity_cells("T4", checks), ev,
                   f"identical hitting steps: S1 {m['identical_fraction']:.4f}, SGD {m['sgd_identical_fraction']:.4f}; "
                   f"mean t by dL {ests}")


@BOOK.rule("T5")
def _a_t5(spec, k) -> Claim:
    th = _theory(k)
    rows = sorted(_done(k, "family_a"), key=lambda r: r.metrics["c"])
    if len(rows) < 2:
        raise Missing(f"family_a jobs at two or more c (have {len(rows)})")
    cs = np.array([r.metrics["c"] for r in rows])
    est = [r.metrics["estimate"] for r in rows]
    t = np.array([e["mean"] for e in est])
    se = np.array([_ci(e) for e in est])
    q = np.array([th["a_quad"][f"{c:g}"] for c in cs])
    lc = np.log(cs)
    mc_sl = np.diff(np.log(t)) / np.diff(lc)
    mc_se = np.sqrt(se[1:] ** 2 + se[:-1] ** 2) / np.diff(lc)
    q_sl = np.diff(np.log(q)) / np.diff(lc)
    arr_sl = spec.a_ratio * np.diff(cs) / np.diff(lc)  # frozen Arrhenius: log t = r (c - 1) + const
    cells = []
    for i in range(len(mc_sl)):
        ok = bool(np.isfinite(mc_se[i]))
        cells.append(P.cell(f"c {cs[i]:g}->{cs[i + 1]:g}", P.known(mc_sl[i] / q_sl[i] - 1, mc_se[i] / q_sl[i]),
                            CLAIMS["T5"].rule, room=None if ok else (False, "no finite CI (censored chains)"),
                            extra={"mc_slope": mc_sl[i], "quad_slope": q_sl[i], "arrhenius_slope": arr_sl[i]}))
    ev = {"c": cs.tolist(), "mc_mean_t": t.tolist(), "mc_se_log": se.tolist(), "quad_t": q.tolist(),
          "mc_local_slopes": mc_sl.tolist(), "mc_slope_se": mc_se.tolist(), "quad_local_slopes": q_sl.tolist(),
          "eq16_slope": 0.5 + spec.a_ratio, "frozen_arrhenius_slopes": arr_sl.tolist(),
          "censored_fraction": [e["censored_fraction"] for e in est], "ratio_mc": spec.a_ratio}
    return _judged("T5", cells, ev, f"MC slopes {np.round(mc_sl, 2).tolist()} vs quadrature {np.round(q_sl, 2).tolist()} "
                   f"(eq. 16: {0.5 + spec.a_ratio:g}; frozen Arrhenius {np.round(arr_sl, 2).tolist()})")


def _wls_slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of ``y`` on ``x`` (weights ``1/se²``) and its standard error."""
    w = 1 / se ** 2
    A = np.stack([np.ones_like(x), x], 1)
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    beta = cov @ (A.T @ (w * y))
    return float(beta[1]), float(math.sqrt(cov[1, 1]))


@BOOK.rule("T6")
def _a_t6(spec, k) -> Claim:
    rows = _done(k, "family_b")
    ns = sorted({r.metrics["n"] for r in rows})
    per_n = {n: sum(r.metrics["n"] == n for r in rows) for n in ns}
    if len(ns) < 2 or min(per_n.values()) < 2:
        raise Missing(f"family_b jobs at two or more c for two or more n (have {per_n})")
    slopes, ses, table = [], [], {}
    for n in ns:
        rr = sorted((r for r in rows if r.metrics["n"] == n), key=lambda r: r.metrics["c"])
        sl, se = _wls_slope(np.log([r.metrics["c"] for r in rr]), np.log([r.metrics["estimate"]["mean"] for r in rr]),
                            np.array([_ci(r.metrics["estimate"]) for r in rr]))
        slopes.append(sl)
        ses.append(se)
        table[str(n)] = {"c": [r.metrics["c"] for r in rr], "t": [r.metrics["estimate"]["mean"] for r in rr],
                         "eq17": [r.metrics["pred17"] for r in rr],
                         "censored": [r.metrics["estimate"]["censored_fraction"] for r in rr]}
    d, d_se = _wls_slope(np.array(ns, float), np.array(slopes), np.array(ses))
    regime_ok = spec.b_ratio >= 10 and max(ns) <= E.n_critical(spec.b_ratio, 1, 1) / 2
    cell = P.cell("family B n-sweep", P.known(d + 0.5, d_se), CLAIMS["T6"].rule,
                  room=None if math.isfinite(d_se) else (False, "no finite CI (censored chains)"),
                  extra={"d_slope_dn": d, "regime_ratio>=10_n<=n_c/2": regime_ok})
    ev = {"n": ns, "slope_in_log_c": slopes, "slope_se": ses, "eq17_slope": [spec.b_ratio + 1 - n / 2 for n in ns],
          "d_slope_dn": d, "d_slope_dn_se": d_se, "ratio": spec.b_ratio, "runs": table,
          "spec_regime_(ratio>=10, n<=n_c/2)": regime_ok}
    return _judged("T6", [cell], ev, f"slope per n: {d:.3f} +- {d_se:.3f} (eq. 17: -0.5); slopes {np.round(slopes, 2).tolist()} "
                   f"vs eq. 17 {[spec.b_ratio + 1 - n / 2 for n in ns]}" + ("" if regime_ok else "; outside B/(eta h*) >= 10"))


@BOOK.rule("T7sde")
def _a_t7sde(spec, k) -> Claim:
    fits = _done(k, "phi_sde")[0].metrics["fits"]
    cells = []
    for f in fits:
        se = (f["phi_hi"] - f["phi_lo"]) / (2 * 1.96 * f["phi"])
        cells.append(P.cell(f"B/(eta h*)={f['ratio']:g}", P.known(f["phi_fit"] / f["phi"] - 1, se, f.get("n", 1)),
                            CLAIMS["T7sde"].rule, room=None if math.isfinite(se) else (False, "open profile CI"),
                            extra={"phi_fit": f["phi_fit"], "phi": f["phi"], "ci": [f["phi_lo"], f["phi_hi"]]}))
    ev = {"S1": fits, "S1_rel_dev": [f["phi_fit"] / f["phi"] - 1 for f in fits]}
    return _judged("T7sde", cells, ev, "S1 phi_fit/phi - 1: " + ", ".join(
        f"{f['ratio']:g}: {f['phi_fit'] / f['phi'] - 1:+.3f}" for f in fits))


def _sgd_phi_cell(f: dict) -> Any:
    """One (eta, B) cell of T7 on the scale e = phi/phi_fit - 1 (finite at phi_fit = inf). The
    profile CI [lo, hi] of phi_fit maps to [phi/hi - 1, phi/lo - 1]; the s.e. is its larger
    half-width about the estimate / 1.96 (conservative for the skewed profile interval, and
    finite when the interval is open above). A diverged run is the worst value (intention to
    treat): phi_fit = 1/2, the edge of normalisability of L^-phi in 1-D."""
    rule = CLAIMS["T7"].rule
    name = f"eta={f['eta']:g},B={f['B']}"
    if f.get("diverged"):
        phi = f.get("phi", math.nan)
        worst = 2 * phi - 1 if math.isfinite(phi) else WORST
        return P.cell(name, _exact(worst), rule, n_diverged={"sgd": 1}, extra={"diverged": True})
    phi, fit, lo, hi = f["phi"], f["phi_fit"], f["phi_lo"], f["phi_hi"]
    inv = lambda v: 0.0 if math.isinf(v) else phi / v  # noqa: E731
    e = inv(fit) - 1
    se = max(inv(lo) - 1 - e, e - (inv(hi) - 1)) / 1.96 if lo > 0 else math.inf
    return P.cell(name, P.known(e, se, f.get("n", 1)), rule,
                  room=None if math.isfinite(se) and se > 0 else (False, "no usable profile CI"),
                  extra={"phi_fit": fit, "ci": [lo, hi], "phi": phi, "phi_disc": f.get("phi_disc"),
                         "phi_kesten": f.get("phi_kesten")})


@BOOK.rule("T7")
def _a_t7(spec, k) -> Claim:
    sgd = [f for r in _done(k, "phi_sgd") for f in r.metrics["fits"]]
    cells = [_sgd_phi_cell(f) for f in sgd]
    s5 = "; ".join(f"eta={f['eta']:g},B={f['B']}: {f['phi_fit']:.3g} [{f.get('phi_lo', math.nan):.3g}, "
                   f"{f.get('phi_hi', math.nan):.3g}] (phi {f.get('phi', math.nan):.2f}, disc "
                   f"{f.get('phi_disc', math.nan):.2f}, Kesten {f.get('phi_kesten', math.nan):.2f})" for f in sgd)
    return _judged("T7", cells, {"S5": sgd}, f"SGD phi_fit [95% CI]: {s5}")


@BOOK.rule("T8")
def _a_t8(spec, k) -> Claim:
    m = _done(k, "instability")[0].metrics
    nc = m["n_c"]
    rows = m["rows"]
    stable = [r for r in rows if r["n"] < nc]
    unstable = [r for r in rows if r["n"] >= nc]
    if not stable or not unstable:
        raise Missing(f"instability rows on both sides of n_c = {nc:g}")
    ref = max(stable, key=lambda r: r["n"])
    cells = [P.cell(f"n={r['n']} vs n={ref['n']}", P.known(r["growth"] - ref["growth"], math.hypot(r["growth_se"], ref["growth_se"])),
                    CLAIMS["T8"].rule, extra={"growth": r["growth"], "reference_growth": ref["growth"]}) for r in unstable]
    ev = {"n_c": nc, "rows": rows, "reference_n": ref["n"]}
    return _judged("T8", cells, ev, f"n_c = {nc:g}; growth of <log L> between t1 and t2 by n: "
                   + ", ".join(f"{r['n']}: {r['growth']:.2f}+-{r['growth_se']:.2f}" for r in rows))


def _mlps(k) -> list[dict]:
    """The MLP runs, one per seed. A diverged run has no late slope or spectrum: it cannot be
    counted as a value, so the claim names it and is judged on the others (reported in n_diverged)."""
    return [r.metrics for r in _done(k, "mlp")]


def _n_div(k, kind: str) -> int:
    return sum(r.status == "diverged" for r in k.get(kind, []))


@BOOK.rule("T9")
def _a_t9(spec, k) -> Claim:
    runs = _mlps(k)
    fits = [late_slope(m["loss"], m["trace_cov"]) for m in runs]
    ev = {"per_seed": [{"slope": f["slope"], "ols_se_over_epochs": f["se"], "r2": f["r2"], "loss_range": f["loss_range"],
                        "slope_first_half": f["slope_early"]} for f in fits],
          "data": "digits (sklearn), y = +-1 even/odd, MLP 64-w-w-1 (Glorot uniform), MSE, SGD (nnphys.digits_noise)",
          "epochs": len(runs[0]["loss"]) - 1, "seeds": len(runs)}
    return _judged("T9", [noise_loss_cell(runs, CLAIMS["T9"].rule, _n_div(k, "mlp"))], ev,
                   "late log-log slope of tr C vs L by seed: " + ", ".join(f"{f['slope']:.3f}" for f in fits))


@BOOK.rule("T9b")
def _a_t9b(spec, k) -> Claim:
    runs = _mlps(k)
    per = [decoupling_by_epoch(m) for m in runs]
    rms = {ep: [decoupling_rms(m, ep) for m in runs] for ep in per[0]}
    hess = hessian_evidence(runs, judged_epochs=[final_epoch(runs[0])])
    ev = {"hessian_rms_log_ratio_by_seed": [rms_by_epoch(m, "hessian") for m in runs], "rms_log_ratio_by_epoch": {ep: [v["rms"] for v in vs] for ep, vs in rms.items()},
          "worst_factor_by_epoch": {ep: [p[ep]["max_ratio"] for p in per] for ep in per[0]},
          "k_used": {ep: [v["k_used"] for v in vs] for ep, vs in rms.items()},
          "judged_epoch": final_epoch(runs[0]), "top_k": spec.mlp_top_k, "bulk_fraction": BULK_FRACTION,
          "by_epoch": per, "comparison": "Gauss-Newton (decides); full Hessian next to it (evidence)",
          "verdict_probe_rule": GAUSS_NEWTON_RULE, "hessian": hess}
    return _judged("T9b", [decoupling_cell(runs, CLAIMS["T9b"].rule, _n_div(k, "mlp"))], ev,
                   "RMS log eigenvalue ratio by epoch (init and mid reported, end judged): "
                   + ", ".join(f"{ep}: " + "/".join(f"{v['rms']:.2f}" for v in vs) for ep, vs in rms.items()))


@BOOK.rule("T10")
def _a_t10(spec, k) -> Claim:
    rows = sorted((r.metrics for r in _done(k, "gap")), key=lambda m: m["c"])
    if len(rows) < 2:
        raise Missing(f"gap jobs at two or more c (have {len(rows)})")
    sims = ["S5", "S4", "S4_exact", "S4_rademacher", "S4_pool", "S1", "S2", "S3"]
    tab = {f"{m['c']:g}": {**{s: m[s]["mean"] for s in sims if s in m}, "quad_eq13": m["quad_eq13"],
                          "quad_exact_population": m["quad_exact_population"],
                          "S5_censored": m["S5"]["censored_fraction"], "S5_ci": [m["S5"]["lo"], m["S5"]["hi"]]} for m in rows}
    cs = np.array([m["c"] for m in rows])
    s5 = np.array([m["S5"]["mean"] for m in rows])
    se = np.array([_ci(m["S5"]) for m in rows])
    q = np.array([m["quad_eq13"] for m in rows])
    n = 1  # the Fig. 3b setting here is d = 1
    pred = spec.gap_B / (spec.gap_eta * rows[0]["h_star"]) + 1 - n / 2
    if np.all(np.isfinite(se)):
        slope, slope_se = _wls_slope(np.log(cs), np.log(s5), se)
        room = None
    else:
        slope, slope_se, room = math.nan, math.nan, (False, "an S5 estimate without a finite CI")
    cell = P.cell(f"d={n}", P.known(slope / pred - 1, slope_se / pred, rows[0]["S5"].get("n", 1)), CLAIMS["T10"].rule,
                  room=room, extra={"sgd_slope": slope, "sgd_slope_se": slope_se, "paper_exponent": pred})
    q_slope = float(np.polyfit(np.log(cs), np.log(q), 1)[0])
    ev = {"table3": tab, "S5_over_quad_(reported)": {c: v["S5"] / v["quad_eq13"] for c, v in tab.items()},
          "S5_local_slopes": (np.diff(np.log(s5)) / np.diff(np.log(cs))).tolist(),
          "sgd_slope": slope, "sgd_slope_se": slope_se, "paper_exponent": pred, "quadrature_slope_same_c": q_slope,
          "quad_local_slopes": (np.diff(np.log(q)) / np.diff(np.log(cs))).tolist(),
          "h_star": rows[0]["h_star"], "L_star": rows[0]["L_star"], "B": spec.gap_B, "eta": spec.gap_eta,
          "note": "the level-set slope approaches the paper's exponent only for c >> 1 (spec Sec. 6): the Eq. 13 "
                  "quadrature's own slope over the same c is reported next to it"}
    last = tab[f"{rows[-1]['c']:g}"]
    return _judged("T10", [cell], ev, f"SGD slope {slope:.2f} +- {slope_se:.2f} vs paper {pred:.2f} (Eq. 13 quadrature "
                   f"over the same c: {q_slope:.2f}); SGD / quadrature by c: "
                   + ", ".join(f"{c}: {v['S5'] / v['quad_eq13']:.2f}" for c, v in tab.items())
                   + f"; at c={rows[-1]['c']:g}: S5 {last['S5']:.1f}, S4 Gaussian {last['S4']:.1f}, S1 {last['S1']:.1f}")


CLAIM_FNS = {"T1": _a_t1, "T2": _a_t2, "T3": _a_t3, "T4": _a_t4, "T5": _a_t5, "T6": _a_t6, "T7sde": _a_t7sde,
             "T7": _a_t7, "T8": _a_t8, "T9": _a_t9, "T9b": _a_t9b, "T10": _a_t10}


# ================================================================================================
# figures
# ================================================================================================


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """See :mod:`nnphys.studies._escape_rate_figures` (escape_vs_c, escape_vs_deltaL, escape_vs_n,
    phi_vs_B, phi_fit_vs_pred, decoupling_spectra, passage_times)."""
    from nnphys.studies._escape_rate_figures import figures as _figures

    return _figures(spec, results)


# ================================================================================================
# resample (verdict stability, issue 11 item 2)
# ================================================================================================

_MC_KINDS = ("levelset", "family_a", "family_b")
_GAP_SIMS = ("S5", "S4", "S4_exact", "S4_rademacher", "S4_pool", "S1", "S2", "S3")


def _redraw_estimate(e: dict, z: float) -> None:
    """Shift a first-passage estimate (mean and CI together) by ``z`` of its log-scale s.e."""
    se = _ci(e)
    if math.isfinite(se):
        f = math.exp(z * se)
        e["mean"], e["lo"], e["hi"] = e["mean"] * f, e["lo"] * f, e["hi"] * f


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """A parametric bootstrap over the chains: every job here is one ensemble of independent chains
    whose per-chain times are not stored, so each Monte Carlo estimate is redrawn from its own
    sampling distribution (normal in log t with the CI's s.e., mean and CI shifted together); the
    Student-t fits of phi and the growth of <log L> likewise (normal with their s.e.). Covers T3, T5,
    T6, T7sde, T8 and T10. The MLP seeds (T9, T9b) are drawn with replacement. The formula and
    quadrature claims (T1, T2), the identical-steps count (T4) and the SGD phi fits (T7: skewed
    profile CIs, often open above) are passed through unchanged."""
    import copy
    import dataclasses

    mlps = [r for r in results if r.ok and r.params.get("kind") == "mlp"]
    out = [mlps[int(i)] for i in rng.integers(0, len(mlps), len(mlps))] if mlps else []
    for r in results:
        kind = r.params.get("kind")
        if r.ok and kind == "mlp":
            continue
        if not r.ok or kind not in _MC_KINDS + ("gap", "phi_sde", "instability"):
            out.append(r)
            continue
        m = copy.deepcopy(r.metrics)
        if kind in _MC_KINDS:
            _redraw_estimate(m["estimate"], rng.standard_normal())
        elif kind == "gap":
            for s in _GAP_SIMS:
                if s in m:
                    _redraw_estimate(m[s], rng.standard_normal())
        elif kind == "phi_sde":
            for f in m["fits"]:
                se = (f["phi_hi"] - f["phi_lo"]) / (2 * 1.96)
                if math.isfinite(se):
                    d = rng.standard_normal() * se
                    f["phi_fit"], f["phi_lo"], f["phi_hi"] = f["phi_fit"] + d, f["phi_lo"] + d, f["phi_hi"] + d
        else:
            for row in m["rows"]:
                row["growth"] += rng.standard_normal() * row["growth_se"]
        out.append(dataclasses.replace(r, metrics=m))
    return out


STUDY = Study(
    name="escape-rate",
    papers=("Power-law escape rate of SGD (arXiv 2105.09557)",),
    spec=Spec,
    presets=PRESETS,
    jobs=jobs,
    run=run,
    analyse=analyse,
    figures=figures,
    claims=CLAIMS,
    resample=resample,
    calibration=CALIBRATION,
    headline=("T7", "T9", "T9b", "T10"),  # [default] the paper's headline results judged on genuine SGD, led with in the scorecard
    schema_version=3,  # 3: the MLP job adds the full-Hessian probe; 2: seeds from nnphys.seeding.derive, one digits-MLP experiment
    description="Log-barrier escape of the loss-proportional SGD noise SDE: formulas, exact quadrature, "
                "SDE and genuine-SGD Monte Carlo, stationary law, n_c, noise vs loss on an MLP.",
)
