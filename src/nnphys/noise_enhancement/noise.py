"""The gradient noise of noise-enhanced SGD, measured exactly on a net (claims C1, C2 of the
noise-enhancement study; guide ``docs/studies/noise-enhancement.md``, "How the C2 probe works").

Theory [derived]: with ``g_NE = (1 + a) g_B - a g_B'`` the covariance ratio is

    tr Cov[g_NE] / tr Cov[g_B] = f(a)                                  (independent, replacement)
                               = f(a) + 2 a (1 + a) B / (N - B)        (split: B, B' disjoint)

with ``f(a) = 1 + 2a + 2a^2`` (:func:`~nnphys.noise_enhancement.optimizer.ne_covariance_factor`) and
``tr Cov[g_B] = c_B tr C``, ``c_B`` the SGD factor :func:`nnphys.gradnoise.noise_factor`
(``1/B`` with replacement, ``(N - B)/(B (N - 1))`` without).

Measurement: the per-sample-gradient Gram matrix ``K_ij = <grad l_i, grad l_j>`` of an MLP
(:func:`per_sample_gram`, exact, no per-sample gradients formed); centred, ``Kc``, it gives every
squared deviation ``|g_w - gbar|^2 = w^T Kc w`` of a batch mean with weights ``w`` exactly, so
:func:`probe_noise` computes the trace ratio over many minibatch pairs without a parameter-space
vector. :func:`noise_shape` compares the principal subspaces (C2's "shape unchanged");
:func:`toy_noise` is the finite-population toy (scalar per-sample gradients).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from nnphys.errors import ConfigError
from nnphys.gradnoise import noise_factor
from nnphys.noise_enhancement.optimizer import ne_covariance_factor, ne_update_
from nnphys.noise_enhancement.sampling import draw_pairs

__all__ = ["ne_trace_ratio", "per_sample_gram", "noise_shape", "probe_noise", "toy_noise"]


def ne_trace_ratio(alpha: float, b: int, n: int, mode: str) -> float:
    """``tr Cov[g_NE] / tr Cov[g_B]`` [derived]: ``f`` (independent, replacement) and
    ``f + 2 alpha (1 + alpha) B / (N - B)`` (split)."""
    f = ne_covariance_factor(alpha)
    return f + 2 * alpha * (1 + alpha) * b / (n - b) if mode == "split" else f


def per_sample_gram(model, x: torch.Tensor, y: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample-gradient Gram matrix ``K_ij = <grad l_i, grad l_j>`` of a one-member
    :class:`~nnphys.nets.MLPEnsemble`, exactly, without forming per-sample gradients.

    The member as a plain net (:meth:`~nnphys.nets.MLPEnsemble.to_modules`, the same parameters and
    function) handed to :func:`nnphys.gradnoise.per_sample_gram`, the library's one per-sample Gram:
    for each layer ``z = c_w a W^T + c_b b``, ``K += (A A^T) * (Delta Delta^T) + Delta Delta^T`` from its
    inputs and back-propagated signals (``c_w = c_b = 1``, the standard parameterisation; scaled
    layers go through materialised per-sample gradients). ``x``: ``(N, d)``; ``kind``:
    ``classification`` (cross-entropy) or ``regression`` (squared error of output 0). Returns
    ``(K (N, N), losses (N,))`` in float64.
    """
    from nnphys.gradnoise import per_sample_gram as gram

    if model.n_members != 1:
        raise ConfigError("model", f"per_sample_gram needs a one-member ensemble (got {model.n_members} members)")
    net = model.to_modules()[0]
    x = x.to(model.weights[0].dtype)

    def losses(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if kind == "regression":
            return (out[:, 0] - t) ** 2
        return torch.nn.functional.cross_entropy(out, t, reduction="none")

    return gram(net, losses, (x, y))


def noise_shape(Kc: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor, alphas: list[float], m: int = 40,
                k: int = 5) -> dict[str, Any]:
    """Top-``k`` principal subspaces of the sampled covariances of ``g_B`` and ``g_NE`` (C2 shape).

    ``Kc``: the centred per-sample-gradient Gram matrix ``(N, N)``; ``ia``, ``ib``: ``(R, B)`` rows of
    ``B`` and ``B'`` per draw. With ``Kc = Q diag(lam) Q^T`` and ``G_c = Q lam^(1/2) H^T`` (``H``
    orthonormal), ``g_w - gbar = H lam^(1/2) Q^T w`` for batch weights ``w`` summing to 1, so the draws
    are represented exactly by their coordinates on ``H``'s columns, truncated to the top ``m``
    eigen-directions of ``C``. Returns, per alpha, ``overlap_sgd = |E_NE^T E_B|_F^2 / k`` and
    ``overlap_exact`` (against the exact top-``k`` directions of ``C``), ``sgd_overlap_exact``,
    ``m`` and the fraction of ``tr C`` held by the ``m`` directions.
    """
    evals, evecs = torch.linalg.eigh(Kc)
    m = min(m, Kc.shape[0] - 1)
    lam, Q = evals.flip(0)[:m].clamp_min(0), evecs.flip(1)[:, :m]
    za, zb = Q[ia].mean(1) * lam.sqrt(), Q[ib].mean(1) * lam.sqrt()  # (R, m)

    def top(z: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigh(z.T @ z / len(z))[1].flip(1)[:, :k]

    def overlap(e1: torch.Tensor, e2: torch.Tensor) -> float:
        return float((e1.T @ e2).pow(2).sum() / k)

    e_sgd = top(za)
    exact = torch.eye(m, dtype=Kc.dtype)[:, :k]
    e_ne = {a: top((1 + a) * za - a * zb) for a in alphas}
    return {"overlap_sgd": {a: overlap(e, e_sgd) for a, e in e_ne.items()},
            "overlap_exact": {a: overlap(e, exact) for a, e in e_ne.items()},
            "sgd_overlap_exact": overlap(e_sgd, exact), "m": m,
            "trace_fraction": float(lam.sum() / torch.diagonal(Kc).sum())}


def probe_noise(K: torch.Tensor, b: int, draws: int, mode: str, alphas: list[float], bootstrap: int,
                gen: torch.Generator) -> dict[str, Any]:
    """Noise factor of NE from the Gram matrix ``K`` ``(N, N)`` over ``draws`` minibatch pairs of ``mode``.

    With ``Kc`` the centred Gram matrix, ``|g_B - gbar|^2 = 1^T Kc[B, B] 1 / B^2`` (and the cross
    and ``B'`` terms alike), so ``|g_NE - gbar|^2`` is exact per draw; every alpha uses the same
    draws. Returns per alpha the measured ratio with a 99% bootstrap CI over draws, the theory
    (:func:`ne_trace_ratio`), C1's z-scores of the mean of ``g_NE`` projected on 4 directions (the
    mean gradient and 3 per-sample gradients) and C2's subspace overlaps (:func:`noise_shape`).
    """
    n = K.shape[0]
    Kc = K - K.mean(0, keepdim=True)
    Kc = (Kc - Kc.mean(1, keepdim=True)).cpu()
    tr_c = float(torch.diagonal(Kc).mean())  # tr C = (1/N) sum |g_i - gbar|^2
    ia, ib = draw_pairs(n, b, draws, mode, gen)
    q_aa, q_ab, q_bb = (torch.empty(draws, dtype=torch.float64) for _ in range(3))
    ch = max(1, 2**22 // (b * b))
    for s in range(0, draws, ch):
        a, c = ia[s:s + ch], ib[s:s + ch]
        q_aa[s:s + ch] = Kc[a[:, :, None], a[:, None, :]].sum((1, 2)) / b**2
        q_ab[s:s + ch] = Kc[a[:, :, None], c[:, None, :]].sum((1, 2)) / b**2
        q_bb[s:s + ch] = Kc[c[:, :, None], c[:, None, :]].sum((1, 2)) / b**2
    anchors = torch.randperm(n, generator=gen)[:3].tolist()
    Kcpu = K.cpu()
    dirs = [Kcpu.mean(1) / max(float(Kcpu.mean()), 1e-300) ** 0.5]  # <g_i, gbar / |gbar|>
    dirs += [Kcpu[:, j] / max(float(Kcpu[j, j]), 1e-300) ** 0.5 for j in anchors]  # <g_i, g_j / |g_j|>
    P = torch.stack(dirs, dim=1)  # (N, 4): <g_i, unit direction>
    pa, pb = P[ia].mean(1), P[ib].mean(1)  # (draws, 4)
    pbar = P.mean(0)
    shape = noise_shape(Kc, ia, ib, alphas)
    rb = torch.randint(0, draws, (bootstrap, draws), generator=gen)
    c_b = noise_factor(n, b, replacement=mode == "replacement")  # tr Cov[g_B] / tr C: the SGD factor c_B
    per_alpha = []
    for a in alphas:
        num = (1 + a) ** 2 * q_aa - 2 * a * (1 + a) * q_ab + a * a * q_bb  # |g_NE - gbar|^2 per draw
        ratio = float(num.mean() / q_aa.mean())
        boot = (num[rb].mean(1) / q_aa[rb].mean(1)).numpy()
        lo, hi = np.quantile(boot, [0.005, 0.995])
        pne = (1 + a) * pa - a * pb
        z = ((pne.mean(0) - pbar) / (pne.std(0) / math.sqrt(draws))).tolist()
        theory = ne_trace_ratio(a, b, n, mode)
        per_alpha.append({"alpha": a, "f": ne_covariance_factor(a), "theory": theory,
                          "ratio": ratio, "ci99": [float(lo), float(hi)], "mean_z": z,
                          "overlap_sgd": shape["overlap_sgd"][a], "overlap_exact": shape["overlap_exact"][a],
                          "tr_ne": float(num.mean()), "tr_ne_theory": theory * c_b * tr_c})
    return {"n": n, "batch_size": b, "sampling": mode, "draws": draws, "tr_c": tr_c,
            "grad_norm2": float(Kcpu.mean()), "sgd_trace": float(q_aa.mean()),
            "sgd_trace_se": float(q_aa.std() / math.sqrt(draws)), "sgd_trace_theory": c_b * tr_c,
            "per_alpha": per_alpha, "shape_top_m": shape["m"],
            "shape_top_m_trace_fraction": shape["trace_fraction"], "sgd_overlap_exact": shape["sgd_overlap_exact"]}


def toy_noise(n: int, b: int, draws: int, alphas: list[float], gen: torch.Generator,
              chunk: int = 100_000) -> dict[str, Any]:
    """The finite-population toy: scalar per-sample gradients ``g_i = z_i^2`` (skewed, like real ones), ``N = n``,
    batches of ``b`` in the three modes, ``draws`` draws each; ``g_NE`` is computed by
    :func:`~nnphys.noise_enhancement.optimizer.ne_update_` (lr = 1 from 0). Returns per mode the mean deviation of
    ``g_NE`` from the exact gradient with its s.e. (C1) and ``Var[g_NE] / Var[g_B]`` with its s.e.
    against :func:`ne_trace_ratio` (C2), ``Var[g_B]`` exact from :func:`nnphys.gradnoise.noise_factor`
    (without replacement in modes ``split`` and ``independent``).
    """
    gi = torch.randn(n, generator=gen, dtype=torch.float64) ** 2
    C = float(gi.var(correction=0))
    gbar = float(gi.mean())
    out: dict[str, Any] = {"n": n, "batch_size": b, "draws": draws, "C": C, "modes": {}}
    modes = ("split", "independent", "replacement")
    sums = {(mo, a): torch.zeros(3, dtype=torch.float64) for mo in modes for a in alphas}  # sum d, d^2, d^4
    sgd = {mo: torch.zeros(2, dtype=torch.float64) for mo in modes}  # sum d^2, d^4 of g_B
    for s in range(0, draws, chunk):
        r = min(chunk, draws - s)
        # two split-mode draws (2B distinct rows each); `independent` pairs the first halves of the two
        s1a, s1b = draw_pairs(n, b, r, "split", gen)
        s2a, _ = draw_pairs(n, b, r, "split", gen)
        ra, rb = draw_pairs(n, b, r, "replacement", gen)
        for mode, (ia, ib) in zip(modes, ((s1a, s1b), (s1a, s2a), (ra, rb))):
            ga, gb = gi[ia].mean(1), gi[ib].mean(1)
            sgd[mode] += torch.stack([((ga - gbar) ** 2).sum(), ((ga - gbar) ** 4).sum()])
            for a in alphas:
                p = torch.zeros(r, dtype=torch.float64)
                ne_update_([p], [ga], [gb], 1.0, a)  # lr = 1 from 0: p = -g_NE, via the library
                d = -p - gbar
                sums[mode, a] += torch.stack([d.sum(), (d**2).sum(), (d**4).sum()])
    for mode in modes:
        var_b = noise_factor(n, b, replacement=mode == "replacement") * C  # exact Var[g_B]: c_B C
        m2 = float(sgd[mode][0] / draws)
        res = {"sgd_var": m2, "sgd_var_theory": var_b,
               "sgd_var_se": math.sqrt(max(float(sgd[mode][1] / draws) - m2**2, 0) / draws), "alphas": []}
        for a in alphas:
            s1, s2, s4 = (float(v) / draws for v in sums[mode, a])
            res["alphas"].append({
                "alpha": a, "mean_dev": s1, "mean_se": math.sqrt(max(s2 - s1 * s1, 0) / draws),
                "ratio": s2 / var_b, "ratio_se": math.sqrt(max(s4 - s2 * s2, 0) / draws) / var_b,
                "theory": ne_trace_ratio(a, b, n, mode),
            })
        out["modes"][mode] = res
    return out
