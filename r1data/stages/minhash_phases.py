"""The reduce phases of MinHash dedup in its multi form: buckets, then clusters, with files between them.

Both phases read the map phase's work files (``work/<label>/docs/<input>.parquet``: the live
documents of one input shard with their ``minhash`` signature) one file at a time, so a task's
memory grows with its window, never with the corpus:

``buckets`` (one task per window and band group): the band keys of the group's bands and a hash
of the whole signature for every document of the window (8 bytes each per document), sorted per
band; the candidate pairs go to
``work/<label>/buckets/window-<k>-group-<g>.parquet`` as window positions ``(a, b)``.

``clusters`` (one task per window): the union of the window's candidate pairs; the signatures,
ids and keys of only the documents in some pair; verification, connected components, and the
window's decision table ``work/<label>/decisions/window-<k>.parquet``.

A position is a document's rank in its window in input order (input shard, then record), counted
over the work files, which hold each shard's live documents in record order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from r1data.dedup.lsh import band_keys, bucket_pairs, cluster_firsts, signature_hashes, unique_pairs, verify_pairs
from r1data.dedup.windowed import PAIR_SCHEMA, SIGNATURE_COLUMN, band_groups, check_record_order, parse_signatures, write_atomic
from r1data.stages.barrier import DECISION_SCHEMA, BarrierContext, BarrierStage, ReduceStep, write_decisions


def _window_files(ctx: BarrierContext, window: int) -> list[Path]:
    paths = [ctx.docs_path(i) for i in ctx.windows[window]]
    for p in paths:
        if not p.exists():
            raise RuntimeError(f"missing work file {p}: the map phase did not finish (rerun to resume)")
    return paths


def buckets_path(ctx: BarrierContext, window: int, group: int) -> Path:
    return Path(ctx.work_dir) / "buckets" / f"window-{window:05d}-group-{group:03d}.parquet"


class MinhashBuckets(ReduceStep):
    """Reduce phase 1: candidate pairs of one band group of one window (task = window x group)."""

    name = "buckets"

    def __init__(self, stage: BarrierStage):  # the minhash_dedup stage (its lsh and config)
        self.stage = stage

    def groups(self) -> list[range]:
        return band_groups(self.stage.lsh.bands, self.stage.config.band_groups)

    def tasks(self, ctx: BarrierContext) -> int:
        return max(1, len(ctx.windows)) * len(self.groups())

    def run(self, ctx: BarrierContext, rank: int, world_size: int) -> dict[str, Any]:
        groups = self.groups()
        window, g = divmod(rank, len(groups))
        if window >= len(ctx.windows):  # no input at all: one empty task
            return {"window": window, "group": g, "documents": 0, "pairs": 0}
        bands, params = groups[g], self.stage.lsh
        keys, positions, hashes = [], [], []
        offset = 0
        for path in _window_files(ctx, window):
            t = pq.read_table(path, columns=["record_index", SIGNATURE_COLUMN])
            check_record_order(t.column("record_index").to_numpy(), path)
            sigs, valid = parse_signatures(t.column(SIGNATURE_COLUMN), params.permutations, str(path))
            keys.append(band_keys(sigs[valid], params, bands))
            hashes.append(signature_hashes(sigs[valid]))
            positions.append(np.flatnonzero(valid) + offset)
            offset += t.num_rows
            del t, sigs
        k = np.concatenate(keys) if keys else np.empty((0, len(bands)), dtype=np.uint64)
        pos = np.concatenate(positions) if positions else np.empty(0, dtype=np.int64)
        sh = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        del keys, positions, hashes
        pairs = unique_pairs(np.concatenate([bucket_pairs(k[:, j], pos, sh) for j in range(len(bands))]))
        write_atomic(pa.table({"a": pairs[:, 0], "b": pairs[:, 1]}, schema=PAIR_SCHEMA), buckets_path(ctx, window, g))
        return {"window": window, "group": g, "bands": [bands.start, bands.stop], "documents": offset, "pairs": int(len(pairs))}


class MinhashClusters(ReduceStep):
    """Reduce phase 2: verify the window's candidate pairs, cluster them, write its decisions."""

    name = "clusters"

    def __init__(self, stage: BarrierStage, buckets: MinhashBuckets):
        self.stage = stage
        self.buckets = buckets

    def run(self, ctx: BarrierContext, rank: int, world_size: int) -> dict[str, Any]:
        if rank >= len(ctx.windows):
            write_decisions(ctx.decisions_path(rank), DECISION_SCHEMA.empty_table())
            return {"window": rank, "documents": 0}
        params = self.stage.lsh
        parts = []
        for g in range(len(self.buckets.groups())):
            p = buckets_path(ctx, rank, g)
            if not p.exists():
                raise RuntimeError(f"missing bucket file {p}: the buckets phase did not finish (rerun to resume)")
            t = pq.read_table(p)
            parts.append(np.stack((t.column("a").to_numpy(), t.column("b").to_numpy()), axis=1))
        pairs = unique_pairs(np.concatenate(parts)) if parts else np.empty((0, 2), dtype=np.int64)
        nodes = np.unique(pairs.ravel())
        # one pass over the window: signature, id and keys of the documents that are in some pair
        sigs = np.empty((len(nodes), params.permutations), dtype=np.uint32)
        ids = np.empty(len(nodes), dtype=object)
        input_index = np.empty(len(nodes), dtype=np.int32)
        record_index = np.empty(len(nodes), dtype=np.int64)
        offset = 0
        for path in _window_files(ctx, rank):
            n = pq.ParquetFile(path).metadata.num_rows
            lo, hi = np.searchsorted(nodes, [offset, offset + n])
            if hi > lo:
                t = pq.read_table(path, columns=["id", "input_index", "record_index", SIGNATURE_COLUMN])
                check_record_order(t.column("record_index").to_numpy(), path)
                sel = t.take(pa.array(nodes[lo:hi] - offset))
                sigs[lo:hi] = parse_signatures(sel.column(SIGNATURE_COLUMN), params.permutations, str(path))[0]
                ids[lo:hi] = sel.column("id").to_pylist()
                input_index[lo:hi] = sel.column("input_index").to_numpy()
                record_index[lo:hi] = sel.column("record_index").to_numpy()
                del t, sel
            offset += n
        verified = verify_pairs(pairs, lambda pos: sigs[np.searchsorted(nodes, pos)], params)
        removed, kept = cluster_firsts(verified)
        r, k = np.searchsorted(nodes, removed), np.searchsorted(nodes, kept)
        table = pa.table(
            {
                "input_index": pa.array(input_index[r], type=pa.int32()),
                "record_index": pa.array(record_index[r], type=pa.int64()),
                "reason": pa.array(["near_duplicate"] * len(r), type=pa.string()),
                "duplicate_of": pa.array(ids[k].tolist(), type=pa.string()),
            },
            schema=DECISION_SCHEMA,
        )
        write_decisions(ctx.decisions_path(rank), table)
        return {
            "window": rank,
            "documents": offset,
            "candidate_pairs": int(len(pairs)),
            "verified_pairs": int(len(verified)),
            "clusters": int(len(np.unique(kept))),
            "near_duplicates": int(len(removed)),
        }
