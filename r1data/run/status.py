"""What the tasks of a run are doing: completion markers, failure markers and (on Slurm) the queue.

Every task of a phase leaves one of two markers in the output directory:

- ``completions/[<phase>/]NNNNN``: the task finished (written by ``PhaseMixin``; a rerun skips it);
- ``failures/[<phase>/]NNNNN.json``: the task raised (or got SIGTERM): error, traceback tail, host,
  Slurm job and log paths. Written by ``FailureMarkers`` on the cluster executors, removed when a
  later attempt of the rank completes.

A task that left neither and is no longer in the queue died without a word (SIGKILL, node failure,
``scancel`` before it started); ``snapshot`` reports it as failed with what the scheduler knows.

``snapshot(out_dir)`` combines markers, the run's state file (``slurm/state.json`` or
``ray/state.json``: phases and submitted jobs) and ``squeue`` into one ``RunStatus``; the Slurm
driver's wait loop and ``r1data status`` both use it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAILURES = "failures"
STATE_DIRS = ("slurm", "ray")  # where a cluster run keeps state.json (by executor type)

# task states, in the order status tables show them
COMPLETED, RUNNING, PENDING, BLOCKED, FAILED, UNSUBMITTED = "completed", "running", "pending", "blocked", "failed", "not_submitted"
STATES = (COMPLETED, RUNNING, PENDING, BLOCKED, FAILED, UNSUBMITTED)


def phase_dir(out_dir: Path, folder: str, phase: str) -> Path:
    """``out/<folder>/<phase>`` (the final phase, named "", uses ``out/<folder>``)."""
    return Path(out_dir) / folder / phase if phase else Path(out_dir) / folder


def completed_ranks(out_dir: Path, phase: str) -> set[int]:
    d = phase_dir(out_dir, "completions", phase)
    if not d.is_dir():
        return set()
    return {int(p.name) for p in d.iterdir() if p.is_file() and p.name.isdigit()}


def failure_markers(out_dir: Path, phase: str) -> dict[int, dict[str, Any]]:
    d = phase_dir(out_dir, FAILURES, phase)
    out = {}
    if d.is_dir():
        for p in d.glob("[0-9]*.json"):
            try:
                out[int(p.stem)] = json.loads(p.read_text())
            except (ValueError, OSError):  # a marker being written right now: next look will see it
                continue
    return out


class TaskTerminated(Exception):
    """Raised in a task when the scheduler sends SIGTERM (scancel, time limit, preemption)."""


def raise_on_sigterm() -> None:
    """Turn SIGTERM into ``TaskTerminated`` so writers clean up and a failure marker says why."""

    owner = os.getpid()

    def handler(signum, _frame):
        if os.getpid() != owner:  # a forked helper (e.g. datatrove's extractor worker) inherited this: just die
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise TaskTerminated("got SIGTERM: cancelled (scancel), over the time limit, or preempted")

    signal.signal(signal.SIGTERM, handler)


class FailureMarkers:
    """Mixed in front of ``PhaseMixin``: a task that raises leaves ``failures/[phase/]NNNNN.json``.

    ``slurm_log()`` (overridden by the Slurm executor) names the scheduler's log of this task."""

    def slurm_log(self) -> str | None:
        return None

    def _failure_path(self, rank: int) -> str:
        return f"{FAILURES}/{self.phase}/{rank:05d}.json" if self.phase else f"{FAILURES}/{rank:05d}.json"

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        try:
            stats = super()._run_for_rank(rank, local_rank, node_rank)
        except BaseException as e:
            self._write_failure(rank, e)
            raise
        if self.logging_dir.exists(self._failure_path(rank)):  # an earlier attempt failed; this one did not
            self.logging_dir.rm(self._failure_path(rank))
        return stats

    def _write_failure(self, rank: int, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sub = f"logs/{self.phase}" if self.phase else "logs"
        marker = {
            "rank": rank,
            "phase": self.phase,
            "error": f"{type(exc).__name__}: {exc}".strip(),
            "traceback": tb[-4000:],
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "slurm_job": _slurm_task_id(),
            "log": self.logging_dir.resolve_paths(f"{sub}/task_{rank:05d}.log"),
            "slurm_log": self.slurm_log(),
        }
        try:
            with self.logging_dir.open(self._failure_path(rank), "w") as f:
                json.dump(marker, f, indent=1)
        except Exception:  # the marker is a courtesy: never hide the task's own error
            pass


def _slurm_task_id() -> str | None:
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{job}_{task}" if job and task else os.environ.get("SLURM_JOB_ID")


# ---------------------------------------------------------------------------------------------
# the snapshot


@dataclass
class TaskStatus:
    rank: int
    state: str
    detail: str = ""  # the error, the queue's reason, the scheduler's final state
    job: str | None = None  # Slurm job id of the array task (e.g. 1234_5)
    log: str | None = None  # where to look first (Slurm's log; the task log for Ray)
    task_log: str | None = None  # r1data's own log of the task (logs/[phase/]task_NNNNN.log)
    marker: bool = False  # failed, and the task said so itself (failures/ marker)


@dataclass
class PhaseStatus:
    name: str
    tasks: int
    ranks: list[TaskStatus]

    @property
    def title(self) -> str:
        return self.name or "final"

    def count(self, state: str) -> int:
        return sum(1 for t in self.ranks if t.state == state)

    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in STATES}

    @property
    def complete(self) -> bool:
        return self.count(COMPLETED) == self.tasks


@dataclass
class RunStatus:
    out_dir: Path
    executor: str
    phases: list[PhaseStatus]
    queue_error: str | None = None  # why squeue could not be asked (status then relies on markers)
    manifest: bool = False
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(p.complete for p in self.phases)

    def failed(self) -> list[tuple[PhaseStatus, TaskStatus]]:
        return [(p, t) for p in self.phases for t in p.ranks if t.state == FAILED]

    def active(self) -> int:
        return sum(p.count(RUNNING) + p.count(PENDING) for p in self.phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.out_dir),
            "executor": self.executor,
            "complete": self.complete,
            "manifest": self.manifest,
            "queue_error": self.queue_error,
            "phases": [
                {
                    "name": p.title,
                    "tasks": p.tasks,
                    **p.counts(),
                    "not_done": [asdict(t) for t in p.ranks if t.state != COMPLETED],
                }
                for p in self.phases
            ],
        }


def read_state(out_dir: Path) -> tuple[str, dict[str, Any]] | None:
    """(executor type, state) of a cluster run, or None for a local run."""
    for kind in STATE_DIRS:
        p = Path(out_dir) / kind / "state.json"
        if p.is_file():
            return kind, json.loads(p.read_text())
    return None


def snapshot(out_dir: Path, state: dict[str, Any] | None = None, queue: Any = "ask") -> RunStatus:
    """The status of every task of a cluster run.

    ``queue``: ``{(job_id, array_index): (state, reason)}`` from ``r1data.run.slurmctl.query_queue``;
    "ask" queries it now (Slurm runs only). The queue is read *before* the markers so that a task
    that finishes in between is seen as completed, never as vanished."""
    out_dir = Path(out_dir)
    kind = "slurm"
    if state is None:
        found = read_state(out_dir)
        if found is None:
            raise FileNotFoundError(f"{out_dir} holds no cluster run state (slurm/state.json or ray/state.json)")
        kind, state = found
    else:
        kind = state.get("executor", kind)
    queue_error = None
    done_by_phase = {ph["name"]: completed_ranks(out_dir, ph["name"]) for ph in state["phases"]}
    if all(len(done_by_phase[ph["name"]]) >= ph["tasks"] for ph in state["phases"]):
        queue = {}  # all done: nothing to ask the scheduler
    if kind == "slurm" and queue == "ask":
        from r1data.run.slurmctl import QueueError, query_queue

        try:
            queue = query_queue([j["job_id"] for j in state.get("jobs", [])])
        except QueueError as e:
            queue, queue_error = {}, str(e)
    elif queue == "ask":
        queue = {}
    phases = []
    vanished: list[TaskStatus] = []  # failed without a marker and unknown to squeue: ask sacct
    broken = False  # an earlier phase has failed tasks: what waits for it cannot start
    for ph in state["phases"]:
        name, n = ph["name"], ph["tasks"]
        done = completed_ranks(out_dir, name)  # read again, after the queue (see above)
        fails = failure_markers(out_dir, name)
        latest = _latest_job_of_rank(state.get("jobs", []), name)
        tasks = []
        for r in range(n):
            task_log = str(phase_dir(out_dir, "logs", name) / f"task_{r:05d}.log")
            job = latest.get(r)
            job_label = f"{job['job_id']}_{r - job['offset']}" if job else None
            slurm_log = str(out_dir / "slurm_logs" / f"{job['job_id']}_{r - job['offset']}.out") if job else None
            if r in done:
                tasks.append(TaskStatus(r, COMPLETED, job=job_label, log=slurm_log, task_log=task_log))
                continue
            q = queue.get((job["job_id"], r - job["offset"])) if job else None
            if q is not None and q[0] in ACTIVE_STATES:
                qstate, reason = q
                if qstate == "PENDING" and reason in NEVER_REASONS:
                    tasks.append(TaskStatus(r, BLOCKED, f"an earlier phase failed ({reason})", job_label, slurm_log, task_log))
                elif qstate == "PENDING":
                    tasks.append(TaskStatus(r, PENDING, reason, job_label, slurm_log, task_log))
                else:
                    tasks.append(TaskStatus(r, RUNNING, qstate.lower(), job_label, slurm_log, task_log))
            elif r in fails:
                m = fails[r]
                log = m.get("slurm_log") or slurm_log or m.get("log") or task_log
                tasks.append(TaskStatus(r, FAILED, m.get("error", "failed"), job_label, log, task_log, marker=True))
            elif job is not None and queue_error:  # without squeue a missing marker proves nothing
                tasks.append(TaskStatus(r, PENDING, "unknown: squeue unavailable", job_label, slurm_log, task_log))
            elif job is not None and broken and not os.path.exists(slurm_log):
                # never started, and Slurm cancelled it (kill-on-invalid-dep) or forgot it
                tasks.append(TaskStatus(r, BLOCKED, "cancelled before it started: an earlier phase failed", job_label, slurm_log, task_log))
            elif job is not None:
                final = q[0] if q is not None else None
                tasks.append(TaskStatus(r, FAILED, _vanished_reason(final, slurm_log), job_label, slurm_log, task_log))
                if final is None:
                    vanished.append(tasks[-1])
            else:
                tasks.append(TaskStatus(r, UNSUBMITTED, "", None, None, task_log))
        phases.append(PhaseStatus(name, n, tasks))
        broken = broken or any(t.state in (FAILED, BLOCKED) for t in tasks)
    if vanished and kind == "slurm":
        from r1data.run.slurmctl import query_accounting

        acct = query_accounting(sorted({t.job.split("_")[0] for t in vanished}))
        for t in vanished:
            if t.job in acct:
                t.detail = _vanished_reason(acct[t.job], None) + " (from sacct)"
    return RunStatus(out_dir, kind, phases, queue_error, (out_dir / "manifest.json").is_file(), state)


# squeue states of a job that is still going to run (or runs); everything else is final
ACTIVE_STATES = {
    "PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
    "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT",
}
# pending reasons that will never clear by themselves
NEVER_REASONS = {"DependencyNeverSatisfied"}


def _latest_job_of_rank(jobs: list[dict[str, Any]], phase: str) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for j in jobs:  # in submission order: a resubmission replaces the earlier job of a rank
        if j["phase"] == phase:
            for r in j["ranks"]:
                out[r] = j
    return out


def _vanished_reason(final_state: str | None, slurm_log: str | None) -> str:
    """Why an array task ended without a completion marker, from what Slurm still tells."""
    if final_state:
        why = {"CANCELLED": "cancelled (scancel)", "TIMEOUT": "over its time limit", "OUT_OF_MEMORY": "out of memory",
               "NODE_FAIL": "its node failed", "PREEMPTED": "preempted", "FAILED": "exited with an error"}.get(final_state, "")
        return f"{final_state}: {why}" if why else final_state
    tail = _log_tail(slurm_log)
    for needle, why in (("DUE TO TIME LIMIT", "over its time limit"), ("oom", "out of memory"), ("CANCELLED", "cancelled (scancel)")):
        if needle in tail:
            return f"{why} (from its Slurm log)"
    if slurm_log and not os.path.exists(slurm_log):
        return "ended before it started (cancelled while pending?)"
    return "ended without completing (killed?)"


def _log_tail(path: str | None, size: int = 4096) -> str:
    if not path or not os.path.isfile(path):
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - size))
        return f.read().decode("utf-8", "replace")
