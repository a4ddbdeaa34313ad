"""Deduplication stages (barrier stages: see ``r1data.stages.barrier`` for windows and the two forms)."""

from __future__ import annotations

import re
import unicodedata

import pyarrow as pa
from datatrove.data import Document
from pydantic import Field, model_validator

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


class MinhashDedupConfig(BarrierConfig):
    ngram: int = Field(5, ge=1, le=32, description="words per shingle (word n-gram size)")
    permutations: int = Field(112, ge=2, le=1024, description="MinHash permutations: signature length (4 bytes each)")
    threshold: float = Field(0.8, gt=0.0, lt=1.0, description="Jaccard similarity above which two documents are near duplicates")
    bands: int | None = Field(None, ge=1, description="LSH bands; default: chosen from threshold and permutations (set with rows)")
    rows: int | None = Field(None, ge=1, description="signature values per band; default: chosen with bands")
    weights: tuple[float, float] = Field(
        (0.5, 0.5),
        description="(false positive, false negative) weights of the detection curve (LSH, then verification) when bands x rows are chosen",
    )
    seed: int = Field(1, ge=0, description="seed of the permutations; compare only signatures made with the same seed")
    verify: bool = Field(True, description="keep an LSH candidate pair only if its signatures agree on >= threshold of the values")
    band_groups: int = Field(3, ge=1, description="multi form: bucket tasks per window, each over a group of bands")

    @model_validator(mode="after")
    def _bands_rows(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither (then they are chosen from threshold)")
        if self.bands is not None and self.bands * self.rows > self.permutations:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds permutations = {self.permutations}")
        if min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError("weights must be two non-negative numbers, not both 0")
        return self


@register
class MinhashDedup(BarrierStage):
    """Drop near duplicates (MinHash LSH over word n-grams) of an earlier document of the same window."""

    name = "minhash_dedup"
    Config = MinhashDedupConfig
    work_columns = {"minhash": "binary"}
    batch_size = 256
    requires = {"scipy": "dedup"}
    example = """\
- stage: minhash_dedup
  threshold: 0.8     # Jaccard similarity of word 5-gram sets
  ngram: 5
  permutations: 112  # bands x rows are chosen from the threshold (14 x 8), or set bands/rows
  window: 0          # or --dedup-window W: compare within W consecutive input shards
"""

    def __init__(self, config: MinhashDedupConfig | None = None, label: str | None = None):
        super().__init__(config, label)
        from r1data.dedup.lsh import LshParams

        c = self.config
        if c.bands is not None:
            self.lsh = LshParams(permutations=c.permutations, bands=c.bands, rows=c.rows, threshold=c.threshold, verify=c.verify)
        else:
            self.lsh = LshParams.for_threshold(c.threshold, c.permutations, verify=c.verify, weights=c.weights)

    def describe(self) -> dict:
        d = super().describe()
        d["lsh"] = {"bands": self.lsh.bands, "rows": self.lsh.rows}
        return d

    def setup(self) -> None:
        from r1data.dedup.minhash import MinHasher

        self._hasher = MinHasher(permutations=self.config.permutations, ngram=self.config.ngram, seed=self.config.seed)

    def map_batch(self, docs: list[Document]) -> list[str | None]:
        sigs, _ = self._hasher.signatures([d.text if isinstance(d.text, str) else "" for d in docs])
        for doc, sig in zip(docs, sigs):
            doc.metadata["minhash"] = sig.tobytes()
        return [None] * len(docs)

    def decide_window(self, rows: pa.Table) -> pa.Table:
        from r1data.dedup.lsh import near_duplicates
        from r1data.dedup.windowed import parse_signatures

        rows = rows.sort_by([("input_index", "ascending"), ("record_index", "ascending")])
        sigs, valid = parse_signatures(rows.column("minhash"), self.config.permutations, self.label)
        removed, kept = near_duplicates(sigs, self.lsh, valid)
        ids = rows.column("id").take(pa.array(kept))
        return pa.table(
            {
                "input_index": rows.column("input_index").take(pa.array(removed)),
                "record_index": rows.column("record_index").take(pa.array(removed)),
                "reason": pa.array(["near_duplicate"] * len(removed), type=pa.string()),
                "duplicate_of": ids,
            },
            schema=DECISION_SCHEMA,
        )

    def reduce_steps(self):
        from r1data.stages.minhash_phases import MinhashBuckets, MinhashClusters

        buckets = MinhashBuckets(self)
        return [buckets, MinhashClusters(self, buckets)]
