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
