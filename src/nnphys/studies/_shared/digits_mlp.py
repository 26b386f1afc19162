"""The digits-MLP gradient-noise experiment, once for every study that needs it.

Escape-rate T9/T9b and minibatch-noise C3/C12 (noise ∝ loss, decoupling; see the guides
``docs/studies/escape-rate.md`` and ``docs/studies/minibatch-noise.md``) use the same experiment: a ReLU MLP ``64-w-w-1`` trained by plain SGD on scikit-learn's
digits with even/odd labels ``y = ±1`` and the per-sample loss ``ℓ_μ = ½ (f(x_μ) - y_μ)²``;
every epoch the single-sample noise trace ``𝒩 = tr C_1`` (:func:`nnphys.gradnoise.gradient_noise`)
and the loss ``L`` are recorded, and at chosen epochs the spectra of the noise and curvature
matrices are probed.

Choices (tagged [paper], [derived] or [default]):

- init: Glorot (Xavier) **uniform** weights, zero biases [paper: "Glorot init"; uniform is our
  reading, the original Glorot & Bengio 2010 scheme]. One init for every study;
- data: ``load_digits(n_test=1797 - n_train, seed=split_seed)``, standardised; the split is shared
  by all training seeds (``split_seed`` = 0) [default]; a training seed changes only the init and
  the epoch reshuffling, drawn from ``derive(seed, "digits_mlp", "init")`` and
  ``derive(seed, "digits_mlp", "order")``;
- sampling: epoch reshuffling without replacement, ``N // B`` steps per epoch (the last partial
  batch is dropped) [default];
- the whole run uses one intra-op thread: float32 training and the float64 Gram eigensolves then
  give the same bits whatever the caller's thread count.

Probes. At each checkpoint every probe in ``probes`` is called as
``probe(model, loss_fn, X, y, top_k) -> dict`` (JSON-able) and stored under its name.
:data:`PROBES` holds two:

- ``"gauss_newton"``: the decoupling check of :func:`nnphys.gradnoise.decoupling_check`, which
  compares the spectrum of ``C = (1/N) Σ ℓ_μ C_f^(μ)`` ("coupled") with that of ``L · G``,
  ``G = (1/N) Σ C_f^(μ)`` the Gauss-Newton part of the Hessian ("decoupled");
- ``"hessian"`` (:func:`hessian_probe`): the same comparison with the full Hessian
  ``H = ∇²L`` in place of ``G`` (``nnphys.curvature``, Lanczos on Hessian-vector products, float64),
  plus ``λ_i(H)/λ_i(G)`` and the top-k eigenspace overlap of :func:`nnphys.curvature.hessian_vs_ggn`
  and the single-sample noise ``C_1`` along H's eigenvectors against ``2 L λ_i``.

:data:`GAUSS_NEWTON_RULE` states which probe the studies' verdicts are judged on [default].
:func:`mlp_config` builds a run's configuration from a study's typed ``mlp`` job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from nnphys.errors import ConfigError, Diverged
from nnphys.seeding import torch_generator

__all__ = ["DigitsNoiseConfig", "Probe", "PROBES", "GAUSS_NEWTON_RULE", "HESSIAN_TOL", "HESSIAN_K",
           "gauss_newton_probe",
           "hessian_probe", "mlp_config", "hessian_evidence", "hessian_summary", "probes_present", "glorot_uniform_mlp",
           "half_mse", "run_digits_noise", "late_slope", "worst_factor", "decoupling_by_epoch",
           "plot_decoupling", "NOISE_LOSS_MARGIN", "DECOUPLING_MARGIN", "BULK_FRACTION", "noise_loss_slopes",
           "decoupling_rms", "final_epoch", "rms_by_epoch"]

N_DIGITS = 1797

Probe = Callable[[nn.Module, Callable, torch.Tensor, torch.Tensor, int], dict]


@dataclasses.dataclass(frozen=True)
class DigitsNoiseConfig:
    """One run. ``checkpoints``: epochs (0 = at init) after which the probes run."""

    width: int
    epochs: int
    lr: float
    batch: int
    n_train: int
    top_k: int
    seed: int
    checkpoints: tuple[int, ...]
    device: str = "cpu"
    split_seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.n_train <= N_DIGITS - 1:
            raise ConfigError("n_train", f"must be in [1, {N_DIGITS - 1}] (got {self.n_train})")
        if not 1 <= self.batch <= self.n_train:
            raise ConfigError("batch", f"must be in [1, n_train = {self.n_train}] (got {self.batch})")
        if not 1 <= self.top_k <= self.n_train:
            raise ConfigError("top_k", f"must be in [1, n_train = {self.n_train}] (got {self.top_k})")
        bad = [c for c in self.checkpoints if not 0 <= c <= self.epochs]
        if bad:
            raise ConfigError("checkpoints", f"epochs must lie in [0, {self.epochs}] (got {bad})")


def half_mse(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-sample ``½ (f - y)²``, shape ``(N,)`` for outputs ``(N, 1)`` and targets ``(N,)``."""
    return 0.5 * (out.reshape(-1) - t) ** 2


def glorot_uniform_mlp(in_features: int, width: int, gen: torch.Generator) -> nn.Sequential:
    """``in-width-width-1`` ReLU MLP, weights ``U(-b, b)`` with ``b = sqrt(6 / (fan_in + fan_out))``
    (Glorot & Bengio 2010), biases 0, drawn from ``gen`` (CPU)."""
    model = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, 1))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                b = math.sqrt(6.0 / (m.in_features + m.out_features))
                m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * b)
                m.bias.zero_()
    return model


def gauss_newton_probe(model: nn.Module, loss_fn: Callable, X: torch.Tensor, y: torch.Tensor,
                       top_k: int) -> dict:
    """The decoupling check against the Gauss-Newton matrix (see the module doc), JSON-able."""
    from nnphys.gradnoise import decoupling_check

    dc = decoupling_check(model, loss_fn, (X, y), k=top_k)
    return {"coupled": dc.coupled_eigenvalues.tolist(), "decoupled": dc.decoupled_eigenvalues.tolist(),
            "ratio": dc.ratio.tolist(), "loss": dc.loss, "coupled_trace": dc.coupled_trace,
            "decoupled_trace": dc.decoupled_trace, "gauss_newton_trace": dc.gauss_newton_trace,
            "ch_alignment": dc.alignment, "ch_gamma": dc.gamma,
            "gn_eigenvalues": dc.gn_eigenvalues.tolist(), "coupled_along_gn": dc.coupled_along_gn.tolist()}


# Lanczos tolerance of the Hessian probe [default]: relative residual per eigenpair (nnphys.curvature's
# convergence rule). The eigenvalue error is bounded by r²/gap (reported as max_rel_bound), far below
# what the x1.5 criterion resolves, and 1e-4 stays above the float32 round-off of the products;
# lowering it buys little (the measurement is in docs/studies/minibatch-noise.md, "Costs").
HESSIAN_TOL = 1e-4
# Eigenpairs of the Hessian probe [default]: min(top_k, 10), to keep the quick presets within a ~20 %
# budget (measured cost: docs/studies/minibatch-noise.md, "Costs"). decoupling_by_epoch reports the
# Gauss-Newton probe's worst factor over the same top-k next to it.
HESSIAN_K = 10

# Which probe decides T9b / C12, fixed before any run with the Hessian probe was looked at.
GAUSS_NEWTON_RULE = (
    "[default] T9b/C12 verdicts are judged on the Gauss-Newton probe alone (the paper's object: the "
    "decoupling approximation is stated for C against L*G, G the Gauss-Newton part of the Hessian); the "
    "full-Hessian probe (H in place of G) is evidence only: its worst factor under the same x1.5 criterion, "
    "lambda(H)/lambda(G) and the top-k overlap are reported and the summary says when H would decide otherwise")


def _frozen_sq(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``½ w_μ |f_μ - f⁰_μ|²`` per sample, ``t = [f⁰ | w]`` of shape ``(N, Q + 1)``. At the
    parameters where ``f⁰ = f`` its Hessian is exactly ``(1/N) Σ w_μ C_f^(μ)``: the residual term
    ``(f - f⁰) ∇²f`` vanishes there (``w = 1``: the Gauss-Newton ``G``; ``w = ℓ``: the coupled ``C``)."""
    n = t.shape[0]
    return 0.5 * t[:, -1] * (out.reshape(n, -1) - t[:, :-1]).pow(2).sum(1)


def _loglog_slope(h: torch.Tensor, c: torch.Tensor) -> float:
    """Least-squares slope of ``log c`` on ``log h`` over the pairs with both > 0 (nan if < 2)."""
    pos = (h > 0) & (c > 0)
    if int(pos.sum()) < 2:
        return math.nan
    lh, lc = torch.log(h[pos]), torch.log(c[pos])
    lh0 = lh - lh.mean()
    den = float((lh0 * lh0).sum())
    return float((lh0 * (lc - lc.mean())).sum() / den) if den > 0 else math.nan


def hessian_probe(model: nn.Module, loss_fn: Callable, X: torch.Tensor, y: torch.Tensor, top_k: int, *,
                  tol: float = HESSIAN_TOL, k_max: int = HESSIAN_K, seed: int = 0) -> dict:
    """The decoupling check with the full Hessian ``H`` in place of ``G``, JSON-able.

    All three spectra come from thick-restart Lanczos (``nnphys.curvature``) on Hessian-vector
    products (double backward): ``H`` of ``loss_fn``, and ``G``, ``C`` as Hessians of
    :func:`_frozen_sq` at the current point. That is exact and, at this size, ~4x cheaper than
    ``hessian_vs_ggn``'s jvp-based Gauss-Newton product. Products are in the model's dtype (float32
    in the studies, as the Gauss-Newton probe's Gram), accumulated in float64 by the Lanczos solver;
    the model is not modified. ``k = min(top_k, k_max)``:

    - ``eigenvalues``: top-k (largest algebraic) of ``H``; ``ggn_eigenvalues``: of
      ``G = (1/N) Σ C_f^(μ)`` (the Gauss-Newton probe's matrix); ``eigenvalue_ratio = λ_i(H)/λ_i(G)``;
      ``overlap = ||U_Hᵀ U_G||_F² / k`` (the quantities of :func:`nnphys.curvature.hessian_vs_ggn`);
      ``max_rel_bound`` (largest eigenvalue error bound over ``|λ_i|``), ``n_matvec`` of the H
      solve, ``converged`` (H and G);
    - ``coupled``: top-k of ``C = (1/N) Σ ℓ_μ C_f^(μ)``, the Gauss-Newton probe's coupled matrix;
      ``decoupled = L λ_i(H)``; ``ratio = coupled / decoupled`` (nan where ``λ_i(H) <= 0``;
      ``n_nonpositive`` counts them);
    - ``coupled_along_h``: ``v_iᵀ C v_i`` along H's eigenvectors; ``ch_gamma``: slope of its log on
      ``log λ_i`` (1 under decoupling); ``ch_alignment``: ``cos(VᵀCV, diag λ)`` in H's top-k space
      (the Gauss-Newton probe's ``ch_alignment`` is over the whole space: not the same number);
    - ``noise_ratio``: ``v_iᵀ C_1 v_i / (2 L λ_i)`` with the single-sample noise covariance ``C_1``
      (mean gradient removed; minibatch-noise ``Σ ≈ (2L/S) H``), ``noise_cosine`` its top-k cosine;
      ``noise_ratio_ggn``, ``noise_cosine_ggn`` the same along G's eigenvectors.
    """
    from nnphys.curvature import CurvatureOperator
    from nnphys.curvature.lanczos import lanczos_top
    from nnphys.curvature.outlook import noise_along

    k = min(top_k, k_max)
    with torch.no_grad():
        out = model(X)
        ell = loss_fn(out, y).detach().clamp_min(0.0)
    big_l = float(ell.double().mean())
    f0 = out.detach().reshape(X.shape[0], -1)
    op = CurvatureOperator(model, loss_fn, (X, y), curvature="hessian")
    ops = {name: CurvatureOperator(model, _frozen_sq, (X, torch.cat([f0, w[:, None]], 1)), curvature="hessian")
           for name, w in (("G", torch.ones_like(ell)), ("C", ell))}
    H = lanczos_top(op, k, tol=tol, seed=seed)
    G = lanczos_top(ops["G"], k, tol=tol, seed=seed)
    ce = lanczos_top(ops["C"], k, tol=tol, seed=seed).eigenvalues.clamp_min(0.0)
    lam, V = H.eigenvalues, H.eigenvectors
    de = big_l * lam
    ratio = torch.where(de > 0, ce / torch.where(de > 0, de, torch.ones_like(de)), torch.full_like(de, math.nan))
    VCV = V.T @ torch.stack([ops["C"].matvec(V[:, i]) for i in range(k)], 1)
    c_along = torch.diagonal(VCV)
    D = torch.diag(lam)
    den = float(VCV.norm() * D.norm())
    # f_B = 1: the noise of single samples, C_1 (hessian_vs_ggn's alignment with batch_size=1, with replacement)
    _, _, nr, ncos = noise_along(op, V, lam, 1.0)
    _, _, nr_g, ncos_g = noise_along(op, G.eigenvectors, G.eigenvalues, 1.0)
    return {"coupled": ce.tolist(), "decoupled": de.tolist(), "ratio": ratio.tolist(), "loss": big_l,
            "n_nonpositive": int((lam <= 0).sum()), "eigenvalues": lam.tolist(),
            "ggn_eigenvalues": G.eigenvalues.tolist(), "eigenvalue_ratio": (lam / G.eigenvalues).tolist(),
            "overlap": float((V.T @ G.eigenvectors).pow(2).sum()) / k,
            "n_matvec": int(H.n_matvec), "converged": bool(H.converged and G.converged),
            "max_rel_bound": float((H.bounds / lam.abs().clamp_min(1e-300)).max()),
            "coupled_along_h": c_along.tolist(), "ch_gamma": _loglog_slope(lam, c_along),
            "ch_alignment": float((VCV * D).sum()) / den if den > 0 else math.nan,
            "noise_ratio": nr.tolist(), "noise_cosine": ncos, "noise_ratio_ggn": nr_g.tolist(), "noise_cosine_ggn": ncos_g}


# the default probes: the paper's Gauss-Newton comparison and the full Hessian next to it
PROBES: Mapping[str, Probe] = {"gauss_newton": gauss_newton_probe, "hessian": hessian_probe}


@contextlib.contextmanager
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def run_digits_noise(cfg: DigitsNoiseConfig, probes: Mapping[str, Probe] | None = None) -> dict[str, Any]:
    """Train and measure (module doc). Returns a JSON-able dict:

    ``loss``, ``trace_cov`` (``𝒩 = tr C_1``), ``trace_noise`` (``tr C_B``, without replacement),
    ``grad_norm``: lists of length ``epochs + 1`` (epoch 0 = init); ``checkpoints``:
    ``{str(epoch): {probe name: probe dict}}``; ``N``, ``B``, ``epochs``, ``sampling``, ``init``.
    Raises :class:`~nnphys.errors.Diverged` when the loss turns non-finite.
    """
    from nnphys.data import load_digits
    from nnphys.gradnoise import gradient_noise

    probes = PROBES if probes is None else probes
    with _one_thread():
        dev = torch.device(cfg.device)
        ds = load_digits(n_test=N_DIGITS - cfg.n_train, seed=cfg.split_seed)
        X = ds.x_train[: cfg.n_train].to(dev)
        y = (1.0 - 2.0 * (ds.y_train[: cfg.n_train] % 2).to(torch.float32)).to(dev)  # +1 even, -1 odd
        model = glorot_uniform_mlp(X.shape[1], cfg.width, torch_generator(cfg.seed, "digits_mlp", "init")).to(dev)
        order = torch_generator(cfg.seed, "digits_mlp", "order")
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        N, B = X.shape[0], cfg.batch
        rec: dict[str, list[float]] = {"loss": [], "trace_cov": [], "trace_noise": [], "grad_norm": []}
        checks: dict[str, dict] = {}
        for ep in range(cfg.epochs + 1):
            gn = gradient_noise(model, half_mse, (X, y), batch_size=B, replacement=False)
            for k in rec:
                rec[k].append(float(getattr(gn, k)))
            if not math.isfinite(gn.loss):
                raise Diverged("MLP loss became non-finite", {"epoch": ep, "loss": rec["loss"]})
            if ep in cfg.checkpoints:
                checks[str(ep)] = {name: p(model, half_mse, X, y, cfg.top_k) for name, p in probes.items()}
            if ep == cfg.epochs:
                break
            perm = torch.randperm(N, generator=order).to(dev)
            for i in range(N // B):
                idx = perm[i * B:(i + 1) * B]
                opt.zero_grad()
                half_mse(model(X[idx]), y[idx]).mean().backward()
                opt.step()
    return {**rec, "checkpoints": checks, "N": N, "B": B, "epochs": cfg.epochs,
            "sampling": "epoch reshuffling (without replacement)", "init": "glorot_uniform"}


def late_slope(loss, trace_cov, start: float = 0.5) -> dict[str, float]:
    """Least-squares slope of ``log 𝒩`` on ``log L`` over epochs ``[start·n, n)`` (``n`` records;
    escape-rate T9, minibatch-noise C3): ``slope``, its ``se``, ``r2``, ``n`` points used and
    ``slope_early`` (the same fit before ``start·n``). Non-positive values are dropped; nan when
    fewer than 3 points remain."""
    L, Nn = np.asarray(loss, float), np.asarray(trace_cov, float)
    cut = int(start * len(L))

    def fit(a, b):
        ok = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
        n = int(ok.sum())
        if n < 3:
            return math.nan, math.nan, math.nan, n
        # ordinary least squares in closed form (scipy.stats.linregress's numbers, without its
        # per-call overhead: the calibration harness calls this thousands of times)
        x, y = np.log(a[ok]), np.log(b[ok])
        dx, dy = x - x.mean(), y - y.mean()
        sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
        if sxx == 0:
            return math.nan, math.nan, math.nan, n
        slope = sxy / sxx
        r2 = sxy * sxy / (sxx * syy) if syy > 0 else 1.0
        se = math.sqrt(max(syy - slope * sxy, 0.0) / (n - 2) / sxx)
        return slope, se, r2, n

    s, se, r2, n = fit(L[cut:], Nn[cut:])
    s0 = fit(L[:cut], Nn[:cut])[0]
    return {"slope": s, "se": se, "r2": r2, "n": n, "slope_early": s0,
            "loss_range": [float(np.min(L[cut:])), float(np.max(L[cut:]))] if len(L[cut:]) else [math.nan, math.nan]}


# ------------------------------------------------------------------------------------------------
# The statistics the two studies judge (escape-rate T9/T9b, minibatch-noise C3/C12): one function
# per claim, seeds (independent training runs) as the unit. The studies wrap them in their
# pre-registered protocol rules; the margins live here so both studies use the same numbers.
# ------------------------------------------------------------------------------------------------

# [default] equivalence margin on the late log-log slope of N against L (noise ∝ loss: slope 1). The
# T9 band [0.8, 1.2] (docs/studies/escape-rate.md): a slope of 0.8 or 1.2 changes N by a factor 10^{±0.2} ≈ 1.6
# per decade of loss, the smallest departure from proportionality a log-log plot like the paper's
# Fig. 2 shows.
NOISE_LOSS_MARGIN = 0.2
# [default] equivalence margin on the root-mean-square log ratio of coupled to decoupled top-k
# eigenvalues: a factor 1.5 (T9's "x1.5"), now on the typical (RMS) rank instead of the worst
# one, because the paper compares the two spectra as histograms (qualitative agreement), not rank by
# rank at their extremes.
DECOUPLING_MARGIN = math.log(1.5)
# [default] the bulk left out of the decoupling comparison: ranks whose decoupled eigenvalue is below
# this fraction of the largest one (the paper: agreement "except for very small eigenvalues"; two
# decades below the top on its log-scaled histograms).
BULK_FRACTION = 1e-2


def noise_loss_slopes(runs: list[dict], start: float = 0.5) -> np.ndarray:
    """Per run (seed): the least-squares slope of ``log 𝒩`` on ``log L`` over the last ``1 - start``
    of the epochs (:func:`late_slope`), shape ``(n_runs,)``; nan where fewer than 3 positive points.
    The unit of the claim's test is the run, not the epoch (consecutive epochs of one run are
    autocorrelated, so an OLS standard error over epochs understates the uncertainty)."""
    return np.array([late_slope(m["loss"], m["trace_cov"], start)["slope"] for m in runs], float)


def rms_by_epoch(m: dict, probe: str = "gauss_newton") -> dict[str, float]:
    """:func:`decoupling_rms` of one run at every checkpoint that has ``probe`` (init and
    mid-training reported next to the judged end; ``probe="hessian"``: the full-Hessian probe as
    evidence)."""
    return {ep: decoupling_rms(m, ep, probe)["rms"] for ep in sorted(m["checkpoints"], key=int)
            if probe in m["checkpoints"][ep]}


def final_epoch(m: dict) -> str:
    """The last checkpoint epoch of one run (the spectral comparison is judged after training)."""
    return max(m["checkpoints"], key=int)


def decoupling_rms(m: dict, epoch: str | None = None, probe: str = "gauss_newton",
                   bulk: float = BULK_FRACTION) -> dict:
    """The pre-registered spectral comparison of one run at one checkpoint (default: the last):
    ``rms`` = sqrt(mean_i log²(c_i / d_i)) over the top-k ranks ``i`` whose decoupled eigenvalue
    ``d_i >= bulk · d_1`` (the bulk left out), ``c_i`` the coupled eigenvalue of the same rank;
    also ``mean_log`` (the signed mean), ``k_used`` and ``worst`` (:func:`worst_factor` over the
    used ranks). A non-positive coupled eigenvalue among the used ranks gives ``rms = inf``."""
    ep = final_epoch(m) if epoch is None else str(epoch)
    d = m["checkpoints"][ep][probe]
    c, dd = np.asarray(d["coupled"], float), np.asarray(d["decoupled"], float)
    keep = dd >= bulk * dd.max() if dd.size and dd.max() > 0 else np.zeros(dd.shape, bool)
    if not keep.any():
        return {"epoch": ep, "rms": math.nan, "mean_log": math.nan, "k_used": 0, "worst": math.nan}
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(c[keep] > 0, np.log(np.maximum(c[keep], 1e-300) / dd[keep]), np.inf)
    return {"epoch": ep, "rms": float(np.sqrt(np.mean(lr ** 2))), "mean_log": float(np.mean(lr)),
            "k_used": int(keep.sum()), "worst": worst_factor(np.exp(lr))}


def worst_factor(ratios) -> float:
    """``max_i max(r_i, 1/r_i)`` over the non-nan ratios (how far two spectra are apart, either way)."""
    r = np.asarray(ratios, float)
    r = r[np.isfinite(r)]  # nan: a zero decoupled eigenvalue (no ratio); 0 stays and gives inf
    with np.errstate(divide="ignore"):
        return float(np.max(np.maximum(r, 1 / r))) if r.size else math.nan


def decoupling_by_epoch(m: dict, probe: str = "gauss_newton") -> dict[str, dict]:
    """One probe of one :func:`run_digits_noise` output, per checkpoint epoch (sorted; epochs
    without that probe are left out): ``{epoch: {max_ratio, ratios, loss, ch_alignment, ch_gamma}}``;
    ``max_ratio`` is :func:`worst_factor` of the coupled/decoupled top-k eigenvalue ratios
    (escape-rate T9b, minibatch-noise C12 read this one function). For ``probe="hessian"`` also
    ``h_over_g`` (``λ_i(H)/λ_i(G)``), its worst factor ``h_over_g_worst``, ``overlap``,
    ``noise_ratio``, ``n_nonpositive`` and ``gn_max_ratio_same_k``, the Gauss-Newton probe's worst
    factor over the same (top ``k_max``) eigenvalues when that probe is there."""
    per = {}
    for ep, probes in sorted(m["checkpoints"].items(), key=lambda kv: int(kv[0])):
        d = probes.get(probe)
        if d is None:
            continue
        per[ep] = {"max_ratio": worst_factor(d["ratio"]), "ratios": d["ratio"], "loss": d["loss"],
                   # the C-H alignment is reported (C ∝ H^gamma, 1 <= gamma <= 2 reported elsewhere)
                   "ch_alignment": d["ch_alignment"], "ch_gamma": d["ch_gamma"]}
        if "eigenvalue_ratio" in d:
            gn = probes.get("gauss_newton")
            per[ep].update(h_over_g=d["eigenvalue_ratio"], h_over_g_worst=worst_factor(d["eigenvalue_ratio"]),
                           overlap=d["overlap"], noise_ratio=d["noise_ratio"], n_nonpositive=d["n_nonpositive"],
                           gn_max_ratio_same_k=worst_factor(gn["ratio"][:len(d["ratio"])]) if gn else math.nan)
    return per


def hessian_evidence(runs: list[dict], judged_epochs=None, band: float = 1.5) -> dict:
    """The full-Hessian probe of ``runs`` (e.g. one per seed) as claim evidence [default rule:
    :data:`GAUSS_NEWTON_RULE`]: ``by_epoch`` ``{epoch: {max_ratio, h_over_g_worst, overlap,
    ch_alignment, ch_gamma, n_nonpositive: one value per run}}`` and ``holds_same_criterion``:
    whether every ``max_ratio`` at ``judged_epochs`` (default all) is ``<= band`` (None when no
    run has the probe, e.g. results of an older schema)."""
    per_run = [decoupling_by_epoch(m, "hessian") for m in runs]
    eps = sorted({ep for p in per_run for ep in p}, key=int)
    keys = ("max_ratio", "gn_max_ratio_same_k", "h_over_g_worst", "overlap", "ch_alignment", "ch_gamma",
            "n_nonpositive")
    by = {ep: {k: [p[ep][k] for p in per_run if ep in p] for k in keys} for ep in eps}
    judged = [ep for ep in eps if judged_epochs is None or ep in {str(e) for e in judged_epochs}]
    holds = None if not judged else all(v <= band for ep in judged for v in by[ep]["max_ratio"])
    ks = {len(m["checkpoints"][ep]["hessian"]["ratio"]) for m in runs for ep in m["checkpoints"]
          if "hessian" in m["checkpoints"][ep]}
    return {"by_epoch": by, "holds_same_criterion": holds, "judged_epochs": judged, "top_k": max(ks, default=0),
            "criterion": f"the verdict's x{band:g} criterion with L lambda_i(H) as the decoupled side"}


def hessian_summary(ev: dict, gn_holds: bool) -> str:
    """One line for a claim summary from :func:`hessian_evidence`."""
    if ev["holds_same_criterion"] is None:
        return "full Hessian: not computed"
    f = lambda vs: "/".join(f"{v:.2f}" for v in vs)  # noqa: E731
    same = "agrees" if ev["holds_same_criterion"] == gn_holds else "would decide otherwise"
    k = ev.get("top_k", "k")
    return (f"full Hessian [evidence, default rule], top-{k}: max ratio " + ", ".join(
        f"{ep}: {f(v['max_ratio'])}" for ep, v in ev["by_epoch"].items()) + f" (Gauss-Newton over the same top-{k}: "
        + ", ".join(f"{ep}: {f(v['gn_max_ratio_same_k'])}" for ep, v in ev["by_epoch"].items())
        + "); lambda(H)/lambda(G) worst "
        + ", ".join(f"{ep}: {f(v['h_over_g_worst'])}" for ep, v in ev["by_epoch"].items()) + "; top-k overlap "
        + ", ".join(f"{ep}: {f(v['overlap'])}" for ep, v in ev["by_epoch"].items())
        + f"; same criterion on H: {'holds' if ev['holds_same_criterion'] else 'fails'} ({same})")


def probes_present(runs) -> list[str]:
    """The probes of :data:`PROBES` that ``runs[0]`` recorded, in :data:`PROBES` order (one figure
    row each in the studies' decoupling figures)."""
    seen = {name for d in runs[0]["checkpoints"].values() for name in d}
    return [p for p in PROBES if p in seen]


def _nice_log_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[float]:
    """At most ``max_ticks`` readable ticks in ``[lo, hi]`` on a log axis: powers of ten when at least
    two fit, else 1-3 (then 1-2-5) steps of each decade, else three rounded points; thinned when too many."""
    import math as _m

    e0, e1 = _m.floor(_m.log10(lo)), _m.ceil(_m.log10(hi))
    for mant in ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0)):
        t = [m * 10.0**e for e in range(e0, e1 + 1) for m in mant if lo <= m * 10.0**e <= hi]
        if len(t) >= 2:
            break
    else:  # a range narrower than 1-2-5 steps: three points rounded to two significant digits
        t = sorted({v for v in (float(f"{x:.2g}") for x in np.geomspace(lo, hi, 3)) if lo <= v <= hi})
    step = 1
    while len(t[::step]) > max_ticks:
        step += 1
    return t[::step]


def _tick_label(v: float) -> str:
    """``0.02``, ``5``, ``300``; scientific only far from 1 (``1e-05``), so labels stay short."""
    return f"{v:g}"


def plot_decoupling(axes, runs, labels=None, probe: str = "gauss_newton", band: float = 1.5) -> None:
    """Coupled against decoupled top-k eigenvalues, one matplotlib axis per checkpoint epoch (the
    checkpoints of ``runs[0]``), one marker series per run (e.g. per seed), the diagonal and the
    ``x band`` region shaded. ``probe`` picks the comparison (a full-Hessian probe draws the same
    way, with ``L λ(H)`` as the decoupled side). Escape-rate T9b and minibatch-noise C12 figures.

    Both axes share one range (the diagonal is the diagonal) and carry at most five labelled major
    ticks (:func:`_nice_log_ticks`) and no minor labels, so tick labels never overlap (matplotlib's
    default labels minor ticks on an axis spanning less than a decade, ``2x10^-2 3x10^-2 ...``)."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    eps = sorted(runs[0]["checkpoints"], key=int)
    labels = labels or (["top-k eigenvalues"] if len(runs) == 1 else [f"run {i}" for i in range(len(runs))])
    for ax, ep in zip(axes, eps):
        vals = []
        for i, (run, lab) in enumerate(zip(runs, labels)):
            d = run["checkpoints"].get(ep, {}).get(probe)
            if d is None:
                continue
            x, y = np.asarray(d["decoupled"], float), np.asarray(d["coupled"], float)
            ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
            ax.plot(x[ok], y[ok], "o", ms=3, mfc="none", color=f"C{i}", label=lab)
            vals += x[ok].tolist() + y[ok].tolist()
        if vals:
            lo, hi = min(vals) * 0.7, max(vals) * 1.4
            g = np.geomspace(lo, hi, 20)
            ax.plot(g, g, "k-", lw=0.8, label="coupled = decoupled")
            ax.fill_between(g, g / band, g * band, color="grey", alpha=0.2, lw=0, label=f"within ×{band:g}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ticks = _nice_log_ticks(lo, hi)
            for a in (ax.xaxis, ax.yaxis):
                a.set_major_locator(FixedLocator(ticks))
                a.set_major_formatter(_tick_formatter(ticks))
                a.set_minor_formatter(NullFormatter())
        which = "L λ(H), full Hessian" if probe == "hessian" else "L (1/N) Σ C_f, Gauss-Newton"
        name = "full Hessian" if probe == "hessian" else "Gauss-Newton"
        ax.set(xlabel=f"decoupled: {which}", ylabel="coupled: (1/N) Σ ℓ C_f", title=f"epoch {ep} ({name})")


def _tick_formatter(ticks):
    """A formatter that labels exactly ``ticks`` with :func:`_tick_label`."""
    from matplotlib.ticker import FuncFormatter

    labelled = {float(t): _tick_label(t) for t in ticks}
    return FuncFormatter(lambda v, _pos: next((s for t, s in labelled.items() if abs(v - t) <= 1e-9 * abs(t)), ""))


def mlp_config(job: Any, mid_epoch: int) -> DigitsNoiseConfig:
    """The run of a study's typed ``mlp`` job (fields ``width``, ``epochs``, ``lr``, ``batch``,
    ``n_train``, ``top_k``, ``seed``, ``device``), probed at init, ``mid_epoch`` and the end."""
    e = job.epochs
    return DigitsNoiseConfig(width=job.width, epochs=e, lr=job.lr, batch=job.batch, n_train=job.n_train,
                             top_k=job.top_k, seed=job.seed, checkpoints=tuple(sorted({0, mid_epoch, e})),
                             device=job.device)
