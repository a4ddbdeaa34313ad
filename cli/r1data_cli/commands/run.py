"""``r1data run`` and ``r1data validate``."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from r1data.config.knobs import KNOBS
from r1data_cli.output import user_errors

Recipe = Annotated[Path, typer.Argument(help="Pipeline recipe (YAML), e.g. pipelines/web.yaml.", show_default=False)]
Sets = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a value: stages.<name>.<param>=<value>, output.path=..., executor.tasks=...", show_default=False),
]
Inputs = Annotated[Optional[list[str]], typer.Option("--input", "-i", help="Replace the recipe's inputs (repeatable).", show_default=False)]
Output = Annotated[Optional[str], typer.Option("--output", "-o", help="Output directory (default: the recipe's).", show_default=False)]
Tasks = Annotated[Optional[int], typer.Option("--tasks", min=1, help="Units of work (default: one per input file).", show_default=False)]
Workers = Annotated[Optional[int], typer.Option("--workers", min=1, help="Tasks run at once (default: all cores).", show_default=False)]

# Where it runs (an `executor:` block in the recipe sets the same; these flags win).
_CLUSTER = "Cluster (Slurm / Ray)"
Executor = Annotated[
    Optional[str],
    typer.Option("--executor", help="local (default), slurm (array jobs via sbatch) or ray (a Ray cluster).", show_default=False, rich_help_panel=_CLUSTER),
]
Partition = Annotated[Optional[str], typer.Option("--partition", help="Slurm partition.", show_default=False, rich_help_panel=_CLUSTER)]
TimeLimit = Annotated[Optional[str], typer.Option("--time", help="Slurm time limit per task, e.g. 04:00:00.", show_default=False, rich_help_panel=_CLUSTER)]
CpusPerTask = Annotated[Optional[int], typer.Option("--cpus-per-task", min=1, help="CPUs per task (Slurm, Ray).", show_default=False, rich_help_panel=_CLUSTER)]
MemPerCpu = Annotated[
    Optional[str],
    typer.Option("--mem-per-cpu", help="Memory per CPU: 4G, 3500M or a number of GB (Slurm, Ray).", show_default=False, rich_help_panel=_CLUSTER),
]
Qos = Annotated[Optional[str], typer.Option("--qos", help="Slurm QOS.", show_default=False, rich_help_panel=_CLUSTER)]
Account = Annotated[Optional[str], typer.Option("--account", help="Slurm account to charge.", show_default=False, rich_help_panel=_CLUSTER)]
MaxArraySize = Annotated[
    Optional[int],
    typer.Option("--max-array-size", min=1, help="Largest array to submit (default: the cluster's MaxArraySize); more tasks make more arrays.", show_default=False, rich_help_panel=_CLUSTER),
]
Address = Annotated[
    Optional[str],
    typer.Option("--address", help="Ray cluster address (default: $RAY_ADDRESS, else the local `ray start` cluster).", show_default=False, rich_help_panel=_CLUSTER),
]
Wait = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Slurm: wait for the jobs and write the manifest (default), or return after sbatch.", rich_help_panel=_CLUSTER),
]


def with_knobs(fn):
    """Give command ``fn`` one option per knob (``r1data.config.knobs.KNOBS``: --filter-threshold,
    --dedup-window, ...), right after the recipe argument; ``fn`` receives them as ``knobs``."""
    sig = inspect.signature(fn, eval_str=True)
    params = [p for p in sig.parameters.values() if p.name != "knobs"]
    options = [
        inspect.Parameter(k.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                          annotation=Annotated[Optional[k.type], typer.Option(k.flag, help=k.help, show_default=False)])
        for k in KNOBS.values()
    ]

    @functools.wraps(fn)
    def command(*args, **kwargs):
        knobs = {name: kwargs.pop(name, None) for name in KNOBS}
        return fn(*args, knobs=knobs, **kwargs)

    command.__signature__ = sig.replace(parameters=params[:1] + options + params[1:])
    return command


def with_options(name: str, cls):
    """Expand dataclass ``cls`` (fields annotated with typer options) into options of the command in
    place of its parameter ``name``; the command receives them as one ``cls`` instance."""

    def deco(fn):
        sig = inspect.signature(fn, eval_str=True)
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = dataclasses.fields(cls)
        expanded = [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default, annotation=hints[f.name]) for f in fields]
        params = [q for p in sig.parameters.values() for q in (expanded if p.name == name else [p])]

        @functools.wraps(fn)
        def command(*args, **kwargs):
            kwargs[name] = cls(**{f.name: kwargs.pop(f.name) for f in fields if f.name in kwargs})
            return fn(*args, **kwargs)

        command.__signature__ = sig.replace(parameters=params)
        return command

    return deco


@dataclass
class Cluster:
    """Where a run goes (an `executor:` block in the recipe sets the same; these flags win)."""

    executor: Executor = None
    partition: Partition = None
    time: TimeLimit = None
    cpus_per_task: CpusPerTask = None
    mem_per_cpu: MemPerCpu = None
    qos: Qos = None
    account: Account = None
    max_array_size: MaxArraySize = None
    address: Address = None
    wait: Wait = True

    def executor_options(self) -> dict:
        """The ``executor:`` values these flags set (``None``: not given)."""
        return {
            "partition": self.partition,
            "time": self.time,
            "cpus_per_task": self.cpus_per_task,
            "mem_per_cpu_gb": _mem_gb(self.mem_per_cpu),
            "qos": self.qos,
            "account": self.account,
            "max_array_size": self.max_array_size,
            "address": self.address,
        }


def _mem_gb(value: str | None) -> float | None:
    """``4G``, ``3500M``, ``1T`` or a plain number of GB -> GB."""
    if value is None:
        return None
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", value, re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise typer.BadParameter(f"{value!r}: expected a size such as 4G, 3500M or 2.5 (GB)", param_hint="--mem-per-cpu")
    scale = {"": 1, "K": 1 / 2**20, "M": 1 / 1024, "G": 1, "T": 1024}[m.group(2).upper()]
    return float(m.group(1)) * scale


def _overrides(knobs, sets, inputs, **rest):
    from r1data.config.spec import Overrides

    return Overrides(sets=list(sets or []), inputs=list(inputs) if inputs else None, knobs=knobs, **rest)


@with_knobs
@with_options("cluster", Cluster)
def run(
    recipe: Recipe,
    knobs: dict,
    set_: Sets = None,
    input_: Inputs = None,
    output: Output = None,
    tasks: Tasks = None,
    workers: Workers = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved, validated plan (and the sbatch scripts) and exit.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output directory instead of resuming it (refused, like any second run, while another run holds it).")] = False,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    cluster: Cluster = None,
) -> None:
    """Run a pipeline recipe; rerunning the same command resumes an interrupted run.

    One run per output directory: a second one is refused (exit 2) while the first holds OUTPUT/.r1data.lock.
    With --executor slurm every phase becomes an array job (chained with afterok) and a rerun submits only the unfinished tasks; `r1data status OUT_DIR` shows where each task is."""
    from r1data.run.pipeline import execute, load_spec, plan_run

    options = cluster.executor_options()
    with user_errors():
        ov = _overrides(knobs, set_, input_, output=output, tasks=tasks, workers=workers, executor=cluster.executor, executor_options=options)
        spec = load_spec(recipe, ov)
        plan = plan_run(spec)
        unused = [f"--{k.replace('_', '-').removesuffix('-gb')}" for k, v in options.items() if v is not None and k != "address"]
        if spec.executor.type == "local" and unused:
            typer.echo(f"note: {', '.join(unused)} only apply with --executor slurm (or ray); this run is local", err=True)
        if dry_run:
            _print_plan(plan)
            if spec.executor.type == "slurm":
                _print_sbatch_scripts(plan)
            return
        with _Progress(spec.name, enabled=sys.stderr.isatty() and not json_summary) as progress:
            notes = (lambda msg: progress.note(f"[{spec.executor.type}] {msg}")) if spec.executor.type != "local" else None
            # a local run prints documents read, docs/s and an ETA every ~10 s on stderr (never with --json)
            result = execute(
                plan, overwrite=overwrite, on_progress=progress.update, wait=cluster.wait, on_event=notes, on_line=None if json_summary else progress.note
            )
        if not result.finished:  # --no-wait on Slurm: submitted, not finished
            _print_submitted(result, json_summary)
        elif json_summary:
            typer.echo(json.dumps(_summary_dict(result), indent=2))
        else:
            _print_summary(result, plan)


@with_knobs
def validate(
    recipe: Recipe,
    knobs: dict,
    set_: Sets = None,
    input_: Inputs = None,
) -> None:
    """Check a recipe (stages, parameters, models, inputs) without running it."""
    from r1data.run.pipeline import load_spec, plan_run

    with user_errors():
        spec = load_spec(recipe, _overrides(knobs, set_, input_))
        plan = plan_run(spec)
    size = sum(f.size or 0 for f in plan.inputs)
    typer.echo(
        f"{recipe}: ok — {len(spec.stages)} stages, {len(plan.inputs)} input files ({size / 2**20:.1f} MiB), "
        f"config {spec.config_hash()[:12]}"
    )


class _Progress:
    """A task progress bar on a terminal; nothing otherwise (logs stay quiet)."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled = name, enabled
        self._progress = self._task = self._phase = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn(f"[bold]{self.name}[/]" + " {task.description} tasks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
            )
            self._progress.start()
        return self

    def update(self, done: int, total: int, phase: str = "final") -> None:
        if self._progress is None:
            return
        if self._task is None or self._phase != phase:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(phase, total=total)
            self._phase = phase
        self._progress.update(self._task, completed=done, total=total)

    def note(self, message: str) -> None:
        """A line on stderr that does not tear the progress bar."""
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            typer.echo(message, err=True)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
        return False


def _print_plan(plan) -> None:
    from rich.console import Console
    from rich.table import Table

    d = plan.describe()
    con = Console(soft_wrap=True)
    con.print(f"[bold]pipeline[/] {d['pipeline']}  ({d['recipe']}, config {d['config_hash'][:12]})")
    con.print(f"[bold]executor[/] {d['executor']}: {d['tasks']} tasks, {d['workers']} workers -> {d['output']}")
    knobs = {k: v for k, v in d["knobs"].items() if k != "applied_to"}
    if knobs:
        con.print(f"[bold]knobs[/] {knobs} applied to {d['knobs']['applied_to']}")
    con.print(f"[bold]inputs[/] {len(d['inputs'])} files")
    for f in d["inputs"][:20]:
        size = f"{f['size'] / 2**20:.1f} MiB" if f["size"] is not None else "?"
        con.print(f"  [{f['index']}] {f['uri']} ({size})")
    if len(d["inputs"]) > 20:
        con.print(f"  ... {len(d['inputs']) - 20} more")
    con.print("[bold]stages[/]")
    import yaml

    con.print(yaml.safe_dump(d["stages"], sort_keys=False).rstrip(), markup=False, highlight=False)
    table = Table("column", "type", "description", title="shard schema", title_justify="left")
    for name, typ, desc in d["shard_schema"]:
        table.add_row(name, typ, desc)
    con.print(table)
    con.print(f"rejected/ adds: {', '.join(d['rejected_extra_columns'])}")


def _print_sbatch_scripts(plan) -> None:
    from r1data.run.slurm import dry_run_scripts

    for head, script in dry_run_scripts(plan):
        typer.echo("")
        typer.echo(head)
        if script:
            typer.echo(script.rstrip())


def _print_submitted(sub, as_json: bool) -> None:
    out = sub.out_dir
    if as_json:
        typer.echo(json.dumps({"output": str(out), "submitted": sub.jobs, "status": f"r1data status {out}"}, indent=2))
        return
    if sub.jobs:
        ids = " ".join(sorted({j["job_id"] for j in sub.jobs}, key=int))
        typer.echo(f"submitted {len(sub.jobs)} array job(s): {ids}")
    else:
        typer.echo("nothing to submit: every task is completed or still queued")
    typer.echo(f"  progress:  r1data status {out}      (also: squeue --me)")
    typer.echo(f"  logs:      {out}/slurm_logs/<job id>_<array index>.out, {out}/logs/")
    typer.echo(f"  when done: r1data status {out} writes {out}/manifest.json (so does rerunning this command)")
    typer.echo("  on failure: rerun this command; it resubmits only the unfinished tasks")


def _summary_dict(result) -> dict:
    c = result.counts
    return {
        "output": str(result.out_dir),
        "read": c["read"],
        "generated": c.get("generated", 0),
        "kept": c["kept"],
        "rejected": c["rejected"],
        "dropped": c["dropped"],
        "input_errors": c["input_errors"],
        "wall_seconds": round(result.wall_seconds, 2),
        "manifest": str(result.manifest),
        "resumed_tasks": result.skipped_tasks,
    }


def _print_summary(result, plan) -> None:
    from rich.console import Console
    from rich.table import Table

    c = result.counts
    con = Console(soft_wrap=True)
    read = c["read"] or 1
    rate = c["read"] / result.wall_seconds if result.wall_seconds else 0
    gen = c.get("generated", 0)
    if gen:  # augmentation added documents: percentages are of read + generated
        by = ", ".join(f"{s} {n:,}" for s, n in c.get("generated_by_stage", {}).items())
        con.print(f"generated {gen:,} documents ({by})")
        read = c["read"] + gen or 1
    con.print(
        f"[bold]{plan.spec.name}[/]: read {c['read']:,}, kept {c['kept']:,} ({100 * c['kept'] / read:.1f}%), "
        f"dropped {c['rejected']:,} in {result.wall_seconds:.1f} s ({rate:.1f} docs/s)"
        + (f"; resumed ({result.skipped_tasks} tasks were already done)" if result.skipped_tasks else "")
    )
    if c["dropped"]:
        table = Table("stage", "reason", "dropped", "% of read" + (" + generated" if gen else ""), title="dropped documents", title_justify="left")
        for row in c["dropped"]:
            table.add_row(row["stage"], row["reason"], f"{row['count']:,}", f"{100 * row['count'] / read:.1f}")
        con.print(table)
    broken = [e for e in c["input_errors"] if e.get("kind") != "empty_input"]
    empty = [e for e in c["input_errors"] if e.get("kind") == "empty_input"]
    if broken:
        con.print(f"[bold red]{len(broken)} input file(s) could not be fully read[/] (named in the manifest):")
        for e in broken:
            con.print(f"  {e['uri']}: {e['error']} ({e['documents_before_error']} documents read from it)", markup=False)
    if empty:
        con.print(f"[bold red]{len(empty)} input(s) gave no documents[/] (named in the manifest):")
        for e in empty:
            con.print(f"  {e['uri']}: {e['error']}", markup=False)
    con.print(f"output: {result.out_dir}/shards ({c['kept']:,} rows), rejected/ ({c['rejected']:,} rows)")
    con.print(f"manifest: {result.manifest}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("validate")(validate)
