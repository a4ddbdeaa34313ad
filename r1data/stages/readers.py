"""Readers: WARC/WET/ARC records, JSONL and Parquet rows -> documents."""

from __future__ import annotations

import codecs
import json
import re
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Literal, NamedTuple

from datatrove.data import Document
from pydantic import Field, field_validator, model_validator

from r1data.errors import ShardError
from r1data.stages.base import InputFile, ReaderStage, StageConfig, reject
from r1data.stages.registry import register


def open_binary(uri: str):
    """Open any local path or URL smart_open understands, without transparent decompression."""
    import smart_open

    return smart_open.open(uri, "rb", compression="disable")


def open_decompressed(uri: str):
    """Open a (possibly compressed, possibly remote) file as bytes, decompressed by its suffix."""
    import smart_open

    return smart_open.open(uri, "rb", compression="infer_from_extension")


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


# --- browser-like decoding (warc_reader ``decoding: browser``) ---------------------------------
#
# The order of the WHATWG Encoding Standard and HTML's "determine the character encoding": a
# byte-order mark, the HTTP Content-Type charset, a <meta charset>/http-equiv in the first bytes,
# then the bytes themselves. Two departures, both on evidence a browser ignores: a declared
# charset that does not decode the bytes is evidence against it (the next one is tried), and
# bytes that are valid UTF-8 with multi-byte characters are UTF-8 whatever a legacy label says.

# WHATWG labels whose decoder differs from Python's codec of the same name
_WHATWG_LABELS = {
    **dict.fromkeys(("iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "ascii", "us-ascii", "cp819", "ibm819",
                     "iso-ir-100", "csisolatin1", "x-cp1252", "windows-1252", "cp1252"), "cp1252"),
    **dict.fromkeys(("iso-8859-9", "iso8859-9", "iso_8859-9", "latin5", "l5", "windows-1254"), "cp1254"),
    **dict.fromkeys(("iso-8859-11", "iso8859-11", "tis-620", "windows-874", "dos-874"), "cp874"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "chinese", "csgb2312", "gb_2312", "gb_2312-80", "iso-ir-58", "cp936", "gb18030"), "gb18030"),
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "ms_kanji", "x-sjis", "windows-31j", "csshiftjis", "ms932", "cp932"), "cp932"),
    **dict.fromkeys(("euc-kr", "euc_kr", "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601", "ksc_5601", "korean", "windows-949", "cp949"), "cp949"),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "x-x-big5", "csbig5"), "big5hkscs"),
    **dict.fromkeys(("utf-16", "utf-16le", "unicode", "ucs-2", "csunicode", "unicodefeff"), "utf-16-le"),
    "utf-16be": "utf-16-be",
    "unicodefffe": "utf-16-be",
}
# text codecs a page may name; anything else (base64, rot13, idna, unicode_escape ...) is ignored
_WEB_CODEC = re.compile(r"^(utf-8|utf-16-[lb]e|cp\d+|iso8859-\d+|koi8-[rtu]|mac-\w+|gb18030|gb2312|gbk|big5\w*|euc_\w+|shift_jis\w*|"
                        r"iso2022_\w+|hz|johab|tis-620|kz1048|ptcp154|latin-1)$")
_HTML_LANG = re.compile(rb"""<html[^>]*?\slang\s*=\s*["']?([A-Za-z]{2,3})""", re.I)
# a page's language -> the legacy encoding a browser of that locale falls back to
_LANG_FALLBACK = {
    **dict.fromkeys(("pl", "cs", "sk", "hu", "sl", "hr", "ro", "bs", "sr"), "cp1250"),
    **dict.fromkeys(("ru", "uk", "be", "bg", "mk", "kk"), "cp1251"),
    "el": "cp1253", "tr": "cp1254", "az": "cp1254", "he": "cp1255", "iw": "cp1255", "ar": "cp1256", "fa": "cp1256", "ur": "cp1256",
    **dict.fromkeys(("lt", "lv", "et"), "cp1257"),
    "vi": "cp1258", "th": "cp874", "ja": "cp932", "zh": "gb18030", "ko": "cp949",
}
_MARK = "\udc00"  # stands for one invalid byte sequence while decoding; a strict codec never yields a lone surrogate


def _mark_invalid(err: UnicodeDecodeError):
    return _MARK, err.end


codecs.register_error("r1data-mark", _mark_invalid)


def web_codec(label: str | None) -> str | None:
    """The Python codec a browser would use for a charset label, or None for an unknown label."""
    if not label:
        return None
    label = label.strip().strip("\"'").strip().lower()
    if label in _WHATWG_LABELS:
        return _WHATWG_LABELS[label]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    name = _WHATWG_LABELS.get(name, name)
    return name if _WEB_CODEC.match(name) else None


class Decoded(NamedTuple):
    text: str | None
    encoding: str | None  # the Python codec used, e.g. utf-8, cp1252, cp932, gb18030
    source: str | None  # why: bom, http, meta, detected
    replaced: int = 0  # invalid byte sequences replaced by U+FFFD
    declared: str | None = None  # a declared charset that was not used (overruled by the bytes or by the header)


def _lenient(payload: bytes, codec: str) -> tuple[str, int, int]:
    """Decode replacing invalid sequences; returns (text, invalid sequences, valid non-ASCII characters)."""
    text = payload.decode(codec, "r1data-mark")
    bad = text.count(_MARK)
    if bad:
        text = text.replace(_MARK, "\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - bad
    return text, bad, non_ascii


def _mostly_valid(bad: int, good: int) -> bool:
    """A few invalid sequences among many valid multi-byte characters: damage, not another encoding."""
    return good >= 3 * bad


def _strip_markup(payload: bytes) -> bytes:
    """Text between tags (scripts and styles dropped): the bytes a detector should weigh."""
    body = re.sub(rb"(?is)<(script|style)\b.*?</\1\s*>", b" ", payload)
    return re.sub(rb"<[^>]*>", b" ", body)


def _detect(payload: bytes, exclude: set[str]) -> str | None:
    """Byte evidence (charset-normalizer); near-ties go to the page language's legacy encoding, then cp1252."""
    from charset_normalizer import from_bytes

    sample = _strip_markup(payload)
    if len(sample) - len(sample.translate(None, bytes(range(128, 256)))) < 16:
        sample = payload
    matches = [m for m in from_bytes(sample, preemptive_behaviour=False) if web_codec(m.encoding) not in exclude]
    if not matches:
        return None
    best = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= best + 0.01]
    top = max(m.coherence for m in tied)
    tied = [m for m in tied if m.coherence >= top - 0.01]
    lang = _HTML_LANG.search(payload[:4096])
    prefer = [_LANG_FALLBACK.get(lang.group(1).decode().lower()) if lang else None, "cp1252"]
    for want in prefer:
        for m in tied:
            if want and any(web_codec(c) == want for c in [m.encoding, *m.could_be_from_charset]):
                return want
    return web_codec(tied[0].encoding)


def decode_web(payload: bytes, http_charset: str | None = None, find_meta: bool = True) -> Decoded:
    """Decode an HTTP body as a browser would, then check the choice against the bytes.

    Order: BOM; the HTTP charset; ``<meta charset>``/http-equiv in the first 4 KB; bytes that
    are valid UTF-8; mostly-valid UTF-8 (a few broken sequences among many good ones, decoded
    with U+FFFD); charset-normalizer. A declared charset is used when it decodes the bytes (or
    all but a few sequences); one that does not is evidence against it. Text that is valid UTF-8
    with multi-byte characters is UTF-8 even when a legacy charset is declared.
    """
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if payload.startswith(bom):
            text, bad, _ = _lenient(payload[len(bom):], codec)
            return Decoded(text, codec, "bom", bad)
    declared = [(web_codec(http_charset), "http")]
    if find_meta:
        m = _META_CHARSET.search(payload[:4096])
        if m:  # as in WHATWG, a page that can say "utf-16" in ASCII bytes is not UTF-16
            codec = web_codec(m.group(1).decode("ascii", "ignore"))
            declared.append(("utf-8" if codec in ("utf-16-le", "utf-16-be") else codec, "meta"))
    d = _choose(payload, declared)
    lost = next((c for c, _ in declared if c and c != d.encoding), None) if d.encoding else None
    return d._replace(declared=lost) if lost else d


def _choose(payload: bytes, declared: list[tuple[str | None, str]]) -> Decoded:
    try:
        as_utf8: str | None = payload.decode("utf-8")
    except UnicodeDecodeError:
        as_utf8 = None
    multibyte_utf8 = as_utf8 is not None and not as_utf8.isascii()
    exclude: set[str] = set()
    for codec, source in declared:
        if codec is None or codec in exclude:
            continue
        if codec == "utf-8":
            if as_utf8 is not None:
                return Decoded(as_utf8, "utf-8", source)
        elif codec.startswith("utf-16"):
            if b"\x00" in payload[:1024]:  # UTF-16 text of a mostly-ASCII page is full of NULs
                text, bad, good = _lenient(payload, codec)
                if _mostly_valid(bad, len(text) - bad):
                    return Decoded(text, codec, source, bad)
            exclude.add(codec)
            continue
        elif multibyte_utf8:  # valid multi-byte UTF-8 is almost never text in another encoding
            continue
        else:
            try:
                return Decoded(payload.decode(codec), codec, source)
            except UnicodeDecodeError:
                pass
        text, bad, good = _lenient(payload, codec)
        if _mostly_valid(bad, good):
            return Decoded(text, codec, source, bad)
        exclude.add(codec)  # it does not decode these bytes: evidence against it
    if as_utf8 is not None:
        return Decoded(as_utf8, "utf-8", "detected")
    if "utf-8" not in exclude:
        text, bad, good = _lenient(payload, "utf-8")
        if _mostly_valid(bad, good):
            return Decoded(text, "utf-8", "detected", bad)
        exclude.add("utf-8")
    codec = _detect(payload, exclude)
    if codec is None:
        return Decoded(None, None, None)
    try:
        return Decoded(payload.decode(codec), codec, "detected")
    except UnicodeDecodeError:
        text, bad, _ = _lenient(payload, codec)
        return Decoded(text, codec, "detected", bad)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _non_ascii_windows(text: str, context: int = 8, block: int = 256) -> str:
    """The runs of non-ASCII characters in ``text`` (every mojibake pattern holds one) with ``context``
    characters either side, joined by newlines. ``str.isascii`` skips ASCII blocks at C speed."""
    spans: list[list[int]] = []
    for start in range(0, len(text), block):
        if text[start:start + block].isascii():
            continue
        for m in _NON_ASCII.finditer(text, start, start + block):
            a, b = max(m.start() - context, 0), m.end() + context
            if spans and a <= spans[-1][1]:
                spans[-1][1] = b
            else:
                spans.append([a, b])
    return "\n".join(text[a:b] for a, b in spans)


_SCRIPTS = re.compile(r"(?is)<(script|style)\b.*?</\1\s*>|<!--.*?-->")


def mojibake(text: str, html: bool = True) -> tuple[int, int]:
    """(ftfy's count of mojibake-looking sequences, U+FFFD replacement characters) in ``text``.

    In HTML, sequences inside scripts, styles and comments do not count (transliteration tables
    in JavaScript look like mojibake to ftfy); they are looked for only when the page has some."""
    if text.isascii():
        return 0, 0
    from ftfy.badness import badness

    replacement = text.count("\ufffd")
    plain = text.replace("\ufffd", "") if replacement else text  # ftfy counts U+FFFD as bad: they are counted apart
    bad = badness(_non_ascii_windows(plain))
    if bad and html:
        bad = badness(_non_ascii_windows(_SCRIPTS.sub(" ", plain)))
    return bad, replacement


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
        uri: str = ""
        out_bytes: int = 0  # decompressed so far: checked against the compressed bytes read
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
            self.out_bytes += len(out)
            read = getattr(self.stream, "pos", 0)
            if self.out_bytes > RATIO_FLOOR and self.out_bytes > MAX_RATIO * read:
                raise ShardError(
                    self.uri,
                    f"input_too_large: decompresses to more than {MAX_RATIO}x its size "
                    f"({self.out_bytes:,} bytes from {read:,}): a compression bomb?",
                )
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

        def __init__(self, fileobj, uri: str = "", **kw):
            super().__init__(fileobj, **kw)
            self.reader.__class__ = CheckedReader
            self.reader.uri = uri
            self.checked = self.reader
            self.reader.readline = _bounded_readline(self.reader.readline, uri)

    return QuietArchiveIterator


def _next_warc_member(stream, start: int, window: int = 1 << 20) -> int | None:
    """The offset of the first gzip member at or after ``start`` whose text begins a WARC record
    (``WARC/``), or None; ``stream`` is seekable and is left anywhere."""
    pos = start
    while True:
        stream.seek(pos)
        block = stream.read(window + 4096)
        if len(block) < 18:
            return None
        i = block.find(b"\x1f\x8b\x08")
        while 0 <= i < window:
            try:
                head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(block[i : i + 4096], 16)
            except zlib.error:
                head = b""
            if head.startswith(b"WARC/"):
                return pos + i
            i = block.find(b"\x1f\x8b\x08", i + 1)
        if len(block) <= window:
            return None
        pos += window


def _missing_bytes(record) -> int:
    """Bytes of ``record``'s declared Content-Length that the file did not have (0 when complete or
    unknown); meaningful once the record's content has been read to its end."""
    if record is None:
        return 0
    remaining = getattr(record.raw_stream, "limit", 0)
    return remaining if isinstance(remaining, int) and remaining > 0 else 0


#: decompressed bytes allowed per compressed byte (real WARCs: ~5; 1 GB of zeros: ~1000), and the
#: size below which no ratio is checked
MAX_RATIO = 100
RATIO_FLOOR = 256 * 2**20
#: longest WARC/HTTP header line accepted; warcio otherwise buffers a line that never ends (1 GB of
#: zeros took 13.5 GiB)
MAX_HEADER_LINE = 1 * 2**20


def _bounded_readline(readline, uri: str):
    def bounded(length=None):
        cap = MAX_HEADER_LINE + 1 if not length or length < 0 else min(length, MAX_HEADER_LINE + 1)
        line = readline(cap)
        if len(line) > MAX_HEADER_LINE and not line.endswith(b"\n"):
            raise ShardError(uri, f"corrupt_input: a record header line longer than {MAX_HEADER_LINE:,} bytes (not a WARC file?)")
        return line

    return bounded


class WarcReaderConfig(StageConfig):
    source: str = Field("web", description="value of the `source` column")
    max_payload_mb: float = Field(20.0, gt=0, description="larger payloads are dropped with reason payload_too_large")
    keep_non_html: bool = Field(False, description="keep text/plain responses as documents instead of dropping them")
    decoding: Literal["v1", "browser"] = Field(
        "v1",
        description="v1: UTF-8, the declared charset, <meta charset>, then cchardet (web-v1's output); browser: BOM, HTTP "
        "charset, <meta>, then byte evidence, checked against the bytes; adds the `encoding` column and the mojibake check",
    )
    on_mojibake: Literal["reject", "repair", "keep"] = Field(
        "reject",
        description="(decoding: browser) text that still looks mis-decoded: reject it (encoding_suspect), repair it with ftfy "
        "(rejected when that is not enough), or keep it marked with meta.encoding_suspect",
    )
    max_replacement_frac: float = Field(
        0.005, ge=0, le=1, description="(decoding: browser) more U+FFFD replacement characters than this fraction of the text is suspect"
    )

    @model_validator(mode="after")
    def _browser_only(self):
        extra = sorted({"on_mojibake", "max_replacement_frac"} & self.model_fields_set)
        if self.decoding != "browser" and extra:
            raise ValueError(f"{' and '.join(extra)} apply only with decoding: browser")
        return self


@register
class WarcReader(ReaderStage):
    """Read WARC (and WET, ARC) files: one document per HTTP response or WET conversion record."""

    name = "warc_reader"
    Config = WarcReaderConfig
    file_patterns = ("*.warc", "*.warc.gz", "*.warc.zst", "*.arc", "*.arc.gz", "*.wet", "*.wet.gz")
    requires = {"warcio": "web", "cchardet": "web", "charset_normalizer": "web", "ftfy": "web"}
    example = """\
- stage: warc_reader
  source: web
"""

    @classmethod
    def columns_for(cls, config: WarcReaderConfig) -> dict[str, str]:
        return {"encoding": "string"} if config.decoding == "browser" else {}

    def setup(self) -> None:
        self.source = self.config.source

    def _decode(self, doc: Document, payload: bytes, declared: str | None, html: bool = True) -> bool:
        """Set ``doc.text`` from the payload; False (and the document rejected) when it cannot be decoded."""
        if self.config.decoding == "v1":
            text, charset = decode_html(payload, declared)
            if text is None:
                reject(doc, self.label, "undecodable")
                return False
            doc.text = text
            if html:
                doc.metadata["charset"] = charset
            return True
        d = decode_web(payload, declared, find_meta=html)
        if d.text is None:
            reject(doc, self.label, "undecodable")
            return False
        doc.text = d.text
        md = doc.metadata
        md["encoding"] = d.encoding
        md["encoding_source"] = d.source
        if d.declared:
            md["encoding_declared"] = d.declared  # a declared charset that was not used
        if d.replaced:
            md["encoding_replaced"] = d.replaced  # invalid byte sequences shown as U+FFFD
        return True

    def _suspect(self, text: str, html: bool) -> dict[str, int] | None:
        bad, replacement = mojibake(text, html)
        if bad or replacement > self.config.max_replacement_frac * len(text):
            return {"mojibake": bad, "replacement_chars": replacement}
        return None

    def _check_mojibake(self, doc: Document, html: bool = True) -> None:
        """decoding: browser: repair, mark or reject text that still looks mis-decoded."""
        found = self._suspect(doc.text, html)
        if found is None:
            return
        mode = self.config.on_mojibake
        if mode == "repair" and found["mojibake"]:
            import ftfy

            fixed = ftfy.fix_encoding(doc.text)
            if fixed != doc.text:
                doc.text = fixed
                doc.metadata["encoding_repaired"] = True
                found = self._suspect(fixed, html)
                if found is None:
                    return
        doc.metadata["encoding_suspect"] = found
        if mode != "keep":
            reject(doc, self.label, "encoding_suspect")

    def read_file(self, file: InputFile) -> Iterator[Document]:
        limit = int(self.config.max_payload_mb * 2**20)
        try:
            stream = open_binary(file.uri)
        except OSError as e:
            raise ShardError(file.uri, f"cannot open: {e}") from None
        skipped: list[str] = []
        with stream:
            offset = 0
            while True:
                problem = yield from self._read_segment(stream, offset, file.uri, limit)
                if problem is None:
                    break
                message, bad_start, gzipped = problem
                # Common Crawl's WARCs compress each record alone: after a damaged member, reading
                # goes on from the next member that starts a WARC record.
                resume = None
                if gzipped and stream.seekable():
                    resume = _next_warc_member(stream, bad_start + 1)
                if resume is None:
                    if skipped:
                        message += f" (before it, {len(skipped)} damaged part(s) were skipped: {'; '.join(skipped)})"
                    raise ShardError(file.uri, message)
                skipped.append(f"{message}: bytes {bad_start:,} to {resume:,}")
                from datatrove.utils.logging import logger

                logger.warning(f"{file.uri}: {skipped[-1]} skipped; reading goes on from the next record")
                offset = resume
        if skipped:
            raise ShardError(file.uri, f"{len(skipped)} damaged part(s) skipped, the records after them read: {'; '.join(skipped)}")

    def _read_segment(self, stream, offset: int, uri: str, limit: int):
        """Yield the documents of the WARC from byte ``offset`` on. Returns None at a clean end, or
        (problem, byte where the damaged record starts, whether the file is gzip) when reading breaks;
        raises ``ShardError`` for problems no resynchronisation can help."""
        from warcio.exceptions import ArchiveLoadFailed

        _QuietArchiveIterator = _quiet_iterator_class()

        if offset:
            stream.seek(offset)
        counting = _CountingStream(stream)
        self.pos_in_file = offset  # bytes of this input consumed so far (the progress line's ETA)
        it = None
        last = None
        try:
            it = _QuietArchiveIterator(counting, uri)
            timer, clock = self.stats.time_stats, time.perf_counter
            t0 = clock()  # the reader's own time (parsing, decompression, decoding), not the stages' after it
            for record in it:
                last = record
                doc = self._record_to_doc(record, limit, uri, it)
                self.pos_in_file = offset + counting.pos
                if doc is not None:
                    timer.update(clock() - t0)
                    yield doc
                    t0 = clock()
            problem = it.checked.problem()
        except ArchiveLoadFailed as e:
            what = " ".join(str(e).split(", first line")[0].split())[:200]
            problem = (it.checked.problem() if it is not None else None) or f"not a valid WARC/ARC file: {what}"
        except (EOFError, zlib.error) as e:
            problem = f"truncated or corrupt compressed stream: {e}"
        finally:
            self.pos_in_file = 0
        if problem:
            gzipped = it is not None and it.checked.is_gzip
            bad_start = offset + (getattr(it, "offset", 0) or 0 if it is not None else 0)
            return problem, bad_start, gzipped
        missing = _missing_bytes(last)
        if missing:  # a plain WARC cut off inside its last record (gzip's own check is above)
            url = last.rec_headers.get_header("WARC-Target-URI") or last.rec_headers.get_header("uri") or "?"
            raise ShardError(uri, f"truncated WARC: the file ends inside its last record ({last.rec_type} {url}: "
                                  f"{missing:,} of its {last.length:,} bytes missing)")
        if it.err_count:
            from datatrove.utils.logging import logger

            logger.warning(f"{uri}: {it.err_count} record(s) not followed by a blank line (wrong Content-Length?)")
        return None

    def _record_to_doc(self, record, limit: int, uri: str, it) -> Document | None:
        rtype = record.rec_type
        if rtype is None:  # WARC-Type is mandatory: what warcio parsed out of this is not a record
            raise ShardError(uri, "not a valid WARC/ARC file: a record without a WARC-Type header")
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
        if len(payload) <= limit and _missing_bytes(record):  # the file ends inside this record: its text is cut short
            doc = Document(text="", id=rid or url, metadata=md)
            reject(doc, self.label, "truncated_record")
            return doc
        if rtype == "conversion":  # WET: text already extracted by Common Crawl
            doc = Document(text="", id=rid or url, metadata=md | {"content_type": "text/plain", "_extracted": True})
            if self._decode(doc, payload, "utf-8", html=False) and self.config.decoding == "browser":
                self._check_mojibake(doc, html=False)
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
        if not self._decode(doc, payload, declared):
            return doc
        if is_text:
            doc.metadata["_extracted"] = True
        if not doc.text.strip():
            reject(doc, self.label, "empty_payload")
        elif self.config.decoding == "browser":
            self._check_mojibake(doc)
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
    max_line_mb: float = Field(
        32.0, gt=0, description="JSON Lines: a longer line is dropped as line_too_long without being held in memory"
    )

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
        # Read as bytes and decode line by line: a line that is not UTF-8 is one rejected row
        # (invalid_utf8), not the end of the file (a text stream fails on the whole 8 KB block
        # around it, losing the rows before it as well as after).
        cap = int(self.config.max_line_mb * 2**20)
        try:
            fh = open_decompressed(file.uri)
            with fh:
                first = fh.read(1)
                if first == b"\xef":  # a UTF-8 byte order mark is skipped; other bytes stay for the line's check
                    rest = fh.read(2)
                    first = fh.read(1) if rest == b"\xbb\xbf" else first + rest
                while first and first.isspace():
                    first = fh.read(1)
                if first[:1] == b"[":  # a JSON array of rows, not JSON Lines
                    data = first + fh.read(cap + 1)
                    if len(data) > cap:
                        raise ShardError(file.uri, f"input_too_large: a JSON array longer than {cap:,} bytes; write it as JSON Lines")
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise ShardError(file.uri, f"not UTF-8 text (byte {e.start}): convert it or use another reader") from None
                    yield from self._array(text, file.uri)
                    return
                yield from self._lines(first + fh.readline(cap), fh, file.uri)
        except OSError as e:
            raise ShardError(file.uri, f"cannot read: {e}") from None
        except EOFError as e:
            raise ShardError(file.uri, f"truncated file (compressed stream ended early): {e}") from None

    def _lines(self, head: bytes, fh, uri: str) -> Iterator[Document]:
        cap = int(self.config.max_line_mb * 2**20)
        n = -1
        pending = head
        not_utf8 = 0
        while True:
            line = pending if pending is not None else fh.readline(cap + 1)
            pending = None
            if not line:
                break
            n += 1
            if len(line) > cap and not line.endswith(b"\n"):
                skipped = len(line)
                while line and not line.endswith(b"\n"):  # skip the rest without keeping it
                    line = fh.readline(2**20)
                    skipped += len(line)
                doc = Document(
                    text="", id=_row_id(self.source, uri, n), metadata={"error": f"line {n + 1}: {skipped:,} bytes (limit {cap:,})"}
                )
                reject(doc, self.label, "line_too_long")
                from datatrove.utils.logging import logger

                logger.warning(f"{uri}: line {n + 1} has {skipped:,} bytes, over max_line_mb: dropped as line_too_long")
                yield doc
                continue
            body = line.rstrip(b"\r\n")
            # a lone CR ends a line too (old Mac files), as a text stream's universal newlines have it;
            # JSON strings cannot hold a raw CR, so splitting there never cuts a row
            pieces = body.split(b"\r") if b"\r" in body else [line]
            for k, piece in enumerate(pieces):
                if k:
                    n += 1
                if not piece.strip():
                    continue
                try:
                    text = piece.decode("utf-8")
                except UnicodeDecodeError as e:
                    not_utf8 += 1
                    doc = Document(text=piece[:10000].decode("utf-8", "replace"), id=_row_id(self.source, uri, n),
                                   metadata={"error": f"line {n + 1}: not UTF-8 (byte {e.start} of the line: {piece[e.start:e.start + 4]!r})"})
                    reject(doc, self.label, "invalid_utf8")
                    yield doc
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    doc = Document(text=text[:10000], id=_row_id(self.source, uri, n), metadata={"error": f"line {n + 1}: {e.msg}"})
                    reject(doc, self.label, "invalid_json")
                    yield doc
                    continue
                if not isinstance(row, dict):
                    row = {"value": row}
                yield self._to_doc(row, uri, n)
        if not_utf8:
            from datatrove.utils.logging import logger

            logger.warning(f"{uri}: {not_utf8:,} of {n + 1:,} lines are not UTF-8: dropped as invalid_utf8")

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
        lost: list[str] = []
        with fh:
            for g in range(pf.num_row_groups):  # one by one: a corrupt row group costs its rows, not the rest
                start, rows = n, pf.metadata.row_group(g).num_rows
                try:
                    for batch in pf.iter_batches(batch_size=1024, columns=columns, row_groups=[g]):
                        for row in batch.to_pylist():
                            yield self._to_doc(row, file.uri, n, r1data_shard)
                            n += 1
                except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for bad pages
                    lost.append(f"row group {g} (rows {n:,} to {start + rows - 1:,}): {' '.join(str(e).split())[:200]}")
                    n = start + rows
        if lost:
            more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
            raise ShardError(file.uri, f"corrupt Parquet data in {lost[0]}{more}; the other row groups were read")

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


class _LineTooLong(Exception):
    pass


class _BoundedLines:
    """Lines of a text file, none longer than ``cap`` characters held: a longer one is skipped to
    its end unread and reported by raising ``_LineTooLong`` (the iterator goes on after it).

    With ``encoding``, ``fh`` is a binary stream of an ASCII-compatible encoding and each line is
    decoded alone: a line that does not decode is shown with U+FFFD and its number kept in ``bad``
    (the reader rejects the row it belongs to), instead of failing the whole file."""

    def __init__(self, fh, cap: int, encoding: str | None = None):
        self.fh, self.cap, self.count = fh, cap, 0
        self.encoding, self.bad = encoding, set()
        self._nl = "\n" if encoding is None else b"\n"

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.fh.readline(self.cap + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) > self.cap and not line.endswith(self._nl):
            size = len(line)
            while line and not line.endswith(self._nl):
                line = self.fh.readline(2**20)
                size += len(line)
            raise _LineTooLong(f"line {self.count}: {size:,} characters (limit {self.cap:,}, max_line_mb)")
        if self.encoding is None:
            return line
        encoding = self.encoding
        if encoding == "utf-8-sig" and self.count > 1:
            encoding = "utf-8"  # only the first line may start with the byte order mark
        try:
            s = line.decode(encoding)
        except UnicodeDecodeError:
            self.bad.add(self.count)
            s = line.decode(encoding, "replace")
        return s[:-2] + "\n" if s.endswith("\r\n") else s  # as a text stream's universal newlines give it


def _ascii_compatible(encoding: str) -> bool:
    """Whether lines of ``encoding`` can be split on the byte ``\\n`` and decoded one by one."""
    import codecs

    name = codecs.lookup(encoding).name
    if name in ("utf-8", "utf-8-sig"):
        return True
    try:
        return '\n,;\t"a0'.encode(name) == b'\n,;\t"a0' and not name.startswith(("utf-16", "utf-32", "utf_16", "utf_32"))
    except (UnicodeError, LookupError):
        return False


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
        cap = int(c.max_line_mb * 2**20)
        csv.field_size_limit(min(sys.maxsize, cap))
        try:
            per_line = _ascii_compatible(c.encoding)
            if per_line:  # bytes, decoded line by line: a bad line costs its row, not the file
                fh = open_decompressed(file.uri)
            else:
                fh = open_text(file.uri, encoding=c.encoding)
        except (OSError, LookupError) as e:
            raise ShardError(file.uri, f"cannot open: {e}") from None
        with fh:
            lines = _BoundedLines(fh, cap, c.encoding if per_line else None)
            reader = csv.reader(lines, delimiter=delimiter, quotechar=c.quotechar)
            not_decoded = 0
            try:
                names = list(c.columns) if c.columns else None
                if c.header:
                    first = next(reader, None)
                    if first is None:
                        return
                    names = names or [h.strip() for h in first]
                n = 0
                while True:
                    first_line = reader.line_num + 1
                    try:
                        values = next(reader)
                    except StopIteration:
                        break
                    except _LineTooLong as e:
                        doc = Document(text="", id=_row_id(self.source, file.uri, n), metadata={"error": str(e)})
                        reject(doc, self.label, "line_too_long")
                        from datatrove.utils.logging import logger

                        logger.warning(f"{file.uri}: {e}: dropped as line_too_long")
                        n += 1
                        yield doc
                        continue
                    except csv.Error as e:
                        doc = Document(text="", id=_row_id(self.source, file.uri, n), metadata={"error": f"line {reader.line_num}: {e}"})
                        reject(doc, self.label, "invalid_csv")
                        n += 1
                        yield doc
                        continue
                    if not values:
                        continue
                    bad = sorted(k for k in range(first_line, reader.line_num + 1) if k in lines.bad)
                    if bad:
                        not_decoded += 1
                        doc = Document(text=delimiter.join(values), id=_row_id(self.source, file.uri, n),
                                       metadata={"error": f"line {bad[0]}: not {c.encoding} (shown with U+FFFD)"})
                        reject(doc, self.label, "invalid_encoding")
                        n += 1
                        yield doc
                        continue
                    row = dict(zip(names, values))
                    if len(values) > len(names):
                        row["extra_fields"] = values[len(names):]
                    yield self._to_doc(row, file.uri, n)
                    n += 1
            except UnicodeDecodeError as e:
                raise ShardError(file.uri, f"not {c.encoding} text (byte {e.start}); set encoding:") from None
            if not_decoded or (c.header and 1 in lines.bad):
                from datatrove.utils.logging import logger

                logger.warning(f"{file.uri}: {len(lines.bad):,} of {lines.count:,} lines are not {c.encoding}: their rows "
                               f"dropped as invalid_encoding (if the whole file is in another encoding, set encoding:)")
