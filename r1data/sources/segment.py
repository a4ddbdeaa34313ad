"""Cut a long text (a book) into documents: at chapter headings, else at paragraph boundaries.

    from r1data.sources.segment import segment_text
    for seg in segment_text(body, policy="chapter", max_chars=50_000, min_chars=2_000):
        print(seg.kind, seg.headings, body[seg.start:seg.end][:40])

Segments are slices of the text (``start``/``end`` offsets), in order and without gaps or
overlaps, so concatenating every slice gives the text back. Policies:

- ``chapter``: a segment per chapter. Chapters shorter than ``min_chars`` are merged with the next
  (a table of contents, a two-verse psalm), chapters longer than ``max_chars`` are split at
  paragraph boundaries (``chapter_part``). Without two or more detectable headings the book is
  cut by size instead.
- ``size``: consecutive paragraphs packed into segments of at most ``max_chars``.
- ``book``: the whole text as one segment (``max_chars`` is not applied).

A heading is one of (checked on lines that follow a blank line):

- a keyword and a number: ``CHAPTER I: DISCUSSION AND BED``, ``BOOK IV.``, ``Act II.``,
  ``STAVE ONE``, ``Letter 3``, ``PART THE FIRST``, ``THE SECOND BOOK``;
- a standalone ``PROLOGUE``/``EPILOGUE``/``PREFACE``/``INTRODUCTION``/``APPENDIX``... in capitals;
- a Roman numeral alone (``XIV``, ``IV.``) or with a capitalised title, when the book has three
  or more (numbered poems, chapters without the word);
- a name and a number (``Genesis 1``, ``Psalms 23``), when the book has five or more;
- in LaTeX: ``\\part``, ``\\chapter`` (and PG's ``\\Chapter``/``\\Appendix`` macros), else ``\\section``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["chapter", "size", "book"]

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    "seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|first|second|third|fourth|fifth|sixth|seventh|"
    "eighth|ninth|tenth|eleventh|twelfth|last|the\\s+\\w+"
)
_KEYWORD = re.compile(
    r"^\s{0,40}(?:CHAPTER|Chapter|CHAP\.|Chap\.|BOOK|Book|PART|Part|ACT|Act|STAVE|Stave|CANTO|Canto|LETTER|Letter|"
    r"LECTURE|Lecture|VOLUME|Volume|SECTION|Section|EPISODE|Episode)"
    r"\s+(?:[IVXLCDM]+\b|\d+\b|(?i:" + _NUMBER_WORDS + r")\b)[^\n]{0,80}$"
)
# "THE FIRST BOOK", "The Second Part"
_ORDINAL_KEYWORD = re.compile(
    r"^\s{0,40}(?i:the\s+(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|last)\s+)"
    r"(?:BOOK|Book|PART|Part|CHAPTER|Chapter|CANTO|Canto|ACT|Act)\.?\s*$"
)
# the same without a title: accepted even without a blank line before ("PARADISE LOST\nBOOK II.")
_BARE_KEYWORD = re.compile(
    r"^\s{0,40}(?:CHAPTER|Chapter|BOOK|Book|PART|Part|ACT|Act|STAVE|Stave|CANTO|Canto)\s+(?:[IVXLCDM]+|\d+)[.:]?\s*$"
)
_STANDALONE = re.compile(
    r"^\s{0,40}(?:PROLOGUE|EPILOGUE|PREFACE|INTRODUCTION|CONCLUSION|APPENDIX|AFTERWORD|FOREWORD|GLOSSARY|"
    r"FOOTNOTES|NOTES|INDEX|THE END)\.?\s*$"
)
_LETTER = re.compile(r"^\s{0,40}[A-Z]\.?\s*$")  # dictionary sections: A, B, C ...
_ROMAN = re.compile(r"^\s{0,40}[IVXLC]{1,7}\.?(?:\s+[A-Z][^a-z\n]{2,70})?\s*$")
_NAME_NUMBER = re.compile(r"^\s{0,10}(?:[1-3] )?[A-Z][a-z]+(?: (?:of )?[A-Z][a-z]+){0,3} \d{1,3}\s*$")
_LATEX_CHAPTER = re.compile(r"^\s*\\(?:part|chapter|Part|Chapter|Appendix)\*?(?![A-Za-z])")
_LATEX_SECTION = re.compile(r"^\s*\\section\*?(?![A-Za-z])")


@dataclass
class Segment:
    start: int
    end: int
    kind: str  # chapter | front_matter | chapter_part | size | book
    headings: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.end - self.start


def _lines(text: str) -> list[tuple[int, str]]:
    """``(offset, line)`` for every line of ``text``."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def find_headings(text: str, latex: bool = False) -> list[tuple[int, str]]:
    """``(offset of the heading line, heading)`` for the chapter headings of ``text``, in order."""
    lines = _lines(text)
    if latex:
        found = [(off, line.strip()) for off, line in lines if _LATEX_CHAPTER.match(line)]
        if len(found) < 2:
            found = [(off, line.strip()) for off, line in lines if _LATEX_SECTION.match(line)]
        return found
    keyword, roman, letters, named = [], [], [], []
    n = len(lines)
    nonblank = [line for _, line in lines if line.strip()]
    if len(nonblank) >= 50 and (n - len(nonblank)) * 200 < len(nonblank):
        # (almost) no blank lines: paragraphs are not separated, so no heading follows a blank line
        return _headings_without_blank_lines(lines, nonblank)
    for i, (off, line) in enumerate(lines):
        if not line.strip() or len(line) > 120:
            continue
        blank_before = i == 0 or not lines[i - 1][1].strip()
        if not blank_before:
            if _BARE_KEYWORD.match(line):
                keyword.append((off, line.strip()))
            continue
        blank_after = i + 1 >= n or not lines[i + 1][1].strip()
        if _KEYWORD.match(line) or _STANDALONE.match(line) or _ORDINAL_KEYWORD.match(line):
            keyword.append((off, line.strip()))
            continue
        if not blank_after:
            continue
        if _LETTER.match(line):
            letters.append((off, line.strip()))
        if _ROMAN.match(line):
            roman.append((off, line.strip()))
        elif _NAME_NUMBER.match(line):
            named.append((off, line.strip()))
    return _combine(keyword, roman, letters, named)


def _combine(keyword: list, roman: list, letters: list, named: list) -> list[tuple[int, str]]:
    found = list(keyword)
    # single capitals in alphabetical order are a dictionary's sections, not Roman numerals
    alphabet = [h.rstrip(".") for _, h in letters]
    if len(set(alphabet)) >= 5 and alphabet == sorted(alphabet):
        found += letters
        roman = [r for r in roman if len(r[1].rstrip(".")) > 1]
    if len(roman) >= 3:
        found += roman
    if len(named) >= 5:
        found += named
    return sorted(set(found))


_KEYWORD_PARTS = re.compile(r"^\s*(\S+\.?)\s+(?:the\s+)?(\S+)(.*)$", re.I)
_SENTENCE_END = tuple(".!?:;\"')]_*")


def _headings_without_blank_lines(lines: list[tuple[int, str]], nonblank: list[str]) -> list[tuple[int, str]]:
    """Headings of a text that does not separate paragraphs with blank lines.

    Instead of a blank line, a heading must follow a line that can end a paragraph (shorter than
    3/4 of the wrap width, ending a sentence, or another heading); a keyword heading's title must
    be absent, set off by punctuation, or in capitals (``CHAPTER I: DISCUSSION AND BED``,
    ``Chapter IV. The Guest``; not ``Chapter 3 was missing``), and a Roman numeral, letter or
    name-and-number heading must be followed by a line that starts a sentence."""
    lengths = sorted(len(x.rstrip()) for x in nonblank)
    short = (max(40, min(120, lengths[(len(lengths) * 9) // 10])) * 3) // 4
    keyword, roman, letters, named = [], [], [], []
    n = len(lines)
    prev_heading = -2
    for i, (off, line) in enumerate(lines):
        text = line.strip()
        if not text or len(line) > 120:
            continue
        prev = lines[i - 1][1].rstrip() if i else ""
        boundary = i == 0 or prev_heading == i - 1 or not prev.strip() or len(prev) < short or prev.endswith(_SENTENCE_END)
        if not boundary:
            continue
        if _BARE_KEYWORD.match(line) or _STANDALONE.match(line) or _ORDINAL_KEYWORD.match(line):
            keyword.append((off, text))
            prev_heading = i
            continue
        if _KEYWORD.match(line):
            m = _KEYWORD_PARTS.match(text)
            number, title = (m.group(2), m.group(3).strip()) if m else ("", "")
            if not title or number[-1:] in ".:" or not title[0].isalnum() or not any(c.islower() for c in title):
                keyword.append((off, text))
                prev_heading = i
            continue
        nxt = lines[i + 1][1].lstrip() if i + 1 < n else ""
        if nxt and not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'([_"):
            continue
        if _LETTER.match(line):
            letters.append((off, text))
        if _ROMAN.match(line):
            roman.append((off, text))
        elif _NAME_NUMBER.match(line):
            named.append((off, text))
    return _combine(keyword, roman, letters, named)


def split_by_size(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into the fewest pieces of at most ``max_chars``, of about equal size:
    each cut is the paragraph break nearest the even split point, else a line break, else a space,
    else the split point itself."""
    out = []
    pos = start
    while end - pos > max_chars:
        limit = pos + max_chars
        pieces = -(-(end - pos) // max_chars)
        target = pos + -(-(end - pos) // pieces)
        cut = -1
        for sep in ("\n\n", "\n", " "):
            before = text.rfind(sep, pos + (target - pos) // 2, target)
            after = text.find(sep, target, limit - len(sep) + 1)
            options = [i + len(sep) for i in (before, after) if i > pos]
            if options:
                cut = min(options, key=lambda c: abs(c - target))
                break
        if cut <= pos or cut > limit:
            cut = target
        out.append((pos, cut))
        pos = cut
    if end > pos:
        out.append((pos, end))
    return out


def segment_text(text: str, *, policy: Policy = "chapter", max_chars: int = 50_000, min_chars: int = 2_000, latex: bool = False) -> list[Segment]:
    """Segments of ``text`` under ``policy`` (see the module docstring); empty text gives none."""
    if not text.strip():
        return []
    if policy == "book":
        return [Segment(0, len(text), "book")]
    if policy == "chapter":
        heads = find_headings(text, latex)
        if len(heads) >= 2:
            return _chapters(text, heads, max_chars, min_chars)
    return [Segment(a, b, "size") for a, b in split_by_size(text, 0, len(text), max_chars)]


def _chapters(text: str, heads: list[tuple[int, str]], max_chars: int, min_chars: int) -> list[Segment]:
    units: list[Segment] = []
    if heads[0][0] > 0:
        units.append(Segment(0, heads[0][0], "front_matter"))
    for k, (off, title) in enumerate(heads):
        end = heads[k + 1][0] if k + 1 < len(heads) else len(text)
        units.append(Segment(off, end, "chapter", [title]))

    merged: list[Segment] = []
    for u in units:
        prev = merged[-1] if merged else None
        if prev is not None and prev.size < min_chars and prev.size + u.size <= max_chars:
            prev.end = u.end
            prev.headings += u.headings
            if u.kind == "chapter":
                prev.kind = "chapter"
        else:
            merged.append(Segment(u.start, u.end, u.kind, list(u.headings)))
    if len(merged) > 1 and merged[-1].size < min_chars and merged[-2].size + merged[-1].size <= max_chars:
        last = merged.pop()
        merged[-1].end = last.end
        merged[-1].headings += last.headings

    out: list[Segment] = []
    for seg in merged:
        if seg.size <= max_chars:
            out.append(seg)
            continue
        for a, b in split_by_size(text, seg.start, seg.end, max_chars):
            out.append(Segment(a, b, "chapter_part" if seg.kind == "chapter" else seg.kind, list(seg.headings)))
    return out
