"""``r1data status``: where every task of a run is (completed, running, pending, failed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from r1data_cli.output import fail, user_errors


def status(
    out_dir: Annotated[Path, typer.Argument(help="Output directory of a run (what --output named).", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the status as JSON on stdout.")] = False,
    finalize: Annotated[bool, typer.Option("--finalize/--no-finalize", help="Write the manifest once every task completed.")] = True,
) -> None:
    """Per phase: tasks completed, running, pending and failed (with the log of each failed task).

    Reads the completion and failure markers in OUT_DIR and, for a Slurm run, asks squeue (and sacct when accounting is enabled). Once every task of a Slurm run has completed it writes OUT_DIR/manifest.json, as the run itself would have. Exit code 1 when a task failed."""
    from r1data.run.status import read_state, snapshot

    if not (out_dir / "run.json").is_file():
        raise fail(f"{out_dir}: not an r1data output directory (no run.json); pass the --output of a run")
    found = read_state(out_dir)
    if found is None:
        _local_status(out_dir, json_out)
        return
    with user_errors():
        st = snapshot(out_dir)
        written = None
        if st.complete and finalize and st.executor == "slurm" and not st.manifest:
            from r1data.run.slurm import finalize as write_manifest, load_plan

            written = write_manifest(load_plan(out_dir), st.state).manifest
            st.manifest = True
    if json_out:
        d = st.to_dict()
        d["manifest_written"] = str(written) if written else None
        typer.echo(json.dumps(d, indent=2))
    else:
        _print(st, written)
    if st.failed():
        raise typer.Exit(1)


def _print(st, written) -> None:
    from rich.console import Console
    from rich.table import Table

    import sys

    con = Console(width=None if sys.stdout.isatty() else 120)  # a log file has room; keep phase names whole
    state = st.state
    jobs = state.get("jobs", [])
    con.print(
        f"[bold]{state.get('pipeline', '?')}[/] on {st.executor}: {len(st.phases)} phase(s), started {state.get('started', '?')}"
        + (f", {len(jobs)} array job(s) submitted" if jobs else ""),
        highlight=False,
    )
    if st.queue_error:
        con.print(f"[yellow]squeue unavailable ({st.queue_error}); showing markers only[/]", highlight=False)
    table = Table(title_justify="left")
    table.add_column("phase", no_wrap=True)
    for head in ("tasks", "completed", "running", "pending", "failed", "unsubmitted"):
        table.add_column(head, justify="right", no_wrap=True)
    for p in st.phases:
        c = p.counts()
        pend = c["pending"] + c["blocked"]
        table.add_row(
            p.title, str(p.tasks), str(c["completed"]), str(c["running"]),
            f"{pend}" + (f" ({c['blocked']} blocked)" if c["blocked"] else ""),
            f"[red]{c['failed']}[/]" if c["failed"] else "0", str(c["not_submitted"]),
        )
    con.print(table)
    for p in st.phases:
        reasons: dict[str, int] = {}
        for t in p.ranks:
            if t.state == "pending":
                reasons[t.detail or "?"] = reasons.get(t.detail or "?", 0) + 1
        if reasons:
            con.print(f"{p.title} pending: " + ", ".join(f"{n} x {r}" for r, n in sorted(reasons.items())), highlight=False)
    failed = st.failed()
    if failed:
        con.print(f"[bold red]{len(failed)} failed task(s)[/]:")
        for p, t in failed:
            job = f" (job {t.job})" if t.job else ""
            con.print(f"  {p.title} task {t.rank}{job}: {t.detail}", markup=False, highlight=False)
            con.print(f"      log: {t.log}" + (f"   task log: {t.task_log}" if t.task_log and t.task_log != t.log else ""), markup=False, highlight=False)
        con.print("rerun the same `r1data run` command to resubmit only the unfinished tasks", highlight=False)
    if written:
        con.print(f"all tasks completed; wrote {written}", highlight=False)
    elif st.complete:
        con.print(f"all tasks completed; manifest: {st.out_dir / 'manifest.json'}", highlight=False)


def _local_status(out_dir: Path, json_out: bool) -> None:
    """A local run keeps no queue: completion markers per phase and whether the manifest is there."""
    done: dict[str, int] = {}
    comp = out_dir / "completions"
    if comp.is_dir():
        for p in sorted(comp.rglob("*")):
            if p.is_file():
                phase = "final" if p.parent == comp else p.parent.name
                done[phase] = done.get(phase, 0) + 1
    manifest = (out_dir / "manifest.json").is_file()
    if json_out:
        typer.echo(json.dumps({"output": str(out_dir), "executor": "local", "completed": done, "manifest": manifest}, indent=2))
        return
    for phase, n in sorted(done.items(), key=lambda kv: (kv[0] == "final", kv[0])):
        typer.echo(f"{phase}: {n} task(s) completed")
    if manifest:
        typer.echo(f"finished (local run); manifest: {out_dir / 'manifest.json'}")
    else:
        typer.echo("local run without a manifest: interrupted or still running; rerun the same command to resume it")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
