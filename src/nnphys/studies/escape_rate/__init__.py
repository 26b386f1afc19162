"""Study ``escape-rate``: the power-law escape rate of SGD, theory against simulation.

Paper: Mori, Ziyin, Liu, Ueda, *Power-law escape rate of SGD* (arXiv 2105.09557, ICML 2022). The
study guide ``docs/studies/escape-rate.md`` states every claim (T1-T10), its rule and its evidence.

1. The ``theory`` job (T1, T2, the quadrature part of T5, Tables 1 and 2): formula identities, the
   exact mean-first-passage quadrature of Eq. 13 on family A against eq. 16, the radial level-set
   quadrature and its local slopes.
2. Monte Carlo of the SDE (simulator S1; S2/S3 in T10): the level-set MFPT with its ``dt``
   convergence (T3), the scale symmetry with common random numbers (T4, also genuine SGD on
   family C), the log-barrier slope on family A (T5), the ``n``-sweep on family B (T6), the
   Student-t fit of the stationary law (T7sde), the instability above ``n_c`` (T8).
3. Genuine SGD: the stationary exponent against ``phi`` (T7; ``phi_disc`` and the Kesten index
   reported) and its tail by a Hill estimate (T7tail), noise ∝ loss and the decoupling spectra of
   an MLP on digits (T9, T9b), the gap between discrete SGD and the SDE on the paper's regression
   test (T10, Table 3), and Fig. 3b across dimensions: the exponent per d (T11) and its -1/2 per
   dimension (T12).

Where each part lives: :mod:`.spec` (fields and presets), :mod:`.jobs` (one typed job per kind and
the planner), :mod:`.runs` (their computations; the MLP run is
:mod:`nnphys.studies._shared.digits_mlp`'s), :mod:`.claims` (one function per claim),
:mod:`.figures`, :mod:`.resample` (verdict stability) and :mod:`.calibration` (synthetic results
with a known truth for every claim).
"""

from nnphys.studies.base import Study
from nnphys.studies.escape_rate.calibration import CALIBRATION
from nnphys.studies.escape_rate.claims import BOOK, analyse
from nnphys.studies.escape_rate.figures import figures
from nnphys.studies.escape_rate.jobs import jobs
from nnphys.studies.escape_rate.resample import resample
from nnphys.studies.escape_rate.spec import PRESETS, Spec

STUDY = Study(
    name="escape-rate",
    papers=("Power-law escape rate of SGD (arXiv 2105.09557)",),
    spec=Spec,
    presets=PRESETS,
    jobs=jobs,
    analyse=analyse,
    figures=figures,
    claims=BOOK.claims,
    resample=resample,
    calibration=CALIBRATION,
    headline=("T7", "T7tail", "T9", "T9b", "T10", "T11", "T12"),  # [default] the paper's headline results judged on genuine SGD, led with in the scorecard
    schema_version=3,  # 3: the MLP job adds the full-Hessian probe; 2: seeds from nnphys.seeding.derive, one digits-MLP experiment
    description="Log-barrier escape of the loss-proportional SGD noise SDE: formulas, exact quadrature, "
                "SDE and genuine-SGD Monte Carlo, stationary law, n_c, noise vs loss on an MLP.",
)
