"""Project Gutenberg e-texts: decode any bytes, read the header, strip the boilerplate.

    from r1data.sources.gutenberg import parse_book
    book = parse_book(open("3261.txt", "rb").read(), name="3261.txt")
    book.body          # the text between PG's header and footer, credits and transcriber notes removed
    book.meta          # {"title": ..., "author": ..., "language": "English", "ebook_number": 3261, ...}

PG has used several layouts since 1971; this module handles the ones found in the archive:

- the ``*** START OF THE/THIS PROJECT GUTENBERG EBOOK ... ***`` / ``*** END OF ...`` markers
  (with or without spaces after the asterisks, 2000s to today);
- the 1990s "small print" licence at the top, ended by ``*END*THE SMALL PRINT! ...*END*``, and
  footers that begin with ``End of (the) Project Gutenberg('s) Etext/EBook ...``;
- files with a header but no start marker (cut after the header fields, flagged ``heuristic``);
- credits right after the start marker (``Produced by``, ``Transcribed from``, ``E-text prepared
  by`` ...) and transcriber's notes (bracketed, or a headed paragraph) anywhere in the text;
- PG's LaTeX sources: header in a ``%`` comment box, boilerplate in ``PGtext`` environments, the
  licence after ``\\PGLicense``, the book between ``\\frontmatter``/``\\mainmatter`` and that.

Paragraphs may or may not be separated by blank lines (where they are not, a credit or note
paragraph ends at its first short line: see ``_block_end``). Line endings may be LF, CRLF or CR.
Text without any PG marker (already stripped, or not from PG) is returned whole. Stripping that
would remove over half of the text is undone and reported in ``Book.warning``, never silent.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# ------------------------------------------------------------------------------------------------
# bytes -> text

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# what PG headers declare -> the codec that decodes such files best (cp1252 is a superset of the
# printable Latin-1 range and is what "ISO-8859-1" PG files written on Windows really contain)
_DECLARED_ALIASES = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "iso-latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "iso-646-us": "cp1252", "iso-646-us (us-ascii)": "cp1252",
    "windows-1252": "cp1252", "codepage 1252": "cp1252", "utf8": "utf-8", "unicode utf-8": "utf-8",
}
_DECLARED_RE = re.compile(rb"Character set encoding:[ \t]*([A-Za-z0-9_.() -]+?)[ \t]*(?:%|\r|\n)", re.I)


def declared_encoding(data: bytes) -> str | None:
    """The ``Character set encoding:`` a PG header declares (lower-cased), if any."""
    m = _DECLARED_RE.search(data[:20_000])
    return m.group(1).decode("ascii", "ignore").strip().lower() if m else None


def bomless_utf16(data: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` for UTF-16 text written without a byte-order mark, else None.

    Text in a Latin script has a zero high byte in nearly every code unit, so in the first 8 KB the
    NULs sit almost all on one side (odd offsets: little-endian; even: big-endian) and the other
    side holds none; binary data has its NULs on both sides."""
    head = data[:8000]
    if len(head) < 64 or len(head) % 2:
        head = head[: len(head) - len(head) % 2]
        if len(head) < 64:
            return None
    even, odd = head[0::2], head[1::2]
    n = len(even)
    z_even, z_odd = even.count(0), odd.count(0)
    if z_odd >= 0.9 * n and z_even <= 0.01 * n:
        return "utf-16-le"
    if z_even >= 0.9 * n and z_odd <= 0.01 * n:
        return "utf-16-be"
    return None


def looks_binary(data: bytes) -> bool:
    """True for data that is not text: a NUL byte in the first 8 KB (git's test), unless UTF-16/32
    (with a byte-order mark, or UTF-16 without one: ``bomless_utf16``)."""
    head = data[:8000]
    if b"\x00" not in head:
        return False
    if any(head.startswith(bom) for bom, enc in _BOMS if enc != "utf-8-sig"):
        return False
    return bomless_utf16(data) is None


# a well-formed UTF-8 multi-byte sequence (no overlongs, no surrogates, at most U+10FFFF)
_UTF8_SEQ = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH = re.compile(rb"[\x80-\xff]+")


def _legacy_byte(err: UnicodeDecodeError) -> tuple[str, int]:
    """Error handler for UTF-8 text with a few stray single-byte characters: each such byte is read
    as cp1252 (as Latin-1 where cp1252 leaves it undefined)."""
    bad = err.object[err.start : err.end]
    try:
        return bad.decode("cp1252"), err.end
    except UnicodeDecodeError:
        return bad.decode("latin-1"), err.end


codecs.register_error("r1data-legacy-byte", _legacy_byte)


def utf8_evidence(data: bytes) -> tuple[int, int]:
    """``(well-formed UTF-8 multi-byte sequences, non-ASCII bytes outside them)`` in ``data``.

    Text in a single-byte charset (Latin-1, cp1252) has an accented letter followed by ASCII, which is
    never valid UTF-8: it scores about ``(0, n)``. UTF-8 scores ``(n, 0)``, and UTF-8 with a stray
    Latin-1 byte pasted in ``(n, 1)``."""
    seqs = high = covered = 0
    for run in _HIGH.findall(data):  # runs of non-ASCII bytes: the only places a sequence can be
        high += len(run)
        for seq in _UTF8_SEQ.findall(run):
            seqs += 1
            covered += len(seq)
    return seqs, high - covered


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode bytes that should be text; never raises.

    Order: a byte-order mark, strict UTF-8, then the evidence: when most non-ASCII bytes form
    well-formed UTF-8 sequences the file is UTF-8 with a few stray bytes (those are read as cp1252,
    codec ``utf-8+cp1252``), rather than a legacy file to be read as cp1252 (which would turn every
    UTF-8 character into mojibake); otherwise the declared charset, cp1252, then Latin-1 (which
    decodes every byte). Returns ``(text, codec used)``.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                break
    if b"\x00" in data[:8000]:
        enc = bomless_utf16(data)
        if enc:
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    seqs, stray = utf8_evidence(data)
    if seqs and seqs >= stray:
        return data.decode("utf-8", "r1data-legacy-byte"), "utf-8+cp1252"
    tried = {"utf-8"}
    if declared:
        codec = _DECLARED_ALIASES.get(declared.strip().lower(), declared.strip().lower())
        try:
            codec = codecs.lookup(codec).name
            tried.add(codec)
            return data.decode(codec), codec
        except (LookupError, UnicodeDecodeError):
            pass
    if "cp1252" not in tried:
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1"), "latin-1"


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


# ------------------------------------------------------------------------------------------------
# header

_FIELDS = {
    "title": "title",
    "author": "author",
    "authors": "author",
    "translator": "translator",
    "editor": "editor",
    "illustrator": "illustrator",
    "language": "language",
    "release date": "release_date",
    "release date and most recently updated": "release_date",
    "posting date": "posting_date",
    "first posted": "first_posted",
    "last updated": "last_updated",
    "most recently updated": "last_updated",
    "character set encoding": "declared_encoding",
    "original publication": "original_publication",
    "credits": "credits",
}
_FIELD_RE = re.compile(r"^\[?\s*(" + "|".join(sorted(map(re.escape, _FIELDS), key=len, reverse=True)) + r")\s*:\s*(.*?)\]?\s*$", re.I)
_EBOOK_NO = re.compile(r"\[\s*e-?(?:book|text)\s*#\s*(\d+)\s*\]|\b(?:e-?book|etext)\s*#\s*(\d+)", re.I)
_TITLE_LINE = re.compile(
    r"Project Gutenberg(?:'s|’s)?\s+(?:e-?book|etext|e-text)?\s*(?:of\s+|,\s*)?(?P<title>.+?),\s+by\s+(?P<author>.+?)\s*$", re.I
)

LANGUAGE_CODES = {
    "english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it", "portuguese": "pt",
    "dutch": "nl", "finnish": "fi", "swedish": "sv", "danish": "da", "norwegian": "no", "latin": "la",
    "greek": "el", "russian": "ru", "polish": "pl", "hungarian": "hu", "czech": "cs", "chinese": "zh",
    "japanese": "ja", "esperanto": "eo", "catalan": "ca", "tagalog": "tl", "welsh": "cy", "irish": "ga",
    "icelandic": "is", "romanian": "ro", "hebrew": "he", "arabic": "ar", "korean": "ko", "galician": "gl",
    "afrikaans": "af", "bulgarian": "bg", "serbian": "sr", "slovenian": "sl", "ukrainian": "uk",
}

_MONTHS = "january february march april may june july august september october november december".split()


def parse_date(value: str | None) -> str | None:
    """A PG date ("May 8, 2007", "March, 2004", "2012-12-06", "8 May 2007") as ISO 8601 (reduced
    precision when the day or month is missing); None when it is not a date."""
    if not value:
        return None
    v = re.sub(r"\[.*?\]", "", value).strip(" .,;")
    v = re.sub(r"\s+", " ", v)
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%Y-%m-%d", "%B %d %Y", "%b. %d, %Y"):
        try:
            return datetime.strptime(v, fmt).date().isoformat()
        except ValueError:
            continue
    m = re.match(r"^([A-Za-z]+)\.?,? (\d{4})$", v)
    if m and m.group(1).lower() in _MONTHS:
        return f"{m.group(2)}-{_MONTHS.index(m.group(1).lower()) + 1:02d}"
    m = re.match(r"^(\d{4})$", v)
    return m.group(1) if m else None


def _uncomment(line: str) -> str:
    """A line of a LaTeX comment box (``% Title: X   %``) without its frame."""
    s = line.strip()
    if s.startswith("%"):
        s = s.lstrip("%").strip()
        if s.endswith("%"):
            s = s.rstrip("%").rstrip()
    return s


def parse_header(lines: list[str]) -> dict[str, Any]:
    """Title, author, language, dates and e-book number from the lines of a PG header."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(lines):
        line = _uncomment(lines[i])
        m = _FIELD_RE.match(line)
        if m:
            key = _FIELDS[m.group(1).lower()]
            value = m.group(2).strip()
            # continuation lines are indented (Title: X\n       or Y)
            while i + 1 < len(lines) and lines[i + 1][:1] in (" ", "\t") and lines[i + 1].strip() and not _FIELD_RE.match(_uncomment(lines[i + 1])):
                i += 1
                value += " " + _uncomment(lines[i]).strip()
            if value and key not in out:
                out[key] = value
        if "ebook_number" not in out:
            n = _EBOOK_NO.search(line)
            if n:
                out["ebook_number"] = int(n.group(1) or n.group(2))
        i += 1
    for key in ("release_date", "posting_date", "last_updated", "first_posted"):
        if key in out:
            n = _EBOOK_NO.search(out[key])
            if n and "ebook_number" not in out:
                out["ebook_number"] = int(n.group(1) or n.group(2))
            raw = re.sub(r"\s*\[.*$", "", out[key]).strip()
            out[key] = parse_date(raw) or raw
    if "title" not in out:
        for line in lines[:5]:
            m = _TITLE_LINE.search(_uncomment(line))
            if m:
                out["title"] = m.group("title").strip()
                out.setdefault("author", m.group("author").strip())
                break
    lang = out.get("language")
    if lang:
        code = LANGUAGE_CODES.get(lang.split(",")[0].split(" and ")[0].strip().lower())
        if code:
            out["language_code"] = code
    return out


# ------------------------------------------------------------------------------------------------
# markers

_START = re.compile(
    r"""^[\s%]*(?:
        \*+\s*START\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG           # *** START OF THE PROJECT GUTENBERG EBOOK X ***
      | START\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG\s+E-?(?:BOOK|TEXT)
      | \*?END\*?\s*THE\s+SMALL\s+PRINT                                # *END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver..*END*
      | \*{3}\s*START\s+OF\s+THE\s+COPYRIGHTED\s+PROJECT\s+GUTENBERG
    )""",
    re.I | re.X,
)
_END = re.compile(
    r"""^[\s%]*(?:
        \*+\s*END\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG              # *** END OF THE PROJECT GUTENBERG EBOOK X ***
      | END\s+OF\s+(?:THE|THIS)\s+PROJECT\s+GUTENBERG\s+E-?(?:BOOK|TEXT)
      | End\s+of\s+(?:the\s+|this\s+)?Project\s+Gutenberg                # End of (the) Project Gutenberg('s) EBook/Etext of X
      | \*{3}\s*START\*{2}THE\s+SMALL\s+PRINT                            # 1990s files with the small print at the end
      | \*{3}\s*END\s+OF\s+THE\s+COPYRIGHTED\s+PROJECT\s+GUTENBERG
    )""",
    re.I | re.X,
)
_CREDIT = re.compile(
    r"""^\s*(?:
        produced\s+by | transcribed\s+(?:from|by) | e-?text\s+(?:was\s+)?(?:prepared|scanned|produced|transcribed)\s+by
      | (?:this|the)\s+e-?(?:book|text)\s+(?:was|is|has\s+been)\s+(?:produced|prepared|transcribed|created|scanned|made)\b
      | (?:prepared|scanned|proofread|digitized|converted)\s+(?:and\s+\w+\s+)?by | html\s+version\s+by
      | text\s+file\s+produced\s+by | e-?book\s+(?:prepared|produced)\s+by | credits\s*:
      | updated\s+editions\s+will\s+replace | special\s+thanks\s+to
    )""",
    re.I | re.X,
)
_NOTE_HEAD = re.compile(r"^\s*\[?\s*(?:transcriber[’'`]?s?[’'`]?\s+notes?|note\s+from\s+the\s+transcriber|typographical\s+errors\s+corrected)\b", re.I)
_HEADER_HINT = re.compile(r"project\s+gutenberg|gutenberg\.(?:org|net)|^\s*\[?\s*e-?(?:book|text)\s*#", re.I)


@dataclass
class Book:
    """A decoded, stripped book: ``body`` is the content, ``meta`` what the header said."""

    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    #: what was removed: header/footer lines, credit paragraphs, transcriber notes, markers found
    stripped: dict[str, Any] = field(default_factory=dict)
    #: set when stripping would have removed most of the text and was (partly) undone instead:
    #: ``credits_notes_over_half`` (credit/transcriber-note removal undone), ``markers_cut_over_half``
    #: (what lies outside PG's markers is not PG boilerplate: the whole file kept), ";"-joined
    warning: str | None = None


def _paragraph_end(lines: list[str], i: int) -> int:
    """Index of the first blank line at or after ``i`` (or len)."""
    while i < len(lines) and lines[i].strip():
        i += 1
    return i


def wrap_width(lines: list[str]) -> int:
    """The width a text is wrapped at: the 90th percentile of its line lengths (40 to 120)."""
    lengths = sorted(len(x.rstrip()) for x in lines if x.strip())
    if not lengths:
        return 72
    return max(40, min(120, lengths[(len(lengths) * 9) // 10]))


def _block_end(lines: list[str], i: int, max_lines: int, width: int) -> int:
    """End of the paragraph that starts at ``i``: the next blank line, unless that is more than
    ``max_lines`` away. Then the text does not separate paragraphs with blank lines (some e-texts
    don't), and the paragraph ends after its first line shorter than 3/4 of the wrap ``width``
    (the last line of a wrapped paragraph), before an indented line, or after ``max_lines``."""
    j = _paragraph_end(lines, i)
    if j - i <= max_lines:
        return j
    short = (width * 3) // 4
    k = i
    while k < j and k - i < max_lines:
        line = lines[k].rstrip()
        k += 1
        nxt = lines[k] if k < len(lines) else ""
        if len(line) < short or nxt[:1] in (" ", "\t"):
            break
    return k


def _skip_blank(lines: list[str], i: int, limit: int | None = None) -> int:
    limit = len(lines) if limit is None else limit
    while i < limit and not lines[i].strip():
        i += 1
    return i


def _find_bounds(lines: list[str], latex: bool) -> tuple[int, int, str, str]:
    """``(first content line, end, start kind, end kind)``: the slice between PG's markers."""
    starts = [i for i, line in enumerate(lines) if _START.match(line)]
    ends = [i for i, line in enumerate(lines) if _END.match(line)]
    # content ends at the first end marker after a start marker (or the first at all)
    first_start = starts[0] if starts else -1
    end_candidates = [e for e in ends if e > first_start]
    end = end_candidates[0] if end_candidates else len(lines)
    end_kind = "marker" if end_candidates else "none"
    before_end = [s for s in starts if s < end]
    if before_end:
        return before_end[-1] + 1, end, "marker", end_kind
    # no start marker: a header without one (cut after its fields), or no PG text at all
    head = lines[:120]
    if not any(_HEADER_HINT.search(line) for line in head[:60]):
        return 0, end, "none", end_kind
    last = -1
    for i, line in enumerate(head):
        s = _uncomment(line) if latex else line
        if _FIELD_RE.match(s) or _HEADER_HINT.search(s):
            last = i
    if last < 0:
        return 0, end, "none", end_kind
    j = _block_end(lines, last, 15, wrap_width(head))
    return (j + 1 if j < len(lines) and not lines[j].strip() else j), end, "heuristic", end_kind


def _strip_credits(lines: list[str], start: int, end: int, width: int) -> tuple[int, int]:
    """Skip the credit paragraphs PG puts right after the start marker; returns (new start, count)."""
    i = _skip_blank(lines, start, end)
    removed = 0
    for _ in range(12):  # credits are within the first few paragraphs
        if i >= end or not _CREDIT.match(lines[i]):
            break
        i = _skip_blank(lines, min(_block_end(lines, i, 15, width), end), end)
        removed += 1
    return i, removed


def _drop_transcriber_notes(lines: list[str], width: int) -> tuple[list[str], int]:
    """Remove transcriber's notes: ``[Transcriber's Note: ...]`` blocks and headed note paragraphs."""
    out: list[str] = []
    notes = 0
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if _NOTE_HEAD.match(line):
            notes += 1
            if line.lstrip().startswith("["):  # bracketed: up to the closing bracket (bounded)
                depth = 0
                j = i
                while j < n and j < i + 80:
                    depth += lines[j].count("[") - lines[j].count("]")
                    j += 1
                    if depth <= 0:
                        break
                i = j
                continue
            j = _block_end(lines, i, 60, width)
            heading_only = j - i == 1 and len(line.strip()) < 40
            if heading_only:  # "TRANSCRIBER'S NOTES" then its paragraphs, up to a wider gap
                k = _skip_blank(lines, j)
                while k < n and k - j < 2 and k < i + 200:
                    gap = k - j
                    j = _block_end(lines, k, 60, width)
                    nxt = _skip_blank(lines, j)
                    if nxt - j >= 2 or nxt >= n or gap == 0:  # gap 0: no blank lines, one paragraph only
                        break
                    k = nxt
            i = j
            continue
        out.append(line)
        i += 1
    return out, notes


def _trim(lines: list[str]) -> list[str]:
    a, b = 0, len(lines)
    while a < b and not lines[a].strip():
        a += 1
    while b > a and not lines[b - 1].strip():
        b -= 1
    return lines[a:b]


# ------------------------------------------------------------------------------------------------
# LaTeX

_BEGIN_DOC = re.compile(r"^\s*\\begin\{document\}")
_END_DOC = re.compile(r"^\s*\\end\{document\}")
_LICENSE_MACRO = re.compile(r"^\s*\\PGLicense\b")
_FRONT = re.compile(r"^\s*\\(?:frontmatter|FrontMatter)\b")
_MAIN = re.compile(r"^\s*\\(?:mainmatter|MainMatter)\b")
_PGTEXT_END = re.compile(r"^\s*\\end\{PGtext\}")
_IF_OPEN = re.compile(r"\\if(?!thenelse)[A-Za-z@]*")
_FI = re.compile(r"\\fi(?![A-Za-z@])")


def _drop_iffalse(lines: list[str]) -> tuple[list[str], int]:
    """Remove ``\\iffalse ... \\fi`` blocks (text PG producers keep but do not typeset)."""
    out, blocks, i = [], 0, 0
    while i < len(lines):
        if lines[i].strip().startswith("\\iffalse"):
            depth, j = 0, i
            while j < len(lines):
                code = lines[j].split("%", 1)[0]
                depth += len(_IF_OPEN.findall(code)) - len(_FI.findall(code))
                j += 1
                if depth <= 0:
                    break
            blocks += 1
            i = j
            continue
        out.append(lines[i])
        i += 1
    return out, blocks


def _latex_body(lines: list[str], strip_comments: bool) -> tuple[list[str], dict[str, Any]]:
    info: dict[str, Any] = {}
    begin = next((i for i, line in enumerate(lines) if _BEGIN_DOC.match(line)), None)
    a = begin + 1 if begin is not None else 0
    end = next((i for i in range(a, len(lines)) if _END_DOC.match(lines[i])), len(lines))
    cut = next((i for i in range(a, end) if _LICENSE_MACRO.match(lines[i]) or _END.match(lines[i])), end)
    info["footer_lines"] = len(lines) - cut
    front = next((i for i in range(a, cut) if _FRONT.match(lines[i])), None)
    main = next((i for i in range(a, cut) if _MAIN.match(lines[i])), None)
    if front is not None:
        start = front + 1
    elif main is not None:
        start = main + 1
    else:  # after PG's boilerplate environments, if any
        pg_ends = [i for i in range(a, cut) if _PGTEXT_END.match(lines[i]) or _START.match(lines[i])]
        start = pg_ends[-1] + 1 if pg_ends else a
    info["header_lines"] = start
    body = lines[start:cut]
    body, info["iffalse_blocks"] = _drop_iffalse(body)
    if strip_comments:
        kept = [line for line in body if not line.lstrip().startswith("%")]
        info["comment_lines"] = len(body) - len(kept)
        body = kept
    return body, info


# ------------------------------------------------------------------------------------------------


def parse_book(
    data: bytes,
    *,
    name: str = "",
    latex: bool = False,
    strip_boilerplate: bool = True,
    strip_transcriber_notes: bool = True,
    strip_latex_comments: bool = True,
    encoding: str | None = None,
) -> Book:
    """Decode ``data`` and split it into PG header metadata and the book's body (see module doc).

    ``encoding`` forces a codec; by default it is detected (BOM, UTF-8, UTF-8 with stray bytes, the
    declared charset, cp1252, Latin-1: see ``decode_text``). ``latex`` treats the file as a PG LaTeX
    source."""
    declared = declared_encoding(data)
    if encoding:
        try:
            text, used = data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError):
            text, used = decode_text(data, declared)
    else:
        text, used = decode_text(data, declared)
    text = normalise_newlines(text)
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    meta: dict[str, Any] = {"encoding": used}
    stripped: dict[str, Any] = {}
    if not strip_boilerplate:
        return Book("\n".join(_trim(lines)), meta, stripped)

    start, end, start_kind, end_kind = _find_bounds(lines, latex)
    header = parse_header(lines[: max(start, 0)] if start_kind != "none" else lines[:60])
    if start_kind == "none" and not any(_HEADER_HINT.search(x) for x in lines[:60]):
        header = {}
    meta.update(header)
    if "ebook_number" not in meta and start_kind != "none":
        m = re.match(r"^(\d+)(?:[-_.]|$)", name.rsplit("/", 1)[-1])
        if m:
            meta["ebook_number"] = int(m.group(1))
    meta["gutenberg"] = start_kind != "none" or end_kind != "none"
    stripped.update(start_marker=start_kind, end_marker=end_kind)

    width = wrap_width(lines[start:end][:5000])
    if latex:
        body, info = _latex_body(lines, strip_latex_comments)
        stripped.update(info)
        a, b = info["header_lines"], len(lines) - info["footer_lines"]
        inner = body
    else:
        stripped["header_lines"] = start
        stripped["footer_lines"] = len(lines) - end
        a, credits = _strip_credits(lines, start, end, width) if start_kind != "none" else (start, 0)
        stripped["credit_paragraphs"] = credits
        body = lines[a:end]
        a, b = start, end
        inner = lines[start:end]
    if strip_transcriber_notes:
        body, notes = _drop_transcriber_notes(body, width)
        stripped["transcriber_notes"] = notes
    warnings = []
    if not latex:
        removed = _chars(inner) - _chars(body)
        if removed >= _MIN_SUSPECT and removed * 2 > _chars(inner):
            body = inner  # credits and notes are a few paragraphs, never most of a book
            warnings.append("credits_notes_over_half")
    total, kept = _chars(lines), _chars(body)
    # a LaTeX preamble is cut by structure (\\begin{document}, \\frontmatter), not by a marker
    if kept * 2 < total and not ((latex or _is_boilerplate(lines[:a])) and _is_boilerplate(lines[b:])):
        body = lines  # what was cut is not PG's header and licence: keep the file whole
        warnings.append("markers_cut_over_half")
    body = _trim(body)
    return Book("\n".join(line.rstrip() for line in body), meta, stripped, ";".join(warnings) or None)


_MIN_SUSPECT = 500  # characters: less than this removed is never suspicious (a credit line in a tiny text)


def _chars(lines: list[str]) -> int:
    """Characters in ``lines`` (newlines not counted)."""
    return sum(map(len, lines))


def _is_boilerplate(lines: list[str]) -> bool:
    """Whether text cut off as a header or footer can be PG's: short, or dense with "Gutenberg"
    (PG's licence names it every few lines; a book cut off by a misplaced marker hardly ever does)."""
    n = _chars(lines)
    if n <= 3000:
        return True
    mentions = sum(line.lower().count("gutenberg") for line in lines)
    return mentions * 2000 >= n
