"""`nnphys probe` end to end: a user's model defined in a module written to tmp_path, run through the
CLI; the report's files exist and its numbers are those of direct library calls; every user error
exits 2 with one line naming the argument."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import torch

from nnphys.cli import main

MLP_MODULE = '''
import torch
from torch import nn


def make():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.sin(X[:, :2])
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 2)).double()
    loss_fn = lambda out, t: 0.5 * ((out - t) ** 2).sum(1)   # per-sample, (n,)
    return model, loss_fn, (X, y)


def mean_loss():
    model, loss_fn, data = make()
    return model, lambda out, t: loss_fn(out, t).mean(), data


def not_a_triple():
    return make()[:2]
'''

CNN_MODULE = '''
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def make():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(48, 1, 6, 6, generator=g)
    y = torch.randint(0, 3, (48,), generator=g)
    torch.manual_seed(2)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    return SmallCNN(), loss_fn, DataLoader(TensorDataset(X, y), batch_size=16)
'''

FILES = ("report.md", "report.html", "report.json", "gradient_noise.png", "hessian_top.png", "hessian_density.png")


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    (tmp_path / "probe_user_mlp.py").write_text(textwrap.dedent(MLP_MODULE))
    (tmp_path / "probe_user_cnn.py").write_text(textwrap.dedent(CNN_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    return tmp_path


def _close(a, b, rel=1e-9):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


def test_probe_mlp_report_matches_the_library(user_modules, capsys):
    from nnphys import alpha_for, escape_outlook, gradient_noise, hessian_top, hessian_trace
    from probe_user_mlp import make

    out = user_modules / "rep"
    assert main(["probe", "probe_user_mlp:make", "--out", str(out), "--k", "4", "--n-matvec", "12",
                 "--batch-size", "8", "--b-eff", "2", "--lr", "0.05"]) == 0
    assert "wrote" in capsys.readouterr().out
    for f in FILES:
        assert (out / f).stat().st_size > 0, f
    rep = json.loads((out / "report.json").read_text())

    model, loss_fn, data = make()
    gn = gradient_noise(model, loss_fn, data, batch_size=8, k=4)
    top = hessian_top(model, loss_fn, data, k=4)
    tr = hessian_trace(model, loss_fn, data, n_matvec=12)
    assert _close(rep["loss"], gn.loss, 1e-12)
    assert _close(rep["gradient_noise"]["trace_noise"], gn.trace_noise, 1e-12)
    assert rep["gradient_noise"]["noise_eigenvalues"] == pytest.approx(gn.noise_eigenvalues.tolist(), rel=1e-10)
    assert _close(rep["gradient_noise"]["noise_to_signal"], gn.trace_noise / gn.grad_norm ** 2, 1e-12)
    assert rep["hessian_top"]["eigenvalues"] == pytest.approx(top.eigenvalues.tolist(), rel=1e-10)
    assert _close(rep["hessian_trace"]["trace"], tr.trace, 1e-10)
    ne = rep["noise_enhancement"]
    assert _close(ne["alpha"], alpha_for(8, 2), 1e-15)
    assert _close(1 + 2 * ne["alpha"] + 2 * ne["alpha"] ** 2, 8 / 2, 1e-12)  # f(alpha) = B / B_eff
    eo = escape_outlook(model, loss_fn, data, batch_size=8, lr=0.05, k=4, n_matvec=12)
    assert _close(rep["escape_outlook"]["trace_noise"], eo.trace_noise, 1e-12)
    assert rep["escape_outlook"]["eigenvalues"] == pytest.approx(eo.eigenvalues.tolist(), rel=1e-10)
    md = (out / "report.md").read_text()
    assert "NE α for B_eff = 2" in md and "![hessian_density](hessian_density.png)" in md


def test_probe_cnn_with_checkpoint_and_dataloader(user_modules):
    from nnphys import gradient_noise, hessian_top
    from probe_user_cnn import make

    model, loss_fn, loader = make()
    with torch.no_grad():  # the checkpoint differs from the fresh model
        for p in model.parameters():
            p.mul_(1.5)
    ckpt = user_modules / "ckpt.pt"
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, ckpt)
    out = user_modules / "cnn"
    assert main(["probe", "probe_user_cnn:make", "--checkpoint", str(ckpt), "--out", str(out),
                 "--k", "3", "--n-matvec", "9"]) == 0
    for f in FILES:
        assert (out / f).is_file(), f
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"]["n_params"] == sum(p.numel() for p in model.parameters())
    assert rep["settings"]["batch_size"] == 16  # the DataLoader's
    gn = gradient_noise(model, loss_fn, loader, batch_size=16, k=3)
    assert _close(rep["loss"], gn.loss, 1e-6)  # float32 model
    assert _close(rep["gradient_noise"]["trace_noise"], gn.trace_noise, 1e-6)
    fresh = make()[0]
    assert not _close(rep["loss"], gradient_noise(fresh, loss_fn, loader).loss, 1e-3)
    top = hessian_top(model, loss_fn, loader, k=3)
    assert rep["hessian_top"]["eigenvalues"] == pytest.approx(top.eigenvalues.tolist(), rel=1e-5)


@pytest.mark.parametrize("argv,field", [
    (["probe", "no_such_pkg_xyz.train:make"], "factory: cannot import module 'no_such_pkg_xyz.train'"),
    (["probe", "probe_user_mlp:missing"], "factory: module 'probe_user_mlp' has no attribute 'missing'"),
    (["probe", "probe_user_mlp"], "factory: must be MODULE:CALLABLE"),
    (["probe", "probe_user_mlp:not_a_triple"], "factory: probe_user_mlp:not_a_triple() must return (model, loss_fn, data)"),
    (["probe", "probe_user_mlp:make", "--checkpoint", "nope.pt"], "--checkpoint: file not found: nope.pt"),
    (["probe", "probe_user_mlp:mean_loss"], "loss_fn: returned a scalar"),
])
def test_probe_user_errors_exit_2_with_one_line(user_modules, capsys, argv, field, monkeypatch):
    monkeypatch.chdir(user_modules)
    assert main(argv + ["--out", "rep"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"nnphys: error: {field}"), err
    assert not (user_modules / "rep").exists()


def test_probe_refuses_a_checkpoint_of_another_model(user_modules, capsys):
    torch.save({"weight": torch.zeros(2, 2)}, user_modules / "other.pt")
    assert main(["probe", "probe_user_mlp:make", "--checkpoint", str(user_modules / "other.pt"),
                 "--out", str(user_modules / "rep")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--checkpoint: " in err and "does not match the model" in err
