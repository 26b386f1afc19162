"""The ``nnphys`` command line: thin, it calls ``nnphys.lab`` and ``nnphys.studies``.

One error boundary (:func:`main`): every error a user can cause (an option, a spec value, a
path, a store, an address) is an :class:`~nnphys.errors.NnphysError` printed as one line naming
the field or path and what is allowed, with exit code 2; tracebacks are for bugs. Commands that
write check everything that needs no job first (spec, planned jobs, the data files they read,
engine, results location, scheduler) and only then open the store for writing; reading commands
open it read-only. A run whose planned jobs failed exits 1 (``EXIT_JOBS_FAILED``), never 0.
"""

from __future__ import annotations

import inspect
import sqlite3
import sys
from pathlib import Path
from enum import Enum
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnphys.errors import ConfigError, NnphysError
from nnphys.lab.executors import MAX_THREADS, MAX_WORKERS

app = typer.Typer(
    name="nnphys",
    help="A laboratory for the physics of deep learning: run studies, check the papers' claims, report.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"nnphys {version('nnphys')}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """A laboratory for the physics of deep learning: run studies, check the papers' claims, report."""
_ARGV: list[str] = []  # the command line, for provenance

SCALES = ("quick", "medium", "paper")
# exit codes: 0 success; 1 a run or reproduce finished but some planned job is stored as failed
# (each reason printed); 2 bad input (one line naming the field; nothing written); 130 interrupted
EXIT_JOBS_FAILED = 1


# enum options: typer shows the choices in --help and rejects others at parse time
class Scale(str, Enum):
    quick = "quick"
    medium = "medium"
    paper = "paper"


class EngineName(str, Enum):
    inline = "inline"
    dask = "dask"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Rerun(str, Enum):
    failed = "failed"


class Format(str, Enum):
    csv = "csv"
    parquet = "parquet"


def _v(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x

RESULTS = typer.Option(Path("results"), "--results", "-r", help="Results directory (SQLite store, arrays, report).")


def _scale_opt(help: str = "Preset: quick (minutes on a laptop), medium (an hour on 2 cores, where the study has it) or paper.") -> Any:
    return typer.Option(Scale.quick, "--scale", help=help)


def _sets_opt() -> Any:
    return typer.Option([], "--set", "-s", help="Override a spec field: key=value (repeatable; lists as 1,2,4 or "
                                                "[1]; a single value for a list field is a one-item list; dicts "
                                                "as JSON or TOML, '{\"2\":[1000]}'; booleans true/false). "
                                                "`nnphys fields STUDY` lists the fields.")


def _sweep_opt() -> Any:
    return typer.Option([], "--sweep", help="One sweep per value: key=v1,v2,... (repeatable: the product of "
                                            "the values); e.g. --sweep seed=0,1,2.")


def _config_opt() -> Any:
    return typer.Option(None, "--config", "-c", help="TOML file of spec fields: flat keys, and [STUDY] tables "
                                                     "(those of other studies are ignored).")


def _workers_opt() -> Any:
    return typer.Option(1, "--workers", "-w", min=1, max=MAX_WORKERS,
                        help="Local worker processes (N > 1 uses a Dask LocalCluster).")


def _threads_opt() -> Any:
    return typer.Option(None, "--threads", min=1, max=MAX_THREADS,
                        help="torch/BLAS threads per job (default 1: parallelism goes across jobs).")


def _engine_opt() -> Any:
    return typer.Option(None, "--engine", help="Default: inline for one worker, dask otherwise.")


def _address_opt() -> Any:
    return typer.Option(None, "--address", help="Dask scheduler address SCHEME://HOST:PORT, e.g. tcp://head:8786.")


def _device_opt() -> Any:
    return typer.Option(None, "--device", help="Overrides the spec's device.")


def _overrides_text(overrides: Optional[dict]) -> str:
    from nnphys.lab.runs import overrides_text

    return overrides_text(overrides or {})


def _print_summary(summary, overrides: Optional[dict] = None) -> None:
    c = summary.counts
    point = f" ({escape(_overrides_text(overrides))})" if overrides else ""
    line = (f"[bold]{summary.study}[/]{point}: {summary.planned} planned, {summary.already} already finished, "
            f"{summary.executed} run now ({c['done']} done, {c['failed']} failed, {c['diverged']} diverged) "
            f"in {summary.wall:.1f} s")
    if summary.by_others or summary.left_to_others:
        line += f"; {summary.by_others} finished by another driver, {summary.left_to_others} still running there"
    if summary.released:
        line += f"; released {summary.released} stale claim(s) of a stopped driver"
    out.print(line)


def _print_claims(name: str, claims) -> None:
    t = Table(title=f"{name}: claims", show_lines=False)
    for col in ("id", "tag", "verdict", "evidence"):
        t.add_column(col, overflow="fold")
    color = {"holds": "green", "fails": "red", "inconclusive": "yellow", "uninformative": "cyan"}
    for c in claims:
        t.add_row(escape(c.id), escape(f"[{c.tag}]"), f"[{color.get(c.verdict, 'white')}]{c.verdict}[/]",
                  escape(c.summary))
    out.print(t)


@app.command("list")
def list_cmd(claims: bool = typer.Option(False, "--claims", help="Print each claim's pre-registered rule "
                                                               "(test, SESOI or margin, alpha, fails-if, version).")) -> None:
    """List the studies, their papers and claim ids.

    Example: nnphys list --claims
    """
    from nnphys.lab.report import rule_lines
    from nnphys.studies import registry

    for name, s in registry().items():
        out.print(f"[bold]{name}[/]  (schema v{s.schema_version})")
        for p in s.papers:
            out.print(escape(f"  paper: {p}"))
        if s.description:
            out.print(escape(f"  {s.description}"))
        rules = rule_lines(s) if claims else {}
        for cid, info in s.claims.items():
            out.print(escape(f"  {cid:>4} [{info.tag}] {info.statement}"))
            for line in rules.get(cid, []):
                out.print(escape(f"         {line}"))


# -- planning: everything that can be checked without running a job ------------------------

def _prepare(name: str, scale: str, config: Optional[Path], sets: List[str], device: Optional[str],
             values: Optional[dict] = None, sweeps: Optional[List[str]] = None) -> list:
    """One ``(study, spec, jobs, info)`` per point of the ``--sweep`` product (one without a
    sweep), each fully validated (jobs(spec) and the data files they read included); ``info``:
    the scale and the user's overrides of its preset (JSON values). Prints one warning line per
    set field that a field the user left alone overrides. Writes nothing."""
    from nnphys.lab.config import (check_inputs, collect_overrides, parse_sweeps, plan_jobs, refuse_repeats,
                                   shadow_warnings, spec_from)
    from nnphys.studies import get_study

    study = get_study(name)
    refuse_repeats(sets)
    points = parse_sweeps(sweeps, sets)
    extra = dict(values or {})
    if device is not None:
        extra["device"] = device
    scale, base = collect_overrides(study, scale, config, sets, extra)
    out = []
    for point in points:
        overrides = {**base, **point}
        spec = spec_from(study, scale, overrides)
        jobs = plan_jobs(study, spec)
        check_inputs(study, spec, jobs)
        dumped = spec.model_dump(mode="json")
        out.append((study, spec, jobs, {"scale": scale, "overrides": {k: dumped.get(k) for k in overrides},
                                        "warnings": shadow_warnings(study, scale, spec, overrides)}))
    return out


def _print_warnings(prepared: list) -> None:
    """The warnings of prepared sweeps, each once, on stderr; printed only once every check has
    passed, so that bad input still gives exactly one line."""
    for line in dict.fromkeys(w for *_, info in prepared for w in info["warnings"]):
        err.print(escape(f"nnphys: warning: {line}"), soft_wrap=True)


def _engine(workers: int, engine: Optional[str], address: Optional[str], threads: Optional[int]):
    from nnphys.lab.executors import EngineConfig

    return EngineConfig(engine=engine, workers=workers, address=address, threads=threads).resolved()


def _execute(prepared: list, eng, results: Path, rerun_failed: bool, quiet: bool) -> int:
    """Run prepared sweeps: check the results location and the scheduler, then (only then) open
    the store for writing. Returns the exit code: ``EXIT_JOBS_FAILED`` when a planned job of any
    sweep is stored as failed (each reason printed on one line to stderr), else 0."""
    import contextlib

    from nnphys.lab.executors import open_executor
    from nnphys.lab.outcomes import failure_lines, failures, guard_claims
    from nnphys.lab.provenance import collect
    from nnphys.lab.runner import check_device, keyed_jobs, run_study
    from nnphys.lab.store import Store, check_location

    code = 0
    for _, spec, _, _ in prepared:
        check_device(spec, eng)
    check_location(results, write=True)
    with contextlib.ExitStack() as stack:
        # a remote scheduler is reached before the store is touched: a refused address writes nothing
        executor = stack.enter_context(open_executor(eng)) if eng.address else None
        _print_warnings(prepared)
        store = stack.enter_context(Store(results))
        for study, spec, jobs, info in prepared:
            meta = collect(argv=_ARGV, engine=eng.describe(), workers=eng.workers, threads=eng.threads_per_job(),
                           device=getattr(spec, "device", None))
            meta["overrides"] = info["overrides"]
            summary = run_study(study, spec, store, eng, scale=info["scale"], rerun_failed=rerun_failed,
                                progress=not quiet, jobs=jobs, executor=executor, meta=meta)
            _print_summary(summary, info["overrides"] if len(prepared) > 1 else None)
            res = store.results(study.name, list(keyed_jobs(study, jobs)))  # this sweep's, not another driver's
            fails = failures(res)
            if fails:
                code = EXIT_JOBS_FAILED
            if not quiet:
                try:
                    _print_claims(study.name, guard_claims(study.analyse(spec, res), fails))
                except Exception as e:  # noqa: BLE001 - the report shows the traceback
                    err.print(f"analysis of {study.name} failed ({type(e).__name__}: {e}); see nnphys report")
            for line in failure_lines(study.name, fails):
                err.print(escape(line), soft_wrap=True)
    return code


@app.command("run")
def run_cmd(
    study: str = typer.Argument(..., help="Study name (see nnphys list)."),
    scale: Scale = _scale_opt(),
    config: Optional[Path] = _config_opt(),
    sets: List[str] = _sets_opt(),
    sweeps: List[str] = _sweep_opt(),
    workers: int = _workers_opt(),
    engine: Optional[EngineName] = _engine_opt(),
    address: Optional[str] = _address_opt(),
    device: Optional[Device] = _device_opt(),
    results: Path = RESULTS,
    rerun: Optional[Rerun] = typer.Option(None, "--rerun", help="'failed': run failed jobs again."),
    threads: Optional[int] = _threads_opt(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no claims table."),
) -> int:
    """Run one study's sweep (resumable: finished jobs are never run twice; several drivers
    may share one store, each job runs once). Spec fields: nnphys fields STUDY. Exit code 1
    when a planned job failed (each reason printed), 2 for bad input.

    Example: nnphys run depth-locality --set d=64 --set depths=1,2,4,8 --workers 2
    """
    scale, engine, device, rerun = _v(scale), _v(engine), _v(device), _v(rerun)
    prepared = _prepare(study, scale, config, sets, device, sweeps=sweeps)
    eng = _engine(workers, engine, address, threads)
    return _execute(prepared, eng, results, rerun == "failed", quiet)


def _split_for_studies(names: list[str], sets: List[str], config: Optional[Path]) -> tuple[str | None, dict]:
    """``--set``/``--config`` of ``reproduce`` shared out among the studies: ``key=v`` goes to
    every study whose Spec has ``key``, ``study.key=v`` (or a ``[study]`` TOML table) to that one.
    A TOML file may hold the tables of more studies than are selected, and flat keys of those
    studies only: both are ignored (one file serves every subset). A ``--set`` key that no
    selected study has is refused. Returns ``(scale from the TOML or None, {study: {field: value}})``."""
    from nnphys.lab.config import load_toml, parse_sets, refuse_repeats, study_tables
    from nnphys.studies import get_study, registry

    specs = {n: get_study(n).spec for n in names}
    per: dict[str, dict] = {n: {} for n in names}
    scale = None
    pairs: list[tuple[str, Any]] = []
    if config is not None:
        reg = registry()
        tables, flat = study_tables(load_toml(config), list(reg))
        scale = flat.pop("scale", None)
        for k, v in tables.items():
            if k in per:
                pairs += [(f"{k}.{kk}", vv) for kk, vv in v.items()]
        for k, v in flat.items():
            unselected_only = (not any(k in specs[n].model_fields for n in names)
                               and any(k in s.spec.model_fields for s in reg.values()))
            if not unselected_only:
                pairs.append((k, v))
    refuse_repeats(sets)
    set_pairs: list[tuple[str, Any]] = []
    for item in sets:
        study, dot, rest = item.partition(".")
        if dot and study in per and "=" in rest:
            ((k, v),) = parse_sets([rest]).items()
            set_pairs.append((f"{study}.{k}", v))
        else:
            set_pairs += list(parse_sets([item]).items())
    # --set beats the file; within each, STUDY.key beats key whatever their order
    pairs = sorted(pairs, key=lambda kv: "." in kv[0]) + sorted(set_pairs, key=lambda kv: "." in kv[0])
    for k, v in pairs:
        study, dot, fld = k.partition(".")
        if dot and study in per:
            per[study][fld] = v  # the study's Spec reports an unknown field
            continue
        owners = [n for n in names if k in specs[n].model_fields]
        if not owners:
            raise ConfigError(k, f"not a field of any selected study ({', '.join(names)}); "
                                 "see nnphys fields STUDY")
        for n in owners:
            per[n][k] = v
    return scale, per


@app.command("reproduce")
def reproduce_cmd(
    scale: Scale = _scale_opt("Preset for every study: quick, medium (studies that have it) or paper."),
    studies: Optional[str] = typer.Option(None, "--studies", help="Comma-separated subset (default: all studies)."),
    sets: List[str] = typer.Option([], "--set", "-s", help="key=value for every selected study that has the field, "
                                                           "or STUDY.key=value for one (repeatable)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="TOML: flat keys as --set, [STUDY] tables for one study."),
    workers: int = _workers_opt(),
    engine: Optional[EngineName] = _engine_opt(),
    address: Optional[str] = _address_opt(),
    device: Optional[Device] = _device_opt(),
    results: Path = RESULTS,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or claims tables."),
    threads: Optional[int] = _threads_opt(),
) -> int:
    """Run every registered study (or --studies a,b) at one scale, then write the report.
    Exit code 1 when a planned job failed (each reason printed), 2 for bad input.

    Example: nnphys reproduce --scale quick --studies minibatch-noise,escape-rate
    """
    from nnphys.errors import UnknownStudyError
    from nnphys.studies import registry

    scale, engine, device = _v(scale), _v(engine), _v(device)
    known = list(registry())
    names = known
    if studies is not None:
        names = [s.strip() for s in studies.split(",") if s.strip()]
        if not names:
            raise ConfigError("--studies", f"names no study; choose from {', '.join(known)}")
        for n in names:
            if n not in known:
                raise UnknownStudyError(n, known)
        names = list(dict.fromkeys(names))
    toml_scale, per = _split_for_studies(names, sets, config)
    if toml_scale is not None:
        if toml_scale not in SCALES:
            raise ConfigError("scale", f"must be one of {', '.join(SCALES)} (got {toml_scale!r})")
        scale = toml_scale
    if studies is None:
        # not every study has every scale (medium exists where a study's verdicts need it); an
        # explicit --studies list keeps the one-line error of make_spec instead
        reg = registry()
        lacking = [n for n in names if scale not in reg[n].presets]
        if lacking:
            err.print(f"reproduce: no {scale} preset in {', '.join(lacking)}; skipped (name them in --studies "
                      "with another --scale to run them)")
            names = [n for n in names if n not in lacking]
        if not names:
            raise ConfigError("scale", f"no study has a {scale!r} preset")
    prepared = [p for n in names for p in _prepare(n, scale, None, [], device, per[n])]
    eng = _engine(workers, engine, address, threads)
    code = _execute(prepared, eng, results, False, quiet)
    _report(results, show_claims=False)  # each study's claims were printed after its run
    return code


# -- reading commands: the store is opened read-only and never changed -------------------

def _open_readonly(results: Path, missing_ok: bool = False):
    """The store under ``results`` opened read-only (None when there is none and ``missing_ok``)."""
    from nnphys.lab.store import Store, check_location

    if check_location(results, write=False) is None:
        if missing_ok:
            return None
        raise ConfigError("--results", f"no results store in {str(results)!r} (run a study first)")
    return Store(results, readonly=True)


def _thread_note(counts: dict) -> str:
    known = sorted(t for t in counts if t is not None)
    if not known:
        return "-"
    text = ",".join(map(str, known)) + ("+?" if None in counts else "")
    return text + (" MIXED" if len(known) > 1 else "")


@app.command("status")
def status_cmd(results: Path = RESULTS) -> None:
    """Per study: jobs planned by the last run, how many are done, failed, diverged, running
    (claimed by a live driver), and the thread counts the finished jobs ran with; then one line
    per reason that jobs failed for.

    Example: nnphys status --results results
    """
    from nnphys.lab.outcomes import failure_lines, failures

    store = _open_readonly(results)
    with store:
        failed_lines: list[str] = []
        from rich import box

        # fits 80 columns: study names never truncated, short numeric headers (explained below)
        t = Table(title=f"results in {results}", box=box.SIMPLE_HEAD, pad_edge=False)
        t.add_column("study", no_wrap=True, min_width=max([len(n) for n in store.studies()] + [5]))
        t.add_column("scale", no_wrap=True)
        for col in ("plan", "done", "fail", "div", "run", "miss", "thr"):
            t.add_column(col, justify="right", no_wrap=True)
        mixed = []
        for name in store.studies():
            run = store.latest_run(name)
            keys = run["keys"] if run else []
            st = store.statuses(name, keys)
            n = {s: sum(v == s for v in st.values()) for s in ("done", "failed", "diverged")}
            planned = set(keys)
            running = sum(c["key"] in planned for c in store.claims(name, live_only=True))
            failed_lines += failure_lines(name, failures(store.results(name, [k for k, v in st.items()
                                                                              if v == "failed"])))
            counts = store.thread_counts(name, keys)
            if len([k for k in counts if k is not None]) > 1:
                mixed.append((name, counts))
            t.add_row(name, str(run["scale"] if run else "-"), str(len(keys)), str(n["done"]), str(n["failed"]),
                      str(n["diverged"]), str(running), str(len(keys) - len(st) - running), _thread_note(counts))
        out.print(t)
        out.print("plan: jobs planned by the last run; fail: failed; div: diverged; run: being run by a "
                  "live driver; miss: planned, not yet stored; thr: threads per job")
        for line in failed_lines:
            out.print(escape(line), soft_wrap=True)
        for name, counts in mixed:
            parts = ", ".join(f"{c} job(s) with {t} thread(s)" for t, c in sorted(counts.items(), key=str))
            out.print(escape(f"{name}: its results mix thread counts ({parts}); jobs run with different --threads "
                             "may differ in the last bits, so compare or resume with one --threads "
                             "(a fresh --results for a bit-identical set)"))
        if store.upgrade_note:
            out.print(escape(f"note: {store.upgrade_note}"))


def _report(results: Path, show_claims: bool = True) -> None:
    """Write the report of every study in the store; print each study's claims unless the caller
    (``reproduce``, which printed them after each study's run) says not to."""
    from nnphys.lab.report import write_report
    from nnphys.studies import registry

    with _open_readonly(results) as store:
        names = set(store.studies())
        studies = [s for s in registry().values() if s.name in names]
        # the stability bootstrap takes seconds per study: say what is being done
        with err.status(f"writing the report of {len(studies)} studies (analysis, verdict-stability "
                        "bootstrap, figures)..."):
            md, html, reps = write_report(store, studies)
    for rep in reps:
        if rep.claims and show_claims:
            _print_claims(rep.study.name, rep.claims)
        if rep.error:
            err.print(f"analysis of {rep.study.name} failed; the traceback is in {md}")
    out.print(f"report: {md} and {html}")


@app.command("report")
def report_cmd(results: Path = RESULTS) -> None:
    """Write report.md and report.html (claims, figures as PNG and PDF, provenance).

    Example: nnphys report --results results
    """
    _report(results)


def _check_output(path: Path) -> None:
    import os

    if path.is_dir():
        raise ConfigError("--output", f"{str(path)!r} is a directory; give a file path")
    if path.exists() and not path.is_file():  # a FIFO or device would block or swallow the table
        raise ConfigError("--output", f"{str(path)!r} is not a regular file; give a file path")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError("--output", f"folder {str(parent)!r} does not exist (or is not a folder); create it first")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("--output", f"{str(path)!r} is not writable")


@app.command("export")
def export_cmd(
    format: Format = typer.Option(Format.csv, "--format", "-f", help="csv or parquet (parquet needs pyarrow: pip install 'nnphys[parquet]')."),
    results: Path = RESULTS,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default results/results.FORMAT)."),
    study: Optional[str] = typer.Option(None, "--study", help="Only this study."),
    tidy: bool = typer.Option(True, "--tidy/--wide", help="Long format (one row per job, member, metric) or one "
                                                          "row per job."),
) -> None:
    """Export every stored job as CSV or Parquet.

    Example: nnphys export --format parquet
    """
    from nnphys.lab.export import export

    format = _v(format)
    if format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("--format", "parquet needs pyarrow: pip install 'nnphys[parquet]'") from None
    if output is not None:
        _check_output(output)
    store = _open_readonly(results)
    with store:
        if study is not None and study not in store.studies():
            raise ConfigError("--study", f"no results of {study!r} in {str(results)!r}; stored: "
                                         f"{', '.join(store.studies()) or '(none)'}")
        _check_output(output if output is not None else store.root / f"results.{format}")
        kwargs = {"tidy": tidy} if "tidy" in inspect.signature(export).parameters else {}
        try:
            path = export(store, format, output, study, **kwargs)
        except OSError as e:
            if e.filename is None:
                raise
            raise ConfigError("--output", f"cannot write {e.filename} ({e.strerror or e})") from None
    out.print(f"wrote {path}")


@app.command("plan")
def plan_cmd(
    study: str = typer.Argument(..., help="Study name (see nnphys list)."),
    scale: Scale = _scale_opt(),
    config: Optional[Path] = _config_opt(),
    sets: List[str] = _sets_opt(),
    sweeps: List[str] = _sweep_opt(),
    device: Optional[Device] = _device_opt(),
    workers: int = _workers_opt(),
    results: Path = RESULTS,
) -> None:
    """Dry run: the jobs a run would plan, by kind, how many the store already holds, and an
    estimated time from a cost model per job kind fit to stored timings by job size (with its
    held-out error). Never writes anything.

    Example: nnphys plan depth-locality --scale paper
    """
    from nnphys.lab.plan import plan

    scale, device = _v(scale), _v(device)
    prepared = _prepare(study, scale, config, sets, device, sweeps=sweeps)
    store = _open_readonly(results, missing_ok=True)
    _print_warnings(prepared)
    try:
        plans = [(plan(st, jobs, store), info) for st, _spec, jobs, info in prepared]
    finally:
        if store is not None:
            store.close()
    for p, info in plans:
        _print_plan(p, info, store is not None, results, workers, sweep=len(plans) > 1)


def _print_plan(p, info: dict, has_store: bool, results: Path, workers: int, sweep: bool) -> None:
    point = f" ({_overrides_text(info['overrides'])})" if sweep and info["overrides"] else ""
    t = Table(title=escape(f"{p.study}{point} at scale {info['scale']}: {p.planned} jobs")
                    + ("" if has_store else f" (no store in {results} yet)"))
    for col in ("kind", "planned", "done", "failed", "diverged", "missing", "median s/job", "cost model",
                "est. serial"):
        t.add_column(col)
    for k in p.kinds.values():
        med = "-" if k.median_s is None else f"{k.median_s:.2f} (n={k.timed})"
        model = "-" if k.model is None else k.model.describe()
        est = "-" if not k.missing else ("no timings" if k.estimate_s is None else _hms(k.estimate_s))
        t.add_row(escape(k.kind), str(k.planned), str(k.done), str(k.failed), str(k.diverged), str(k.missing), med,
                  escape(model), est)
    out.print(t)
    total = p.estimate_s(workers)
    missing = sum(k.missing for k in p.kinds.values())
    if not missing:
        out.print("nothing to run: every planned job is stored")
    elif total is None:
        out.print(f"{missing} job(s) to run; no estimate for {missing} of them (no stored timing of this study "
                  "in this store)")
    else:
        held = p.held_out()
        how = (f"held-out error: a median factor of {held:.2f} for the worst kind" if held is not None
               else "held-out error unknown (fewer than 3 timed jobs of a kind)")
        if p.uses_prior():
            how += "; kinds without timings use the study's median time per job (a rough prior)"
        out.print(f"{missing} job(s) to run; about {_hms(total)} on {workers} worker(s), from a cost model per job "
                  f"kind fit to stored timings by job size ({how})")
        far = p.extrapolated()
        if far:
            out.print(escape(f"extrapolated beyond the stored sizes in: {', '.join(far[:8])}"
                             f"{' …' if len(far) > 8 else ''}; the estimate extends the fitted trend and assumes "
                             "that what never varied among the stored jobs does not matter; time a few jobs of "
                             "the new sizes for a better one"))


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@app.command("fields")
def fields_cmd(study: str = typer.Argument(..., help="Study name (see nnphys list).")) -> None:
    """Every spec field of a study: type, bounds, tag, default and the preset values (quick,
    paper); set them with --set key=value or --config.

    Example: nnphys fields depth-locality
    """
    from nnphys.lab.fields import describe_fields
    from nnphys.studies import get_study

    st = get_study(study)
    out.print(escape(f"{st.name}: spec fields (schema v{st.schema_version}); set with --set key=value or --config"))
    for r in describe_fields(st):
        presets = ", ".join(f"{s}={r['presets'][s]!r}" if s in r["presets"] else f"{s}=default" for s in st.presets)
        desc = r["description"].removeprefix(f"[{r['tag']}]").strip()
        out.print(escape(f"  {r['name']}: {r['type']}; bounds {r['bounds']}; [{r['tag']}]; default {r['default']!r}; "
                         f"{presets}"), soft_wrap=True)
        if desc:
            out.print(escape(f"      {desc}"), soft_wrap=True)


# -- the error boundary --------------------------------------------------------------------

_STORE_TROUBLE = ("malformed", "not a database", "encrypted", "disk is full", "readonly database", "unable to open",
                  "disk i/o", "locked")


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("Value error, ", "")


# -- probe: one report on a user's model (all the work is in nnphys.probe) --------------------


@app.command("probe")
def probe_cmd(
    factory: str = typer.Argument(..., help="MODULE:CALLABLE returning (model, loss_fn, data); the current "
                                  "directory is importable."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A torch.save'd state_dict to load "
                                              "into the model first."),
    out_dir: Path = typer.Option(Path("probe"), "--out", help="Folder for report.md, report.json and the "
                                 "figures (created)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="B of the noise and the escape "
                                             "outlook (default: the DataLoader's, else min(32, N))."),
    lr: float = typer.Option(0.1, "--lr", help="SGD learning rate of the escape outlook."),
    b_eff: Optional[float] = typer.Option(None, "--b-eff", help="Target effective batch size of NE "
                                          "(default B/8)."),
    k: int = typer.Option(10, "--k", help="Eigenvalues of the noise, eigenpairs of the Hessian."),
    n_matvec: int = typer.Option(30, "--n-matvec", help="Hutch++ products for tr H."),
    seed: int = typer.Option(0, "--seed", help="Seed of the Lanczos start vector and the probes."),
) -> None:
    """Gradient noise, the NE alpha for a target effective batch size, the Hessian's top-k, trace,
    density and outliers, and the escape-rate outlook of your model, as report.md + report.json +
    PNG figures.

    Example: nnphys probe nnphys.probe:example --out probe/
    """
    from nnphys.probe import ProbeSettings, run_probe

    rep = run_probe(factory, checkpoint=checkpoint, out=out_dir,
                    settings=ProbeSettings(batch_size=batch_size, lr=lr, b_eff=b_eff, k=k,
                                           n_matvec=n_matvec, seed=seed))
    gn, ne, eo = rep["gradient_noise"], rep["noise_enhancement"], rep["escape_outlook"]
    out.print(escape(f"loss {rep['loss']:.6g}; tr C_B {gn['trace_noise']:.4g} (B={gn['batch_size']}); "
                     f"NE alpha {ne['alpha']:.4g} for B_eff={ne['b_eff']:g}; top Hessian eigenvalue "
                     f"{rep['hessian_top']['eigenvalues'][0]:.4g}; outliers n={rep['outliers']['n']}"),
              soft_wrap=True)
    out.print(escape(f"regime: {eo['regime']}"), soft_wrap=True)
    out.print(escape(f"wrote {out_dir / 'report.md'}, report.json and 3 figures"), soft_wrap=True)


def _interrupted(args: list[str]) -> int:
    resumable = bool(args) and args[0] in ("run", "reproduce")
    print("nnphys: interrupted" + ("; every finished job is stored: rerun the same command to resume"
                                   if resumable else ""), file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit code 2 for every user error."""
    global _ARGV
    args = list(argv if argv is not None else sys.argv[1:])
    _ARGV = ["nnphys", *args]
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=args, prog_name="nnphys", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # typer turns Ctrl-C into Exit(130), which click returns as the exit code
            code = _interrupted(args)
    except NnphysError as e:
        print(f"nnphys: error: {_one_line(e)}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = _interrupted(args)
    except OSError as e:
        # the environment refused a path (permissions, a full disk, a vanished folder): the
        # user's to fix, so one line naming the path; an OSError without a path is a bug
        if e.filename is None:
            raise
        print(f"nnphys: error: {e.filename}: {e.strerror or _one_line(e)}", file=sys.stderr)
        code = 2
    except sqlite3.DatabaseError as e:
        if not any(s in str(e).lower() for s in _STORE_TROUBLE):
            raise
        print(f"nnphys: error: results store: {_one_line(e)} (check --results)", file=sys.stderr)
        code = 2
    except Exception as e:  # click's exception family (typer vendors its own copy of click)
        kind = type(e).__name__
        if kind == "Exit":
            code = getattr(e, "exit_code", 0)
        elif kind == "Abort":  # click turns Ctrl-C into Abort
            code = _interrupted(args)
        elif hasattr(e, "format_message") and hasattr(e, "exit_code"):
            print(f"nnphys: error: {_one_line(e.format_message())}", file=sys.stderr)
            code = 2
        else:
            raise
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
