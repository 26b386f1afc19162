"""Study ``minibatch-noise``: the strength of minibatch noise in SGD.

Paper: Ziyin, Liu, Mori, Ueda, *Strength of Minibatch Noise in SGD* (arXiv 2102.05375, ICLR 2022);
the noise-measurement parts of Mori et al., *Power-law escape rate of SGD* (arXiv 2105.09557). The
study guide ``docs/studies/minibatch-noise.md`` states every claim (C0-C16), its rule, its evidence
and the checklist rows (``row1`` ... ``row18``) the jobs simulate.

1. Linear-regression theory (C0-C2, C4-C11, C13, C14): every closed form of :mod:`nnphys.linreg`
   against the exact second-moment oracle and against Monte Carlo (R parallel chains, float64, CIs
   over independent chains), on the checklist rows and on a learning-rate grid that reaches the
   stability edge.
2. Neural nets (C3, C12): the digits-MLP experiment of :mod:`nnphys.studies._shared.digits_mlp`
   (the same run as escape-rate T9/T9b for the same settings and seed): ``𝒩 = tr C_1`` and the
   loss every epoch; the log-log slope of ``𝒩`` against ``L`` over the second half of training,
   ``tr C`` against ``(2L/S)·`` Gauss-Newton trace, and the decoupling spectra at init,
   mid-training and the end.
3. The paper's Fig. 1 on digits (C15, C15f, C16): a two-layer tanh net at widths 25-800, the first-epoch
   loss variance and divergence at a fixed λ and at λ ∝ 1/width, and SGD logistic regression at λ = 1.5,
   S = 32 over a weight-decay grid including γ < 0 (:mod:`._fig1`: every seed, arm and γ one member of
   one stacked ensemble).

Where each part lives: :mod:`.spec` (fields, presets and the online rows), :mod:`.jobs` (one typed
job per kind and the planner), :mod:`.runs` (their computations), :mod:`._fig1` (the Fig. 1
ensembles), :mod:`.claims` (one function per
claim), :mod:`.figures`, :mod:`.resample` (verdict stability) and :mod:`.calibration` (synthetic
results with a known truth for every claim).
"""

from nnphys.studies.base import Study
from nnphys.studies.minibatch_noise.calibration import CALIBRATION
from nnphys.studies.minibatch_noise.claims import BOOK, analyse
from nnphys.studies.minibatch_noise.figures import figures
from nnphys.studies.minibatch_noise.jobs import jobs
from nnphys.studies.minibatch_noise.resample import resample
from nnphys.studies.minibatch_noise.spec import PRESETS, Spec

STUDY = Study(
    name="minibatch-noise",
    papers=("Strength of Minibatch Noise in SGD (arXiv 2102.05375)",
            "Power-law escape rate of SGD (arXiv 2105.09557), noise-measurement parts"),
    spec=Spec,
    presets=PRESETS,
    jobs=jobs,
    analyse=analyse,
    figures=figures,
    claims=BOOK.claims,
    resample=resample,
    calibration=CALIBRATION,
    headline=("C2", "C3", "C4", "C8"),  # [default] the paper's headline results, led with in the report's scorecard
    schema_version=3,  # 3: the MLP job adds the full-Hessian probe; 2: seeds from nnphys.seeding.derive, one digits-MLP experiment
    description="Exact minibatch-noise theory of linear regression vs oracle and Monte Carlo; "
                "noise ∝ loss and the decoupling check on an MLP.",
)
