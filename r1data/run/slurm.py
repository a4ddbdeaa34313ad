"""Run a plan as Slurm array jobs: one array per phase, chained with ``--dependency=afterok``.

    r1data run pipelines/web.yaml --executor slurm --partition cpu --time 02:00:00

What the driver (``run_on_slurm``) does:

1. checks that Slurm answers and that ``sbatch --test-only`` accepts the job options (partition,
   QOS, account, time), before it touches the output directory;
2. submits every phase with unfinished tasks as an array job whose indices are the task ranks
   (a rank is only an array index): ``--array=0-63``, or ``--array=3,17`` on a rerun, because
   ranks with a completion marker are never resubmitted. Ranks at or above the cluster's
   ``MaxArraySize`` (``scontrol show config``) or ``--max-array-size`` go to more arrays with a
   rank offset. Each phase waits for the jobs of the phases before it (``afterok``);
3. waits, showing progress from completion markers and ``squeue``, and writes the manifest like a
   local run; or, with ``wait=False``, returns at once (``r1data status`` then reports and writes
   the manifest when all is done).

What lands where (``OUT`` is the output directory):

- ``OUT/slurm_logs/%A_%a.out``: Slurm's log of array task ``%a`` of job ``%A`` (stdout + stderr);
- ``OUT/logs/[phase/]task_NNNNN.log``: r1data's own log of rank NNNNN;
- ``OUT/slurm/state.json``: phases and every submitted job (id, phase, rank offset, ranks);
- ``OUT/slurm/<phase>/executor.pik`` and ``<job id>.sbatch``: what each job ran;
- ``OUT/failures/[phase/]NNNNN.json``: the error of a rank that failed (see ``r1data.run.status``).

Inside a job, ``python -m r1data.run.slurm OUT/slurm/<phase>/executor.pik --rank-offset K`` runs
rank ``SLURM_ARRAY_TASK_ID + K``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from datatrove.executor.slurm import SlurmPipelineExecutor, requeue_handler

from r1data.errors import ConfigError, FatalError
from r1data.run.executor import PhaseMixin
from r1data.run.executors import register
from r1data.run.output import RunResult, finish_run, prepare_output
from r1data.run.slurmctl import (
    DEFAULT_MAX_ARRAY_SIZE, QueueError, _one_line, _slurm, array_spec, check_slurm, cluster_max_array_size, query_queue, scancel,
)
from r1data.run.status import (
    ACTIVE_STATES, BLOCKED, COMPLETED, NEVER_REASONS, PENDING, RUNNING, FailureMarkers, RunStatus, _latest_job_of_rank,
    completed_ranks, raise_on_sigterm, snapshot,
)

STATE = "slurm/state.json"


# ---------------------------------------------------------------------------------------------
# the executor


def venv_python() -> tuple[str, str]:
    """(python to run in jobs, shell line that activates its environment): this very venv."""
    prefix = Path(sys.prefix)
    python = prefix / "bin" / "python"
    activate = prefix / "bin" / "activate"
    return (str(python) if python.exists() else sys.executable), (f"source {activate}" if activate.exists() else "")


class SlurmExecutor(FailureMarkers, PhaseMixin, SlurmPipelineExecutor):
    """datatrove's SlurmPipelineExecutor for one phase of a plan.

    datatrove's ``launch_job`` keeps one ``executor.pik`` / ``ranks_to_run.json`` per logging
    directory, chains the arrays of a split job one after the other and maps array indices through
    a rank list; phases here share one output directory and an array index *is* the rank (plus an
    offset past MaxArraySize), so submission is ``submit`` below. The task side is datatrove's:
    ``_run_for_rank`` (via ``PhaseMixin``), the launch-script template, requeue on SIGUSR1.
    """

    def __init__(self, pipeline, *, tasks: int, out_dir: Path, phase: str, job_name: str, options, max_array_size: int):
        cpus = options.cpus_per_task
        super().__init__(
            pipeline,
            tasks=tasks,
            time=options.time,
            partition=options.partition,
            cpus_per_task=cpus,
            mem_per_cpu_gb=options.mem_per_cpu_gb,
            workers=options.workers or -1,
            job_name=job_name,
            qos=options.qos,
            sbatch_args=dict(options.sbatch_args),
            max_array_size=max_array_size,
            logging_dir=str(out_dir),
            skip_completed=True,
            slurm_logs_folder=str(out_dir / "slurm_logs"),
            # since Slurm 22.05 srun no longer inherits --cpus-per-task from the batch job
            srun_args={"cpus-per-task": cpus},
        )
        self.phase = phase
        self.account = options.account
        self.out_dir = Path(out_dir)
        self.state_dir = self.out_dir / "slurm" / (phase or "final")
        self.python, self.env_command = venv_python()
        self.rank_offset = 0

    @property
    def title(self) -> str:
        return self.phase or "final"

    # -- in the job ------------------------------------------------------------------------------
    def run(self):
        if "SLURM_ARRAY_TASK_ID" not in os.environ:
            raise RuntimeError("SlurmExecutor.run() runs inside an array task; submit with r1data.run.slurm.run_on_slurm")
        rank = int(os.environ["SLURM_ARRAY_TASK_ID"]) + self.rank_offset
        for sig in self.requeue_signals or ():
            signal.signal(signal.Signals[sig], requeue_handler)
        raise_on_sigterm()
        self._run_for_rank(rank)

    def slurm_log(self) -> str | None:
        job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"{self.slurm_logs_folder}/{job}_{task}.out" if job and task else None

    # -- the sbatch script -----------------------------------------------------------------------
    def directives(self, indices: list[int]) -> dict[str, Any]:
        log = f"{self.slurm_logs_folder}/%A_%a.out"
        throttle = f"%{self.workers}" if self.workers and self.workers > 0 else ""
        args: dict[str, Any] = {
            "job-name": self.job_name,
            "partition": self.partition,
            "qos": self.qos,
            "account": self.account,
            "time": self.time,
            "nodes": 1,
            "cpus-per-task": self.cpus_per_task,
            "mem-per-cpu": f"{max(1, round(self.mem_per_cpu_gb * 1024))}M",
            "array": array_spec(indices) + throttle,
            "output": log,
            "error": log,
            "chdir": os.getcwd(),
            "requeue": "",
            # a phase whose dependency failed is cancelled at once instead of sitting in the queue
            # as DependencyNeverSatisfied; a rerun submits it again
            "kill-on-invalid-dep": "yes",
        }
        args.update(self._sbatch_args)
        return {k: v for k, v in args.items() if v is not None}

    def script(self, indices: list[int], offset: int) -> str:
        srun = " ".join(f"--{k}={v}" for k, v in (self.srun_args or {}).items())
        run = f"srun {srun} -l -n 1 {self.python} -m r1data.run.slurm {self.state_dir / 'executor.pik'} --rank-offset {offset}"
        return self.get_launch_file_contents(self.directives(indices), run)

    def chunks(self, ranks: list[int]) -> list[tuple[int, list[int]]]:
        """Ranks -> [(offset, array indices)], every index below ``max_array_size``."""
        m = self.max_array_size
        out: dict[int, list[int]] = {}
        for r in sorted(ranks):
            out.setdefault((r // m) * m, []).append(r - (r // m) * m)
        return sorted(out.items())

    # -- submission ------------------------------------------------------------------------------
    def write_pickle(self) -> None:
        import dill
        from dill import CONTENTS_FMODE

        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "executor.pik"
        tmp = path.with_name(f".executor.pik.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            dill.dump(self, f, fmode=CONTENTS_FMODE)
        os.replace(tmp, path)  # a job starting right now reads the old or the new copy, never half of one

    def submit(self, ranks: list[int], dependency: str | None) -> list[dict[str, Any]]:
        """sbatch one array per chunk of ``ranks``; returns the job records for ``state.json``."""
        Path(self.slurm_logs_folder).mkdir(parents=True, exist_ok=True)
        records = []
        for offset, indices in self.chunks(ranks):
            text = self.script(indices, offset)
            tmp = self.state_dir / f".submit-{os.getpid()}.sbatch"
            tmp.write_text(text)
            args = ["sbatch", "--parsable"] + ([f"--dependency={dependency}"] if dependency else []) + [str(tmp)]
            res = _slurm(args)
            if res.returncode != 0:
                raise FatalError(f"sbatch refused phase {self.title}: {_one_line(res.stderr or res.stdout)} (script: {tmp})")
            job_id = res.stdout.strip().split(";")[0]
            script = self.state_dir / f"{job_id}.sbatch"
            os.replace(tmp, script)
            records.append(
                {
                    "job_id": job_id,
                    "phase": self.phase,
                    "offset": offset,
                    "ranks": [i + offset for i in indices],
                    "array": array_spec(indices),
                    "dependency": dependency,
                    "script": str(script),
                    "submitted": time.time(),
                }
            )
        return records

    def test_only(self) -> None:
        """``sbatch --test-only``: the scheduler checks partition, QOS, account and limits, runs nothing."""
        script = self.script([0], 0)
        res = _slurm(["sbatch", "--test-only"], input=script)
        if res.returncode != 0:
            msg = _one_line(res.stderr or res.stdout).removeprefix("sbatch: error: ")
            raise ConfigError(f"--executor slurm: sbatch rejects the job options: {msg}")


# ---------------------------------------------------------------------------------------------
# the driver


def max_array_size(options) -> int:
    """The smaller of ``--max-array-size`` and the cluster's MaxArraySize (indices run 0..size-1)."""
    cluster = cluster_max_array_size() or DEFAULT_MAX_ARRAY_SIZE
    return min(options.max_array_size, cluster) if options.max_array_size else cluster


def make_executors(plan, limit: int | None = None) -> list[SlurmExecutor]:
    opts = plan.spec.executor
    limit = limit or max_array_size(opts)
    return [
        SlurmExecutor(
            ph.pipeline,
            tasks=ph.tasks,
            out_dir=plan.out_dir,
            phase=ph.name,
            job_name=f"r1data-{plan.spec.name}-{ph.title}",
            options=opts,
            max_array_size=limit,
        )
        for ph in plan.phases()
    ]


def dry_run_scripts(plan) -> list[tuple[str, str]]:
    """[(header, sbatch script)] for every array a run would submit now (reads markers, submits nothing)."""
    plan = dataclasses.replace(plan, out_dir=plan.out_dir.resolve())
    limit = max_array_size(plan.spec.executor)
    out = []
    earlier: list[str] = []
    for ex in make_executors(plan, limit):
        done = completed_ranks(plan.out_dir, ex.phase)
        todo = [r for r in range(ex.tasks) if r not in done]
        if not todo:
            out.append((f"# phase {ex.title}: all {ex.tasks} tasks completed; nothing to submit", ""))
            continue
        for offset, indices in ex.chunks(todo):
            dep = f" --dependency=afterok:<jobs of {', '.join(earlier)}>" if earlier else ""
            head = f"# phase {ex.title}: task rank(s) {array_spec([i + offset for i in indices])} of {ex.tasks}\n# sbatch{dep} {ex.state_dir}/<job id>.sbatch"
            out.append((head, ex.script(indices, offset)))
        earlier.append(ex.title)
    return out


@contextlib.contextmanager
def _locked(out_dir: Path):
    """One submitter per output directory at a time (two would submit the same ranks twice)."""
    (out_dir / "slurm").mkdir(parents=True, exist_ok=True)
    with open(out_dir / "slurm" / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FatalError(f"another r1data is submitting to {out_dir} right now") from None
        yield


def load_state(out_dir: Path) -> dict[str, Any] | None:
    p = out_dir / STATE
    return json.loads(p.read_text()) if p.is_file() else None


def save_state(out_dir: Path, state: dict[str, Any]) -> None:
    p = out_dir / STATE
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".state.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, p)


def _live_and_stale(ex: SlurmExecutor, jobs, queue, done: set[int], resubmitted: bool) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """Split the phase's queued tasks into those that can still run (rank -> job record) and the
    pending ones that never will (array elements to cancel): blocked by a failed dependency, or
    waiting for earlier work that is being resubmitted now."""
    latest = _latest_job_of_rank(jobs, ex.phase)
    live: dict[int, dict[str, Any]] = {}
    cancel: list[str] = []
    for r in range(ex.tasks):
        j = latest.get(r)
        if r in done or j is None:
            continue
        q = queue.get((j["job_id"], r - j["offset"]))
        if q is None or q[0] not in ACTIVE_STATES:
            continue
        if q[0] == "PENDING" and (q[1] in NEVER_REASONS or resubmitted):
            cancel.append(f"{j['job_id']}_{r - j['offset']}")
        else:
            live[r] = j
    return live, cancel


def _wait_targets(ex: SlurmExecutor, jobs, live: dict[int, dict[str, Any]], done: set[int]) -> list[str]:
    """What the next phase waits for among the live jobs: a whole array when every element of it is
    live or done (afterok on the array is satisfiable), else its live elements one by one."""
    latest = _latest_job_of_rank(jobs, ex.phase)
    targets = []
    for job_id in sorted({j["job_id"] for j in live.values()}, key=int):
        j = next(x for x in jobs if x["job_id"] == job_id)
        if all(latest.get(r) is j and (r in live or r in done) for r in j["ranks"]):
            targets.append(job_id)
        else:
            targets += [f"{job_id}_{r - j['offset']}" for r, x in sorted(live.items()) if x is j]
    return targets


def submit_unfinished(executors: list[SlurmExecutor], state: dict[str, Any], note: Callable[[str], None]) -> list[dict[str, Any]]:
    """Submit every rank that is neither completed nor queued; returns the new job records.

    Tasks still queued from an earlier submission are kept (a rerun while jobs run submits
    nothing twice), except pending ones that can no longer start: blocked by a failed dependency,
    or waiting for jobs of an earlier phase whose failed ranks are being resubmitted now."""
    out_dir = executors[0].out_dir
    jobs = state["jobs"]
    try:
        queue = query_queue([j["job_id"] for j in jobs])
    except QueueError as e:
        raise FatalError(f"cannot ask Slurm which tasks are still queued: {e}") from None
    upstream: list[str] = []  # what the next phase's jobs wait for (afterok)
    resubmitted = False
    new: list[dict[str, Any]] = []
    for ex in executors:
        ex.write_pickle()
        done = completed_ranks(out_dir, ex.phase)
        live, cancel = _live_and_stale(ex, jobs, queue, done, resubmitted)
        if cancel:
            note(f"{ex.title}: cancelling {len(cancel)} pending task(s) that wait for failed or resubmitted work")
            scancel(cancel)
        targets = _wait_targets(ex, jobs, live, done)
        todo = [r for r in range(ex.tasks) if r not in done and r not in live]
        if todo:
            records = ex.submit(todo, "afterok:" + ":".join(upstream) if upstream else None)
            jobs.extend(records)
            new.extend(records)
            save_state(out_dir, state)
            resubmitted = True
            targets += [rec["job_id"] for rec in records]
            ids = ", ".join(f"{rec['job_id']} (array {rec['array']})" for rec in records)
            note(f"{ex.title}: submitted {len(todo)} of {ex.tasks} tasks as job {ids}")
        elif live:
            note(f"{ex.title}: {len(live)} task(s) still queued from an earlier submission")
        upstream += targets
    return new


@register("slurm")
def run_on_slurm(plan, *, overwrite: bool = False, on_progress=None, on_event=None, on_line=None, wait: bool = True, poll: float = 1.0) -> RunResult:
    """Submit (or resume) ``plan`` on Slurm; wait and write the manifest, or return a "submitted" result."""
    from r1data.run.manifest import now_iso

    note = on_event or (lambda msg: None)
    check_slurm()
    plan = dataclasses.replace(plan, out_dir=plan.out_dir.resolve())  # jobs do not share our cwd
    out_dir = plan.out_dir
    executors = make_executors(plan)
    executors[0].test_only()
    old = load_state(out_dir)
    if overwrite and old:  # jobs of the replaced run must not write into the new one
        scancel([j["job_id"] for j in old["jobs"]])
    skipped = prepare_output(plan, overwrite)
    with _locked(out_dir):
        state = load_state(out_dir)
        if state is None:
            state = {
                "executor": "slurm",
                "pipeline": plan.spec.name,
                "started": now_iso(),
                "started_ts": time.time(),
                "command": sys.argv,
                "max_array_size": executors[0].max_array_size,
                "phases": [{"name": ex.phase, "tasks": ex.tasks} for ex in executors],
                "jobs": [],
            }
        save_plan(out_dir, plan)
        new = submit_unfinished(executors, state, note)
        state.setdefault("skipped", skipped)
        save_state(out_dir, state)
    if not wait:
        if not new and snapshot(out_dir, state).complete:  # a rerun after the jobs finished
            return finalize(plan, state)
        return RunResult.submitted(out_dir, jobs=new, phases=state["phases"])
    wait_for(out_dir, state, on_progress=on_progress, note=note, poll=poll)
    return finalize(plan, state)


def wait_for(out_dir: Path, state: dict[str, Any], *, on_progress=None, note=None, poll: float = 1.0, max_poll: float = 5.0) -> RunStatus:
    """Poll markers and squeue until every task completed; ``FatalError`` once a phase has failed tasks
    and nothing of it runs any more (the waiting later phases are then cancelled)."""
    note = note or (lambda msg: None)
    seen_gone: dict[tuple[str, int], int] = {}
    reported: set[str] = set()
    interval, last = poll, None
    try:
        while True:
            st = snapshot(out_dir, state)
            if st.queue_error and "queue" not in reported:
                reported.add("queue")
                note(f"cannot ask squeue ({st.queue_error}); waiting on completion markers")
            current = next((p for p in st.phases if not p.complete), None)
            for p in st.phases:
                if p.complete and p.name not in reported:
                    reported.add(p.name)
                    note(f"{p.title}: all {p.tasks} tasks completed")
            if current is None:
                return st
            if on_progress:
                on_progress(current.count(COMPLETED), current.tasks, current.title)
            failed = []
            for p, t in st.failed():
                key = (p.name, t.rank)
                seen_gone[key] = seen_gone.get(key, 0) + 1
                # a marker is proof; a task merely missing from the queue must be missing twice
                # (a completion marker on a network filesystem can show up late)
                if seen_gone[key] >= 2 or t.marker:
                    failed.append((p, t))
            for key in [k for k in seen_gone if k not in {(p.name, t.rank) for p, t in st.failed()}]:
                del seen_gone[key]
            if failed:
                first = min(st.phases.index(p) for p, _ in failed)
                if not any(p.count(RUNNING) + p.count(PENDING) for p in st.phases[: first + 1]):
                    _give_up(st, failed, first)
            progress = tuple(p.counts()[COMPLETED] for p in st.phases)
            interval = poll if progress != last else min(interval * 1.5, max_poll)
            last = progress
            time.sleep(interval)
    except KeyboardInterrupt:
        raise FatalError(
            f"stopped waiting; the jobs keep running on the cluster. `r1data status {out_dir}` shows them and writes the "
            "manifest once all are done; rerunning the same command waits again"
        ) from None


def _give_up(st: RunStatus, failed, first: int) -> None:
    waiting = [f"{t.job}" for p in st.phases[first + 1 :] for t in p.ranks if t.state in (PENDING, BLOCKED) and t.job]
    if waiting:
        scancel(waiting)
    phase = st.phases[first]
    lines = [f"task {t.rank} ({t.job}): {t.detail} (log: {t.log})" for p, t in failed if p is phase]
    more = f"; cancelled {len(waiting)} waiting task(s) of later phases" if waiting else ""
    raise FatalError(
        f"{len(lines)} of {phase.tasks} tasks of phase {phase.title} failed on Slurm{more}. Rerun the same command to "
        "resubmit only the unfinished tasks:\n  " + "\n  ".join(lines)
    )


def save_plan(out_dir: Path, plan) -> None:
    """The plan, for ``r1data status`` to write the manifest after a ``--no-wait`` run."""
    import dill

    p = out_dir / "slurm" / "plan.pik"
    tmp = p.with_name(f".plan.pik.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        dill.dump(plan, f)
    os.replace(tmp, p)


def load_plan(out_dir: Path):
    import dill

    with open(Path(out_dir) / "slurm" / "plan.pik", "rb") as f:
        return dill.load(f)


def finalize(plan, state: dict[str, Any]) -> RunResult:
    """All phases completed: write the manifest (with the Slurm jobs that made it) like a local run."""
    out_dir = plan.out_dir
    marks = [p.stat().st_mtime for p in (out_dir / "completions").rglob("*") if p.is_file()]
    wall = (max(marks) if marks else time.time()) - state.get("started_ts", time.time())
    extra = {
        "executor": {
            "type": "slurm",
            "tasks": plan.tasks,
            "max_array_size": state.get("max_array_size"),
            "options": plan.spec.executor.model_dump(mode="json"),
            "jobs": [{k: j[k] for k in ("job_id", "phase", "array", "offset", "dependency")} for j in state["jobs"]],
            "slurm_logs": str(out_dir / "slurm_logs" / "%A_%a.out"),
        },
        "command": state.get("command"),
    }
    return finish_run(plan, started=state["started"], wall_seconds=max(0.0, wall), skipped=state.get("skipped", 0), manifest_extra=extra)


def main(argv: list[str] | None = None) -> None:
    """Entry point of an array task: load the phase's executor and run this task's rank."""
    import dill

    ap = argparse.ArgumentParser(prog="python -m r1data.run.slurm", description=main.__doc__)
    ap.add_argument("executor", help="OUT/slurm/<phase>/executor.pik")
    ap.add_argument("--rank-offset", type=int, default=0, help="added to SLURM_ARRAY_TASK_ID")
    args = ap.parse_args(argv)
    with open(args.executor, "rb") as f:
        executor = dill.load(f)
    executor.rank_offset = args.rank_offset
    executor.run()
    # The task's files are closed and its completion marker written. Skip the interpreter's
    # teardown of torch/spaCy modules (seconds per task on a busy node) so the array task, and
    # the phases waiting for it with afterok, move on at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
