"""Crash safety of `r1data run` (the web recipe on the two-shard tiny sample, 2 workers):

- a SIGKILL inside every phase (both dedup maps, the exact decide, the MinHash buckets and
  clusters, the final filter/write), one after the other, then a rerun: the kept and rejected
  shards are byte-identical to an uninterrupted run;
- one writer per output directory: a second run, `--overwrite` or not, is refused with one line
  naming the holder while the first goes on untouched; a lock left by a dead run is taken over;
- a SIGKILL of the driver's PID only (what the OOM killer does): every pool worker and extraction
  sandbox is gone within seconds, and the rerun is byte-identical;
- a barrier never reads a missing work file as an empty input.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY

PHASES = ["01-exact_dedup-map", "02-exact_dedup-decide", "03-minhash_dedup-map", "04-minhash_dedup-buckets", "05-minhash_dedup-clusters", "final"]


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "r1data_cli.app", "run", "pipelines/web.yaml", "--input", str(TINY), "--output", str(out), "--workers", "2", *extra]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "R1DATA_TEST_SIGKILL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli")])
    env.update(extra)
    return env


def _start(out: Path, *extra: str, **env: str) -> subprocess.Popen:
    # a session of its own: the kill hook and the clean-up kill its process group, never pytest's
    return subprocess.Popen(_cmd(out, *extra), cwd=ROOT, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(out, *extra), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)


def _files(out: Path) -> dict[str, str]:
    """sha256 of every kept and rejected shard, by path: what must not change after a crash."""
    return {f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for sub in ("shards", "rejected") for p in sorted((out / sub).glob("*.parquet"))}


def _counts(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())["counts"]


def _group(pgid: int) -> dict[int, tuple[int, str]]:
    """Live (not zombie) processes of process group ``pgid``: pid -> (ppid, state)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, ppid, pg = fields[0], int(fields[1]), int(fields[2])
        if pg == pgid and state not in ("Z", "X"):
            out[int(d.name)] = (ppid, state)
    return out


def _depth(pid: int, members: dict[int, tuple[int, str]], root: int) -> int:
    n = 0
    while pid != root and pid in members:
        pid = members[pid][0]
        n += 1
    return n if pid == root else -1


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """An uninterrupted run. While it runs, a second run on the same output (plain, then with
    --overwrite) is started; what they said is kept for ``test_second_run_is_refused``."""
    out = tmp_path_factory.mktemp("crash") / "base"
    hold = out.parent / "hold"  # the run waits after each extraction while this file exists
    hold.touch()
    proc = _start(out, R1DATA_TEST_EXTRACT_HOLD=str(hold))
    second = []
    try:
        t0 = time.time()
        while not list((out / "logs").rglob("task_*.log")):  # the first run holds the lock and is working
            assert proc.poll() is None and time.time() - t0 < 300, proc.stderr.read() if proc.poll() is not None else "no task started in 300 s"
            time.sleep(0.1)
        lock = json.loads((out / ".r1data.lock").read_text())
        for extra in ((), ("--overwrite",)):
            second.append(_run(out, *extra))
        assert proc.poll() is None, "the first run ended before the second ones were tried"
        hold.unlink()
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        _kill_group(proc.pid)
    assert proc.returncode == 0, stderr
    return {"out": out, "files": _files(out), "counts": _counts(out), "lock": lock, "pid": proc.pid, "second": second}


@pytest.mark.slow
def test_second_run_is_refused(baseline):
    assert baseline["lock"]["pid"] == baseline["pid"] and baseline["lock"]["host"]
    for res in baseline["second"]:
        assert res.returncode == 2, res.stderr
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith(f"error: {baseline['out']} is in use by another r1data run (pid {baseline['pid']} on {baseline['lock']['host']}")
    # the first run went on untouched: the golden outcome, and the lock is gone with it
    golden = json.loads((ROOT / "tests" / "golden" / "web-tiny.json").read_text())
    assert _counts(baseline["out"])["kept"] == len(golden["kept"]) and _counts(baseline["out"])["rejected"] == len(golden["rejected"])
    assert not (baseline["out"] / ".r1data.lock").exists()


@pytest.mark.slow
def test_sigkill_in_every_phase_then_resume(baseline, tmp_path):
    """One run killed inside each phase in turn (the hook SIGKILLs the whole process group at a
    task's start or right after it wrote its outputs, before its marker); the last rerun finishes."""
    out = tmp_path / "web"
    chain = [("01-exact_dedup-map", 1, "outputs"), ("02-exact_dedup-decide", 0, "outputs"), ("03-minhash_dedup-map", 0, "start"),
             ("04-minhash_dedup-buckets", 2, "outputs"), ("05-minhash_dedup-clusters", 0, "outputs"), ("final", 1, "outputs")]
    assert [c[0] for c in chain] == PHASES
    for k, (phase, rank, point) in enumerate(chain):
        proc = _start(out, R1DATA_TEST_SIGKILL=f"{phase}:{rank}:{point}")
        try:
            _, stderr = proc.communicate(timeout=600)
        finally:
            _kill_group(proc.pid)
        assert proc.returncode == -signal.SIGKILL, f"{phase}: rc {proc.returncode}\n{stderr}"
        marks = out / "completions" / ("" if phase == "final" else phase)
        assert not (marks / f"{rank:05d}").exists(), phase  # killed before its marker
        for earlier in PHASES[:k]:  # every earlier phase had completed (the kill was inside this one)
            assert (out / "completions" / ("" if earlier == "final" else earlier)).is_dir()
        for later in PHASES[k + 1 :]:
            assert not (out / "logs" / later).exists()
        assert not (out / "manifest.json").exists()
        if point == "outputs" and phase != "final":
            assert list((out / "work").rglob("*.parquet"))
    res = _run(out, "--json")
    assert res.returncode == 0, res.stderr
    assert _files(out) == baseline["files"]
    assert _counts(out) == baseline["counts"]
    assert not list(out.rglob(".*.tmp-*"))
    assert not (out / ".r1data.lock").exists()


@pytest.mark.slow
def test_workers_die_with_a_killed_driver(baseline, tmp_path):
    """SIGKILL of the driver's PID only, during the first map (pool workers busy extracting in
    their sandboxes): nothing of the run survives it; the rerun gives the same bytes."""
    out = tmp_path / "web"
    hold = tmp_path / "hold"  # the workers wait after their first extraction, sandboxes alive
    hold.touch()
    proc = _start(out, R1DATA_TEST_EXTRACT_HOLD=str(hold))
    try:
        t0 = time.time()
        while True:  # driver -> forkserver -> worker -> extraction sandbox (forked by the worker)
            members = _group(proc.pid)
            if max((_depth(p, members, proc.pid) for p in members), default=0) >= 3:
                break
            assert proc.poll() is None and time.time() - t0 < 300, "no extraction sandbox seen under a pool worker"
            time.sleep(0.1)
        assert not (out / "completions" / PHASES[0]).exists() or len(list((out / "completions" / PHASES[0]).iterdir())) < 2
        before = set(members) - {proc.pid}
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as the OOM killer would
        proc.wait(timeout=30)
        t1 = time.time()
        while _group(proc.pid) and time.time() - t1 < 10:
            time.sleep(0.1)
        left = _group(proc.pid)
        assert not left, f"still running 10 s after the driver was killed: {left} (of {sorted(before)})"
    finally:
        _kill_group(proc.pid)
    assert len(before) >= 4
    lock = json.loads((out / ".r1data.lock").read_text())  # left behind by the killed driver
    assert lock["pid"] == proc.pid
    res = _run(out, "--json")
    assert res.returncode == 0, res.stderr
    assert f"took over the lock left by a run that is gone (pid {proc.pid} on {lock['host']}" in res.stderr
    assert _files(out) == baseline["files"]
    assert _counts(out) == baseline["counts"]
    assert not list(out.rglob(".*.tmp-*"))


# ---------------------------------------------------------------------------------------------
# the lock and the barrier on their own (fast)


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    from r1data.run.lock import LOCK_NAME, OutputBusy, OutputLock

    out = tmp_path / "out"
    code = "import sys, time; from r1data.run.lock import OutputLock; OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputBusy, match=rf"^{out} is in use by another r1data run \(pid {holder.pid} on "):
            OutputLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == holder.pid  # a dead run's lock file stays
    with OutputLock(out) as lock:
        assert lock.stale is not None and lock.stale.pid == holder.pid
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()
    with OutputLock(out) as lock:  # released cleanly: nothing stale
        assert lock.stale is None


def test_lock_without_flock(tmp_path):
    """Where the filesystem has no flock: an exclusive file, a dead local holder is taken over."""
    from r1data.run.lock import LOCK_NAME, OutputBusy, OutputLock

    out = tmp_path / "out"
    out.mkdir()
    first = OutputLock(out, use_flock=False).acquire()
    with pytest.raises(OutputBusy, match=f"pid {os.getpid()} on "):
        OutputLock(out, use_flock=False).acquire()
    first.release()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "started": "x"}))
    with OutputLock(out, use_flock=False) as lock:
        assert lock.stale.pid == dead.pid
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "some-other-node", "started": "x"}))
    with pytest.raises(OutputBusy, match=f"if it does not, delete {out / LOCK_NAME}"):
        OutputLock(out, use_flock=False).acquire()


def test_refused_run_leaves_no_folder(tmp_path):
    from r1data.run.lock import OutputLock

    out = tmp_path / "new"
    with OutputLock(out):
        pass
    assert not out.exists()


def test_unlockable_output_is_one_line(tmp_path):
    from r1data.errors import ConfigError
    from r1data.run.lock import OutputLock

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=f"^cannot lock the output directory {tmp_path}/file/out: Not a directory$"):
        OutputLock(tmp_path / "file" / "out").acquire()


def test_read_window_refuses_a_missing_or_broken_work_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from r1data.stages.barrier import BarrierContext

    ctx = BarrierContext(work_dir=str(tmp_path / "work"), windows=[[0, 1]])
    ctx.docs_path(0).parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "input_index": pa.array([0], pa.int32()), "record_index": pa.array([0], pa.int64())}), ctx.docs_path(0))
    with pytest.raises(RuntimeError, match=f"missing work file {ctx.docs_path(1)}"):
        ctx.read_window(0, ["id", "input_index", "record_index"])
    ctx.docs_path(1).write_bytes(ctx.docs_path(0).read_bytes()[:20])  # a truncated file
    with pytest.raises(RuntimeError, match=f"unreadable work file {ctx.docs_path(1)}"):
        ctx.read_window(0, ["id", "input_index", "record_index"])
    pq.write_table(pq.read_table(ctx.docs_path(0)).slice(0, 0), ctx.docs_path(1))  # an input that kept nothing
    assert ctx.read_window(0, ["id", "input_index", "record_index"]).num_rows == 1


def test_marker_only_after_verified_outputs(tmp_path):
    """A task whose output vanished before its marker was written fails instead of being marked done."""
    from r1data.run.executor import verify_outputs

    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), p)
    verify_outputs([[str(p), 3]])
    with pytest.raises(RuntimeError, match="holds 3 rows but the task wrote 4"):
        verify_outputs([[str(p), 4]])
    p.unlink()
    with pytest.raises(RuntimeError, match="is missing right after the task wrote it"):
        verify_outputs([[str(p), 3]])
