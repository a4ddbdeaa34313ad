"""``line_dedup``: CCNet-style exact dedup of lines (paragraphs) within a dedup window.

A barrier stage like ``exact_dedup`` (see ``r1data.stages.barrier``), but its decisions edit
documents instead of dropping them: the map step stores one 64-bit hash per line
(``r1data.dedup.lines``), the decide step finds the repeated lines of the window and writes, per
document that loses any, the indexes of its lines to drop; the apply step removes those lines, and
rejects a document left with fewer than ``min_words`` words (``line_dedup_too_short``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.data import Document
from pydantic import Field

from r1data.stages.barrier import DECISION_SCHEMA, BarrierConfig, BarrierContext, BarrierStage, Decisions, ReduceStep, write_decisions
from r1data.stages.base import reject
from r1data.stages.registry import register

HASH_COLUMN = "line_hashes"
LINE_DECISION_SCHEMA = pa.schema(list(DECISION_SCHEMA) + [pa.field("drop_lines", pa.list_(pa.int32()))])
TOO_SHORT = "line_dedup_too_short"


class LineDedupConfig(BarrierConfig):
    keep: Literal["first", "none"] = Field(
        "first", description="first: keep the first occurrence of a line in the window, drop the later ones; none: drop every line that occurs more than once"
    )
    min_line_chars: int = Field(1, ge=1, description="lines whose normalised form is shorter than this are never dropped")
    min_words: int = Field(50, ge=0, description="a document that lost lines and has fewer words left is rejected (line_dedup_too_short)")


def hashes_of_column(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """``(flat uint64 hashes, lines per document)`` from a binary ``line_hashes`` column."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    flats, counts = [], []
    for ch in chunks:
        n = len(ch)
        if n == 0:
            continue
        if ch.null_count:
            raise RuntimeError(f"{ch.null_count} documents have no {HASH_COLUMN} (work files of another run?); rerun with --overwrite")
        _, off_buf, data_buf = ch.buffers()
        offsets = np.frombuffer(off_buf, dtype=np.int32, count=n + 1, offset=ch.offset * 4).astype(np.int64)
        lengths = np.diff(offsets)
        if np.any(lengths % 8):
            raise RuntimeError(f"{HASH_COLUMN} values are not 8-byte hashes (work files of another run?); rerun with --overwrite")
        raw = np.frombuffer(data_buf, dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0]))
        flats.append(raw.copy().view(np.uint64) if raw.size else np.empty(0, dtype=np.uint64))
        counts.append(lengths // 8)
    if not flats:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    return np.concatenate(flats), np.concatenate(counts)


@register
class LineDedup(BarrierStage):
    """Drop lines (paragraphs) that repeat a line of an earlier document of the same window (site navigation, cookie banners, footers)."""

    name = "line_dedup"
    Config = LineDedupConfig
    columns = {"lines_removed": "int32", "chars_removed": "int64"}
    work_columns = {HASH_COLUMN: "binary"}
    decision_schema = LINE_DECISION_SCHEMA
    batch_size = 1024
    example = """\
- stage: line_dedup
  keep: first          # first occurrence in the window stays; none: drop every repeated line
  min_line_chars: 1    # shorter normalised lines are never dropped
  min_words: 50        # a page left with fewer words is rejected (line_dedup_too_short)
  window: 0            # or --dedup-window W
"""

    # -- map -------------------------------------------------------------------------------------
    def map_batch(self, docs: list[Document]) -> list[str | None]:
        from r1data.dedup.lines import line_hashes

        mn = self.config.min_line_chars
        for doc in docs:
            doc.metadata[HASH_COLUMN] = line_hashes(doc.text if isinstance(doc.text, str) else "", mn).tobytes()
        return [None] * len(docs)

    # -- decide ----------------------------------------------------------------------------------
    def decide_arrays(self, inputs: np.ndarray, records: np.ndarray, hashes: np.ndarray, counts: np.ndarray) -> pa.Table:
        """The window's decision table from its documents (in window order) and their line hashes."""
        from r1data.dedup.lines import duplicate_lines, group_by_document

        drop = duplicate_lines(hashes, self.config.keep)
        docs, lines = group_by_document(drop, counts)
        offsets = np.zeros(len(lines) + 1, dtype=np.int32)
        if lines:
            np.cumsum([len(x) for x in lines], out=offsets[1:])
        values = np.concatenate(lines).astype(np.int32) if lines else np.empty(0, dtype=np.int32)
        n = len(docs)
        return pa.table(
            {
                "input_index": pa.array(inputs[docs], type=pa.int32()),
                "record_index": pa.array(records[docs], type=pa.int64()),
                "reason": pa.nulls(n, type=pa.string()),
                "duplicate_of": pa.nulls(n, type=pa.string()),
                "drop_lines": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            },
            schema=LINE_DECISION_SCHEMA,
        )

    def decide_window(self, rows: pa.Table) -> pa.Table:
        hashes, counts = hashes_of_column(rows.column(HASH_COLUMN))
        inputs = rows.column("input_index").to_numpy()
        records = rows.column("record_index").to_numpy()
        return self.decide_arrays(inputs, records, hashes, counts)

    def reduce_steps(self) -> list[ReduceStep]:
        return [LineDecisions(self)]

    # -- apply -----------------------------------------------------------------------------------
    def read_decisions(self, table: pa.Table) -> Decisions:
        col = table.column("drop_lines").combine_chunks() if table.num_rows else pa.array([], type=pa.list_(pa.int32()))
        values = col.flatten().to_numpy(zero_copy_only=False)
        offsets = col.offsets.to_numpy()
        keys = zip(table.column("input_index").to_pylist(), table.column("record_index").to_pylist())
        return {k: values[offsets[j] - offsets[0] : offsets[j + 1] - offsets[0]] for j, k in enumerate(keys)}

    def apply(self, doc: Document, decisions: Decisions) -> None:
        from r1data.dedup.lines import drop_lines

        drop = decisions.get((doc.metadata["input_index"], doc.metadata["record_index"]))
        self.strip_work(doc)
        if drop is None or len(drop) == 0:
            doc.metadata["lines_removed"] = 0
            doc.metadata["chars_removed"] = 0
            self.stat_update("forwarded")
            return
        text = doc.text
        new = drop_lines(text, drop.tolist())
        doc.metadata["lines_removed"] = int(len(drop))
        doc.metadata["chars_removed"] = len(text) - len(new)
        self.stat_update("lines_removed", value=int(len(drop)))
        self.stat_update("chars_removed", value=len(text) - len(new))
        mw = self.config.min_words
        if len(new.split(None, mw)) < mw:  # fewer than mw words (splits at most mw times)
            reject(doc, self.label, TOO_SHORT)  # the row keeps the original text, to show what was lost
            self.stat_update("dropped", f"dropped_{TOO_SHORT}")
        else:
            doc.text = new
            self.stat_update("forwarded", "edited")


class LineDecisions(ReduceStep):
    """(multi form) One task per window: the line hashes of its work files, file by file, then the decisions."""

    name = "decide"

    def __init__(self, stage: LineDedup):
        self.stage = stage

    def run(self, ctx: BarrierContext, rank: int, world_size: int) -> dict[str, Any]:
        inputs, records, hashes, counts = [], [], [], []
        for i in ctx.windows[rank]:
            p = ctx.docs_path(i)
            if not p.exists():
                raise RuntimeError(f"missing work file {p}: the map phase did not finish (rerun to resume)")
            t = pq.read_table(p, columns=["input_index", "record_index", HASH_COLUMN])
            rec = t.column("record_index").to_numpy()
            if rec.size > 1 and np.any(rec[1:] < rec[:-1]):
                t = t.sort_by("record_index")
                rec = t.column("record_index").to_numpy()
            h, c = hashes_of_column(t.column(HASH_COLUMN))
            inputs.append(t.column("input_index").to_numpy())
            records.append(rec)
            hashes.append(h)
            counts.append(c)
            del t
        cat = lambda xs, dt: np.concatenate(xs) if xs else np.empty(0, dtype=dt)  # noqa: E731
        hashes_all = cat(hashes, np.uint64)
        decisions = self.stage.decide_arrays(cat(inputs, np.int32), cat(records, np.int64), hashes_all, cat(counts, np.int64))
        write_decisions(ctx.decisions_path(rank), decisions, LINE_DECISION_SCHEMA)
        n_drop = int(pc.sum(pc.list_value_length(decisions.column("drop_lines"))).as_py() or 0)
        return {
            "window": rank, "documents": int(sum(len(x) for x in inputs)), "lines": int(hashes_all.size), "decided": decisions.num_rows,
            "lines_dropped": n_drop, "outputs": [[str(ctx.decisions_path(rank)), decisions.num_rows]],
        }
