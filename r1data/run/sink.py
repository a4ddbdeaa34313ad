"""The last step of every task: route kept documents to shards and rejected ones to ``rejected/``."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from r1data.io.schema import rejected_schema, shard_schema
from r1data.io.shards import ShardWriter
from r1data.stages.base import GENERATED_KEY, ReaderStage, rejection, scrub_row


class TaskSink(PipelineStep):
    """Write one task's kept and rejected documents and count them.

    ``kept_name``/``rejected_name`` are file names with ``{rank}`` (zero-padded to 5) in them. After
    the run ``report`` holds the task's counts; the executor stores it in ``stats/``. ``kept_dir``
    may be None for a phase whose kept documents are written elsewhere (none yet).
    """

    type = "r1data"
    name = "sink"

    def __init__(
        self,
        out_dir: str | Path,
        stage_columns: dict[str, str],
        *,
        kept_dir: str = "shards",
        rejected_dir: str = "rejected",
        kept_name: str = "part-{rank}.parquet",
        rejected_name: str = "part-{rank}.parquet",
        row_group_rows: int = 2048,
        compression: str = "zstd",
        reader: ReaderStage | None = None,
        scrub: list[Callable[[Document], None]] | None = None,
    ):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.stage_columns = dict(stage_columns)
        self.kept_dir, self.rejected_dir = kept_dir, rejected_dir
        self.kept_name, self.rejected_name = kept_name, rejected_name
        self.row_group_rows = row_group_rows
        self.compression = None if compression == "none" else compression
        self.reader = reader
        # the recipe's redactors (secret_redaction's scrub): every row passes them before it is written,
        # so a document rejected before the redaction stage is redacted all the same
        self.scrub = list(scrub or ())
        self.report: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "sink"

    def _writer(self, sub: str, name: str, rank: int, rejected: bool) -> ShardWriter:
        schema = rejected_schema(self.stage_columns) if rejected else shard_schema(self.stage_columns)
        path = self.out_dir / sub / name.format(rank=f"{rank:05d}")
        return ShardWriter(path, schema, rejected=rejected, row_group_rows=self.row_group_rows, compression=self.compression or "none")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        t0 = time.perf_counter()
        kept_w = self._writer(self.kept_dir, self.kept_name, rank, rejected=False)
        rej_w = self._writer(self.rejected_dir, self.rejected_name, rank, rejected=True)
        funnel: Counter = Counter()
        generated: Counter = Counter()  # documents added by a stage (augmentation), per stage
        timer = self.track_time()
        kept = rejected = kept_chars = 0
        try:
            for doc in data or ():
                g = doc.metadata.get(GENERATED_KEY)
                if g:
                    generated[g] += 1
                scrub_row(doc, self.scrub)
                r = rejection(doc)
                with timer:  # the sink's own time: Arrow conversion and Parquet writing
                    if r is None:
                        kept_w.write(doc)
                    else:
                        rej_w.write(doc)
                if r is None:
                    kept += 1
                    kept_chars += len(doc.text)
                else:
                    rejected += 1
                    funnel[r] += 1
            with timer:
                kept_rows = kept_w.close()
                rej_rows = rej_w.close()
            if kept:
                self.stat_update("kept", value=kept)
            if rejected:
                self.stat_update("rejected", value=rejected)
        except BaseException:
            kept_w.abort()
            rej_w.abort()
            raise
        n_generated = sum(generated.values())
        read = self.reader.report["read"] if self.reader is not None else kept + rejected - n_generated
        if read + n_generated != kept_rows + rej_rows:
            raise RuntimeError(
                f"task {rank}: read {read} + generated {n_generated} documents but wrote {kept_rows} kept + {rej_rows} rejected"
            )
        self.report = {
            "rank": rank,
            "phase": "",
            "origin": "work" if getattr(self.reader, "name", "") == "work_reader" else "input",
            "read": read,
            "generated": n_generated,
            "generated_by_stage": dict(sorted(generated.items())),
            "kept": kept_rows,
            "rejected": rej_rows,
            "kept_chars": kept_chars,
            "funnel": [{"stage": s, "reason": r, "count": n} for (s, r), n in sorted(funnel.items())],
            "input_files": self.reader.report["files"] if self.reader is not None else [],
            "input_errors": self.reader.report["errors"] if self.reader is not None else [],
            "seconds": round(time.perf_counter() - t0, 3),
            "outputs": [[str(kept_w.path), kept_rows], [str(rej_w.path), rej_rows]],  # checked before the task is marked done
        }
        return
        yield  # a generator that consumes the stream and yields nothing
