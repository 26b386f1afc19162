"""The figures of noise-enhancement, depth-locality(-map) and the shared digits-MLP decoupling plot,
drawn from synthetic results in the studies' own formats (the calibration generators): they fit the
report's width at full size (so 8 pt labels stay >= 13 px on screen), their legends use the papers'
words, every regime-map cell is labelled and coloured as its C3 cell says, decoupling tick labels do
not overlap, and the new test-error curves are the seed means a plain loop computes."""

from __future__ import annotations

import io
import itertools
import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from nnphys.lab.report import CONTENT_PX, FIG_DPI, min_text_pt  # noqa: E402
from nnphys.studies import _kit, get_study  # noqa: E402
from nnphys.studies._shared.digits_mlp import _nice_log_ticks, plot_decoupling  # noqa: E402
from nnphys.studies.base import Result  # noqa: E402

# internal codes a legend or title must not show (arms, tasks, budgets, init names, run codes)
CODES = re.compile(r"\b(S_half|L2|LS|NE|S|L|T\d+s?|row\d+b?|equal_steps|equal_grad_evals|torch_default|"
                   r"he_normal|net local|net global)\b")
MIN_SCREEN_PX = 10.0  # the smallest text the report may show (8 pt at 120 dpi is 13.3 px unscaled)


# ------------------------------------------------------------------------------------------------
# synthetic results
# ------------------------------------------------------------------------------------------------


def _with_curves(r: Result, rng: np.random.Generator) -> Result:
    """``r`` with the per-evaluation arrays ``run`` stores (eval_steps; train_loss, test_error per member)."""
    steps = np.linspace(0, r.params["total_steps"], 6).round().astype(int)
    n = len(r.metrics["members"])
    final = np.nan_to_num(np.asarray(r.metrics["final"]["steps"]["test_error"], float), nan=0.9)
    decay = np.exp(-steps / max(1, steps[-1] / 4))
    test = final[:, None] + (0.9 - final[:, None]) * decay[None, :] + 0.01 * rng.standard_normal((n, len(steps)))
    loss = 2.0 * decay[None, :] + 0.01 + 0.001 * rng.random((n, len(steps)))
    dead = np.asarray(r.metrics["diverged"], bool)
    test[dead, 3:], loss[dead, 3:] = np.nan, np.nan
    r.inline_arrays = {"eval_steps": steps, "test_error": test, "train_loss": loss}
    return r


def ne_case():
    from nnphys.studies.noise_enhancement import calibration as NC

    study = get_study("noise-enhancement")
    spec = study.spec(**study.presets["quick"])
    rng = np.random.default_rng(0)
    res = [_with_curves(r, rng) for r in NC.gen_c7("effect")(rng, spec) + NC.gen_c6("effect")(rng, spec)]
    # one result per (task, arm): gen_c7 and gen_c6 both make S, L, NE; keep the first of each
    seen, uniq = set(), []
    for r in res:
        k = (r.params["task"], r.params["arm"])
        if k not in seen:
            seen.add(k)
            uniq.append(r)
    uniq += NC.gen_c1("effect", NC.C1_MARGIN)(rng, spec)
    uniq += [r for r in NC.gen_c2("effect", NC.C2_TOY_MARGIN, NC.C2_NET_MARGIN)(rng, spec) if r.params["kind"] == "toy"]
    return study, spec, uniq


def map_case(drop_one: bool = True):
    from nnphys.studies.depth_locality_map import calibration as MC

    study = get_study("depth-locality-map")
    spec = study.spec(**{**study.presets["quick"], "ns": [400, 800]})
    res = MC.gen_map("effect")(np.random.default_rng(1), spec)
    if drop_one:  # one cell without results: drawn as "missing"
        res = [r for r in res if not (r.params["n"] == 800 and r.params["init"] == "torch_default")]
    return study, spec, res


def dl_case():
    from nnphys.studies.depth_locality import calibration as DC

    study = get_study("depth-locality")
    spec = study.spec(**study.presets["quick"])
    gen = next(iter(DC.CALIBRATION["C3"].values()))
    return study, spec, gen(np.random.default_rng(2), spec)


def decoupling_runs(lo: float, hi: float, n_runs: int = 2, k: int = 12, seed: int = 0) -> list[dict]:
    """Runs in the digits-MLP format: per checkpoint, per probe, top-k decoupled / coupled eigenvalues."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_runs):
        cps = {}
        for ep in ("0", "10", "100"):
            x = np.sort(np.exp(rng.uniform(np.log(lo), np.log(hi), k)))[::-1]
            cps[ep] = {p: {"decoupled": x.tolist(), "coupled": (x * np.exp(0.2 * rng.standard_normal(k))).tolist()}
                       for p in ("gauss_newton", "hessian")}
        out.append({"checkpoints": cps})
    return out


def decoupling_figure(lo: float, hi: float):
    runs = decoupling_runs(lo, hi)
    fig, axes = _kit.subplots(2, 3, width=3.4, height=3.4)
    for i, p in enumerate(("gauss_newton", "hessian")):
        plot_decoupling(list(axes[i * 3:(i + 1) * 3]), runs, ["seed #0", "seed #1"], probe=p)
    for ax in axes:
        _kit.legend(ax)
    return fig


def all_figures():
    """(name, matplotlib figure) of every figure these tests cover."""
    out = []
    for case in (ne_case, map_case, dl_case):
        study, spec, res = case()
        out += [(f"{study.name}/{f.name}", f.figure) for f in study.figures(spec, res)]
    out.append(("shared/decoupling_spectra (narrow range)", decoupling_figure(0.02, 0.15)))
    out.append(("shared/decoupling_spectra (wide range)", decoupling_figure(0.5, 80.0)))
    return out


@pytest.fixture(scope="module")
def figures():
    figs = all_figures()
    yield dict(figs)
    for _, f in figs:
        plt.close(f)


def _png_width(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI, bbox_inches="tight")
    buf.seek(0)
    import struct

    return struct.unpack(">I", buf.getvalue()[16:20])[0]


# ------------------------------------------------------------------------------------------------
# legibility at the report's width
# ------------------------------------------------------------------------------------------------


def test_every_figure_shows_its_text_at_a_legible_size(figures):
    small = {}
    for name, fig in figures.items():
        w = _png_width(fig)
        px = min_text_pt(fig) * FIG_DPI / 72 * min(1.0, CONTENT_PX / w)
        if px < MIN_SCREEN_PX:
            small[name] = (w, round(px, 1))
    assert not small, f"figures whose smallest text shows below {MIN_SCREEN_PX} px in the report: {small}"


def test_the_legibility_measure_sees_a_too_wide_figure():
    # negative control: the old noise-enhancement layout (4 tasks side by side, 4.2 in each) at full 8 pt
    fig = plt.figure(figsize=(4 * 4.2, 2 * 3.4), layout="constrained")
    for i in range(8):
        ax = fig.add_subplot(2, 4, i + 1)
        ax.plot([0, 1], [0, 1], label="a line")
        ax.legend(fontsize=8)
        ax.tick_params(labelsize=8)
    w = _png_width(fig)
    plt.close(fig)
    assert min_text_pt(fig) == 8 and 8 * FIG_DPI / 72 * CONTENT_PX / w < MIN_SCREEN_PX


def test_subplots_narrows_a_grid_wider_than_the_report():
    fig, _ = _kit.subplots(2, 4, width=4.2, height=3.4)
    w, h = fig.get_size_inches()
    plt.close(fig)
    assert w <= _kit.REPORT_WIDTH_IN + 1e-9 and h == pytest.approx(6.8)
    assert _kit.REPORT_WIDTH_IN * FIG_DPI < CONTENT_PX


# ------------------------------------------------------------------------------------------------
# the papers' words
# ------------------------------------------------------------------------------------------------


def _words(fig) -> list[str]:
    texts = []
    for lg in list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]:
        texts += [t.get_text() for t in lg.get_texts()]
    texts += [ax.get_title() for ax in fig.axes]
    texts += [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    return [t for t in texts if t]


def test_legends_and_titles_use_the_papers_words(figures):
    bad = {name: [t for t in _words(fig) if CODES.search(t)] for name, fig in figures.items()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, bad


def test_the_code_check_sees_an_internal_code():
    fig, (ax,) = _kit.subplots()
    ax.plot([0, 1], [0, 1], label="SGD (S_half, S, L, L2)")
    ax.set_title("T2s MNIST-1D (small N), equal_steps")
    _kit.legend(ax)
    assert len([t for t in _words(fig) if CODES.search(t)]) == 2
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# noise enhancement: test error over training
# ------------------------------------------------------------------------------------------------


def test_ne_test_error_curves_are_the_seed_means_of_a_loop():
    from nnphys.studies.noise_enhancement._cells import cell_table, train_jobs
    from nnphys.studies.noise_enhancement.figures import arm_label, task_name

    study, spec, res = ne_case()
    figs = {f.name: f for f in study.figures(spec, res)}
    assert "test_error_curves" in figs and set(figs["test_error_curves"].claims) >= {"C4", "C5"}
    fig = figs["test_error_curves"].figure
    table = cell_table(spec, res)
    axes = fig.axes
    checked = 0
    for i, t in enumerate(spec.tasks):
        assert axes[2 * i].get_title() == task_name(t)
        lines = {ln.get_label(): ln for ln in axes[2 * i].get_lines()}
        lines_samples = {ln.get_label(): ln for ln in axes[2 * i + 1].get_lines()}
        for arm in spec.arms:
            for r in train_jobs(res, t, arm):
                alpha = spec.match_alpha if arm == "NE" else None
                sel = [k for k, m in enumerate(r.metrics["members"]) if m["lr"] == table[t]["lr"]
                       and not m["warmup_steps"] and (alpha is None or abs(m["alpha"] - alpha) < 1e-9)]
                te = r.arrays["test_error"]
                want = []
                for j in range(te.shape[1]):  # the oracle: a loop over members, float64, skipping nan
                    vals = [float(te[k, j]) for k in sel if math.isfinite(te[k, j])]
                    want.append(sum(vals) / len(vals) if vals else math.nan)
                ln = lines[arm_label(arm, spec, alpha)]
                np.testing.assert_allclose(ln.get_ydata(), want, rtol=1e-12, equal_nan=True)
                np.testing.assert_array_equal(ln.get_xdata(), r.arrays["eval_steps"])
                np.testing.assert_array_equal(lines_samples[arm_label(arm, spec, alpha)].get_xdata(),
                                              r.arrays["eval_steps"] * r.params["samples_per_step"])
                checked += 1
    assert checked >= 3 * len(spec.tasks)
    plt.close(fig)


def test_ne_curves_are_left_out_when_no_job_stored_them():
    study, spec, res = ne_case()
    for r in res:
        r.inline_arrays = {}
    names = [f.name for f in study.figures(spec, res)]
    assert "test_error_curves" not in names and "train_loss_curves" not in names and "alpha_sweep" in names


# ------------------------------------------------------------------------------------------------
# the regime map
# ------------------------------------------------------------------------------------------------


def test_regime_map_labels_and_colours_every_cell_and_has_a_colour_legend():
    from matplotlib.patches import Rectangle

    from nnphys.studies.depth_locality_map.claims import map_cells
    from nnphys.studies.depth_locality_map.figures import CATEGORY, category, cell_text, init_name

    study, spec, res = map_case()
    (f,) = study.figures(spec, res)
    fig = f.figure
    cells = map_cells(spec, res)
    assert any(c["C3"] is None for c in cells) and any(c["C3"] is not None and c["C3"].informative for c in cells)
    ax = fig.axes[0]
    rects = {(round(p.get_x() + 0.5), round(p.get_y() + 0.5)): p for p in ax.patches if isinstance(p, Rectangle)}
    texts = {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in ax.texts}
    assert len(rects) == len(texts) == len(cells) == len(spec.inits) * len(spec.ns)
    for c in cells:
        j, i = spec.ns.index(c["N"]), spec.inits.index(c["label"])
        c3 = c["C3"]
        assert texts[(j, i)] and texts[(j, i)] == cell_text(c3)  # never blank
        assert to_rgba(rects[(j, i)].get_facecolor()) == to_rgba(CATEGORY[category(c3)][0])
        if c3 is None:
            assert texts[(j, i)] == "missing"
        else:
            assert ("uninformative" in texts[(j, i)]) == (not c3.informative)
            assert f"d={c3.effect.mean:.3g}" in texts[(j, i)]
            assert bool(rects[(j, i)].get_hatch()) == (not c3.informative)
    (lg,) = fig.legends
    labels = [t.get_text() for t in lg.get_texts()]
    for cat in ("for", "against", "neither", "missing"):
        assert CATEGORY[cat][1] in labels
    assert [t.get_text() for t in ax.get_yticklabels()] == [init_name(s) for s in spec.inits]
    plt.close(fig)


def test_regime_map_category_follows_the_one_sided_tests():
    from nnphys.studies import protocol as P
    from nnphys.studies.depth_locality_map.figures import category

    class C:
        def __init__(self, mean, se):
            self.effect, self.informative = P.Effect(mean, se, 4.0, 5), True

    # t = mean/se with 4 df: the one-sided 5 % point is 2.132
    assert category(C(1.0, 0.4)) == "for" and category(C(-1.0, 0.4)) == "against"
    assert category(C(1.0, 0.5)) == "neither" and category(C(float("nan"), 0.1)) == "untested"
    assert category(None) == "missing"


# ------------------------------------------------------------------------------------------------
# decoupling spectra ticks
# ------------------------------------------------------------------------------------------------


def _overlaps(fig) -> list[tuple[str, str]]:
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labs = [t for t in axis.get_ticklabels(minor=False) + axis.get_ticklabels(minor=True)
                    if t.get_visible() and t.get_text()]
            lo, hi = axis.get_view_interval()
            labs = [t for t, v in zip(labs, [t.get_position()[0 if axis is ax.xaxis else 1] for t in labs])
                    if min(lo, hi) <= v <= max(lo, hi)]
            boxes = [(t.get_text(), t.get_window_extent(r)) for t in labs]
            bad += [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]
    return bad


@pytest.mark.parametrize("lo,hi", [(0.02, 0.15), (0.5, 80.0), (1e-4, 3.0), (3.0, 4.0)])
def test_decoupling_tick_labels_do_not_overlap(lo, hi):
    fig = decoupling_figure(lo, hi)
    assert not _overlaps(fig)
    for ax in fig.axes:
        assert len([t for t in ax.get_xticklabels() if t.get_text()]) >= 2
        assert ax.get_xlim() == ax.get_ylim()  # one range: the diagonal is the diagonal
    plt.close(fig)


def test_the_overlap_check_sees_matplotlibs_minor_labels():
    # negative control: the same figure with matplotlib's default log ticks (what plot_decoupling drew
    # before), which label the minor ticks of an axis spanning about a decade: 2x10^-2 3x10^-2 ...
    fig = decoupling_figure(0.03, 0.5)
    for ax in fig.axes:
        ax.set_xscale("log")  # resets the locators and formatters to matplotlib's defaults
        ax.set_yscale("log")
    assert _overlaps(fig)
    plt.close(fig)


@pytest.mark.parametrize("lo,hi", [(0.02, 0.15), (0.5, 80.0), (1e-6, 1e3), (3.0, 4.0), (0.9, 1.2)])
def test_nice_log_ticks(lo, hi):
    t = _nice_log_ticks(lo, hi)
    assert 1 <= len(t) <= 5 and all(lo <= v <= hi for v in t) and t == sorted(t)
    if hi / lo >= 2.5:
        assert len(t) >= 2


def test_min_text_pt_sees_the_smallest_text():
    fig, (ax,) = _kit.subplots()
    ax.plot([0, 1], [0, 1], label="x")
    _kit.legend(ax)
    assert min_text_pt(fig) == 8
    ax.add_artist(Text(0.5, 0.5, "tiny", fontsize=5))
    assert min_text_pt(fig) == 5
    ax.add_artist(Text(0.5, 0.5, "hidden", fontsize=3, visible=False))
    assert min_text_pt(fig) == 5
    plt.close(fig)
