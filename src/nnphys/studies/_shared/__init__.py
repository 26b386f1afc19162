"""Code that two or more studies share (not a study: the registry skips ``_``-prefixed names).

- :mod:`~nnphys.studies._shared.digits_mlp`: the digits-MLP gradient-noise experiment (the run,
  its probes, the statistics escape-rate T9/T9b and minibatch-noise C3/C12 judge, its figure);
- :mod:`~nnphys.studies._shared.digits_claims`: those two statistics as protocol cells;
- :mod:`~nnphys.studies._shared.digits_calibration`: synthetic digits-MLP runs with a known truth;
- :mod:`~nnphys.studies._shared.claim_cells`: rule and cell builders (identity, equivalence,
  exact effects) of escape-rate and minibatch-noise.
"""
