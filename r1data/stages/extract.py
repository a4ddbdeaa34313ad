"""HTML -> main text with Trafilatura, through datatrove's extractor and its timeout sandbox."""

from __future__ import annotations

import os
import time

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.extractors.base import ExtractorSandbox
from pydantic import Field

from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages.registry import register


class HtmlExtractConfig(StageConfig):
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


class _Sandbox(ExtractorSandbox):
    """datatrove's extraction sandbox, with two changes:

    - its process dies with the task process that started it (a killed task must leave nothing
      running): in a pool worker it is a child of that worker's forkserver, so it watches the task
      process itself as well as asking for a death signal from its parent;
    - only what the sandbox process needs is pickled to start it (with forkserver, the default in
      pool workers): earlier, finished processes in ``all_processes`` cannot be pickled, which made
      every extraction after a timeout in a pool worker fail."""

    def _ensure_process(self, extract_fn):
        self._owner = os.getpid()
        return super()._ensure_process(extract_fn)

    def __getstate__(self):
        return {"timeout": self.timeout, "warmup_text": self.warmup_text, "_owner": self._owner}

    def __setstate__(self, state):
        self.__init__(state["timeout"], state["warmup_text"])
        self._owner = state["_owner"]

    def _worker(self, conn, extract_fn):
        from r1data.run.executor import die_with, die_with_parent

        die_with_parent()
        die_with(self._owner)
        return super()._worker(conn, extract_fn)


@register
class HtmlExtract(TaggerStage):
    """Extract the main text of HTML with Trafilatura (datatrove's extractor, run in a timeout sandbox)."""

    name = "html_extract"
    Config = HtmlExtractConfig
    requires = {"trafilatura": "web"}
    example = """\
- stage: html_extract
  favour_precision: true
  timeout: 10
"""

    def setup(self) -> None:
        from datatrove.pipeline.extractors import Trafilatura

        c = self.config
        self._extractor = Trafilatura(
            favour_precision=c.favour_precision, timeout=c.timeout, deduplicate=c.deduplicate, include_tables=c.include_tables
        )
        self._sandbox = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._ensure_setup()
        self._sandbox = _Sandbox(timeout=self.config.timeout, warmup_text="")
        try:
            yield from super().run(data, rank, world_size)
        finally:
            sandbox, self._sandbox = self._sandbox, None
            try:
                sandbox.__exit__(None, None, None)
            except Exception as e:  # every document is already accounted for: a cleanup hiccup must not fail the task
                from datatrove.utils.logging import logger

                logger.warning(f"html_extract: stopping the extraction sandbox failed: {type(e).__name__}: {e}")

    def tag(self, doc: Document) -> str | None:
        if doc.metadata.pop("_extracted", False):  # WET records and plain text: nothing to extract
            return None
        for attempt in range(3):
            try:
                text = self._sandbox.process_document(doc.text, self._extractor.extract)
                break
            except TimeoutError:
                return "extraction_timeout"
            except EOFError:
                return "extraction_crashed"
            except (OSError, AttributeError, AssertionError) as e:
                # the sandbox process could not start (fork refused on a busy machine, ...): this says
                # nothing about the document, so reset the sandbox and try again before giving up
                self._reset_sandbox()
                if attempt == 2:
                    doc.metadata["extraction_error"] = f"sandbox: {type(e).__name__}: {e}"[:300]
                    return "extraction_error"
                time.sleep(1 + attempt)
            except Exception as e:  # trafilatura/lxml errors on malformed markup, raised in the sandbox
                doc.metadata["extraction_error"] = f"{type(e).__name__}: {e}"[:300]
                return "extraction_error"
        if not text or len(text.strip()) < self.config.min_chars:
            return "extraction_empty"
        doc.text = text
        return None

    def _reset_sandbox(self) -> None:
        try:
            self._sandbox._cleanup_process()
        except Exception:  # a Process that never started has nothing to terminate
            self._sandbox.process = None
