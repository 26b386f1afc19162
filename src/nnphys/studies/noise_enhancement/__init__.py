"""Study ``noise-enhancement``: noise-enhanced SGD against small- and large-batch SGD.

Paper: Mori & Ueda, *Improved generalization by noise enhancement* (arXiv 2009.13094). The paper's
own numbers could not be confirmed; every table comes from our runs. The guide is
``docs/studies/noise-enhancement.md``; the library code is the core package
:mod:`nnphys.noise_enhancement` (the NE update, the noise factor, the minibatch streams, the stacked
training loop, the CNN) and :func:`nnphys.data.load_task` (the tasks).

1. Theory checks (C1, C2): the finite-population toy and, on each MLP task, an exact Monte Carlo of
   the noise factor at a trained point.
2. Training: arms S (``B_s``), L (``B_l``), NE (``B_l`` twice; ``alpha_match`` and the sweep), L2
   (``2 B_l``: equal compute) and LS (``B_l``, ``lr x B_l/B_s``, with and without warmup). One job per
   (task, arm) trains every seed x variant x learning rate as one stacked ensemble, runs
   ``max(K, K_E)`` steps and is evaluated at both budgets: **equal steps** ``K`` (the paper's
   comparison as we read it [default]) and **equal gradient evaluations** (``E`` epochs, NE and L2
   counting ``2B`` samples per step: the compute control).
3. Analysis: the learning rate is selected per task on arm S's validation error; C4-C9 are judged
   per (task, budget) cell, paired over seeds, intention to treat.

Where each part lives: :mod:`.spec` (``Spec``, presets, tasks and arms), :mod:`.jobs` (the job kinds
``toy``, ``probe``, ``train`` and the planner), :mod:`.runs` (what the jobs compute), :mod:`.claims`
(C1-C9, one function each, and ``resample``), :mod:`._cells` (per-seed outcomes and paired cells),
:mod:`.figures`, :mod:`.tables` (the guide's results tables), :mod:`.calibration` (synthetic results
with a known truth for every claim).
"""

from nnphys.studies.base import Study
from nnphys.studies.noise_enhancement.calibration import CALIBRATION
from nnphys.studies.noise_enhancement.claims import BOOK, analyse, resample
from nnphys.studies.noise_enhancement.figures import figures
from nnphys.studies.noise_enhancement.jobs import jobs
from nnphys.studies.noise_enhancement.spec import PRESETS, Spec
from nnphys.studies.noise_enhancement.tables import markdown_tables

STUDY = Study(
    name="noise-enhancement",
    papers=("Improved generalization by noise enhancement (arXiv 2009.13094)",),
    spec=Spec,
    presets=PRESETS,
    jobs=jobs,
    analyse=analyse,
    figures=figures,
    claims=BOOK.claims,
    # 2: jobs carry their study task name (the new mnist1d_small task), plateau checkpoints in the
    # eval grid, per-cell verdicts for C4-C9
    schema_version=2,
    description="Noise-enhanced SGD (g = (1+a) g_B - a g_B') against small-batch, large-batch, equal-compute "
                "and linear-scaling SGD; noise factor f(a) = 1 + 2a + 2a^2 measured by Monte Carlo.",
    resample=resample,
    tables=markdown_tables,
    calibration=CALIBRATION,
    headline=("C4", "C5", "C6", "C7"),  # [default] large batch + NE against small batch
)
