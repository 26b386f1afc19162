"""The computations of the minibatch-noise jobs, one function per kind, each taking its typed job
(:mod:`~nnphys.studies.minibatch_noise.jobs`, which names the claims each kind feeds). The rows
(``row1`` ... ``row18``) are those of the guide's table of checks (``docs/studies/minibatch-noise.md``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nnphys import linreg as LR
from nnphys.seeding import derive
from nnphys.stats import mean_se
from nnphys.studies._shared.digits_mlp import late_slope, mlp_config, run_digits_noise
from nnphys.studies.minibatch_noise import _fig1
from nnphys.studies.minibatch_noise.spec import A2, A9, ONLINE_CASES

if TYPE_CHECKING:
    from nnphys.studies.minibatch_noise import jobs as J


def _se_diag(sim: LR.SimResult) -> tuple[list[float], list[float]]:
    m, h = sim.sigma_ci(z=1.0)
    return np.diag(m).tolist(), np.diag(h).tolist()


def _mean_se(x) -> tuple[float, float]:
    m, se = mean_se(np.asarray(x, float))
    return float(m), float(se)


def run_prop1(job: "J.Prop1") -> dict[str, Any]:
    """Row 1: Prop. 1 vs the empirical covariance of ĝ at a fixed w, both sampling schemes."""
    rng = np.random.default_rng(job.seed)
    N, S, D = job.N, job.S, 3
    X = rng.standard_normal((N, D))
    y = X @ np.array([1.0, -0.5, 0.3]) + rng.standard_normal(N)
    w = rng.standard_normal(D)
    G = X * (X @ w - y)[:, None]  # per-sample gradients of ½(wᵀx - y)²
    gbar = G.mean(0)
    out: dict[str, Any] = dict(N=N, S=S, draws=job.draws)
    gen = LR.SimRng(derive(job.seed, "batches"), torch.device("cpu"))
    for repl in (True, False):
        idx = LR.sample_batches(job.draws, N, S, repl, gen).numpy()
        dev = G[idx].mean(1) - gbar
        d2 = (dev**2).sum(1)
        emp = dev.T @ dev / len(dev)
        th = LR.prop1_noise(G, S, replacement=repl)
        th_wr = LR.prop1_noise(G, S, replacement=True)
        key = "wr" if repl else "wor"
        out[key] = dict(mc_trace=float(d2.mean()), mc_se=float(d2.std(ddof=1) / math.sqrt(len(d2))),
                        theory_trace=float(np.trace(th)), naive_wr_trace=float(np.trace(th_wr)),
                        frob_rel=float(np.linalg.norm(emp - th) / np.linalg.norm(th)))
    return out


def _tail_proxy(c: dict[str, Any]) -> float:
    """Smallest 1-D Kesten tail index over A's eigen-directions (couplings ignored; momentum
    enters as λ/(1-μ)): a heuristic for whether chain averages of v² obey the CLT (needs β > 4,
    a finite kurtosis). Near the edge β < 4 and MC variances are heavy-tailed, biased low."""
    A = np.asarray(c["A"], float) + (np.asarray(c["B_input"], float) if "B_input" in c else 0.0)
    lam = c["lam"] / (1 - c["mu"])
    if c.get("newton"):
        return LR.kesten_tail_index(1.0, lam, c["S"])
    return float(min(LR.kesten_tail_index(a, lam, c["S"], c.get("gamma", 0.0))
                     for a in np.linalg.eigvalsh(A)))


def run_online(job: "J.Online") -> dict[str, Any]:
    c = dict(ONLINE_CASES[job.case])
    A = np.asarray(c["A"], float)
    D = A.shape[0]
    lam, S, mu = c["lam"], c["S"], c["mu"]
    sigma2 = c.get("sigma2", job.sigma2)
    Lam = lam * np.linalg.inv(A) if c.get("newton") else lam
    kw = dict(mu=mu, n_chains=job.n_chains, n_steps=job.n_steps, seed=job.seed,
              device=job.device)
    out: dict[str, Any] = dict(case=job.case, lam=lam, S=S, mu=mu, sigma2=sigma2, D=D,
                               tail_beta=_tail_proxy(c))
    if "B_input" in c:
        B, u = np.asarray(c["B_input"]), np.asarray(c["u"])
        th = LR.input_noise_sigma(A, B, u, lam, S, sigma2_label=sigma2, mu=mu)
        sig_eff = LR.input_noise_sigma_eff(A, B, u)
        orc = LR.moment_oracle_online(A + B, lam, S, sigma2=sig_eff + sigma2, mu=mu)
        sim = LR.simulate_online(A, lam, S, sigma2, B_input=B, u=u, **kw)
        out.update(sigma2_eff=sig_eff)
    elif "gamma" in c:
        u, g = np.asarray(c["u"]), c["gamma"]
        th = LR.l2_sigma(A, g, u, lam, S)
        orc = LR.moment_oracle_online(A, lam, S, sigma2=sigma2, mu=mu, Gamma=g, u=u)
        sim = LR.simulate_online(A, lam, S, sigma2, Gamma=g, u=u, **kw)
        eq12 = LR.eq12_sigma(A, g, u, lam, S)
        out.update(gamma=g, thm4_test=LR.thm4_test_loss(A, g, u, lam, S),
                   oracle_test=orc.extra["test_loss"], eq12=eq12.tolist(),
                   sim_test=_mean_se(sim.chain_test[~sim.diverged]))
    else:
        if c.get("newton"):
            th = LR.damped_newton_sigma(A, lam, S, sigma2, mu)
            thm3 = None
        else:
            th = LR.thm2_sigma(A, Lam, S, sigma2, mu)
            thm3 = LR.thm3_noise(A, Lam, S, sigma2, mu)
        orc = LR.moment_oracle_online(A, Lam, S, sigma2=sigma2, mu=mu)
        sim = LR.simulate_online(A, Lam, S, sigma2, **kw)
        out.update(
            s_ratio=LR.stability_ratio(A, Lam, S, mu),
            train_theory=LR.train_loss(A, Lam, S, sigma2, mu),
            test_theory=LR.test_loss(A, Lam, S, sigma2, mu),
            oracle_train=orc.extra["train_loss"], oracle_test=orc.extra["test_loss"],
            sim_train=_mean_se(sim.chain_train[~sim.diverged]),
            sim_test=_mean_se(sim.chain_test[~sim.diverged]),
            thm3_vs_oracle=(float(np.abs(thm3 - orc.C).max() / np.abs(orc.C).max())
                            if thm3 is not None else None),
            continuous=np.diag(LR.continuous_sigma(A, lam, S, sigma2)).tolist(),
            hessian_approx=np.diag(LR.hessian_approx_sigma(A, lam, S, sigma2)).tolist(),
            # Thm 5 leading term 2L/S·A against the exact stationary noise (row 18)
            thm5_lead_rel=float(np.linalg.norm(orc.C - 2 * orc.extra["train_loss"] / S * A)
                                / np.linalg.norm(orc.C)),
        )
        if D == 1:
            out["sigma_1d"] = LR.sigma_1d(A[0, 0], lam, S, sigma2, mu)
    sim_d, sim_se = _se_diag(sim)
    out.update(theory=th.tolist(), oracle=orc.Sigma.tolist(), oracle_rho=orc.rho,
               theory_vs_oracle=float(np.abs(th - orc.Sigma).max() / np.abs(orc.Sigma).max()),
               sim_diag=sim_d, sim_se=sim_se, sim_offdiag=float(sim.Sigma[0, -1]),
               n_diverged=int(sim.diverged.sum()), sampling=sim.meta["sampling"],
               burn_in=sim.meta["burn_in"], n_chains=job.n_chains, n_steps=job.n_steps)
    return out


def run_grid(job: "J.Grid") -> dict[str, Any]:
    """1-D Σ, L_train, L_test vs λ up to the stability edge (Fig. 4a: a = 1, S = 10)."""
    a, S, s2 = job.a, job.S, job.sigma2
    A = np.array([[a]])
    lam_max = LR.max_lr(A, S)
    rows = []
    for i, f in enumerate(job.fractions):
        lam = f * lam_max
        sim = LR.simulate_online(A, lam, S, s2, n_chains=job.n_chains, n_steps=job.n_steps,
                                 seed=derive(job.seed, "frac", f), device=job.device)
        orc = LR.moment_oracle_online(A, lam, S, sigma2=s2)
        ok = ~sim.diverged
        rows.append(dict(frac=f, lam=lam, theory=LR.sigma_1d(a, lam, S, s2),
                         tail_beta=LR.kesten_tail_index(a, lam, S),
                         oracle=float(orc.Sigma[0, 0]), s_ratio=LR.stability_ratio(A, lam, S),
                         sim=_mean_se(sim.chain_Sigma[ok, 0, 0]),
                         train_theory=LR.train_loss(A, lam, S, s2),
                         test_theory=LR.test_loss(A, lam, S, s2),
                         sim_train=_mean_se(sim.chain_train[ok]),
                         sim_test=_mean_se(sim.chain_test[ok]),
                         continuous=lam * s2 / (2 * S),
                         hessian_approx=lam * s2 / (S * (2 - lam * a)),
                         n_diverged=int(sim.diverged.sum())))
    return dict(a=a, S=S, lam_max=lam_max, lam_max_formula=2 * S / (a * (S + 2)), rows=rows)


def run_edge(job: "J.Edge") -> dict[str, Any]:
    """C4: isotropic edge 2S/(a(D+S+1)); oracle ρ across it; simulations below/above it."""
    table = []
    for D in job.Ds:
        for S in job.Ss:
            A = np.eye(D)
            lm = LR.max_lr(A, S)
            fo = LR.max_lr_isotropic(1.0, D, S)
            rho_lo = LR.moment_oracle_online(A, 0.97 * fo, S).rho if D <= 32 else None
            rho_hi = LR.moment_oracle_online(A, 1.03 * fo, S).rho if D <= 32 else None
            table.append(dict(D=D, S=S, bisect=lm, formula=fo, rho_below=rho_lo, rho_above=rho_hi))
    D, S = job.sim_D, job.sim_S
    A = np.eye(D)
    fo = LR.max_lr_isotropic(1.0, D, S)
    sims = []
    for i, f in enumerate((0.8, 1.25)):
        sim = LR.simulate_online(A, f * fo, S, job.sigma2, n_chains=job.n_chains // 2,
                                 n_steps=job.n_steps, seed=derive(job.seed, "frac", f),
                                 device=job.device)
        ok = ~sim.diverged
        tr = np.trace(sim.chain_Sigma[ok], axis1=1, axis2=2) if ok.any() else np.array([np.inf])
        sims.append(dict(frac=f, theory_trace=float(np.trace(LR.thm2_sigma(A, f * fo, S,
                                                                             job.sigma2))),
                         sim_trace=_mean_se(tr) if ok.sum() > 1 else (math.inf, math.nan),
                         sim_median_trace=float(np.median(tr)),
                         frac_diverged=float(sim.diverged.mean())))
    return dict(table=table, sims=sims, sim_D=D, sim_S=S)


def run_l2(job: "J.L2") -> dict[str, Any]:
    """C5: 1-D γ* = argmin L_test (Cor. 1), the sign conditions of the negative optimal weight decay, and simulations at γ*."""
    rows = []
    for i, (lam, S) in enumerate(job.cases):
        S = int(S)
        g_star, L_star = LR.optimal_weight_decay_1d(1.0, 1.0, lam, S)
        g0_stable = LR.l2_stable_1d(1.0, 0.0, lam, S)
        predicted_negative = (lam >= 2 * S / (S + 2)) and lam > 1
        row = dict(lam=lam, S=S, gamma_star=g_star, L_star=L_star, gamma0_stable=g0_stable,
                   predicted_negative=bool(predicted_negative))
        if math.isfinite(g_star):
            orc = LR.moment_oracle_online(np.eye(1), lam, S, sigma2=0.0, Gamma=g_star, u=[1.0])
            row["oracle_L_star"] = orc.extra["test_loss"]
            row["tail_beta"] = LR.kesten_tail_index(1.0, lam, S, g_star)
            sim = LR.simulate_online(np.eye(1), lam, S, 0.0, Gamma=g_star, u=[1.0],
                                     n_chains=job.n_chains // 2, n_steps=job.n_steps,
                                     seed=derive(job.seed, "case", i), device=job.device)
            row["sim_L_star"] = _mean_se(sim.chain_test[~sim.diverged])
        rows.append(row)
    return dict(rows=rows)


def run_highdim(job: "J.Highdim") -> dict[str, Any]:
    """C6, C7: fixed-data regression, N = 400 / 200 / 80, D = 100 (rows 13–15)."""
    rng = np.random.default_rng(job.seed)
    D, s2 = job.D, job.sigma2
    u = rng.standard_normal(D) / math.sqrt(D)
    out: dict[str, Any] = dict(draw=job.draw, D=D)
    settings = [("far", 4 * D, 8, 5 / D), ("near", 4 * D, 8, 12 / D), ("near_small", 2 * D, 4, 6 / D)]
    for name, N, S, lam in settings:
        X = rng.standard_normal((N, D))
        y = X @ u + math.sqrt(s2) * rng.standard_normal(N)
        orc = LR.moment_oracle_finite(X, y, lam, S)
        Ah = orc.extra["A_hat"]
        res = orc.extra["residual_var"]
        row = dict(N=N, S=S, lam=lam, alpha=N / D, oracle=orc.extra["tr_A_Sigma"], rho=orc.rho,
                   thm6_realised=LR.thm6_trace(Ah, lam, S, residual_var=res),
                   thm6_sigma=LR.thm6_trace(Ah, lam, S, s2, alpha=N / D),
                   residual_var=res, sigma_under=s2 * (1 - D / N),
                   lam_max_highdim=LR.max_lr_highdim(Ah, S))
        # the (1 + 1/S) variant of Ĝ (Gaussian-kurtosis sign) for claim C11
        G_plus = 2 * np.eye(D) - lam * (1 + 1 / S) * Ah
        trp = float(np.trace(np.linalg.solve(G_plus, Ah)))
        row["thm6_plus_variant"] = lam / S * res * trp / (1 - lam / S * trp)
        if name == "far" or job.n_chains >= 100:
            sim = LR.simulate_finite(X, y, lam, S, n_chains=job.n_chains,
                                     n_steps=job.n_steps, seed=derive(job.seed, name),
                                     device=job.device)
            ok = ~sim.diverged
            tr = np.einsum("rde,ed->r", sim.chain_Sigma[ok], Ah)
            row["sim"] = _mean_se(tr)
        out[name] = row
    # over-parameterised: N = 80 < D, start at 0 -> min-norm interpolator, zero fluctuation
    N, S, lam = int(0.8 * D), 8, 10 / D
    X = rng.standard_normal((N, D))
    y = X @ u + math.sqrt(s2) * rng.standard_normal(N)
    orc = LR.moment_oracle_finite(X, y, lam, S)
    out["over"] = dict(N=N, S=S, lam=lam, oracle=orc.extra["tr_A_Sigma"],
                       thm6=LR.thm6_trace(orc.extra["A_hat"], lam, S, s2, alpha=N / D))
    if job.draw == 0:  # the slow part (smallest non-zero curvature ~ 0.014): one draw
        sim = LR.simulate_finite(X, y, lam, S, n_chains=16, n_steps=200, burn_in=job.over_burn_in,
                                 seed=derive(job.seed, "over"), w0=np.zeros(D), device=job.device)
        w_mn = np.linalg.pinv(X) @ y
        dist = np.linalg.norm(sim.v_final + sim.w_star - w_mn, axis=1) / np.linalg.norm(w_mn)
        out["over"].update(sim_train_max=float(sim.chain_train.max()),
                           rel_dist_min_norm_max=float(dist.max()), burn_in=sim.meta["burn_in"])
    return out


def run_scaling(job: "J.Scaling") -> dict[str, Any]:
    """C8: Σ vs S at fixed c = λ/S, 1-D a = 1 (linear scaling predicts Σ constant)."""
    c, s2 = job.c, job.sigma2
    rows = []
    for i, S in enumerate(job.Ss):
        lam = c * S
        th = LR.fixed_ratio_sigma_1d(1.0, c, S, s2)
        row = dict(S=S, lam=lam, theory=th, continuous=c * s2 / 2)
        if math.isfinite(th):
            sim = LR.simulate_online(np.eye(1), lam, S, s2, n_chains=job.n_chains // 2,
                                     n_steps=job.n_steps, seed=derive(job.seed, "S", S),
                                     device=job.device)
            row["sim"] = _mean_se(sim.chain_Sigma[~sim.diverged, 0, 0])
        rows.append(row)
    S_div = LR.fixed_ratio_divergence_S(1.0, c)
    Sd = math.floor(S_div)
    return dict(c=c, rows=rows, S_div=S_div,
                stable_below=LR.is_stable(np.eye(1), c * max(Sd - 1, 1), max(Sd - 1, 1)),
                unstable_above=not LR.is_stable(np.eye(1), c * (math.ceil(S_div) + 1),
                                                math.ceil(S_div) + 1))


def run_tail(job: "J.Tail") -> dict[str, Any]:
    """C9 / row 16: Hill tail index of the 1-D stationary law at aλ = 1 vs Kesten / paper."""
    rows = []
    for i, S in enumerate(job.Ss):
        sim = LR.simulate_online(np.eye(1), 1.0, S, job.sigma2, n_chains=job.n_chains,
                                 n_steps=job.n_steps, burn_in=50, seed=derive(job.seed, "S", S),
                                 record_every=1, device=job.device, blowup=1e30)
        smp = sim.samples[:, :, 0]  # (steps, chains)
        groups = np.array_split(np.arange(smp.shape[1]), 5)
        hills = [LR.hill_estimator(smp[:, g], job.frac) for g in groups]
        m, se = _mean_se(hills)
        rows.append(dict(S=S, hill=LR.hill_estimator(smp, job.frac), hill_groups_mean=m,
                         hill_se=se, kesten=LR.kesten_tail_index(1.0, 1.0, S),
                         paper=LR.tail_exponent_paper(1.0, 1.0, S),
                         continuous=LR.tail_exponent_continuous(1.0, 1.0, S),
                         n_diverged=int(sim.diverged.sum())))
    return dict(rows=rows, frac=job.frac)


def run_defects(job: "J.Defects") -> dict[str, Any]:
    """C11: Eq. 12's off-diagonal (row 10) and the sign of Thm 5's rank-1 term (row 18)."""
    A = np.array(A9)
    u = np.array([1.0, 1.0])
    orc = LR.moment_oracle_online(A, 0.5, 1, sigma2=0.0, Gamma=0.1, u=u)
    eq12 = LR.eq12_sigma(A, 0.1, u, 0.5, 1)
    # Thm 5 sign: MC covariance of the minibatch gradient at a fixed w (online Gaussian data)
    rng = np.random.default_rng(job.seed)
    A2m = np.array(A2)
    S, s2 = 4, 0.1
    z = np.array([1.0, 0.0])  # w - u
    n = job.draws
    x = rng.standard_normal((n, S, 2)) * np.sqrt(np.diag(A2m))
    eps = math.sqrt(s2) * rng.standard_normal((n, S))
    g = np.einsum("nsd,ns->nd", x, x @ z - eps) / S
    gbar = A2m @ z
    dev = g - gbar
    emp = dev.T @ dev / n
    se00 = float((dev[:, 0] ** 2).std(ddof=1) / math.sqrt(n))
    L0 = 0.5 * (s2 + z @ A2m @ z)
    exact = LR.regression_noise_exact(A2m, L0, gbar, S)
    thm5 = LR.thm5_noise(L0, A2m, gbar, S)
    return dict(eq12=eq12.tolist(), oracle=orc.Sigma.tolist(),
                eq12_asym=float(abs(eq12[0, 1] - eq12[1, 0])),
                eq12_diag_err=float(np.abs(np.diag(eq12) - np.diag(orc.Sigma)).max()),
                eq12_offdiag_err=float(max(abs(eq12[0, 1] - orc.Sigma[0, 1]),
                                           abs(eq12[1, 0] - orc.Sigma[1, 0]))),
                l2_sigma_err=float(np.abs(LR.l2_sigma(A, 0.1, u, 0.5, 1) - orc.Sigma).max()),
                mc_C00=float(emp[0, 0]), mc_C00_se=se00, exact_C00=float(exact[0, 0]),
                thm5_C00=float(thm5[0, 0]), S=S, sigma2=s2)


# ---- MLP (C3, C12) ---------------------------------------------------------------------------


def run_mlp(job: "J.Mlp") -> dict[str, Any]:
    """C3, C12: the shared digits-MLP experiment (:mod:`nnphys.studies._shared.digits_mlp`, the same
    one as escape-rate T9/T9b), probed at init, mid-training and the end."""
    out = run_digits_noise(mlp_config(job, job.epochs // 2))
    end = out["checkpoints"][str(job.epochs)]["gauss_newton"]
    fit = late_slope(out["loss"], out["trace_cov"])
    # 𝒩 against its decoupled prediction 2L·(1/N)Σ|∇f|² (the noise ∝ loss statement)
    out.update(slope_second_half=fit["slope"], final_loss=out["loss"][-1], final_trace_cov=out["trace_cov"][-1],
               noise_over_2L_gn=out["trace_cov"][-1] / (2 * out["loss"][-1] * end["gauss_newton_trace"]))
    return out


def run_width(job: "J.Width") -> dict[str, Any]:
    """Fig. 1 left at one width (C15, C15f): members ``[fixed λ seeds..., λ·ref/width seeds...]``;
    seed s has the same init stream and minibatch order in both arms and at every width."""
    n = job.n_seeds
    lr_scaled = job.lr * job.ref_width / job.width
    init = _fig1.member_seeds(job.seed, n, "init")
    order = _fig1.member_seeds(job.seed, n, "order")
    r = _fig1.tanh_first_epoch(job.width, [job.lr] * n + [lr_scaled] * n, init * 2, order * 2, batch=job.batch,
                               n_train=job.n_train, data_seed=derive(job.seed, "split"), div_factor=job.div_factor)
    arms = {}
    for a, (name, lr) in enumerate((("fixed", job.lr), ("scaled", lr_scaled))):
        sl = slice(a * n, (a + 1) * n)
        arms[name] = dict(lr=lr, var=r["var"][sl], L0=r["L0"][sl], L1=r["L1"][sl], diverged=r["diverged"][sl])
    return dict(width=job.width, steps=r["steps"], batch=job.batch, div_factor=job.div_factor, arms=arms,
                sampling="without replacement (one epoch, one permutation per seed)",
                arrays={"batch_losses": r["batch_losses"]})


def run_logreg(job: "J.LogReg") -> dict[str, Any]:
    """Fig. 1 right (C16): test loss and error ``(n_gamma, n_seeds)`` after ``epochs`` epochs at λ, and
    (C16c) the same sweep at ``control_lr`` for ``round(epochs·lr/control_lr)`` epochs (equal λ·steps),
    with the same seeds' minibatch orders."""
    orders = _fig1.member_seeds(job.seed, job.n_seeds, "order")
    kw = dict(batch=job.batch, n_train=job.n_train, data_seed=derive(job.seed, "split"))
    r = _fig1.logreg_sweep(list(job.gammas), orders, lr=job.lr, epochs=job.epochs, **kw)
    ep_c = max(1, round(job.epochs * job.lr / job.control_lr))
    c = _fig1.logreg_sweep(list(job.gammas), orders, lr=job.control_lr, epochs=ep_c, **kw)
    return dict(gammas=list(job.gammas), lr=job.lr, batch=job.batch, epochs=job.epochs, **r,
                control=dict(lr=job.control_lr, epochs=ep_c, test_loss=c["test_loss"], test_err=c["test_err"],
                             train_loss=c["train_loss"]),
                sampling="without replacement (one permutation per seed and epoch, shared by every γ)")
