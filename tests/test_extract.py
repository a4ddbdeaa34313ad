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
    from r1data.stages.extract import _Sandbox as ExtractorSandbox  # r1data's sandbox starts its own process

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
    from r1data.stages.extract import _Sandbox as ExtractorSandbox

    def broken(self, fn):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ExtractorSandbox, "_ensure_process", broken)
    monkeypatch.setattr("r1data.stages.extract.time.sleep", lambda s: None)
    out = _run(HtmlExtract(), _pages()[:2])
    assert [rejection(d) for d in out] == [("html_extract", "extraction_error")] * 2
    assert out[0].metadata["extraction_error"].startswith("sandbox: ")


# ---- the fast path: extractor: resiliparse ------------------------------------------------------

ARTICLE = """<html><head><title>Site</title></head><body>
<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a></nav>
<article>
<h1>Council approves the new river bridge</h1>
<figure><img src="b.jpg" alt="the bridge"><figcaption>An artist's view of the bridge. Photo: City Council</figcaption></figure>
<p>The city council voted on Tuesday to build a new bridge across the river, ending a debate that had lasted
for more than ten years and divided the two halves of the town.</p>
<p>Work is expected to start next spring, and the bridge should open to traffic and cyclists in two years,
the council said in a statement after the vote.</p>
<div class="image-caption">Residents gathered outside the town hall before the vote.</div>
<p>Opponents had argued that the money would be better spent on repairing the roads that already exist.</p>
</article>
<footer><p>Copyright 2024 The Town Paper. All rights reserved.</p></footer>
</body></html>"""


def _fast(**kw):
    return HtmlExtract(HtmlExtract.Config(extractor="resiliparse", **kw))


def test_fast_path_keeps_the_article_and_drops_title_captions_and_menus():
    out = _run(_fast(), [Document(text=ARTICLE, id="a", metadata={})] + _pages()[:4])
    assert [rejection(d) for d in out] == [None] * 5
    text = out[0].text
    assert "voted on Tuesday to build a new bridge" in text and "better spent on repairing the roads" in text
    for boiler in ("Council approves", "artist's view", "Residents gathered", "Sport", "All rights reserved"):
        assert boiler not in text, boiler
    assert all("<" not in d.text[:100] and len(d.text) > 100 for d in out[1:])


def test_fast_path_without_pruning_keeps_title_and_captions():
    (out,) = _run(_fast(prune=False), [Document(text=ARTICLE, id="a", metadata={})])
    assert "Council approves the new river bridge" in out.text and "Residents gathered" in out.text


def test_fast_path_reasons_and_fallbacks():
    nav_only = '<html><body><nav><a href="/">Home</a> <a href="/a">About us and our story</a></nav></body></html>'
    docs = lambda: [  # noqa: E731
        Document(text=nav_only, id="nav", metadata={}),
        Document(text="<p>broken \ud800 surrogate</p>", id="bad", metadata={}),  # resiliparse refuses it
        Document(text="<p>" + "word " * 300 + "</p>", id="big", metadata={}),
    ]
    for sandbox in (True, False):
        out = _run(_fast(max_html_chars=1000, sandbox=sandbox), docs())
        assert [rejection(d) for d in out] == [
            ("html_extract", "extraction_empty"),
            ("html_extract", "extraction_error"),
            ("html_extract", "extraction_too_large"),
        ]
        assert out[1].metadata["extraction_error"].startswith("TypeError: ") and "max_html_chars" in out[2].metadata["extraction_error"]
    nav, _, _ = _run(_fast(max_html_chars=1000, fallback="visible_text"), docs())
    assert rejection(nav) is None and nav.text == "Home About us and our story"
    nav, _, _ = _run(_fast(max_html_chars=1000, fallback="trafilatura"), docs())
    assert rejection(nav) is None and "About us and our story" in nav.text  # Trafilatura's text, from its sandbox


def test_fast_path_in_the_sandbox_gives_the_same_text():
    pages = _pages()[:3]
    inproc = _run(_fast(sandbox=False), [Document(text=d.text, id=d.id, metadata={}) for d in pages])
    boxed = _run(_fast(), [Document(text=d.text, id=d.id, metadata={}) for d in pages])
    assert [d.text for d in boxed] == [d.text for d in inproc] and all(rejection(d) is None for d in boxed)


def test_deeply_nested_page_times_out_in_the_sandbox_and_the_next_page_is_extracted():
    # Resiliparse's main-content pass is quadratic in nesting depth: 20,000 nested divs take ~30 s
    deep = "<html><body>" + "<div>" * 20_000 + "text" + "</div>" * 20_000 + "</body></html>"
    docs = [Document(text=deep, id="deep", metadata={}), Document(text=ARTICLE, id="a", metadata={})]
    out = _run(_fast(timeout=2), docs)
    assert rejection(out[0]) == ("html_extract", "extraction_timeout")
    assert rejection(out[1]) is None and "voted on Tuesday" in out[1].text


def test_web_v2_policy_selects_the_fast_extractor_and_web_v1_keeps_trafilatura():
    import yaml

    from tests.conftest import ROOT

    v1 = yaml.safe_load((ROOT / "filters" / "web-v1.yaml").read_text())
    v2 = yaml.safe_load((ROOT / "filters" / "web-v2.yaml").read_text())
    assert "html_extract" not in v1["stages"] and v2["stages"]["html_extract"]["extractor"] == "resiliparse"
    assert {k: v for k, v in v2["stages"].items() if k not in ("html_extract", "warc_reader")} == v1["stages"] and v2["models"] == v1["models"]
    assert "warc_reader" not in v1["stages"] and v2["stages"]["warc_reader"]["decoding"] == "browser"
