"""Find r1data text shards and stream their ``text`` column (pyarrow only)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from r1data.errors import InputError


def find_parquet(inputs: list[str] | str, what: str = "text shards") -> list[Path]:
    """Resolve folders, files and glob patterns to a sorted list of Parquet files.

    A pipeline's output folder works as is: ``OUT`` means ``OUT/shards/*.parquet`` (never ``rejected/``).
    """
    if isinstance(inputs, (str, Path)):
        inputs = [str(inputs)]
    files: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            base = p / "shards" if (p / "shards").is_dir() else p
            found = sorted(base.glob("*.parquet"))
            if not found:
                raise InputError(f"{item}: no .parquet files in this folder")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif any(c in item for c in "*?["):
            found = sorted(Path(x) for x in glob.glob(str(p)))
            if not found:
                raise InputError(f"{item}: pattern matches no file")
            files.extend(found)
        else:
            raise InputError(f"{item}: no such file or folder")
    if not files:
        raise InputError(f"no {what} given")
    seen, out = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def check_columns(path: Path, columns: list[str]) -> pq.ParquetFile:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None
    names = pf.schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(names)})")
    return pf


def iter_text_batches(files: list[Path], columns: list[str], batch_rows: int = 1024) -> Iterator[tuple[Path, dict]]:
    """Yield ``(file, {column: list})`` batches; null texts become empty strings."""
    for f in files:
        pf = check_columns(f, columns)
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            cols = {c: batch.column(c).to_pylist() for c in columns}
            if "text" in cols:
                cols["text"] = [t or "" for t in cols["text"]]
            yield f, cols
