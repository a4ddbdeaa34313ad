"""Run a plan on a Ray cluster with datatrove's RayPipelineExecutor, one phase after the other.

    ray start --head                                    # or use an existing cluster
    r1data run pipelines/web.yaml --executor ray        # --address HOST:PORT, or $RAY_ADDRESS

Each phase's tasks become Ray actors (one CPU each by default: ``--cpus-per-task``,
``--mem-per-cpu``); the driver waits for a phase before it starts the next, then writes the
manifest like a local run. The output directory must be on a filesystem every Ray node sees.
Completion markers make a rerun run only the unfinished tasks; a failed task leaves
``failures/[phase/]NNNNN.json`` and its log in ``logs/`` (``r1data status`` lists both).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

from datatrove.executor.ray import RayPipelineExecutor, RayTaskManager, TimeoutManager

from r1data.errors import ConfigError, FatalError
from r1data.run.executor import PhaseMixin
from r1data.run.executors import register
from r1data.run.output import RunResult, finish_run, prepare_output
from r1data.run.status import FailureMarkers, failure_markers, phase_dir

MAX_RETRIES = 2  # resubmissions of a task whose Ray worker died (not of a task that raised)


class RayExecutor(FailureMarkers, PhaseMixin, RayPipelineExecutor):
    """datatrove's RayPipelineExecutor for one phase of a plan.

    The task side is datatrove's (``RankWorker`` actors, placement groups, ``RayTaskManager``) with
    r1data's per-phase markers and stats (``PhaseMixin``). ``run`` is datatrove's scheduling loop
    without its final stats merge, which expects datatrove's stats files at the top level (phases
    keep theirs under ``stats/<phase>/``; the manifest sums them), and it reports failed ranks."""

    def __init__(self, pipeline, *, tasks: int, out_dir: Path, phase: str, options):
        from datatrove.utils.logging import logger

        logger.disable("datatrove.executor.ray")  # its shared-filesystem warning is said once, by run_on_ray
        try:
            super().__init__(
                pipeline,
                tasks=tasks,
                workers=options.workers or -1,
                logging_dir=str(out_dir),
                skip_completed=True,
                cpus_per_task=options.cpus_per_task,
                mem_per_cpu_gb=options.mem_per_cpu_gb,
            )
        finally:
            logger.enable("datatrove.executor.ray")
        self.phase = phase

    def run(self, on_progress=None) -> list[int]:
        """Run the incomplete ranks on the cluster; returns those that did not complete."""
        import ray

        todo = self.get_incomplete_ranks(range(self.world_size))
        total = self.world_size
        if on_progress:
            on_progress(total - len(todo), total)
        if not todo:
            return []
        executor_ref = ray.put(self)
        remote_options = {
            "num_cpus": self.cpus_per_task,
            "num_gpus": self.gpus_per_task,
            "memory": int(self.mem_per_cpu_gb * self.cpus_per_task * 2**30),
        }
        queue = [[r] for r in todo]
        retries: dict[int, int] = {}
        unfinished: list = []
        with RayTaskManager(self.nodes_per_task, TimeoutManager(None)) as manager:
            while queue or unfinished:
                while queue and len(unfinished) < self.workers:
                    unfinished.append(manager.submit_task(executor_ref, queue.pop(0), remote_options))
                finished, unfinished = manager.wait(unfinished, num_returns=1, timeout=5)
                for task in finished:
                    _, lost = manager.task_done(task)
                    for r in lost or ():  # the worker died (not an error in the task): try again
                        retries[r] = retries.get(r, 0) + 1
                        if retries[r] <= MAX_RETRIES:
                            queue.append([r])
                if on_progress and finished:
                    on_progress(total - len(self.get_incomplete_ranks(range(total))), total)
        return self.get_incomplete_ranks(todo)


@register("ray")
def run_on_ray(plan, *, overwrite: bool = False, on_progress=None, on_event=None, on_line=None, wait: bool = True) -> RunResult:
    """Run (or resume) ``plan`` on the Ray cluster at ``executor.address`` / ``$RAY_ADDRESS`` (always waits)."""
    from r1data.run.manifest import now_iso

    note = on_event or (lambda msg: None)
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"--executor ray: Ray is not installed ({e}); install it with: pip install 'r1data[ray]'") from None
    plan = dataclasses.replace(plan, out_dir=plan.out_dir.resolve())  # Ray workers do not share our cwd
    address = plan.spec.executor.address or os.environ.get("RAY_ADDRESS")
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, runtime_env={"env_vars": env} if env else None)
    except Exception as e:  # ConnectionError, a wrong address, a version mismatch with the cluster
        raise ConfigError(f"--executor ray: cannot connect to Ray at {address or 'the local cluster'}: {' '.join(str(e).split())}") from None
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = ray.cluster_resources().get("CPU", 0)
        note(f"connected to Ray ({len(nodes)} node(s), {cpus:g} CPUs); {plan.out_dir} must be visible on every node")
        started, t0 = now_iso(), time.perf_counter()
        skipped = prepare_output(plan, overwrite)
        phases = plan.phases()
        state = {"executor": "ray", "pipeline": plan.spec.name, "started": started, "phases": [{"name": p.name, "tasks": p.tasks} for p in phases], "jobs": []}
        (plan.out_dir / "ray").mkdir(exist_ok=True)
        (plan.out_dir / "ray" / "state.json").write_text(json.dumps(state, indent=1))
        for ph in phases:
            ex = RayExecutor(ph.pipeline, tasks=ph.tasks, out_dir=plan.out_dir, phase=ph.name, options=plan.spec.executor)
            failed = ex.run(on_progress=(lambda d, t, _p=ph.title: on_progress(d, t, _p)) if on_progress else None)
            if failed:
                marks = failure_markers(plan.out_dir, ph.name)
                logs = phase_dir(plan.out_dir, "logs", ph.name)
                lines = [
                    f"task {r}: {marks.get(r, {}).get('error', 'did not complete (its Ray worker died?)')} (log: {logs / f'task_{r:05d}.log'})"
                    for r in failed
                ]
                raise FatalError(
                    f"{len(failed)} of {ph.tasks} tasks of phase {ph.title} failed on Ray; rerun the same command to resume "
                    "the unfinished ones:\n  " + "\n  ".join(lines)
                )
            note(f"{ph.title}: all {ph.tasks} tasks completed")
        extra = {"executor": {"type": "ray", "tasks": plan.tasks, "address": address, "nodes": len(nodes), "cpus": cpus}}
        return finish_run(plan, started=started, wall_seconds=time.perf_counter() - t0, skipped=skipped, manifest_extra=extra)
    finally:
        ray.shutdown()  # disconnects this driver; the cluster stays up
