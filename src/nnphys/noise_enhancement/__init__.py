"""Noise-enhanced SGD (NE): Mori & Ueda, *Improved generalization by noise enhancement*
(arXiv 2009.13094), one concept per module:

- :mod:`~nnphys.noise_enhancement.optimizer`: the update ``g_NE = (1 + α) g_B - α g_B'``
  (:class:`NoiseEnhancedSGD`, the batched :func:`ne_update_`) and the relations between α, the
  covariance factor ``f(α) = 1 + 2α + 2α²`` and the effective batch size ``B_eff = B / f(α)``;
- :mod:`~nnphys.noise_enhancement.sampling`: the minibatch streams of the three sampling modes
  (how ``B`` and ``B'`` are drawn);
- :mod:`~nnphys.noise_enhancement.noise`: the noise factor measured exactly, on a net from its
  per-sample-gradient Gram matrix (:func:`probe_noise`) and on the finite-population toy;
- :mod:`~nnphys.noise_enhancement.stacked`: SGD / NE training of a stacked ensemble, every member
  on its own data stream (:func:`train_stacked`);
- :mod:`~nnphys.noise_enhancement.convnet`: the BN-free CNN of the CIFAR-10 task (:class:`StackedCNN`).

The public names are re-exported here and from :mod:`nnphys`.
"""

from __future__ import annotations

from nnphys.noise_enhancement.convnet import StackedCNN
from nnphys.noise_enhancement.noise import ne_trace_ratio, noise_shape, per_sample_gram, probe_noise, toy_noise
from nnphys.noise_enhancement.optimizer import (SAMPLING_MODES, NoiseEnhancedSGD, alpha_for, effective_batch_size,
                                                ne_covariance_factor, ne_update_)
from nnphys.noise_enhancement.sampling import EpochStream, PairSampler, ReplacementStream, draw_pairs
from nnphys.noise_enhancement.stacked import evaluate, member_errors, member_losses, train_stacked

__all__ = [
    "NoiseEnhancedSGD", "ne_update_", "ne_covariance_factor", "effective_batch_size", "alpha_for", "SAMPLING_MODES",
    "EpochStream", "ReplacementStream", "PairSampler", "draw_pairs",
    "ne_trace_ratio", "per_sample_gram", "noise_shape", "probe_noise", "toy_noise",
    "member_losses", "member_errors", "evaluate", "train_stacked", "StackedCNN",
]
