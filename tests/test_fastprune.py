"""Trafilatura's pruning XPaths compiled to Python (r1data/sources/fastprune.py) select exactly what libxml2
selects, on real pages, and Trafilatura's text does not change by one byte when they are installed."""

from __future__ import annotations

import glob
import gzip
from pathlib import Path

import pytest
from lxml import etree

fastwarc = pytest.importorskip("fastwarc.warc")
trafilatura = pytest.importorskip("trafilatura")

from trafilatura import xpaths  # noqa: E402
from trafilatura.utils import load_html  # noqa: E402

from r1data.sources import fastprune  # noqa: E402
from r1data.sources.fastprune import FastPath, compile_xpath  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
LISTS = fastprune._LISTS


def _sample_pages(limit: int) -> list[str]:
    out = []
    for path in sorted(glob.glob(str(ROOT / "data" / "sample" / "web" / "*.warc.gz"))):
        with open(path, "rb") as f:
            for rec in fastwarc.ArchiveIterator(f, record_types=fastwarc.WarcRecordType.response):
                out.append(rec.reader.read().split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace"))
                if len(out) >= limit:
                    return out
    return out


def _benchmark_pages(limit: int) -> list[str]:
    folder = SHARED / "extraction-benchmark" / "html"
    files = sorted(folder.glob("*"))[:limit] if folder.is_dir() else []
    return [gzip.decompress(f.read_bytes()).decode("utf-8", "replace") for f in files if f.is_file()]


# Real pages rarely carry every kind of boilerplate (no sample page has a "teaser"): one page that
# does, with upper-case variants and both attribute orders, so that every expression selects something.
BOILERPLATE = """<html><body><div id="TeaserBox">t</div><section class="article-teaser">t</section>
<span class="x" id="teaser">t</span><div class="image-caption" id="c">c</div><p id="figcaption">c</p>
<div id="bottom-links" class="b">b</div><div class="linkbox">l</div><div style="border: 1px">s</div>
<header>h</header><div class="comments-title">c</div><div id="reader-comments">c</div>
<div class="Footer">f</div><div class="nav_bar">n</div><div class="top-nav-bar">n</div><div id="NavMain">n</div><span role="Navigation">n</span><p aria-hidden="true">h</p>
<div id="x" style="hidden">h</div><div style="display:none" id="hiddenbox">h</div>
<div class="comments" id="comments">c</div><div id="respond">r</div><ul class="commentlist"><li>c</li></ul>
</body></html>"""


@pytest.fixture(scope="module")
def trees():
    pages = _sample_pages(250) + _benchmark_pages(80) + [BOILERPLATE]
    assert len(pages) >= 300
    return [t for t in (load_html(p) for p in pages) if t is not None]


@pytest.fixture
def original_lists():
    """install() edits Trafilatura's lists in place: put the libxml2 XPaths back after each test."""
    saved = {name: list(getattr(xpaths, name)) for name in LISTS}
    yield saved
    for name, items in saved.items():
        getattr(xpaths, name)[:] = items


def test_every_trafilatura_pruning_xpath_selects_the_same_elements(trees, original_lists):
    compiled = 0
    for name, items in original_lists.items():
        for x in items:
            fast = compile_xpath(x)
            if fast is x:
                continue  # outside the understood subset: keeps its XPath
            compiled += 1
            selected = 0
            for tree in trees:
                want = x(tree)
                assert fast(tree) == want, f"{name}: {x.path[:80]!r}"
                selected += len(want)
            assert selected > 0, f"{name} selects nothing on the pages: the comparison would prove nothing"
    assert compiled >= 7  # Trafilatura 1.12: 8 of its 9 pruning expressions


# Expressions beyond Trafilatura's own: and/not, a three-way union whose order on the element decides,
# translate with several characters and with deletion, equality on a union, nested parentheses.
EXTRA = [
    './/*[self::div or self::span][contains(@class, "a") and not(contains(@id, "b"))]',
    './/*[starts-with(@class|@id|@style, "m")]',
    './/*[contains(@id|@class, "e")]',
    './/*[contains(translate(@class, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"), "nav")]',
    './/*[contains(translate(@class, "-_", ""), "navbar")]',
    './/*[contains(translate(@class, "n", "N"), "nav") or contains(translate(@id, "n", "N"), "Nav")]',
    './/*[@class="row" or @id|@class="main"]',
    './/*[(@href and not(@class)) or (@role and contains(@role, "a"))]',
    './/li[contains(@class, "item")][@class]',
    './/*[self::a][starts-with(@href, "http")]',
]


@pytest.mark.parametrize("path", EXTRA)
def test_more_expressions_of_the_subset_agree_with_libxml2(trees, path):
    fast = FastPath(path)
    x = etree.XPath(path)
    selected = 0
    for tree in trees[:120] + trees[-1:]:
        want = x(tree)
        assert fast(tree) == want
        selected += len(want)
    assert selected > 0


def test_attribute_order_decides_a_union():
    tree = etree.fromstring('<html><body><div class="share" id="x"/><div id="x" class="share"/>'
                            '<div id="sharebox"/><div class="footer"/><p><!-- c --></p></body></html>')
    for path in ('.//*[starts-with(@id|@class, "shar")]', './/*[contains(@id|@class, "x")]',
                 './/*[contains(translate(@class, "F", "f"), "footer")]'):
        assert FastPath(path)(tree) == etree.XPath(path)(tree)
    assert len(FastPath('.//*[starts-with(@id|@class, "shar")]')(tree)) == 2  # the first div and the third
    doc = etree.ElementTree(tree)  # lxml evaluates on a tree from its root element: never selected itself
    assert FastPath(".//*[self::html or self::body]")(doc) == etree.XPath(".//*[self::html or self::body]")(doc)
    assert len(FastPath(".//*[self::html or self::body]")(doc)) == 1


@pytest.mark.parametrize("path", ["//div[@class]", ".//div[1]", './/*[position() < 3]', ".//*[count(a) > 1]",
                                  './/*[contains(., "x")]', ".//div/p", './/*[translate(@a, "b", "c")]'])
def test_outside_the_subset_the_xpath_is_kept(path):
    x = etree.XPath(path)
    assert compile_xpath(x) is x


def test_trafilatura_text_is_byte_identical_when_installed(original_lists):
    pages = _sample_pages(40) + _benchmark_pages(20)
    kw = dict(favor_precision=True, include_comments=False, include_tables=True, deduplicate=False)
    before = [trafilatura.extract(p, **kw) for p in pages]
    assert fastprune.install() >= 7
    assert fastprune.install() == 0  # again: nothing left to swap
    assert any(isinstance(x, FastPath) for x in xpaths.OVERALL_DISCARD_XPATH)
    after = [trafilatura.extract(p, **kw) for p in pages]
    assert sum(bool(t) for t in before) >= 40
    assert after == before
