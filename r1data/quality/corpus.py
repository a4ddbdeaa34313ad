"""Documents from files, for building, training and calibrating models.

One reader for every command that takes text (``--corpus``, ``--positive``, ``--negative``,
``--sample``), so they all accept the same inputs:

- ``*.parquet``: the ``text`` column (so r1data's own output shards are a calibration sample);
- ``*.jsonl``, ``*.json``, ``*.ndjson`` (optionally ``.gz``/``.bz2``/``.zst``): the ``text`` field
  of each line;
- anything else (``*.txt``, ``*.txt.gz``, ...): **one document per line**, as fastText training
  files are written;
- a directory: every such file under it, in sorted order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from r1data.errors import ConfigError
from r1data.paths import resolve_path, sha256_file

_JSONL = (".jsonl", ".json", ".ndjson")
_COMPRESSED = (".gz", ".bz2", ".zst", ".xz")


def _kind(path: Path) -> str:
    name = path.name.lower()
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(_JSONL):
        return "jsonl"
    return "lines"


def expand_paths(paths: list[str | os.PathLike], what: str = "corpus") -> list[Path]:
    """Files named by ``paths`` (directories expanded, sorted); ``ConfigError`` naming a missing one."""
    out: list[Path] = []
    missing = []
    for raw in paths:
        p = resolve_path(raw)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            if not files:
                missing.append(f"{what}: directory {p} holds no files")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            missing.append(f"{what}: file not found: {p}")
    if missing:
        raise ConfigError(missing)
    if not out:
        raise ConfigError(f"{what}: no input files given")
    return out


def _open_text(path: Path):
    import smart_open

    return smart_open.open(str(path), "rt", encoding="utf-8", errors="replace")


def iter_file(path: Path, text_field: str = "text") -> Iterator[str]:
    """The documents of one file (see the module docstring for formats)."""
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        if text_field not in pf.schema_arrow.names:
            raise ConfigError(f"{path}: no column {text_field!r} (columns: {', '.join(pf.schema_arrow.names)})")
        for batch in pf.iter_batches(columns=[text_field], batch_size=2048):
            for text in batch.column(0).to_pylist():
                if isinstance(text, str):
                    yield text
        return
    with _open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if kind == "lines":
                line = line.rstrip("\n")
                if line.strip():
                    yield line
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: not JSON ({e.msg}); JSON Lines files hold one object per line") from None
            text = row.get(text_field) if isinstance(row, dict) else None
            if isinstance(text, str):
                yield text


@dataclass
class CorpusFile:
    """What a model card records about one input file."""

    path: str
    sha256: str
    bytes: int
    documents: int = 0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes, "documents": self.documents, **self.extra}


def display_path(p: Path) -> str:
    """A path relative to the working directory when it is inside it (model cards stay portable)."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


class Corpus:
    """Documents of several files, with per-file provenance collected while reading.

    >>> c = Corpus(["data/reference/books.jsonl.gz"])
    >>> for text in c: ...
    >>> c.describe()   # [{"path", "sha256", "bytes", "documents"}, ...]
    """

    def __init__(self, paths: list[str | os.PathLike], what: str = "corpus", text_field: str = "text", limit: int | None = None):
        self.files = expand_paths(paths, what)
        self.text_field = text_field
        self.limit = limit
        self._records: list[CorpusFile] = []

    def __iter__(self) -> Iterator[str]:
        self._records = []
        n_total = 0
        for f in self.files:
            rec = CorpusFile(path=display_path(f), sha256=sha256_file(f), bytes=f.stat().st_size)
            self._records.append(rec)
            for text in iter_file(f, self.text_field):
                if self.limit is not None and n_total >= self.limit:
                    return
                rec.documents += 1
                n_total += 1
                yield text

    def describe(self) -> list[dict]:
        return [r.as_dict() for r in self._records]


def read_texts(paths: list[str | os.PathLike], what: str = "corpus", limit: int | None = None) -> tuple[list[str], list[dict]]:
    """All documents of ``paths`` and the provenance of each file."""
    c = Corpus(paths, what, limit=limit)
    texts = list(c)
    if not texts:
        raise ConfigError(f"{what}: {', '.join(map(str, c.files))} hold no documents")
    return texts, c.describe()
