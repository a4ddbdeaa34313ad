"""The ``local`` executor: every phase as a pool of worker processes on this machine."""

from __future__ import annotations

import time

from r1data.errors import FatalError
from r1data.run.executor import LocalExecutor
from r1data.run.executors import register
from r1data.run.manifest import now_iso
from r1data.run.output import RunResult, finish_run, prepare_output


@register("local")
def run_local(plan, *, overwrite: bool = False, on_progress=None, on_event=None, on_line=None, wait: bool = True) -> RunResult:
    """Run (or resume) ``plan`` here; ``on_line`` gets a progress line every ~10 s. ``wait`` and
    ``on_event`` do not apply (a local run always finishes before returning)."""
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
