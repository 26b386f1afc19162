"""The two digits-MLP claims that escape-rate and minibatch-noise share, as protocol cells: one
statistic each, seeds (independent training runs) as the unit.

- noise ∝ loss (escape-rate T9, minibatch-noise C3): :func:`noise_loss_cell`;
- decoupling after training (escape-rate T9b, minibatch-noise C12): :func:`decoupling_cell`.

The statistics themselves (and their [default] margins) are in :mod:`nnphys.studies._shared.digits_mlp`.
"""

from __future__ import annotations

import math

import numpy as np

from nnphys.studies._shared.digits_mlp import decoupling_rms, noise_loss_slopes
from nnphys.studies import protocol as P

__all__ = ["noise_loss_cell", "decoupling_cell"]


# [default] a diverged training run has no late slope and no spectrum: intention to treat, it enters
# the seed average as a deviation of this many margins (counted against the claim, never dropped).
DIVERGED_MARGINS = 5.0


def _seed_cell(name: str, values: np.ndarray, rule: P.Rule, n_div: int, what: str, extra: dict):
    """A cell over seeds from per-seed deviations ``values`` (shape ``(n,)``); ``n_div`` diverged
    seeds enter at the worst value (:data:`DIVERGED_MARGINS` x the margin)."""
    v = P.itt(np.concatenate([values, np.full(n_div, np.nan)]), None, DIVERGED_MARGINS * rule.sesoi)
    nd = {"mlp": n_div} if n_div else None
    if v.size < 2:
        eff = P.Effect(mean=float(v[0]) if v.size else math.nan, se=math.nan, df=0, n=int(v.size))
        return P.cell(name, eff, rule, room=(False, f"{v.size} seed(s): no between-seed spread of {what} (need >= 2)"),
                      n_diverged=nd, extra=extra)
    return P.cell(name, P.paired(v), rule, n_diverged=nd, extra=extra)


def noise_loss_cell(runs: list[dict], rule: P.Rule, n_diverged: int = 0):
    """The one noise-∝-loss statistic of both studies (escape-rate T9, minibatch-noise C3): per seed
    the late log-log slope of 𝒩 on L (:func:`nnphys.studies._shared.digits_mlp.noise_loss_slopes`); the cell
    effect is the mean of ``slope - 1`` over seeds (one-sample t, df = seeds - 1). A run without a
    finite slope counts as diverged."""
    slopes = noise_loss_slopes(runs)
    return _seed_cell("late slope - 1 over seeds", slopes - 1.0, rule, n_diverged, "the late slope",
                      {"slopes": slopes.tolist()})


def decoupling_cell(runs: list[dict], rule: P.Rule, n_diverged: int = 0):
    """The one decoupling statistic of both studies (escape-rate T9b, minibatch-noise C12): per seed
    the RMS log ratio of coupled to decoupled top-k eigenvalues at the last checkpoint, bulk
    excluded (:func:`nnphys.studies._shared.digits_mlp.decoupling_rms`); the cell effect is its mean over seeds."""
    rms = np.array([decoupling_rms(m)["rms"] for m in runs], float)
    return _seed_cell("RMS log ratio after training, over seeds", rms, rule, n_diverged, "the RMS log ratio",
                      {"rms": rms.tolist()})
