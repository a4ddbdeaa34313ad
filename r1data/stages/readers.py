"""Readers: WARC/WET/ARC records, JSONL and Parquet rows -> documents."""

from __future__ import annotations

import json
import re
import time
import uuid
import zlib
from collections.abc import Iterator

from datatrove.data import Document
from pydantic import Field, field_validator, model_validator

from r1data.errors import ShardError
from r1data.stages.base import InputFile, ReaderStage, StageConfig, reject
from r1data.stages.registry import register


def open_binary(uri: str):
    """Open any local path or URL smart_open understands, without transparent decompression."""
    import smart_open

    return smart_open.open(uri, "rb", compression="disable")


def open_text(uri: str, encoding: str = "utf-8"):
    """Open a (possibly compressed, possibly remote) text file; compression is inferred from the suffix."""
    import smart_open

    return smart_open.open(uri, "rt", encoding=encoding, errors="strict")


# --------------------------------------------------------------------------------------------
# WARC

HTML_TYPES = ("text/html", "application/xhtml+xml")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252"}


def _norm_charset(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    return _CHARSET_ALIASES.get(name, name)


def decode_html(payload: bytes, declared: str | None) -> tuple[str | None, str | None]:
    """Decode an HTML payload: UTF-8, then the declared charset, <meta charset>, then a detector's guess.

    UTF-8 goes first because bytes that decode as UTF-8 are almost never another encoding, while
    pages that declare latin-1 but send UTF-8 are common. Returns ``(text, charset)``, or
    ``(None, None)`` when no candidate decodes the bytes cleanly.
    """
    candidates = ["utf-8"]
    if declared and _norm_charset(declared):
        candidates.append(_norm_charset(declared))
    m = _META_CHARSET.search(payload[:4096])
    if m and _norm_charset(m.group(1).decode("ascii", "ignore")):
        candidates.append(_norm_charset(m.group(1).decode("ascii", "ignore")))
    tried = set()
    for c in candidates:
        if c in tried:
            continue
        tried.add(c)
        try:
            return payload.decode(c), c
        except (UnicodeDecodeError, LookupError):
            continue
    try:
        import cchardet

        guess = _norm_charset((cchardet.detect(payload) or {}).get("encoding"))
    except ImportError:  # pragma: no cover - faust-cchardet is in the web extra
        guess = None
    if guess and guess not in tried:
        try:
            return payload.decode(guess), guess
        except (UnicodeDecodeError, LookupError):
            pass
    return None, None


class _CountingStream:
    """Pass reads through and count the bytes, so errors and progress can name a position."""

    def __init__(self, fh):
        self.fh = fh
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        b = self.fh.read(n)
        self.pos += len(b)
        return b

    def tell(self) -> int:
        return self.pos


def _quiet_iterator_class():
    """warcio's ArchiveIterator, quiet, and checking the gzip stream it decompresses.

    warcio ends iteration quietly when the last gzip member is truncated and prints (then ignores)
    a zlib error in the middle of a member. The iterator's reader is given a subclass that records
    both instead, at no extra cost: it watches warcio's own decompressor (an earlier version
    decompressed the whole stream a second time on the side to notice the same)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.bufferedreaders import DecompressingBufferedReader

    class CheckedReader(DecompressingBufferedReader):
        error: str | None = None
        truncated: bool = False
        is_gzip: bool = False  # a member has been decompressed: the file is gzip, not plain WARC
        _fed: bool = False  # the current decompressor has been given data

        def _init_decomp(self, decomp_type):
            super()._init_decomp(decomp_type)
            self._fed = False

        def _decompress(self, data):
            if not (self.decompressor and data):
                return super()._decompress(data)
            try:
                out = self.decompressor.decompress(data)
            except zlib.error as e:
                # not gzip at all (plain WARC) or zero padding after the last member: harmless
                if self.is_gzip and data.strip(b"\x00") and self.error is None:
                    where = getattr(self.stream, "pos", None)
                    self.error = f"corrupt gzip data{f' before byte {where}' if where is not None else ''}: {e}"
                if self.num_block_read == 0:
                    return super()._decompress(data)  # warcio's own fallback: read the rest as uncompressed
                return b""  # as warcio does, without its line on stderr
            self._fed = True
            self.is_gzip = True
            return out

        def close_decompressor(self):
            d = self.decompressor
            if d is not None and self._fed and not d.eof and self.error is None:
                self.truncated = True
            super().close_decompressor()

        def problem(self) -> str | None:
            if self.error:
                return self.error
            if self.truncated:
                where = getattr(self.stream, "pos", None)
                return "truncated gzip: the file ends inside a compressed record" + (f" (after {where:,} bytes)" if where is not None else "")
            return None

    class QuietArchiveIterator(ArchiveIterator):
        INC_RECORD = ""  # warcio prints a 3-line warning per malformed record; r1data logs one line per file

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.reader.__class__ = CheckedReader
            self.checked = self.reader

    return QuietArchiveIterator


class WarcReaderConfig(StageConfig):
    source: str = Field("web", description="value of the `source` column")
    max_payload_mb: float = Field(20.0, gt=0, description="larger payloads are dropped with reason payload_too_large")
    keep_non_html: bool = Field(False, description="keep text/plain responses as documents instead of dropping them")


@register
class WarcReader(ReaderStage):
    """Read WARC (and WET, ARC) files: one document per HTTP response or WET conversion record."""

    name = "warc_reader"
    Config = WarcReaderConfig
    file_patterns = ("*.warc", "*.warc.gz", "*.warc.zst", "*.arc", "*.arc.gz", "*.wet", "*.wet.gz")
    requires = {"warcio": "web", "cchardet": "web"}
    example = """\
- stage: warc_reader
  source: web
"""

    def setup(self) -> None:
        self.source = self.config.source

    def read_file(self, file: InputFile) -> Iterator[Document]:
        from warcio.exceptions import ArchiveLoadFailed

        _QuietArchiveIterator = _quiet_iterator_class()

        limit = int(self.config.max_payload_mb * 2**20)
        try:
            stream = open_binary(file.uri)
        except OSError as e:
            raise ShardError(file.uri, f"cannot open: {e}") from None
        with stream:
            counting = _CountingStream(stream)
            self.pos_in_file = 0  # bytes of this input consumed so far (the progress line's ETA)
            it = None
            try:
                it = _QuietArchiveIterator(counting)
                timer, clock = self.stats.time_stats, time.perf_counter
                t0 = clock()  # the reader's own time (parsing, decompression, decoding), not the stages' after it
                for record in it:
                    doc = self._record_to_doc(record, limit, file.uri, it)
                    self.pos_in_file = counting.pos
                    if doc is not None:
                        timer.update(clock() - t0)
                        yield doc
                        t0 = clock()
            except ArchiveLoadFailed as e:
                what = " ".join(str(e).split(", first line")[0].split())[:200]
                raise ShardError(file.uri, f"not a valid WARC/ARC file: {what}") from None
            except (EOFError, zlib.error) as e:
                raise ShardError(file.uri, f"truncated or corrupt compressed stream: {e}") from None
            finally:
                self.pos_in_file = 0
            problem = it.checked.problem()
            if problem:
                raise ShardError(file.uri, problem)
            if it.err_count:
                from datatrove.utils.logging import logger

                logger.warning(f"{file.uri}: {it.err_count} record(s) not followed by a blank line (wrong Content-Length?)")

    def _record_to_doc(self, record, limit: int, uri: str, it) -> Document | None:
        rtype = record.rec_type
        if rtype not in ("response", "conversion"):
            return None  # request, metadata, warcinfo, revisit: not documents
        headers = record.rec_headers
        payload = record.content_stream().read(limit + 1)
        if record.format == "arc":  # legacy ARC: no record id, a 14-digit date
            url = headers.get_header("uri")
            if not url or "://" not in url[:32] or not url.isprintable():
                raise ShardError(uri, "not a valid WARC/ARC file: an ARC record without a URL")
            raw_date = headers.get_header("archive-date") or ""
            date = (
                f"{raw_date[:4]}-{raw_date[4:6]}-{raw_date[6:8]}T{raw_date[8:10]}:{raw_date[10:12]}:{raw_date[12:14]}Z"
                if len(raw_date) >= 14 and raw_date.isdigit() else raw_date or None
            )
            # a stable id from where the record is, so reruns agree (warcio would invent a random one);
            # the offset is known only once the payload has been read
            where = f"{uri.rsplit('/', 1)[-1]}:{it.get_record_offset()}"
            rid = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{url} {raw_date} {where}')}"
        else:
            rid = (headers.get_header("WARC-Record-ID") or "").strip("<>")
            url = headers.get_header("WARC-Target-URI")
            date = headers.get_header("WARC-Date")
        md = {"url": url, "date": date, "warc_type": rtype}
        if rtype == "conversion":  # WET: text already extracted by Common Crawl
            text, _ = decode_html(payload, "utf-8")
            doc = Document(text=text or "", id=rid or url, metadata=md | {"content_type": "text/plain", "_extracted": True})
            if text is None:
                reject(doc, self.label, "undecodable")
            return doc
        http = record.http_headers
        status = http.get_statuscode() if http is not None else None
        ctype_full = (http.get_header("Content-Type") if http is not None else None) or ""
        ctype = ctype_full.split(";")[0].strip().lower()
        declared = None
        if "charset=" in ctype_full.lower():
            declared = ctype_full.lower().split("charset=", 1)[1].split(";")[0]
        md |= {"http_status": int(status) if status and status.isdigit() else status, "content_type": ctype or None}
        doc = Document(text="", id=rid or url, metadata=md)
        if len(payload) > limit:
            reject(doc, self.label, "payload_too_large")
            return doc
        if status and not str(status).startswith("2"):
            reject(doc, self.label, f"http_status_{status}")
            return doc
        is_text = ctype.startswith("text/plain") and self.config.keep_non_html
        if ctype and ctype not in HTML_TYPES and not is_text:
            reject(doc, self.label, "non_html_content")
            return doc
        if not ctype and not payload.lstrip()[:200].lower().startswith((b"<!doctype html", b"<html", b"<?xml")):
            if b"<html" not in payload[:2048].lower():
                reject(doc, self.label, "non_html_content")
                return doc
        text, charset = decode_html(payload, declared)
        if text is None:
            reject(doc, self.label, "undecodable")
            return doc
        doc.text = text
        doc.metadata["charset"] = charset
        if is_text:
            doc.metadata["_extracted"] = True
        if not text.strip():
            reject(doc, self.label, "empty_payload")
        return doc


# --------------------------------------------------------------------------------------------
# JSONL / JSON / Parquet / CSV rows, with a field mapping (r1data.sources.rows)


class RowReaderConfig(StageConfig):
    source: str = Field(..., description="value of the `source` column, e.g. math (r1data shards keep their own)")
    text_field: str = Field("text", description="field holding the text (when no template is given)")
    template: str | list[str] | None = Field(
        None, description='text built from fields, e.g. "{question}\\n\\n{answer}"; a list: the first whose fields the row has'
    )
    id_field: str | None = Field("id", description="field holding a stable id; default source:file#row")
    url_field: str | None = Field(None, description="field for the `url` column (default: a field named url)")
    path_field: str | None = Field(None, description="field for the `path` column (default: a field named path)")
    date_field: str | None = Field(None, description="field for the `date` column (default: a field named date)")
    meta_fields: list[str] | None = Field(None, description="fields kept in `meta`; null: every field not used above")
    rename: dict[str, str] = Field({}, description="metadata key renames, e.g. {category: topic}")
    drop_template_fields: bool = Field(True, description="fields a template used are not repeated in `meta`")

    @field_validator("template")
    @classmethod
    def _templates(cls, v):
        from r1data.sources.rows import template_fields

        if v is None:
            return v
        items = [v] if isinstance(v, str) else v
        if not items:
            raise ValueError("give a template string or a non-empty list of them")
        for t in items:
            if not template_fields(t):
                raise ValueError(f"template {t!r} names no field; write fields as {{name}}")
        return v

    def mapping(self):
        from r1data.sources.rows import RowMapping

        tpl = [self.template] if isinstance(self.template, str) else list(self.template or [])
        return RowMapping(
            text_field=self.text_field, templates=tpl, id_field=self.id_field, url_field=self.url_field,
            path_field=self.path_field, date_field=self.date_field, meta_fields=self.meta_fields,
            rename=dict(self.rename), drop_template_fields=self.drop_template_fields,
        )


def _row_id(source: str, uri: str, n: int) -> str:
    return f"{source}:{uri.rsplit('/', 1)[-1]}#{n}"


class _RowReader(ReaderStage):
    def setup(self) -> None:
        self.source = self.config.source
        self._mapping = self.config.mapping()

    def _to_doc(self, row: dict, uri: str, n: int, r1data_row: bool | None = None) -> Document:
        text, rid, md, problem = self._mapping.apply(row, r1data_row)
        doc = Document(text=text or "", id=rid if rid is not None else _row_id(self.source, uri, n), metadata=md)
        if problem:
            reject(doc, self.label, problem)
        return doc


_ROW_EXAMPLE = """\
- stage: {name}
  source: math
  template: "Question: {{question}}\\nAnswer: {{answer}}"   # or text_field: text
  id_field: null                                         # ids: math:<file>#<row>
"""


@register
class JsonlReader(_RowReader):
    """Read JSON Lines or JSON arrays (optionally compressed): one document per row, fields mapped to text and meta."""

    name = "jsonl_reader"
    Config = RowReaderConfig
    file_patterns = tuple(f"*{e}{c}" for e in (".jsonl", ".ndjson", ".json") for c in ("", ".gz", ".bz2", ".zst", ".xz"))
    example = _ROW_EXAMPLE.format(name="jsonl_reader")

    def read_file(self, file: InputFile) -> Iterator[Document]:
        try:
            fh = open_text(file.uri)
            with fh:
                first = fh.read(1)
                while first and first.isspace():
                    first = fh.read(1)
                if first == "[":  # a JSON array of rows, not JSON Lines
                    yield from self._array(first + fh.read(), file.uri)
                    return
                yield from self._lines(first + fh.readline(), fh, file.uri)
        except OSError as e:
            raise ShardError(file.uri, f"cannot read: {e}") from None
        except UnicodeDecodeError as e:
            raise ShardError(file.uri, f"not UTF-8 text (byte {e.start}): convert it or use another reader") from None
        except EOFError as e:
            raise ShardError(file.uri, f"truncated file (compressed stream ended early): {e}") from None

    def _lines(self, head: str, fh, uri: str) -> Iterator[Document]:
        import itertools

        for n, line in enumerate(itertools.chain([head], fh)):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                doc = Document(text=line[:10000], id=_row_id(self.source, uri, n), metadata={"error": f"line {n + 1}: {e.msg}"})
                reject(doc, self.label, "invalid_json")
                yield doc
                continue
            if not isinstance(row, dict):
                row = {"value": row}
            yield self._to_doc(row, uri, n)

    def _array(self, data: str, uri: str) -> Iterator[Document]:
        try:
            rows = json.loads(data)
        except json.JSONDecodeError as e:
            raise ShardError(uri, f"invalid JSON array at line {e.lineno}, column {e.colno}: {e.msg}") from None
        for n, row in enumerate(rows):
            yield self._to_doc(row if isinstance(row, dict) else {"value": row}, uri, n)


@register
class ParquetReader(_RowReader):
    """Read Parquet files row group by row group (r1data shards round-trip): one document per row."""

    name = "parquet_reader"
    Config = RowReaderConfig
    file_patterns = ("*.parquet",)
    example = """\
- stage: parquet_reader
  source: web
  text_field: text
"""

    def read_file(self, file: InputFile) -> Iterator[Document]:
        import pyarrow.parquet as pq

        try:
            fh = open_binary(file.uri)
            pf = pq.ParquetFile(fh)
        except Exception as e:
            raise ShardError(file.uri, f"not a readable Parquet file: {e}") from None
        meta = pf.schema_arrow.metadata or {}
        names = set(pf.schema_arrow.names)
        r1data_shard = b"r1data.schema_version" in meta or {"id", "text", "source", "input_file", "input_index", "record_index"} <= names
        columns = self._columns(names, r1data_shard)
        n = 0
        with fh:
            try:
                for batch in pf.iter_batches(batch_size=1024, columns=columns):
                    for row in batch.to_pylist():
                        yield self._to_doc(row, file.uri, n, r1data_shard)
                        n += 1
            except Exception as e:  # a corrupt row group: keep what was read
                raise ShardError(file.uri, f"corrupt Parquet data after row {n}: {e}") from None

    def _columns(self, names: set[str], r1data_shard: bool) -> list[str] | None:
        """Only the columns the mapping uses, when ``meta_fields`` limits the metadata."""
        c = self.config
        if c.meta_fields is None or r1data_shard:
            return None
        m = self._mapping
        want = set(c.meta_fields) | {c.text_field, "url", "path", "date"}
        want |= {f for fields in m._fields for f in fields}
        want |= {x for x in (c.id_field, c.url_field, c.path_field, c.date_field) if x}
        return [n for n in names if n in want]


class CsvReaderConfig(RowReaderConfig):
    delimiter: str | None = Field(None, min_length=1, max_length=1, description="field separator; default: tab for .tsv/.tab, else comma")
    quotechar: str = Field('"', min_length=1, max_length=1)
    header: bool = Field(True, description="the first row names the fields")
    columns: list[str] | None = Field(None, description="field names when the file has no header row")
    encoding: str = Field("utf-8-sig", description="text encoding (utf-8-sig also reads UTF-8 with a BOM)")

    @model_validator(mode="after")
    def _names(self):
        if not self.header and not self.columns:
            raise ValueError("a CSV without a header row needs columns: [name, ...]")
        return self


@register
class CsvReader(_RowReader):
    """Read CSV/TSV files (optionally compressed): one document per row, fields mapped to text and meta."""

    name = "csv_reader"
    Config = CsvReaderConfig
    file_patterns = tuple(f"*{e}{c}" for e in (".csv", ".tsv", ".tab") for c in ("", ".gz", ".bz2", ".zst", ".xz"))
    example = """\
- stage: csv_reader
  source: qa
  template: "{question}\\n\\n{answer}"
  delimiter: ","
"""

    def read_file(self, file: InputFile) -> Iterator[Document]:
        import csv
        import sys

        c = self.config
        plain = file.uri.lower()
        for suffix in (".gz", ".bz2", ".zst", ".xz"):
            plain = plain.removesuffix(suffix)
        delimiter = c.delimiter or ("\t" if plain.endswith((".tsv", ".tab")) else ",")
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        try:
            fh = open_text(file.uri, encoding=c.encoding)
        except (OSError, LookupError) as e:
            raise ShardError(file.uri, f"cannot open: {e}") from None
        with fh:
            reader = csv.reader(fh, delimiter=delimiter, quotechar=c.quotechar)
            try:
                names = list(c.columns) if c.columns else None
                if c.header:
                    first = next(reader, None)
                    if first is None:
                        return
                    names = names or [h.strip() for h in first]
                n = 0
                while True:
                    try:
                        values = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as e:
                        doc = Document(text="", id=_row_id(self.source, file.uri, n), metadata={"error": f"line {reader.line_num}: {e}"})
                        reject(doc, self.label, "invalid_csv")
                        n += 1
                        yield doc
                        continue
                    if not values:
                        continue
                    row = dict(zip(names, values))
                    if len(values) > len(names):
                        row["extra_fields"] = values[len(names):]
                    yield self._to_doc(row, file.uri, n)
                    n += 1
            except UnicodeDecodeError as e:
                raise ShardError(file.uri, f"not {c.encoding} text (byte {e.start}); set encoding:") from None
