"""Study ``minibatch-noise``: the strength of minibatch noise in SGD.

Paper: Ziyin, Liu, Mori, Ueda, *Strength of Minibatch Noise in SGD* (arXiv 2102.05375, ICLR 2022);
the noise-measurement parts of Mori et al., *Power-law escape rate of SGD* (arXiv 2105.09557).
Spec: ``specs/minibatch-noise.md`` (§ numbers below refer to it; rows = its §13 checklist, claims =
its §14 list) and ``specs/escape-rate.md`` §2, §13 (noise ∝ loss, decoupling).

Top to bottom:

1. Linear-regression theory (claims C1, C2, C4–C11): every closed form of :mod:`nnphys.linreg`
   against the exact second-moment oracle (spec §3) and against Monte Carlo (R parallel chains,
   float64, CIs over independent chains), on the §13 rows and on a learning-rate grid that reaches
   the stability edge.
2. Neural nets (C3, C12): the digits-MLP experiment of :mod:`nnphys.digits_noise` (the same run as
   escape-rate T9/T9b for the same settings and seed): ``𝒩 = tr C_1`` and the loss every epoch; the
   log–log slope of ``𝒩`` against ``L`` over the second half of training, ``tr C`` against
   ``(2L/S)·`` Gauss–Newton trace, and the decoupling spectra at init, mid-training and the end.
3. Verdicts (holds / fails / inconclusive) with the pre-registered criteria written in each claim's
   evidence; figures: Σ and losses vs λ/S, tail exponent vs S, noise trace vs loss, fixed-λ/S Σ vs S.

Seeds: every job's seed is ``derive(seed, kind, its labels)`` (:mod:`nnphys.seeding`), never its
position; the runners live in :mod:`nnphys.studies._minibatch_noise_runs`, the figures in
:mod:`nnphys.studies._minibatch_noise_figures`.

Sampling schemes are recorded in every job's output: theory checks use i.i.d. (with-replacement)
indices or fresh online data; the MLP reshuffles every epoch (without replacement).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import Field, model_validator
from scipy import stats as _st

from nnphys.digits_noise import GAUSS_NEWTON_RULE, decoupling_by_epoch, hessian_evidence, hessian_summary
from nnphys.errors import ConfigError
from nnphys.seeding import derive
from nnphys.stats import t_ci
from nnphys.studies._kit import ClaimBook, Missing, band_verdict, by_kind, fnum, need
from nnphys.studies._minibatch_noise_runs import ONLINE_CASES, RUNNERS, _mean_se
from nnphys.studies.base import Claim, ClaimInfo, Figure, Result, Study, StudySpec, PosFloat, PosInt

# ================================================================================================
# claims (statement and tag; the verdict logic is one function per claim below)
# ================================================================================================

CLAIMS = {
    "C1": ClaimInfo("Prop. 1 is exact with replacement; without replacement C is multiplied by (N-S)/(N-1)", "paper"),
    "C2": ClaimInfo("Thm 2/3 (Σ, C, L_train, L_test) are exact for online Gaussian regression up to the stability edge; "
                    "continuous-time and discrete Hessian approximations fail at small S", "paper"),
    "C3": ClaimInfo("Near a minimum the noise is ∝ the training loss, C ≈ (2L/S)H: exact regression (leading term) "
                    "and 𝒩 ∝ L late in training of an MLP on real data", "paper"),
    "C4": ClaimInfo("The maximal stable learning rate scales as S/D (isotropic edge 2S/(a(D+S+1)))", "paper"),
    "C5": ClaimInfo("The optimal weight decay can be negative at large λ, only under the §6 conditions", "paper"),
    "C6": ClaimInfo("Over-parameterised regression has zero stationary fluctuation; under-parameterised noise "
                    "∝ σ²(1-1/α)", "paper"),
    "C7": ClaimInfo("Thm 6 is accurate far from the stability edge and degraded near it", "derived"),
    "C8": ClaimInfo("The linear learning-rate–batch-size scaling rule fails (Σ grows with S at fixed λ/S and "
                    "diverges at S = 2/(ca) - 2)", "paper"),
    "C9": ClaimInfo("The discrete-time tail is heavier than the continuous one; β = 2S/(aλ) - S is accurate only "
                    "near β ≈ 2", "paper"),
    "C10": ClaimInfo("Input noise maps exactly onto label noise with σ²_eff = Tr[AK⁻¹BU]", "derived"),
    "C11": ClaimInfo("Printed-formula defects: Eq. 12 off-diagonals, the sign of Thm 5's rank-1 term", "derived"),
    "C12": ClaimInfo("Decoupling approximation: spectra of (1/N)Σ ℓ_μ C_f and L·(1/N)Σ C_f agree (top 20 within ×1.5)",
                     "paper"),
}


# ================================================================================================
# spec
# ================================================================================================


class Spec(StudySpec):
    """Fields carry their provenance tag: [paper], [derived] or [default] (ours)."""

    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed of every job")
    sigma2: float = Field(1.0, gt=0, le=100, description="[default] label-noise variance σ² (§13: 1)")
    n_chains: int = Field(2000, ge=10, le=1_000_000,
                          description="[default] parallel SGD chains per low-dimensional simulation (§13: >= 2000)")
    n_steps: int = Field(4000, ge=10, le=10_000_000,
                         description="[default] post-burn-in steps per chain (§13: 4000)")
    cases: list[str] = Field(list(ONLINE_CASES), min_length=0,
                             description="[default] §13 rows simulated online (row2, row3, row5, row6, row12, row9a-c, row17)")
    grid_a: float = Field(1.0, gt=0, le=100, description="[paper] 1-D curvature a of the λ grid (Fig. 4a: 1)")
    grid_batch_sizes: list[PosInt] = Field([10, 2], min_length=1,
                                        description="[paper/default] S of the 1-D λ grids (Fig. 4a: S = 10; 2 is ours)")
    grid_fractions: list[PosFloat] = Field(
        [0.1, 0.3, 0.5, 0.7, 0.85, 0.93, 0.97], min_length=2,
        description="[default] grid λ as fractions of the exact stability edge λ_max = 2S/(a(S+2))")
    prop1_n: int = Field(20, ge=2, le=100_000, description="[default] data points of the Prop. 1 check (row 1)")
    prop1_S: int = Field(8, ge=1, le=100_000, description="[default] batch size of the Prop. 1 check")
    prop1_draws: int = Field(200_000, ge=1000, le=100_000_000, description="[default] minibatches drawn in the Prop. 1 check")
    edge_D: list[PosInt] = Field([2, 8, 32, 128], min_length=1, description="[default] dimensions D of the isotropic edge check (C4)")
    edge_S: list[PosInt] = Field([1, 4, 16, 64], min_length=1, description="[default] batch sizes of the isotropic edge check (C4)")
    edge_sim_D: int = Field(8, ge=1, le=512, description="[default] D of the edge simulations (C4)")
    edge_sim_S: int = Field(4, ge=1, le=4096, description="[default] S of the edge simulations (C4)")
    l2_cases: list[tuple[Annotated[float, Field(ge=-100, le=100)], PosInt]] = Field(
        [(1.8, 10), (0.7, 1), (0.5, 1), (1.2, 4), (0.9, 4), (1.5, 2)], min_length=1,
        description="[paper/default] (λ, S) of the 1-D optimal-weight-decay check, a = u = 1 (first three: §6 examples)")
    hd_D: int = Field(100, ge=4, le=2000,
                      description="[paper] dimension D of the high-dimensional checks (§13 rows 13–15: 100); N = 4D, 2D, "
                                  "0.8D and λ = 5/D, 12/D, 6/D, 10/D scale with it")
    hd_over_burn_in: int = Field(8000, ge=10, le=10_000_000,
                                 description="[default] burn-in steps of the over-parameterised run from w0 = 0 (row 15)")
    hd_draws: int = Field(4, ge=1, le=100, description="[default] data draws of the high-dimensional checks (§9: 8)")
    hd_chains: int = Field(200, ge=2, le=100_000, description="[default] chains of the D = 100 simulations (§13: 200)")
    hd_steps: int = Field(3000, ge=10, le=1_000_000, description="[default] post-burn-in steps of the D = 100 simulations (§13: 12000)")
    scaling_c: float = Field(0.1, gt=0, le=10, description="[default] fixed ratio c = λ/S of the scaling check (C8), 1-D a = 1")
    scaling_S: list[PosInt] = Field([1, 2, 4, 8, 12, 16], min_length=2, description="[default] batch sizes at fixed λ/S (C8)")
    tail_S: list[PosInt] = Field([1, 2, 3, 4], min_length=1, description="[paper] batch sizes of the tail check at aλ = 1 (row 16)")
    tail_chains: int = Field(2000, ge=10, le=1_000_000, description="[default] chains of the tail simulations")
    tail_steps: int = Field(4000, ge=100, le=10_000_000, description="[default] recorded steps per tail chain (every step)")
    tail_frac: float = Field(0.005, gt=0, le=0.2, description="[default] Hill estimator top fraction (row 16: 0.1–1%)")
    mlp_seeds: int = Field(4, ge=1, le=100, description="[default] MLP training seeds (C3, C12)")
    mlp_width: int = Field(128, ge=1, le=8192, description="[default] MLP hidden width (2 hidden ReLU layers)")
    mlp_lr: float = Field(0.05, gt=0, le=10, description="[default] MLP SGD learning rate")
    mlp_batch: int = Field(32, ge=1, le=4096, description="[default] MLP batch size B (epoch reshuffling)")
    mlp_epochs: int = Field(60, ge=2, le=100_000, description="[default] MLP training epochs")
    mlp_top_k: int = Field(20, ge=1, le=1000, description="[paper] eigenvalues compared in the decoupling check (escape-rate T9: 20)")
    mlp_n_train: int = Field(1500, ge=10, le=1796, description="[default] digits training rows (the rest is held out)")

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        unknown = set(self.cases) - set(ONLINE_CASES)
        if unknown:
            raise ValueError(f"cases: unknown {sorted(unknown)}; known {list(ONLINE_CASES)}")
        if any(not 0 < f < 1 for f in self.grid_fractions):
            raise ValueError(f"grid_fractions must lie in (0, 1) (got {self.grid_fractions})")
        if self.prop1_S > self.prop1_n:
            raise ValueError("prop1_S must be <= prop1_n (without-replacement check)")
        if any(S < 1 for S in self.grid_batch_sizes + self.edge_S + self.scaling_S + self.tail_S):
            raise ValueError("batch sizes must be >= 1")
        if self.mlp_top_k > self.mlp_n_train:
            raise ValueError("mlp_top_k must be <= mlp_n_train")
        for lam, S in self.l2_cases:
            if lam <= 0 or S < 1:
                raise ValueError(f"l2_cases need λ > 0 and S >= 1 (got {(lam, S)})")
        return self


PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(n_chains=1000, n_steps=1500, grid_batch_sizes=[10],
                  grid_fractions=[0.2, 0.5, 0.8, 0.93], prop1_draws=50_000, edge_D=[2, 8, 32],
                  edge_S=[1, 4, 16], hd_draws=2, hd_chains=64, hd_steps=800,
                  scaling_S=[1, 4, 8, 12, 16], tail_chains=1000, tail_steps=1500, mlp_seeds=3,
                  mlp_epochs=60, mlp_width=64),
    "paper": dict(n_chains=2000, n_steps=4000, hd_draws=8, hd_chains=200, hd_steps=12000,
                  tail_chains=4000, tail_steps=4000, mlp_seeds=5, mlp_epochs=200, mlp_width=256),
}


# ================================================================================================
# jobs
# ================================================================================================


def jobs(spec: Spec) -> list[dict[str, Any]]:
    base = dict(device=spec.device, sigma2=spec.sigma2)
    out: list[dict[str, Any]] = [dict(kind="prop1", N=spec.prop1_n, S=spec.prop1_S,
                                      draws=spec.prop1_draws, seed=derive(spec.seed, "prop1"), **base)]
    for i, name in enumerate(spec.cases):
        out.append(dict(kind="online", case=name, n_chains=spec.n_chains, n_steps=spec.n_steps,
                        seed=derive(spec.seed, "online", name), **base))
    for S in spec.grid_batch_sizes:
        out.append(dict(kind="grid", a=spec.grid_a, S=S, fractions=list(spec.grid_fractions),
                        n_chains=spec.n_chains, n_steps=spec.n_steps, seed=derive(spec.seed, "grid", S),
                        **base))
    out.append(dict(kind="edge", Ds=list(spec.edge_D), Ss=list(spec.edge_S), sim_D=spec.edge_sim_D,
                    sim_S=spec.edge_sim_S, n_chains=spec.n_chains, n_steps=spec.n_steps,
                    seed=derive(spec.seed, "edge"), **base))
    out.append(dict(kind="l2", cases=[list(c) for c in spec.l2_cases], n_chains=spec.n_chains,
                    n_steps=spec.n_steps, seed=derive(spec.seed, "l2"), **base))
    for d in range(spec.hd_draws):
        out.append(dict(kind="highdim", draw=d, D=spec.hd_D, over_burn_in=spec.hd_over_burn_in,
                        n_chains=spec.hd_chains, n_steps=spec.hd_steps,
                        seed=derive(spec.seed, "highdim", d), **base))
    out.append(dict(kind="scaling", c=spec.scaling_c, Ss=list(spec.scaling_S),
                    n_chains=spec.n_chains, n_steps=spec.n_steps, seed=derive(spec.seed, "scaling"), **base))
    out.append(dict(kind="tail", Ss=list(spec.tail_S), n_chains=spec.tail_chains,
                    n_steps=spec.tail_steps, frac=spec.tail_frac, seed=derive(spec.seed, "tail"), **base))
    out.append(dict(kind="defects", draws=spec.prop1_draws, seed=derive(spec.seed, "defects"), **base))
    for s in range(spec.mlp_seeds):
        out.append(dict(kind="mlp", member=s, seed=derive(spec.seed, "mlp", s), width=spec.mlp_width,
                        lr=spec.mlp_lr, batch=spec.mlp_batch, epochs=spec.mlp_epochs,
                        top_k=spec.mlp_top_k, n_train=spec.mlp_n_train, **base))
    return out


# ================================================================================================
# run
# ================================================================================================


def run(job: dict[str, Any]) -> dict[str, Any]:
    kind = job.get("kind")
    if kind not in RUNNERS:
        raise ConfigError("kind", f"must be one of {sorted(RUNNERS)} (got {kind!r})")
    out = RUNNERS[kind](job)
    out["kind"] = kind
    return out


# ================================================================================================
# analyse
# ================================================================================================


def _z(m: int, level: float = 0.05) -> float:
    """Bonferroni two-sided z for m comparisons."""
    return float(_st.norm.ppf(1 - level / (2 * max(m, 1))))


BOOK = ClaimBook(CLAIMS)


def analyse(spec: Spec, results: list[Result]) -> list[Claim]:
    """Every claim from the done jobs; missing data (:class:`_kit.Missing`) -> ``inconclusive``
    naming it, any other exception propagates."""
    R = by_kind(results)
    return [BOOK.guard(cid, f, spec, R) for cid, f in CLAIM_FNS.items()]


def _c1(spec, R):
    if "prop1" not in R:
        raise Missing("prop1 jobs (none done)")
    m = R["prop1"][0].metrics
    z = _z(3)
    ev = {k: m[k] for k in ("wr", "wor")}
    ok_wr = abs(m["wr"]["mc_trace"] - m["wr"]["theory_trace"]) <= z * m["wr"]["mc_se"]
    ok_wor = abs(m["wor"]["mc_trace"] - m["wor"]["theory_trace"]) <= z * m["wor"]["mc_se"]
    naive_rejected = abs(m["wor"]["mc_trace"] - m["wor"]["naive_wr_trace"]) > z * m["wor"]["mc_se"]
    ev.update(N=m["N"], S=m["S"], draws=m["draws"], z_bonferroni=z,
              criterion="|MC - formula| <= z·se for both schemes; the with-replacement formula is rejected for "
                        "without-replacement draws")
    verdict = "holds" if ok_wr and ok_wor and naive_rejected else "fails"
    s = (f"tr C: with repl MC {m['wr']['mc_trace']:.4g}±{m['wr']['mc_se']:.2g} vs {m['wr']['theory_trace']:.4g}; "
         f"without MC {m['wor']['mc_trace']:.4g}±{m['wor']['mc_se']:.2g} vs {m['wor']['theory_trace']:.4g} "
         f"(naive {m['wor']['naive_wr_trace']:.4g})")
    return BOOK.make("C1", verdict, ev, s)


def _c2(spec, R):
    online = {r.metrics["case"]: r.metrics for r in R.get("online", [])}
    grids = [r.metrics for r in R.get("grid", [])]
    plain = [c for c in ("row2", "row3", "row5", "row6") if c in online]
    if not plain:
        raise Missing("online rows 2/3/5/6 jobs (none done)")
    comps, exact_err, table = [], [], {}
    for c in plain:
        m = online[c]
        exact_err.append(m["theory_vs_oracle"])
        if m.get("thm3_vs_oracle") is not None:
            exact_err.append(m["thm3_vs_oracle"])
        exact_err.append(abs(m["train_theory"] - m["oracle_train"]) / m["oracle_train"])
        th = np.diag(np.asarray(m["theory"]))
        for j, (sv, se) in enumerate(zip(m["sim_diag"], m["sim_se"])):
            comps.append((c, j, th[j], sv, se, m["tail_beta"]))
        comps.append((c, "train", m["train_theory"], *m["sim_train"], m["tail_beta"]))
        table[c] = dict(theory_diag=th.tolist(), sim_diag=m["sim_diag"], sim_se=m["sim_se"],
                        s_ratio=m["s_ratio"], tail_beta=m["tail_beta"], train_theory=m["train_theory"],
                        sim_train=m["sim_train"],
                        oracle_rho=m["oracle_rho"])
    for g in grids:
        for row in g["rows"]:
            exact_err.append(abs(row["theory"] - row["oracle"]) / row["oracle"])
            comps.append((f"grid S={g['S']}", row["frac"], row["theory"], *row["sim"], row["tail_beta"]))
            comps.append((f"grid S={g['S']} train", row["frac"], row["train_theory"], *row["sim_train"],
                          row["tail_beta"]))
    z = _z(len(comps))
    far = [c for c in comps if c[5] > 4]  # finite kurtosis: the chain-average CI is valid
    near = [c for c in comps if not c[5] > 4]
    bad_far = [c for c in far if abs(c[3] - c[2]) > z * c[4]]
    bad_near = [dict(case=c[0], idx=c[1], theory=c[2], sim=c[3], se=c[4], s=c[5]) for c in near
                if abs(c[3] - c[2]) > z * c[4]]
    baselines = {}
    if "row3" in online:
        m = online["row3"]
        sim0, se0 = m["sim_diag"][0], m["sim_se"][0]
        baselines = dict(theory=np.diag(np.asarray(m["theory"])).tolist(), sim=m["sim_diag"], sim_se=m["sim_se"],
                         continuous=m["continuous"], hessian_approx=m["hessian_approx"],
                         continuous_ratio=m["theory"][0][0] / m["continuous"][0],
                         hessian_ratio=m["theory"][0][0] / m["hessian_approx"][0],
                         baselines_rejected=bool(abs(sim0 - m["continuous"][0]) > z * se0
                                                 and abs(sim0 - m["hessian_approx"][0]) > z * se0))
    max_exact = float(max(exact_err))
    ev = dict(max_rel_err_closed_form_vs_oracle=max_exact, z_bonferroni=z, n_comparisons=len(comps),
              far_from_edge_mismatches=[dict(case=c[0], idx=c[1], theory=c[2], sim=c[3], se=c[4]) for c in bad_far],
              near_edge_mismatches=bad_near, rows=table, baselines_row3=baselines,
              criterion="closed forms = oracle to 1e-8; MC within Bonferroni z·se wherever the (1-D proxy) Kesten "
                        "tail index exceeds 4 (finite kurtosis; closer to the edge the stationary law is heavy-"
                        "tailed and MC is biased low: reported only); at S = 10 the continuous and Hessian "
                        "baselines lie outside the MC CI")
    exact_ok = max_exact < 1e-8
    base_ok = baselines.get("baselines_rejected", False)
    if not exact_ok or bad_far:
        verdict = "fails"
    elif base_ok:
        verdict = "holds"
    else:
        verdict = "inconclusive"
    s = (f"closed form vs oracle max rel err {max_exact:.1e}; {len(far) - len(bad_far)}/{len(far)} MC checks with "
         f"β > 4 pass, {len(near) - len(bad_near)}/{len(near)} heavy-tailed (β <= 4); row 3 baselines off by "
         f"{baselines.get('continuous_ratio', float('nan')):.1f}x (continuous) / "
         f"{baselines.get('hessian_ratio', float('nan')):.1f}x (Hessian)")
    return BOOK.make("C2", verdict, ev, s)


def _c3(spec, R):
    online = {r.metrics["case"]: r.metrics for r in R.get("online", [])}
    reg = {c: online[c]["thm5_lead_rel"] for c in ("row2", "row3", "row6") if c in online}
    mlps = [r.metrics for r in R.get("mlp", [])]
    ev: dict[str, Any] = dict(regression_rel_dev_of_2L_over_S_A=reg)
    if not mlps:
        ev["mlp"] = "missing"
        return BOOK.make("C3", "inconclusive", ev, "MLP jobs missing; regression leading-term deviation " + str(reg))
    slopes = np.array([m["slope_second_half"] for m in mlps], float)
    ratios = np.array([m["noise_over_2L_gn"] for m in mlps], float)
    ev.update(mlp_slopes=slopes.tolist(), mlp_noise_over_2L_gn=ratios.tolist(),
              mlp_final_loss=[m["final_loss"] for m in mlps], seeds=len(mlps),
              criterion="mean log–log slope of 𝒩 vs L over the second half of training, 95% t-CI inside "
                        "[0.8, 1.2] -> holds; CI disjoint from it -> fails (escape-rate T9)")
    finite = slopes[np.isfinite(slopes)]
    if len(finite) == 0:
        return BOOK.make("C3", "inconclusive", ev, "no finite slope")
    if len(finite) > 1:
        m, lo, hi = (float(v) for v in t_ci(finite))
    else:
        m = lo = hi = float(finite[0])
    ev["slope_mean_ci"] = [m, lo, hi]
    verdict = band_verdict(lo, hi, 0.8, 1.2)
    s = (f"MLP slope d log𝒩/d log L = {m:.3f} [{lo:.3f}, {hi:.3f}] over {len(finite)} seeds; "
         f"𝒩/(2L·GN) = {np.mean(ratios):.3f}; regression |C - 2L/S A|/|C| = "
         + ", ".join(f"{k} {v:.3f}" for k, v in reg.items()))
    return BOOK.make("C3", verdict, ev, s)


def _c4(spec, R):
    if "edge" not in R:
        raise Missing("edge jobs (none done)")
    m = R["edge"][0].metrics
    errs = [abs(t["bisect"] - t["formula"]) / t["formula"] for t in m["table"]]
    rho_ok = all((t["rho_below"] is None or t["rho_below"] < 1) and (t["rho_above"] is None or t["rho_above"] >= 1)
                 for t in m["table"])
    below, above = m["sims"]
    mu_b, se_b = below["sim_trace"]
    below_ok = abs(mu_b - below["theory_trace"]) <= _z(1) * se_b if np.isfinite(se_b) else False
    above_blows = above["frac_diverged"] > 0.5 or above["sim_median_trace"] > 10 * below["theory_trace"] or not \
        np.isfinite(above["sim_trace"][0])
    ev = dict(max_rel_err_edge_formula=float(max(errs)), table=m["table"], sims=m["sims"],
              sim_D=m["sim_D"], sim_S=m["sim_S"], width_trend_fig1="not tested",
              criterion="bisection edge = 2S/(a(D+S+1)) to 1e-6; oracle ρ < 1 at 0.97 edge and >= 1 at 1.03 edge; "
                        "MC matches Thm 2 at 0.8 edge and blows up (or median trace > 10x) at 1.25 edge")
    verdict = "holds" if max(errs) < 1e-6 and rho_ok and below_ok and above_blows else "fails"
    s = (f"edge formula exact (max rel err {max(errs):.1e}), ρ crosses 1 at the edge: {rho_ok}; "
         f"D={m['sim_D']}, S={m['sim_S']}: 0.8·edge MC tr Σ {mu_b:.4g}±{se_b:.2g} vs {below['theory_trace']:.4g}; "
         f"1.25·edge diverged fraction {above['frac_diverged']:.2f}; Fig. 1 width trend not tested")
    return BOOK.make("C4", verdict, ev, s)


REF_GAMMA = {(1.8, 10): -0.170, (0.7, 1): 0.354, (0.5, 1): 0.0}


def _c5(spec, R):
    if "l2" not in R:
        raise Missing("l2 jobs (none done)")
    rows = R["l2"][0].metrics["rows"]
    ref_ok, sign_ok, sim_ok = True, True, True
    for r in rows:
        key = (r["lam"], r["S"])
        if key in REF_GAMMA:
            ref_ok &= abs(r["gamma_star"] - REF_GAMMA[key]) <= 0.005
        if math.isfinite(r["gamma_star"]):
            neg = r["gamma_star"] < -1e-6
            sign_ok &= (neg == r["predicted_negative"]) or (not neg and not r["predicted_negative"])
            if neg and not r["predicted_negative"]:
                sign_ok = False
            if "sim_L_star" in r:
                m, se = r["sim_L_star"]
                if r["L_star"] > 1e-12 and np.isfinite(se) and r["tail_beta"] > 4:
                    sim_ok &= abs(m - r["L_star"]) <= max(_z(len(rows)) * se, 0.02 * r["L_star"])
    ev = dict(rows=rows, reference=dict((f"{k}", v) for k, v in REF_GAMMA.items()),
              criterion="grid argmin within ±0.005 of the §6 references; γ* < 0 exactly when λa >= 2S/(S+2) and "
                        "λa > 1; MC L_test at γ* within z·se (or 2%) of theory where the Kesten index > 4 (else "
                        "the MC is heavy-tailed and only reported)")
    verdict = "holds" if ref_ok and sign_ok and sim_ok else "fails"
    s = "; ".join(f"(λ={r['lam']}, S={r['S']}): γ*={fnum(r['gamma_star'], 3)}" for r in rows)
    s += f"; refs ok {ref_ok}, sign rule ok {sign_ok}, MC ok {sim_ok}"
    return BOOK.make("C5", verdict, ev, s)


def _c6(spec, R):
    hd = [r.metrics for r in R.get("highdim", [])]
    if not hd:
        raise Missing("highdim jobs (none done)")
    sims = [m["over"] for m in hd if "sim_train_max" in m["over"]]
    over_train = max((o["sim_train_max"] for o in sims), default=math.nan)
    over_dist = max((o["rel_dist_min_norm_max"] for o in sims), default=math.nan)
    over_oracle = max(m["over"]["oracle"] for m in hd)
    res = np.array([m["far"]["residual_var"] for m in hd])
    under = hd[0]["far"]["sigma_under"]
    ev = dict(over_sim_train_loss_max=over_train, over_dist_to_min_norm_max=over_dist,
              over_oracle_trace=over_oracle, under_residual_var=res.tolist(), under_sigma2_1_minus_1_over_alpha=under,
              draws=len(hd),
              criterion="over: oracle Tr[ÂΣ] = 0 (< 1e-12), MC train loss < 1e-6 after the burn-in, relative "
                        "distance to the min-norm interpolator < 1e-3 (from w0 = 0); under: mean realised ‖e‖²/N "
                        "within 2.5 se (or 5%) of σ²(1-1/α)")
    over_ok = over_oracle < 1e-12 and over_train < 1e-6 and over_dist < 1e-3
    if len(res) > 1:
        m, se = _mean_se(res)
        under_ok = abs(m - under) <= max(2.5 * se, 0.05 * under)
    else:
        m, se = float(res[0]), math.nan
        under_ok = abs(m - under) <= 0.15 * under
    verdict = "holds" if over_ok and under_ok else ("fails" if not over_ok else "inconclusive")
    s = (f"over (N={hd[0]['over']['N']}, D={hd[0]['D']}): MC train loss max {over_train:.1e}, ‖w - w_mn‖/‖w_mn‖ max {over_dist:.1e}, oracle "
         f"Tr[ÂΣ] {over_oracle:.1e}; under: ‖e‖²/N = {m:.4f}±{se:.4f} vs σ²(1-1/α) = {under:.4f}")
    return BOOK.make("C6", verdict, ev, s)


def _c7(spec, R):
    hd = [r.metrics for r in R.get("highdim", [])]
    if not hd:
        raise Missing("highdim jobs (none done)")
    far = [(m["far"]["thm6_realised"] / m["far"]["oracle"] - 1) for m in hd]
    near = [(m["near"]["thm6_realised"] / m["near"]["oracle"] - 1) for m in hd] + \
           [(m["near_small"]["thm6_realised"] / m["near_small"]["oracle"] - 1) for m in hd]
    sig_form = [(m["far"]["thm6_sigma"] / m["far"]["oracle"] - 1) for m in hd]
    sims = [dict(oracle=m["far"]["oracle"], sim=m["far"].get("sim")) for m in hd]
    ev = dict(far_rel_err=far, near_rel_err=near, far_sigma_form_rel_err=sig_form, far_oracle_vs_sim=sims,
              D=hd[0]["D"],
              criterion="far (N=4D, S=8, λ=5/D; D=100 is row 13): realised-residual Thm 6 within 3% of the oracle "
                        "per draw; near (λ=12/D; N=2D, S=4, λ=6/D): error > 3% (degraded)")
    far_ok = all(abs(e) <= 0.03 for e in far)
    near_deg = all(abs(e) > 0.03 for e in near)
    verdict = "holds" if far_ok and near_deg else ("fails" if not far_ok else "inconclusive")
    s = (f"far: Thm 6 vs oracle {min(far):+.1%}..{max(far):+.1%} (σ²(1-1/α) form {min(sig_form):+.1%}.."
         f"{max(sig_form):+.1%}); near edge {min(near):+.1%}..{max(near):+.1%}")
    return BOOK.make("C7", verdict, ev, s)


def _c8(spec, R):
    if "scaling" not in R:
        raise Missing("scaling jobs (none done)")
    m = R["scaling"][0].metrics
    rows = [r for r in m["rows"] if "sim" in r]
    z = _z(len(rows))
    match = all(abs(r["sim"][0] - r["theory"]) <= z * r["sim"][1] for r in rows if r["S"] < 0.7 * m["S_div"])
    first, last = rows[0], rows[-1]
    grows = (last["sim"][0] - first["sim"][0]) > z * math.hypot(last["sim"][1], first["sim"][1])
    ev = dict(c=m["c"], rows=m["rows"], S_divergence=m["S_div"], stable_below=m["stable_below"],
              unstable_above=m["unstable_above"], z_bonferroni=z,
              criterion="MC Σ at the largest S exceeds Σ at the smallest S significantly, MC matches the exact "
                        "formula (S < 0.7·S_div), and the moments are unstable beyond S = 2/(ca) - 2")
    verdict = "holds" if grows and match and m["stable_below"] and m["unstable_above"] else "fails"
    s = (f"c = λ/S = {m['c']}: MC Σ {first['sim'][0]:.4f} (S={first['S']}) -> {last['sim'][0]:.4f} (S={last['S']}), "
         f"theory {first['theory']:.4f} -> {last['theory']:.4f}, linear rule {first['continuous']:.4f}; diverges "
         f"at S = {m['S_div']:.1f}")
    return BOOK.make("C8", verdict, ev, s)


def _c9(spec, R):
    if "tail" not in R:
        raise Missing("tail jobs (none done)")
    rows = R["tail"][0].metrics["rows"]
    heavier = all(r["hill"] + 2 * (r["hill_se"] if np.isfinite(r["hill_se"]) else 0) < r["continuous"] for r in rows)
    kesten_ok = all(abs(r["hill"] - r["kesten"]) <= 0.15 * max(1, r["kesten"] / 2) for r in rows)
    paper_dev = {r["S"]: r["paper"] - r["kesten"] for r in rows}
    near2 = [abs(d) for S, d in paper_dev.items() if S == 2]
    far = [abs(d) for S, d in paper_dev.items() if S >= 4]
    accurate_near_2_only = bool(near2 and far and max(near2) < 0.05 < min(far))
    ev = dict(rows=rows, paper_minus_kesten=paper_dev, frac=R["tail"][0].metrics["frac"],
              criterion="Hill + 2 se < continuous β for every S; Hill within ±0.15 (scaled by β/2 above β=2) of the "
                        "Kesten index; |paper - Kesten| < 0.05 at S = 2 but > 0.05 at S >= 4")
    verdict = "holds" if heavier and accurate_near_2_only and kesten_ok else (
        "fails" if not heavier else "inconclusive")
    s = "; ".join(f"S={r['S']}: Hill {r['hill']:.2f} Kesten {r['kesten']:.2f} paper {r['paper']:.0f} cont. "
                  f"{r['continuous']:.0f}" for r in rows)
    return BOOK.make("C9", verdict, ev, s)


def _c10(spec, R):
    online = {r.metrics["case"]: r.metrics for r in R.get("online", [])}
    if "row12" not in online:
        raise Missing("online row12 jobs (none done)")
    m = online["row12"]
    th = np.diag(np.asarray(m["theory"]))
    z = _z(2)
    ok = all(abs(s - t) <= z * se for s, t, se in zip(m["sim_diag"], th, m["sim_se"]))
    ev = dict(sigma2_eff=m["sigma2_eff"], theory=th.tolist(), sim=m["sim_diag"], sim_se=m["sim_se"],
              theory_vs_oracle=m["theory_vs_oracle"],
              criterion="MC diag Σ within Bonferroni z·se of the mapped Thm 2; mapped formula = oracle to 1e-8")
    verdict = "holds" if ok and m["theory_vs_oracle"] < 1e-8 else "fails"
    s = (f"σ²_eff = {m['sigma2_eff']:.5f}; Σ theory {th.round(5).tolist()} vs MC "
         f"{np.round(m['sim_diag'], 5).tolist()} ± {np.round(m['sim_se'], 5).tolist()}")
    return BOOK.make("C10", verdict, ev, s)


def _c11(spec, R):
    if "defects" not in R:
        raise Missing("defects jobs (none done)")
    m = R["defects"][0].metrics
    hd = [r.metrics for r in R.get("highdim", [])]
    eq12_defect = m["eq12_asym"] > 1e-4 and m["eq12_diag_err"] < 1e-10 and m["eq12_offdiag_err"] > 1e-4
    z = _z(2)
    sign_ok = abs(m["mc_C00"] - m["exact_C00"]) <= z * m["mc_C00_se"] and \
        abs(m["mc_C00"] - m["thm5_C00"]) > z * m["mc_C00_se"]
    ev = dict(eq12=m["eq12"], oracle=m["oracle"], l2_sigma_err=m["l2_sigma_err"], mc_C00=m["mc_C00"],
              mc_C00_se=m["mc_C00_se"], exact_plus_sign_C00=m["exact_C00"], thm5_minus_sign_C00=m["thm5_C00"],
              thm6_minus_vs_plus_variant=[dict(oracle=h["far"]["oracle"], minus=h["far"]["thm6_realised"],
                                               plus=h["far"]["thm6_plus_variant"]) for h in hd],
              criterion="Eq. 12 exact on the diagonal but asymmetric and wrong off it, the entrywise form exact; "
                        "MC noise at fixed w matches the + sign and rejects Thm 5's - sign")
    verdict = "holds" if eq12_defect and sign_ok and m["l2_sigma_err"] < 1e-10 else "fails"
    s = (f"Eq. 12 off-diag {m['eq12'][0][1]:.5f}/{m['eq12'][1][0]:.5f} vs true {m['oracle'][0][1]:.5f}; "
         f"C_00 MC {m['mc_C00']:.4f}±{m['mc_C00_se']:.4f} vs + sign {m['exact_C00']:.4f}, Thm 5 {m['thm5_C00']:.4f}")
    return BOOK.make("C11", verdict, ev, s)


def _c12(spec, R):
    mlps = [r.metrics for r in need(R, "mlp")]
    per_run = [decoupling_by_epoch(m) for m in mlps]
    per = {ep: [p[ep]["max_ratio"] for p in per_run] for ep in per_run[0]}
    gn = lambda m, ep: m["checkpoints"][ep]["gauss_newton"]  # noqa: E731
    ok = all(max(v) <= 1.5 for v in per.values())
    hess = hessian_evidence(mlps)
    ev = dict(worst_factor_per_checkpoint_and_seed=per,
              trace_ratio={ep: [gn(m, ep)["coupled_trace"] / gn(m, ep)["decoupled_trace"] for m in mlps] for ep in per},
              loss={ep: [gn(m, ep)["loss"] for m in mlps] for ep in per},
              top_k=len(gn(mlps[0], next(iter(per)))["ratio"]),
              comparison="Gauss-Newton (decides); full Hessian next to it (evidence)",
              verdict_probe_rule=GAUSS_NEWTON_RULE, hessian=hess,
              criterion="every top-k eigenvalue ratio within ×1.5 at every checkpoint epoch (init, mid, end of "
                        "training), every seed (escape-rate T9b reads the same probe at the end)")
    s = ("worst top-k eigenvalue factor by epoch: " + "; ".join(f"{ep} {np.round(v, 2).tolist()}" for ep, v in per.items())
         + "; " + hessian_summary(hess, ok))
    return BOOK.holds_if("C12", ok, ev, s)


CLAIM_FNS = dict(C1=_c1, C2=_c2, C3=_c3, C4=_c4, C5=_c5, C6=_c6, C7=_c7, C8=_c8, C9=_c9, C10=_c10, C11=_c11,
                 C12=_c12)


# ================================================================================================
# figures
# ================================================================================================


def figures(spec: Spec, results: list[Result]) -> list[Figure]:
    """See :mod:`nnphys.studies._minibatch_noise_figures` (sigma_loss_vs_lr, sigma_rows,
    tail_exponent, noise_vs_loss, decoupling_spectra, fixed_ratio_scaling)."""
    from nnphys.studies._minibatch_noise_figures import figures as _figures

    return _figures(spec, results)


# ================================================================================================
# resample (verdict stability, issue 11 item 2)
# ================================================================================================

_MC_PAIRS = ("sim", "sim_train", "sim_test", "sim_L_star", "sim_trace")


def _redraw(obj, rng: np.random.Generator) -> None:
    """Redraw every Monte Carlo mean in ``obj`` (in place) from normal(mean, its s.e.)."""
    if isinstance(obj, dict):
        for k in _MC_PAIRS:
            v = obj.get(k)
            if isinstance(v, list) and len(v) == 2 and math.isfinite(v[0]) and math.isfinite(v[1]):
                obj[k] = [v[0] + rng.standard_normal() * v[1], v[1]]
        if "sim_diag" in obj and "sim_se" in obj:
            obj["sim_diag"] = [m + rng.standard_normal() * se if math.isfinite(se) else m
                               for m, se in zip(obj["sim_diag"], obj["sim_se"])]
        for mk, sk in (("mc_trace", "mc_se"), ("mc_C00", "mc_C00_se"), ("hill", "hill_se")):
            if mk in obj and sk in obj and math.isfinite(obj[sk]):
                obj[mk] = obj[mk] + rng.standard_normal() * obj[sk]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return
    for v in children:
        if isinstance(v, (dict, list)):
            _redraw(v, rng)


def resample(results: list[Result], rng: np.random.Generator) -> list[Result]:
    """Seeds drawn with replacement where the study has them: the MLP training seeds (C3, C12) and
    the high-dimensional data draws (C6 under-parameterised part, C7; the over-parameterised check,
    run on draw 0 only, is held fixed). Every other job is one ensemble of chains whose per-chain
    values are not stored: its Monte Carlo means are redrawn from normal(mean, s.e.) (a parametric
    bootstrap; C1, C2, C4, C5, C8, C9, C10, C11). Closed-form and oracle numbers are unchanged."""
    import copy
    import dataclasses

    groups = {kind: [r for r in results if r.ok and r.params.get("kind") == kind] for kind in ("mlp", "highdim")}
    out = [r for r in results if not (r.ok and r.params.get("kind") in groups)]
    out = [dataclasses.replace(r, metrics=copy.deepcopy(r.metrics)) if r.ok else r for r in out]
    for r in out:
        if r.ok:
            _redraw(r.metrics, rng)
    over = next((r.metrics["over"] for r in groups["highdim"] if "sim_train_max" in r.metrics["over"]), None)
    for kind, rs in groups.items():
        if not rs:
            continue
        for i in rng.integers(0, len(rs), len(rs)):
            r = rs[int(i)]
            if kind == "highdim" and over is not None:
                r = dataclasses.replace(r, metrics={**r.metrics, "over": over})
            out.append(r)
    return out


STUDY = Study(
    name="minibatch-noise",
    papers=("Strength of Minibatch Noise in SGD (arXiv 2102.05375)",
            "Power-law escape rate of SGD (arXiv 2105.09557), noise-measurement parts"),
    spec=Spec,
    presets=PRESETS,
    jobs=jobs,
    run=run,
    analyse=analyse,
    figures=figures,
    claims=CLAIMS,
    resample=resample,
    headline=("C2", "C3", "C4", "C8"),  # [default] the paper's headline results, led with in the report's scorecard
    schema_version=3,  # 3: the MLP job adds the full-Hessian probe; 2: seeds from nnphys.seeding.derive, one digits-MLP experiment
    description="Exact minibatch-noise theory of linear regression vs oracle and Monte Carlo; "
                "noise ∝ loss and the decoupling check on an MLP.",
)
