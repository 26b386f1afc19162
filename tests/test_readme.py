"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch


def test_readme_library_example_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a python example"
    ns: dict = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), ns)
    assert ns["K"].shape == (512, 512) and ns["K"].dtype == torch.float64
    assert ns["stats"] is not None


def test_readme_commands_match_ci():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    test_cmd = 'pip install -e ".[test]" && python -m pytest'
    assert test_cmd in readme and test_cmd in ci
    assert "nnphys reproduce --scale quick" in readme


def test_readme_toml_example_is_a_valid_config(tmp_path):
    from nnphys.lab.config import build_spec
    from nnphys.studies import get_study

    text = (Path(__file__).parents[1] / "README.md").read_text()
    toml = re.findall(r"```toml\n(.*?)```", text, flags=re.S)[0]
    cfg = tmp_path / "my_sweep.toml"
    cfg.write_text(toml)
    spec = build_spec(get_study("escape-rate"), "quick", cfg)
    assert spec.chains == 20000
