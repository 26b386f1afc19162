"""``nnphys probe``: one short report on a user's model at its current (or checkpointed) parameters.

The user names a callable by import path, ``"package.module:make"``; ``make()`` returns
``(model, loss_fn, data)`` in the practitioner tools' convention (:mod:`nnphys.curvature.inputs`:
``loss_fn`` per-sample, ``data`` a batch ``(X, y)`` or a re-iterable of batches). The probe then
measures, with the library's own calls (so every number can be reproduced by calling them):

- the loss ``L = (1/N) Σ ℓ_n``;
- gradient noise (:func:`nnphys.gradnoise.gradient_noise` at batch size ``B``): ``tr C_1``,
  ``tr C_B``, the top-``k`` eigenvalues of ``C_B``, and the noise-to-signal ratio
  ``tr C_B / ||∇L||²``;
- the NE strength that gives SGD at ``B`` the noise of batch size ``B_eff``: NE multiplies the
  noise covariance by ``f(α) = 1 + 2α + 2α²`` ([derived]; docs/studies/noise-enhancement.md), so
  ``α`` solves ``f(α) = B / B_eff`` (:func:`nnphys.noise_enhancement.alpha_for`);
- the Hessian's top-``k`` eigenpairs (:func:`~nnphys.curvature.hessian_top`), trace (Hutch++,
  :func:`~nnphys.curvature.hessian_trace`), spectral density (SLQ,
  :func:`~nnphys.curvature.hessian_density`), outliers ``n``, ``h*`` by the [default] gap rule
  (:func:`~nnphys.curvature.outliers`, with the density's bulk edge), and the escape outlook for SGD
  at ``(B, lr)`` (:func:`~nnphys.curvature.escape_outlook`: ``n_c``, the exponent of Mori22 eq. 17);

and writes ``report.md``, ``report.html``, ``report.json`` and three PNG figures (matplotlib, no display needed)
into one folder. The command line is ``nnphys probe MODULE:CALLABLE [--checkpoint F] [--out DIR]``.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from nnphys.errors import ConfigError, one_line

__all__ = ["ProbeSettings", "load_factory", "load_checkpoint", "probe", "write_report", "run_probe",
           "example"]


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    """What the probe computes; every field is [default] unless the user sets it."""

    batch_size: int | None = None   # B of the noise and of the outlook; None: the DataLoader's, else min(32, N)
    lr: float = 0.1                 # SGD learning rate of the escape outlook
    b_eff: float | None = None      # target effective batch size of NE; None: B / 8 (f(α) = 8)
    k: int = 10                     # eigenvalues of the noise and eigenpairs of the Hessian
    n_matvec: int = 30              # Hutch++ products for tr H
    density_probes: int = 5         # SLQ probe vectors
    density_steps: int = 40         # SLQ Lanczos steps per probe
    noise_samples: int = 2048       # at most this many samples for the gradient noise (its Gram is N x N)
    seed: int = 0                   # Lanczos start vector, Rademacher probes


# ----------------------------------------------------------------------------- loading


def load_factory(path: str) -> Callable[[], Any]:
    """``"package.module:callable"`` -> the callable (the current directory is importable, as with
    ``python -m``). Raises ConfigError naming ``factory`` when the path is malformed, the module
    is not found or has no such callable."""
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ConfigError("factory", f"must be MODULE:CALLABLE, e.g. mypkg.train:make_model_and_data "
                          f"(got {path!r})")
    mod_name, attr = path.split(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        # only a missing module named by the path is the user's typo; others are their code's bug
        if e.name is None or not (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise
        raise ConfigError("factory", f"cannot import module {mod_name!r} (no module named {e.name!r}; "
                          f"is its folder on PYTHONPATH or the current directory?)") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError("factory", f"module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError("factory", f"{path} is a {type(obj).__name__}, not a callable")
    return obj


def _unpack(made: Any, path: str) -> tuple[nn.Module, Callable, Any]:
    if not (isinstance(made, (tuple, list)) and len(made) == 3):
        raise ConfigError("factory", f"{path}() must return (model, loss_fn, data) "
                          f"(got {type(made).__name__}{f' of {len(made)} items' if isinstance(made, (tuple, list)) else ''})")
    model, loss_fn, data = made
    if not isinstance(model, nn.Module):
        raise ConfigError("factory", f"{path}() returned a model of type {type(model).__name__}, "
                          "not a torch.nn.Module")
    if not callable(loss_fn):
        raise ConfigError("factory", f"{path}() returned a loss_fn that is not callable")
    return model, loss_fn, data


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a ``state_dict`` (or a dict holding one under ``"state_dict"``, ``"model_state_dict"``
    or ``"model"``) saved with ``torch.save`` into ``model``, strictly. Raises ConfigError naming
    ``--checkpoint`` when the file is missing, unreadable or does not match the model."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--checkpoint", f"file not found: {p}")
    dev = next((t.device for t in model.parameters()), torch.device("cpu"))
    try:
        obj = torch.load(p, map_location=dev, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise ConfigError("--checkpoint", f"{p} cannot be read by torch.load(weights_only=True): "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not (isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise ConfigError("--checkpoint", f"{p} holds no state_dict (a dict of tensors)")
    try:
        model.load_state_dict(obj, strict=True)
    except RuntimeError as e:
        raise ConfigError("--checkpoint", f"{p} does not match the model: {one_line(e)[:300]}") from None


# ----------------------------------------------------------------------------- measuring


def _default_batch_size(data: Any, n: int) -> int:
    b = getattr(data, "batch_size", None)
    if isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= n:
        return b
    return min(32, n)


def probe(model: nn.Module, loss_fn: Callable, data: Any,
          settings: ProbeSettings = ProbeSettings()) -> tuple[dict, dict]:
    """Measure everything the report shows. Returns ``(report, results)``: ``report`` is plain
    JSON-ready data (see the module docstring), ``results`` the library's result objects
    (``gradient_noise``, ``hessian_top``, ``hessian_trace``, ``hessian_density``, ``outliers``,
    ``escape_outlook``) for figures and further use."""
    from nnphys.curvature import (
        CurvatureOperator, escape_outlook, hessian_density, hessian_top, hessian_trace, outliers,
    )
    from nnphys.curvature.inputs import json_safe, materialise
    from nnphys.gradnoise import gradient_noise
    from nnphys.noise_enhancement import alpha_for, ne_covariance_factor

    s = settings
    op = CurvatureOperator(model, loss_fn, data)  # checks model, data and loss once
    B = s.batch_size if s.batch_size is not None else _default_batch_size(data, op.N)
    b_eff = s.b_eff if s.b_eff is not None else B / 8
    alpha = alpha_for(B, b_eff)
    k = min(s.k, op.P)

    X, y = materialise(data, model)
    n_noise = min(op.N, s.noise_samples)
    noise_data = (X[:n_noise], y[:n_noise])
    gn = gradient_noise(model, loss_fn, noise_data, batch_size=min(B, n_noise), k=min(k, n_noise))
    top = hessian_top(op, None, None, k=k, seed=s.seed)
    tr = hessian_trace(op, None, None, n_matvec=s.n_matvec, seed=s.seed)
    dens = hessian_density(op, None, None, n_v=s.density_probes, m=s.density_steps, seed=s.seed)
    out = outliers(top, density=dens)
    eo = escape_outlook(op, None, None, batch_size=B, lr=s.lr, top=top, density=dens, trace=tr,
                        seed=s.seed)
    f_alpha = ne_covariance_factor(alpha)
    m1, m1_se = dens.moment(1)
    report = {
        "model": {"n_params": op.P, "n_samples": op.N, "dtype": str(op.dtype).removeprefix("torch."),
                  "device": str(op.device)},
        "settings": {**dataclasses.asdict(s), "batch_size": B, "b_eff": b_eff, "k": k},
        "loss": op.loss,
        "grad_norm": eo.grad_norm,
        "gradient_noise": {**gn.to_dict(), "n_samples_used": n_noise},
        "noise_enhancement": {
            "batch_size": B, "b_eff": b_eff, "alpha": alpha, "f_alpha": f_alpha,
            "rule": "NE multiplies the noise covariance by f(alpha) = 1 + 2 alpha + 2 alpha^2; "
                    "alpha solves f(alpha) = B / B_eff [derived]",
        },
        "hessian_top": top.to_dict(),
        "hessian_trace": tr.to_dict(),
        "hessian_density": {"n_matvec": dens.n_matvec, "sigma": dens.sigma, "trace_per_param": m1,
                            "trace_per_param_se": m1_se, "mass_above_zero": dens.mass_above(0.0),
                            "ritz_min": float(dens.nodes[dens.weights > 0].min()),
                            "ritz_max": float(dens.nodes[dens.weights > 0].max())},
        "outliers": out.to_dict(),
        "escape_outlook": eo.to_dict(),
    }
    results = dict(gradient_noise=gn, hessian_top=top, hessian_trace=tr, hessian_density=dens,
                   outliers=out, escape_outlook=eo)
    return json_safe(report), results


# ----------------------------------------------------------------------------- writing


def _g(v: Any, spec: str = ".4g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _figures(results: dict, out: Path) -> list[Path]:
    from matplotlib.figure import Figure  # the object API: no pyplot, no display, Agg canvas

    gn, top, dens, o = (results[k] for k in ("gradient_noise", "hessian_top", "hessian_density", "outliers"))
    paths = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        paths.append(out / name)
        fig.savefig(paths[-1], dpi=110)

    fig = Figure(figsize=(9, 3.5))
    a1, a2 = fig.subplots(1, 2)
    a1.hist(gn.per_sample_grad_norms.numpy(), bins=30)
    a1.set_xlabel("per-sample gradient norm ||∇ℓ_n||")
    a1.set_ylabel("samples")
    ev = gn.noise_eigenvalues.numpy()
    if len(ev):
        a2.semilogy(range(1, len(ev) + 1), ev.clip(min=1e-300), "o-")
    a2.set_xlabel("i")
    a2.set_ylabel(f"eigenvalue i of C_B (B = {gn.batch_size})")
    save(fig, "gradient_noise.png")

    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    lam = top.eigenvalues.numpy()
    colors = ["C3" if i < o.n else "C0" for i in range(len(lam))]
    ax.bar(range(1, len(lam) + 1), lam, color=colors)
    ax.set_xlabel("i")
    ax.set_ylabel(f"Hessian eigenvalue λ_i (outliers: red, n = {o.n})")
    save(fig, "hessian_top.png")

    fig = Figure(figsize=(5, 3.5))
    dens.plot(fig.subplots())
    save(fig, "hessian_density.png")
    return paths


def _rows(rep: dict) -> tuple[str, list[tuple[str, str]], list[str]]:
    """The report's header line, its ``(quantity, value)`` rows and its closing lines (one source
    for report.md and report.html)."""
    gn, ne, top, tr = rep["gradient_noise"], rep["noise_enhancement"], rep["hessian_top"], rep["hessian_trace"]
    o, eo, m = rep["outliers"], rep["escape_outlook"], rep["model"]
    head = (f"P = {m['n_params']} parameters, N = {m['n_samples']} samples ({m['dtype']}, {m['device']}); "
            f"B = {ne['batch_size']}, lr = {rep['settings']['lr']}, k = {rep['settings']['k']}.")
    rows = [
        ("loss L = (1/N) Σ ℓ_n", _g(rep['loss'], '.6g')),
        ("‖∇L‖", _g(rep['grad_norm'])),
        ("tr C_1 (single-sample noise)", _g(gn['trace_cov'])),
        (f"tr C_B (minibatch noise, B = {gn['batch_size']}, without replacement)", _g(gn['trace_noise'])),
        ("noise-to-signal tr C_B / ‖∇L‖²", _g(gn['noise_to_signal'])),
        ("top eigenvalues of C_B", ', '.join(_g(v) for v in gn['noise_eigenvalues'][:10])),
        (f"NE α for B_eff = {_g(ne['b_eff'])} (f(α) = 1 + 2α + 2α² = B/B_eff = {_g(ne['f_alpha'])})", _g(ne['alpha'])),
        (f"Hessian top-{len(top['eigenvalues'])}", ', '.join(_g(v) for v in top['eigenvalues'][:10])),
        (f"tr H (Hutch++, {tr['n_matvec']} products)", f"{_g(tr['trace'])} ± {_g(tr['stderr'], '.2g')}"),
        ("outliers n, h* [default gap rule]", f"{o['n']}, {_g(o['h_star'])}"),
        ("B/(η h*), n_c = 2(B/(η h*) + 1) (Mori22 eq. 19)", f"{_g(eo['B_over_eta_h'])}, {_g(eo['n_c'])}"),
        ("escape exponent a = B/(η h*) + 1 − n/2 (eq. 17)", _g(eo['exponent'])),
        ("noise vs (2L/B)H: tr C_B / (2 L f_B tr H)", _g(eo['trace_ratio'])),
    ]
    tail = [f"Regime: {eo['regime']}.",
            f"Gradient noise measured on {gn['n_samples_used']} of {m['n_samples']} samples. "
            "Every number is in report.json and can be reproduced with nnphys.gradient_noise, "
            "hessian_top, hessian_trace, hessian_density, outliers and escape_outlook."]
    return head, rows, tail


def _markdown(rep: dict, source: str, figures: list[Path]) -> str:
    head, rows, tail = _rows(rep)
    lines = [f"# nnphys probe: {source}", "", head, "", "| quantity | value |", "|---|---|"]
    lines += [f"| {q} | {v} |" for q, v in rows]
    lines += ["", tail[0], "", tail[1], ""]
    lines += [f"![{p.stem}]({p.name})" for p in figures]
    return "\n".join(lines) + "\n"


def _html(rep: dict, source: str, figures: list[Path]) -> str:
    """The same report as a standalone page (open it in a browser; figures beside it)."""
    e = html.escape
    head, rows, tail = _rows(rep)
    out = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>nnphys probe: {e(source)}</title>",
           "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td,th{border:1px solid #ccc;"
           "padding:2px 6px}table{border-collapse:collapse}img{max-width:100%}</style></head><body>",
           f"<h1>nnphys probe: {e(source)}</h1>", f"<p>{e(head)}</p>",
           "<table id='probe-table'><tr><th>quantity</th><th>value</th></tr>"]
    out += [f"<tr><td>{e(q)}</td><td>{e(v)}</td></tr>" for q, v in rows]
    out += ["</table>"] + [f"<p>{e(t)}</p>" for t in tail]
    out += [f"<figure><img src='{e(p.name)}' alt='{e(p.stem)}'><figcaption>{e(p.stem)}</figcaption></figure>"
            for p in figures]
    return "\n".join(out + ["</body></html>"]) + "\n"


def write_report(report: dict, results: dict, out: str | os.PathLike, source: str = "model") -> list[Path]:
    """Write ``report.md``, ``report.html``, ``report.json`` and the figures into the folder ``out`` (created);
    returns the paths written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    figs = _figures(results, out)
    (out / "report.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text(_markdown(report, source, figs))
    (out / "report.html").write_text(_html(report, source, figs))
    return [out / "report.md", out / "report.html", out / "report.json", *figs]


def run_probe(factory: str, *, checkpoint: str | os.PathLike | None = None,
              out: str | os.PathLike = "probe", settings: ProbeSettings = ProbeSettings()) -> dict:
    """The ``nnphys probe`` command as a function: load, (restore), measure, write; returns the
    report (also in ``out/report.json``). Its user errors are ConfigErrors naming the argument."""
    make = load_factory(factory)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ConfigError("--checkpoint", f"file not found: {checkpoint}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"{out} exists and is not a folder")
    model, loss_fn, data = _unpack(make(), factory)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    report, results = probe(model, loss_fn, data, settings)
    write_report(report, results, out, source=factory)
    return report


def summary_lines(rep: dict, out: str | os.PathLike) -> list[str]:
    """What ``nnphys probe`` prints: the headline numbers, the escape regime, the files written."""
    gn, ne, eo = rep["gradient_noise"], rep["noise_enhancement"], rep["escape_outlook"]
    return [f"loss {rep['loss']:.6g}; tr C_B {gn['trace_noise']:.4g} (B={gn['batch_size']}); NE alpha "
            f"{ne['alpha']:.4g} for B_eff={ne['b_eff']:g}; top Hessian eigenvalue "
            f"{rep['hessian_top']['eigenvalues'][0]:.4g}; outliers n={rep['outliers']['n']}",
            f"regime: {eo['regime']}",
            f"wrote {Path(out) / 'report.md'}, report.html, report.json and 3 figures"]


# ----------------------------------------------------------------------------- a demo factory


def example(n: int = 256, seed: int = 0):
    """A small float64 MLP ``8 -> 32 -> 1`` (tanh) trained by 200 steps of full-batch gradient
    descent on a teacher ``y = tanh(x · w)``, with the per-sample loss ``½ (f - y)²`` and the data
    as one batch ``(X, y)``: ``nnphys probe nnphys.probe:example`` runs anywhere."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g, dtype=torch.float64)
    y = torch.tanh(X @ torch.randn(8, 1, generator=g, dtype=torch.float64))
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) / math.sqrt(p.shape[-1]))

    def loss_fn(out, t):
        return 0.5 * ((out - t) ** 2).sum(1)

    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(200):
        opt.zero_grad()
        loss_fn(model(X), y).mean().backward()
        opt.step()
    return model, loss_fn, (X, y)
