"""html_extract on real pages: extraction, precise reasons, and a sandbox that fails to start."""

from __future__ import annotations

from datatrove.data import Document

from r1data.stages.base import InputFile, rejection
from r1data.stages.extract import HtmlExtract
from r1data.stages.readers import WarcReader
from tests.conftest import TINY


def _pages():
    r = WarcReader()
    r.setup()
    return [d for d in r.read_file(InputFile(index=0, uri=str(TINY / "tiny-00000.warc.gz"))) if rejection(d) is None]


def _run(stage, docs):
    return list(stage.run(iter(docs), 0, 1))


def test_extracts_main_text_and_records_reasons():
    docs = _pages()[:4] + [Document(text="<html><head><title>t</title></head><body></body></html>", id="empty", metadata={})]
    out = _run(HtmlExtract(), docs)
    assert [rejection(d) for d in out[:4]] == [None] * 4
    assert all("<" not in d.text[:100] and len(d.text) > 100 for d in out[:4])
    assert rejection(out[4]) == ("html_extract", "extraction_empty")


def test_wet_text_passes_through():
    doc = Document(text="already text", id="w", metadata={"_extracted": True})
    (out,) = _run(HtmlExtract(), [doc])
    assert out.text == "already text" and rejection(out) is None and "_extracted" not in out.metadata


def test_sandbox_start_failure_is_retried(monkeypatch):
    from datatrove.pipeline.extractors.base import ExtractorSandbox

    real = ExtractorSandbox._ensure_process
    calls = {"n": 0}

    def flaky(self, fn):
        calls["n"] += 1
        if calls["n"] == 1:  # as when fork is refused on a loaded machine: the Process never started
            self.process = None
            raise OSError(11, "Resource temporarily unavailable")
        return real(self, fn)

    monkeypatch.setattr(ExtractorSandbox, "_ensure_process", flaky)
    (out,) = _run(HtmlExtract(), _pages()[:1])
    assert rejection(out) is None and len(out.text) > 100 and calls["n"] >= 2


def test_sandbox_that_never_starts_drops_with_a_reason(monkeypatch):
    from datatrove.pipeline.extractors.base import ExtractorSandbox

    def broken(self, fn):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ExtractorSandbox, "_ensure_process", broken)
    monkeypatch.setattr("r1data.stages.extract.time.sleep", lambda s: None)
    out = _run(HtmlExtract(), _pages()[:2])
    assert [rejection(d) for d in out] == [("html_extract", "extraction_error")] * 2
    assert out[0].metadata["extraction_error"].startswith("sandbox: ")
