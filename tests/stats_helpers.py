"""Build small, fully known r1data output directories for the stats tests.

The files are written by r1data's own ``ShardWriter`` with the real shard and rejected schemas,
and the manifest by ``describe_outputs``; only the documents and the decisions are synthetic, so
every count the tests expect is known exactly. ``make_run(path, threshold=0.7)`` routes
documents the way a pipeline with language ID, a quality filter and two dedup stages would.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from datatrove.data import Document

from r1data.io.schema import rejected_schema, shard_schema
from r1data.io.shards import ShardWriter
from r1data.run.manifest import describe_outputs
from r1data.stages.base import reject

STAGE_COLUMNS = {
    "lang": "string",
    "lang_score": "float32",
    "ppl": "float32",
    "ppl_score": "float32",
    "quality_clf_score": "float32",
    "domain": "string",
}
# (label, registered name): the pipeline order the manifest records
STAGES = [
    ("warc_reader", "warc_reader"),
    ("language_id", "language_id"),
    ("english_only", "language_filter"),
    ("quality", "quality_filter"),
    ("exact_dedup", "exact_dedup"),
    ("near_dedup", "minhash_dedup"),
]
HOSTS = ["docs.python.org", "www.example.com", "blog.example.org", "EXAMPLE.com"]
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def make_documents(n: int = 120, seed: int = 7) -> list[Document]:
    """Documents with every stage column set, some exact copies and some near copies."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        words = rng.randint(3, 400)
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        if i % 17 == 5:
            text += " naïve café 日本語"  # multi-byte characters: bytes != characters
        lang = rng.choice(["en"] * 6 + ["de", "fr"])
        meta = {
            "source": "web" if i % 5 else "books",
            "url": f"https://{HOSTS[i % len(HOSTS)]}/page/{i}?utm_source=x" if i % 5 else None,
            "path": None if i % 5 else f"books/book-{i}.txt",
            "date": "2024-01-0" + str(1 + i % 9),
            "input_file": f"input-{i % 3}.warc.gz",
            "input_index": i % 3,
            "record_index": i // 3,
            "lang": lang,
            "lang_score": round(rng.uniform(0.3, 1.0), 4),
            "ppl": round(rng.lognormvariate(6, 0.5), 2),
            "ppl_score": round(rng.random(), 4),
            "quality_clf_score": round(rng.random(), 4),
            "domain": rng.choice(["general", "general", "code", "math"]),
            "charset": "utf-8",
        }
        docs.append(Document(text=text, id=f"doc-{i:04d}", metadata=meta))
    # exact and near copies of documents good enough to pass every filter, as dedup would see them
    good = [d for d in docs if d.metadata["lang"] == "en" and d.metadata["lang_score"] >= 0.4
            and min(d.metadata["ppl_score"], d.metadata["quality_clf_score"]) >= 0.7]
    assert len(good) >= 2, "too few documents to make duplicates of"
    for j, src in enumerate(good[i % len(good)] for i in (0, 1, 1, 2)):
        docs.append(Document(text=src.text, id=f"exact-{j}", metadata=dict(src.metadata, record_index=1000 + j, _dup_of=src.id)))
    for j, src in enumerate(good[i % len(good)] for i in (3, 4, 4, 4, 1)):
        docs.append(Document(text=src.text + " extra", id=f"near-{j}", metadata=dict(src.metadata, record_index=2000 + j, _dup_of=src.id)))
    return docs


def decide(docs: list[Document], threshold: float) -> None:
    """Mark documents rejected in pipeline order, as the stages would (threshold at most 0.7)."""
    for d in docs:
        m = d.metadata
        if m["lang"] != "en":
            reject(d, "english_only", "language_not_allowed")
        elif m["lang_score"] < 0.4:
            reject(d, "english_only", "language_score_too_low")
        elif min(m["ppl_score"], m["quality_clf_score"]) < threshold:
            reason = "ppl_score_below_threshold" if m["ppl_score"] < threshold else "quality_clf_score_below_threshold"
            reject(d, "quality", reason)
        elif d.id.startswith("exact-"):
            reject(d, "exact_dedup", "exact_duplicate", duplicate_of=m["_dup_of"])
        elif d.id.startswith("near-"):
            reject(d, "near_dedup", "near_duplicate", duplicate_of=m["_dup_of"])


def make_run(out: Path, threshold: float = 0.3, tasks: int = 3, n: int = 120, stage_columns: dict | None = None) -> Path:
    """Write ``out/shards``, ``out/rejected``, ``out/manifest.json`` and ``out/stats`` for ``n`` documents."""
    cols = STAGE_COLUMNS if stage_columns is None else stage_columns
    docs = make_documents(n)
    decide(docs, threshold)
    for d in docs:  # columns the run does not have go to meta, as the sink would do
        for c in STAGE_COLUMNS:
            if c not in cols:
                d.metadata.pop(c, None)
    read = kept = rejected = 0
    for rank in range(tasks):
        part = docs[rank::tasks]
        kw = ShardWriter(out / "shards" / f"part-{rank:05d}.parquet", shard_schema(cols), row_group_rows=16)
        rw = ShardWriter(out / "rejected" / f"part-{rank:05d}.parquet", rejected_schema(cols), rejected=True, row_group_rows=16)
        funnel: dict = {}
        for d in part:
            if "_rejected" in d.metadata:
                rw.write(d)
                funnel[d.metadata["_rejected"]] = funnel.get(d.metadata["_rejected"], 0) + 1
            else:
                kw.write(d)
        k, r = kw.close(), rw.close()
        read, kept, rejected = read + len(part), kept + k, rejected + r
        (out / "stats").mkdir(parents=True, exist_ok=True)
        steps = [{"name": f"reader: {STAGES[0][0]}", "time_stats": 0, "stats": {}}] + [
            {"name": f"filter: {label}", "time_stats": {"total": 0.5 + i, "n": len(part)}, "stats": {}} for i, (label, _) in enumerate(STAGES[1:])
        ]
        report = {"rank": rank, "read": len(part), "kept": k, "rejected": r,
                  "funnel": [{"stage": s, "reason": x, "count": c} for (s, x), c in sorted(funnel.items())],
                  "input_files": [], "input_errors": []}
        (out / "stats" / f"{rank:05d}.json").write_text(json.dumps({"r1data": report, "datatrove": steps}))
    manifest = {
        "r1data_manifest": 1,
        "pipeline": "synthetic",
        "config": {
            "name": "synthetic",
            "stages": [{"stage": name, "name": label} | ({"threshold": threshold} if name == "quality_filter" else {}) for label, name in STAGES],
            "output": {"path": str(out)},
        },
        "config_hash": f"hash-{threshold}",
        "knobs": {"filter_threshold": threshold, "applied_to": {}},
        "counts": {"read": read, "kept": kept, "rejected": rejected},
        "input_errors": [],
        "outputs": {"shards": describe_outputs(out, "shards"), "rejected": describe_outputs(out, "rejected")},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out
