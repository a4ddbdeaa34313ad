"""HTML -> main text with Trafilatura, through datatrove's extractor and its timeout sandbox."""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
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
        from datatrove.pipeline.extractors.base import ExtractorSandbox

        self._ensure_setup()
        self._sandbox = ExtractorSandbox(timeout=self.config.timeout, warmup_text="")
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
        try:
            text = self._sandbox.process_document(doc.text, self._extractor.extract)
        except TimeoutError:
            return "extraction_timeout"
        except EOFError:
            return "extraction_crashed"
        except Exception as e:  # trafilatura/lxml errors on malformed markup, or a sandbox that failed to start
            doc.metadata["extraction_error"] = f"{type(e).__name__}: {e}"[:300]
            try:
                self._sandbox._cleanup_process()  # the next document gets a fresh sandbox process
            except Exception:
                self._sandbox.process = None
            return "extraction_error"
        if not text or len(text.strip()) < self.config.min_chars:
            return "extraction_empty"
        doc.text = text
        return None
