"""Study ``depth-locality``: is deeper better? It depends on the locality of the target.

Papers: Mori & Ueda, *Is deeper better? It depends on locality of relevant features* (arXiv
2005.12488) and *Interplay between depth of neural networks and locality of target functions* (arXiv
2201.12082). Guide: ``docs/studies/depth-locality.md``.

The experiment, top to bottom, and where each part lives:

1. Data: inputs on the cube ``{-1,1}^d`` (or Gaussian); the k-local target ``prod_{i<k} x_i`` and the
   k-global target ``d^{-1/2} sum_i prod_j x_{i+j}`` (regression, or their signs). One data set per
   seed, shared by both targets, all depths and all learning rates (``nnphys.targets``).
2. Nets: FC ReLU nets of depth ``L`` (hidden layers) and width ``H``, init family ``init`` [default],
   trained by plain SGD to the interpolation criterion; a net job trains every seed x learning rate of
   one ``(variant, target, k, N, L, H, alpha)`` as one stacked ensemble, the learning rate selected per
   job on a validation set or fixed (``nnphys.nets``, ``nnphys.train``).
3. Baselines: analytic NTK and NNGP ridgeless regression on the same data, all depths, with the nets'
   sigma_w^2 and bias variance (``Spec.kernel_sb2`` says where they cannot match exactly; ``nnphys.ntk``).
4. The exact blindness of kernel regression to locality (claim C5): many small data sets.
5. Controls: the lazy scale ``alpha`` (C6), robustness variants (C7), a coordinate permutation (X2 nets,
   X2K kernels).

- :mod:`.spec`: the ``Spec`` (every field tagged) and the presets;
- :mod:`.jobs`: the job kinds (``net``, ``kernel``, ``blind``) and the planner ``jobs(spec)``;
  :mod:`.runs`: their computations;
- :mod:`.claims`: one function per claim (C1-C8, X2, X2K) with its pre-registered rule, ``analyse``
  and ``resample``; :mod:`.cells` and :mod:`.controls`: the claim protocol's cells they judge (shared
  with the regime map, study ``depth-locality-map``);
- :mod:`.figures`: the figures; :mod:`.calibration`: synthetic results with a known truth per claim.
"""

from nnphys.studies.base import Study
from nnphys.studies.depth_locality import calibration, claims, figures, jobs, spec

STUDY = Study(
    name="depth-locality",
    papers=("Is deeper better? It depends on locality of relevant features (arXiv 2005.12488)",
            "Interplay between depth of neural networks and locality of target functions (arXiv 2201.12082)"),
    spec=spec.Spec, presets=spec.PRESETS, jobs=jobs.jobs, analyse=claims.analyse, figures=figures.figures,
    claims=claims.CLAIMS,
    # 2: label-derived seeds (nnphys.seeding), init family, matched kernel sigma_b^2, informativeness rule.
    # The claim protocol changed the analysis only (and dropped the X1 jobs): job keys are unchanged.
    schema_version=2,
    description="Depth vs locality of target functions: SGD-trained FC ReLU nets of varying depth on k-local "
                "and k-global targets, against the analytic NTK/NNGP (exactly blind to locality), with lazy, "
                "robustness and permutation controls; every claim judged by the claim protocol (paired per-seed "
                "effects, SESOI, room to move, power, intention to treat).",
    resample=claims.resample,
    calibration=calibration.CALIBRATION,
    headline=("C1", "C2", "C3"),  # [default] the interplay the papers lead with
)
