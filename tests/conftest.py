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
