"""A run's output directory: claiming it (or resuming it), and closing it with ``manifest.json``.

Every executor (``r1data.run.executors``) calls ``prepare_output`` before its first task and
``finish_run`` after its last (``plan`` is a ``r1data.run.pipeline.Plan``); a run ends as one
result type, ``RunResult``, finished or submitted.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from r1data.errors import ConfigError, FatalError

STATE_FILE = "run.json"
OUTPUT_FOLDERS = ("shards", "rejected", "stats", "logs", "completions", "work", "failures", "slurm", "slurm_logs", "ray")

SUBMITTED = "submitted"
FINISHED = "finished"


@dataclass
class RunResult:
    """What ``execute`` returns: a finished run (counts, manifest) or, for a cluster run that was
    not waited for, what was submitted (``jobs``: the job records, none when every task was
    already done or queued)."""

    out_dir: Path
    counts: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    manifest: Path | None = None
    failed_tasks: dict[int, str] = field(default_factory=dict)
    skipped_tasks: int = 0
    state: Literal["submitted", "finished"] = FINISHED
    jobs: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    @classmethod
    def submitted(cls, out_dir: Path, jobs: list[dict[str, Any]], phases: list[dict[str, Any]]) -> "RunResult":
        return cls(out_dir=out_dir, state=SUBMITTED, jobs=jobs, phases=phases)


def prepare_output(plan, overwrite: bool = False) -> int:
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


def finish_run(plan, *, started: str, wall_seconds: float, skipped: int = 0, manifest_extra: dict | None = None) -> RunResult:
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
