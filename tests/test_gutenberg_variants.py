"""Project Gutenberg e-texts in the shapes they come in: variants of the two bundled raw e-texts,
made here at test time (CRLF, CR only, a BOM, blank lines removed, Latin-1/cp1252, a stray byte in
UTF-8, 1990s markers and small print, markers without asterisks, and combinations).

Every variant must keep at least 98 % of the words between the original's markers (as a multiset),
and none of PG's header, markers or licence. A file that stripping would reduce to less than half
is kept whole with a ``strip_warning``, never dropped or cut silently."""

from __future__ import annotations

import codecs
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from r1data.sources import gutenberg
from r1data.sources.gutenberg import declared_encoding, decode_text, parse_book
from r1data.sources.segment import find_headings
from r1data.stages.base import InputFile, rejection
from r1data.stages.books import BooksReader, BooksReaderConfig

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "sample" / "books" / "gutenberg"
BOOKS = {"3261.txt": ("News from Nowhere", "William Morris"), "972.txt": ("The Devil's Dictionary", "Ambrose Bierce")}
START = re.compile(r"^\*{3} ?START OF TH(?:E|IS) PROJECT GUTENBERG EBOOK (.*?) ?\*{3}$")
END = re.compile(r"^\*{3} ?END OF TH(?:E|IS) PROJECT GUTENBERG EBOOK (.*?) ?\*{3}$")

# the 1990s "small print" in outline (the real one runs to ~12 KB), as it stood before the text
SMALL_PRINT = """**Welcome To The World of Free Plain Vanilla Electronic Texts**
**Etexts Readable By Both Humans and By Computers, Since 1971**
*****These Etexts Were Prepared By Thousands of Volunteers!*****
Information on contacting Project Gutenberg to get Etexts, and
further information is included below.  We need your donations.
***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here?  You know: lawyers.
They tell us you might sue us if there is something wrong with
your copy of this etext, even if you got it for free from
someone other than us, and even if what's wrong is not our
fault.  So, among other things, this "Small Print!" statement
disclaims most of our liability to you.  It also tells you how
you can distribute copies of this etext if you want to.
*BEFORE!* YOU USE OR READ THIS ETEXT
By using or reading any part of this PROJECT GUTENBERG-tm
etext, you indicate that you understand, agree to and accept
this "Small Print!" statement.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*"""


def original(name: str) -> str:
    return (RAW / name).read_bytes().decode("utf-8").replace("\r\n", "\n")


def marker_lines(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return next(i for i, x in enumerate(lines) if START.match(x)), next(i for i, x in enumerate(lines) if END.match(x))


def body_between_markers(text: str) -> str:
    a, b = marker_lines(text)
    return "\n".join(text.split("\n")[a + 1 : b])


# --- transformations of the (LF) text, then of its bytes


def no_blank(t: str) -> str:
    return "\n".join(x for x in t.split("\n") if x.strip())


def accented(t: str) -> str:
    """The e-texts are ASCII; give them Latin-1 letters so that their encoding matters."""
    return t.replace("ea", "\u00e9a").replace("oo", "o\u00f6")


def em_dashes(t: str) -> str:
    """``--`` as an em dash: in cp1252 (0x97) but not in Latin-1."""
    return accented(t).replace("--", "\u2014")


def old_markers(t: str, name: str) -> str:
    """The 1990s layout: "Project Gutenberg's X, by Y", the small print before the text, which starts
    after ``*END*THE SMALL PRINT!...``, and a footer ``End of the Project Gutenberg EBook of X``."""
    title, author = BOOKS[name]
    lines = t.split("\n")
    a, b = marker_lines(t)
    lines[b] = f"End of the Project Gutenberg EBook of {title}, by {author}"
    lines[a] = SMALL_PRINT
    lines[0] = f"Project Gutenberg's {title}, by {author}"
    return "\n".join(lines)


def no_asterisks(t: str) -> str:
    lines = t.split("\n")
    a, b = marker_lines(t)
    lines[a] = START.sub(r"START OF THE PROJECT GUTENBERG EBOOK \1", lines[a])
    lines[b] = END.sub(r"END OF THE PROJECT GUTENBERG EBOOK \1", lines[b])
    return "\n".join(lines)


def crlf(t: str) -> str:
    return t.replace("\n", "\r\n")


def cr(t: str) -> str:
    return t.replace("\n", "\r")


def utf8(t: str) -> bytes:
    return t.encode("utf-8")


def bom(t: str) -> bytes:
    return codecs.BOM_UTF8 + t.encode("utf-8")


def latin1(t: str) -> bytes:
    return t.encode("latin-1")


def cp1252(t: str) -> bytes:
    return t.encode("cp1252")


def utf8_with_a_stray_byte(t: str) -> bytes:
    """UTF-8, but one paragraph pasted in from a Latin-1 file (one byte that is not UTF-8)."""
    data = t.encode("utf-8")
    cut = data.index(b"\n", len(data) // 2)
    return data[:cut] + b"\ncaf\xe9" + data[cut:]


Variant = tuple[Callable[[str, str], str], Callable[[str], str], Callable[[str], bytes]]
# name -> (text transformation kept in the reference body, line endings/layout, encoding)
VARIANTS: dict[str, Variant] = {
    "lf": (lambda t, n: t, lambda t: t, utf8),
    "crlf": (lambda t, n: t, crlf, utf8),
    "cr": (lambda t, n: t, cr, utf8),
    "bom_crlf": (lambda t, n: t, crlf, bom),
    "no_blank_lines_bom_crlf": (lambda t, n: t, lambda t: crlf(no_blank(t)), bom),  # issue 15
    "no_blank_lines_cr": (lambda t, n: t, lambda t: cr(no_blank(t)), utf8),
    "latin1_crlf": (lambda t, n: accented(t), crlf, latin1),
    "cp1252_no_blank_lines": (lambda t, n: em_dashes(t), no_blank, cp1252),
    "utf8_stray_latin1_byte": (lambda t, n: accented(t), lambda t: t, utf8_with_a_stray_byte),
    "old_markers_small_print": (lambda t, n: t, lambda t: t, utf8),
    "old_markers_no_blank_lines_latin1_cr": (lambda t, n: accented(t), lambda t: cr(no_blank(t)), latin1),
    "no_asterisks_crlf": (lambda t, n: t, crlf, utf8),
    "no_asterisks_no_blank_lines_bom": (lambda t, n: t, no_blank, bom),
}


def make_variant(name: str, variant: str) -> tuple[bytes, str]:
    """``(file bytes, reference body)`` of a variant of the e-text ``name``."""
    content, layout, encode = VARIANTS[variant]
    text = content(original(name), name)
    reference = body_between_markers(text)
    if variant.startswith("old_markers"):
        text = old_markers(text, name)
    elif variant.startswith("no_asterisks"):
        text = no_asterisks(text)
    data = encode(layout(text))
    if variant == "utf8_stray_latin1_byte":
        reference += "\ncaf\u00e9"
    return data, reference


def word_retention(reference: str, got: str) -> float:
    ref = Counter(reference.split())
    return sum((ref & Counter(got.split())).values()) / sum(ref.values())


BOILERPLATE = [
    "Project Gutenberg", "PROJECT GUTENBERG", "gutenberg.org", "START OF", "*** END", "END OF TH", "SMALL PRINT",
    "This eBook is for the use of anyone", "Release Date", "Character set encoding", "Produced by", "Transcribed from",
    "Etexts", "Small Print",
]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", sorted(BOOKS))
def test_variant_keeps_the_body_and_no_boilerplate(name, variant):
    data, reference = make_variant(name, variant)
    book = parse_book(data, name=name)
    kept = word_retention(reference, book.body)
    assert kept >= 0.98, f"{variant}: {kept:.1%} of the body's words kept"
    leaked = [s for s in BOILERPLATE if s in book.body]
    assert leaked == [], f"{variant}: boilerplate kept: {leaked}"
    # decoded right: no replacement characters, no UTF-8 read as cp1252 ("Ã©" for "é")
    assert "\ufffd" not in book.body and "\u00c3" not in book.body and "\u00e2\u20ac" not in book.body
    assert book.meta["title"].startswith(BOOKS[name][0]) and book.meta["ebook_number"] == int(name.split(".")[0])
    assert book.warning is None


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_chapters_are_found_without_blank_lines(name):
    want = [h for _, h in find_headings(parse_book((RAW / name).read_bytes()).body)]
    assert len(want) == {"3261.txt": 32, "972.txt": 26}[name]
    for variant in ("no_blank_lines_bom_crlf", "no_blank_lines_cr", "old_markers_no_blank_lines_latin1_cr"):
        data, _ = make_variant(name, variant)
        assert [h for _, h in find_headings(parse_book(data).body)] == want, variant


def test_prose_is_not_a_heading_without_blank_lines():
    prose = "\n".join(["He opened the book at the page his father had marked, and read on."] * 30)
    text = prose + "\nChapter 3 was missing, and so\nwas the rest of it.\n" + prose + "\nCHAPTER II: THE RIVER\n" + prose
    text += "\nChapter IV. The Guest House\n" + prose + "\nBOOK\n" + prose
    assert [h for _, h in find_headings(text)] == ["CHAPTER II: THE RIVER", "Chapter IV. The Guest House"]


def test_header_without_start_marker_or_blank_lines():
    body = body_between_markers(original("3261.txt"))
    lines = original("3261.txt").split("\n")
    a, b = marker_lines(original("3261.txt"))
    header = [x for x in lines[:a] if x.strip()]  # title line, notice, fields: no start marker
    book = parse_book(crlf("\n".join(header + [x for x in lines[a + 1 : b] if x.strip()])).encode(), name="3261.txt")
    assert word_retention(body, book.body) >= 0.999 and "Character set encoding" not in book.body
    assert book.body.startswith("NEWS FROM NOWHERE\nOR\n") and book.stripped["credit_paragraphs"] == 1
    assert book.stripped["start_marker"] == "heuristic" and book.warning is None


def test_decoding_goes_by_evidence():
    # UTF-8 with a stray Latin-1 byte: the UTF-8 stays UTF-8 (cp1252 would give "cafÃ©" everywhere)
    assert decode_text("café, naïve\n".encode("utf-8") * 3 + b"na\xefve") == ("café, naïve\n" * 3 + "naïve", "utf-8+cp1252")
    # Latin-1 that declares UTF-8: the declaration loses to the bytes
    assert decode_text("Character set encoding: UTF-8\ncafé".encode("latin-1"), "utf-8") == ("Character set encoding: UTF-8\ncafé", "cp1252")
    # a declaration on a CR-only line is still read
    assert declared_encoding("Character set encoding: ISO-8859-1\r\rcafé".encode("latin-1")) == "iso-8859-1"


# --------------------------------------------------------------------------------------------
# stripping that would remove most of a file is undone and flagged, never silent


def test_misplaced_end_marker_keeps_the_whole_file_with_a_warning():
    text = original("3261.txt")
    lines = text.split("\n")
    a, _ = marker_lines(text)
    lines.insert(a + 60, "*** END OF THE PROJECT GUTENBERG EBOOK NEWS FROM NOWHERE ***")  # 60 lines in: 1 % of the book
    book = parse_book(crlf("\n".join(lines)).encode(), name="3261.txt")
    assert word_retention(body_between_markers(text), book.body) >= 0.999
    assert book.warning == "markers_cut_over_half"


def test_unclosed_transcriber_note_in_a_short_text_is_undone_with_a_warning():
    body = body_between_markers(original("972.txt")).split("\n")[40:120]  # ~80 lines of the dictionary
    text = "Title: X\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n[Transcriber's note: spelling kept.\n"
    text += "\n".join(x for x in body if x.strip()) + "\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    book = parse_book(text.encode())
    assert word_retention("\n".join(body), book.body) == 1.0
    assert book.warning == "credits_notes_over_half"


# --------------------------------------------------------------------------------------------
# the stage and the shards


def read(path: Path, **config) -> list:
    reader = BooksReader(BooksReaderConfig(**config))
    reader.files = [InputFile(index=0, uri=str(path))]
    return list(reader.run(None, 0, 1))


def test_books_reader_keeps_every_chapter_of_the_issue_15_file(tmp_path):
    data, reference = make_variant("3261.txt", "no_blank_lines_bom_crlf")
    (tmp_path / "3261.txt").write_bytes(data)
    docs = read(tmp_path / "3261.txt")
    assert not any(rejection(d) for d in docs) and len(docs) == 32
    same_file_with_blank_lines = read(RAW / "3261.txt")
    assert [(d.metadata["segment_kind"], d.metadata["headings"]) for d in docs] == [
        (d.metadata["segment_kind"], d.metadata["headings"]) for d in same_file_with_blank_lines
    ]
    assert all(d.metadata["strip_warning"] is None for d in docs)
    assert word_retention(reference, "\n".join(d.text for d in docs)) >= 0.98


def test_boilerplate_only_file_is_rejected_with_its_text(tmp_path):
    (tmp_path / "boiler.txt").write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
    [doc] = read(tmp_path / "boiler.txt")
    assert rejection(doc) == ("books_reader", "empty_after_stripping")
    assert doc.text.startswith("*** START OF THE PROJECT GUTENBERG EBOOK X ***")


def test_strip_warning_is_a_shard_column(tmp_path):
    good, _ = make_variant("972.txt", "no_blank_lines_cr")
    text = original("3261.txt").split("\n")
    text.insert(100, "*** END OF THE PROJECT GUTENBERG EBOOK NEWS FROM NOWHERE ***")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "972.txt").write_bytes(good)
    (tmp_path / "in" / "3261.txt").write_text("\n".join(text))
    recipe = tmp_path / "books.yaml"
    recipe.write_text("name: books-test\nstages:\n  - stage: books_reader\n    source: books\noutput:\n  path: out\n")
    code = Path(gutenberg.__file__).resolve().parents[2]  # the checkout under test
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code), str(code / "cli"), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "r1data_cli.app", "run", str(recipe), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["rejected"] == 0 and summary["read"] == summary["kept"]
    table = pq.read_table(tmp_path / "out" / "shards")
    assert "strip_warning" in table.column_names
    rows = table.select(["path", "strip_warning"]).to_pylist()
    assert {r["strip_warning"] for r in rows if r["path"] == "972.txt"} == {None}
    assert {r["strip_warning"] for r in rows if r["path"] == "3261.txt"} == {"markers_cut_over_half"}
