"""Exact dedup of lines (paragraphs) within a window, CCNet style, usable on its own.

- ``line_hashes(text, min_line_chars)``: one 64-bit hash per line of ``text.split("\\n")``, 0 for a
  line that is never a candidate (its normalised form is shorter than ``min_line_chars``, or empty);
- ``duplicate_lines(hashes, counts, keep)``: given the hashes of a window's documents in input order,
  the positions of the lines to drop;
- ``drop_lines(text, indices)``: the text without those lines.

Normalisation (what makes two lines "the same"): lower case, every Unicode digit -> ``0``, Unicode
punctuation and symbols (categories P*, S*), control and format characters removed, runs of
whitespace -> one space, stripped. It is CCNet's ``normalize_for_dedup`` except that CCNet removes
only the non-ASCII punctuation of its table: here ASCII punctuation and symbols go too, so
``Home | About`` and ``Home · About`` are one line, and ``© 2023 Example`` and ``(c) 2024 Example``
differ only by the ``c``.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache
from typing import Iterable, Literal

import numpy as np

_DIGIT = re.compile(r"\d")


# ASCII punctuation, symbols and control characters (not the newline): one small, fast class
_ASCII_STRIP = re.compile(r"[\x00-\x09\x0b-\x1f\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@lru_cache(maxsize=1)
def _strip_table() -> dict[int, str | None]:
    """Non-ASCII punctuation (P*), symbols (S*), control (Cc) and format (Cf) characters -> removed;
    non-ASCII whitespace -> a space."""
    table: dict[int, str | None] = {}
    for cp in range(0x80, sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] in "PS" or cat in ("Cc", "Cf"):
            table[cp] = None
        elif chr(cp).isspace():  # collapsed with the ASCII spaces later
            table[cp] = " "
    return table


def _strip_non_ascii(m: re.Match) -> str:
    return m.group().translate(_strip_table())


def strip_punctuation(text: str) -> str:
    """``text`` without punctuation, symbols, control and format characters (newlines stay)."""
    text = _ASCII_STRIP.sub("", text)
    return text if text.isascii() else _NON_ASCII.sub(_strip_non_ascii, text)


def normalise_lines(text: str) -> list[str]:
    """The normalised form of each line of ``text.split("\\n")`` (same count, same order)."""
    lines = strip_punctuation(_DIGIT.sub("0", text.lower())).split("\n")
    if len(lines) != text.count("\n") + 1:  # cannot happen (no step adds or removes "\n"); stay safe
        lines = [normalise_lines(line)[0] for line in text.split("\n")]
    return [" ".join(line.split()) for line in lines]  # whitespace runs -> one space, stripped


# the same normalisation on ASCII text as bytes, all in C: lower case, digits -> 0, the
# characters of _ASCII_STRIP deleted
_ASCII_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_ASCII_DELETE = bytes(c for c in range(128) if c != 10 and _ASCII_STRIP.fullmatch(chr(c)))


def normalised_line_bytes(text: str) -> list[bytes]:
    """``normalise_lines(text)`` encoded as UTF-8, computed mostly on bytes: the non-ASCII
    characters are handled on the string, then the ASCII ones (a byte < 0x80 in UTF-8 is always
    an ASCII character) with one ``bytes.translate``."""
    if not text.isascii():
        text = _NON_ASCII.sub(_strip_non_ascii, text.lower())
        if not text.isascii():
            text = _DIGIT.sub("0", text)  # digits of other scripts
    raw = text.encode("utf-8", "surrogatepass").lower().translate(_ASCII_DIGITS, _ASCII_DELETE)
    return [b" ".join(line.split()) for line in raw.split(b"\n")]


def line_hashes(text: str, min_line_chars: int = 1) -> np.ndarray:
    """uint64 hash (xxh3-64 of the UTF-8 normalised line) per line; 0 = not a candidate (a
    normalised line shorter than ``min_line_chars`` characters, or empty)."""
    from xxhash import xxh3_64_intdigest

    mn = max(1, min_line_chars)
    lines = normalised_line_bytes(text)

    def long_enough(b: bytes) -> bool:  # bytes >= characters: decode only when it matters
        return len(b) >= mn and (mn == 1 or b.isascii() or len(b.decode("utf-8", "surrogatepass")) >= mn)

    return np.fromiter((xxh3_64_intdigest(b) | 1 if long_enough(b) else 0 for b in lines), dtype=np.uint64, count=len(lines))


def duplicate_lines(hashes: np.ndarray, keep: Literal["first", "none"] = "first") -> np.ndarray:
    """Window positions (sorted) of the lines to drop, given every line's hash in window order.

    ``first``: a candidate line whose hash occurred earlier in the window (earlier document, or
    earlier in the same document) is dropped; the first occurrence stays. ``none``: every candidate
    line whose hash occurs more than once in the window is dropped, the first occurrence included."""
    if hashes.size == 0:
        return np.empty(0, dtype=np.int64)
    # one stable sort of all positions by hash (non-candidates, hash 0, sort first and are skipped):
    # within a run of equal hashes the earliest position comes first. Memory beyond the input:
    # the order (8 bytes per line), the sorted hashes (8) and a mask (1).
    order = np.argsort(hashes, kind="stable")
    hs = hashes[order]
    same = hs[1:] == hs[:-1]  # same[i]: sorted i+1 repeats sorted i
    same &= hs[1:] != 0
    del hs
    if keep == "first":
        drop = order[1:][same]
    else:
        dup = np.zeros(order.size, dtype=bool)
        dup[1:] = same
        dup[:-1] |= same
        drop = order[dup]
    drop.sort()
    return drop.astype(np.int64, copy=False)


def group_by_document(drop: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Split window positions into (document indexes, line indexes within each of those documents)."""
    if drop.size == 0:
        return np.empty(0, dtype=np.int64), []
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    doc = np.searchsorted(starts, drop, side="right") - 1
    line = drop - starts[doc]
    docs, first = np.unique(doc, return_index=True)
    return docs, np.split(line, first[1:])


def drop_lines(text: str, indices: Iterable[int]) -> str:
    """``text`` without the lines (of ``text.split("\\n")``) at ``indices``."""
    drop = set(indices)
    return "\n".join(line for i, line in enumerate(text.split("\n")) if i not in drop)
