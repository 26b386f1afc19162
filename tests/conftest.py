from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def toy():
    """The toy study, registered for the duration of a test."""
    import toy_study

    from nnphys.studies import register, unregister

    register(toy_study.STUDY)
    yield toy_study.STUDY
    unregister("toy")
