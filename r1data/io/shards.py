"""Write and read r1data Parquet shards (zstd, bounded row groups, atomic on close)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document

from r1data.io.schema import META_COLUMN, docs_to_table

DEFAULT_ROW_GROUP_ROWS = 2048
DEFAULT_ROW_GROUP_BYTES = 64 * 2**20


class ShardWriter:
    """Buffer documents and write them as one Parquet file.

    Rows are flushed as a row group every ``row_group_rows`` documents or ``row_group_bytes`` of
    text, whichever comes first, so readers can stream a shard in bounded memory. The file is
    written under a temporary name and renamed on ``close``: a killed task never leaves a
    half-written shard that looks finished.
    """

    def __init__(
        self,
        path: str | Path,
        schema: pa.Schema,
        *,
        rejected: bool = False,
        row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
        compression: str = "zstd",
        compression_level: int | None = 3,
    ):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.schema = schema
        self.rejected = rejected
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self.compression = compression
        self.compression_level = compression_level
        self._buf: list[Document] = []
        self._buf_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(
                self.tmp,
                self.schema,
                compression=self.compression,
                compression_level=self.compression_level,
                write_statistics=True,
            )
        return self._writer

    def write(self, doc: Document) -> None:
        self._buf.append(doc)
        self._buf_bytes += len(doc.text) if isinstance(doc.text, str) else 0
        if len(self._buf) >= self.row_group_rows or self._buf_bytes >= self.row_group_bytes:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        table = docs_to_table(self._buf, self.schema, rejected=self.rejected)
        self._open().write_table(table, row_group_size=len(self._buf))
        self.rows += len(self._buf)
        self._buf, self._buf_bytes = [], 0

    def close(self) -> int:
        """Write what is buffered, close the file and move it into place; returns the row count."""
        self.flush()
        self._open().close()  # an empty shard still gets a file with the schema
        os.replace(self.tmp, self.path)
        self._writer = None
        return self.rows

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        self.tmp.unlink(missing_ok=True)


def row_to_document(row: dict) -> Document:
    """Inverse of ``docs_to_table`` for one row: columns and decoded ``meta`` become metadata."""
    row = dict(row)
    doc_id = row.pop("id")
    text = row.pop("text")
    meta = row.pop(META_COLUMN[0], None)
    metadata = {k: v for k, v in row.items() if v is not None}
    if meta:
        metadata.update(json.loads(meta))
    return Document(text=text, id=doc_id, metadata=metadata)


def iter_documents(path: str | Path, columns: list[str] | None = None, batch_rows: int = 1024) -> Iterator[Document]:
    """Stream the documents of one shard, one record batch at a time."""
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
        for row in batch.to_pylist():
            yield row_to_document(row)


def parquet_rows(path: str | Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows
