"""Study ``depth-locality-map``: where does the depth-locality interplay live?

Papers: those of study ``depth-locality``. Guide: ``docs/studies/depth-locality-map.md``.

A grid of *cells* over the init family and scale, the training-set size N, the input dimension d, the
width H and the target order k. Each cell is the main grid of study ``depth-locality`` at those
settings (both targets, every depth, ``n_seeds`` seeds, lr tuned per job; the very same job kinds).
Claims M1-M4 are C1-C4 over the map's cells, judged by C1-C4's rules (M4 needs ``kernels``).

- :mod:`.spec`: the map's axes and the presets; :mod:`.jobs`: the planner (depth-locality's net jobs);
- :mod:`.claims`: the cells and M1-M4; :mod:`.figures`: the regime map;
- :mod:`.calibration`: synthetic results with a known truth.
"""

from nnphys.studies.base import Study
from nnphys.studies.depth_locality import STUDY as DEPTH_LOCALITY
from nnphys.studies.depth_locality_map import calibration, claims, figures, jobs, spec

STUDY = Study(
    name="depth-locality-map",
    papers=DEPTH_LOCALITY.papers,
    spec=spec.Spec, presets=spec.PRESETS, jobs=jobs.jobs, analyse=claims.analyse, figures=figures.figures,
    claims=claims.CLAIMS,
    schema_version=1,
    description="Regime map of the depth-locality interplay over init family/scale, N, d, width and k: per cell "
                "the C1-C3 protocol cells (paired L_min vs L_max effects, room, power), judged by C1-C3's rules.",
    resample=claims.resample,
    calibration=calibration.CALIBRATION,
    headline=("M1", "M2", "M3", "M4"),  # [default] where C1-C3 hold over the map, the NTK half (C4) alongside
)
