"""The library entry point behind ``r1data run``: load a recipe, plan it, run it, write the manifest.

    from r1data.run.pipeline import load_spec, plan_run, execute
    spec = load_spec("pipelines/web.yaml", Overrides(tasks=4))
    result = execute(plan_run(spec))
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from r1data.config.spec import Overrides, PipelineSpec, apply_overrides, build_spec, validate_knobs
from r1data.config.yamlsrc import load_yaml_file
from r1data.errors import ConfigError, FatalError
from r1data.io.schema import describe_schema, rejected_schema, shard_schema
from r1data.paths import resolve_path, sha256_file
from r1data.run.inputs import resolve_inputs
from r1data.stages.base import InputFile, ReaderStage

MAX_DEFAULT_TASKS = 1024
STATE_FILE = "run.json"
OUTPUT_FOLDERS = ("shards", "rejected", "stats", "logs", "completions", "work", "failures", "slurm", "slurm_logs", "ray")


def load_spec(recipe: str | os.PathLike, overrides: Overrides | None = None) -> PipelineSpec:
    """Read, override and validate a recipe. Raises ``ConfigError`` listing every problem."""
    ov = overrides or Overrides()
    knobs = validate_knobs(ov.filter_threshold, ov.dedup_window)
    src = apply_overrides(load_yaml_file(recipe), ov)
    return build_spec(src, knobs)


@dataclass
class Phase:
    """A set of independent tasks over one datatrove pipeline; ``name`` "" is the final phase."""

    name: str
    tasks: int
    pipeline: list

    @property
    def title(self) -> str:
        return self.name or "final"


@dataclass
class Plan:
    """A validated recipe bound to concrete input files, tasks and workers."""

    spec: PipelineSpec
    inputs: list[InputFile]
    tasks: int
    workers: int
    out_dir: Path

    def plan_hash(self) -> str:
        """What must not change for a run to resume: the config and the exact input list."""
        import hashlib

        blob = json.dumps({"config": self.spec.config_hash(), "inputs": [[f.uri, f.size] for f in self.inputs]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def phases(self) -> list["Phase"]:
        """The pipeline cut into phases: one, unless a barrier stage (dedup) runs in its multi form.

        Every phase is a list of datatrove steps run as ``tasks`` independent tasks; a phase starts
        only when the one before it has completed all its tasks."""
        from r1data.run.sink import TaskSink
        from r1data.stages.barrier import (
            BarrierApply, BarrierContext, BarrierMap, BarrierStage, ReduceRunner, WorkReader, WorkSink, make_windows,
        )

        from r1data.stages.code import scrubbers

        steps = [s.build() for s in self.spec.stages]
        scrub = scrubbers(steps)  # the recipe's redactors: every sink passes every row it writes through them
        reader = steps[0]
        assert isinstance(reader, ReaderStage)
        reader.files = list(self.inputs)
        cols = self.spec.stage_columns()
        n = len(self.inputs)
        phases: list[Phase] = []
        segment: list = [reader]
        seg_reader: ReaderStage = reader

        def close_segment(extra_single: list[BarrierStage]) -> int:
            # a single-form barrier needs each task to read one whole window, in input order
            if not extra_single:
                return self.tasks
            windows = {b.config.window for b in extra_single}
            if len(windows) > 1:
                raise ConfigError(
                    f"barrier stages {', '.join(b.label for b in extra_single)} run in single mode with different windows "
                    f"{sorted(windows)}; give them the same window or use mode: multi"
                )
            groups = [[seg_reader.files[i] for i in idx] for idx in make_windows(n, windows.pop())]
            seg_reader.groups = groups
            return max(1, len(groups))

        singles: list[BarrierStage] = []
        for st in steps[1:]:
            if isinstance(st, BarrierStage) and st.config.mode == "multi":
                k = len(phases) + 1
                ctx = BarrierContext(work_dir=str(self.out_dir / "work" / st.label), windows=make_windows(n, st.config.window))
                map_name = f"{k:02d}-{st.label}-map"
                tasks = close_segment(singles)
                phases.append(Phase(map_name, tasks, segment + [BarrierMap(st), WorkSink(ctx, cols, st.work_schema(), str(self.out_dir), map_name, seg_reader, scrub)]))
                for step in st.reduce_steps():
                    k = len(phases) + 1
                    phases.append(Phase(f"{k:02d}-{st.label}-{step.name}", step.tasks(ctx), [ReduceRunner(step, ctx, st.label)]))
                seg_reader = WorkReader(ctx, list(self.inputs))
                segment = [seg_reader, BarrierApply(st, ctx)]
                singles = []
            else:
                if isinstance(st, BarrierStage):
                    singles.append(st)
                segment.append(st)
        tasks = close_segment(singles)
        sink = TaskSink(
            self.out_dir, cols, row_group_rows=self.spec.output.row_group_rows, compression=self.spec.output.compression, reader=seg_reader,
            scrub=scrub,
        )
        phases.append(Phase("", tasks, segment + [sink]))
        return phases

    def models(self) -> list[dict[str, Any]]:
        """Every model file the stages load, with its sha256 (for the manifest)."""
        out = []
        for s in self.spec.stages:
            for key, value in s.config.model_dump().items():
                if isinstance(value, str) and (key == "model" or key.endswith("_model")):
                    p = resolve_path(value)
                    out.append({"stage": s.label, "param": key, "path": str(p), "sha256": sha256_file(p) if p.is_file() else None})
        return out

    def describe(self) -> dict[str, Any]:
        cols = self.spec.stage_columns()
        return {
            "pipeline": self.spec.name,
            "recipe": self.spec.source.file,
            "config_hash": self.spec.config_hash(),
            "inputs": [{"index": f.index, "uri": f.uri, "size": f.size} for f in self.inputs],
            "tasks": self.tasks,
            "workers": self.workers,
            "executor": self.spec.executor.type,
            "output": str(self.out_dir),
            "phases": [{"name": p.title, "tasks": p.tasks, "steps": [repr(x) for x in p.pipeline]} for p in self.phases()],
            "knobs": {**self.spec.knobs, "applied_to": self.spec.knob_targets},
            "stages": self.spec.resolved()["stages"],
            "shard_schema": [list(x) for x in describe_schema(shard_schema(cols))],
            "rejected_extra_columns": [n for n in rejected_schema(cols).names if n not in shard_schema(cols).names],
        }


def plan_run(spec: PipelineSpec) -> Plan:
    """Resolve inputs and decide tasks/workers. Raises ``InputError`` for a missing input."""
    reader = spec.stages[0].cls
    inputs = resolve_inputs(spec.inputs, reader.file_patterns, exclude_patterns=reader.exclude_patterns, roots=reader.inputs_are_roots)
    tasks = spec.executor.tasks or max(1, min(len(inputs), MAX_DEFAULT_TASKS))
    workers = spec.executor.workers or max(1, min(os.cpu_count() or 1, tasks))
    return Plan(spec=spec, inputs=inputs, tasks=tasks, workers=min(workers, tasks), out_dir=Path(spec.output_path))


@dataclass
class RunResult:
    out_dir: Path
    counts: dict[str, Any]
    wall_seconds: float
    manifest: Path
    failed_tasks: dict[int, str] = field(default_factory=dict)
    skipped_tasks: int = 0


def prepare_output(plan: Plan, overwrite: bool = False) -> int:
    """Create the output folder or check that it holds a resumable run of this plan.

    Returns how many tasks are already complete. A folder holding another config's run is an
    error unless ``overwrite`` is set."""
    out = plan.out_dir
    state_path = out / STATE_FILE
    if overwrite and out.exists():
        for sub in OUTPUT_FOLDERS:
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in (STATE_FILE, "manifest.json", "executor.json", "stats.json"):
            (out / f).unlink(missing_ok=True)
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("plan_hash") != plan.plan_hash():
            raise ConfigError(
                f"{out} holds a run of a different config or input list (plan {state.get('plan_hash', '?')[:12]}, "
                f"this one {plan.plan_hash()[:12]}); pass --overwrite to replace it or choose another --output"
            )
    elif out.exists() and any((out / sub).exists() for sub in ("shards", "completions")):
        raise ConfigError(f"{out} holds shards from an unknown run; pass --overwrite to replace them or choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    # files a killed task left under a temporary name (its task will be rerun). Not with Slurm: jobs
    # of an earlier submission may still be running, on other nodes, and writing theirs
    for sub in ("shards", "rejected", "work", "completions", "stats") if plan.spec.executor.type != "slurm" else ():
        folder = out / sub
        if folder.exists():
            for stale in folder.rglob(".*.tmp-*"):
                stale.unlink(missing_ok=True)
    if not state_path.exists():
        state_path.write_text(json.dumps({"plan_hash": plan.plan_hash(), "config_hash": plan.spec.config_hash(), "tasks": plan.tasks}, indent=1))
    done = out / "completions"
    return len([p for p in done.rglob("[0-9]*") if p.is_file()]) if done.exists() else 0


def execute(
    plan: Plan,
    *,
    overwrite: bool = False,
    on_progress: Callable[[int, int, str], None] | None = None,
    wait: bool = True,
    on_event: Callable[[str], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> RunResult:
    """Run (or resume) ``plan`` and write ``manifest.json``. Raises ``FatalError`` if a task fails.

    ``executor.type`` picks where: here (local), Slurm array jobs (``r1data.run.slurm``; with
    ``wait=False`` it returns a ``Submitted`` right after ``sbatch``) or a Ray cluster
    (``r1data.run.ray``). ``on_event`` receives one-line notes from the cluster executors; ``on_line``
    receives a progress line (documents read, docs/s, ETA) every ~10 s of a local run."""
    from r1data.run.executor import console_logging
    from r1data.run.lock import OutputLock

    console_logging()
    # one writer per output directory, taken before anything in it is read or deleted; with Slurm
    # and wait=False it covers the submission only (the jobs' own markers guard a later rerun)
    with OutputLock(plan.out_dir) as lock:
        if lock.stale is not None:
            from datatrove.utils.logging import logger

            logger.warning(f"{plan.out_dir}: took over the lock left by a run that is gone ({lock.stale.describe()})")
        return _execute_locked(plan, overwrite=overwrite, on_progress=on_progress, wait=wait, on_event=on_event, on_line=on_line)


def _execute_locked(plan: Plan, *, overwrite: bool, on_progress, wait: bool, on_event, on_line=None) -> RunResult:
    if plan.spec.executor.type == "slurm":
        from r1data.run.slurm import run_on_slurm

        return run_on_slurm(plan, overwrite=overwrite, on_progress=on_progress, on_event=on_event, wait=wait)
    if plan.spec.executor.type == "ray":
        from r1data.run.ray import run_on_ray

        return run_on_ray(plan, overwrite=overwrite, on_progress=on_progress, on_event=on_event)
    from r1data.run.executor import LocalExecutor
    from r1data.run.manifest import now_iso

    started = now_iso()
    t0 = time.perf_counter()
    skipped = prepare_output(plan, overwrite)
    for phase in plan.phases():
        ex = LocalExecutor(
            phase.pipeline,
            tasks=phase.tasks,
            workers=plan.workers,
            logging_dir=str(plan.out_dir),
            phase=phase.name,
            on_progress=(lambda d, t, _p=phase.title: on_progress(d, t, _p)) if on_progress else None,
            memory_limit_gb=plan.spec.executor.memory_limit_gb,
            on_line=on_line,
        )
        failed = ex.run()
        if failed:
            logs = f"{plan.out_dir}/logs/{phase.name + '/' if phase.name else ''}"
            lines = [f"task {r}: {ex.failures[r]} (log: {logs}task_{r:05d}.log)" for r in failed]
            raise FatalError(
                f"{len(failed)} of {phase.tasks} tasks of phase {phase.title} failed; rerun the same command to resume "
                "the unfinished ones:\n  " + "\n  ".join(lines)
            )
    return finish_run(plan, started=started, wall_seconds=time.perf_counter() - t0, skipped=skipped)


def finish_run(plan: Plan, *, started: str, wall_seconds: float, skipped: int = 0, manifest_extra: dict | None = None) -> RunResult:
    """After every phase completed: sum the task stats, check the accounting, write ``manifest.json``."""
    from r1data.run.manifest import aggregate, load_task_stats, manifest_content, write_manifest

    counts = aggregate(load_task_stats(plan.out_dir), [s.label for s in plan.spec.stages])
    if counts["read"] + counts.get("generated", 0) != counts["kept"] + counts["rejected"]:
        raise FatalError(
            f"accounting error: read {counts['read']} + generated {counts.get('generated', 0)} != kept {counts['kept']} + "
            f"rejected {counts['rejected']}; this is a bug in r1data, please report it with {plan.out_dir}/stats"
        )
    content = manifest_content(plan=plan, counts=counts, wall_seconds=wall_seconds, started=started)
    content.update(manifest_extra or {})
    manifest = write_manifest(plan.out_dir, content)
    return RunResult(out_dir=plan.out_dir, counts=counts, wall_seconds=wall_seconds, manifest=manifest, skipped_tasks=skipped)
