"""HTML -> main text: Trafilatura (datatrove's extractor, in its timeout sandbox) or the fast
Resiliparse path of :mod:`r1data.sources.html_fast` (size-capped, sandboxed by default)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import time
from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.extractors.base import ExtractorSandbox
from pydantic import Field

from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages.registry import register

#: Test hook: after each sandboxed extraction the worker waits (its sandbox alive) while the file
#: named here exists, so a crash or lock test can act on a run that is still extracting, whatever
#: the machine's speed. Timing only: what is extracted does not change.
_TEST_HOLD = os.environ.get("R1DATA_TEST_EXTRACT_HOLD") or None


class HtmlExtractConfig(StageConfig):
    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura",
        description="trafilatura: precise, ~25-100 ms/page; resiliparse: main content, title and captions pruned, ~10x faster (docs/extraction.md)",
    )
    favour_precision: bool = Field(True, description="prefer less but cleaner text (trafilatura favor_precision)")
    include_tables: bool = Field(True, description="keep table cells")
    deduplicate: bool = Field(
        False,
        description="trafilatura's segment deduplication; its cache spans documents, so output then depends on task layout",
    )
    timeout: float = Field(
        60.0, gt=0, description="seconds per document before it is dropped as extraction_timeout (generous: a timeout makes output load-dependent)"
    )
    min_chars: int = Field(1, ge=1, description="extractions shorter than this are dropped as extraction_empty")
    fast_prune: bool = Field(
        True,
        description="trafilatura: evaluate its boilerplate-pruning XPaths in Python (r1data/sources/fastprune.py): "
        "the same selections and text, about 2x faster; false: libxml2's own",
    )
    # ---- resiliparse only ----
    prune: bool = Field(True, description="resiliparse: skip the title (h1) and figure captions before extraction")
    classify_lines: bool = Field(
        False, description="resiliparse: drop lines the learned line classifier scores below line_threshold (slower in Python)"
    )
    line_threshold: float | None = Field(None, ge=0, le=1, description="resiliparse: classifier threshold (None: the trained one)")
    fallback: Literal["none", "visible_text", "trafilatura"] = Field(
        "none",
        description="resiliparse: when the main content is empty, take every visible text or Trafilatura's (sandboxed) text instead",
    )
    max_html_chars: int = Field(
        5_000_000, ge=1, description="resiliparse: longer pages are dropped as extraction_too_large (bounds time and memory in-process)"
    )
    sandbox: bool = Field(
        True,
        description="resiliparse: run it in the timeout sandbox (Trafilatura always is): its main-content pass is quadratic in nesting depth",
    )


def _trafilatura_fast_prune(extractor, text: str) -> str:
    """Trafilatura with its pruning XPaths compiled to Python (installed in the process that runs it: the sandbox)."""
    from r1data.sources.fastprune import install

    install()  # idempotent, microseconds once done
    return extractor.extract(text)


class _Sandbox(ExtractorSandbox):
    """datatrove's extraction sandbox, with three changes:

    - its process is forked from the task process (which has every module and the extractor
      loaded), not started through the default context, which in a pool worker is a fork server
      of its own: that re-imported the run's modules in every sandbox (a second or more per task);
    - its process dies with the task process that started it (a killed task must leave nothing
      running): it watches the task process itself as well as asking for a death signal;
    - only what the sandbox process needs is pickled (where a sandbox object is pickled at all):
      finished processes in ``all_processes`` cannot be pickled."""

    def _ensure_process(self, extract_fn):
        self._owner = os.getpid()
        if self.process is not None and self.process.is_alive():
            return
        if self.process is not None:
            self._cleanup_process()
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        self.parent_conn, self.child_conn = ctx.Pipe()
        self.process = ctx.Process(target=self._worker, args=(self.child_conn, extract_fn), daemon=True)
        self.process.start()
        self.all_processes.append(self.process)
        if self.parent_conn.poll(self.timeout):
            self.parent_conn.recv()  # the sandbox's "ready"
        else:
            self._cleanup_process()
            raise TimeoutError(f"Worker process failed to initialize within {self.timeout} seconds (warmup timeout).")

    def __getstate__(self):
        return {"timeout": self.timeout, "warmup_text": self.warmup_text, "_owner": self._owner}

    def __setstate__(self, state):
        self.__init__(state["timeout"], state["warmup_text"])
        self._owner = state["_owner"]

    def _worker(self, conn, extract_fn):
        from r1data.run.executor import die_with, die_with_parent

        die_with_parent()
        die_with(self._owner)
        if self.parent_conn is not None and self.parent_conn is not conn:
            self.parent_conn.close()  # forked: the task's end of the pipe is not this process's to keep open
        return super()._worker(conn, extract_fn)


@register
class HtmlExtract(TaggerStage):
    """Extract the main text of HTML: Trafilatura, or Resiliparse's main content (extractor: resiliparse), in a timeout sandbox."""

    name = "html_extract"
    Config = HtmlExtractConfig
    requires = {"trafilatura": "web", "resiliparse": "web"}
    example = """\
- stage: html_extract
  extractor: resiliparse     # web-v2's fast path; trafilatura (the default) is precise but ~10x slower
  fallback: trafilatura      # when Resiliparse finds no main content
  timeout: 10
"""

    def setup(self) -> None:
        c = self.config
        self._extractor = self._fast = None
        if c.extractor == "trafilatura" or c.fallback == "trafilatura":
            from datatrove.pipeline.extractors import Trafilatura

            self._extractor = Trafilatura(
                favour_precision=c.favour_precision, timeout=c.timeout, deduplicate=c.deduplicate, include_tables=c.include_tables
            )
            self._traf_extract = (
                functools.partial(_trafilatura_fast_prune, self._extractor) if c.fast_prune else self._extractor.extract
            )
        if c.extractor == "resiliparse":
            from r1data.sources import html_fast

            self._fast = html_fast
            # a module-level function (picklable: the sandbox process may be spawned, not forked)
            self._fast_extract = functools.partial(
                html_fast.extract_or_error, prune=c.prune, classify=c.classify_lines, threshold=c.line_threshold
            )
        #: one sandbox per extract function (a sandbox process serves the function it started with)
        self._sandboxes: dict = {}

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._ensure_setup()
        self._sandboxes = {}
        try:
            yield from super().run(data, rank, world_size)
        finally:
            sandboxes, self._sandboxes = self._sandboxes, {}
            for sandbox in sandboxes.values():
                try:
                    sandbox.__exit__(None, None, None)
                except Exception as e:  # every document is already accounted for: a cleanup hiccup must not fail the task
                    from datatrove.utils.logging import logger

                    logger.warning(f"html_extract: stopping the extraction sandbox failed: {type(e).__name__}: {e}")

    def tag(self, doc: Document) -> str | None:
        if doc.metadata.pop("_extracted", False):  # WET records and plain text: nothing to extract
            return None
        if self.config.extractor == "resiliparse":
            return self._tag_fast(doc)
        return self._tag_sandboxed(doc, "trafilatura", self._traf_extract)

    def _tag_fast(self, doc: Document) -> str | None:
        c = self.config
        if len(doc.text) > c.max_html_chars:
            doc.metadata["extraction_error"] = f"{len(doc.text)} characters of HTML > max_html_chars {c.max_html_chars}"
            return "extraction_too_large"
        if c.sandbox:
            reason = self._tag_sandboxed(doc, "resiliparse", self._fast_extract)
            if reason != "extraction_empty" or c.fallback == "none":
                return reason
        else:
            text = self._fast_extract(doc.text)
            if isinstance(text, Exception):
                doc.metadata["extraction_error"] = str(text)[:300]
                return "extraction_error"
            if text and len(text.strip()) >= c.min_chars:
                doc.text = text
                return None
            if c.fallback == "none":
                return "extraction_empty"
        self.stat_update("extraction_fallback")
        if c.fallback == "trafilatura":
            return self._tag_sandboxed(doc, "trafilatura", self._traf_extract)
        try:  # in-process: without the main-content pass Resiliparse is linear in the page (docs/extraction.md)
            text = self._fast.visible_text(doc.text)
        except Exception as e:
            doc.metadata["extraction_error"] = f"{type(e).__name__}: {e}"[:300]
            return "extraction_error"
        if not text or len(text.strip()) < c.min_chars:
            return "extraction_empty"
        doc.text = text
        return None

    def _sandbox(self, key: str):
        if key not in self._sandboxes:
            self._sandboxes[key] = _Sandbox(timeout=self.config.timeout, warmup_text="")
        return self._sandboxes[key]

    def _tag_sandboxed(self, doc: Document, key: str, extract) -> str | None:
        for attempt in range(3):
            try:
                text = self._sandbox(key).process_document(doc.text, extract)
                break
            except TimeoutError:
                return "extraction_timeout"
            except EOFError:
                return "extraction_crashed"
            except (OSError, AttributeError, AssertionError) as e:
                # the sandbox process could not start (fork refused on a busy machine, ...): this says
                # nothing about the document, so reset the sandbox and try again before giving up
                self._reset_sandbox(key)
                if attempt == 2:
                    doc.metadata["extraction_error"] = f"sandbox: {type(e).__name__}: {e}"[:300]
                    return "extraction_error"
                time.sleep(1 + attempt)
            except Exception as e:  # trafilatura/lxml (or resiliparse) errors on malformed markup, raised in the sandbox
                failed = self._fast is not None and isinstance(e, self._fast.ExtractionFailed)
                doc.metadata["extraction_error"] = (str(e) if failed else f"{type(e).__name__}: {e}")[:300]
                return "extraction_error"
        while _TEST_HOLD and os.path.exists(_TEST_HOLD):
            time.sleep(0.05)
        if not text or len(text.strip()) < self.config.min_chars:
            return "extraction_empty"
        doc.text = text
        return None

    def _reset_sandbox(self, key: str) -> None:
        sandbox = self._sandbox(key)
        try:
            sandbox._cleanup_process()
        except Exception:  # a Process that never started has nothing to terminate
            sandbox.process = None
