"""r1data's executors: datatrove's, with per-phase completion markers, one stats file per task and quiet logs.

``PhaseMixin`` changes three things in datatrove's ``PipelineExecutor``:

- markers, logs and stats of a phase live under ``completions/<phase>/``, ``logs/<phase>/`` and
  ``stats/<phase>/`` (the final phase, named ``""``, uses the top-level folders), so multi-phase
  pipelines (dedup) can share one output directory;
- each task writes one ``stats/[phase/]NNNNN.json`` holding both r1data's counts (from the sink)
  and datatrove's step statistics;
- the console shows warnings only (corrupt inputs, failures); the full log is in ``logs/``;
- a task is marked complete only once the outputs its last step lists in ``report["outputs"]``
  (``[path, rows]`` pairs) are on disk with those row counts; its stats file and its marker are
  written under a temporary name and renamed into place, so a marker never stands for a missing,
  partial or foreign output.

``LocalExecutor``'s pool workers die with the driver (``die_with``, ``die_with_parent``): a
driver killed with SIGKILL (an OOM kill) leaves no worker writing beside the rerun.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
import multiprocessing

from datatrove.executor.local import LocalPipelineExecutor
from datatrove.utils.logging import logger
from datatrove.utils.stats import PipelineStats

LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
CONSOLE_FORMAT = "<level>{level: <7}</level> {message}"


def _console_format(record) -> str:
    """One line per message on the console; a traceback only with ``--debug`` (the task log always has it).

    (A format given as a function is not followed by the exception, unlike a format string.)"""
    if record["exception"] is not None and os.environ.get("R1DATA_DEBUG", "") not in ("", "0"):
        return CONSOLE_FORMAT + "\n{exception}"
    return CONSOLE_FORMAT + "\n"


def console_logging(level: str = "WARNING") -> None:
    """Driver-side loguru setup: one short line per message on stderr."""
    logger.remove()
    logger.add(sys.stderr, level=level, format=_console_format, colorize=sys.stderr.isatty(), backtrace=False, diagnose=False)


PR_SET_PDEATHSIG = 1
KILL_HOOK = "R1DATA_TEST_SIGKILL"


def die_with_parent(parent: int | None = None) -> bool:
    """Ask Linux to SIGKILL this process when its parent exits (``PR_SET_PDEATHSIG``).

    The signal follows the parent *thread* that forked this process. ``parent``: the PID the caller
    expects as its parent; if it is already gone (it died before this call, too early for the
    signal), this process kills itself now. Returns False where the call is not available."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def die_with(pid: int) -> None:
    """A daemon thread that SIGKILLs this process as soon as process ``pid`` (e.g. the driver) exits.

    Pool workers are children of the forkserver, not of the driver, so the death signal alone
    would depend on the forkserver noticing; this watches the driver itself (a pidfd, or a poll
    once a second where pidfds are missing). Children that called ``die_with_parent`` follow."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGKILL)
        return
    except (AttributeError, OSError):
        fd = None

    def watch() -> None:
        if fd is not None:
            import select

            select.select([fd], [], [])  # readable once the process has exited
        else:
            import time

            while True:
                time.sleep(1)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="r1data-driver-watch", daemon=True).start()


def _pool_worker_init(driver: int, memory_limit_gb: float | None = None, progress=None) -> None:
    die_with_parent()
    die_with(driver)
    if memory_limit_gb:
        limit_memory(memory_limit_gb)
    if progress:
        _init_progress(*progress)


# modules every pool worker of a run imports (the executor, datatrove, Arrow, the work files)
_PRELOAD_BASE = (
    "r1data.run.executor", "r1data.run.sink", "r1data.stages.barrier", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.compute",
    "smart_open",
)
PRELOAD_ENV = "R1DATA_FORKSERVER_PRELOAD"
PRELOAD_CALLS_ENV = "R1DATA_FORKSERVER_CALLS"  # the steps' Stage.preload() calls, as JSON


def preload_forkserver(pipeline=()) -> list[str]:
    """Start this process's fork server with the run's heavy modules already imported.

    Pool workers are forked from one fork server per driver process; without this, every worker of
    every phase imports datatrove, pyarrow, spaCy (and torch through it), fastText, ... on its own.
    The modules: a fixed base, the module of each step of ``pipeline`` and what the steps list in
    ``requires``; ``r1data.run._preload`` imports them in the server and ignores any that fail, so a
    missing optional package never stops a run. Then it makes the steps' ``preload()`` calls there
    (shared read-only state, e.g. the decontamination index). A no-op once the server runs (returns [])."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if getattr(server, "_forkserver_pid", None) is not None:
        return []
    mods: list[str] = list(_PRELOAD_BASE)
    calls: list = []
    for step in pipeline or ():
        mods.append(type(step).__module__)
        mods.extend(getattr(step, "requires", None) or ())
        preload = getattr(step, "preload", None)
        if callable(preload):
            try:
                calls.extend(list(c) for c in preload() if list(c) not in calls)
            except Exception:  # noqa: BLE001 - a preload is an optimisation: the worker does it itself
                pass
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name and spec_name != "__main__" and not spec_name.endswith(".__main__"):
        mods.append(spec_name)  # `python -m pkg.mod`: workers re-run it as __mp_main__; its imports are then cached
    mods = list(dict.fromkeys(m for m in mods if m and m != "__main__"))
    old = {k: os.environ.get(k) for k in (PRELOAD_ENV, PRELOAD_CALLS_ENV)}
    os.environ[PRELOAD_ENV] = ",".join(mods)
    try:
        os.environ[PRELOAD_CALLS_ENV] = json.dumps(calls)
    except (TypeError, ValueError):
        os.environ[PRELOAD_CALLS_ENV] = "[]"
    try:
        server.set_forkserver_preload(["__main__", "r1data.run._preload"])
        server.ensure_running()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return mods


def limit_memory(gb: float) -> None:
    """Cap this process's address space (``RLIMIT_AS``): an allocation past it raises ``MemoryError``
    in the code that made it, so a reader names the file (``input_too_large``) and the task goes on,
    instead of the kernel's OOM killer taking the worker (or the machine) down."""
    import resource

    limit = int(gb * 2**30)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def verify_outputs(outputs) -> None:
    """Check that every ``[path, rows]`` a task reports is a readable Parquet file of that many rows."""
    import pyarrow.parquet as pq

    for path, rows in outputs or ():
        try:
            n = pq.ParquetFile(path).metadata.num_rows
        except FileNotFoundError:
            raise RuntimeError(f"output {path} is missing right after the task wrote it (did another process delete it?)") from None
        except Exception as e:
            raise RuntimeError(f"output {path} is unreadable right after the task wrote it: {type(e).__name__}: {e}") from None
        if n != rows:
            raise RuntimeError(f"output {path} holds {n} rows but the task wrote {rows} (did another process replace it?)")


def _kill_hook(phase: str, rank: int, point: str) -> None:
    """Test hook: ``R1DATA_TEST_SIGKILL=<phase title>:<rank>[:start|:outputs]`` SIGKILLs this process
    group when task ``rank`` of that phase starts, or (default) has written and verified its
    outputs but not yet its stats and marker: a real kill at a real point, for the crash tests."""
    spec = os.environ.get(KILL_HOOK)
    if not spec:
        return
    parts = spec.split(":")
    want_phase, want_rank, want_point = parts[0], parts[1] if len(parts) > 1 else "0", parts[2] if len(parts) > 2 else "outputs"
    if want_phase == (phase or "final") and want_rank == str(rank) and want_point == point:
        os.killpg(os.getpgrp(), signal.SIGKILL)
# --------------------------------------------------------------------------------------------
# progress: documents read and input bytes consumed, shared between the workers and the driver

_PROGRESS = None  # (docs, bytes) shared counters (multiprocessing Values) in a worker, or None
_FLUSH_EVERY = 16  # documents between two updates of the shared counters


def _init_progress(docs, nbytes) -> None:
    global _PROGRESS
    _PROGRESS = (docs, nbytes)


def _counted(data, reader):
    """Pass the reader's documents through, adding to the shared counters every few documents.

    Bytes are the sizes of the inputs the reader has finished plus its position in the current one
    (``reader.pos_in_file``, where the reader keeps it), so ETA follows the input, not a guess."""
    docs_v, bytes_v = _PROGRESS
    sizes = {f.uri: f.size or 0 for f in getattr(reader, "files", None) or []}
    report_files = getattr(reader, "report", {}).get("files", [])
    n = sent_docs = sent_bytes = finished = seen_files = 0

    def flush():
        nonlocal sent_docs, sent_bytes, finished, seen_files
        while seen_files < len(report_files):
            finished += sizes.get(report_files[seen_files]["uri"], 0)
            seen_files += 1
        done = finished + (getattr(reader, "pos_in_file", 0) or 0)
        if done > sent_bytes:  # bytes first: a line that sees these documents sees their bytes too
            with bytes_v.get_lock():
                bytes_v.value += done - sent_bytes
            sent_bytes = done
        with docs_v.get_lock():
            docs_v.value += n - sent_docs
        sent_docs = n

    try:
        for doc in data:
            n += 1
            if n - sent_docs >= _FLUSH_EVERY:
                flush()
            yield doc
    finally:
        flush()


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class _ProgressLine:
    """A driver thread that reports documents, docs/s and an ETA every ``every`` seconds through ``emit``.

    ETA comes from the input bytes consumed when the phase reads sized inputs, else from
    ``expected_docs`` (the documents of an earlier phase) when given; otherwise there is none."""

    def __init__(self, emit, title: str, total_bytes: int, expected_docs: int | None, every: float):
        ctx = multiprocessing.get_context("forkserver")
        self.docs, self.bytes = ctx.Value("q", 0), ctx.Value("q", 0)
        self.emit, self.title, self.total_bytes, self.expected_docs, self.every = emit, title, total_bytes, expected_docs, every
        self._stop = threading.Event()
        self._last = None
        self._thread = threading.Thread(target=self._loop, name="r1data-progress", daemon=True)
        self.t0 = time.monotonic()

    def line(self) -> str | None:
        elapsed = time.monotonic() - self.t0
        docs, done = self.docs.value, self.bytes.value
        if not docs:
            return None
        rate = docs / elapsed
        parts = [f"{self.title}: {docs:,} docs read", f"{rate:,.1f} docs/s"]
        if self.total_bytes and done:
            frac = min(1.0, done / self.total_bytes)
            size = f"{self.total_bytes / 2**30:.2f} GiB" if self.total_bytes >= 2**30 else f"{self.total_bytes / 2**20:.1f} MiB"
            parts.append(f"{100 * frac:.0f}% of {size} input")
            parts.append(f"ETA {_duration(elapsed * (1 - frac) / frac)}" if frac < 1 else "ETA 0s")
        elif self.expected_docs:
            frac = min(1.0, docs / self.expected_docs)
            parts.append(f"{100 * frac:.0f}% of {self.expected_docs:,} docs")
            parts.append(f"ETA {_duration((self.expected_docs - docs) / rate)}" if rate > 0 else "")
        return ", ".join(p for p in parts if p)

    def _tick(self) -> None:
        docs = self.docs.value
        if docs == self._last:  # nothing new: stay quiet (a long reduce step, a slow document)
            return
        self._last = docs
        text = self.line()
        if text:
            try:
                self.emit(text)
            except Exception:  # a display problem never stops the run
                pass

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._tick()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._tick()  # the last word is the phase's total, whatever the timer last saw
        return False


class PhaseMixin:
    """Mixed in front of a datatrove executor; see the module docstring."""

    phase: str = ""
    console_level: str = "WARNING"

    def _sub(self, folder: str) -> str:
        return f"{folder}/{self.phase}" if self.phase else folder

    def is_rank_completed(self, rank: int) -> bool:
        return self.skip_completed and self.logging_dir.isfile(f"{self._sub('completions')}/{rank:05d}")

    def _write_atomic(self, path: str, text: str) -> None:
        folder, name = os.path.split(path)
        tmp = f"{folder}/.{name}.tmp-{os.getpid()}"
        with self.logging_dir.open(tmp, "w") as f:
            f.write(text)
        self.logging_dir.mv(tmp, path)

    def mark_rank_as_completed(self, rank: int, outputs=None) -> None:
        self._write_atomic(f"{self._sub('completions')}/{rank:05d}", json.dumps({"outputs": outputs or []}) + "\n")

    def get_incomplete_ranks(self, ranks=None, skip_completed=None) -> list[int]:
        if skip_completed is None:
            skip_completed = self.skip_completed
        sub = self._sub("completions")
        done = set()
        if skip_completed and self.logging_dir.isdir(sub):
            done = {os.path.basename(p) for p in self.logging_dir.list_files(sub, recursive=False)}
        return [r for r in (ranks if ranks is not None else range(self.world_size)) if f"{r:05d}" not in done]

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
        if self.is_rank_completed(rank):
            return PipelineStats()
        self._set_distributed_environment(node_rank)
        logfile = self.logging_dir.open(f"{self._sub('logs')}/task_{rank:05d}.log", "w")
        logger.remove()
        logger.add(sys.stderr, level=self.console_level, format=_console_format, colorize=False, backtrace=False, diagnose=False)
        logger.add(logfile, level="DEBUG", format=LOG_FORMAT, colorize=False)
        logger.info(f"task {rank} of {self.world_size} ({self.phase or 'main'}) starting")
        try:
            _kill_hook(self.phase, rank, "start")
            data = None
            for i, step in enumerate(self.pipeline):
                if callable(step):
                    data = step(data, rank, self.world_size)
                    if i == 0 and _PROGRESS is not None:
                        data = _counted(data, step)
                elif isinstance(step, Sequence) and not isinstance(step, str):
                    data = step
                else:
                    raise ValueError(f"not a pipeline step: {step!r}")
            if data:
                deque(data, maxlen=0)
            stats = PipelineStats(self.pipeline)
            report = getattr(self.pipeline[-1], "report", None) or {}
            if node_rank <= 0:
                verify_outputs(report.get("outputs"))
                _kill_hook(self.phase, rank, "outputs")
                blob = json.dumps({"r1data": report, "datatrove": json.loads(stats.to_json())}, indent=1)
                self._write_atomic(f"{self._sub('stats')}/{rank:05d}.json", blob)
                self.mark_rank_as_completed(rank, report.get("outputs"))
            logger.info(f"task {rank} done: {report.get('read', '?')} read, {report.get('kept', '?')} kept")
            return stats
        except Exception as e:
            logger.exception(e)
            raise
        finally:
            logger.complete()
            logger.remove()
            logfile.close()


def _run_rank(executor: "LocalExecutor", rank: int) -> int:
    executor._run_for_rank(rank)
    return rank


class LocalExecutor(PhaseMixin, LocalPipelineExecutor):
    """datatrove's LocalPipelineExecutor on a ``concurrent.futures`` pool.

    The pool notices a worker that dies (SIGKILL, out of memory): the tasks it was running are
    retried once in a fresh pool, then reported as failed; finished tasks are never redone.
    ``on_progress(done, total)`` is called as tasks finish. With ``on_line``, a one-line report
    (documents read, docs/s, ETA) is passed to it every ``progress_every`` seconds while tasks run;
    ``docs_read`` holds the documents this run's tasks read once it returns. ``expected_docs`` gives the
    ETA a total when the inputs have no sizes (the work files of a map phase are counted by default).
    """

    def __init__(
        self, pipeline, *, tasks: int, workers: int, logging_dir: str, phase: str = "", on_progress=None, retries: int = 1,
        memory_limit_gb: float | None = None,
        on_line=None, progress_every: float = 10.0, expected_docs: int | None = None,
    ):
        super().__init__(pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir, skip_completed=True)
        self.memory_limit_gb = memory_limit_gb
        self.phase = phase
        self.on_progress = on_progress
        self.retries = retries
        self.failures: dict[int, str] = {}
        self.on_line, self.progress_every, self.expected_docs = on_line, progress_every, expected_docs
        self.docs_read = 0

    def __getstate__(self):
        state = self.__dict__.copy()
        state["on_progress"] = state["on_line"] = None  # callbacks into the driver's display do not travel
        state["_shared"] = None  # the counters reach pool workers through the pool's initializer
        return state

    def run(self) -> list[int]:
        """Run the incomplete ranks; returns the ranks that failed (empty when all completed)."""
        global _PROGRESS
        if self.on_line is None:
            return self._run()
        first = self.pipeline[0] if self.pipeline else None
        files = getattr(first, "files", None) or []
        work = type(first).__name__ == "WorkReader"
        sized = bool(files) and all(f.size for f in files) and not work
        total = sum(f.size for f in files) if sized else 0
        expected = self.expected_docs
        if work and expected is None:  # a later phase reads the work files of a map phase: their row counts
            from r1data.io.shards import parquet_rows

            paths = [first.ctx.docs_path(f.index) for f in files]
            expected = sum(parquet_rows(p) for p in paths if os.path.exists(p)) or None
        with _ProgressLine(self.on_line, self.phase or "final", total, expected, self.progress_every) as prog:
            self._shared = (prog.docs, prog.bytes)
            _PROGRESS = self._shared  # tasks run in this process (one worker) count into the same place
            try:
                return self._run()
            finally:
                _PROGRESS = None
                self._shared = None
                self.docs_read = prog.docs.value

    def _run(self) -> list[int]:
        todo = self.get_incomplete_ranks(range(self.tasks))
        total = self.tasks
        done = total - len(todo)
        if self.on_progress:
            self.on_progress(done, total)
        if not todo:
            return []
        if min(self.workers, len(todo)) == 1 and not self.memory_limit_gb:
            # one worker: run in this process, as datatrove does, and spare the pool start-up;
            # each task gets a fresh copy of the pipeline (steps keep per-task state)
            pristine = self.pipeline
            for r in todo:
                self.pipeline = copy.deepcopy(pristine)
                try:
                    self._run_for_rank(r)
                    done += 1
                    if self.on_progress:
                        self.on_progress(done, total)
                except Exception as e:
                    self.failures[r] = f"{type(e).__name__}: {e}"
                finally:
                    console_logging(self.console_level)
            self.pipeline = pristine
            return sorted(self.failures)
        attempts = {r: 0 for r in todo}
        queue = list(todo)
        ctx = multiprocessing.get_context("forkserver")
        preload_forkserver(self.pipeline)
        while queue:
            pending = {}
            submitted = list(queue)
            try:
                shared = getattr(self, "_shared", None)
                with ProcessPoolExecutor(
                    max_workers=min(self.workers, len(queue)), mp_context=ctx, initializer=_pool_worker_init,
                    initargs=(os.getpid(), self.memory_limit_gb, shared),
                ) as pool:
                    for r in queue:
                        attempts[r] += 1
                        pending[pool.submit(_run_rank, self, r)] = r
                    queue = []
                    while pending:
                        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            r = pending.pop(fut)
                            try:
                                fut.result()
                                done += 1
                                if self.on_progress:
                                    self.on_progress(done, total)
                            except BrokenProcessPool:
                                raise
                            except Exception as e:
                                self.failures[r] = f"{type(e).__name__}: {e}"
            except BrokenProcessPool:
                lost = [r for r in submitted if r not in self.failures and not self.is_rank_completed(r)]
                for r in lost:
                    if attempts[r] <= self.retries:
                        logger.warning(f"a worker died (killed or out of memory) while running task {r}; retrying it")
                        queue.append(r)
                    else:
                        self.failures[r] = "the worker process died (killed or out of memory) twice"
                done = total - len(self.get_incomplete_ranks(range(self.tasks)))
        return sorted(self.failures)
