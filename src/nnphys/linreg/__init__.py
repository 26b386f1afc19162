"""Minibatch-noise theory of SGD on linear regression, its exact oracle, and a simulator.

Paper: Ziyin, Liu, Mori, Ueda, "Strength of Minibatch Noise in SGD" (arXiv 2102.05375, ICLR 2022),
cited as (MBN, Thm/Prop/Eq. N); predecessor Liu, Ziyin, Ueda (arXiv 2012.03636) for Thm 1.
Notation (as in ``docs/studies/minibatch-noise.md``): learning rate ``lam`` (λ, scalar) or
``Lam`` (Λ, matrix), batch size ``S``, momentum ``mu`` (μ), weight decay ``gamma``/``Gamma``
(γ/Γ), input covariance ``A``, label-noise variance ``sigma2`` (σ²), teacher ``u``.
Loss ``L(w) = 1/(2N) Σ (wᵀx_i - y_i)²`` (note the 1/2). ``Σ`` is the stationary covariance of
``w``, ``C`` the stationary minibatch-noise covariance.

Public API
----------
Noise covariance:      prop1_noise, lemma1_noise, thm3_noise, thm5_noise,
                       regression_noise_exact, prop4_noise
Fluctuation Σ:         thm2_sigma, sigma_1d, thm1_sigma (general Lyapunov-type solve),
                       continuous_sigma, hessian_approx_sigma (baselines that must fail)
Losses:                train_loss, test_loss
Stability:             stability_ratio, is_stable, max_lr, max_lr_isotropic
Input noise:           input_noise_sigma_eff, input_noise_sigma
L2 (incl. γ < 0):      thm4_test_loss, l2_sigma, eq12_sigma (printed, defective off-diagonal),
                       l2_test_loss_1d, l2_stable_1d, optimal_weight_decay_1d
Preconditioning:       damped_newton_sigma, ngd_sigma
High dimension:        thm6_trace, max_lr_highdim, max_lr_highdim_isotropic
λ–S scaling:           fixed_ratio_sigma, fixed_ratio_sigma_1d, fixed_ratio_divergence_S
Tails:                 tail_exponent_paper, tail_exponent_continuous, kesten_tail_index,
                       hill_estimator
Oracle (ground truth): moment_oracle_online, moment_oracle_finite  (exact second-moment fixed
                       point), iterate_moments_online (the literal recursion)
Simulator:             simulate_online, simulate_finite (R chains at once, float64, torch),
                       sample_batches (vectorised with / without replacement)

Closed forms check the stability region first and return ``inf`` (scalars) or an ``inf``-filled
matrix outside it ("must flag, not report"). User-caused bad values (λ <= 0, S < 1,
μ outside [0, 1), non-commuting matrices where commutation is assumed) raise ConfigError.

Layout: :mod:`~nnphys.linreg.closed_forms` (the paper's formulas), :mod:`~nnphys.linreg.oracle`
(exact moment fixed point), :mod:`~nnphys.linreg.simulate` (Monte Carlo, :class:`SimRng`). Every
public name is re-exported here: ``from nnphys import linreg as LR; LR.thm2_sigma(...)``.
"""

from nnphys.linreg import closed_forms as _closed_forms
from nnphys.linreg import oracle as _oracle
from nnphys.linreg import simulate as _simulate
from nnphys.linreg.closed_forms import *  # noqa: F401,F403
from nnphys.linreg.oracle import *  # noqa: F401,F403
from nnphys.linreg.simulate import *  # noqa: F401,F403

__all__ = [*_closed_forms.__all__, *_oracle.__all__, *_simulate.__all__]
