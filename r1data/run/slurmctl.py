"""Talking to Slurm: its command-line tools (sbatch aside), the cluster's configuration, the queue.

Used by the Slurm executor (``r1data.run.slurm``) and by ``r1data status`` (``r1data.run.status``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache

from r1data.errors import ConfigError

DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default MaxArraySize


class QueueError(Exception):
    """squeue/scontrol could not be asked (slurmctld down, no Slurm client here)."""


def _slurm(cmd: list[str], timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, env=_clean_env())
    except FileNotFoundError:
        raise QueueError(f"{cmd[0]} not found on PATH (run on a Slurm login node, or install slurm-client)") from None
    except subprocess.TimeoutExpired:
        raise QueueError(f"{' '.join(cmd[:2])} did not answer within {timeout:.0f} s") from None


def _clean_env() -> dict[str, str]:
    """Our environment without the SLURM_* variables of an enclosing job (r1data started inside
    salloc/srun): sbatch would read them as options (SLURM_MEM_PER_NODE clashes with --mem-per-cpu)
    and pass them on to the array tasks. SLURM_CONF names the cluster and stays."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def check_slurm() -> None:
    """``ConfigError`` unless sbatch, squeue and scancel are here and slurmctld answers."""
    for tool in ("sbatch", "squeue", "scancel", "scontrol"):
        if shutil.which(tool) is None:
            raise ConfigError(f"--executor slurm: {tool} not found on PATH; run on a Slurm login node (or install slurm-client)")
    res = _slurm(["scontrol", "ping"])
    if res.returncode != 0 or "UP" not in res.stdout:
        first = next((line for line in (res.stdout + res.stderr).splitlines() if line.strip()), "no answer")
        raise ConfigError(f"--executor slurm: slurmctld is not up (`scontrol ping`: {first.strip()}); is SLURM_CONF right?")


@lru_cache(maxsize=1)
def cluster_config() -> dict[str, str]:
    """``scontrol show config`` as a dict (empty when Slurm cannot be asked)."""
    try:
        # `show config` retries for seconds when slurmctld is down; `ping` answers at once
        if "UP" not in _slurm(["scontrol", "ping"], timeout=15).stdout:
            return {}
        res = _slurm(["scontrol", "show", "config"])
    except QueueError:
        return {}
    out = {}
    for line in res.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def cluster_max_array_size() -> int | None:
    value = cluster_config().get("MaxArraySize", "")
    return int(value) if value.isdigit() else None


def array_spec(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (sbatch --array syntax)."""
    parts, start, prev = [], None, None
    for i in sorted(indices):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)


def query_queue(job_ids: list[str]) -> dict[tuple[str, int], tuple[str, str]]:
    """``{(array job id, array index): (state, reason)}`` for every task of ``job_ids`` squeue still knows.

    Includes finished tasks (COMPLETED, FAILED, CANCELLED, ...) for the cluster's MinJobAge; a task
    cancelled while pending is forgotten at once."""
    if not job_ids:
        return {}
    res = _slurm(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(job_ids), "-o", "%F|%K|%T|%r"])
    if res.returncode != 0:
        if "Invalid job id" in res.stderr:  # every job is gone from slurmctld's memory
            return {}
        raise QueueError(f"squeue failed: {_one_line(res.stderr or res.stdout)}")
    out = {}
    for line in res.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[1].isdigit():
            out[(parts[0], int(parts[1]))] = (parts[2], parts[3])
    return out


def query_accounting(job_ids: list[str]) -> dict[str, str]:
    """``{"<job>_<index>": state}`` from ``sacct``; empty when accounting is not enabled."""
    if not job_ids or shutil.which("sacct") is None:
        return {}
    try:
        res = _slurm(["sacct", "-n", "-X", "-P", "-j", ",".join(job_ids), "-o", "JobID,State"], timeout=30)
    except QueueError:
        return {}
    if res.returncode != 0:
        return {}
    out = {}
    for line in res.stdout.splitlines():
        job, _, state = line.partition("|")
        if "_" in job and state:
            out[job.strip()] = state.split()[0]  # "CANCELLED by 0" -> CANCELLED
    return out


def scancel(targets: list[str]) -> None:
    """Cancel jobs or array tasks (``1234`` or ``1234_5``); errors for ones already gone are ignored."""
    for i in range(0, len(targets), 500):
        _slurm(["scancel", *targets[i : i + 500]])
