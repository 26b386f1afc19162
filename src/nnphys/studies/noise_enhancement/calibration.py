"""Synthetic results with a known truth for the noise-enhancement claims (the calibration of their rules).

Each generator ``gen(rng, spec) -> list[Result]`` builds results **in the study's own format**: the
planned jobs' ``params()`` (:func:`nnphys.studies.noise_enhancement.jobs.jobs`) as ``params`` and the metrics keys that
``run`` writes (``members``, ``final[budget]`` with ``test_error``/``val_error``/``train_loss``,
``diverged``, ``died_at``, ``best_val_test_error``, ``train_loss_3q``, ``optimizer_steps``; the toy's
``modes``; the probe's ``per_alpha``). Only the jobs a claim needs are built.

The training world (:func:`world`): per task, per budget, per arm variant ``v`` and seed ``s``,

    test error[v, s] = mu[v] + sigma_u u[s] + sigma_e e[v, s],    u, e ~ N(0, 1) i.i.d.,

so arms that share a seed share ``u[s]`` (same data order and draws: the design is paired) and a
paired difference has s.d. ``sqrt(2) sigma_e``. ``mu`` is the task's baseline (arm L) plus the
scenario's shift per variant; a diverged seed gets ``nan`` test error and ``diverged = True`` (the
study replaces it by the task's trivial error, intention to treat). The noise levels are ours,
chosen so that a cell with the effect is informative at 5 seeds (per-cell power >= 0.8 at the SESOI);
scenarios ending in ``_noisy`` raise one task's noise to show what a low-power cell does.
The default world puts S 0.03 below L, so the old rule's informativeness gate (S significantly below
L) is met and old and new rules meet the same truths.

Scenarios (the truths): ``effect`` (the claimed effect, 2 x SESOI, in every task), ``none`` (no effect;
for equivalence claims: the true difference sits on the margin), ``opposite`` (the effect reversed),
``floor`` (no room to move: every arm at the floor, or for C6 small-batch SGD not helped by more
noise), and claim-specific ones named in :data:`CALIBRATION`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from nnphys.noise_enhancement import ne_trace_ratio
from nnphys.studies.base import Result
from nnphys.studies.noise_enhancement._cells import ne_key
from nnphys.studies.noise_enhancement.claims import C1_MARGIN, C2_NET_MARGIN, C2_TOY_MARGIN, C8_MARGIN
from nnphys.studies.noise_enhancement.jobs import jobs

# per-task baseline of arm L (test error; T3: test MSE of a unit-variance target) and noise [default: ours,
# near the quick/medium runs' levels for the baselines, smaller noise so that cells are informative]
BASE = {"digits": 0.030, "mnist1d": 0.41, "mnist1d_small": 0.56, "depth_locality": 0.15,
        "fashion_mnist": 0.12, "cifar10": 0.30}
SIGMA_U = 0.010   # seed effect shared by the arms of one seed
SIGMA_E = 0.003   # arm x seed noise: paired difference s.d. 0.0042, s.e. 0.0019 at 5 seeds
FLOOR_ERR = 0.002  # the floor scenario: every arm this close to zero error
D = 0.02          # the effect size of the scenarios: 2 x the SESOI (0.01)


def _planned(spec, kind: str) -> list[dict[str, Any]]:
    """The ``params()`` of the planned jobs of ``kind``, on the spec's device (as the lab stores them)."""
    return [j.on(spec.device).params() for j in jobs(spec) if j.KIND == kind]


def _variant_key(arm: str, v: dict[str, Any]) -> str:
    if arm == "NE":
        return ne_key(v["alpha"])
    if arm == "LS" and v["warmup_steps"]:
        return "LS_warmup"
    return arm


def base_means(spec, task: str) -> dict[str, float]:
    """The default world of one task: S and S_half 0.03 below L (a small- vs large-batch gap), S_double halfway, L2 and
    LS at L, LS_warmup at L, NE(alpha_match) at S, other alphas halfway (alpha < match) or 0.05 above
    L (alpha > match: too much noise)."""
    b = BASE[task]
    m = {"L": b, "L2": b, "LS": b, "LS_warmup": b, "S": b - 0.03, "S_half": b - 0.03, "S_double": b - 0.015}
    am = spec.match_alpha
    for a in spec.ne_alphas:
        m[ne_key(a)] = b - 0.03 if abs(a - am) < 1e-9 else (b - 0.015 if a < am else b + 0.05)
    return m


def train_results(spec, rng: np.random.Generator, means: Callable[[str, str], dict[str, float]],
                  arms: tuple[str, ...], diverged: Callable[[str], dict[str, int]] | None = None,
                  sigma_e: Callable[[str], float] | None = None, sigma_u: float = SIGMA_U,
                  floor_noise: bool = False, stale: dict[str, float] | None = None) -> list[Result]:
    """Train results of ``arms`` for every task of ``spec`` (members seed-major: seed x variant x lr,
    as ``run`` writes them).

    ``means(task, budget) -> {variant key: mean test error}``; ``diverged(task) -> {variant key:
    number of seeds (the first ones) that diverged}``; ``sigma_e(task)``: the arm x seed noise;
    ``sigma_u``: the seed effect shared by the arms; ``floor_noise``: arm x seed noise ``FLOOR_SIGMA``;
    ``stale``: ``{variant key: fall of the validation error over the last quarter}`` for arms that have
    not plateaued (the others: 0, plateaued)."""
    out = []
    js = [j for j in _planned(spec, "train") if j["arm"] in arms]
    u = {t: rng.standard_normal(spec.n_seeds) for t in spec.tasks}
    for job in js:
        t = job["task"]
        se = FLOOR_SIGMA if floor_noise else (sigma_e(t) if sigma_e else SIGMA_E)
        dead = diverged(t) if diverged else {}
        vs, lrs, seeds = job["variants"], job["lrs"], job["seeds"]
        keys = [_variant_key(job["arm"], v) for v in vs]
        si = np.repeat(np.arange(len(seeds)), len(vs) * len(lrs))          # member -> seed index
        vi = np.tile(np.repeat(np.arange(len(vs)), len(lrs)), len(seeds))  # member -> variant index
        li = np.tile(np.arange(len(lrs)), len(seeds) * len(vs))
        div = np.array([s < dead.get(keys[v], 0) for s, v in zip(si, vi)], bool)
        members = [{"seed": seeds[s], "alpha": float(vs[v]["alpha"]), "lr": lrs[k], "lr_used": lrs[k] * job["lr_mult"],
                    "warmup_steps": vs[v]["warmup_steps"], "f_alpha": 1 + 2 * vs[v]["alpha"] + 2 * vs[v]["alpha"] ** 2,
                    "b_eff": job["batch_size"] / (1 + 2 * vs[v]["alpha"] + 2 * vs[v]["alpha"] ** 2)}
                   for s, v, k in zip(si, vi, li)]
        final, best, val_3q = {}, {}, {}
        fall = np.array([(stale or {}).get(k, 0.0) for k in keys])[vi]
        for b in ("steps", "epochs"):
            mu = np.array([means(t, b)[k] for k in keys])[vi]
            e = np.clip(mu + sigma_u * u[t][si] + se * rng.standard_normal(len(si)), 0.0, 1.0)
            val = np.clip(e + 0.005 * rng.standard_normal(len(si)), 0.0, 1.0)
            e, val = np.where(div, np.nan, e), np.where(div, np.nan, val)
            final[b] = {"test_error": e.tolist(), "val_error": val.tolist(),
                        "train_loss": np.where(div, np.nan, 0.01).tolist()}
            best[b] = e.tolist()
            val_3q[b] = (val + fall).tolist()
        metrics = {"task": t, "arm": job["arm"], "members": members, "final": final, "best_val_test_error": best,
                   "diverged": div.tolist(), "died_at": np.where(div, job["total_steps"] // 3, -1).tolist(),
                   "optimizer_steps": job["total_steps"],
                   "train_loss_3q": {b: [0.011] * len(members) for b in ("steps", "epochs")}, "val_error_3q": val_3q,
                   "budgets": {"steps": job["steps_budget"], "epochs": job["k_epochs"]}}
        out.append(Result(key=f"{t}/{job['arm']}", params=job, status="done", metrics=metrics))
    return out


def _const(world: Callable[[str], dict[str, float]]) -> Callable[[str, str], dict[str, float]]:
    return lambda t, b: world(t)


def _shifted(spec, shift: Callable[[str, dict[str, float]], dict[str, float]]):
    """A world: the task's default means updated by ``shift(task, means)``."""
    def means(t: str, b: str) -> dict[str, float]:
        m = base_means(spec, t)
        m.update(shift(t, m))
        return m
    return means


FLOOR_SIGMA = 0.001  # seed and arm x seed noise at the floor (errors near zero cannot spread much)


def _floor(spec):
    """Every arm within a few tenths of a point of zero error: no room to move in any direction."""
    def means(t: str, b: str) -> dict[str, float]:
        return {k: FLOOR_ERR for k in base_means(spec, t)}
    return means


def _floor_kw(scenario: str) -> dict[str, Any]:
    return {"sigma_u": FLOOR_SIGMA, "floor_noise": True} if scenario == "floor" else {}


def _match(spec) -> str:
    return ne_key(round(spec.match_alpha, 12))


# ------------------------------------------------------------------------------------------------
# training claims C4-C9
# ------------------------------------------------------------------------------------------------

def gen_c4(scenario: str):
    """C4 (some alpha > 0 beats alpha = 0, i.e. arm L). effect: alpha_match and the smaller alphas
    beat L by 2 SESOI, the largest alpha is too much noise (+0.05); none: every NE(alpha) at L;
    opposite: every NE(alpha) 2 SESOI worse than L; floor: all at the floor; effect_noisy: the effect
    everywhere, one task (T3) 10x noisier (a low-power cell); diverged: NE beats L by 2 SESOI in its
    survivors but 2 of 5 seeds of every NE(alpha) diverge (under intention to treat NE is worse)."""
    def gen(rng, spec):
        keys = [ne_key(a) for a in spec.ne_alphas if a > 0]
        top = ne_key(max(spec.ne_alphas))

        def shift(t, m):
            b = m["L"]
            if scenario in ("effect", "effect_noisy"):
                return {k: (b + 0.05 if k == top and len(keys) > 1 else b - D) for k in keys}
            if scenario == "none":
                return {k: b for k in keys}
            if scenario == "opposite":
                return {k: b + D for k in keys}
            if scenario == "diverged":
                return {k: b - D for k in keys}
            raise KeyError(scenario)
        means = _floor(spec) if scenario == "floor" else _shifted(spec, shift)
        dead = (lambda t: {k: 2 for k in keys}) if scenario == "diverged" else None
        noisy = (lambda t: SIGMA_E * (10 if t == "depth_locality" else 1)) if scenario == "effect_noisy" else None
        return train_results(spec, rng, means, ("S", "L", "NE"), dead, noisy, **_floor_kw(scenario))
    return gen


def _pair_gen(scenario: str, better: str, worse: str, extra_arms: tuple[str, ...] = ()):
    """C5 / C9: NE(alpha_match) (``better``, a key or ``"match"``) against ``worse`` (L or L2)."""
    def gen(rng, spec):
        ne = _match(spec)

        def shift(t, m):
            b = m[worse]
            return {"effect": {ne: b - D}, "effect_noisy": {ne: b - D}, "diverged": {ne: b - D},
                    "not_converged": {ne: b - D}, "none": {ne: b}, "opposite": {ne: b + D}}[scenario]
        means = _floor(spec) if scenario == "floor" else _shifted(spec, shift)
        dead = (lambda t: {ne: 2}) if scenario == "diverged" else None
        noisy = (lambda t: SIGMA_E * (10 if t == "depth_locality" else 1)) if scenario == "effect_noisy" else None
        stale = {ne: STALE_DROP} if scenario == "not_converged" else None
        return train_results(spec, rng, means, tuple(dict.fromkeys(("S", "L", "NE", worse) + extra_arms)), dead, noisy,
                             stale=stale, **_floor_kw(scenario))
    return gen


STALE_DROP = 0.03  # the not_converged scenario: NE's validation error still falls by 3 SESOI over the last quarter


def gen_c5(scenario: str):
    """C5 (NE(alpha_match) beats L): the same truths as C4 for alpha_match alone; not_converged: the
    effect at the end of the budget, but NE(alpha_match)'s validation error is still falling by
    ``STALE_DROP`` over the last quarter (not converged: must never hold)."""
    return _pair_gen(scenario, "match", "L")


def gen_c9(scenario: str):
    """C9 (NE(alpha_match) beats L2, SGD at 2 B_l): as C5 against L2."""
    return _pair_gen(scenario, "match", "L2")


def gen_c6(scenario: str):
    """C6 (some alpha >= alpha_match beats S). The room to move is SGD at B_s / 2 (arm S_half)
    significantly better than S. effect: S_half and NE(alpha_match) 2 SESOI below S, the larger
    alphas too noisy; none: every NE(alpha >= match) at S (S_half still helps); opposite: every
    NE(alpha >= match) 2 SESOI worse than S; floor: S_half at S (more noise than B_s does not help
    plain SGD: no room), NE(alpha_match) 2 SESOI below S."""
    def gen(rng, spec):
        am = spec.match_alpha
        keys = [ne_key(a) for a in spec.ne_alphas if a >= am - 1e-9]
        ne = _match(spec)

        def shift(t, m):
            s = m["S"]
            if scenario == "effect":
                return {"S_half": s - D, **{k: (s - D if k == ne else s + 0.05) for k in keys}}
            if scenario == "none":
                return {"S_half": s - D, **{k: s for k in keys}}
            if scenario == "opposite":
                return {"S_half": s - D, **{k: s + D for k in keys}}
            if scenario == "floor":
                return {"S_half": s, **{k: (s - D if k == ne else s) for k in keys}}
            raise KeyError(scenario)
        return train_results(spec, rng, _shifted(spec, shift), ("S", "S_half", "L", "NE"))
    return gen


def gen_c7(scenario: str):
    """C7 (NE avoids LS's instability: LS ends worse than NE(alpha_match), divergence counting as the
    trivial error). effect: LS (both variants) 2 SESOI worse than NE(alpha_match); none: LS at
    NE(alpha_match); opposite: LS 2 SESOI better (what the medium run showed); floor: all at the
    floor; ls_diverged: 3 of 5 LS seeds diverge, the rest at NE (holds); ne_diverged: 3 of 5
    NE(alpha_match) seeds diverge, LS 2 SESOI worse than NE's survivors (under intention to treat NE
    is far worse: must not hold)."""
    def gen(rng, spec):
        ne = _match(spec)

        def shift(t, m):
            n = m[ne]
            d = {"effect": D, "ne_diverged": D, "none": 0.0, "ls_diverged": 0.0, "opposite": -D}[scenario]
            return {"LS": n + d, "LS_warmup": n + d}
        means = _floor(spec) if scenario == "floor" else _shifted(spec, shift)
        dead = {"ls_diverged": lambda t: {"LS": 3, "LS_warmup": 3}, "ne_diverged": lambda t: {ne: 3}}.get(scenario)
        return train_results(spec, rng, means, ("S", "L", "NE", "LS"), dead, **_floor_kw(scenario))
    return gen


def gen_c8(scenario: str, margin: float):
    """C8 (NE(alpha_match) equivalent to S within ``margin``). effect: equal means; none: NE(alpha_match)
    exactly ``margin`` above S (the boundary of equivalence: holds at most alpha) with the arm x seed
    noise of the quick run (0.012: a regime where a difference of the margin is often not
    significant); none_noisy: 2 margins above S at a noise of 0.03 (T3's spread at medium: where "not
    significantly different" says nothing); opposite: 2.5 margins above S; floor: all at the floor.
    NE(alpha = 1) lies halfway between S and L in every scenario."""
    def gen(rng, spec):
        ne = _match(spec)

        def shift(t, m):
            s = m["S"]
            d = {"effect": 0.0, "none": margin, "none_noisy": 2 * margin, "opposite": 2.5 * margin}[scenario]
            return {ne: s + d}
        means = _floor(spec) if scenario == "floor" else _shifted(spec, shift)
        noisy = {"none": lambda t: 0.012, "none_noisy": lambda t: 0.03}.get(scenario)
        return train_results(spec, rng, means, ("S", "L", "NE"), None, noisy, **_floor_kw(scenario))
    return gen


# ------------------------------------------------------------------------------------------------
# theory claims C1-C3
# ------------------------------------------------------------------------------------------------

TOY_MODES = ("split", "independent", "replacement")


def toy_result(rng, spec, bias: float = 0.0, rel_err: float = 0.0, draws: int | None = None) -> Result:
    """A toy job (the finite-population toy): per mode and alpha, the mean deviation of g_NE from the exact gradient with a
    standardised bias ``bias`` (in units of the per-draw s.d. of g_NE) and the variance ratio off its
    theory by the relative ``rel_err``, each with Monte Carlo noise of ``draws`` draws."""
    job = _planned(spec, "toy")[0]
    n, b, r = job["n"], job["batch_size"], draws or job["draws"]
    C = 2.0  # Var of z^2 for z ~ N(0, 1)
    modes = {}
    for mode in TOY_MODES:
        var_b = C / b * ((n - b) / (n - 1) if mode != "replacement" else 1.0)
        als = []
        for a in job["alphas"]:
            th = ne_trace_ratio(a, b, n, mode)
            sd = math.sqrt(th * var_b)
            rel_se = math.sqrt(2.0 + 6.0 / b) / math.sqrt(r)  # s.d. of d^2 / E d^2 for a near-Gaussian mean
            als.append({"alpha": a, "mean_dev": (bias + rng.standard_normal() / math.sqrt(r)) * sd,
                        "mean_se": sd / math.sqrt(r), "theory": th,
                        "ratio": th * (1 + rel_err + rel_se * rng.standard_normal()), "ratio_se": th * rel_se})
        modes[mode] = {"alphas": als, "sgd_var": var_b, "sgd_var_theory": var_b, "sgd_var_se": var_b / math.sqrt(r)}
    return Result(key="toy", params=job, status="done",
                  metrics={"n": n, "batch_size": b, "draws": r, "C": C, "modes": modes})


def probe_results(rng, spec, bias: float = 0.0, rel_err: float = 0.0, overlap: float = 0.97,
                  rel_se: float = 0.01) -> list[Result]:
    """One noise-probe job per MLP task: per alpha, the C1 z-scores of 4 directions for a standardised
    bias ``bias``, the measured ratio off theory by ``rel_err`` with a 99 % CI of relative s.e.
    ``rel_se``, and the top-5 subspace overlap ``overlap`` (+ small noise)."""
    out = []
    for job in _planned(spec, "probe"):
        n, b, r = min(job["max_n"], 10**9), job["batch_size"], job["draws"]
        per = []
        for a in job["alphas"]:
            th = ne_trace_ratio(a, b, n, job["sampling"])
            ratio = th * (1 + rel_err + rel_se * rng.standard_normal())
            per.append({"alpha": a, "f": 1 + 2 * a + 2 * a * a, "theory": th, "ratio": ratio,
                        "ci99": [ratio * (1 - 2.576 * rel_se), ratio * (1 + 2.576 * rel_se)],
                        "mean_z": [bias * math.sqrt(r) + float(z) for z in rng.standard_normal(4)],
                        "overlap_sgd": float(min(1.0, overlap + 0.005 * rng.standard_normal())),
                        "overlap_exact": float(min(1.0, overlap + 0.005 * rng.standard_normal()))})
        out.append(Result(key=f"probe/{job['task']}", params=job, status="done", metrics={
            "task": job["task"], "n": n, "batch_size": b, "sampling": job["sampling"], "draws": r, "per_alpha": per,
            "sgd_trace": 1.0, "sgd_trace_se": 0.01, "sgd_trace_theory": 1.0, "shape_top_m": 40,
            "shape_top_m_trace_fraction": 0.9, "sgd_overlap_exact": overlap, "train_loss": 0.5}))
    return out


def gen_c1(scenario: str, margin: float):
    """C1 (unbiased). effect: no bias; none: a standardised bias exactly ``margin`` in every mode and
    net; opposite: 3 margins; floor is not meaningful (no room to move for an identity)."""
    bias = {"effect": 0.0, "none": margin, "opposite": 3 * margin}[scenario]

    def gen(rng, spec):
        return [toy_result(rng, spec, bias=bias)] + probe_results(rng, spec, bias=bias)
    return gen


def gen_c2(scenario: str, toy_margin: float, net_margin: float):
    """C2 (noise x f(alpha), shape kept). effect: ratios at theory, overlap 0.97; none: ratios exactly
    on the margins (toy 1 %, nets 10 %); opposite: 3 margins off, or (``shape``) ratios right but the
    shape changed (overlap 0.6)."""
    def gen(rng, spec):
        if scenario == "shape":
            return [toy_result(rng, spec)] + probe_results(rng, spec, overlap=0.6)
        k = {"effect": 0.0, "none": 1.0, "opposite": 3.0}[scenario]
        return [toy_result(rng, spec, rel_err=k * toy_margin)] + probe_results(rng, spec, rel_err=k * net_margin)
    return gen


def gen_c3(scenario: str):
    """C3 (eta and B unchanged, one step per iteration): effect = the real jobs; opposite = NE's batch
    size doubled in one task's job (a config error the audit must catch)."""
    def gen(rng, spec):
        res = train_results(spec, rng, _shifted(spec, lambda t, m: {}), ("L", "NE"))
        if scenario == "opposite":
            r = next(r for r in res if r.params["arm"] == "NE")
            r.params = {**r.params, "batch_size": 2 * r.params["batch_size"]}
        return res
    return gen


_TRAIN = ("effect", "none", "opposite", "floor")
# {claim: {scenario: gen(rng, spec)}} for the calibration harness (nnphys.studies.calibration)
CALIBRATION: dict[str, dict[str, Any]] = {
    "C1": {s: gen_c1(s, C1_MARGIN) for s in ("effect", "none", "opposite")},
    "C2": {s: gen_c2(s, C2_TOY_MARGIN, C2_NET_MARGIN) for s in ("effect", "none", "opposite", "shape")},
    "C3": {s: gen_c3(s) for s in ("effect", "opposite")},
    "C4": {s: gen_c4(s) for s in _TRAIN + ("effect_noisy", "diverged")},
    "C5": {s: gen_c5(s) for s in _TRAIN + ("effect_noisy", "diverged", "not_converged")},
    "C6": {s: gen_c6(s) for s in _TRAIN},
    "C7": {s: gen_c7(s) for s in _TRAIN + ("ls_diverged", "ne_diverged")},
    "C8": {s: gen_c8(s, C8_MARGIN) for s in _TRAIN + ("none_noisy",)},
    "C9": {s: gen_c9(s) for s in _TRAIN + ("effect_noisy", "diverged")},
}
