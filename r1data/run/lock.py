"""One writer per output directory: ``OUT/.r1data.lock``, held by the driver for the whole run.

    with OutputLock(out_dir) as lock:      # raises OutputBusy (exit 2) naming the holder
        ...                                 # lock.stale: the holder a dead run left behind, if any

The lock is an ``flock`` on the file, so the kernel (or the NFS lock manager) drops it when the
holding process dies, however it dies; the file also records the holder (PID, host, start, command)
so a refused run can say who holds it. A lock file left by a dead run is taken over (``stale``
names it). On a filesystem without ``flock`` (Lustre mounted without it, some FUSE mounts) the file
is created exclusively instead; a file left by a dead process on this host is taken over, one from
another host is refused with the path to delete if that run is gone.

The lock is taken before anything in the directory is touched (``--overwrite`` deletes under it)
and released, and the file removed, when the run ends. Workers never take it: the driver that
started them holds it, and they die with it (``r1data.run.executor``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from r1data.errors import ConfigError, R1DataError

LOCK_NAME = ".r1data.lock"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class OutputBusy(R1DataError):
    """Another r1data run holds the output directory: nothing was run or deleted."""

    exit_code = 2


@dataclass
class Holder:
    pid: int
    host: str
    started: str = "?"
    command: str = ""
    start_ticks: int | None = None  # /proc/<pid>/stat start time: tells a reused PID apart

    def describe(self) -> str:
        cmd = f": {self.command}" if self.command else ""
        return f"pid {self.pid} on {self.host}, started {self.started}{cmd}"

    def alive_here(self) -> bool:
        """Is this holder a live process on this host? (False for another host: we cannot tell.)"""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return self.start_ticks is None or _start_ticks(self.pid) in (None, self.start_ticks)


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _me() -> Holder:
    cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    return Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=cmd[:300],
        start_ticks=_start_ticks(os.getpid()),
    )


def _parse(raw: bytes) -> Holder | None:
    try:
        d = json.loads(raw.decode() or "null")
        return Holder(int(d["pid"]), str(d["host"]), str(d.get("started", "?")), str(d.get("command", "")), d.get("start_ticks"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


def _read(fd: int) -> Holder | None:
    return _parse(os.pread(fd, 4096, 0))


class OutputLock:
    """The exclusive lock on one output directory (see the module docstring)."""

    def __init__(self, out_dir: str | os.PathLike, *, use_flock: bool = True):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self.use_flock = use_flock
        self.fd: int | None = None
        self.stale: Holder | None = None  # what a dead run left in the lock file, if we took it over
        self._made_dir = False

    def _busy(self, holder: Holder | None, extra: str = "") -> OutputBusy:
        who = holder.describe() if holder else "holder unknown"
        return OutputBusy(f"{self.out_dir} is in use by another r1data run ({who}){extra}; wait for it to end or stop it, then rerun")

    def acquire(self) -> "OutputLock":
        try:
            self._made_dir = not self.out_dir.exists()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.use_flock:
                try:
                    self._acquire_flock()
                except OSError as e:
                    if e.errno not in _NO_FLOCK:
                        raise
                    self.use_flock = False
            if not self.use_flock:
                self._acquire_exclusive()
            self._write(_me())
        except OutputBusy:
            raise
        except OSError as e:  # a read-only or missing filesystem, no permission
            self.release()
            raise ConfigError(f"cannot lock the output directory {self.out_dir}: {e.strerror or e}") from None
        return self

    def _acquire_flock(self) -> None:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:  # a run refused before any work removed the folder it had made
                self.out_dir.mkdir(parents=True, exist_ok=True)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise self._busy(holder) from None
            except BaseException:
                os.close(fd)
                raise
            # the holder we waited on may have removed the file between our open and flock: then
            # this lock is on an orphan inode, and the next run would lock a new file; start again
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                self.stale = _read(fd)  # the lock was free: whoever the file names is gone
                return
            os.close(fd)

    def _acquire_exclusive(self) -> None:
        for _ in range(10):
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                return
            except FileExistsError:
                pass
            try:
                holder = _parse(self.path.read_bytes())
            except FileNotFoundError:
                continue
            if holder is None or holder.alive_here() or holder.host != socket.gethostname():
                extra = "" if holder is None or holder.host == socket.gethostname() else (
                    f"; this filesystem has no flock, so whether it still runs cannot be checked from here: "
                    f"if it does not, delete {self.path}"
                )
                raise self._busy(holder, extra)
            self.stale = holder  # a dead process of this host
            self.path.unlink(missing_ok=True)
        raise self._busy(None)

    def _write(self, holder: Holder) -> None:
        data = json.dumps(holder.__dict__).encode() + b"\n"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: see _acquire_flock
        finally:
            os.close(self.fd)
            self.fd = None
        if self._made_dir:  # a run refused before any work leaves no empty folder behind
            try:
                self.out_dir.rmdir()
            except OSError:
                pass

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
