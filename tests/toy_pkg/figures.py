"""The toy study's figure: the spread of the sample mean against the sample size."""

from __future__ import annotations

import numpy as np

from nnphys.studies import _kit as K
from nnphys.studies.base import Figure


def figures(spec, results) -> list[Figure]:
    ok = sorted((r for r in results if r.ok), key=lambda r: r.params["n"])
    fig, (ax,) = K.subplots()
    n = [r.params["n"] for r in ok]
    K.errorbar(ax, n, [np.mean(np.abs(r.metrics["means"])) for r in ok], label="mean |sample mean|")
    K.log_ticks(ax, n)
    ax.set_xlabel("draws per sample n")
    K.legend(ax)
    return K.link_claims([Figure("spread", fig, "The sample mean shrinks towards zero with n.")],
                         {"spread": ("T1", "T2")})
