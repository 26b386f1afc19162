from __future__ import annotations

import sys
from pathlib import Path

import os

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# Property tests: under CI the draws are derandomised (the same examples on every run, no example
# database), so a CI result depends on the commit alone; locally they draw afresh and keep failing
# examples in .hypothesis/. A draw that ever failed stays in its test as an explicit case.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def toy():
    """The toy study, registered for the duration of a test."""
    import toy_study

    from nnphys.studies import register, unregister

    register(toy_study.STUDY)
    yield toy_study.STUDY
    unregister("toy")


@pytest.fixture(autouse=True)
def one_thread():
    """Every test runs with one torch and one BLAS thread, restored afterwards.

    The tests' tensors are small: extra threads add only synchronisation, and on a busy 2-core
    machine OpenMP spin-waiting makes a 150 x 150 Cholesky up to 300x slower. Per test rather
    than per session, because the inline runner sets its own thread count inside some tests."""
    import torch
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)
