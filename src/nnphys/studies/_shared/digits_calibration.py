"""Synthetic digits-MLP runs with a known truth, for the calibration of the claims that read them
(escape-rate T9/T9b, minibatch-noise C3/C12): :func:`mlp_results`."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from nnphys.studies.base import Result

Gen = Callable[[np.random.Generator, Any], list[Result]]


def _res(kind: str, metrics: dict[str, Any], status: str = "done", **params: Any) -> Result:
    return Result(key=f"{kind}{sorted(params.items())}", params={"kind": kind, **params}, status=status,  # type: ignore[arg-type]
                  metrics={"kind": kind, **metrics})


def _mlp_run(rng, epochs: int, slope: float, end_level: float, top_k: int = 20) -> dict:
    """One synthetic digits-MLP run: loss decaying over ``epochs``, 𝒩 = 0.3 L^slope with 2 % epoch
    noise; Gauss-Newton spectra (geometric, top-k) at init, mid and end. At the end the coupled
    spectrum is the decoupled one shifted by a factor exp(±end_level) (sign random per run, 2 %
    rank noise; the ordering is kept, so the RMS log ratio is about ``end_level``). At init it is
    off by a factor 5 (as measured on digits at init, where the claim is not judged)."""
    t = np.arange(epochs + 1)
    loss = 0.5 * np.exp(-t / (epochs / 4)) + 0.01
    trace = 0.3 * loss ** slope * np.exp(rng.normal(0, 0.02, t.size))
    dec = 0.05 * np.geomspace(1.0, 0.04, top_k)
    checks = {}
    for ep in sorted({0, epochs // 10, epochs}):
        level = math.log(5.0) if ep == 0 else end_level
        cpl = dec * np.exp(level * rng.choice([-1.0, 1.0]) + rng.normal(0, 0.02, top_k))
        checks[str(ep)] = {"gauss_newton": {"coupled": cpl.tolist(), "decoupled": dec.tolist(), "ratio": (cpl / dec).tolist(),
                                            "loss": float(loss[ep]), "coupled_trace": float(cpl.sum()),
                                            "decoupled_trace": float(dec.sum()), "gauss_newton_trace": float(dec.sum() / loss[ep]),
                                            "ch_alignment": 0.9, "ch_gamma": 1.0}}
    return {"loss": loss.tolist(), "trace_cov": trace.tolist(), "checkpoints": checks, "N": 1500, "B": 100,
            "epochs": epochs, "slope_second_half": slope, "final_loss": float(loss[-1]),
            "noise_over_2L_gn": 1.0}


def mlp_results(seeds: int, slope_shift: float, slope_sd: float, end_level: float, epochs: int = 40) -> Gen:
    """``seeds`` runs with late slopes 1 + slope_shift + N(0, slope_sd) and end-of-training spectra
    off by exp(±end_level) (both studies' T9/C3, T9b/C12)."""
    def gen(rng, spec):
        return [_res("mlp", _mlp_run(rng, epochs, 1 + slope_shift + rng.normal(0, slope_sd), end_level), member=s)
                for s in range(seeds)]
    return gen
