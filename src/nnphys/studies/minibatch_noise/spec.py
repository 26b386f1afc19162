"""The minibatch-noise spec: every field with its provenance tag, the presets per scale, and the
linear-regression rows simulated online (:data:`ONLINE_CASES`).

Tags: [paper] (the paper's value), [derived] (follows from the paper's formulas, checked here) or
[default] (our choice; the reason is in the field's description or in
``docs/studies/minibatch-noise.md``). The row names (``row2`` ... ``row18``) are those of the
guide's table of checks; claim ids (C0-C14) are the study's claims.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from nnphys.studies.base import PosFloat, PosInt, StudySpec

# the rows simulated online (docs/studies/minibatch-noise.md); σ² = 1 unless stated
A2 = [[1.0, 0.0], [0.0, 0.5]]
A9 = [[1.0, 0.0], [0.0, 0.4]]
ONLINE_CASES: dict[str, dict[str, Any]] = {
    "row2": dict(A=A2, lam=1.5, S=50, mu=0.0),
    "row3": dict(A=A2, lam=1.5, S=10, mu=0.0),
    "row5": dict(A=A2, lam=0.5, S=5, mu=0.5),
    "row6": dict(A=[[1.0]], lam=1.0, S=10, mu=0.0),
    "row12": dict(A=A2, lam=0.8, S=4, mu=0.0, B_input=[[0.3, 0.0], [0.0, 0.2]], u=[1.0, -0.7],
                  sigma2=0.0),
    "row9a": dict(A=A9, lam=0.5, S=1, mu=0.0, gamma=0.1, u=[1.0, 1.0], sigma2=0.0),
    "row9b": dict(A=A9, lam=0.5, S=1, mu=0.0, gamma=-0.1, u=[1.0, 1.0], sigma2=0.0),
    "row9c": dict(A=A9, lam=0.6, S=2, mu=0.0, gamma=0.3, u=[1.0, 1.0], sigma2=0.0),
    "row17": dict(A=A2, lam=0.5, S=10, mu=0.0, newton=True),
}


class Spec(StudySpec):
    """Fields carry their provenance tag: [paper], [derived] or [default] (ours)."""

    seed: int = Field(0, ge=0, le=2**31, description="[default] base seed of every job")
    sigma2: float = Field(1.0, gt=0, le=100, description="[default] label-noise variance σ² (the rows: 1)")
    n_chains: int = Field(2000, ge=10, le=1_000_000,
                          description="[default] parallel SGD chains per low-dimensional simulation (the rows: >= 2000)")
    n_steps: int = Field(4000, ge=10, le=10_000_000,
                         description="[default] post-burn-in steps per chain (the rows: 4000)")
    cases: list[str] = Field(list(ONLINE_CASES), min_length=0,
                             description="[default] rows simulated online (row2, row3, row5, row6, row12, row9a-c, row17)")
    grid_a: float = Field(1.0, gt=0, le=100, description="[paper] 1-D curvature a of the λ grid (Fig. 4a: 1)")
    grid_batch_sizes: list[PosInt] = Field([10, 2], min_length=1,
                                        description="[paper/default] S of the 1-D λ grids (Fig. 4a: S = 10; 2 is ours)")
    grid_fractions: list[PosFloat] = Field(
        [0.1, 0.3, 0.5, 0.7, 0.85, 0.93, 0.97], min_length=2,
        description="[default] grid λ as fractions of the exact stability edge λ_max = 2S/(a(S+2))")
    prop1_n: int = Field(20, ge=2, le=100_000, description="[default] data points of the Prop. 1 check (row 1)")
    prop1_S: int = Field(8, ge=1, le=100_000, description="[default] batch size of the Prop. 1 check")
    prop1_draws: int = Field(200_000, ge=1000, le=100_000_000, description="[default] minibatches drawn in the Prop. 1 check")
    edge_D: list[PosInt] = Field([2, 8, 32, 128], min_length=1, description="[default] dimensions D of the isotropic edge check (C4)")
    edge_S: list[PosInt] = Field([1, 4, 16, 64], min_length=1, description="[default] batch sizes of the isotropic edge check (C4)")
    edge_sim_D: int = Field(8, ge=1, le=512, description="[default] D of the edge simulations (C4)")
    edge_sim_S: int = Field(4, ge=1, le=4096, description="[default] S of the edge simulations (C4)")
    l2_cases: list[tuple[Annotated[float, Field(ge=-100, le=100)], PosInt]] = Field(
        [(1.8, 10), (0.7, 1), (0.5, 1), (1.2, 4), (0.9, 4), (1.5, 2)], min_length=1,
        description="[default] (λ, S) of the 1-D optimal-weight-decay check, a = u = 1 (first three: the worked examples of the optimal weight decay, the guide's C5)")
    hd_D: int = Field(100, ge=4, le=2000,
                      description="[default] dimension D of the high-dimensional checks (our rows 13–15 use 100); N = 4D, 2D, "
                                  "0.8D and λ = 5/D, 12/D, 6/D, 10/D scale with it")
    hd_over_burn_in: int = Field(8000, ge=10, le=10_000_000,
                                 description="[default] burn-in steps of the over-parameterised run from w0 = 0 (row 15)")
    hd_draws: int = Field(4, ge=1, le=100, description="[default] data draws of the high-dimensional checks (the full check: 8)")
    hd_chains: int = Field(200, ge=2, le=100_000, description="[default] chains of the D = 100 simulations (the rows: 200)")
    hd_steps: int = Field(3000, ge=10, le=1_000_000, description="[default] post-burn-in steps of the D = 100 simulations (the rows: 12000)")
    scaling_c: float = Field(0.1, gt=0, le=10, description="[default] fixed ratio c = λ/S of the scaling check (C8), 1-D a = 1")
    scaling_S: list[PosInt] = Field([1, 2, 4, 8, 12, 16], min_length=2, description="[default] batch sizes at fixed λ/S (C8)")
    tail_S: list[PosInt] = Field([1, 2, 3, 4], min_length=1, description="[default] batch sizes of the tail check at aλ = 1 (our row 16)")
    tail_chains: int = Field(2000, ge=10, le=1_000_000, description="[default] chains of the tail simulations")
    tail_steps: int = Field(4000, ge=100, le=10_000_000, description="[default] recorded steps per tail chain (every step)")
    tail_frac: float = Field(0.005, gt=0, le=0.2, description="[default] Hill estimator top fraction (row 16: 0.1–1%)")
    mlp_seeds: int = Field(4, ge=1, le=100, description="[default] MLP training seeds (C3, C12)")
    mlp_width: int = Field(128, ge=1, le=8192, description="[default] MLP hidden width (2 hidden ReLU layers)")
    mlp_lr: float = Field(0.05, gt=0, le=10, description="[default] MLP SGD learning rate")
    mlp_batch: int = Field(32, ge=1, le=4096, description="[default] MLP batch size B (epoch reshuffling)")
    mlp_epochs: int = Field(60, ge=2, le=100_000, description="[default] MLP training epochs")
    mlp_top_k: int = Field(20, ge=1, le=1000, description="[default] eigenvalues probed in the decoupling check (escape-rate T9: 20; the paper compares histograms)")
    mlp_n_train: int = Field(1500, ge=10, le=1796, description="[default] digits training rows (the rest is held out)")

    fig1_widths: list[PosInt] = Field([25, 50, 100, 200, 400, 800], min_length=2,
                                      description="[paper] hidden widths d of the two-layer tanh net (Fig. 1 left; C15, C15f)")
    fig1_lr: float = Field(0.5, gt=0, le=100, description="[paper] the fixed learning rate λ of Fig. 1 left")
    fig1_ref_width: int = Field(25, ge=1, le=100_000,
                                description="[default] width at which λ ∝ 1/width equals the fixed λ (the smallest width)")
    fig1_seeds: int = Field(5, ge=1, le=1000, description="[default] seeds per width and arm (Fig. 1 left)")
    fig1_batch: int = Field(32, ge=1, le=1500, description="[default] batch size S of Fig. 1 left (not stated in the paper)")
    fig1_n_train: int = Field(1500, ge=100, le=1796,
                              description="[default] digits training rows of Fig. 1 (pixels / 16, in [0, 1] as MNIST's)")
    fig1_div_factor: float = Field(100.0, gt=1, le=1e12,
                                   description="[default] a batch loss above this x the initial loss counts as divergence")
    logreg_gammas: list[Annotated[float, Field(ge=-10, le=10)]] = Field(
        [-0.02, -0.01, -0.005, -0.002, -0.001, 0.0, 0.001, 0.002, 0.005, 0.01, 0.02], min_length=0,
        description="[default] weight decays γ of Fig. 1 right (symmetric about 0, two decades either side; [] skips it)")
    logreg_lr: float = Field(1.5, gt=0, le=100, description="[paper] learning rate λ of Fig. 1 right")
    logreg_batch: int = Field(32, ge=1, le=1500, description="[paper] batch size S of Fig. 1 right")
    logreg_epochs: int = Field(10, ge=1, le=10_000, description="[default] epochs of Fig. 1 right (not stated in the paper)")
    logreg_seeds: int = Field(5, ge=1, le=1000, description="[default] minibatch-order seeds of Fig. 1 right")
    logreg_control_lr: float = Field(0.1, gt=0, le=100,
                                     description="[default] control λ of Fig. 1 right, run for the same λ·steps (C16c): "
                                                 "λa far below the §6 threshold 2S/(S+2)")

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        unknown = set(self.cases) - set(ONLINE_CASES)
        if unknown:
            raise ValueError(f"cases: unknown {sorted(unknown)}; known {list(ONLINE_CASES)}")
        if any(not 0 < f < 1 for f in self.grid_fractions):
            raise ValueError(f"grid_fractions must lie in (0, 1) (got {self.grid_fractions})")
        if self.prop1_S > self.prop1_n:
            raise ValueError("prop1_S must be <= prop1_n (without-replacement check)")
        if any(S < 1 for S in self.grid_batch_sizes + self.edge_S + self.scaling_S + self.tail_S):
            raise ValueError("batch sizes must be >= 1")
        if self.mlp_top_k > self.mlp_n_train:
            raise ValueError("mlp_top_k must be <= mlp_n_train")
        if self.logreg_gammas and not (min(self.logreg_gammas) < 0 < max(self.logreg_gammas) and 0 in self.logreg_gammas):
            raise ValueError(f"logreg_gammas must contain 0 and values on both sides of it (got {self.logreg_gammas})")
        if 2 * max(self.fig1_batch, self.logreg_batch) > self.fig1_n_train:
            raise ValueError("fig1_batch and logreg_batch must be <= fig1_n_train / 2 (at least two steps per epoch)")
        if len(set(self.fig1_widths)) != len(self.fig1_widths):
            raise ValueError(f"fig1_widths must be distinct (got {self.fig1_widths})")
        for lam, S in self.l2_cases:
            if lam <= 0 or S < 1:
                raise ValueError(f"l2_cases need λ > 0 and S >= 1 (got {(lam, S)})")
        return self


PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(n_chains=1000, n_steps=1500, grid_batch_sizes=[10],
                  grid_fractions=[0.2, 0.5, 0.8, 0.93], prop1_draws=50_000, edge_D=[2, 8, 32],
                  edge_S=[1, 4, 16], hd_draws=2, hd_chains=64, hd_steps=800,
                  scaling_S=[1, 4, 8, 12, 16], tail_chains=1000, tail_steps=1500, mlp_seeds=3,
                  mlp_epochs=60, mlp_width=64, fig1_widths=[25, 200, 800]),
    # medium: the guide's published verdicts beyond quick (<= 30 min on 2 free cores; the measured cost is
    # in docs/studies/minibatch-noise.md, "Costs", ~870 s of job time): the paper's chain counts for the rows, the grid and the
    # tail, the paper's eight data draws of the high-dimensional checks (200 chains x 3000 steps), eight MLP
    # seeds at the default width for 100 epochs, and Fig. 1 at every width of the paper with 10 seeds
    "medium": dict(n_chains=2000, n_steps=4000, hd_draws=8, hd_chains=200, hd_steps=3000, tail_chains=2000,
                   tail_steps=4000, mlp_seeds=8, mlp_epochs=100, mlp_width=128, fig1_seeds=10, logreg_seeds=10),
    "paper": dict(n_chains=2000, n_steps=4000, hd_draws=8, hd_chains=200, hd_steps=12000,
                  tail_chains=4000, tail_steps=4000, mlp_seeds=5, mlp_epochs=200, mlp_width=256, fig1_seeds=10,
                  logreg_seeds=10),
}
