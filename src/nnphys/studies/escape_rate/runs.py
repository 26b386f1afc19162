"""The computations of the escape-rate jobs, one function per kind, each taking its typed job
(:mod:`~nnphys.studies.escape_rate.jobs`, which names the claims each kind feeds)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from nnphys import escape as E
from nnphys.escape.landscapes import LinearRegression, QuadraticWell, family_a, family_b, mfpt_family_a
from nnphys.escape.simulate import sample_sde, sample_sgd, simulate_sde, simulate_sgd, simulate_sgd_oracle
from nnphys.seeding import derive
from nnphys.stats import design_effect
from nnphys.studies._shared.digits_mlp import mlp_config, run_digits_noise

if TYPE_CHECKING:
    from nnphys.studies.escape_rate import jobs as J


def run_theory(job: "J.Theory") -> dict:
    # T1: identities (relative errors; the pass criterion is 1e-12)
    hm, hs = np.diag([1.3, 0.7, 2.0]), np.diag([-0.4, 0.7, 2.0])
    r, c, Ls = 7.0, 3.0, 0.8
    id_n1 = abs(E.kappa_nd(c, [[1.3]], [[-0.4]], r, 1.0) / E.kappa_1d(c, 1.3, -0.4, r, 1.0) - 1)
    lam = 37.0  # invariance under (L*, L_s) -> lambda (L*, L_s): eq. 17 depends on c only
    id_scale = abs(E.kappa_tau(c, Ls * lam, hm, hs, r, 1.0, 1.3) * Ls * lam
                   / (E.kappa_tau(c, Ls, hm, hs, r, 1.0, 1.3) * Ls) - 1)
    id_tau = abs(E.kappa_from_tau(E.kappa_tau(c, Ls, hm, hs, r, 1.0, 1.3), Ls)
                 / E.kappa_nd(c, hm, hs, r, 1.0, 1.3) - 1)
    # comparators share eq. 17's leading exponent as c -> 1+: the coefficient of r = B/(eta h*) in
    # d log kappa / d dL at dL -> 0 (finite differences in dL and in r; tolerance 1e-5)
    eps = 1e-6

    def s17(rr):
        return (math.log(E.kappa_nd(1 + 2 * eps, hm, hs, rr * 1.3, 1.0)) - math.log(E.kappa_nd(1 + eps, hm, hs, rr * 1.3, 1.0))) / (eps * Ls)

    def sar(rr):
        f = lambda d: math.log(E.kappa_arrhenius_frozen(d, Ls, hm, hs, rr * 1.3, 1.0))  # noqa: E731
        return (f(2 * eps * Ls) - f(eps * Ls)) / (eps * Ls)

    d17, dar = s17(9.0) - s17(4.0), sar(9.0) - sar(4.0)
    id_arr = abs(dar / d17 - 1)
    lead = -5.0 / Ls  # exact: -(9 - 4) / L*
    # T2 / Table 1: quadrature x kappa_eq16 on family A, for every delta_L
    table1, sym_spread = {}, 0.0
    for ratio in job.quad_ratios:
        for cc in job.quad_cs:
            vals = [mfpt_family_a(dL, cc, ratio) for dL in job.delta_Ls]
            sym_spread = max(sym_spread, float(np.ptp(vals) / np.mean(vals)))
            table1[f"{ratio:g}|{cc:g}"] = vals[0] * E.kappa_1d(cc, 1.0, -0.5, ratio, 1.0)
    # T5: quadrature at the Monte Carlo ratio on the c grid, and local slopes at the Table-1 ratios
    a_quad = {f"{cc:g}": mfpt_family_a(1.0, cc, job.a_ratio) for cc in job.a_cs}
    slopes = {}
    for ratio in job.quad_ratios:
        cs = job.quad_cs
        T = [mfpt_family_a(1.0, cc, ratio) for cc in cs]
        slopes[f"{ratio:g}"] = (np.diff(np.log(T)) / np.diff(np.log(cs))).tolist()
    # Table 2: radial level-set slopes, B/(eta h*) = 10
    cs2 = [1.5, 2, 3, 5, 10, 20, 50]
    table2 = {}
    for n in (1, 5, 10):
        T = [E.mfpt_levelset(n, cc, 10.0, 1.0) for cc in cs2]
        table2[str(n)] = (np.diff(np.log(T)) / np.diff(np.log(cs2))).tolist()
    levelset_quad = E.mfpt_levelset(1, 1.5, job.levelset_ratio, 1.0)
    b_pred = {f"{n}|{cc:g}": 1.0 / E.kappa_nd(cc, np.eye(n), np.diag([-0.5] + [1.0] * (n - 1)), job.b_ratio, 1.0)
              for n in job.b_ns for cc in job.b_cs}
    return {"identities": {"n1": id_n1, "scale": id_scale, "tau": id_tau, "arrhenius_lead": id_arr},
            "lead_exponent": lead, "d17": d17, "d_arrhenius": dar,
            "table1": table1, "sym_spread": sym_spread, "a_quad": a_quad, "quad_slopes": slopes,
            "table2": table2, "levelset_quad": levelset_quad, "b_pred": b_pred}




def run_levelset(job: "J.Levelset") -> dict:
    B, eta = 1.0, 1.0 / job.ratio
    well = QuadraticWell.isotropic(1, 0.5, 1.0, job.c)
    quad = E.mfpt_levelset(1, job.c, B, eta)
    fp = simulate_sde(well, B=B, eta=eta, dt=job.dt, n_chains=job.chains, t_max=job.tail * quad,
                      seed=job.seed, correction=job.correction, device=job.device)
    return {"estimate": fp.estimate(), "quad": quad, "dt": job.dt, "correction": job.correction}


def run_symmetry(job: "J.Symmetry") -> dict:
    ratio, c = job.ratio, job.c
    steps = []
    ests = []
    for dL in job.delta_Ls:
        A = family_a(dL, c)
        quad = mfpt_family_a(dL, c, ratio)
        # correction off: the shifted barrier is not an exact multiple of w (it keeps the symmetry
        # only up to rounding anyway); CRN so that one chain's fate does not shift others' noise
        fp = simulate_sde(A, B=ratio, eta=1.0, dt=job.dt, n_chains=job.chains, t_max=job.tail * quad,
                          seed=job.seed, crn=True, device=job.device)
        steps.append(np.rint(fp.times / job.dt).astype(np.int64))
        ests.append(fp.estimate())
    same = np.all(np.stack(steps) == steps[0], axis=0)
    # genuine SGD on family C with y -> sqrt(lambda) y, common minibatch indices
    sgd_steps = []
    for lam in job.delta_Ls:
        lr = LinearRegression.sample(job.gap_N, 1, seed=derive(job.seed, "data"), scale=lam,
                                     device=job.device)
        fp = simulate_sgd(lr, B=1, eta=0.1, n_chains=max(job.chains // 5, 10), max_steps=1500,
                          seed=derive(job.seed, "sgd"),
                          event=lambda th, lr=lr: lr.loss(th) >= 1.5 * lr.L_star, start=lr.theta_star, crn=True)
        sgd_steps.append(np.where(fp.event, np.rint(fp.times / 0.1), -1).astype(np.int64))
    sgd_same = np.all(np.stack(sgd_steps) == sgd_steps[0], axis=0)
    return {"identical_fraction": float(same.mean()), "sgd_identical_fraction": float(sgd_same.mean()),
            "estimates": ests, "delta_Ls": list(job.delta_Ls), "n_sgd": int(sgd_same.size)}


def run_family_a(job: "J.FamilyA") -> dict:
    A = family_a(1.0, job.c)
    quad = mfpt_family_a(1.0, job.c, job.ratio)
    fp = simulate_sde(A, B=job.ratio, eta=1.0, dt=job.dt, n_chains=job.chains, t_max=job.tail * quad,
                      seed=job.seed, correction=job.correction, device=job.device)
    return {"estimate": fp.estimate(), "quad": quad, "c": job.c,
            "kappa16": E.kappa_1d(job.c, 1.0, -0.5, job.ratio, 1.0)}


def run_family_b(job: "J.FamilyB") -> dict:
    n, c, ratio = job.n, job.c, job.ratio
    Bw = family_b(n, 1.0, c, n_bulk=job.bulk)
    pred = 1.0 / E.kappa_nd(c, Bw.hess_min, Bw.hess_saddle, ratio, 1.0)
    fp = simulate_sde(Bw, B=ratio, eta=1.0, dt=job.dt, n_chains=job.chains, t_max=job.tail * pred,
                      seed=job.seed, correction=job.correction, device=job.device, block=32)
    return {"estimate": fp.estimate(), "pred17": pred, "n": n, "c": c}




def run_phi_sde(job: "J.PhiSDE") -> dict:
    out = []
    for ratio in job.ratios:
        well = QuadraticWell.isotropic(1, 0.5, 1.0, 2.0)
        z = sample_sde(well, B=ratio, eta=1.0, dt=job.dt, n_chains=job.chains, burn_in=10.0,
                       n_samples=job.samples, every=1.0, seed=job.seed, device=job.device)
        f = E.fit_phi_student_t(z.reshape(-1).cpu().numpy())
        # samples one 1/h* apart are correlated (lag-1 ~0.2 for z^2): the profile CI treats them
        # as independent, so widen it by sqrt of the design effect of z^2
        w = math.sqrt(design_effect((z[..., 0] ** 2).cpu().numpy()))
        out.append({"ratio": ratio, "phi_fit": f["phi"], "phi_lo": f["phi"] - w * (f["phi"] - f["phi_lo"]),
                    "phi_hi": f["phi"] + w * (f["phi_hi"] - f["phi"]), "ci_widened_by": w,
                    "phi": E.phi(ratio, 1.0, 1.0), "scale": f["scale"], "n": f["n"]})
    return {"fits": out}


def run_phi_sgd(job: "J.PhiSGD") -> dict:
    out = []
    lr = LinearRegression.sample(job.N, 1, seed=derive(job.seed, "data"), device=job.device)
    h = float(lr.curvatures[0])
    for B in job.Bs:
        eta = job.eta
        th = sample_sgd(lr, B=B, eta=eta, n_chains=job.chains, burn_in_steps=int(20 / eta) + 100,
                        n_samples=job.samples, every=100, seed=derive(job.seed, "B", B), start=lr.theta_star)
        z = (th - lr.theta_star).reshape(-1).cpu().numpy()
        if not np.all(np.isfinite(z)):
            out.append({"B": B, "eta": eta, "phi_fit": float("nan"), "diverged": True})
            continue
        f = E.fit_phi_student_t(z)
        out.append({"B": B, "eta": eta, "phi_fit": f["phi"], "phi_lo": f["phi_lo"], "phi_hi": f["phi_hi"],
                    "phi": E.phi(B, eta, h),
                    "phi_disc": E.phi_discrete(B, eta, h), "phi_kesten": E.kesten_index(B, eta, h),
                    "h_star": h, "n": int(z.size)})
    return {"fits": out}


def run_phi_tail(job: "J.PhiTail") -> dict:
    """T7tail: per B, genuine-SGD samples (as :func:`run_phi_sgd`: same seeds, same data set), the
    Student-t MLE of ``theta - theta*`` (bulk) and the Hill estimate of the tail of ``L - L*``
    (:func:`nnphys.escape.theory.hill_phi`, ``k = floor(sqrt(n))``, CI by a bootstrap over chains),
    with the paper's ``phi``, the discrete-time ``phi_disc`` and Kesten's exact tail (as a ``phi``)."""
    out = []
    lr = LinearRegression.sample(job.N, 1, seed=derive(job.sample_seed, "data"), device=job.device)
    h = float(lr.curvatures[0])
    curve = None  # the Hill reference curve (one n for every B): computed once
    for B in job.Bs:
        eta = job.eta
        th = sample_sgd(lr, B=B, eta=eta, n_chains=job.chains, burn_in_steps=int(20 / eta) + 100,
                        n_samples=job.samples, every=100, seed=derive(job.sample_seed, "B", B), start=lr.theta_star)
        zt = (th - lr.theta_star)[..., 0]
        z = zt.reshape(-1).cpu().numpy()
        ref = {"B": B, "eta": eta, "phi": E.phi(B, eta, h), "phi_disc": E.phi_discrete(B, eta, h),
               "phi_kesten": E.kesten_index(B, eta, h), "h_star": h}
        if not np.all(np.isfinite(z)):
            out.append({**ref, "phi_fit": float("nan"), "phi_tail": float("nan"), "diverged": True})
            continue
        f = E.fit_phi_student_t(z)
        ell = (0.5 * h * zt * zt).cpu().numpy()  # L - L* in 1-D (the exact quadratic form)
        t = E.hill_phi(np.maximum(ell, np.finfo(float).tiny), dim=1, n_boot=job.n_boot, seed=derive(job.seed, "boot", B))
        # the raw Hill number is far below phi even for the paper's own law at this n: map it (and its
        # CI ends) to the phi of the L^-phi law whose Hill estimate at the same n, k has that mean
        if curve is None:
            curve = E.hill_reference_curve(t["n"], t["k"], reps=16, seed=derive(job.seed, "hill_reference"))
        deb = E.hill_phi_debiased([t["phi_tail"], t["phi_tail_lo"], t["phi_tail_hi"]], t["n"], curve=curve)
        raw = {f"raw_{key}" if key.startswith("phi_tail") else key: v for key, v in t.items()}
        # the empirical tail of L - L* for the figures: the value exceeded by a fraction p of the samples
        srt = np.sort(ell.ravel())
        ps = np.geomspace(1.0 / srt.size, 0.9, 48)
        raw["ell_ccdf"] = {"p": ps.tolist(), "u": srt[np.clip(np.ceil((1 - ps) * srt.size).astype(int) - 1, 0, srt.size - 1)].tolist()}
        raw["L_star"] = lr.L_star
        out.append({**ref, "phi_fit": f["phi"], "phi_lo": f["phi_lo"], "phi_hi": f["phi_hi"], **raw,
                    "phi_tail": deb[0], "phi_tail_lo": deb[1], "phi_tail_hi": deb[2],
                    "raw_hill_of_paper_law": float(np.interp(math.log(ref["phi"]), np.log(curve[0]), curve[1])),
                    "raw_hill_of_kesten_law": float(np.interp(math.log(ref["phi_kesten"]), np.log(curve[0]), curve[1]))
                    if math.isfinite(ref["phi_kesten"]) else float("nan")})
    return {"fits": out}



def run_instability(job: "J.Instability") -> dict:
    out = []
    r = job.ratio
    t1, t2 = job.times
    for n in job.ns:
        well = QuadraticWell.isotropic(n, 0.5, 1.0, 2.0)
        z = sample_sde(well, B=r, eta=1.0, dt=job.dt, n_chains=job.chains, burn_in=t1, n_samples=2,
                       every=t2 - t1, seed=derive(job.seed, "n", n), device=job.device)
        logL = torch.log1p((z * z).sum(-1)).cpu().numpy()  # log(L / L*), L = 1/2 + |z|^2 / 2
        m = logL.mean(1)
        se = logL.std(1, ddof=1) / math.sqrt(logL.shape[1])
        diff = logL[1] - logL[0]
        out.append({"n": n, "mean_logL": m.tolist(), "se_logL": se.tolist(), "growth": float(diff.mean()),
                    "growth_se": float(diff.std(ddof=1) / math.sqrt(diff.size)),
                    "mean_L_theory": E.mean_loss_quadratic(0.5, n, r, 1.0, 1.0),
                    "finite": bool(np.all(np.isfinite(logL)))})
    return {"rows": out, "n_c": E.n_critical(r, 1.0, 1.0)}


def run_mlp(job: "J.Mlp") -> dict:
    """T9, T9b: the shared digits-MLP experiment (:mod:`nnphys.studies._shared.digits_mlp`), probed
    at init, ``epochs // 10`` and the end (the paper's experiment: init, 50 and 500 epochs)."""
    return run_digits_noise(mlp_config(job, job.epochs // 10))


def run_gap(job: "J.Gap") -> dict:
    c, B, eta = job.c, job.B, job.eta
    lr = LinearRegression.sample(job.N, 1, seed=job.data_seed, device=job.device)
    h, Ls = float(lr.curvatures[0]), lr.L_star
    max_steps = int(job.t_max / eta)
    well = QuadraticWell(L_star=Ls, h=(h,), c=c)
    kw = {"n_chains": job.chains, "seed": job.seed, "device": job.device}
    q13 = E.mfpt_levelset(1, c, B, eta, h=h, L_star=Ls)
    t_sde = min(job.t_max, job.tail * q13)  # SDE runs: cap at tail x their own exact mean
    res = {
        "S5": simulate_sgd(lr, B=B, eta=eta, max_steps=max_steps, event=lambda th: lr.loss(th) >= c * Ls,
                           start=lr.theta_star, n_chains=job.chains, seed=job.seed),
        "S4": simulate_sgd_oracle(well, B=B, eta=eta, max_steps=max_steps, **kw),
        "S4_exact": simulate_sgd_oracle(well, B=B, eta=eta, max_steps=max_steps, noise="exact", **kw),
        "S4_rademacher": simulate_sgd_oracle(well, B=B, eta=eta, max_steps=max_steps, noise_kind="rademacher", **kw),
        # the data's own noise shape at the minimum: per-sample gradients r_mu x_mu at theta*
        "S4_pool": simulate_sgd_oracle(well, B=B, eta=eta, max_steps=max_steps, noise_kind="pool",
                                       pool=(lr.X @ lr.theta_star - lr.y)[:, None] * lr.X, **kw),
        "S1": simulate_sde(well, B=B, eta=eta, dt=job.dt, t_max=t_sde, correction=job.correction, **kw),
        "S2": simulate_sde(well, B=B, eta=eta, dt=job.dt, t_max=t_sde, clock="tau", correction=job.correction, **kw),
        "S3": simulate_sde(well, B=B, eta=eta, dt=job.dt, t_max=t_sde, noise="exact",
                           correction=job.correction, **kw),
    }
    out = {k: v.estimate() for k, v in res.items()}
    out["quad_eq13"] = q13
    out["quad_exact_population"] = E.mfpt_levelset(1, c, B, eta, noise="exact")
    out["h_star"], out["L_star"], out["c"] = h, Ls, c
    return out


SURVIVAL_QS = tuple(i / 100 for i in range(1, 100))  # quantile levels of the stored escape-time law


def run_escape_nd(job: "J.EscapeND") -> dict:
    """T11, T12: genuine SGD (S5, all chains at once) on ``d``-dimensional linear regression from
    ``theta*`` to ``L >= c L*``. The paper's exponent uses the mean curvature ``h* = tr A / d`` of the
    drawn data set (its eigenvalues are reported: they spread by about ``2 sqrt(d / N)``); the Eq. 13
    quadrature at the same ``(d, c, h*, L*)`` is reported next to the SGD time."""
    d, c, B, eta = job.d, job.c, job.B, job.eta
    lr = LinearRegression.sample(job.N, d, seed=job.data_seed, device=job.device)
    curv = lr.curvatures
    h, Ls = float(curv.mean()), lr.L_star
    thr = c * Ls
    fp = simulate_sgd(lr, B=B, eta=eta, n_chains=job.chains, max_steps=job.max_steps, seed=job.seed,
                      event=lambda th: lr.loss(th) >= thr, start=lr.theta_star)
    steps = np.rint(fp.times / eta)
    # the escape-time law as quantiles (steps; a censored chain counts at the cap, so quantiles
    # above 1 - censored_fraction are the cap): enough for survival curves, small in the store
    qs = np.quantile(steps, SURVIVAL_QS).tolist()
    return {"estimate": fp.estimate(), "quad_eq13": E.mfpt_levelset(d, c, B, eta, h=h, L_star=Ls),
            "d": d, "c": c, "target": job.target, "h_star": h, "curvatures": curv.tolist(), "L_star": Ls,
            "paper_exponent": B / (eta * h) + 1 - d / 2, "survival_q": list(SURVIVAL_QS), "steps_at_q": qs,
            "max_steps": job.max_steps, "B": B, "eta": eta}
