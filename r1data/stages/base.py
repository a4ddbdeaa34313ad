"""The stage contract: every r1data stage is a datatrove ``PipelineStep`` with a typed config.

A stage never drops a document from the stream. It *marks* it rejected (``reject``) and passes it
on; later stages skip marked documents and the task's sink routes them to ``rejected/`` with the
stage and reason. So ``kept + rejected == read`` holds by construction, and the order in which
documents reach the sink does not depend on which stage dropped them. A stage that *adds*
documents (augmentation, upsampling) marks each one with ``GENERATED_KEY`` (its label); the sink
counts them, and the invariant becomes ``read + generated == kept + rejected``.

Kinds:

- ``ReaderStage``: turns input files into documents (``read_file``); a corrupt file is recorded,
  not raised, and the other files are still read.
- ``FilterStage``: answers "keep, or drop with this reason" (``keep``), like datatrove's filters.
- ``TaggerStage``: adds columns or rewrites text (``tag``); may reject by returning a reason.

Heavy dependencies (kenlm, fasttext, torch) are imported in ``setup``, which runs once per task in
the worker, never at import time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from pydantic import BaseModel, ConfigDict

from r1data.config.knobs import KNOBS
from r1data.errors import ShardError

REJECTED_KEY = "_rejected"  # doc.metadata[REJECTED_KEY] = (stage label, reason)
GENERATED_KEY = "_generated"  # doc.metadata[GENERATED_KEY] = label of the stage that created the document
#: doc.metadata[SCRUBBED_KEY] = the text of a row read back from a work file: the sink that wrote it
#: had passed it through every redactor of the recipe, so while the text is that same object
#: (no later stage rewrote it) the sinks of later phases need not redact it again
SCRUBBED_KEY = "_scrubbed_text"


def scrub_row(doc, scrubbers) -> None:
    """Pass ``doc`` through the recipe's redactors before a sink writes it (see ``SCRUBBED_KEY``)."""
    if scrubbers and doc.metadata.get(SCRUBBED_KEY) is not doc.text:
        for scrub in scrubbers:
            scrub(doc)


class StageConfig(BaseModel):
    """Base of every stage's typed parameters: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def is_rejected(doc: Document) -> bool:
    return REJECTED_KEY in doc.metadata


def reject(doc: Document, stage: str, reason: str, **fields: Any) -> None:
    """Mark ``doc`` as dropped by ``stage`` for ``reason``; ``fields`` (e.g. duplicate_of) go to its row."""
    if REJECTED_KEY not in doc.metadata:  # the first stage to reject a document owns it
        doc.metadata[REJECTED_KEY] = (stage, reason)
        doc.metadata.update(fields)


def rejection(doc: Document) -> tuple[str, str] | None:
    return doc.metadata.get(REJECTED_KEY)


_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


class Stage(PipelineStep):
    """A registered, typed, documented pipeline step. Subclass one of the kinds below."""

    #: registered snake_case name used in YAML (``stage: gopher_quality``)
    name: ClassVar[str]
    #: bumped whenever the stage's output for the same input and config changes
    version: ClassVar[int] = 1
    kind: ClassVar[str] = "transform"
    Config: ClassVar[type[StageConfig]] = StageConfig
    #: columns this stage adds to the shard schema: name -> arrow type ("string", "float32", "int64", ...)
    columns: ClassVar[dict[str, str]] = {}
    #: columns an earlier stage must provide (checked at validation time), e.g. ("lang",)
    needs: ClassVar[tuple[str, ...]] = ()
    #: command-line knobs this stage consumes (declared in r1data/config/knobs.py): knob name -> the
    #: config field it sets (e.g. filter_threshold -> threshold)
    knobs: ClassVar[dict[str, str]] = {}
    #: the YAML a user would paste into a recipe; shown by ``r1data stages NAME`` and tested
    example: ClassVar[str] = ""
    #: python modules that must be importable, with the pip extra that brings them
    requires: ClassVar[dict[str, str]] = {}
    #: documents handed to ``process_batch`` at once
    batch_size: ClassVar[int] = 1

    type = "r1data"

    def preload(self) -> list[tuple[str, str, dict]]:
        """Read-only state every worker of a run would build alike (an index, a table), as
        ``(module, function, keyword arguments)`` calls: a local run makes them once in the fork
        server its pool workers are forked from, where they land in the function's own
        per-process cache. JSON-serialisable arguments only; a call that fails there is ignored
        (the worker makes it again and reports the error itself)."""
        return []

    def __init__(self, config: StageConfig | None = None, label: str | None = None):
        self.config = config if config is not None else self.Config()
        self.label = label or self.name
        self._ready = False
        super().__init__()

    def __repr__(self) -> str:
        return f"{self.kind}: {getattr(self, 'label', self.name)}"

    # -- validation-time hooks ------------------------------------------------------------------
    @classmethod
    def check_config(cls, config: StageConfig) -> list[tuple[str, str]]:
        """Problems that need more than types (missing model files, ...): ``[(param, message)]``.

        Runs at validation time, before any work, in the driver process."""
        return []

    @classmethod
    def columns_for(cls, config: StageConfig) -> dict[str, str]:
        """The columns this configuration adds to the shard schema (default: ``columns``)."""
        return cls.columns

    @classmethod
    def needs_for(cls, config: StageConfig) -> tuple[str, ...]:
        """The columns this configuration needs from earlier stages (default: ``needs``)."""
        return cls.needs

    def describe(self) -> dict[str, Any]:
        """What the manifest records for this stage (config, versions of models it loads, ...)."""
        return {"stage": self.name, "version": self.version, "label": self.label, "config": self.config.model_dump(mode="json")}

    # -- planning hooks: the planner (r1data/run/pipeline.py) asks every stage ------------------
    def input_window(self) -> int | None:
        """``W``: each task of the phase this stage runs in must read ``W`` consecutive inputs whole,
        in input order (0 = all inputs in one task). ``None`` (default): any split of the inputs."""
        return None

    def cut(
        self, *, phase: str, out_dir: str, inputs: list[InputFile], stage_columns: dict[str, str], reader: ReaderStage, scrub: list
    ) -> Cut | None:
        """Split the pipeline at this stage; ``None`` (default): run inside the current phase.

        ``phase`` names the running phase, which ``Cut.map`` ends and ``reader`` starts."""
        return None

    # -- worker-time hooks ----------------------------------------------------------------------
    def setup(self) -> None:
        """Load models and other heavy state; called once per task before the first document."""

    def _ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def process_batch(self, docs: list[Document]) -> list[str | None]:
        """Process live (not yet rejected) documents in place; return a drop reason or None for each."""
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._ensure_setup()
        batch: list[Document] = []
        for doc in data:
            batch.append(doc)
            if len(batch) >= self.batch_size:
                yield from self._run_batch(batch)
                batch = []
        if batch:
            yield from self._run_batch(batch)

    def _run_batch(self, batch: list[Document]) -> Iterator[Document]:
        live = [d for d in batch if not is_rejected(d)]
        if live:
            with self.track_time("batch" if self.batch_size > 1 else None):
                reasons = self.process_batch(live)
            for doc, reason in zip(live, reasons):
                self.stat_update("total")
                if reason:
                    reject(doc, self.label, reason)
                    self.stat_update("dropped", f"dropped_{reason}")
                else:
                    self.stat_update("forwarded")
        yield from batch


class FilterStage(Stage):
    """Keep a document, or drop it with a precise reason. Never changes the document."""

    kind: ClassVar[str] = "filter"

    def keep(self, doc: Document) -> bool | tuple[bool, str]:
        """True to keep; ``False`` or ``(False, "reason")`` to drop."""
        raise NotImplementedError

    def process_batch(self, docs: list[Document]) -> list[str | None]:
        out: list[str | None] = []
        for doc in docs:
            res = self.keep(doc)
            if isinstance(res, tuple):
                ok, reason = res
            else:
                ok, reason = res, None
            out.append(None if ok else (reason or self.name))
        return out


class TaggerStage(Stage):
    """Add columns to (or rewrite) a document; score first, filter later."""

    kind: ClassVar[str] = "tagger"

    def tag(self, doc: Document) -> str | None:
        """Annotate ``doc.metadata`` / rewrite ``doc.text`` in place; return a reason to drop it."""
        raise NotImplementedError

    def process_batch(self, docs: list[Document]) -> list[str | None]:
        return [self.tag(doc) for doc in docs]


class InputFile(BaseModel):
    """One resolved input shard: its position in sorted order, where it is, and how big."""

    model_config = ConfigDict(frozen=True)

    index: int
    uri: str
    size: int | None = None


@dataclass
class Cut:
    """How a stage splits the pipeline into phases: ``map`` ends the running phase, each ``reduce``
    entry ``(name, tasks, steps)`` is a phase of its own, and the next phase runs ``resume`` (a
    reader first) followed by the stages after this one."""

    map: list
    reduce: list[tuple[str, int, list]]
    resume: list


def make_windows(n_inputs: int, window: int) -> list[list[int]]:
    """Input indexes per window: ``[[0..W-1], [W..2W-1], ...]``; ``window=0`` -> one window."""
    if n_inputs == 0:
        return []
    w = window or n_inputs
    return [list(range(s, min(s + w, n_inputs))) for s in range(0, n_inputs, w)]


class ReaderStage(Stage):
    """Turn input files into documents. The runner assigns ``files`` (all inputs, sorted) before the run.

    Task ``rank`` reads ``files[rank::world_size]``. Every document carries ``input_file``,
    ``input_index`` and ``record_index`` so that later stages (dedup windows) can recover the
    input order. A file that fails part-way keeps the documents read before the failure, and the
    failure is recorded in ``self.report`` for the task summary.
    """

    kind: ClassVar[str] = "reader"
    #: when an input is a directory, only files matching one of these globs are read (None: all)
    file_patterns: ClassVar[tuple[str, ...] | None] = None
    #: when an input is a directory, files whose names match one of these globs are not read
    #: (licence and source notes kept beside the data: LICENSE*, SOURCE*)
    exclude_patterns: ClassVar[tuple[str, ...]] = ()
    #: True: each input is a unit the reader walks itself (a repository: directory or archive);
    #: directories are passed to ``read_file`` as they are instead of being expanded to files
    inputs_are_roots: ClassVar[bool] = False

    def __init__(self, config: StageConfig | None = None, label: str | None = None):
        super().__init__(config, label)
        self.files: list[InputFile] = []
        #: set by ``read_in_windows`` when tasks must read whole windows of inputs: task r reads groups[r]
        self.groups: list[list[InputFile]] | None = None
        self.source: str = "unknown"
        self.report: dict[str, Any] = {"read": 0, "files": [], "errors": []}
        #: extra facts a reader records about an input (uri -> {key: value}); they are merged into
        #: that input's entry in the task's report (stats/NNNNN.json, ``input_files``)
        self.file_notes: dict[str, dict[str, Any]] = {}

    def read_file(self, file: InputFile) -> Iterable[Document]:
        """Yield the documents of one file; raise ``ShardError`` (or anything) when it is corrupt."""
        raise NotImplementedError

    def read_in_windows(self, window: int) -> int:
        """Make task ``r`` read window ``r`` of ``files`` (``window`` consecutive inputs, 0 = all)
        whole and in order; returns how many tasks that takes."""
        self.groups = [[self.files[i] for i in idx] for idx in make_windows(len(self.files), window)]
        return max(1, len(self.groups))

    def assigned_files(self, rank: int, world_size: int) -> list[InputFile]:
        if self.groups is not None:
            return self.groups[rank] if rank < len(self.groups) else []
        return self.files[rank::world_size]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        self._ensure_setup()
        for file in self.assigned_files(rank, world_size):
            self.stat_update("input_files")
            n = 0
            t0 = time.perf_counter()
            error = None
            try:
                for doc in self.read_file(file):
                    _escape_undecodable(doc)
                    doc.metadata.setdefault("source", self.source)
                    doc.metadata.setdefault("input_file", file.uri)
                    doc.metadata.setdefault("input_index", file.index)
                    doc.metadata.setdefault("record_index", n)
                    n += 1
                    self.report["read"] += 1
                    self.stat_update("documents")
                    yield doc
            except ShardError as e:
                error = e.message
            except MemoryError:
                error = "input_too_large: ran out of memory while reading it (the worker's memory limit, executor.memory_limit_gb)"
            except Exception as e:  # a corrupt file must never take the rest of the run down
                error = f"{type(e).__name__}: {e}".strip()
            entry = {"uri": file.uri, "index": file.index, "documents": n, "seconds": round(time.perf_counter() - t0, 3)}
            if file.size is not None:
                entry["size"] = file.size
            entry.update(self.file_notes.pop(file.uri, {}))
            if error:
                from datatrove.utils.logging import logger

                one_line = " ".join(error.split())
                from r1data.paths import escape_surrogates

                logger.warning(f"corrupt input {escape_surrogates(file.uri)}: {one_line} (kept the {n} documents read from it)")
                entry["error"] = one_line
                self.report["errors"].append({"uri": file.uri, "error": one_line, "documents_before_error": n})
                self.stat_update("input_errors")
            self.report["files"].append(entry)


def _escape_undecodable(doc: Document) -> None:
    """Make every string of ``doc`` writable as UTF-8: a file name that is not UTF-8 (``bad\\xff.py``)
    becomes ``bad%FF.py`` in ``id``, ``path`` and the other columns instead of failing the whole
    task's Parquet write (see ``r1data.paths.escape_surrogates``)."""
    from r1data.paths import escape_surrogates

    doc.id = escape_surrogates(doc.id) if isinstance(doc.id, str) else doc.id
    if isinstance(doc.text, str) and not doc.text.isascii():
        doc.text = escape_surrogates(doc.text)
    md = doc.metadata
    for k, v in md.items():
        if isinstance(v, str) and not v.isascii():
            md[k] = escape_surrogates(v)


def check_stage_class(cls: type[Stage]) -> None:
    """Registry-time sanity checks so a mis-declared stage fails at import, not in a worker."""
    if not _SNAKE.match(getattr(cls, "name", "") or ""):
        raise TypeError(f"{cls.__name__}.name must be snake_case, got {getattr(cls, 'name', None)!r}")
    if not (cls.__doc__ or "").strip():
        raise TypeError(f"{cls.__name__} needs a one-line docstring")
    for knob, field in cls.knobs.items():
        if knob not in KNOBS:
            raise TypeError(f"{cls.__name__}: unknown knob {knob} (declared knobs: {', '.join(KNOBS)}; add one in r1data/config/knobs.py)")
        if field not in cls.Config.model_fields:
            raise TypeError(f"{cls.__name__}: knob {knob} maps to unknown field {field}")
