"""``report.md`` and ``report.html``.

Layout: a scorecard (one row per study: papers, headline claims and their verdicts, scale and
seeds, a one-sentence reading), a table of contents, then per study the claims table (id, tag,
statement, verdict, verdict stability, a short evidence summary, a link to the claim's figure),
its figures (PNG and PDF, legends checked >= 8 pt), provenance (commit, command, engine,
machine, versions, the seed rule and range) and the full evidence as collapsible JSON.
``claims.json`` holds every claim; ``scorecard.json`` the scorecard with stability (read by
:mod:`nnphys.lab.docs_tables`).
"""

from __future__ import annotations

import html
import json
import math
import re
import shlex
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from nnphys.errors import ConfigError, one_line  # noqa: E402
from nnphys.lab.docs_tables import md_cell as _md_cell  # noqa: E402
from nnphys.lab.outcomes import Failure, failed_note, failures, guard_claims  # noqa: E402
from nnphys.lab.runs import run_overrides, scale_text  # noqa: E402
from nnphys.lab.stability import (  # noqa: E402
    DEFAULT_RESAMPLES, FRAGILE_BELOW, MIN_RESAMPLES, Stability, verdict_stability)
from nnphys.lab.store import Store, to_json  # noqa: E402
from nnphys.seeding import SEED_RULE  # noqa: E402
from nnphys.lab import overview, published  # noqa: E402
from nnphys.studies.base import Claim, Study  # noqa: E402

_PUBLISHED = published.load()

_BADGE = {"holds": "#1a7f37", "fails": "#cf222e", "inconclusive": "#9a6700", "uninformative": "#57606a"}
NOT_RECORDED = "not recorded"
SUMMARY_CHARS = 160  # [default] evidence cells in the tables are cut here; the JSON keeps all
LEGEND_MIN_PT = 8.0
# Figures are written at FIG_DPI and shown in a content column CONTENT_PX wide (the CSS below): a
# figure up to CONTENT_PX wide shows at full size, its 8 pt text at 8 * 120 / 72 = 13.3 px; a wider
# one is scaled down with its text. Each <img> carries data-text-pt (its smallest text) and data-dpi,
# so a browser check can compute the on-screen size of the smallest text (tests/test_report_browser.py).
FIG_DPI = 120
CONTENT_PX = 1200

_CLAIM_ID = re.compile(r"\b([A-Z]\d+[a-z]?)\b")


@dataclass
class StudyReport:
    study: Study
    run: dict[str, Any]
    counts: dict[str, int]
    claims: list[Claim] = field(default_factory=list)
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (png, pdf, caption)
    figure_claims: dict[str, list[str]] = field(default_factory=dict)  # claim id -> figure stems
    figure_text_pt: dict[str, float] = field(default_factory=dict)  # png path -> smallest text (pt)
    legend_warnings: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)  # distinct job seeds (ints only)
    versions: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    compute_s: float = 0.0
    stability: Stability | None = None
    stability_error: str | None = None
    error: str | None = None
    failures: list[Failure] = field(default_factory=list)  # failed planned jobs, grouped by reason
    runs: list[dict[str, Any]] = field(default_factory=list)  # every recorded run of the study, oldest first

    @property
    def name(self) -> str:
        return self.study.name

    def headline(self) -> list[Claim]:
        by_id = {c.id: c for c in self.claims}
        ids = [i for i in self.study.headline if i in by_id]
        if not ids:
            ids = [c.id for c in self.claims if c.tag == "paper"] or list(by_id)
        return [by_id[i] for i in ids]


# ---------------------------------------------------------------------------------------------
# collecting
# ---------------------------------------------------------------------------------------------


def _seeds(params: Any, out: list[int]) -> None:
    """Integer seeds anywhere in a job's parameters (keys containing ``seed``; ``None`` = unset)."""
    if not isinstance(params, dict):
        return
    for k, v in params.items():
        if isinstance(v, dict):
            _seeds(v, out)
        elif "seed" in k.lower():
            for s in v if isinstance(v, (list, tuple)) else [v]:
                if isinstance(s, int) and not isinstance(s, bool):
                    out.append(s)


def run_meta(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    """The provenance dict of ``run`` (``nnphys.lab.provenance.collect``'s keys) or ``{}`` when the
    store predates it: from ``run["meta"]`` or the matching row of ``Store.runs(study)``."""
    if isinstance(run.get("meta"), dict) and run["meta"]:
        return run["meta"]
    runs = getattr(store, "runs", None)
    if not callable(runs):
        return {}
    try:
        rows = list(runs(run["study"]))
    except TypeError:
        rows = [r for r in runs() if r.get("study") == run["study"]]
    match = [r for r in rows if r.get("id") == run.get("id")] or rows[-1:]
    meta = match[0].get("meta") if match else None
    return meta if isinstance(meta, dict) else {}


def _small_legends(fig: Any) -> list[float]:
    """Font sizes (pt) of legend texts below ``LEGEND_MIN_PT`` in a matplotlib figure."""
    legends = list(getattr(fig, "legends", []))
    for ax in fig.axes:
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    return sorted({round(t.get_fontsize(), 1) for lg in legends for t in lg.get_texts()
                   if t.get_fontsize() < LEGEND_MIN_PT - 1e-9})


def min_text_pt(fig: Any) -> float:
    """The smallest font size (pt) of the visible, non-empty texts of a matplotlib figure (titles,
    labels, tick labels, legends, annotations); ``nan`` when it has none."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float("nan")


def _close(fig: Any) -> None:
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # noqa: BLE001 - a figure made without pyplot has nothing to close
        pass


def study_report(store: Store, study: Study, fig_dir: Path, *, n_resamples: int = DEFAULT_RESAMPLES,
                 stability_seed: int = 0, allow_fewer: bool = False) -> StudyReport | None:
    """Analyse the latest run of ``study`` in ``store``; None when it never ran there."""
    run = store.latest_run(study.name)
    if run is None:
        return None
    results = store.results(study.name, run["keys"])
    counts = {"planned": len(run["keys"]), "done": 0, "failed": 0, "diverged": 0}
    for r in results:
        counts[r.status] += 1
    rep = StudyReport(study, run, counts, meta=run_meta(store, run), failures=failures(results),
                      runs=list(store.runs(study.name)))
    rep.compute_s = sum((r.ended or 0) - (r.started or 0) for r in results)
    seeds: list[int] = []
    for r in results:
        _seeds(r.params, seeds)
    rep.seeds = sorted(set(seeds))
    planned = set(run["keys"])
    vers = {to_json(row["versions"]) for row in store.rows(study.name) if row["key"] in planned}
    rep.versions = [json.loads(v) for v in sorted(vers)]
    try:
        spec = study.spec(**run["spec"])
        rep.claims = list(study.analyse(spec, results))
        fig_dir.mkdir(parents=True, exist_ok=True)
        ids = {c.id for c in rep.claims}
        for fig in study.figures(spec, results):
            png, pdf = fig_dir / f"{fig.name}.png", fig_dir / f"{fig.name}.pdf"
            small = _small_legends(fig.figure)
            if small:
                rep.legend_warnings.append(f"{fig.name}: legend text at {', '.join(map(str, small))} pt "
                                           f"(< {LEGEND_MIN_PT:g} pt)")
            rep.figure_text_pt[str(png)] = min_text_pt(fig.figure)
            fig.figure.savefig(png, dpi=FIG_DPI, bbox_inches="tight")
            fig.figure.savefig(pdf, bbox_inches="tight")
            _close(fig.figure)
            rep.figures.append((str(png), str(pdf), fig.caption))
            named = getattr(fig, "claims", None) or _CLAIM_ID.findall(f"{fig.name} {fig.caption}")
            for cid in named:
                if cid in ids:
                    rep.figure_claims.setdefault(cid, []).append(fig.name)
    except Exception:  # an analysis bug must not hide the other studies' reports
        rep.error = traceback.format_exc()
        return rep
    try:
        rep.stability = verdict_stability(study, spec, results, rep.claims, n_resamples=n_resamples,
                                          seed=stability_seed, allow_fewer=allow_fewer)
    except Exception:  # a resample that breaks analyse is a bug worth showing, not hiding the claims
        rep.stability_error = traceback.format_exc()
    # verdicts on a grid with failed jobs are shown inconclusive (nnphys.lab.outcomes); the
    # stability above is that of the verdicts on the finished jobs
    rep.claims = guard_claims(rep.claims, rep.failures)
    return rep


# ---------------------------------------------------------------------------------------------
# text pieces shared by markdown and HTML
# ---------------------------------------------------------------------------------------------


def _finite_json(obj: Any) -> Any:
    """NaN and infinities as null: claims.json is standard JSON for any reader."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return _finite_json(obj.item())
        except (TypeError, ValueError):
            return str(obj)
    return obj


def _fmt_time(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def short(text: str, n: int = SUMMARY_CHARS) -> str:
    """``text`` on one line, cut at a word boundary to at most ``n`` characters (with an ellipsis)."""
    t = one_line(text)
    if len(t) <= n:
        return t
    cut = t[: n - 1]
    if " " in cut[n // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


def claim_summary(c: Claim) -> str:
    """The claim's own summary, or a compact rendering of its scalar evidence when it has none."""
    if c.summary:
        return short(c.summary)
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
             for k, v in c.evidence.items() if isinstance(v, (int, float, str, bool)) or v is None]
    return short("; ".join(parts) or "(see the full evidence)")


def anchor(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts)).strip("-").lower()


def stability_text(rep: StudyReport, cid: str) -> str:
    if rep.stability_error:
        return "error"
    st = rep.stability
    if st is None or cid not in st.agree:
        return "n/a"
    pct = f"{100 * st.agree[cid]:.0f} %"
    return f"{pct} fragile" if st.fragile(cid) else pct


def fragile_ids(rep: StudyReport) -> list[str]:
    st = rep.stability
    return [c.id for c in rep.claims if st is not None and st.fragile(c.id)]


def _seed_range(seeds: list[int]) -> str:
    if not seeds:
        return "-"
    if len(seeds) <= 8:
        return ", ".join(map(str, seeds))
    if seeds[-1] >= 2**32:  # 63-bit values from the seed rule: their range says nothing
        return f"{len(seeds)} distinct values derived by the seed rule"
    return f"{len(seeds)} distinct values in [{seeds[0]}, {seeds[-1]}]"


def scale_and_seeds(rep: StudyReport) -> str:
    base = rep.run["spec"].get("seed")
    out = f"{scale_text(rep.run)}; {rep.counts['done']}/{rep.counts['planned']} jobs done"
    if base is not None:
        out += f"; base seed {base}"
    return out + f"; job seeds {_seed_range(rep.seeds)}"


def reading(rep: StudyReport) -> str:
    """One sentence: what the headline does, how the rest does, what is fragile."""
    if rep.error:
        return "The analysis failed (a bug): no verdicts."
    if not rep.claims:
        return "No claims were checked."
    head = rep.headline()
    verdicts = [c.verdict for c in head]
    scale = rep.run.get("scale") or "this"
    if run_overrides(rep.run):
        scale += " (with overrides)"
    if all(v == "holds" for v in verdicts):
        h = "holds"
    elif all(v == "fails" for v in verdicts):
        h = "fails"
    elif all(v == "inconclusive" for v in verdicts):
        h = "is inconclusive"
    elif all(v == "uninformative" for v in verdicts):
        h = "is uninformative in this regime"
    else:
        h = "is mixed (" + ", ".join(f"{sum(v == k for v in verdicts)} {k}" for k in _BADGE
                                     if any(v == k for v in verdicts)) + ")"
    ids = ", ".join(c.id for c in head)
    n_hold = sum(c.verdict == "holds" for c in rep.claims)
    s = f"The headline ({ids}) {h} at {scale} scale; {n_hold}/{len(rep.claims)} claims hold"
    frag = fragile_ids(rep)
    if frag:
        s += f"; fragile: {', '.join(frag)}"
    elif rep.stability is not None:
        s += "; no verdict is fragile"
    if rep.counts["diverged"] or rep.counts["failed"]:
        s += f"; {rep.counts['failed']} jobs failed, {rep.counts['diverged']} diverged"
    note = failed_note(rep.failures)
    if note:
        s += f"; verdicts inconclusive because {note}"
    return s + "."


def _versions_text(rep: StudyReport) -> str:
    v = rep.meta.get("versions")
    if isinstance(v, dict) and v:
        return ", ".join(f"{k} {val}" for k, val in sorted(v.items()))
    return "; ".join(", ".join(f"{k} {val}" for k, val in sorted(ver.items())) for ver in rep.versions) or "-"


def _meta(rep: StudyReport, key: str) -> Any:
    v = rep.meta.get(key)
    return NOT_RECORDED if v is None or v == "" else v


def provenance(rep: StudyReport) -> list[tuple[str, str]]:
    c, run, m = rep.counts, rep.run, rep.meta
    wall = (run["ended"] or time.time()) - run["started"]
    commit = m.get("git_commit")
    if commit:
        dirty = m.get("git_dirty")
        commit = f"{commit}" + (" (dirty: uncommitted changes)" if dirty else "" if dirty is False else
                                " (dirty flag not recorded)")
    argv = m.get("argv")
    host = NOT_RECORDED
    if m.get("host") or m.get("cpu_model") or m.get("cpu_count"):
        host = f"{_meta(rep, 'host')}; CPU {_meta(rep, 'cpu_model')}; {_meta(rep, 'cpu_count')} cores"
    st = rep.stability
    if rep.stability_error:
        stab = "the bootstrap raised (see below)"
    elif st is None:
        stab = "n/a (the study has no resample hook)"
    else:
        stab = (f"{st.n_resamples} bootstrap resamples of the seeds, generator "
                f"numpy_rng({st.seed}, 'verdict-stability', '{rep.name}'), {_fmt_time(st.seconds)}; "
                f"fragile below {FRAGILE_BELOW:.0%} agreement")
    return [
        ("papers", "; ".join(rep.study.papers)),
        ("run", f"#{run.get('id')} (the latest of {len(rep.runs) or 1} recorded run(s) of this study; its "
                "jobs are analysed)"),
        ("scale", scale_text(run)),
        ("jobs", f"{c['planned']} planned, {c['done']} done, {c['failed']} failed, {c['diverged']} diverged"),
        ("compute time (sum over jobs)", _fmt_time(rep.compute_s)),
        ("wall time of the last run", _fmt_time(wall)),
        ("git commit", commit or NOT_RECORDED),
        ("command", shlex.join(map(str, argv)) if isinstance(argv, list) and argv else NOT_RECORDED),
        ("engine", f"{m.get('engine') or run.get('engine') or NOT_RECORDED}; workers {_meta(rep, 'workers')}; "
                   f"threads {_meta(rep, 'threads')}"),
        ("host", host),
        ("device", str(m.get("device") or (f"{run['spec']['device']} (from the spec)" if run["spec"].get("device")
                                           else NOT_RECORDED))),
        ("python", str(_meta(rep, "python"))),
        ("library versions", _versions_text(rep)),
        ("seed rule", SEED_RULE),
        ("seeds", _seed_range(rep.seeds) + (f" (base seed {run['spec']['seed']})"
                                            if run["spec"].get("seed") is not None else "")),
        ("verdict stability", stab),
        ("spec", json.dumps(run["spec"], sort_keys=True)),
    ]


def _when(run: dict[str, Any]) -> str:
    started = run.get("started")
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "-"


def _figure_target(rep: StudyReport, cid: str) -> tuple[str, str] | None:
    """(anchor, label) of the claim's figure, or of the study's figures when none names it."""
    named = rep.figure_claims.get(cid)
    if named:
        return anchor("fig", rep.name, named[0]), named[0]
    if rep.figures:
        return anchor("figures", rep.name), "figures"
    return None


def _claims_with_figures(rep: StudyReport) -> list[tuple[Claim, tuple[str, str] | None]]:
    return [(c, _figure_target(rep, c.id)) for c in rep.claims]


def rule_text(c: Claim, rep: "StudyReport | None" = None) -> str:
    """The claim's pre-registered rule in one line, with its version ('' for a claim without),
    and a mark when the rule differs from the one of the published run at the report's scale."""
    text = _rule_line(c)
    if rep is not None and text:
        mark = published.revised(_PUBLISHED, rep.name, rep.run.get("scale"), c.id, (c.rule or {}).get("version"))
        if mark:
            text += f"; **{mark}**"
    return text


def rule_lines(study: Study) -> dict[str, list[str]]:
    """Each claim's pre-registered rule as printable lines (``nnphys list --claims``): kind, test,
    SESOI/margin/tolerance, α, null, alternative, what would make it fail, version."""
    import sys

    from nnphys.studies._kit import ClaimBook

    mod = sys.modules.get(getattr(study.analyse, "__module__", ""), None)
    books = [b for b in vars(mod).values() if isinstance(b, ClaimBook)] if mod is not None else []
    out: dict[str, list[str]] = {}
    for cid, info in study.claims.items():
        r = info.rule
        book = next((b for b in books if cid in b.claims and b.claims[cid] is info), None)
        version = book.version(cid) if book is not None else None
        if r is None:
            out[cid] = [f"rule: not declared through the protocol{f' (version {version})' if version else ''}"]
            continue
        what = {"directional": "SESOI", "equivalence": "margin", "identity": "tolerance"}[r.kind]
        lines = [f"rule: {r.kind} ({r.test}); {what} {r.sesoi:g}{' ' + r.unit if r.unit else ''}; α {r.alpha:g}"
                 + (f"; power {r.power:g}" if r.kind == "directional" else "")]
        lines += [f"{k}: {v}" for k, v in (("null", r.null), ("alternative", r.alternative), ("fails if", r.fails_if))
                  if v]
        if version:
            lines.append(f"version: {version}")
        out[cid] = lines
    return out


def study_lines(study: Study, with_rules: bool = False) -> list[str]:
    """``nnphys list`` for one study (after its bold name line): papers, description, one line per
    claim (id, tag, statement) and, ``with_rules``, its rule lines (:func:`rule_lines`)."""
    out = [f"  paper: {p}" for p in study.papers] + ([f"  {study.description}"] if study.description else [])
    rules = rule_lines(study) if with_rules else {}
    for cid, info in study.claims.items():
        out.append(f"  {cid:>4} [{info.tag}] {info.statement}")
        out += [f"         {line}" for line in rules.get(cid, [])]
    return out


def _rule_line(c: Claim) -> str:
    r = c.rule or {}
    if not r.get("kind"):
        return f"rule {r['version']}" if r.get("version") else ""
    what = {"directional": "SESOI", "equivalence": "margin", "identity": "tolerance"}[r["kind"]]
    unit = f" {r['unit']}" if r.get("unit") else ""
    text = f"{r['kind']}, {what} {r['sesoi']:.3g}{unit}, α {r['alpha']:g}"
    if r.get("fails_if"):
        text += f"; fails if {r['fails_if']}"
    return f"{text} (rule {r['version']})"


def counts_text(rep: StudyReport) -> str:
    if not rep.claims:
        return "-"
    n = {v: sum(c.verdict == v for c in rep.claims) for v in _BADGE}
    text = f"{n['holds']} hold, {n['fails']} fail, {n['inconclusive']} inconclusive"
    return text + (f", {n['uninformative']} uninformative" if n["uninformative"] else "")


def _evidence_json(rep: StudyReport) -> str:
    return json.dumps(_finite_json({c.id: c.evidence for c in rep.claims}), indent=1, sort_keys=True, default=str)


def scorecard(reports: list[StudyReport]) -> dict[str, Any]:
    """JSON-able scorecard: per study its scale, commit and claims with verdict and stability."""
    out = {}
    for rep in reports:
        st = rep.stability
        out[rep.name] = {
            "papers": list(rep.study.papers), "scale": rep.run.get("scale"), "counts": rep.counts,
            "run_id": rep.run.get("id"), "overrides": run_overrides(rep.run),
            "git_commit": rep.meta.get("git_commit"), "git_dirty": rep.meta.get("git_dirty"),
            "argv": rep.meta.get("argv"), "run_started": rep.run.get("started"),
            "headline": [c.id for c in rep.headline()] if rep.claims else [],
            "reading": reading(rep), "error": bool(rep.error),
            "failures": [{"reason": f.reason, "count": f.count, "first_key": f.first_key} for f in rep.failures],
            "stability": None if st is None else st.to_dict(),
            "claims": [{"id": c.id, "tag": c.tag, "verdict": c.verdict, "summary": claim_summary(c),
                        "rule_version": (c.rule or {}).get("version"),
                        "revised": published.revised(_PUBLISHED, rep.name, rep.run.get("scale"), c.id,
                                                     (c.rule or {}).get("version")),
                        "agree": None if st is None else st.agree.get(c.id),
                        "fragile": bool(st is not None and st.fragile(c.id))} for c in rep.claims],
        }
    return _finite_json(out)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def write_report(store: Store, studies: list[Study], *, n_resamples: int = DEFAULT_RESAMPLES,
                 stability_seed: int = 0, allow_fewer: bool = False) -> tuple[Path, Path, list[StudyReport]]:
    """Write ``report.md``, ``report.html``, ``claims.json`` and ``scorecard.json`` into the
    store's directory (``n_resamples`` bootstrap resamples per study with a resample hook)."""
    if n_resamples < 1 or (n_resamples < MIN_RESAMPLES and not allow_fewer):
        raise ConfigError("--resamples", f"must be >= {MIN_RESAMPLES} (got {n_resamples})")
    root = store.root
    reports = [r for s in studies
               if (r := study_report(store, s, root / "figures" / s.name, n_resamples=n_resamples,
                                     stability_seed=stability_seed, allow_fewer=allow_fewer)) is not None]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    md_path, html_path = root / "report.md", root / "report.html"
    ov = overview.write(reports, root / "figures")
    ov_rel = None if ov is None else ov.relative_to(root).as_posix()
    md_path.write_text(_markdown(reports, root, stamp, ov_rel))
    html_path.write_text(_html(reports, root, stamp, ov_rel))
    claims = {rep.name: [c.to_dict() for c in rep.claims] for rep in reports}
    (root / "claims.json").write_text(json.dumps(_finite_json(claims), default=str, sort_keys=True, indent=1))
    card = {"generated": stamp, "studies": scorecard(reports)}
    (root / "scorecard.json").write_text(json.dumps(card, default=str, sort_keys=True, indent=1))
    return md_path, html_path, reports


_TAGS = ("Tags: **[paper]** a claim of the paper; **[derived]** follows from the definitions and is "
         "checked exactly; **[default]** our own choice or reading.")
_OVERVIEW = ("Overview: one tile per claim, coloured by verdict; the number is its stability, hatched when "
             "fragile; a thick frame marks a headline claim; the corner letter is its tag.")
_STAB = (f"Stability: the fraction of {DEFAULT_RESAMPLES} bootstrap resamples of the seeds that give the "
         f"same verdict; below {FRAGILE_BELOW:.0%} the verdict is *fragile*; n/a when the study does not "
         "resample its seeds.")


def _markdown(reports: list[StudyReport], root: Path, stamp: str, overview_png: str | None = None) -> str:
    md = [f"# nnphys report\n\nGenerated {stamp} from `{root}`.\n", "## Scorecard\n",
          "| study | papers | headline claims | all claims | scale and seeds | reading |",
          "|---|---|---|---|---|---|"]
    for rep in reports:
        head = "; ".join(f"[{c.id}](#{anchor('claim', rep.name, c.id)}) **{c.verdict}**"
                        + (f" ({stability_text(rep, c.id)})" if rep.stability else "")
                        for c in (rep.headline() if rep.claims else []))
        md.append(f"| [{rep.name}](#{anchor('study', rep.name)}) | {_md_cell('; '.join(rep.study.papers))} | "
                  f"{head or '-'} | {counts_text(rep)} | {_md_cell(scale_and_seeds(rep))} | {_md_cell(reading(rep))} |")
    md += ["", _TAGS, "", _STAB, ""]
    if overview_png:
        md += [f"![Every claim's verdict and stability]({overview_png})", "", _OVERVIEW, ""]
    md += ["## Contents\n"]
    for rep in reports:
        a = anchor("study", rep.name)
        md.append(f"- [{rep.name}](#{a}): [claims](#{a}-claims), "
                  + (f"[figures](#{anchor('figures', rep.name)}), " if rep.figures else "")
                  + f"[provenance](#{a}-provenance)")
    md.append("")
    for rep in reports:
        md += _study_md(rep, root)
    return "\n".join(md)


def _study_md(rep: StudyReport, root: Path) -> list[str]:
    a = anchor("study", rep.name)
    out = [f'\n<a id="{a}"></a>\n\n## {rep.name}\n', rep.study.description + "\n" if rep.study.description else ""]
    if rep.error:
        out.append(f"**Analysis failed** (a bug; please report it):\n\n```\n{rep.error}\n```\n")
    if rep.failures:
        out.append(f"**Failed jobs** ({failed_note(rep.failures)}); the tracebacks are in `nnphys export`:\n")
        out += [f"- {f.count} job(s): `{_md_cell(f.reason)}` (first: job {f.first_key[:12]})" for f in rep.failures]
        out.append("")
    if rep.claims:
        out.append(f'<a id="{a}-claims"></a>\n\n{counts_text(rep)}.\n')
        out.append("| id | tag | claim | verdict | stability | evidence | figure |\n|---|---|---|---|---|---|---|")
        for c, tgt in _claims_with_figures(rep):
            fig = f"[{tgt[1]}](#{tgt[0]})" if tgt else "-"
            rt = rule_text(c, rep)
            out.append(f"| {c.id} | [{c.tag}] | {_md_cell(c.statement)} | "
                       f'**{c.verdict}**<a id="{anchor("claim", rep.name, c.id)}"></a>'
                       f"{'<br><sub>' + _md_cell(rt) + '</sub>' if rt else ''} | "
                       f"{stability_text(rep, c.id)} | {_md_cell(claim_summary(c))} | {fig} |")
        out.append("")
    if rep.figures:
        out.append(f'<a id="{anchor("figures", rep.name)}"></a>\n\n### Figures\n')
    for png, _pdf, cap in rep.figures:
        rel = Path(png).relative_to(root)
        out.append(f'<a id="{anchor("fig", rep.name, Path(png).stem)}"></a>\n\n![{_md_cell(cap)}]({rel})\n\n'
                   f"*{_md_cell(cap)}* ([PDF]({rel.with_suffix('.pdf')}))\n")
    for w in rep.legend_warnings:
        out.append(f"- **legend too small**: {_md_cell(w)}")
    out.append(f'<a id="{a}-provenance"></a>\n\n### Provenance\n')
    out += [f"- **{k}**: {_md_cell(v)}" for k, v in provenance(rep)]
    if rep.runs:
        out.append("\n| run | started | scale and overrides | planned | run now |\n|---|---|---|---|---|")
        out += [f"| #{r['id']} | {_md_cell(_when(r))} | {_md_cell(scale_text(r))} | {len(r['keys'])} | "
                f"{'-' if r.get('executed') is None else r['executed']} |" for r in rep.runs]
    if rep.stability_error:
        out.append(f"\n**Verdict-stability bootstrap failed** (a bug):\n\n```\n{rep.stability_error}\n```\n")
    if rep.claims:
        out.append("\n<details><summary>Full evidence</summary>\n\n```json")
        out.append(_evidence_json(rep))
        out.append("```\n</details>\n")
    return out


_CSS = (f"body{{font-family:system-ui,sans-serif;max-width:{CONTENT_PX}px;margin:2em auto;padding:0 1em}}"
        "figure{margin:1.5em 0}"  # the browser's default 40 px side margins would shrink every wide figure
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 6px;"
        "vertical-align:top;font-size:14px}.v{color:#fff;padding:1px 6px;border-radius:4px;white-space:nowrap}"
        ".fragile{color:#cf222e;font-weight:bold}img{max-width:100%}"
        "pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px}")


def _badge(verdict: str) -> str:
    return f"<span class='v' style='background:{_BADGE[verdict]}'>{html.escape(verdict)}</span>"


def _stab_html(rep: StudyReport, cid: str) -> str:
    t = html.escape(stability_text(rep, cid))
    return f"<span class='fragile'>{t}</span>" if rep.stability and rep.stability.fragile(cid) else t


def _html(reports: list[StudyReport], root: Path, stamp: str, overview_png: str | None = None) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>nnphys report</title>",
             f"<style>{_CSS}</style></head><body><h1>nnphys report</h1>",
             f"<p>Generated {e(stamp)} from <code>{e(str(root))}</code>.</p>",
             "<h2 id='scorecard'>Scorecard</h2><div id='scorecard-table'><table><tr><th>study</th><th>papers</th>"
             "<th>headline claims</th><th>all claims</th><th>scale and seeds</th><th>reading</th></tr>"]
    for rep in reports:
        heads = "<br>".join(
            f"<a href='#{anchor('claim', rep.name, c.id)}'>{e(c.id)}</a> {_badge(c.verdict)}"
            + (f" {_stab_html(rep, c.id)}" if rep.stability else "")
            for c in (rep.headline() if rep.claims else []))
        allc = counts_text(rep)
        parts.append(f"<tr class='study-row'><td><a href='#{anchor('study', rep.name)}'>{e(rep.name)}</a></td>"
                     f"<td>{'<br>'.join(e(p) for p in rep.study.papers)}</td><td>{heads or '-'}</td>"
                     f"<td>{e(allc)}</td><td>{e(scale_and_seeds(rep))}</td><td>{e(reading(rep))}</td></tr>")
    parts.append("</table></div>")
    parts.append(f"<p>{e(_TAGS.replace('**', ''))}</p><p>{e(_STAB.replace('*', ''))}</p>")
    if overview_png:
        parts.append(f"<figure id='overview'><img src='{e(overview_png)}' alt=\"Every claim's verdict and stability\" "
                     f"style='max-width:100%'><figcaption>{e(_OVERVIEW)}</figcaption></figure>")
    parts.append("<h2 id='contents'>Contents</h2><ul>")
    for rep in reports:
        a = anchor("study", rep.name)
        figs = f", <a href='#{anchor('figures', rep.name)}'>figures</a>" if rep.figures else ""
        parts.append(f"<li><a href='#{a}'>{e(rep.name)}</a>: <a href='#{a}-claims'>claims</a>{figs}, "
                     f"<a href='#{a}-provenance'>provenance</a></li>")
    parts.append("</ul>")
    for rep in reports:
        parts += _study_html(rep, root)
    parts.append("</body></html>")
    return "\n".join(parts)


def _study_html(rep: StudyReport, root: Path) -> list[str]:
    e, a = html.escape, anchor("study", rep.name)
    parts = [f"<h2 id='{a}'>{e(rep.name)}</h2><p>{e(rep.study.description)}</p>"]
    if rep.error:
        parts.append(f"<p><b>Analysis failed</b> (a bug):</p><pre>{e(rep.error)}</pre>")
    if rep.failures:
        parts.append(f"<p><b>Failed jobs</b> ({e(failed_note(rep.failures) or '')}); the tracebacks are in "
                     "<code>nnphys export</code>:</p><ul class='failures'>"
                     + "".join(f"<li>{f.count} job(s): <code>{e(f.reason)}</code> (first: job {e(f.first_key[:12])})"
                               "</li>" for f in rep.failures) + "</ul>")
    if rep.claims:
        parts.append(f"<div id='{a}-claims' class='claims'><table><tr><th>id</th><th>tag</th><th>claim</th>"
                     "<th>verdict</th><th>stability</th><th>evidence</th><th>figure</th></tr>")
        for c, tgt in _claims_with_figures(rep):
            fig = f"<a href='#{tgt[0]}'>{e(tgt[1])}</a>" if tgt else "-"
            parts.append(f"<tr id='{anchor('claim', rep.name, c.id)}'><td>{e(c.id)}</td><td>[{e(c.tag)}]</td>"
                         f"<td>{e(c.statement)}</td><td>{_badge(c.verdict)}"
                         f"{'<br><small>' + e(rule_text(c, rep).replace('**', '')) + '</small>' if rule_text(c) else ''}</td>"
                         f"<td>{_stab_html(rep, c.id)}</td>"
                         f"<td>{e(claim_summary(c))}</td><td>{fig}</td></tr>")
        parts.append("</table></div>")
    if rep.figures:
        parts.append(f"<h3 id='{anchor('figures', rep.name)}'>Figures</h3>")
    for png, pdf, cap in rep.figures:
        rel, relp = Path(png).relative_to(root), Path(pdf).relative_to(root)
        pt = rep.figure_text_pt.get(png, math.nan)
        size = f" data-text-pt='{pt:g}' data-dpi='{FIG_DPI}'" if math.isfinite(pt) else ""
        parts.append(f"<figure id='{anchor('fig', rep.name, Path(png).stem)}'><img src='{e(str(rel))}'{size} "
                     f"alt='{e(cap)}'><figcaption>{e(cap)} (<a href='{e(str(relp))}'>PDF</a>)</figcaption></figure>")
    if rep.legend_warnings:
        parts.append("<ul>" + "".join(f"<li><b>legend too small</b>: {e(w)}</li>" for w in rep.legend_warnings)
                     + "</ul>")
    parts.append(f"<h3 id='{a}-provenance'>Provenance</h3><ul>")
    parts += [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in provenance(rep)]
    parts.append("</ul>")
    if rep.runs:
        parts.append("<table class='runs'><tr><th>run</th><th>started</th><th>scale and overrides</th><th>planned</th>"
                     "<th>run now</th></tr>" + "".join(
                         f"<tr><td>#{r['id']}</td><td>{e(_when(r))}</td><td>{e(scale_text(r))}</td>"
                         f"<td>{len(r['keys'])}</td><td>{'-' if r.get('executed') is None else r['executed']}</td></tr>"
                         for r in rep.runs) + "</table>")
    if rep.stability_error:
        parts.append(f"<p><b>Verdict-stability bootstrap failed</b> (a bug):</p><pre>{e(rep.stability_error)}</pre>")
    if rep.claims:
        parts.append(f"<details><summary>Full evidence</summary><pre>{e(_evidence_json(rep))}</pre></details>")
    return parts
