"""The library entry point behind ``r1data run``: load a recipe, plan it, run it, write the manifest.

    from r1data.run.pipeline import load_spec, plan_run, execute
    spec = load_spec("pipelines/web.yaml", Overrides(tasks=4))
    result = execute(plan_run(spec))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from r1data.config.knobs import validate_knobs
from r1data.config.spec import Overrides, PipelineSpec, apply_overrides, build_spec
from r1data.yamlsrc import load_yaml_file
from r1data.errors import ConfigError
from r1data.io.schema import describe_schema, rejected_schema, shard_schema
from r1data.paths import resolve_path, sha256_file
from r1data.run.inputs import resolve_inputs
from r1data.run.output import RunResult
from r1data.stages.base import InputFile, ReaderStage


MAX_DEFAULT_TASKS = 1024


def load_spec(recipe: str | os.PathLike, overrides: Overrides | None = None) -> PipelineSpec:
    """Read, override and validate a recipe. Raises ``ConfigError`` listing every problem."""
    ov = overrides or Overrides()
    knobs = validate_knobs(ov.knobs)
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
        """The pipeline cut into phases: one, unless a stage cuts it (``Stage.cut``: a dedup stage in
        its multi form adds map, reduce and apply phases).

        Every phase is a list of datatrove steps run as ``tasks`` independent tasks; a phase starts
        only when the one before it has completed all its tasks."""
        from r1data.run.sink import TaskSink
        from r1data.stages.code import scrubbers

        steps = [s.build() for s in self.spec.stages]
        scrub = scrubbers(steps)  # the recipe's redactors: every sink passes every row it writes through them
        reader = steps[0]
        assert isinstance(reader, ReaderStage)
        reader.files = list(self.inputs)
        cols = self.spec.stage_columns()
        phases: list[Phase] = []
        segment: list = [reader]  # the running phase: a reader, then stages
        for st in steps[1:]:
            name = f"{len(phases) + 1:02d}-{st.label}-map"
            cut = st.cut(phase=name, out_dir=str(self.out_dir), inputs=self.inputs, stage_columns=cols, reader=segment[0], scrub=scrub)
            if cut is None:
                segment.append(st)
                continue
            phases.append(Phase(name, self._tasks_of(segment), segment + cut.map))
            for step_name, tasks, pipeline in cut.reduce:
                phases.append(Phase(f"{len(phases) + 1:02d}-{st.label}-{step_name}", tasks, pipeline))
            segment = list(cut.resume)
        sink = TaskSink(
            self.out_dir, cols, row_group_rows=self.spec.output.row_group_rows, compression=self.spec.output.compression, reader=segment[0],
            scrub=scrub,
        )
        phases.append(Phase("", self._tasks_of(segment), segment + [sink]))
        return phases

    def _tasks_of(self, segment: list) -> int:
        """``self.tasks``, unless a stage of the phase needs each task to read a whole window of inputs."""
        windows = {st.label: w for st in segment[1:] if (w := st.input_window()) is not None}
        if not windows:
            return self.tasks
        if len(set(windows.values())) > 1:
            raise ConfigError(
                f"barrier stages {', '.join(windows)} run in single mode with different windows "
                f"{sorted(set(windows.values()))}; give them the same window or use mode: multi"
            )
        return segment[0].read_in_windows(next(iter(windows.values())))

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

    ``executor.type`` names the executor (``r1data.run.executors``): here (local), Slurm array
    jobs (with ``wait=False`` the result's ``state`` is "submitted", right after ``sbatch``) or a
    Ray cluster. ``on_event`` receives one-line notes from the cluster executors; ``on_line``
    receives a progress line (documents read, docs/s, ETA) every ~10 s of a local run."""
    from r1data.run import executors
    from r1data.run.executor import console_logging
    from r1data.run.lock import OutputLock

    run = executors.get(plan.spec.executor.type)
    console_logging()
    # one writer per output directory, taken before anything in it is read or deleted; with Slurm
    # and wait=False it covers the submission only (the jobs' own markers guard a later rerun)
    with OutputLock(plan.out_dir) as lock:
        if lock.stale is not None:
            from datatrove.utils.logging import logger

            logger.warning(f"{plan.out_dir}: took over the lock left by a run that is gone ({lock.stale.describe()})")
        return run(plan, overwrite=overwrite, on_progress=on_progress, wait=wait, on_event=on_event, on_line=on_line)


