"""Benchmark contamination: word n-grams shared between training text and an evaluation set.

The method is GPT-3's (Brown et al. 2020, appendix C) as Open-R1's decontamination script applies
it: text is lower-cased and stripped of punctuation, split on white space, and a document is
contaminated when it shares one word n-gram (13 by default) with a benchmark item. Items shorter
than ``n`` words but at least ``min_words`` long are matched whole.

Speed: the benchmark n-grams are hashed once into a sorted ``uint64`` array and a 2**24-entry
prefilter. A document is normalised with byte-level ``translate``, its words are hashed in numpy
(a polynomial over each word's bytes, summed with ``reduceat``), its n-gram hashes are a vectorised
polynomial over a sliding window (every n-gram length in one pass), and membership is a prefilter
probe plus a ``searchsorted`` for the few candidates.
Every hash hit is verified against the stored words, so a hash collision can never drop a document.
"""

from __future__ import annotations

import gzip
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from r1data.errors import ConfigError
from r1data.paths import REPO_ROOT

#: named bundles shipped in data/benchmarks (see its SOURCE.md): file and the fields checked
BUNDLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "gsm8k": ("gsm8k-test.jsonl.gz", ("question", "answer")),
    "champ": ("champ.jsonl.gz", ("problem", "solution")),
    "humaneval": ("humaneval.jsonl.gz", ("prompt", "canonical_solution")),
}
#: fields tried, in order, for a benchmark given as a file of rows
DEFAULT_FIELDS = ("question", "problem", "prompt", "input", "text")

_ASCII_PUNCT = string.punctuation.encode()
#: non-ASCII punctuation that re-typed copies of a text differ by (curly quotes, ellipsis); removed too
_UNICODE_PUNCT = ("\u2019", "\u2018", "\u201c", "\u201d", "\u2026", "\u00ab", "\u00bb")
_UNICODE_SPACE = ("\u00a0", "\u2009", "\u202f", "\u3000")
_GSM8K_CALC = re.compile(r"<<[^>]*>>")
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd: powers never vanish mod 2**64
_BYTE_MULT = np.uint64(0xC2B2AE3D27D4EB4F)
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[9, 10, 11, 12, 13, 32]] = True  # what bytes.split() splits on


def normalize(text: str) -> bytes:
    """Lower case, punctuation removed (``it's`` -> ``its``, ``16-3-4`` -> ``1634``), as UTF-8 bytes."""
    t = text.lower()
    if not t.isascii():
        for ch in _UNICODE_PUNCT:
            if ch in t:
                t = t.replace(ch, "")
        for ch in _UNICODE_SPACE:
            if ch in t:
                t = t.replace(ch, " ")
    return t.encode("utf-8", "surrogatepass").translate(None, _ASCII_PUNCT)


def normalize_words(text: str) -> list[str]:
    """The words n-grams are made of (white-space split of ``normalize``)."""
    return [w.decode("utf-8", "replace") for w in normalize(text).split()]


def _powers(n: int, mult: np.uint64 = _MULT) -> np.ndarray:
    p = np.ones(max(n, 1), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(1, n):
            p[k] = p[k - 1] * mult
    return p


_BYTE_POWERS = _powers(256, _BYTE_MULT)


def word_hashes(b: bytes) -> np.ndarray:
    """A 64-bit hash of every white-space separated word of ``b``, computed without a Python loop."""
    return _word_hashes_and_starts(b, offsets=False)[0]


def _word_hashes_and_starts(b: bytes, offsets: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``word_hashes(b)`` and (with ``offsets``) the byte offset where each word starts."""
    global _BYTE_POWERS
    arr = np.frombuffer(b, dtype=np.uint8)
    idx = np.flatnonzero(~_IS_SPACE[arr])
    if not len(idx):
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], starts))
    lengths = np.diff(np.concatenate((starts, [len(idx)])))
    pos = np.arange(len(idx)) - np.repeat(starts, lengths)
    longest = int(lengths.max())
    if longest > len(_BYTE_POWERS):
        _BYTE_POWERS = _powers(longest, _BYTE_MULT)
    with np.errstate(over="ignore"):
        vals = (arr[idx].astype(np.uint64) + np.uint64(1)) * _BYTE_POWERS[pos]
        h = np.add.reduceat(vals, starts)
        h ^= h >> np.uint64(31)
        h *= _MULT
    return h, (idx[starts] if offsets else None)


def ngram_hashes(h: np.ndarray, n: int, powers: np.ndarray) -> np.ndarray:
    """Hash of every window of ``n`` word hashes: sum of h[i+k] * M**k (mod 2**64)."""
    m = len(h) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    out = h[:m].copy()
    with np.errstate(over="ignore"):
        for k in range(1, n):
            out += h[k : k + m] * powers[k]
    return out


def all_ngram_hashes(h: np.ndarray, lengths: list[int], powers: np.ndarray) -> dict[int, np.ndarray]:
    """``ngram_hashes`` for several lengths at once, each longer one extending the shorter (one pass)."""
    out: dict[int, np.ndarray] = {}
    top = max(lengths)
    cur = None
    with np.errstate(over="ignore"):
        for n in range(1, top + 1):
            m = len(h) - n + 1
            if m <= 0:
                break
            cur = h[:m].copy() if cur is None else cur[:m] + h[n - 1 : n - 1 + m] * powers[n - 1]
            if n in lengths:
                out[n] = cur
    return out


@dataclass
class Match:
    benchmark: str
    item: str
    ngram: str
    count: int = 1


@dataclass
class BenchmarkIndex:
    """The n-grams of one or more evaluation sets, built once per process and only read after ``freeze``.

    ``add`` collects texts; ``freeze`` hashes all of them in one vectorised pass (the texts joined, one
    word-hash array, every window's hash at once) into numpy tables: per n-gram length the sorted
    hashes, and for each the text and word it starts at. Identical n-grams are stored once (the first
    text that has it names the match). Words are split from a text only when a hash hit is verified."""

    n: int = 13
    min_words: int = 8
    items: dict[str, int] = field(default_factory=dict)
    ngrams: int = 0
    _texts: list[bytes] = field(default_factory=list)
    _owner: list[tuple[str, str]] = field(default_factory=list)

    def add(self, benchmark: str, item: str, text: str) -> None:
        b = normalize(text)
        nwords = len(b.split())
        if nwords < self.min_words:
            return
        self._texts.append(b)
        self._owner.append((benchmark, item))
        self.items[benchmark] = self.items.get(benchmark, 0) + 1

    #: bits of the prefilter table: a hash is looked up exactly only when its top bits are marked
    FILTER_BITS = 24

    def _gram(self, text: int, word: int, length: int) -> tuple[bytes, ...]:
        """The ``length`` words of text ``text`` from word ``word`` on (texts split once, while freezing)."""
        w = self._split.get(text)
        if w is None:
            w = self._split[text] = self._texts[text].split()
        return tuple(w[word : word + length])

    def freeze(self) -> BenchmarkIndex:
        self._split: dict[int, list[bytes]] = {}
        self._sorted: dict[int, np.ndarray] = {}
        self._where: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        joined = b" ".join(self._texts)
        h, starts = _word_hashes_and_starts(joined)
        text_start = np.zeros(len(self._texts) + 1, dtype=np.int64)  # byte offset of each text in `joined`
        if self._texts:
            text_start[1:] = np.cumsum([len(t) + 1 for t in self._texts])
        text_of = np.searchsorted(text_start, starts, side="right") - 1  # the text each word is in
        first_word = np.searchsorted(text_of, np.arange(len(self._texts)))  # each text's first word
        nwords = np.diff(np.append(first_word, len(h)))
        length = np.minimum(nwords, self.n)  # texts shorter than n are matched whole
        lengths = sorted(set(length.tolist()))
        self._lengths = lengths
        self._powers = _powers(max(lengths, default=1))
        grams = all_ngram_hashes(h, lengths, self._powers) if len(h) else {}
        word_pos = np.arange(len(h)) - first_word[text_of] if len(h) else np.empty(0, dtype=np.int64)
        shift = np.uint64(64 - self.FILTER_BITS)
        self._shift = shift
        self._filter = np.zeros(1 << self.FILTER_BITS, dtype=bool)  # one table for every length: a prefilter only
        for L in lengths:
            m = len(grams[L])
            t, w = text_of[:m], word_pos[:m]
            ok = (length[t] == L) & (w + L <= nwords[t])  # windows inside one text whose grams have length L
            if L < self.n:
                ok &= w == 0
            cand = np.flatnonzero(ok)
            hv = grams[L][cand]
            order = np.argsort(hv, kind="stable")  # equal hashes keep the texts' order: the first text names it
            hv, t, w = hv[order], t[cand][order], w[cand][order]
            keep = np.ones(len(hv), dtype=bool)
            # runs of equal hashes: keep the first of each distinct n-gram (linear in the run's length, so
            # thousands of items sharing a template line cost no more than thousands of distinct ones)
            same = np.flatnonzero(hv[1:] == hv[:-1]) + 1
            prev, seen = -2, set()
            for j in same.tolist():
                if j != prev + 1:  # j - 1 starts a run of equal hashes
                    seen = {self._gram(int(t[j - 1]), int(w[j - 1]), L)}
                prev = j
                gram = self._gram(int(t[j]), int(w[j]), L)
                if gram in seen:
                    keep[j] = False
                else:
                    seen.add(gram)
            self._sorted[L] = hv[keep]
            self._where[L] = (t[keep].astype(np.int32), w[keep].astype(np.int32))
            self._filter[self._sorted[L] >> shift] = True
        self.ngrams = sum(len(v) for v in self._sorted.values())
        self._split = {}
        return self

    def find(self, text: str, first_only: bool = True) -> list[Match]:
        """Benchmark items sharing an n-gram with ``text``: one ``Match`` per benchmark (the first n-gram, a count)."""
        if not self._sorted:
            return []
        b = normalize(text)
        h = word_hashes(b)
        if len(h) < self.min_words:
            return []
        found: dict[str, Match] = {}
        words = None
        grams_by_len = all_ngram_hashes(h, self._lengths, self._powers)
        for length in sorted(grams_by_len, reverse=True):
            grams = grams_by_len[length]
            cand = np.flatnonzero(self._filter[grams >> self._shift])
            if not len(cand):
                continue
            table = self._sorted[length]
            sub = grams[cand]
            pos = np.searchsorted(table, sub)
            hit = table[np.minimum(pos, len(table) - 1)] == sub
            texts, at = self._where[length]
            for i, p in zip(cand[hit].tolist(), pos[hit].tolist()):
                if words is None:
                    words = b.split()
                gram = words[i : i + length]
                hv = table[p]
                while p < len(table) and table[p] == hv:  # every stored n-gram with this hash, in order
                    t, w = int(texts[p]), int(at[p])
                    p += 1
                    if self._texts[t].split()[w : w + length] != gram:
                        continue  # a hash collision: never a match
                    bench, item = self._owner[t]
                    if bench in found:
                        found[bench].count += 1
                    else:
                        found[bench] = Match(bench, item, b" ".join(gram).decode("utf-8", "replace"))
                        if first_only:
                            return list(found.values())
        return list(found.values())


def bundle_path(name: str) -> Path:
    return REPO_ROOT / "data" / "benchmarks" / BUNDLES[name][0]


def resolve_benchmark(spec: str) -> tuple[str, Path, tuple[str, ...]]:
    """A bundle name (``gsm8k``) or a file (``path/to/eval.jsonl[.gz]`` or ``.txt``): (name, path, fields)."""
    from r1data.paths import resolve_path

    if spec in BUNDLES:
        return spec, bundle_path(spec), BUNDLES[spec][1]
    p = resolve_path(spec)
    if not p.exists():
        known = ", ".join(sorted(BUNDLES))
        raise ConfigError(f"benchmark {spec!r}: not a bundled benchmark ({known}) and no such file")
    name = p.name.split(".")[0]
    return name, p, DEFAULT_FIELDS


def _rows(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        if ".jsonl" in path.name or ".json" in path.name:
            for n, line in enumerate(fh):
                if line.strip():
                    yield n, json.loads(line)
        else:  # plain text: one item per paragraph
            for n, para in enumerate(re.split(r"\n\s*\n", fh.read())):
                if para.strip():
                    yield n, {"text": para}


_INDEXES: dict[tuple, BenchmarkIndex] = {}


def build_index(specs: list[str], n: int = 13, min_words: int = 8) -> BenchmarkIndex:
    """The frozen index of ``specs``; built once per process for the same files (every task of a
    worker shares it: ``find`` only reads it)."""
    files = []
    for spec in specs:
        path = resolve_benchmark(spec)[1]
        st = path.stat()
        files.append((spec, str(path), st.st_mtime_ns, st.st_size))
    key = (tuple(files), n, min_words)
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= 4:
            _INDEXES.clear()
        index = _INDEXES[key] = _build_index(specs, n, min_words)
    return index


def _build_index(specs: list[str], n: int, min_words: int) -> BenchmarkIndex:
    index = BenchmarkIndex(n=n, min_words=min_words)
    for spec in specs:
        name, path, fields = resolve_benchmark(spec)
        named_fields = spec in BUNDLES
        for row_no, row in _rows(path):
            item = str(row.get("id") or row.get("task_id") or f"{name}#{row_no}")
            for f in fields:
                value = row.get(f)
                if not isinstance(value, str):
                    continue
                if name == "gsm8k" or f == "answer":
                    value = _GSM8K_CALC.sub("", value)
                index.add(name, item, value)
                if not named_fields:
                    break  # a file of rows: the first field it has is the item
    return index.freeze()
