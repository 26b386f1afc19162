"""``report.md`` and ``report.html``: per study the claims table (id, tag, statement, verdict,
evidence), its figures (PNG and PDF) and provenance (versions, seeds, scale, times)."""

from __future__ import annotations

import html
import json
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from nnphys.lab.store import Store, to_json  # noqa: E402
from nnphys.studies.base import Claim, Study  # noqa: E402

_BADGE = {"holds": "#1a7f37", "fails": "#cf222e", "inconclusive": "#9a6700"}


@dataclass
class StudyReport:
    study: Study
    run: dict[str, Any]
    counts: dict[str, int]
    claims: list[Claim] = field(default_factory=list)
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (png, pdf, caption)
    seeds: list[Any] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    compute_s: float = 0.0
    error: str | None = None


def _seeds(params: dict[str, Any]) -> list[Any]:
    out = []
    for k, v in params.items():
        if "seed" in k:
            out.extend(v if isinstance(v, list) else [v])
    return out


def study_report(store: Store, study: Study, fig_dir: Path) -> StudyReport | None:
    """Analyse the latest run of ``study`` in ``store``; None when it never ran there."""
    run = store.latest_run(study.name)
    if run is None:
        return None
    results = store.results(study.name, run["keys"])
    counts = {"planned": len(run["keys"]), "done": 0, "failed": 0, "diverged": 0}
    for r in results:
        counts[r.status] += 1
    rep = StudyReport(study, run, counts)
    rep.compute_s = sum((r.ended or 0) - (r.started or 0) for r in results)
    seeds: set = set()
    for r in results:
        seeds.update(map(str, _seeds(r.params)))
    rep.seeds = sorted(seeds, key=lambda s: (len(s), s))
    planned = set(run["keys"])
    vers = {to_json(row["versions"]) for row in store.rows(study.name) if row["key"] in planned}
    rep.versions = [json.loads(v) for v in sorted(vers)]
    try:
        spec = study.spec(**run["spec"])
        rep.claims = list(study.analyse(spec, results))
        fig_dir.mkdir(parents=True, exist_ok=True)
        for fig in study.figures(spec, results):
            png, pdf = fig_dir / f"{fig.name}.png", fig_dir / f"{fig.name}.pdf"
            fig.figure.savefig(png, dpi=120, bbox_inches="tight")
            fig.figure.savefig(pdf, bbox_inches="tight")
            rep.figures.append((str(png), str(pdf), fig.caption))
    except Exception:  # an analysis bug must not hide the other studies' reports
        rep.error = traceback.format_exc()
    return rep


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


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_report(store: Store, studies: list[Study]) -> tuple[Path, Path, list[StudyReport]]:
    """Write ``report.md``, ``report.html`` and ``claims.json`` into the store's directory."""
    root = store.root
    reports = [r for s in studies if (r := study_report(store, s, root / "figures" / s.name)) is not None]
    md = [f"# nnphys report\n\nGenerated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from `{root}`.\n",
          "Tags: **[paper]** a claim of the paper; **[derived]** follows from the definitions and is "
          "checked exactly; **[default]** our own choice or reading.\n"]
    for rep in reports:
        md += _study_md(rep, root)
    md_path, html_path = root / "report.md", root / "report.html"
    md_path.write_text("\n".join(md))
    html_path.write_text(_html(reports, root))
    claims = {rep.study.name: [c.to_dict() for c in rep.claims] for rep in reports}
    (root / "claims.json").write_text(json.dumps(_finite_json(claims), default=str, sort_keys=True, indent=1))
    return md_path, html_path, reports


def _prov(rep: StudyReport) -> list[tuple[str, str]]:
    c, run = rep.counts, rep.run
    wall = (run["ended"] or time.time()) - run["started"]
    return [
        ("papers", "; ".join(rep.study.papers)),
        ("scale", str(run.get("scale"))),
        ("jobs", f"{c['planned']} planned, {c['done']} done, {c['failed']} failed, {c['diverged']} diverged"),
        ("compute time (sum over jobs)", _fmt_time(rep.compute_s)),
        ("wall time of the last run", f"{_fmt_time(wall)} on {run.get('engine')}"),
        ("seeds", ", ".join(rep.seeds) or "-"),
        ("versions", "; ".join(", ".join(f"{k} {v}" for k, v in sorted(ver.items())) for ver in rep.versions) or "-"),
        ("spec", json.dumps(run["spec"], sort_keys=True)),
    ]


def _study_md(rep: StudyReport, root: Path) -> list[str]:
    out = [f"\n## {rep.study.name}\n", rep.study.description + "\n" if rep.study.description else ""]
    if rep.error:
        out.append(f"**Analysis failed** (a bug; please report it):\n\n```\n{rep.error}\n```\n")
    if rep.claims:
        n = {v: sum(c.verdict == v for c in rep.claims) for v in ("holds", "fails", "inconclusive")}
        out.append(f"{n['holds']} hold, {n['fails']} fail, {n['inconclusive']} inconclusive.\n")
        out.append("| id | tag | claim | verdict | evidence |\n|---|---|---|---|---|")
        for c in rep.claims:
            out.append(f"| {c.id} | [{c.tag}] | {_md_cell(c.statement)} | **{c.verdict}** | {_md_cell(c.summary)} |")
        out.append("")
    for png, _pdf, cap in rep.figures:
        rel = Path(png).relative_to(root)
        out.append(f"![{_md_cell(cap)}]({rel})\n\n*{_md_cell(cap)}* ([PDF]({rel.with_suffix('.pdf')}))\n")
    out.append("### Provenance\n")
    out += [f"- **{k}**: {_md_cell(v)}" for k, v in _prov(rep)]
    if rep.claims:
        out.append("\n<details><summary>Full evidence</summary>\n\n```json")
        out.append(json.dumps({c.id: c.evidence for c in rep.claims}, indent=1, sort_keys=True, default=str))
        out.append("```\n</details>\n")
    return out


def _html(reports: list[StudyReport], root: Path) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>nnphys report</title><style>",
             "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 6px;"
             "vertical-align:top;font-size:14px}.v{color:#fff;padding:1px 6px;border-radius:4px}"
             "img{max-width:100%}pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px}",
             "</style></head><body><h1>nnphys report</h1>",
             f"<p>Generated {e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}. Tags: <b>[paper]</b> a claim of the "
             "paper; <b>[derived]</b> follows from the definitions; <b>[default]</b> our own choice.</p>"]
    for rep in reports:
        parts.append(f"<h2 id='{e(rep.study.name)}'>{e(rep.study.name)}</h2><p>{e(rep.study.description)}</p>")
        if rep.error:
            parts.append(f"<p><b>Analysis failed</b> (a bug):</p><pre>{e(rep.error)}</pre>")
        if rep.claims:
            parts.append("<table><tr><th>id</th><th>tag</th><th>claim</th><th>verdict</th><th>evidence</th></tr>")
            for c in rep.claims:
                parts.append(f"<tr><td>{e(c.id)}</td><td>[{e(c.tag)}]</td><td>{e(c.statement)}</td>"
                             f"<td><span class='v' style='background:{_BADGE[c.verdict]}'>{e(c.verdict)}</span></td>"
                             f"<td>{e(c.summary)}</td></tr>")
            parts.append("</table>")
        for png, pdf, cap in rep.figures:
            rel, relp = Path(png).relative_to(root), Path(pdf).relative_to(root)
            parts.append(f"<figure><img src='{e(str(rel))}' alt='{e(cap)}'><figcaption>{e(cap)} "
                         f"(<a href='{e(str(relp))}'>PDF</a>)</figcaption></figure>")
        parts.append("<h3>Provenance</h3><ul>")
        parts += [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in _prov(rep)]
        parts.append("</ul>")
        if rep.claims:
            ev = json.dumps({c.id: c.evidence for c in rep.claims}, indent=1, sort_keys=True, default=str)
            parts.append(f"<details><summary>Full evidence</summary><pre>{e(ev)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)
