"""A toy study in the shape of every shipped study (tests only; docs/architecture.md, "How to add
a study", walks through it).

Paper: none; the science is the law of large numbers. The study draws standard normal samples of
a few sizes, batched over many seeds in one job per size, and checks two claims about the sample
mean: it is centred on zero (an equivalence) and it comes closer to zero with more draws (a
directional effect).

Where each part lives: ``spec.py`` the Spec and its presets; ``jobs.py`` the typed job and the
planner; ``claims.py`` the claims, one function each; ``figures.py`` the figure;
``calibration.py`` synthetic results with a known truth for every claim.
"""

from nnphys.studies.base import Study

from .calibration import CALIBRATION
from .claims import BOOK, analyse, resample
from .figures import figures
from .jobs import jobs
from .spec import PRESETS, Spec

STUDY = Study(name="toy-pkg", papers=("The law of large numbers (a toy study for the tests)",), spec=Spec,
              presets=PRESETS, jobs=jobs, analyse=analyse, figures=figures, claims=BOOK.claims,
              resample=resample, calibration=CALIBRATION, headline=("T2",),
              description="numpy-only study in the package shape of the shipped studies")
