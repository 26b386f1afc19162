"""The ``nnphys`` command line: thin, it calls ``nnphys.lab`` and ``nnphys.studies``.

User errors print one line on stderr and exit with code 2; tracebacks are for bugs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnphys.errors import ConfigError, NnphysError

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

RESULTS = typer.Option(Path("results"), "--results", "-r", help="Results directory (SQLite store, arrays, report).")


def _engine(workers: int, engine: Optional[str], address: Optional[str], threads: Optional[int] = None):
    from nnphys.lab.executors import EngineConfig

    return EngineConfig(engine=engine, workers=workers, address=address, threads=threads).resolved()


def _print_summary(summary, claims=None) -> None:
    c = summary.counts
    out.print(f"[bold]{summary.study}[/]: {summary.planned} planned, {summary.already} already finished, "
              f"{summary.executed} run now ({c['done']} done, {c['failed']} failed, {c['diverged']} diverged) "
              f"in {summary.wall:.1f} s")


def _print_claims(name: str, claims) -> None:
    t = Table(title=f"{name}: claims", show_lines=False)
    for col in ("id", "tag", "verdict", "evidence"):
        t.add_column(col, overflow="fold")
    color = {"holds": "green", "fails": "red", "inconclusive": "yellow"}
    for c in claims:
        t.add_row(escape(c.id), escape(f"[{c.tag}]"), f"[{color[c.verdict]}]{c.verdict}[/]", escape(c.summary))
    out.print(t)


@app.command("list")
def list_cmd() -> None:
    """List the studies, their papers and claim ids.

    Example: nnphys list
    """
    from nnphys.studies import registry

    for name, s in registry().items():
        out.print(f"[bold]{name}[/]  (schema v{s.schema_version})")
        for p in s.papers:
            out.print(escape(f"  paper: {p}"))
        if s.description:
            out.print(escape(f"  {s.description}"))
        for cid, info in s.claims.items():
            out.print(escape(f"  {cid:>4} [{info.tag}] {info.statement}"))


def _run_one(name: str, scale: str, config: Optional[Path], sets: List[str], workers: int, engine: Optional[str],
             address: Optional[str], device: Optional[str], results: Path, rerun: Optional[str],
             quiet: bool, threads: Optional[int] = None) -> None:
    from nnphys.lab.config import build_spec, plan_jobs
    from nnphys.lab.runner import check_device, run_study
    from nnphys.lab.store import Store
    from nnphys.studies import get_study

    study = get_study(name)
    if rerun not in (None, "failed"):
        raise ConfigError("--rerun", f"the only choice is 'failed' (got {rerun!r})")
    extra = {"device": device} if device is not None else {}
    if device is not None and device not in ("cpu", "cuda"):
        raise ConfigError("--device", f"must be cpu or cuda (got {device!r})")
    spec = build_spec(study, scale, config, sets, extra)
    jobs = plan_jobs(study, spec)
    eng = _engine(workers, engine, address, threads)
    check_device(spec, eng)
    # everything a user can get wrong has been checked: only now touch the store
    with Store(results) as store:
        summary = run_study(study, spec, store, eng, scale=scale, rerun_failed=rerun == "failed",
                            progress=not quiet, jobs=jobs)
        _print_summary(summary)
        if not quiet:
            res = store.results(study.name, store.latest_run(study.name)["keys"])
            try:
                _print_claims(study.name, study.analyse(spec, res))
            except Exception as e:  # noqa: BLE001 - the report shows the traceback
                err.print(f"analysis of {study.name} failed ({type(e).__name__}: {e}); see nnphys report")


@app.command("run")
def run_cmd(
    study: str = typer.Argument(..., help="Study name (see nnphys list)."),
    scale: str = typer.Option("quick", "--scale", help="Preset: quick (minutes on a laptop) or paper."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file of spec fields (flat keys)."),
    sets: List[str] = typer.Option([], "--set", "-s", help="Override a spec field: key=value (repeatable; lists as 1,2,4)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Local worker processes (N > 1 uses a Dask LocalCluster)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="inline or dask (default: inline for one worker)."),
    address: Optional[str] = typer.Option(None, "--address", help="Dask scheduler address, e.g. tcp://host:8786."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (overrides the spec's device)."),
    results: Path = RESULTS,
    rerun: Optional[str] = typer.Option(None, "--rerun", help="'failed': run failed jobs again."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch/BLAS threads per job (default: cores // workers)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no claims table."),
) -> None:
    """Run one study's sweep (resumable: finished jobs are never run twice).

    Example: nnphys run depth-locality --set d=64 --set depths=1,2,4,8 --workers 2
    """
    _run_one(study, scale, config, sets, workers, engine, address, device, results, rerun, quiet, threads)


@app.command("reproduce")
def reproduce_cmd(
    scale: str = typer.Option("quick", "--scale", help="Preset for every study: quick or paper."),
    workers: int = typer.Option(1, "--workers", "-w", help="Local worker processes."),
    engine: Optional[str] = typer.Option(None, "--engine", help="inline or dask."),
    address: Optional[str] = typer.Option(None, "--address", help="Dask scheduler address."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
    results: Path = RESULTS,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or claims tables."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch/BLAS threads per job (default: cores // workers)."),
) -> None:
    """Run every registered study at one scale, then write the report.

    Example: nnphys reproduce --scale quick
    """
    from nnphys.studies import registry

    for name in registry():
        _run_one(name, scale, None, [], workers, engine, address, device, results, None, quiet, threads)
    _report(results)


@app.command("status")
def status_cmd(results: Path = RESULTS) -> None:
    """Per study: jobs planned by the last run, and how many are done, failed, diverged.

    Example: nnphys status --results results
    """
    from nnphys.lab.store import DB_NAME, Store

    if not (results / DB_NAME).exists():
        raise ConfigError("--results", f"no results store in {str(results)!r} (run a study first)")
    with Store(results) as store:
        t = Table(title=f"results in {results}")
        for col in ("study", "scale", "planned", "done", "failed", "diverged", "missing"):
            t.add_column(col)
        for name in store.studies():
            run = store.latest_run(name)
            keys = run["keys"] if run else []
            st = store.statuses(name, keys)
            n = {s: sum(v == s for v in st.values()) for s in ("done", "failed", "diverged")}
            t.add_row(name, str(run["scale"] if run else "-"), str(len(keys)), str(n["done"]), str(n["failed"]),
                      str(n["diverged"]), str(len(keys) - len(st)))
        out.print(t)


def _report(results: Path) -> None:
    from nnphys.lab.report import write_report
    from nnphys.lab.store import DB_NAME, Store
    from nnphys.studies import registry

    if not (results / DB_NAME).exists():
        raise ConfigError("--results", f"no results store in {str(results)!r} (run a study first)")
    with Store(results) as store:
        md, html, reps = write_report(store, list(registry().values()))
    for rep in reps:
        if rep.claims:
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
    format: str = typer.Option("csv", "--format", "-f", help="csv or parquet."),
    results: Path = RESULTS,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default results/results.FORMAT)."),
    study: Optional[str] = typer.Option(None, "--study", help="Only this study."),
) -> None:
    """Export every stored job (params.*, metrics.*, versions.* columns) as CSV or Parquet.

    Example: nnphys export --format parquet
    """
    from nnphys.lab.export import export
    from nnphys.lab.store import DB_NAME, Store

    if not (results / DB_NAME).exists():
        raise ConfigError("--results", f"no results store in {str(results)!r} (run a study first)")
    with Store(results) as store:
        path = export(store, format, output, study)
    out.print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and exit code 2 for every user error."""
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=argv if argv is not None else sys.argv[1:], prog_name="nnphys", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except NnphysError as e:
        print(f"nnphys: error: {' '.join(str(e).split())}", file=sys.stderr)
        code = 2
    except Exception as e:  # click's exception family (typer may vendor its own copy of click)
        kind = type(e).__name__
        if kind == "Exit":
            code = getattr(e, "exit_code", 0)
        elif kind == "Abort":
            print("nnphys: aborted", file=sys.stderr)
            code = 130
        elif hasattr(e, "format_message") and hasattr(e, "exit_code"):
            print(f"nnphys: error: {' '.join(e.format_message().split())}", file=sys.stderr)
            code = 2
        else:
            raise
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
