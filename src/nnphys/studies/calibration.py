"""Calibration by simulation: the operating characteristics of every claim's rule.

A study declares ``Study.calibration = {claim id: {scenario: generator}}``; a generator
``(rng, spec) -> list[Result]`` builds synthetic results in the study's own format (the
``params`` and ``metrics`` its ``run`` produces) with a known truth. The scenarios:

- ``effect``: the claimed effect is present, comfortably above the SESOI (directional), or the
  deviation is zero (equivalence), or within the tolerance (identity);
- ``none``: no effect (directional), or a deviation exactly at the margin (equivalence);
- ``opposite``: the effect in the opposite direction (directional), a deviation of twice the
  margin (equivalence), or beyond the tolerance (identity);
- ``floor``: a regime with no room to move (a baseline at its floor or ceiling);
- any other name (e.g. ``diverged``): reported, not checked.

:func:`operating_characteristics` feeds each draw to the study's real ``analyse`` and counts the
claim's verdicts; :func:`check` states what a rule must do (defaults below, [default]):
``P(holds | effect) >= 0.8``, ``P(fails | opposite) >= 0.8``, ``P(holds | none) <= α`` and
``P(uninformative | floor) >= 0.8``, each with a one-sided binomial margin of ``Z_MARGIN``
standard errors for ``n`` draws, so a test with few draws is not flaky and a full table is tight.

``python -m nnphys.studies.calibration --study NAME --draws 200`` prints the table in markdown;
``--write docs/studies`` fills the block between ``<!-- calibration:begin -->`` (or
``<!-- calibration:begin scale=NAME -->``, filled only at that scale) and
``<!-- calibration:end -->`` of the study's guide, stamped with the date, the commit and the
draws (text outside the markers is never touched).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from nnphys.seeding import derive
from nnphys.studies.base import VERDICTS, Study, StudySpec

MIN_HOLD = 0.8  # [default] P(holds | effect) and P(fails | opposite) at least this
MIN_UNINFORMATIVE = 0.8  # [default] P(uninformative | floor) at least this
Z_MARGIN = 2.33  # [default] one-sided 99 % binomial margin on each check

CHECKS = {  # scenario -> (verdict, bound kind, which bound)
    "effect": ("holds", ">=", "min"),
    "opposite": ("fails", ">=", "min"),
    "none": ("holds", "<=", "alpha"),
    "floor": ("uninformative", ">=", "floor"),
}


def operating_characteristics(study: Study, spec: StudySpec, claim_id: str, n_draws: int = 200,
                              seed: int = 0, scenarios: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{scenario: {verdict: fraction, ..., "n": n_draws}}`` for one claim, from ``n_draws``
    independent synthetic result sets per scenario run through ``study.analyse``."""
    if not study.calibration or claim_id not in study.calibration:
        raise KeyError(f"study {study.name} declares no calibration for claim {claim_id}")
    gens = study.calibration[claim_id]
    out: dict[str, dict[str, Any]] = {}
    for name in scenarios or list(gens):
        rng = np.random.default_rng(derive(seed, study.name, claim_id, name))
        counts: Counter[str] = Counter()
        for _ in range(n_draws):
            claims = {c.id: c for c in study.analyse(spec, gens[name](rng, spec))}
            counts[claims[claim_id].verdict] += 1
        out[name] = {v: counts[v] / n_draws for v in VERDICTS} | {"n": n_draws}
    return out


def _margin(p: float, n: int) -> float:
    return Z_MARGIN * math.sqrt(max(p * (1 - p), 1e-12) / n)


def check(oc: dict[str, dict[str, Any]], alpha: float, kind: str = "directional") -> list[str]:
    """The rule's defects, as sentences (empty when it is calibrated). ``kind`` is the rule's
    kind: an identity has no ``none`` scenario to bound."""
    bad = []
    for scen, (verdict, op, which) in CHECKS.items():
        if scen not in oc or (scen == "none" and kind == "identity"):
            continue
        p, n = oc[scen][verdict], oc[scen]["n"]
        if which == "alpha":
            bound = alpha + _margin(alpha, n)
            if p > bound:
                bad.append(f"P({verdict} | {scen}) = {p:.3f} > α + margin = {bound:.3f}")
        else:
            target = MIN_HOLD if which == "min" else MIN_UNINFORMATIVE
            bound = target - _margin(target, n)
            if p < bound:
                bad.append(f"P({verdict} | {scen}) = {p:.3f} < {target} - margin = {bound:.3f}")
    return bad


def not_run(study: Study, spec: StudySpec, claim_id: str) -> str:
    """The reason ``claim_id`` is not run at ``spec`` (its verdict without any result carries
    ``run = False``), else ``""``."""
    c = {c.id: c for c in study.analyse(spec, [])}[claim_id]
    return str(c.evidence.get("reason", "not run")) if c.evidence.get("run") is False else ""


def study_table(study: Study, spec: StudySpec, n_draws: int = 200, seed: int = 0) -> str:
    """Markdown: one row per calibrated claim, P(verdict | scenario) and whether it passes."""
    head = ("| claim | rule | P(holds \\| effect) | P(fails \\| opposite) | P(holds \\| none) | "
            "P(uninformative \\| floor) | other scenarios: P(holds), P(fails) | calibrated |\n"
            "|---|---|---|---|---|---|---|---|")
    rows = [head]
    for cid in sorted((study.calibration or {}), key=_claim_order):
        why = not_run(study, spec, cid)
        if why:  # a claim the design does not run (e.g. no width sweep) has no operating characteristics here
            rows.append(f"| {cid} | — | — | — | — | — | — | not run at this design: {why} |")
            continue
        oc = operating_characteristics(study, spec, cid, n_draws, seed)
        rule = study.claims[cid].rule
        alpha = rule.alpha if rule is not None else 0.05
        kind = rule.kind if rule is not None else "directional"
        bad = check(oc, alpha, kind)

        def cellp(s: str, v: str) -> str:
            return f"{oc[s][v]:.2f}" if s in oc else "—"

        other = "; ".join(f"{s}: {oc[s]['holds']:.2f}, {oc[s]['fails']:.2f}" for s in oc if s not in CHECKS) or "—"
        rows.append(f"| {cid} | {kind} | {cellp('effect', 'holds')} | {cellp('opposite', 'fails')} | "
                    f"{cellp('none', 'holds') if kind != 'identity' else 'n/a'} | {cellp('floor', 'uninformative')} | "
                    f"{other} | {'yes' if not bad else 'NO: ' + '; '.join(bad).replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + f"\n\n{n_draws} draws per scenario; α and margins as stated in each rule."


def _claim_order(cid: str) -> tuple:
    import re

    m = re.match(r"([A-Za-z]*)(\d*)(.*)", cid)
    return (m.group(1), int(m.group(2) or 0), m.group(3)) if m else (cid, 0, "")


_BLOCK = re.compile(r"(<!-- calibration:begin(?: scale=([\w-]+))? -->\n?)(.*?)(<!-- calibration:end -->)", re.S)


def stamped_table(study: Study, scale: str, n_draws: int, seed: int = 0) -> str:
    """The table with a stamp: UTC date, git commit (when in a checkout), scale, draws, seed."""
    import datetime
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip() or "not recorded"
    except (OSError, subprocess.SubprocessError):
        commit = "not recorded"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    stamp = (f"*Generated by `python -m nnphys.studies.calibration --study {study.name} --scale {scale} "
             f"--draws {n_draws}` on {now}, commit `{commit}`, seed {seed}.*\n\n")
    return stamp + study_table(study, study.make_spec(scale), n_draws, seed) + "\n"


def write_block(path: Path, table: str, scale: str | None = None) -> bool:
    """Replace the calibration block(s) of ``path`` for ``scale``: a marker may name its scale
    (``<!-- calibration:begin scale=quick -->``), so a guide can keep the table of each design; an
    unnamed marker takes any scale. False when no block matches."""
    text = path.read_text()
    n = 0

    def sub(m: re.Match) -> str:
        nonlocal n
        if m.group(2) is not None and scale is not None and m.group(2) != scale:
            return m.group(0)
        n += 1
        return m.group(1).rstrip("\n") + "\n" + table + m.group(4)

    new = _BLOCK.sub(sub, text)
    if n:
        path.write_text(new)
    return n > 0


def main(argv: list[str] | None = None) -> int:
    from nnphys.studies import get_study

    ap = argparse.ArgumentParser(prog="python -m nnphys.studies.calibration", description=__doc__.split("\n")[0])
    ap.add_argument("--study", required=True, help="a study name, or 'all' for every study with calibration")
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", type=Path, default=None, help="the guides' folder (docs/studies): fill their blocks")
    a = ap.parse_args(argv)
    from nnphys.studies import registry

    names = [n for n, s in registry().items() if s.calibration] if a.study == "all" else [a.study]
    for name in names:
        study = get_study(name)
        table = stamped_table(study, a.scale, a.draws, a.seed)
        if a.write is None:
            print(f"## {name}\n\n{table}")
            continue
        guide = a.write / f"{name}.md"
        ok = guide.exists() and write_block(guide, table, a.scale)
        print(f"{name}: {'calibration block written to ' + str(guide) if ok else 'no calibration markers in ' + str(guide)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
