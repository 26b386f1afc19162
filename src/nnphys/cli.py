"""The ``nnphys`` command line: options and printing; the work is in ``nnphys.lab``.

One error boundary (:func:`main`): a user's error (an option, a spec value, a path, a store, an
address; :func:`nnphys.errors.user_error`) is one line on stderr and exit code 2, a bug keeps its
traceback. Writing commands check everything first and only then open the store; reading commands
open it read-only. A run whose planned jobs failed exits 1 (``EXIT_JOBS_FAILED``), never 0.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnphys.errors import ConfigError, user_error
from nnphys.lab import status as lab_status
from nnphys.lab.config import prepare, reproduce_inputs, warnings_of
from nnphys.lab.executors import MAX_THREADS, MAX_WORKERS, EngineConfig
from nnphys.lab.export import export_results
from nnphys.lab.fields import field_lines
from nnphys.lab.outcomes import failure_lines
from nnphys.lab.plan import plan_sweeps
from nnphys.lab.runner import run_prepared
from nnphys.lab.runs import overrides_text
from nnphys.lab.store import open_readonly

app = typer.Typer(name="nnphys", help="A laboratory for the physics of deep learning: run studies, check the "
                  "papers' claims, report.", add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
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
# exit codes: 0 success; 1 a run or reproduce finished but some planned job is stored as failed
# (each reason printed); 2 bad input (one line naming the field; nothing written); 130 interrupted
EXIT_JOBS_FAILED = 1

# enum options: typer shows the choices in --help and rejects others at parse time
Scale = Enum("Scale", {v: v for v in ("quick", "medium", "paper")}, type=str)
EngineName = Enum("EngineName", {v: v for v in ("inline", "dask")}, type=str)
Device = Enum("Device", {v: v for v in ("cpu", "cuda")}, type=str)
Rerun = Enum("Rerun", {"failed": "failed"}, type=str)
Format = Enum("Format", {v: v for v in ("csv", "parquet")}, type=str)


def _v(x: Any) -> Any:
    return x.value if isinstance(x, Enum) else x


RESULTS = typer.Option(Path("results"), "--results", "-r", help="Results directory (SQLite store, arrays, report).")
STUDY = typer.Argument(..., help="Study name (see nnphys list).")
SCALE = typer.Option(Scale.quick, "--scale", help="Preset: quick (minutes on a laptop), medium (an hour on 2 "
                                                   "cores, where the study has it) or paper.")
CONFIG = typer.Option(None, "--config", "-c", help="TOML file of spec fields: flat keys, and [STUDY] tables "
                                                   "(those of other studies are ignored).")
SETS = typer.Option([], "--set", "-s", help="Override a spec field: key=value (repeatable; lists as 1,2,4 or [1]; "
                                            "a single value for a list field is a one-item list; dicts as JSON or "
                                            "TOML, '{\"2\":[1000]}'; booleans true/false). `nnphys fields STUDY` "
                                            "lists the fields.")
SWEEPS = typer.Option([], "--sweep", help="One sweep per value: key=v1,v2,... (repeatable: the product of the "
                                          "values); e.g. --sweep seed=0,1,2.")
WORKERS = typer.Option(1, "--workers", "-w", min=1, max=MAX_WORKERS,
                       help="Local worker processes (N > 1 uses a Dask LocalCluster).")
THREADS = typer.Option(None, "--threads", min=1, max=MAX_THREADS,
                       help="torch/BLAS threads per job (default 1: parallelism goes across jobs).")
ENGINE = typer.Option(None, "--engine", help="Default: inline for one worker, dask otherwise.")
ADDRESS = typer.Option(None, "--address", help="Dask scheduler address SCHEME://HOST:PORT, e.g. tcp://head:8786.")
DEVICE = typer.Option(None, "--device", help="Overrides the spec's device.")


# -- printing ----------------------------------------------------------------------------------

def _print_claims(name: str, claims) -> None:
    t = Table(title=f"{name}: claims", show_lines=False)
    for col in ("id", "tag", "verdict", "evidence"):
        t.add_column(col, overflow="fold")
    color = {"holds": "green", "fails": "red", "inconclusive": "yellow", "uninformative": "cyan"}
    for c in claims:
        t.add_row(escape(c.id), escape(f"[{c.tag}]"), f"[{color.get(c.verdict, 'white')}]{c.verdict}[/]",
                  escape(c.summary))
    out.print(t)


def _print_warnings(prepared: list) -> None:
    """Printed only once every check has passed, so that bad input still gives exactly one line."""
    for line in warnings_of(prepared):
        err.print(escape(f"nnphys: warning: {line}"), soft_wrap=True)


@app.command("list")
def list_cmd(claims: bool = typer.Option(False, "--claims", help="Print each claim's pre-registered rule "
                                         "(test, SESOI or margin, alpha, fails-if, version).")) -> None:
    """List the studies, their papers and claim ids.

    Example: nnphys list --claims
    """
    from nnphys.lab.report import study_lines
    from nnphys.studies import registry

    for name, s in registry().items():
        out.print(f"[bold]{name}[/]  (schema v{s.schema_version})")
        for line in study_lines(s, with_rules=claims):
            out.print(escape(line))


# -- writing commands: every check first, then the store ---------------------------------------

def _execute(prepared: list, eng: EngineConfig, results: Path, rerun_failed: bool, quiet: bool) -> int:
    """Run prepared sweeps and print each one's summary, claims and failure reasons; the exit code."""
    code = 0
    for o in run_prepared(prepared, eng, results, rerun_failed=rerun_failed, progress=not quiet,
                          analyse=not quiet, argv=_ARGV, ready=lambda: _print_warnings(prepared)):
        name, overrides = o.prepared.study.name, o.prepared.info["overrides"]
        point = f" ({escape(overrides_text(overrides))})" if overrides and len(prepared) > 1 else ""
        out.print(f"[bold]{name}[/]{point}{escape(o.summary.text())}")
        code = EXIT_JOBS_FAILED if o.failures else code
        if o.claims is not None:
            _print_claims(name, o.claims)
        if o.analysis_error is not None:
            err.print(f"analysis of {name} failed ({o.analysis_error}); see nnphys report")
        for line in failure_lines(name, o.failures):
            err.print(escape(line), soft_wrap=True)
    return code


@app.command("run")
def run_cmd(
    study: str = STUDY, scale: Scale = SCALE, config: Optional[Path] = CONFIG, sets: List[str] = SETS,
    sweeps: List[str] = SWEEPS, workers: int = WORKERS, engine: Optional[EngineName] = ENGINE,
    address: Optional[str] = ADDRESS, device: Optional[Device] = DEVICE, results: Path = RESULTS,
    rerun: Optional[Rerun] = typer.Option(None, "--rerun", help="'failed': run failed jobs again."),
    threads: Optional[int] = THREADS,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no claims table."),
) -> int:
    """Run one study's sweep (resumable: finished jobs are never run twice; several drivers
    may share one store, each job runs once). Spec fields: nnphys fields STUDY. Exit code 1
    when a planned job failed (each reason printed), 2 for bad input.

    Example: nnphys run depth-locality --set d=64 --set depths=1,2,4,8 --workers 2
    """
    prepared = prepare(study, _v(scale), config, sets, _v(device), sweeps=sweeps)
    eng = EngineConfig(engine=_v(engine), workers=workers, address=address, threads=threads).resolved()
    return _execute(prepared, eng, results, _v(rerun) == "failed", quiet)


@app.command("reproduce")
def reproduce_cmd(
    scale: Scale = typer.Option(Scale.quick, "--scale", help="Preset for every study: quick, medium (studies "
                                                             "that have it) or paper."),
    studies: Optional[str] = typer.Option(None, "--studies", help="Comma-separated subset (default: all studies)."),
    sets: List[str] = typer.Option([], "--set", "-s", help="key=value for every selected study that has the field, "
                                                           "or STUDY.key=value for one (repeatable)."),
    config: Optional[Path] = typer.Option(None, "--config", "-c",
                                          help="TOML: flat keys as --set, [STUDY] tables for one study."),
    workers: int = WORKERS, engine: Optional[EngineName] = ENGINE, address: Optional[str] = ADDRESS,
    device: Optional[Device] = DEVICE, results: Path = RESULTS,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or claims tables."),
    threads: Optional[int] = THREADS,
) -> int:
    """Run every registered study (or --studies a,b) at one scale, then write the report.
    Exit code 1 when a planned job failed (each reason printed), 2 for bad input.

    Example: nnphys reproduce --scale quick --studies minibatch-noise,escape-rate
    """
    scale, per, skipped = reproduce_inputs(studies, _v(scale), sets, config)
    if skipped:
        err.print(f"reproduce: no {scale} preset in {', '.join(skipped)}; skipped (name them in --studies "
                  "with another --scale to run them)")
    if not per:
        raise ConfigError("scale", f"no study has a {scale!r} preset")
    prepared = [p for n, values in per.items() for p in prepare(n, scale, None, [], _v(device), values)]
    eng = EngineConfig(engine=_v(engine), workers=workers, address=address, threads=threads).resolved()
    code = _execute(prepared, eng, results, False, quiet)
    _report(results, show_claims=False)  # each study's claims were printed after its run
    return code


# -- reading commands: the store is opened read-only and never changed -------------------------

@app.command("status")
def status_cmd(results: Path = RESULTS) -> None:
    """Per study: jobs planned by the last run, how many are done, failed, diverged, running
    (claimed by a live driver), and the thread counts the finished jobs ran with; then one line
    per reason that jobs failed for.

    Example: nnphys status --results results
    """
    with open_readonly(results) as store:
        rows = lab_status.store_status(store)
        # fits 80 columns: study names never truncated, short numeric headers (explained below)
        t = Table(title=f"results in {results}", box=box.SIMPLE_HEAD, pad_edge=False)
        for i, col in enumerate(lab_status.COLUMNS):
            width = max([len(r.study) for r in rows] + [5]) if i == 0 else None
            t.add_column(col, justify="right" if i > 1 else "left", no_wrap=True, min_width=width)
        for r in rows:
            t.add_row(*r.cells())
        out.print(t)
        out.print(lab_status.LEGEND)
        for line in lab_status.notes(rows):
            out.print(escape(line), soft_wrap=True)
        if store.upgrade_note:
            out.print(escape(f"note: {store.upgrade_note}"))


def _report(results: Path, show_claims: bool = True) -> None:
    """Write the report of every study in the store; print each study's claims unless the caller
    (``reproduce``, which printed them after each study's run) says not to."""
    from nnphys.lab.report import write_report
    from nnphys.studies import registry

    with open_readonly(results) as store:
        studies = [s for s in registry().values() if s.name in set(store.studies())]
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


@app.command("export")
def export_cmd(
    format: Format = typer.Option(Format.csv, "--format", "-f", help="csv or parquet (parquet needs pyarrow: "
                                                                     "pip install 'nnphys[parquet]')."),
    results: Path = RESULTS,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default "
                                                                       "results/results.FORMAT)."),
    study: Optional[str] = typer.Option(None, "--study", help="Only this study."),
    tidy: bool = typer.Option(True, "--tidy/--wide", help="Long format (one row per job, member, metric) or one "
                                                          "row per job."),
) -> None:
    """Export every stored job as CSV or Parquet.

    Example: nnphys export --format parquet
    """
    out.print(f"wrote {export_results(results, _v(format), output, study, tidy=tidy)}")


@app.command("plan")
def plan_cmd(
    study: str = STUDY, scale: Scale = SCALE, config: Optional[Path] = CONFIG, sets: List[str] = SETS,
    sweeps: List[str] = SWEEPS, device: Optional[Device] = DEVICE, workers: int = WORKERS, results: Path = RESULTS,
) -> None:
    """Dry run: the jobs a run would plan, by kind, how many the store already holds, and an
    estimated time from a cost model per job kind fit to stored timings by job size (with its
    held-out error). Never writes anything.

    Example: nnphys plan depth-locality --scale paper
    """
    prepared = prepare(study, _v(scale), config, sets, _v(device), sweeps=sweeps)
    plans, has_store = plan_sweeps(prepared, results)
    _print_warnings(prepared)
    for p, info in plans:
        point = f" ({overrides_text(info['overrides'])})" if len(plans) > 1 and info["overrides"] else ""
        t = Table(title=escape(f"{p.study}{point} at scale {info['scale']}: {p.planned} jobs")
                        + ("" if has_store else f" (no store in {results} yet)"))
        for col in p.COLUMNS:
            t.add_column(col)
        for row in p.rows():
            t.add_row(*map(escape, row))
        out.print(t)
        for line in p.notes(workers):
            out.print(escape(line))


@app.command("fields")
def fields_cmd(study: str = STUDY) -> None:
    """Every spec field of a study: type, bounds, tag, default and the preset values (quick,
    paper); set them with --set key=value or --config.

    Example: nnphys fields depth-locality
    """
    from nnphys.studies import get_study

    head, *lines = field_lines(get_study(study))
    out.print(escape(head))
    for line in lines:
        out.print(escape(line), soft_wrap=True)


# -- probe: one report on a user's model (all the work is in nnphys.probe) ---------------------

@app.command("probe")
def probe_cmd(
    factory: str = typer.Argument(..., help="MODULE:CALLABLE returning (model, loss_fn, data); the current "
                                            "directory is importable."),
    checkpoint: Optional[Path] = typer.Option(None, help="A torch.save'd state_dict to load into the model first."),
    out_dir: Path = typer.Option(Path("probe"), "--out", help="Folder for report.md, report.json and the figures "
                                                              "(created)."),
    batch_size: Optional[int] = typer.Option(None, help="B of the noise and the escape outlook (default: the "
                                                        "DataLoader's, else min(32, N))."),
    lr: float = typer.Option(0.1, help="SGD learning rate of the escape outlook."),
    b_eff: Optional[float] = typer.Option(None, help="Target effective batch size of NE (default B/8)."),
    k: int = typer.Option(10, "--k", help="Eigenvalues of the noise, eigenpairs of the Hessian."),
    n_matvec: int = typer.Option(30, help="Hutch++ products for tr H."),
    seed: int = typer.Option(0, help="Seed of the Lanczos start vector and the probes."),
) -> None:
    """Gradient noise, the NE alpha for a target effective batch size, the Hessian's top-k, trace,
    density and outliers, and the escape-rate outlook of your model, as report.md + report.json +
    PNG figures.

    Example: nnphys probe nnphys.probe:example --out probe/
    """
    from nnphys.probe import ProbeSettings, run_probe, summary_lines

    settings = ProbeSettings(batch_size=batch_size, lr=lr, b_eff=b_eff, k=k, n_matvec=n_matvec, seed=seed)
    for line in summary_lines(run_probe(factory, checkpoint=checkpoint, out=out_dir, settings=settings), out_dir):
        out.print(escape(line), soft_wrap=True)


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
    except KeyboardInterrupt:
        code = _interrupted(args)
    except Exception as e:
        kind = type(e).__name__  # click's exception family (typer vendors its own copy of click)
        if kind == "Exit":
            code = getattr(e, "exit_code", 0)
        elif kind == "Abort":  # click turns Ctrl-C into Abort
            code = _interrupted(args)
        elif user_error(e) is None:
            raise
        else:
            print(f"nnphys: error: {user_error(e)}", file=sys.stderr)
            code = 2
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
