"""Synthetic results with a known truth for every claim of ``depth-locality`` (the building blocks are
shared with ``depth-locality-map``, whose generators are in its own package).

Each generator ``gen(rng, spec) -> list[Result]`` builds the results of the jobs one claim reads, in the
study's own format (the params of the planned jobs of :func:`.jobs.jobs`, the metric keys of
:mod:`.runs`), from a model
whose truth is known, so the calibration harness can run the real ``analyse`` on them and measure
P(verdict | scenario) (``nnphys.studies.calibration``).

The model of a net's test error (in units of the trivial error, so the sign variant shares it):

    err(t, L, s) = base_t + delta_t * f(L) + u(t, s) + e(t, L, s),     f(L) = (L - L_min) / (L_max - L_min)

- ``u(t, s)`` ~ N(0, SEED_SD): seed ``s``'s data set, shared by every depth, group and variant that uses
  that data set and target (the paired design of the study); ``e`` ~ N(0, RUN_SD): each run's own noise;
- errors are clipped at ``1e-4`` (an error cannot be negative; the floor scenarios sit on that clip);
- scenarios (``delta`` in trivial units; SESOI = 0.1 [default] in the rules):
  ``effect`` the claimed effect at 2.5 x SESOI, ``none`` no effect, ``opposite`` the reverse effect,
  ``floor`` the baseline leaves no room (local error at L_min ~ 0.01, global ~ 0.97),
  ``diverged`` the effect with one seed of each deepest net diverged (``nan``, ``diverged=True``),
  ``unconverged`` (C6, C6W) the lazy (widest) runs stop at the epoch cap above the stopping rule.

The spreads are of the order the quick runs show (per-seed depth differences of a few 1e-2); they are a
model, stated here, not fitted to any verdict.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import numpy as np

from nnphys.studies.base import Result
from nnphys.studies.depth_locality.cells import planned

SEED_SD = 0.02  # [default] sd of a data set's shift of the error (trivial units)
RUN_SD = 0.02  # [default] sd of one training run's own noise (trivial units)
EFFECT = 0.25  # [default] true depth effect in the effect/opposite scenarios: 2.5 x the SESOI 0.1
NTK_RISE = 0.35  # [default] the NTK's depth trend, both targets alike (the papers: the NTK error rises with depth)
SCENARIOS = ("effect", "none", "opposite", "floor", "diverged")

Curve = Callable[[dict[str, Any], float], float]  # (job, f(L)) -> mean err / trivial


# =============================================================================================
# building blocks
# =============================================================================================


def _trivial(j: dict[str, Any]) -> float:
    """The job's trivial error: 1 for normalised MSE, min(p, 1-p) for sign labels (as :mod:`.runs`)."""
    if j.get("target_kind", "regression") == "regression":
        return 1.0
    return _sign_trivial(j["d"], j["k"], j["target"], 1.0 if j["tie_break"] is None else j["tie_break"])


@functools.lru_cache(maxsize=64)
def _sign_trivial(d: int, k: int, target: str, tie_break: float) -> float:
    from nnphys.targets import label_stats

    return float(label_stats(d, k, target, tie_break=tie_break)["trivial_error"])


class _Seeds:
    """Per-seed data-set shifts ``u``, one draw per (target, k, N, d, law), shared by every job that
    uses those data sets (depths, groups, variants, kernels)."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n, self.u = rng, n, {}

    def __call__(self, j: dict[str, Any], target: str) -> np.ndarray:
        key = (target, j["k"], j["n"], j["d"], j.get("law"))
        if key not in self.u:
            self.u[key] = self.rng.normal(0.0, SEED_SD, self.n)
        return self.u[key]


def _frac(depth: int, depths: list[int]) -> float:
    lo, hi = min(depths), max(depths)
    return 0.0 if hi == lo else (depth - lo) / (hi - lo)


def net_result(j: dict[str, Any], err: np.ndarray, *, diverged=None, reached=None) -> Result:
    """A ``done`` net result in :func:`.runs.run_net`'s format with per-seed errors ``err`` (absolute),
    ``diverged`` seeds ``nan`` and ``reached`` the stopping-rule flags (default: every seed met it)."""
    n = len(err)
    div = np.zeros(n, bool) if diverged is None else np.asarray(diverged, bool)
    rch = ~div if reached is None else (np.asarray(reached, bool) & ~div)
    e = np.where(div, np.nan, err)
    triv = _trivial(j)
    train = np.where(div, np.nan, np.where(rch, 5e-4, 2e-2))  # unreached: finite, above the 1e-3 rule
    return Result(key="", params=j, status="done", metrics={
        "err": [float(x) for x in e], "test_nmse": [float(x) for x in e], "val_err": [float("nan")] * n,
        "train_nmse": [float(x) for x in train], "train_loss": [float(x) for x in train],
        "train_acc": [float("nan")] * n, "epochs": [50 if r else j["max_epochs"] for r in rch],
        "steps": [0] * n, "reached": [bool(r) for r in rch], "diverged": [bool(x) for x in div],
        "stop_reason": ["diverged" if d else ("criterion" if r else "epoch_cap") for d, r in zip(div, rch)],
        "w1_rel_change": [0.1] * n, "lr": j["lrs"][0], "lr_index": 0, "lr_rule": "clean",
        "n_params": 10 * j["n"], "p_over_n": 10.0, "trivial_err": [triv] * n, "wall_s": 0.0})


def nets(spec: Any, rng: np.random.Generator, plan: list[dict[str, Any]], curve: Curve, *,
         depths_of: Callable[[dict[str, Any]], list[int]], diverged: Callable[[dict[str, Any]], Any] = None,
         reached: Callable[[dict[str, Any]], Any] = None, seeds: _Seeds | None = None) -> list[Result]:
    """Results of the net jobs ``plan`` under ``curve`` (module model)."""
    seeds = seeds or _Seeds(rng, spec.n_seeds)
    out = []
    for j in plan:
        n = len(j["data_seeds"])
        mean = curve(j, _frac(j["depth"], depths_of(j)))
        e = mean + seeds(j, j["target"]) + rng.normal(0.0, RUN_SD, n)
        out.append(net_result(j, np.maximum(e, 1e-4) * _trivial(j),
                              diverged=diverged(j) if diverged else None, reached=reached(j) if reached else None))
    return out


def interplay(d_loc: float, d_glob: float, base_loc: float = 0.4, base_glob: float = 0.4) -> Curve:
    """Local error ``base_loc + d_loc f``, global ``base_glob + d_glob f`` (trivial units)."""
    return lambda j, f: (base_loc + d_loc * f) if j["target"] == "local" else (base_glob + d_glob * f)


CURVES: dict[str, Curve] = {
    "effect": interplay(-EFFECT, EFFECT),
    "none": interplay(0.0, 0.0),
    "opposite": interplay(EFFECT, -EFFECT),
    "floor": interplay(0.0, 0.0, base_loc=0.01, base_glob=0.97),  # local on the floor, global at the ceiling
    "diverged": interplay(-EFFECT, EFFECT),
}


def _one_deep_seed_dead(depths_of):
    """Seed 0 of every deepest net diverged."""
    def f(j):
        d = np.zeros(len(j["data_seeds"]), bool)
        d[0] = j["depth"] == max(depths_of(j))
        return d
    return f


# =============================================================================================
# depth-locality: plans
# =============================================================================================


def _all_jobs(spec) -> Iterable[dict[str, Any]]:
    """The params of ``spec``'s planned jobs, cached per spec (the harness draws hundreds of result
    sets from one spec)."""
    return planned(spec).values()


def _plan(spec, kind: str = "net", group: str = "main", variant: str | None = None) -> list[dict[str, Any]]:
    return [j for j in _all_jobs(spec) if j["kind"] == kind and j.get("group") == group
            and (variant is None or j.get("variant") == variant)]


def _main_depths(spec):
    return lambda j: spec.depths


def _ctrl_depths(spec):
    return lambda j: spec.ctrl_depths()


def main_nets(spec, rng, scenario: str, seeds: _Seeds | None = None) -> list[Result]:
    """The main grid under ``CURVES[scenario]`` (C1, C2, C3, C8)."""
    dep = _main_depths(spec)
    return nets(spec, rng, _plan(spec), CURVES[scenario], depths_of=dep, seeds=seeds,
                diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)


def kernels(spec, rng, plan: list[dict[str, Any]], curve: Curve, seeds: _Seeds, *, perturb: float = 0.0) -> list[Result]:
    """Kernel-baseline results: NTK and NNGP errors per (seed, depth), both targets, on the data
    sets of the nets (``seeds`` shared), ``curve`` with ``target``; ``perturb``: a shift added
    to the permuted (x2) jobs' NTK errors (a kernel that is not permutation-invariant)."""
    out = []
    for j in plan:
        m = {}
        for kern in ("ntk", "nngp"):
            for t in ("local", "global"):
                rows = []
                for s in range(len(j["data_seeds"])):
                    u = seeds(j, t)[s]
                    # a kernel predictor is deterministic given the data: the error moves with the data set only
                    # in trivial units, like the nets (a sign-label kernel job's error is a classification error)
                    triv = _trivial({**j, "target": t})
                    row = [max(curve({**j, "target": t}, _frac(L, j["depths"])) + u, 1e-4) * triv for L in j["depths"]]
                    if kern == "ntk" and j["permute_seed"] is not None:
                        row = [v + perturb for v in row]
                    rows.append(row)
                m[f"{kern}_{t}"] = rows
        out.append(Result(key="", params=j, status="done",
                          metrics={**m, "depths": list(j["depths"]), "max_rel_jitter": 1e-8, "wall_s": 0.0}))
    return out


def ntk_curve(rise: float = NTK_RISE) -> Curve:
    """The NTK: error rises with depth for both targets alike (the papers; the same for both targets by
    claim C5), from 0.1."""
    return lambda j, f: 0.1 + rise * f


# =============================================================================================
# depth-locality: generators per claim
# =============================================================================================


def gen_main(scenario: str):
    def gen(rng, spec):
        return main_nets(spec, rng, scenario)
    gen.__doc__ = f"C1-C3: the main grid, scenario {scenario!r}"
    return gen


def c4_curves(scenario: str) -> tuple[Curve, Curve]:
    """The nets' and the NTK's curves of C4's (and the map's M4's) scenarios (:func:`gen_c4`)."""
    ntk = ntk_curve()
    net = {"effect": interplay(-EFFECT, EFFECT, base_loc=0.4),
           "none": lambda j, f: ntk(j, f) + 0.05,
           "opposite": lambda j, f: ntk(j, f) + 0.05 + EFFECT * f,
           "floor": interplay(0.0, 0.0, base_loc=0.0, base_glob=0.5),
           "diverged": interplay(-EFFECT, EFFECT, base_loc=0.4)}[scenario]
    return net, (ntk if scenario != "floor" else (lambda j, f: 1.0))


def gen_c4(scenario: str):
    """C4: nets and NTK on the same data. effect: the nets' local error falls with depth while the
    NTK's rises (the papers); none: the nets' local curve parallel to the NTK's; opposite: the nets'
    local error rises by more than the NTK's; floor: NTK at the trivial error at L_min and nets at 0
    (no room for the contrast to grow)."""
    def gen(rng, spec):
        seeds = _Seeds(rng, spec.n_seeds)
        net, kern = c4_curves(scenario)
        dep = _main_depths(spec)
        out = nets(spec, rng, _plan(spec), net, depths_of=dep, seeds=seeds,
                   diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
        return out + kernels(spec, rng, _plan(spec, "kernel"), kern, seeds)
    return gen


def gen_c5(scenario: str, margin: float = 0.02):
    """C5: many small data sets; the local-minus-global test MSE difference is 0 (effect: the theorem),
    at the margin (none), or 2 x the margin (opposite), at every (law, k, kernel, L)."""
    shift = {"effect": 0.0, "none": margin, "opposite": 2 * margin}[scenario]

    def gen(rng, spec):
        out = []
        for j in _all_jobs(spec):
            if j["kind"] != "blind":
                continue
            D, nd = len(j["dataset_seeds"]), len(j["depths"])
            base = 0.07 + 0.3 * np.array([_frac(L, j["depths"]) for L in j["depths"]])  # (nd,)
            common = rng.normal(0, 0.01, (D, 2, nd, 1))  # the data set's difficulty, both targets
            own = rng.normal(0, 0.01, (D, 2, nd, 2))
            mse = base[None, None, :, None] + common + own
            mse[..., 0] += shift
            out.append(Result(key="", params=j, status="done", metrics={"n_datasets": D, "depths": list(j["depths"]),
                                                                        "wall_s": 0.0},
                              inline_arrays={"mse": mse}))
        return out
    return gen


def gen_c6(scenario: str):
    """C6: main nets (alpha = 1) and lazy nets (alpha_max) at the control N and depths, plus the NTK.
    The interaction contrast IC = [glob(L_max) - glob(L_min)] - [loc(L_max) - loc(L_min)] is 2 x EFFECT
    at alpha = 1; at alpha_max it is 0 (effect: lazy nets follow the NTK), unchanged (none), larger
    (opposite). floor: no interplay at alpha = 1 (nothing to shrink); unconverged: the effect, but
    every lazy run stops at the epoch cap above the stopping rule; diverged: the effect with seed 0 of
    every lazy run diverged."""
    def gen(rng, spec):
        seeds = _Seeds(rng, spec.n_seeds)
        amax = max(spec.alphas)
        ctrl = [(k, spec.ctrl_n(k)) for k in spec.active_ks()]
        ntk = ntk_curve()
        main_curve = interplay(0.0, 0.0) if scenario == "floor" else interplay(-EFFECT, EFFECT)
        lazy_curve = {"effect": ntk, "unconverged": ntk, "diverged": ntk, "floor": ntk,
                      "none": main_curve, "opposite": interplay(-2 * EFFECT, 2 * EFFECT)}[scenario]
        dep = _ctrl_depths(spec)
        main = [j for j in _plan(spec) if (j["k"], j["n"]) in ctrl and j["depth"] in spec.ctrl_depths()]
        lazy = [j for j in _plan(spec, group="lazy") if j["alpha"] == amax]
        out = nets(spec, rng, main, main_curve, depths_of=dep, seeds=seeds)
        out += nets(spec, rng, lazy, lazy_curve, depths_of=dep, seeds=seeds,
                    reached=(lambda j: np.zeros(len(j["data_seeds"]), bool)) if scenario == "unconverged" else None,
                    diverged=(lambda j: np.arange(len(j["data_seeds"])) == 0) if scenario == "diverged" else None)
        kp = [j for j in _plan(spec, "kernel") if (j["k"], j["n"]) in ctrl]
        return out + kernels(spec, rng, kp, ntk, seeds)
    return gen


def gen_c6w(scenario: str):
    """C6W: the width sweep's ntk-parameterised nets at the control N and depths, plus their NTK (kernel job
    of group ``width``). IC is 2 x EFFECT at the narrowest width; at the widest it is 0 (effect: wide nets
    follow the NTK), unchanged (none) or larger (opposite); the middle widths halfway. floor: no interplay
    at the narrowest width; unconverged: the effect, but every widest run stops at the epoch cap;
    diverged: the effect with seed 0 of every widest run diverged."""
    def gen(rng, spec):
        seeds = _Seeds(rng, spec.n_seeds)
        hs = sorted(set(spec.width_sweep))
        ntk = ntk_curve()
        narrow = interplay(0.0, 0.0) if scenario == "floor" else interplay(-EFFECT, EFFECT)
        wide = {"effect": ntk, "unconverged": ntk, "diverged": ntk, "floor": ntk,
                "none": narrow, "opposite": interplay(-2 * EFFECT, 2 * EFFECT)}[scenario]

        def curve(j, f):
            h = hs.index(j["width"]) / max(len(hs) - 1, 1)
            return (1 - h) * narrow(j, f) + h * wide(j, f)

        widest = lambda j: j["width"] == hs[-1]  # noqa: E731
        n_of = lambda j: len(j["data_seeds"])  # noqa: E731
        out = nets(spec, rng, _plan(spec, group="width"), curve, depths_of=_ctrl_depths(spec), seeds=seeds,
                   reached=(lambda j: np.full(n_of(j), not widest(j))) if scenario == "unconverged" else None,
                   diverged=(lambda j: (np.arange(n_of(j)) == 0) & widest(j)) if scenario == "diverged" else None)
        return out + kernels(spec, rng, _plan(spec, "kernel", group="width"), ntk, seeds)
    return gen


def gen_c7(scenario: str):
    """C7: the robustness variants' nets at the control N and depths, under ``CURVES[scenario]``."""
    def gen(rng, spec):
        dep = _ctrl_depths(spec)
        return nets(spec, rng, _plan(spec, group="robust"), CURVES[scenario], depths_of=dep,
                    diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
    return gen


def gen_c8(scenario: str):
    """C8: the main grid; effect: every run interpolates; opposite: seed 0 of the deepest local net
    stops at the epoch cap; diverged: seed 0 of every deepest net diverged (a C8 violation too)."""
    def gen(rng, spec):
        dep = _main_depths(spec)
        unreached = None
        if scenario == "opposite":
            unreached = lambda j: ~((np.arange(len(j["data_seeds"])) == 0)  # noqa: E731
                                    & (j["depth"] == max(spec.depths)) & (j["target"] == "local"))
        return nets(spec, rng, _plan(spec), CURVES["effect"], depths_of=dep, reached=unreached,
                    diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
    return gen


def gen_x2(scenario: str, margin: float = 0.05):
    """X2 (nets): original and permuted nets at the control N and depths share data sets; the permuted
    error is shifted by 0 (effect: the symmetry), the margin (none) or 2 x the margin (opposite)."""
    shift = {"effect": 0.0, "none": margin, "opposite": 2 * margin, "diverged": 0.0}[scenario]

    def gen(rng, spec):
        seeds = _Seeds(rng, spec.n_seeds)
        ctrl = [(k, spec.ctrl_n(k)) for k in spec.active_ks()]
        base = CURVES["effect"]
        dep = _ctrl_depths(spec)
        main = [j for j in _plan(spec) if (j["k"], j["n"]) in ctrl and j["depth"] in spec.ctrl_depths()]
        perm = _plan(spec, group="x2")
        out = nets(spec, rng, main, base, depths_of=dep, seeds=seeds)
        out += nets(spec, rng, perm, lambda j, f: base(j, f) + shift, depths_of=dep, seeds=seeds,
                    diverged=_one_deep_seed_dead(dep) if scenario == "diverged" else None)
        return out
    return gen


def gen_x2k(scenario: str, bug: float = 1e-3):
    """X2K (kernels): the permuted kernel regression equals the original to rounding (effect), or a
    kernel that sees the permutation changes the NTK error by ``bug`` (opposite)."""
    def gen(rng, spec):
        seeds = _Seeds(rng, spec.n_seeds)
        ctrl = [(k, spec.ctrl_n(k)) for k in spec.active_ks()]
        kp = [j for j in _plan(spec, "kernel") if (j["k"], j["n"]) in ctrl]
        kx = _plan(spec, "kernel", group="x2")
        shift = {"effect": 1e-13, "opposite": bug}[scenario]
        return kernels(spec, rng, kp, ntk_curve(), seeds) + kernels(spec, rng, kx, ntk_curve(), seeds, perturb=shift)
    return gen


def _calibration() -> dict[str, dict[str, Callable]]:
    main = {s: gen_main(s) for s in SCENARIOS}
    return {
        "C1": main, "C2": main, "C3": main,
        "C4": {s: gen_c4(s) for s in SCENARIOS},
        "C5": {s: gen_c5(s) for s in ("effect", "none", "opposite")},
        "C6": {s: gen_c6(s) for s in ("effect", "none", "opposite", "floor", "unconverged", "diverged")},
        "C6W": {s: gen_c6w(s) for s in ("effect", "none", "opposite", "floor", "unconverged", "diverged")},
        "C7": {s: gen_c7(s) for s in SCENARIOS},
        "C8": {s: gen_c8(s) for s in ("effect", "opposite", "diverged")},
        "X2": {s: gen_x2(s) for s in ("effect", "none", "opposite", "diverged")},
        "X2K": {s: gen_x2k(s) for s in ("effect", "opposite")},
    }


# {claim id: {scenario: generator}} of study depth-locality
CALIBRATION: dict[str, dict[str, Callable]] = _calibration()
