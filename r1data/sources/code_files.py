"""Source trees as the code reader sees them: directories, git working trees, tar and zip archives.

    from r1data.sources.code_files import Limits, open_root
    root = open_root("/path/to/repo-or-archive.zip", Limits())
    for entry in root.entries():          # sorted, deterministic
        if entry.skip: ...                # symlink, unsafe_path, special_file, ... (never read)
        data = entry.read(1 << 20)

Safety rules (archives are never extracted to disk; nothing is written anywhere):

- a member whose name is absolute or climbs out with ``..`` is reported as ``unsafe_path``;
- symbolic links are reported, never followed, unless ``follow_symlinks`` is set, and then only
  to targets inside the root, each directory once (loops end as ``symlink_loop``);
- devices, FIFOs and sockets are reported as ``special_file`` and never opened;
- an archive that would expand beyond ``max_archive_bytes``, holds more than ``max_members``
  entries, expands more than ``max_ratio`` times its size, or has overlapping zip entries (a
  non-recursive zip bomb) is refused whole with ``ArchiveRefused`` before anything is read.

In a directory, ``.git`` (and other VCS folders) are skipped and ``.gitignore`` files are honoured
(with ``.git/info/exclude``), as git would; ``exclude`` adds gitignore-style patterns of its own.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs"})
ZIP_SUFFIXES = (".zip", ".whl")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
ARCHIVE_SUFFIXES = ZIP_SUFFIXES + TAR_SUFFIXES
LICENSE_NAMES = re.compile(r"^(?:LICEN[CS]E|COPYING|UNLICENSE|COPYRIGHT)(?:[-_.][A-Za-z0-9]+)*$", re.I)
_LICENSE_READ_LIMIT = 256 * 1024
# zip bombs are judged on ratio only once they expand beyond this (a small, very repetitive file is harmless)
RATIO_FLOOR_BYTES = 16 * 2**20


class ArchiveRefused(Exception):
    """An archive was refused whole; ``reason`` is the short code, ``str()`` the explanation."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1 << 20
    max_archive_bytes: int = 1 << 30
    max_members: int = 200_000
    max_ratio: float = 100.0


@dataclass
class Entry:
    """One file of a root. ``skip`` is set for entries that must not be read (and says why)."""

    path: str
    size: int | None
    reader: Callable[[int], bytes] | None = None
    skip: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the file."""
        if self.reader is None:
            raise OSError(f"{self.path}: not readable ({self.skip})")
        return self.reader(limit)


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_member_path(name: str) -> str | None:
    """The member name as a clean relative path, or None when it is absolute or escapes with ``..``."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        return None
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def printable(name: str) -> str:
    """A member name safe to store and print (control characters escaped)."""
    return name.encode("unicode_escape", "backslashreplace").decode("ascii") if not name.isprintable() else name


def _read_local(path: str, limit: int, nofollow: bool = True) -> bytes:
    # O_NOFOLLOW: the entry was a regular file when listed; if it became a link since, refuse it.
    # O_NONBLOCK: never hang on a FIFO swapped in after the listing.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (getattr(os, "O_NOFOLLOW", 0) if nofollow else 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit)


class Root:
    """A source tree: ``name`` (for ids), ``kind``, ``licence_files`` (root LICENSE texts),
    ``entries()`` and ``stats`` (what was ignored)."""

    kind = "directory"

    def __init__(self, uri: str):
        self.uri = uri
        self.name = os.path.basename(uri.rstrip("/")) or uri
        self.stats: Counter = Counter()
        self.vcs: str | None = None

    def licence_files(self) -> dict[str, str]:
        return {}

    def entries(self) -> Iterator[Entry]:
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (zip archives keep theirs open while entries are read)."""


def _excluder(patterns: list[str]):
    if not patterns:
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns)


class DirectoryRoot(Root):
    """A directory or git working tree, walked in sorted order without following links out."""

    def __init__(self, uri: str, *, exclude: list[str], gitignore: bool, follow_symlinks: bool):
        super().__init__(uri)
        self.path = os.path.abspath(uri)
        self.real = os.path.realpath(self.path)
        self.exclude = _excluder(exclude)
        self.gitignore = gitignore
        self.follow = follow_symlinks
        if os.path.exists(os.path.join(self.path, ".git")):
            self.vcs = "git"

    def licence_files(self) -> dict[str, str]:
        out = {}
        try:
            names = sorted(os.listdir(self.path))
        except OSError:
            return out
        for n in names:
            p = os.path.join(self.path, n)
            if LICENSE_NAMES.match(n) and os.path.isfile(p) and not os.path.islink(p):
                try:
                    out[n] = _read_local(p, _LICENSE_READ_LIMIT).decode("utf-8", "replace")
                except OSError:
                    continue
        return out

    def _specs_for(self, abs_dir: str, rel_dir: str, specs: list) -> list:
        if not self.gitignore:
            return specs
        import pathspec

        lines: list[str] = []
        if not rel_dir and self.vcs == "git":
            try:
                with open(os.path.join(abs_dir, ".git", "info", "exclude"), encoding="utf-8", errors="replace") as fh:
                    lines += fh.read().splitlines()
            except OSError:
                pass
        try:
            with open(os.path.join(abs_dir, ".gitignore"), encoding="utf-8", errors="replace") as fh:
                lines += fh.read().splitlines()
        except OSError:
            pass
        if not lines:
            return specs
        return specs + [(rel_dir, pathspec.GitIgnoreSpec.from_lines(lines))]

    def _ignored(self, rel: str, is_dir: bool, specs: list) -> bool:
        p = rel + "/" if is_dir else rel
        if self.exclude is not None and self.exclude.match_file(p):
            return True
        for base, spec in reversed(specs):  # the deepest .gitignore that has a say decides
            res = spec.check_file(p[len(base) + 1 :] if base else p)
            if res.include is not None:
                return bool(res.include)
        return False

    def entries(self) -> Iterator[Entry]:
        visited: set[tuple[int, int]] = set()
        yield from self._walk(self.path, "", [], visited)

    def _walk(self, abs_dir: str, rel_dir: str, specs: list, visited: set) -> Iterator[Entry]:
        try:
            st = os.stat(abs_dir)
        except OSError:
            return
        visited.add((st.st_dev, st.st_ino))
        specs = self._specs_for(abs_dir, rel_dir, specs)
        try:
            with os.scandir(abs_dir) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield Entry(rel_dir or ".", None, skip="unreadable", detail={"error": e.strerror or str(e)})
            return
        for e in items:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            try:
                if e.is_symlink():
                    if self._ignored(rel, False, specs):
                        self.stats["ignored"] += 1
                        continue
                    yield from self._symlink(e, rel, specs, visited)
                elif e.is_dir(follow_symlinks=False):
                    if e.name in VCS_DIRS or self._ignored(rel, True, specs):
                        self.stats["ignored_dirs"] += 1
                        continue
                    yield from self._walk(e.path, rel, specs, visited)
                elif e.is_file(follow_symlinks=False):
                    if (e.name == ".git" and not rel_dir) or self._ignored(rel, False, specs):
                        self.stats["ignored"] += 1
                        continue
                    yield Entry(rel, e.stat(follow_symlinks=False).st_size, lambda n, p=e.path: _read_local(p, n))
                else:
                    yield Entry(rel, None, skip="special_file")
            except OSError as err:
                yield Entry(rel, None, skip="unreadable", detail={"error": err.strerror or str(err)})

    def _symlink(self, e: os.DirEntry, rel: str, specs: list, visited: set) -> Iterator[Entry]:
        target = os.readlink(e.path)
        detail = {"symlink_target": target}
        try:
            real = os.path.realpath(e.path, strict=True)
        except OSError as err:
            yield Entry(rel, None, skip="symlink_loop" if err.errno == errno.ELOOP else "broken_symlink", detail=detail)
            return
        if not (real == self.real or real.startswith(self.real + os.sep)):
            yield Entry(rel, None, skip="symlink_outside_root", detail=detail)
            return
        if not self.follow:
            yield Entry(rel, None, skip="symlink", detail=detail)
            return
        st = os.stat(real)
        if stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in visited:
                yield Entry(rel, None, skip="symlink_loop", detail=detail)
                return
            yield from self._walk(real, rel, specs, visited)
        elif stat.S_ISREG(st.st_mode):
            yield Entry(rel, st.st_size, lambda n, p=real: _read_local(p, n, nofollow=False), detail=detail)
        else:
            yield Entry(rel, None, skip="special_file", detail=detail)


class FileRoot(Root):
    """A single file given as an input: a root holding just that file."""

    kind = "file"

    def __init__(self, uri: str):
        super().__init__(uri)
        self.path = os.path.abspath(uri)

    def entries(self) -> Iterator[Entry]:
        st = os.lstat(self.path)
        if stat.S_ISREG(st.st_mode):
            yield Entry(self.name, st.st_size, lambda n: _read_local(self.path, n))
        else:
            yield Entry(self.name, None, skip="special_file")


def _common_prefix(names: list[str]) -> str:
    """``top/`` when every member sits under one top-level folder (release tarballs), else ``""``."""
    tops = {n.split("/", 1)[0] for n in names if n}
    if len(tops) == 1 and all("/" in n for n in names):
        return next(iter(tops)) + "/"
    return ""


class ZipRoot(Root):
    kind = "zip"

    def __init__(self, uri: str, limits: Limits, exclude: list[str]):
        super().__init__(uri)
        self.limits = limits
        self.exclude = _excluder(exclude)
        try:
            self.zf = zipfile.ZipFile(uri)
            self.infos = self.zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
            raise OSError(f"not a readable zip archive: {e}") from None
        try:
            self._check(os.path.getsize(uri))
        except ArchiveRefused:
            self.zf.close()
            raise

    def _check(self, archive_size: int) -> None:
        lim = self.limits
        files = [i for i in self.infos if not i.is_dir()]
        if len(self.infos) > lim.max_members:
            raise ArchiveRefused("archive_too_many_members", f"{len(self.infos)} entries, over the limit of {lim.max_members}")
        total = sum(i.file_size for i in files)
        if total > lim.max_archive_bytes:
            raise ArchiveRefused("archive_too_large", f"expands to {total:,} bytes, over max_archive_mb ({lim.max_archive_bytes:,} bytes)")
        ratio = total / max(archive_size, 1)
        if total > RATIO_FLOOR_BYTES and ratio > lim.max_ratio:
            raise ArchiveRefused("zip_bomb", f"expands {ratio:,.0f} times its size ({total:,} bytes from {archive_size:,}), over max_compression_ratio {lim.max_ratio:g}")
        # entries sharing compressed data: each local header + data must end before the next starts
        spans = sorted((i.header_offset, i.header_offset + 30 + len(i.orig_filename.encode("utf-8", "replace")) + i.compress_size) for i in self.infos)
        for (a0, a1), (b0, _) in zip(spans, spans[1:]):
            if a1 > b0:
                raise ArchiveRefused("zip_bomb", "entries overlap (several members share compressed data: a non-recursive zip bomb)")

    def close(self) -> None:
        self.zf.close()

    def licence_files(self) -> dict[str, str]:
        names = [i.filename for i in self.infos]
        prefix = _common_prefix(names)
        out = {}
        for i in self.infos:
            rest = i.filename[len(prefix) :] if i.filename.startswith(prefix) else i.filename
            if not i.is_dir() and "/" not in rest and LICENSE_NAMES.match(rest) and i.file_size <= _LICENSE_READ_LIMIT:
                try:
                    out[rest] = self.zf.read(i).decode("utf-8", "replace")
                except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
                    continue
        return out

    def entries(self) -> Iterator[Entry]:
        for info in sorted(self.infos, key=lambda i: i.filename):
            if info.is_dir():
                continue
            rel = safe_member_path(info.filename)
            if rel is None:
                yield Entry(printable(info.filename), info.file_size, skip="unsafe_path")
                continue
            if self.exclude is not None and self.exclude.match_file(rel):
                self.stats["ignored"] += 1
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield Entry(rel, info.file_size, skip="symlink")
            elif stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                yield Entry(rel, info.file_size, skip="special_file")
            elif info.flag_bits & 0x1:
                yield Entry(rel, info.file_size, skip="encrypted")
            else:
                yield Entry(rel, info.file_size, lambda n, i=info: self._read(i, n))

    def _read(self, info: zipfile.ZipInfo, limit: int) -> bytes:
        try:
            with self.zf.open(info) as fh:  # zipfile stops at the declared size and checks the CRC
                return fh.read(limit)
        except Exception as e:  # BadZipFile (bad CRC), zlib.error, unsupported compression
            raise OSError(f"cannot decompress: {type(e).__name__}: {e}") from None


class TarRoot(Root):
    """A tar archive (plain, gzip, bzip2, xz), streamed: one pass to check limits and find the
    licence, one pass to read."""

    kind = "tar"

    def __init__(self, uri: str, limits: Limits, exclude: list[str]):
        super().__init__(uri)
        self.limits = limits
        self.exclude = _excluder(exclude)
        self._licences: dict[str, str] = {}
        self._corrupt: str | None = None
        self._survey(os.path.getsize(uri))

    def _open(self):
        try:
            return tarfile.open(self.uri, "r|*")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise OSError(f"not a readable tar archive: {e}") from None

    def _survey(self, archive_size: int) -> None:
        lim = self.limits
        total = count = 0
        candidates: list[tuple[str, bytes]] = []
        names: list[str] = []
        with self._open() as tf:
            try:
                for m in tf:
                    count += 1
                    if count > lim.max_members:
                        raise ArchiveRefused("archive_too_many_members", f"more than {lim.max_members} entries")
                    if m.isreg():
                        total += m.size
                        if total > lim.max_archive_bytes:
                            raise ArchiveRefused("archive_too_large", f"expands beyond max_archive_mb ({lim.max_archive_bytes:,} bytes)")
                    names.append(m.name)
                    base = m.name.rstrip("/").rsplit("/", 1)[-1]
                    if m.isreg() and m.name.count("/") <= 1 and LICENSE_NAMES.match(base) and m.size <= _LICENSE_READ_LIMIT:
                        fh = tf.extractfile(m)
                        if fh is not None:
                            candidates.append((m.name, fh.read()))
            except (tarfile.TarError, EOFError, OSError) as e:
                # truncated or corrupt part-way: the entries before it are still read (entries()
                # stops at the same place and names the problem)
                self._corrupt = f"corrupt tar archive: {e}"
                if not names:
                    raise OSError(self._corrupt) from None
        ratio = total / max(archive_size, 1)
        if total > RATIO_FLOOR_BYTES and ratio > lim.max_ratio:
            raise ArchiveRefused("zip_bomb", f"expands {ratio:,.0f} times its size ({total:,} bytes from {archive_size:,}), over max_compression_ratio {lim.max_ratio:g}")
        prefix = _common_prefix([n for n in names if n])
        for name, data in candidates:
            rest = name[len(prefix) :] if name.startswith(prefix) else name
            if "/" not in rest:
                self._licences[rest] = data.decode("utf-8", "replace")

    def licence_files(self) -> dict[str, str]:
        return dict(self._licences)

    def entries(self) -> Iterator[Entry]:
        # stream order is the archive's own, fixed order: ordinals are stable from run to run
        with self._open() as tf:
            try:
                for m in tf:
                    if m.isdir():
                        continue
                    rel = safe_member_path(m.name)
                    if rel is None:
                        yield Entry(printable(m.name), m.size, skip="unsafe_path")
                        continue
                    if self.exclude is not None and self.exclude.match_file(rel):
                        self.stats["ignored"] += 1
                        continue
                    if m.issym():
                        yield Entry(rel, None, skip="symlink", detail={"symlink_target": m.linkname})
                    elif m.islnk():
                        yield Entry(rel, None, skip="hardlink", detail={"link_target": m.linkname})
                    elif not m.isreg():
                        yield Entry(rel, None, skip="special_file")
                    else:
                        # the consumer reads before asking for the next entry, as streaming requires
                        yield Entry(rel, m.size, lambda n, mm=m: self._read(tf, mm, n))
            except (tarfile.TarError, EOFError) as e:
                raise OSError(f"corrupt tar archive: {e}") from None
        if self._corrupt:
            raise OSError(self._corrupt)

    @staticmethod
    def _read(tf: tarfile.TarFile, m: tarfile.TarInfo, limit: int) -> bytes:
        try:
            fh = tf.extractfile(m)
            return fh.read(limit) if fh is not None else b""
        except (tarfile.TarError, EOFError) as e:  # the archive ends inside this member: it is unreadable
            raise OSError(f"corrupt tar archive: {e}") from None


def open_root(uri: str, limits: Limits, *, exclude: list[str] = (), gitignore: bool = True, follow_symlinks: bool = False) -> Root:
    """The right ``Root`` for a directory, an archive or a single file.

    Raises ``ArchiveRefused`` for an archive over the limits and ``OSError`` for one that cannot be
    read at all."""
    exclude = list(exclude)
    if os.path.isdir(uri):
        return DirectoryRoot(uri, exclude=exclude, gitignore=gitignore, follow_symlinks=follow_symlinks)
    if not os.path.exists(uri):
        raise OSError(f"no such file or directory: {uri}")
    low = uri.lower()
    if low.endswith(ZIP_SUFFIXES):
        return ZipRoot(uri, limits, exclude)
    if low.endswith(TAR_SUFFIXES):
        return TarRoot(uri, limits, exclude)
    return FileRoot(uri)
