"""Where r1data finds the files a recipe names by relative path (models, rule sets)."""

from __future__ import annotations

import os
from pathlib import Path

#: the checkout r1data runs from (holds models/, filters/, pipelines/ next to the package)
REPO_ROOT = Path(__file__).resolve().parents[1]


def search_dirs() -> list[Path]:
    dirs = [Path.cwd()]
    home = os.environ.get("R1DATA_HOME")
    if home:
        dirs.append(Path(home))
    dirs.append(REPO_ROOT)
    return dirs


def resolve_path(path: str | os.PathLike) -> Path:
    """An absolute path as is; a relative one against the working directory, $R1DATA_HOME, then the checkout.

    Returns the first candidate that exists, else the working-directory candidate (so error
    messages name the path the user would expect)."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    for d in search_dirs():
        if (d / p).exists():
            return d / p
    return Path.cwd() / p


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def escape_surrogates(s: str) -> str:
    """A string safe to write as UTF-8 (Arrow, JSON), made from one that may hold undecodable bytes.

    File names that are not UTF-8 reach Python as lone surrogates (``surrogateescape``:
    ``b"bad\\xff.py"`` -> ``"bad\\udcff.py"``), which Arrow refuses. Such a string is written with each
    undecodable byte percent-encoded and ``%`` itself as ``%25`` (``bad%FF.py``), so
    ``urllib.parse.unquote_to_bytes`` gives the original bytes back. Strings that are valid UTF-8
    are returned unchanged (the common case costs one ``encode``)."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    raw = s.encode("utf-8", "surrogateescape") if _only_escapes(s) else s.encode("utf-8", "surrogatepass")
    out: list[str] = []
    i = 0
    while i < len(raw):
        # the longest valid UTF-8 run from i, then one undecodable byte
        try:
            out.append(raw[i:].decode("utf-8").replace("%", "%25"))
            break
        except UnicodeDecodeError as e:
            out.append(raw[i : i + e.start].decode("utf-8").replace("%", "%25"))
            bad_end = i + e.end
            out.extend(f"%{b:02X}" for b in raw[i + e.start : bad_end])
            i = bad_end
    return "".join(out)


def _only_escapes(s: str) -> bool:
    """True when every surrogate in ``s`` is a ``surrogateescape`` byte (U+DC80..U+DCFF)."""
    return all(not ("\ud800" <= ch <= "\udfff") or "\udc80" <= ch <= "\udcff" for ch in s)
