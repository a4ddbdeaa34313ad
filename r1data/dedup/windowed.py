"""MinHash signatures in Parquet work files, read for windowed near-dedup (numpy, no stage machinery).

The reduce phases that use these (``buckets``, ``clusters``) are stage machinery and live in
``r1data.stages.minhash_phases``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from r1data.dedup.minhash import MAX_VALUE

PAIR_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])
SIGNATURE_COLUMN = "minhash"


def parse_signatures(column: pa.Array | pa.ChunkedArray, permutations: int, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(signatures (n, permutations) uint32, valid (n,) bool)`` from a binary signature column.

    ``valid`` is False for documents without any word (their signature is all 0xFFFFFFFF)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    n = len(column)
    if n == 0:
        return np.empty((0, permutations), dtype=np.uint32), np.empty(0, dtype=bool)
    if column.null_count:
        raise RuntimeError(f"{where}: {column.null_count} documents have no {SIGNATURE_COLUMN} signature (work files of another run?)")
    _, offsets_buf, data_buf = column.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=column.offset * 4)
    width = permutations * 4
    if not np.all(np.diff(offsets) == width):
        raise RuntimeError(f"{where}: signatures are not {permutations} values long (work files of another configuration?); rerun with --overwrite")
    raw = np.frombuffer(data_buf, dtype=np.uint8, count=offsets[-1] - offsets[0], offset=int(offsets[0]))
    sigs = raw.view(np.uint32).reshape(n, permutations) if raw.ctypes.data % 4 == 0 else raw.copy().view(np.uint32).reshape(n, permutations)
    valid = ~np.all(sigs == MAX_VALUE, axis=1)
    return sigs, valid


def band_groups(bands: int, groups: int) -> list[range]:
    """Contiguous, near-equal groups of band indexes (at most ``bands`` groups)."""
    groups = max(1, min(groups, bands))
    edges = np.linspace(0, bands, groups + 1).round().astype(int)
    return [range(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


def check_record_order(record_index: np.ndarray, path: Path) -> None:
    if len(record_index) > 1 and np.any(np.diff(record_index) <= 0):
        raise RuntimeError(f"{path}: documents are not in record order; the work files are damaged (rerun with --overwrite)")


def write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
