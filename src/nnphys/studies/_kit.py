"""The study kit: what every study's analysis and figures share.

- :class:`ClaimBook` holds a study's claims: one function per claim registered with
  :meth:`ClaimBook.claim` (its docstring's first paragraph is the statement, so a claim's wording
  lives in one place) and builds :class:`~nnphys.studies.base.Claim` objects carrying the rule and
  its version;
- :class:`Missing` is the one exception an analysis may turn into ``inconclusive``: it names the
  data that is missing. Every other exception is a bug and propagates (:meth:`ClaimBook.guard`);
- verdict rules: :func:`band_verdict` (the three-way CI-in-band rule), :func:`all_of`,
  :func:`significant`, :func:`spearman`, :func:`spearman_test`;
- result grouping: :func:`by_kind`, :func:`need`;
- figure helpers: :func:`subplots` (legends >= 8 pt, at most :data:`REPORT_WIDTH_IN` wide), :func:`errorbar`, :func:`band`,
  :func:`mark_diverged`, :func:`log_ticks`.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as _st

from nnphys.stats import mean_se, significant, spearman  # noqa: F401  (re-exported)
from nnphys.studies import protocol as _protocol
from nnphys.studies.base import Claim, ClaimInfo, Result, Verdict

__all__ = [
    "ClaimBook", "Missing", "band_verdict", "all_of", "significant", "spearman", "spearman_test",
    "mean_se", "fnum", "by_kind", "need", "take_members", "resample_result", "subplots", "errorbar", "band", "mark_diverged", "log_ticks",
    "legend", "link_claims", "LEGEND_PT", "REPORT_WIDTH_IN", "close",
]


# ================================================================================================
# claims
# ================================================================================================


class Missing(Exception):
    """Raised inside a claim function when data it needs is absent (jobs missing, failed or
    diverged). :meth:`ClaimBook.guard` turns it into an ``inconclusive`` claim that says what."""

    def __init__(self, what: str):
        self.what = what
        super().__init__(what)


class ClaimBook:
    """A study's claims: each one's statement, tag, pre-registered rule and deciding function.

    The shape every shipped study uses: ``claims.py`` makes ``BOOK = ClaimBook()`` and registers
    one function per claim, named after its id, with :meth:`claim`::

        @BOOK.claim("C4", tag="paper", rule=Rule(...))
        def c4(spec, ctx) -> Claim:
            \"\"\"The claim's one-paragraph statement (what ``nnphys list --claims`` prints).

            Rule: the test in words; the Rule object carries its parameters.\"\"\"
            ...
            return BOOK.judged("C4", judge(...))

    The first paragraph of the docstring is the statement, so a claim is worded once.
    :meth:`analyse` calls every function in registration order on one shared context.

    The older shape is still accepted (plug-ins): ``ClaimBook(CLAIMS)`` with a ``{id: ClaimInfo}``
    table and :meth:`rule` to attach deciding functions. Every claim the book makes carries its
    rule and version (``Claim.rule``)."""

    def __init__(self, claims: Mapping[str, ClaimInfo] | None = None):
        self.claims: dict[str, ClaimInfo] = dict(claims or {})
        self.functions: dict[str, Callable[..., Any]] = {}
        self._versions: dict[str, str] = {}  # inspect.getsource is slow: once per claim per process

    def claim(self, cid: str, *, tag: str, rule: Any = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register claim ``cid`` decided by ``fn(spec, ctx)``; its statement is the
        first paragraph of ``fn``'s docstring (whitespace collapsed), ``rule`` its pre-registered
        :class:`~nnphys.studies.protocol.Rule` (None: not judged through the protocol)."""
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if cid in self.claims:
                raise KeyError(f"claim {cid!r} registered twice")
            doc = inspect.getdoc(fn) or ""
            statement = " ".join(doc.split("\n\n", 1)[0].split())
            if not statement:
                raise ValueError(f"claim {cid!r}: {fn.__name__} has no docstring (its first paragraph is the statement)")
            self.claims[cid] = ClaimInfo(statement, tag, rule)  # type: ignore[arg-type]
            self.functions[cid] = fn
            return fn
        return deco

    def analyse(self, spec: Any, ctx: Any) -> list[Claim]:
        """Every registered claim, in registration order, as ``fn(spec, ctx)`` under :meth:`guard`."""
        return [self.guard(cid, fn, spec, ctx) for cid, fn in self.functions.items()]

    def rule(self, *cids: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator (older shape): ``fn`` decides the claims ``cids`` of the ``CLAIMS`` table (its
        source enters their versions)."""
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            for cid in cids:
                if cid not in self.claims:
                    raise KeyError(f"claim {cid!r} is not in the CLAIMS table")
                self.functions[cid] = fn
                self._versions.pop(cid, None)
            return fn
        return deco

    def version(self, cid: str) -> str:
        """The rule version of claim ``cid`` (see :func:`nnphys.studies.protocol.rule_version`)."""
        if cid not in self._versions:
            self._versions[cid] = _protocol.rule_version(self.claims[cid].rule, self.functions.get(cid))
        return self._versions[cid]

    def rule_dict(self, cid: str) -> dict[str, Any]:
        r = self.claims[cid].rule
        return {**(r.to_dict() if r is not None else {}), "version": self.version(cid)}

    def make(self, cid: str, verdict: Verdict, evidence: dict[str, Any], summary: str = "") -> Claim:
        info = self.claims[cid]
        return Claim(cid, info.statement, info.tag, verdict, evidence, summary, self.rule_dict(cid))

    def judged(self, cid: str, j: "_protocol.Judgement", summary_prefix: str = "", **evidence: Any) -> Claim:
        """A claim from the protocol's :class:`~nnphys.studies.protocol.Judgement`; ``evidence``
        adds context (regime, figures' numbers) next to the judgement's own evidence."""
        summary = f"{summary_prefix}{j.summary}" if summary_prefix else j.summary
        return self.make(cid, j.verdict, {**j.evidence, **evidence}, summary)

    def holds_if(self, cid: str, ok: bool | None, evidence: dict[str, Any], summary: str = "") -> Claim:
        """``holds`` when ``ok``, ``fails`` when not, ``inconclusive`` when ``ok is None``."""
        verdict: Verdict = "inconclusive" if ok is None else ("holds" if ok else "fails")
        return self.make(cid, verdict, evidence, summary)

    def inconclusive(self, cid: str, why: str, **evidence: Any) -> Claim:
        return self.make(cid, "inconclusive", {"reason": why, **evidence}, why)

    def missing(self, cid: str, what: str) -> Claim:
        return self.make(cid, "inconclusive", {"missing": what}, f"no data: {what}")

    def guard(self, cid: str, fn: Callable[..., Claim], *args: Any, **kwargs: Any) -> Claim:
        """``fn(*args, **kwargs)``; a :class:`Missing` becomes ``inconclusive`` naming what is
        missing. Any other exception propagates: an analysis bug must not look like a result."""
        try:
            return fn(*args, **kwargs)
        except Missing as e:
            return self.missing(cid, e.what)


# ================================================================================================
# verdict rules
# ================================================================================================


def band_verdict(lo: float, hi: float, band_lo: float, band_hi: float) -> Verdict:
    """The three-way rule for a confidence interval ``[lo, hi]`` against a band:
    ``holds`` if the CI lies inside the band, ``fails`` if it lies wholly outside, else
    ``inconclusive``. A non-finite end makes it ``inconclusive``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if lo > hi:
        lo, hi = hi, lo
    if band_lo <= lo and hi <= band_hi:
        return "holds"
    if hi < band_lo or lo > band_hi:
        return "fails"
    return "inconclusive"


def all_of(verdicts: Iterable[Verdict]) -> Verdict:
    """Conjunction of verdicts: ``fails`` if any fails, ``holds`` if all hold (and there is at
    least one), else ``inconclusive``."""
    vs = list(verdicts)
    if any(v == "fails" for v in vs):
        return "fails"
    if vs and all(v == "holds" for v in vs):
        return "holds"
    return "inconclusive"


def spearman_test(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value (exact permutation p for n <= 9, else the
    t approximation). ``(nan, nan)`` when either input is constant or n < 3."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    if len(x) <= 9:
        res = _st.spearmanr(x, y)
        rho = float(res.statistic)
        perm = _st.permutation_test((y,), lambda yy: _st.spearmanr(x, yy).statistic,
                                    permutation_type="pairings", n_resamples=np.inf)
        return rho, float(perm.pvalue)
    res = _st.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def fnum(v: Any, nd: int = 5) -> Any:
    """A JSON-able rounded number; ``None`` stays ``None``, nan/inf stay floats."""
    if v is None:
        return None
    v = float(v)
    return round(v, nd) if math.isfinite(v) else v


# ================================================================================================
# results
# ================================================================================================


def by_kind(results: Iterable[Result], key: str = "kind", ok_only: bool = True) -> dict[str, list[Result]]:
    """Results grouped by ``params[key]`` (done ones only unless ``ok_only=False``)."""
    out: dict[str, list[Result]] = {}
    for r in results:
        if r.ok or not ok_only:
            out.setdefault(r.params.get(key, "?"), []).append(r)
    return out


def take_members(obj: Any, idx: np.ndarray, n_members: int) -> Any:
    """``obj`` with every list (or 1-D array) of length ``n_members`` re-indexed by ``idx``,
    recursing into dicts and into lists of other lengths. For bootstrap resampling of the seeds
    (members) of an ensemble job's metrics: ``take_members(r.metrics, idx, len(seeds))``."""
    if isinstance(obj, dict):
        return {k: take_members(v, idx, n_members) for k, v in obj.items()}
    if isinstance(obj, np.ndarray) and obj.ndim >= 1 and obj.shape[0] == n_members:
        return obj[idx]
    if isinstance(obj, list):
        if len(obj) == n_members:
            return [obj[int(i)] for i in idx]
        return [take_members(v, idx, n_members) for v in obj]
    return obj


def resample_result(r: Result, idx: np.ndarray, n_members: int) -> Result:
    """A copy of ``r`` whose member-indexed metrics are re-indexed by ``idx`` (arrays untouched)."""
    import dataclasses

    return dataclasses.replace(r, metrics=take_members(r.metrics, idx, n_members))


def need(groups: Mapping[str, list[Result]], kind: str) -> list[Result]:
    """``groups[kind]``, or :class:`Missing` naming the kind when there are none."""
    rs = groups.get(kind)
    if not rs:
        raise Missing(f"{kind} jobs (none done)")
    return rs


# ================================================================================================
# figures
# ================================================================================================

LEGEND_PT = 8  # the smallest legend font the report accepts
# The widest figure (inches at the report's 120 dpi) the HTML report shows at full size: its content
# column is 1200 px (nnphys.lab.report.CONTENT_PX); 9.6 in = 1152 px leaves room for the margin
# bbox_inches="tight" adds. A wider figure is scaled down by the browser and its 8 pt labels with it
# (a 2029 px figure put them at ~7 px), so subplots() narrows the panels of a wider grid instead.
REPORT_WIDTH_IN = 9.6


def subplots(nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2, **kw: Any):
    """``(fig, axes)`` with the lab's sizes: ``width`` x ``height`` inches per panel, legend and
    tick labels >= 8 pt, constrained layout. ``axes`` is always a flat array. A grid wider than
    :data:`REPORT_WIDTH_IN` gets narrower panels (never below 2.4 in; past that, lay the grid out
    in fewer columns), so the report shows it at full size and its labels stay legible."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if width * ncols > REPORT_WIDTH_IN:
        width = max(REPORT_WIDTH_IN / ncols, 2.4)

    with plt.rc_context({"legend.fontsize": LEGEND_PT, "xtick.labelsize": LEGEND_PT,
                         "ytick.labelsize": LEGEND_PT, "axes.labelsize": 9, "axes.titlesize": 9}):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                                 layout="constrained", squeeze=False, **kw)
    return fig, axes.ravel()


def close(fig: Any) -> None:
    """Free a figure that will not be returned (pyplot keeps every figure it made)."""
    import matplotlib.pyplot as plt

    plt.close(fig)


def legend(ax, **kw: Any):
    """``ax.legend`` at >= 8 pt (unless a larger size is asked for)."""
    kw["fontsize"] = max(float(kw.get("fontsize", LEGEND_PT)), LEGEND_PT)
    return ax.legend(**kw)


def errorbar(ax, x, mean, se=None, *, z: float = 1.0, **kw: Any):
    """Points with ``z * se`` error bars; non-finite means are skipped (mark them with
    :func:`mark_diverged`)."""
    x, mean = np.asarray(x, float), np.asarray(mean, float)
    se = np.zeros_like(mean) if se is None else np.nan_to_num(np.asarray(se, float), nan=0.0)
    keep = np.isfinite(mean) & np.isfinite(x)
    kw.setdefault("capsize", 2)
    kw.setdefault("marker", "o")
    kw.setdefault("ms", 4)
    return ax.errorbar(x[keep], mean[keep], yerr=z * se[keep], **kw)


def band(ax, x, lo, hi, *, alpha: float = 0.2, **kw: Any):
    """A shaded band between ``lo`` and ``hi`` (e.g. mean +- se over seeds)."""
    x, lo, hi = np.asarray(x, float), np.asarray(lo, float), np.asarray(hi, float)
    keep = np.isfinite(lo) & np.isfinite(hi)
    return ax.fill_between(x[keep], lo[keep], hi[keep], alpha=alpha, lw=0, **kw)


def mark_diverged(ax, x, y, *, label: str | None = "diverged", **kw: Any):
    """Diverged or censored runs as red crosses at ``(x, y)`` (``y`` e.g. the axis top), so a
    missing point is visible instead of vanishing."""
    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    if x.size == 0:
        return None
    kw.setdefault("color", "red")
    kw.setdefault("marker", "x")
    kw.setdefault("s", 30)
    kw.setdefault("zorder", 5)
    return ax.scatter(x, y, label=label, **kw)


def link_claims(figs: list, mapping: Mapping[str, Sequence[str]]) -> list:
    """Set each figure's ``claims`` from ``mapping`` (figure name -> claim ids), so the report
    links every claim row to the figures that show it. Returns ``figs``."""
    for f in figs:
        if f.name in mapping:
            f.claims = tuple(mapping[f.name])
    return figs


def log_ticks(ax, values: Sequence[float], axis: str = "x") -> None:
    """Log-scaled ``axis`` with major ticks labelled at ``values`` and no minor labels."""
    from matplotlib.ticker import NullFormatter

    vals = sorted({float(v) for v in values if v is not None and float(v) > 0})
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if vals:
        (ax.set_xticks if axis == "x" else ax.set_yticks)(vals, [f"{v:g}" for v in vals])
    a.set_minor_formatter(NullFormatter())
