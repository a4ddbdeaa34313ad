"""Deduplication stages (barrier stages: see ``r1data.stages.barrier`` for windows and the two forms)."""

from __future__ import annotations

import re
import unicodedata

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field

from r1data.stages.barrier import DECISION_SCHEMA, BarrierConfig, BarrierStage
from r1data.stages.registry import register

_WS = re.compile(r"\s+")


def normalise_for_hash(text: str) -> str:
    """NFKC, lower-case, whitespace collapsed: copies that differ only in spacing or case hash alike."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


class ExactDedupConfig(BarrierConfig):
    normalise: bool = Field(True, description="hash NFKC/lower-cased/whitespace-collapsed text instead of the raw text")


@register
class ExactDedup(BarrierStage):
    """Drop documents whose (normalised) text exactly repeats an earlier document of the same window."""

    name = "exact_dedup"
    Config = ExactDedupConfig
    work_columns = {"exact_hash": "string"}
    batch_size = 1024
    example = """\
- stage: exact_dedup
  window: 0          # or --dedup-window W
"""

    def map_batch(self, docs: list[Document]) -> list[str | None]:
        import xxhash

        out: list[str | None] = []
        for doc in docs:
            text = normalise_for_hash(doc.text) if self.config.normalise else doc.text
            if not text.strip():
                out.append("empty_text")
                continue
            doc.metadata["exact_hash"] = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))
            out.append(None)
        return out

    def decide_window(self, rows: pa.Table) -> pa.Table:
        # rows arrive in input order: the first document with a hash is kept, later ones point to it
        first: dict[str, str] = {}
        inputs, records, dups = [], [], []
        cols = [rows.column(c).to_pylist() for c in ("id", "input_index", "record_index", "exact_hash")]
        for doc_id, i, r, h in zip(*cols):
            if h in first:
                inputs.append(i)
                records.append(r)
                dups.append(first[h])
            else:
                first[h] = doc_id
        n = len(inputs)
        return pa.table({"input_index": inputs, "record_index": records, "reason": ["exact_duplicate"] * n, "duplicate_of": dups}, schema=DECISION_SCHEMA)
