"""Barrier stages: stages that must see every document of a *window* of input shards before deciding.

Dedup is the example: whether a document is a duplicate depends on documents read by other tasks.
A window is ``W`` consecutive input shards in sorted order (``--dedup-window W``; 0 = all inputs in
one window); documents in different windows are never compared.

A barrier stage runs in one of two forms, chosen by its ``mode`` parameter; both give the same
documents:

``multi`` (default): the planner splits the pipeline at the stage into phases with files between
them, each phase a set of independent tasks (so Slurm can run each as an array job):

  1. *map* (tasks over input files): the stages before the barrier, then ``map_batch`` (e.g. MinHash
     signatures) -> live documents go to ``work/<label>/docs/<input_index>.parquet`` with the
     stage's ``work_columns``;
  2. *reduce* (``reduce_steps``: one or more phases, e.g. buckets then clusters) -> per window a
     decision table ``work/<label>/decisions/window-<k>.parquet`` (input_index, record_index,
     reason, duplicate_of);
  3. *apply* (tasks over input files): read the work docs back, mark the decided documents, go on
     with the stages after the barrier.

``single``: each task reads one whole window of input files in order; the stage buffers the
window's live documents on local disk, decides with ``decide_window`` in memory, then replays
them. One phase, no files between tasks, parallel only across windows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import Field

from r1data.io.schema import ARROW_TYPES, INTERNAL_PREFIX, shard_schema
from r1data.io.shards import ShardWriter, iter_documents
from r1data.stages.base import GENERATED_KEY, SCRUBBED_KEY, Cut, InputFile, ReaderStage, Stage, StageConfig, is_rejected, make_windows, reject, scrub_row

# A decision names a document by its position (unique by construction, unlike ids, which a user's
# inputs may repeat) and says why it goes and which kept document it duplicates.
DECISION_SCHEMA = pa.schema(
    [("input_index", pa.int32()), ("record_index", pa.int64()), ("reason", pa.string()), ("duplicate_of", pa.string())]
)
Decisions = dict  # (input_index, record_index) -> (reason, duplicate_of)


def decisions_dict(table: pa.Table) -> Decisions:
    cols = [table.column(c).to_pylist() for c in DECISION_SCHEMA.names]
    return {(i, r): (reason, dup) for i, r, reason, dup in zip(*cols)}
KEY_COLUMNS = ("id", "input_index", "record_index")


class BarrierConfig(StageConfig):
    """Parameters every barrier stage has."""

    window: int = Field(0, ge=0, description="compare documents within windows of this many consecutive input shards; 0 = one global window")
    mode: Literal["multi", "single"] = Field(
        "multi", description="multi: map/reduce/apply phases with files between them; single: one task per window, in memory"
    )


@dataclass
class BarrierContext:
    """What a reduce step needs: where the work files are and which inputs form each window."""

    work_dir: str
    windows: list[list[int]]

    def docs_path(self, input_index: int) -> Path:
        return Path(self.work_dir) / "docs" / f"{input_index:06d}.parquet"

    def decisions_path(self, window: int) -> Path:
        return Path(self.work_dir) / "decisions" / f"window-{window:05d}.parquet"

    def window_of(self, input_index: int) -> int:
        for k, idx in enumerate(self.windows):
            if idx and idx[0] <= input_index <= idx[-1]:
                return k
        raise KeyError(f"input {input_index} is in no window")

    def read_window(self, window: int, columns: list[str]) -> pa.Table:
        """The listed columns of every live document of a window, in input then record order.

        Every input of the window has a docs file (the map writes one even when it keeps nothing),
        so a missing or unreadable one is an error, never an empty input: deciding on part of a
        window would silently change which documents are duplicates."""
        tables = []
        for i in self.windows[window]:
            p = self.docs_path(i)
            try:
                tables.append(pq.read_table(p, columns=columns))
            except FileNotFoundError:
                raise RuntimeError(f"missing work file {p}: the map phase did not finish or the file was removed (rerun to resume)") from None
            except (OSError, pa.ArrowException) as e:
                raise RuntimeError(f"unreadable work file {p}: {type(e).__name__}: {e} (rerun with --overwrite)") from None
        if not tables:
            return pa.table({c: pa.array([], type=pa.string()) for c in columns})
        t = pa.concat_tables(tables)
        return t.sort_by([("input_index", "ascending"), ("record_index", "ascending")])


class ReduceStep:
    """One reduce phase of a barrier stage: ``tasks(ctx)`` independent tasks, each ``run(ctx, rank, n)``."""

    name: str = "reduce"

    def tasks(self, ctx: BarrierContext) -> int:
        return max(1, len(ctx.windows))

    def run(self, ctx: BarrierContext, rank: int, world_size: int) -> dict[str, Any]:
        raise NotImplementedError


class WindowDecisions(ReduceStep):
    """The default reduce: one task per window, ``stage.decide_window`` over its rows."""

    name = "decide"

    def __init__(self, stage: "BarrierStage"):
        self.stage = stage

    def run(self, ctx: BarrierContext, rank: int, world_size: int) -> dict[str, Any]:
        rows = ctx.read_window(rank, list(KEY_COLUMNS) + list(self.stage.work_columns))
        decisions = self.stage.decide_window(rows)
        write_decisions(ctx.decisions_path(rank), decisions, self.stage.decision_schema)
        return {
            "window": rank,
            "documents": rows.num_rows,
            "decided": decisions.num_rows,
            "outputs": [[str(ctx.decisions_path(rank)), decisions.num_rows]],
        }


def write_decisions(path: Path, table: pa.Table, schema: pa.Schema = DECISION_SCHEMA) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table.select(schema.names).cast(schema), tmp, compression="zstd")
    os.replace(tmp, path)


class BarrierStage(Stage):
    """Base of stages that decide per window of input shards (exact and near dedup)."""

    kind: ClassVar[str] = "dedup"
    Config: ClassVar[type[StageConfig]] = BarrierConfig
    knobs: ClassVar[dict[str, str]] = {"dedup_window": "window"}
    #: columns ``map_batch`` adds for the reduce (name -> type in ``ARROW_TYPES`` or "binary"); never in shards
    work_columns: ClassVar[dict[str, str]] = {}
    #: schema of the decision tables; a stage that edits documents (line_dedup) adds columns to it
    decision_schema: ClassVar[pa.Schema] = DECISION_SCHEMA
    batch_size: ClassVar[int] = 256

    # -- what a concrete stage implements -------------------------------------------------------
    def map_batch(self, docs: list[Document]) -> list[str | None]:
        """Add ``work_columns`` to each live document's metadata; return a drop reason or None."""
        raise NotImplementedError

    def decide_window(self, rows: pa.Table) -> pa.Table:
        """Given ``id, input_index, record_index`` + work columns of one window (in input order),
        return the documents to drop: a table of ``DECISION_SCHEMA`` (``duplicate_of`` holds the
        id of the kept document)."""
        raise NotImplementedError

    def read_decisions(self, table: pa.Table) -> Decisions:
        """A decision table -> the ``Decisions`` that ``apply`` reads (default: (reason, duplicate_of))."""
        return decisions_dict(table)

    def reduce_steps(self) -> list[ReduceStep]:
        """The reduce phases of the multi form (default: one ``decide_window`` task per window)."""
        return [WindowDecisions(self)]

    # -- planning: how the stage groups its inputs and which phases it needs -------------------
    def input_window(self) -> int | None:
        """The single form reads one whole window per task; the multi form takes any split."""
        return self.config.window if self.config.mode == "single" else None

    def cut(self, *, phase: str, out_dir: str, inputs: list[InputFile], stage_columns: dict[str, str], reader: ReaderStage, scrub: list) -> Cut | None:
        """The multi form: the running phase ends with map (work files per input), the reduce phases
        decide per window, and the next phase reads the work files back and applies the decisions."""
        if self.config.mode != "multi":
            return None
        ctx = BarrierContext(work_dir=str(Path(out_dir) / "work" / self.label), windows=make_windows(len(inputs), self.config.window))
        sink = WorkSink(ctx, stage_columns, self.work_schema(), str(out_dir), phase, reader, scrub)
        reduce = [(step.name, step.tasks(ctx), [ReduceRunner(step, ctx, self.label)]) for step in self.reduce_steps()]
        return Cut(map=[BarrierMap(self), sink], reduce=reduce, resume=[WorkReader(ctx, list(inputs)), BarrierApply(self, ctx)])

    # -- shared machinery ----------------------------------------------------------------------
    def work_schema(self) -> list[pa.Field]:
        types = dict(ARROW_TYPES, binary=pa.binary())
        return [pa.field(n, types[t]) for n, t in self.work_columns.items()]

    def strip_work(self, doc: Document) -> None:
        for c in self.work_columns:
            doc.metadata.pop(c, None)

    def apply(self, doc: Document, decisions: Decisions) -> None:
        d = decisions.get((doc.metadata["input_index"], doc.metadata["record_index"]))
        self.strip_work(doc)
        if d is not None:
            reason, dup_of = d
            reject(doc, self.label, reason, duplicate_of=dup_of)
            self.stat_update("dropped", f"dropped_{reason}")
        else:
            self.stat_update("forwarded")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """The single form: buffer this task's window on disk, decide, replay."""
        self._ensure_setup()
        tmpdir = Path(tempfile.mkdtemp(prefix=f"r1data-{self.label}-"))
        try:
            spill = tmpdir / "live.parquet"
            schema = _spill_schema(self.work_schema())
            writer = ShardWriter(spill, schema, row_group_rows=1024)
            batch: list[Document] = []

            def flush():
                live = [d for d in batch if not is_rejected(d)]
                reasons = self.map_batch(live) if live else []
                for d, r in zip(live, reasons):
                    if r:
                        reject(d, self.label, r)
                for d in batch:
                    if is_rejected(d):
                        yield d  # rejected documents need no decision: pass them on now
                    else:
                        d.metadata["_r1_meta"] = json.dumps(_extra_metadata(d, schema), default=str)
                        writer.write(d)

            for doc in data:
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    yield from flush()
                    batch = []
            yield from flush()
            writer.close()
            keys = pq.read_table(spill, columns=list(KEY_COLUMNS) + list(self.work_columns))
            decisions = self.read_decisions(self.decide_window(keys))
            for doc in iter_documents(spill):
                extra = json.loads(doc.metadata.pop("_r1_meta", "{}") or "{}")
                doc.metadata.update(extra)
                self.apply(doc, decisions)
                yield doc
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _spill_schema(work_fields: list[pa.Field]) -> pa.Schema:
    base = shard_schema({})
    fields = [f for f in base if f.name != "meta"] + work_fields + [pa.field("_r1_meta", pa.string())]
    return pa.schema(fields)


def _extra_metadata(doc: Document, schema: pa.Schema) -> dict[str, Any]:
    """Metadata the spill schema has no column for (stage columns, meta): kept as JSON and restored."""
    names = set(schema.names)
    return {k: v for k, v in doc.metadata.items() if k not in names and not k.startswith(INTERNAL_PREFIX)}


# --------------------------------------------------------------------------------------------
# the steps the planner puts around a barrier in the multi form


class BarrierMap(Stage):
    """(multi form) Runs the barrier stage's ``map_batch`` on live documents."""

    name = "barrier_map"
    kind = "dedup"

    def __init__(self, stage: BarrierStage):
        self.stage = stage
        super().__init__(StageConfig(), label=stage.label)
        self.batch_size = stage.batch_size

    def __repr__(self) -> str:
        return f"dedup map: {getattr(self, 'label', '?')}"

    def setup(self) -> None:
        self.stage._ensure_setup()

    def process_batch(self, docs: list[Document]) -> list[str | None]:
        return self.stage.map_batch(docs)


class WorkSink(PipelineStep):
    """(multi form) End of a map phase: live documents -> ``work/<label>/docs/<input_index>.parquet``,
    rejected ones -> ``rejected/<phase>-part-<rank>.parquet``; counts like ``TaskSink``."""

    type = "r1data"
    name = "work sink"

    def __init__(
        self, ctx: BarrierContext, stage_columns: dict[str, str], work_fields: list[pa.Field], out_dir: str, phase: str, reader: ReaderStage,
        scrub: list | None = None,
    ):
        super().__init__()
        self.scrub = list(scrub or ())  # the recipe's redactors, applied to every row written (see TaskSink)
        self.ctx = ctx
        self.stage_columns = stage_columns
        self.work_fields = work_fields
        self.out_dir = out_dir
        self.phase = phase
        self.reader = reader
        self.report: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "work sink"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from r1data.io.schema import rejected_schema

        base = shard_schema(self.stage_columns)
        schema = pa.schema([f for f in base if f.name != "meta"] + self.work_fields + [base.field("meta")], metadata=base.metadata)
        rej = ShardWriter(Path(self.out_dir) / "rejected" / f"{self.phase}-part-{rank:05d}.parquet", rejected_schema(self.stage_columns), rejected=True)
        writers: dict[int, ShardWriter] = {}
        try:
            counts = self._write(data or (), schema, rej, writers)
            # every assigned input gets a docs file, even when all its documents were dropped
            for f in self.reader.assigned_files(rank, world_size):
                if f.index not in writers:
                    writers[f.index] = ShardWriter(self.ctx.docs_path(f.index), schema)
            outputs = [[str(w.path), w.close()] for w in writers.values()]
            outputs.append([str(rej.path), rej.close()])
        except BaseException:
            for w in writers.values():
                w.abort()
            rej.abort()
            raise
        self.report = self._task_report(rank, *counts, outputs)
        return
        yield

    def _write(self, docs, schema: pa.Schema, rej: ShardWriter, writers: dict[int, ShardWriter]):
        """Live documents -> the docs file of their input, rejected ones -> ``rej``; returns (kept, rejected, funnel, generated)."""
        from collections import Counter

        funnel: Counter = Counter()
        generated: Counter = Counter()
        kept = rejected = 0
        for doc in docs:
            g = doc.metadata.get(GENERATED_KEY)
            if g:
                generated[g] += 1
            scrub_row(doc, self.scrub)
            if is_rejected(doc):
                rej.write(doc)
                rejected += 1
                funnel[doc.metadata["_rejected"]] += 1
                continue
            i = doc.metadata["input_index"]
            w = writers.get(i)
            if w is None:
                w = writers[i] = ShardWriter(self.ctx.docs_path(i), schema)
            w.write(doc)
            kept += 1
        return kept, rejected, funnel, generated

    def _task_report(self, rank: int, kept: int, rejected: int, funnel, generated, outputs: list) -> dict[str, Any]:
        """The task's stats (like ``TaskSink``'s); ``RuntimeError`` when read + generated != kept + rejected."""
        read = self.reader.report["read"]
        n_generated = sum(generated.values())
        if read + n_generated != kept + rejected:
            raise RuntimeError(f"task {rank}: read {read} + generated {n_generated} documents but passed on {kept} + rejected {rejected}")
        return {
            "rank": rank,
            "phase": self.phase,
            "origin": "work" if isinstance(self.reader, WorkReader) else "input",
            "read": read,
            "kept": kept,
            "rejected": rejected,
            "generated": n_generated,
            "generated_by_stage": dict(sorted(generated.items())),
            "funnel": [{"stage": s, "reason": r, "count": n} for (s, r), n in sorted(funnel.items())],
            "input_files": self.reader.report["files"],
            "input_errors": self.reader.report["errors"],
            "outputs": outputs,  # checked before the task is marked done
        }


class WorkReader(ReaderStage):
    """(multi form) Start of an apply phase: read back the work documents of the assigned inputs."""

    name = "work_reader"

    def __init__(self, ctx: BarrierContext, files: list[InputFile]):
        super().__init__(StageConfig(), label="work_reader")
        self.ctx = ctx
        self.files = files

    def read_file(self, file: InputFile):
        p = self.ctx.docs_path(file.index)
        if not p.exists():
            raise RuntimeError(f"missing work file {p}: the map phase did not finish (rerun to resume)")
        for doc in iter_documents(p):
            doc.metadata[SCRUBBED_KEY] = doc.text  # written by a sink that ran the recipe's redactors
            yield doc

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        # work files are r1data's own: a failure here is a real error, not a corrupt input to skip
        self._ensure_setup()
        for file in self.assigned_files(rank, world_size):
            n = 0
            for doc in self.read_file(file):
                n += 1
                self.report["read"] += 1
                yield doc
            self.report["files"].append({"uri": str(self.ctx.docs_path(file.index)), "index": file.index, "documents": n})


class BarrierApply(Stage):
    """(multi form) Marks the documents the reduce decided to drop."""

    name = "barrier_apply"
    kind = "dedup"

    def __init__(self, stage: BarrierStage, ctx: BarrierContext):
        self.stage = stage
        self.ctx = ctx
        super().__init__(StageConfig(), label=stage.label)
        self._window = None
        self._decisions: Decisions = {}

    def __repr__(self) -> str:
        return f"dedup apply: {getattr(self, 'label', '?')}"

    def _load(self, window: int) -> None:
        if window != self._window:
            p = self.ctx.decisions_path(window)
            if not p.exists():
                raise RuntimeError(f"missing decisions {p}: the reduce phase did not finish (rerun to resume)")
            self._decisions = self.stage.read_decisions(pq.read_table(p))
            self._window = window

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            if not is_rejected(doc):
                self._load(self.ctx.window_of(doc.metadata["input_index"]))
                self.stage.apply(doc, self._decisions)
            yield doc


class ReduceRunner(PipelineStep):
    """(multi form) Runs one ``ReduceStep`` as a datatrove task."""

    type = "r1data"
    name = "reduce"

    def __init__(self, step: ReduceStep, ctx: BarrierContext, label: str):
        super().__init__()
        self.step, self.ctx, self.label = step, ctx, label
        self.report: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"dedup {getattr(self, 'step', None) and self.step.name}: {getattr(self, 'label', '?')}"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        self.report = {"rank": rank, "origin": "reduce", "reduce": self.step.name, **(self.step.run(self.ctx, rank, world_size) or {})}
