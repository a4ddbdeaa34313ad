"""Resolve a recipe's input patterns to a sorted list of files (the "input shards")."""

from __future__ import annotations

import fnmatch
import glob
import os

from r1data.errors import InputError
from r1data.stages.base import InputFile

_REMOTE = ("s3://", "gs://", "gcs://", "az://", "abfs://", "hf://")
_HTTP = ("http://", "https://")
_SKIP_NAMES = {".DS_Store"}


def _wanted(name: str, patterns, exclude=()) -> bool:
    if any(fnmatch.fnmatch(name, p) for p in exclude):
        return False
    return patterns is None or any(fnmatch.fnmatch(name, p) for p in patterns)


def _local(pattern: str, patterns=None, exclude=(), roots: bool = False) -> list[tuple[str, int | None]]:
    p = os.path.expanduser(pattern)
    if glob.has_magic(p):
        matches = sorted(glob.glob(p, recursive=True))
        files = [m for m in matches if os.path.isfile(m) or (roots and os.path.isdir(m))]
        if not files:
            raise InputError(f"input {pattern}: the pattern matches no file (relative to {os.getcwd()})")
        return [(os.path.abspath(f), os.path.getsize(f) if os.path.isfile(f) else None) for f in files]
    if os.path.isdir(p) and roots:  # the reader walks it (a repository root)
        return [(os.path.abspath(p), None)]
    if os.path.isdir(p):
        out = []
        for root, dirs, names in os.walk(p, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for n in sorted(names):
                if n.startswith(".") or n in _SKIP_NAMES or not _wanted(n, patterns, exclude):
                    continue
                f = os.path.join(root, n)
                if os.path.isfile(f):
                    out.append((os.path.abspath(f), os.path.getsize(f)))
        if not out:
            which = f" matching {', '.join(patterns)}" if patterns else ""
            raise InputError(f"input {pattern}: the directory holds no file{which}")
        return out
    if os.path.isfile(p):
        return [(os.path.abspath(p), os.path.getsize(p))]
    raise InputError(f"input {pattern}: no such file or directory (relative to {os.getcwd()})")


def _remote(pattern: str, patterns=None, exclude=()) -> list[tuple[str, int | None]]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(pattern)
    except (ImportError, ValueError) as e:
        raise InputError(f"input {pattern}: cannot open this kind of URL: {e}") from None
    proto = pattern.split("://", 1)[0]
    try:
        if glob.has_magic(path):
            found = sorted(fs.glob(path, detail=True).items())
            out = [(f"{proto}://{k}", v.get("size")) for k, v in found if v.get("type") != "directory"]
        elif fs.isdir(path):
            found = sorted(fs.find(path, detail=True).items())
            out = [(f"{proto}://{k}", v.get("size")) for k, v in found if _wanted(k.rsplit("/", 1)[-1], patterns, exclude)]
        else:
            info = fs.info(path)
            out = [(pattern, info.get("size"))]
    except FileNotFoundError:
        raise InputError(f"input {pattern}: not found") from None
    except Exception as e:  # credentials, network
        raise InputError(f"input {pattern}: cannot list: {type(e).__name__}: {e}") from None
    if not out:
        raise InputError(f"input {pattern}: matches no file")
    return out


def resolve_inputs(
    patterns: list[str],
    file_patterns: tuple[str, ...] | None = None,
    *,
    exclude_patterns: tuple[str, ...] = (),
    roots: bool = False,
) -> list[InputFile]:
    """Expand every pattern; the union is sorted by path and numbered (input_index).

    Directories expand to the files under them that match ``file_patterns`` and no
    ``exclude_patterns`` (the reader's); explicit files and globs are taken as given. With
    ``roots`` (readers that walk repositories themselves), a local directory, or a directory a
    glob matches, is one input of its own (size None).

    Local paths are made absolute; URLs over HTTP(S) are taken as single files (size from the
    server when it says). Raises ``InputError`` naming the first pattern that matches nothing.
    """
    found: dict[str, int | None] = {}
    for pattern in patterns:
        if pattern.startswith(_HTTP):
            found.setdefault(pattern, None)
        elif pattern.startswith(_REMOTE) or "://" in pattern:
            for uri, size in _remote(pattern, file_patterns, exclude_patterns):
                found.setdefault(uri, size)
        else:
            for uri, size in _local(pattern, file_patterns, exclude_patterns, roots):
                found.setdefault(uri, size)
    return [InputFile(index=i, uri=uri, size=found[uri]) for i, uri in enumerate(sorted(found))]
