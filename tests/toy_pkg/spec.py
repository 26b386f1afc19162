"""The toy study's Spec: what a user may set, each field with its tag and bounds."""

from __future__ import annotations

from pydantic import Field

from nnphys.studies.base import PosInt, StudySpec


class Spec(StudySpec):
    sizes: list[PosInt] = Field([4, 256], min_length=2, max_length=8,
                                description="[default] draws per sample, smallest first; T2 compares the first "
                                            "and the last")
    seeds: int = Field(200, ge=3, le=10_000, description="[default] independent samples (seeds) per size")


PRESETS = {"quick": {}, "paper": {"sizes": [4, 16, 64, 256], "seeds": 1000}}
