"""One analysis of a document's text, shared by the Gopher, C4 and FineWeb heuristic stages.

datatrove's filters each tokenise the whole document with spaCy (``spacy.blank(lang)`` plus the
``sentencizer``, via ``load_word_tokenizer``) and build their n-grams as Python strings; C4 runs the
spaCy pipeline again on every line to count sentences. This module computes the same values once
per document and lets the four stages share them:

- **Words** are datatrove's ``split_into_words``: spaCy's tokens, minus whitespace tokens. spaCy
  splits the text at whitespace and tokenises each chunk on its own, so the tokens of a chunk are
  cached (chunk -> token ids) and spaCy only sees chunks not seen before (joined by newlines, which
  no special case can span). The one context effect is spaCy's special-case matcher: a special-case
  pattern spanning two chunks separated by one space (``try: p.x`` matches ``:p``) can block a
  special case inside a chunk (``p.``). Documents where such a span exists are tokenised whole by
  spaCy instead, so the words always equal spaCy's.
- **Sentences** per line (C4) replay spaCy's ``Sentencizer`` rule over the cached token classes
  (in its punctuation set / ``is_punct`` / other, whitespace tokens included).
- **N-grams** (Gopher repetition) are hashed with numpy: word n-grams by their token ids (datatrove
  joins them with spaces, so equal strings are equal id tuples) and "duplicated n-grams" by a
  polynomial hash of their concatenated characters (datatrove joins those without a separator, so
  different splits of the same characters are equal). Every group of equal hashes is checked for
  real equality; a collision falls back to datatrove's string code for that n.

Languages whose datatrove tokenizer is not a plain spaCy pipeline use datatrove's tokenizer once
per document (words) and per line (sentences): the sharing still applies, the chunk cache does not.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from itertools import chain

import numpy as np

_WS_SPLIT = re.compile(r"(\s+)")
_MASK = (1 << 64) - 1
_CHAR_SPAN = 0x110001  # above every code point + 1
_B = 0x100000001B3 * 2 + 1  # odd: invertible modulo 2**64
_B_INV = pow(_B, -1, 1 << 64)
_B2 = np.uint64(0x9E3779B97F4A7C15)

# the most vocab entries kept before the caches start over (between documents)
MAX_CHUNKS = 1_000_000
MAX_TOKENS = 1_000_000


_SHORT = 48  # chunks up to which _crossings scans in Python

# chunks spaCy's English tokenizer splits only at a leading "(" and one trailing mark (Vocab._simple_split)
_SIMPLE = re.compile(r"(\(?)([A-Za-z]+|[0-9]+)([,;:!?).]?)\Z")
_SIMPLE_AFFIXES = ("(", ",", ";", ":", "!", "?", ")", ".")
_LOWER_OR_DIGIT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def import_spacy():
    """``import spacy`` without torch, unless torch is already loaded.

    spaCy imports thinc, which imports torch (1.4 s and ~300 MB per process here) only to offer
    it as a model backend; a blank pipeline's tokenizer never uses it. While spaCy is imported,
    ``import torch`` fails (thinc then records that it has no torch); afterwards torch imports
    as usual for any code that wants it."""
    import sys

    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return spacy


def _blank(language: str):
    """``spacy.blank(language)`` whose vocabulary computes only ``is_punct`` for a new string.

    The cache reads the tokens' text and ``is_punct``; spaCy's tokenizer never reads lexical
    attributes (its splits come from the special cases and the prefix/suffix/infix/URL patterns),
    so the twenty-odd others it would compute for every new string (shape, like_num, ...) are
    skipped: the same tokens, about a quarter less time."""
    spacy = import_spacy()
    from spacy.attrs import IS_PUNCT

    nlp = spacy.blank(language)
    getters = nlp.vocab.lex_attr_getters
    if IS_PUNCT in getters:
        nlp.vocab.lex_attr_getters = {IS_PUNCT: getters[IS_PUNCT]}
    return nlp


class _EndAnchoredSearch:
    """``pattern.search`` for an alternation whose branches all end in ``$`` (spaCy's suffix regex),
    with the same result, without trying every start position of a long string.

    Python's ``re`` tries each position from the left; spaCy's English suffix rules are 82 branches,
    81 of which match at most 5 characters. Those can only match near the end, so they are searched
    from ``len(s) - width`` on (``pos`` keeps the text before it visible to look-behinds); the
    unbounded branches are searched alone over the whole string. The leftmost of the two is the
    original's match: nothing else can start further left, and every branch ends at the string's
    end, so on a tie the span is the same whichever branch the original would have taken. Built only
    when the pattern has that shape (else ``None``); strings holding a newline (``$`` also matches
    before a final one) go to the original search. ``tests/test_heuristics_parity.py`` checks spaCy's
    tokens with and without it."""

    def __init__(self, bounded, width: int, unbounded, original):
        self._bounded, self._width, self._unbounded, self._original = bounded, width, unbounded, original

    @classmethod
    def build(cls, search):
        pattern = getattr(getattr(search, "__self__", None), "pattern", None)
        if not isinstance(pattern, str):
            return None
        try:
            import re._parser as sre_parse  # Python 3.11+
        except ImportError:  # pragma: no cover
            import sre_parse
        import re

        try:
            parsed = sre_parse.parse(pattern, search.__self__.flags)
            if len(parsed.data) != 1 or str(parsed.data[0][0]) != "BRANCH":
                return None
            branches = parsed.data[0][1][1]
        except Exception:  # noqa: BLE001 - an unexpected pattern keeps the original search
            return None
        texts = _split_top_level(pattern)
        if texts is None or len(texts) != len(branches):
            return None
        bounded, unbounded, width = [], [], 0
        for text, br in zip(texts, branches):
            if not br.data or str(br.data[-1][0]) != "AT" or str(br.data[-1][1]) != "AT_END":
                return None  # a branch not anchored at the end: keep the original
            hi = br.getwidth()[1]
            if hi <= 64:
                bounded.append(text)
                width = max(width, hi)
            else:
                unbounded.append(text)
        flags = search.__self__.flags
        comp = lambda parts: re.compile("|".join(parts), flags).search if parts else None  # noqa: E731
        return cls(comp(bounded), width, comp(unbounded), search)

    def __call__(self, s: str):
        if "\n" in s:
            return self._original(s)
        m = self._bounded(s, max(0, len(s) - self._width)) if self._bounded is not None else None
        if self._unbounded is not None:
            u = self._unbounded(s)
            if u is not None and (m is None or u.start() < m.start()):
                return u
        return m


def _with_fast_suffix(tok):
    """``tok`` with its suffix search replaced by an ``_EndAnchoredSearch`` when the pattern allows it."""
    fast = _EndAnchoredSearch.build(tok.suffix_search) if tok.suffix_search is not None else None
    if fast is not None:
        tok.suffix_search = fast
    return tok


def _split_top_level(pattern: str) -> list[str] | None:
    """The top-level ``|`` alternatives of a regex source, or None if it cannot be split safely."""
    out, depth, start, i, cls = [], 0, 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if cls:
            if c == "]":
                cls = False
        elif c == "[":
            cls = True
            if pattern[i + 1:i + 2] == "^":
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a literal ] first in the class
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    if depth != 0 or cls:
        return None
    out.append(pattern[start:])
    return out


class _Powers:
    """B**k and B**-k modulo 2**64 for k up to the longest text seen (grown on demand)."""

    def __init__(self) -> None:
        self.pw = np.ones(1, dtype=np.uint64)
        self.ipw = np.ones(1, dtype=np.uint64)

    def upto(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n >= len(self.pw):
            size = max(n + 1, 2 * len(self.pw))
            with np.errstate(over="ignore"):
                for name, base in (("pw", _B), ("ipw", _B_INV)):
                    a = np.full(size, base, dtype=np.uint64)
                    a[0] = 1
                    setattr(self, name, np.cumprod(a, dtype=np.uint64))
        return self.pw, self.ipw


_POWERS = _Powers()


def _mix(ids: np.ndarray) -> np.ndarray:
    """A well-spread 64-bit value per token id (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        x = (ids.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _char_hash(s: str) -> int:
    h = 0
    for c in s:
        h = (h * _B + ord(c)) & _MASK
    return h


class _Grow:
    """A numpy array that grows by doubling; ``a`` is valid up to ``n``."""

    def __init__(self, dtype) -> None:
        self.a = np.zeros(1024, dtype=dtype)
        self.n = 0

    def extend(self, values: list) -> None:
        need = self.n + len(values)
        if need > len(self.a):
            b = np.zeros(max(need, 2 * len(self.a)), dtype=self.a.dtype)
            b[: self.n] = self.a[: self.n]
            self.a = b
        self.a[self.n : need] = values
        self.n = need


class Vocab:
    """Token ids and per-token facts for one tokenizer (one language)."""

    def __init__(self, language: str) -> None:
        from datatrove.utils.text import PUNCTUATION_SET
        from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

        self.language = language
        import_spacy()  # before datatrove's tokenizer imports it (with torch)
        self._punct = PUNCTUATION_SET
        self.dt_tokenizer = load_word_tokenizer(language)
        self.nlp = None
        self.fast = False
        if type(self.dt_tokenizer) is SpaCyTokenizer and self.dt_tokenizer.config is None:
            from spacy.pipeline import Sentencizer
            from spacy.tokenizer import Tokenizer

            self.nlp = _blank(language)
            tok = self.nlp.tokenizer
            if type(tok) is Tokenizer:
                self.fast = True
                self.tok = _with_fast_suffix(tok)
                self.punct_chars = set(Sentencizer.default_punct_chars)
                self._special_patterns(tok)
        if not self.fast:
            self.punct_chars = None
        self.simple = False
        self.reset()

    # -- special cases spanning chunks ----------------------------------------------------------
    def _special_patterns(self, tok) -> None:
        """The token sequences spaCy's special-case matcher looks for, split at every inner point:
        ``splits[(a1..ak)]`` = the continuations (b1..bj) that complete a pattern."""
        from spacy.tokenizer import Tokenizer

        plain = Tokenizer(
            self.nlp.vocab,
            rules={},
            prefix_search=tok.prefix_search,
            suffix_search=tok.suffix_search,
            infix_finditer=tok.infix_finditer,
            token_match=tok.token_match,
            url_match=tok.url_match,
        )
        # by the text of a pattern's first k tokens: the texts of its other tokens, concatenated
        self.splits: dict[str, set[str]] = {}
        pairs = set()
        for s in tok.rules:
            if tok.faster_heuristics and not (tok.find_prefix(s) or tok.find_infix(s) or tok.find_suffix(s) or " " in s):
                continue  # spaCy adds only these to its matcher
            p = [t.text for t in plain(s)]
            if len(p) < 2:
                continue
            if any(t.isspace() for t in p):  # never in spaCy's rules: then the newline joins would be unsafe
                raise RuntimeError(f"spaCy special case {s!r} contains whitespace tokens")
            for k in range(1, len(p)):
                left, right = "".join(p[:k]), "".join(p[k:])
                self.splits.setdefault(left, set()).add(right)
                pairs.add((left[-1], right[0]))
        self._left_lens = sorted({len(x) for x in self.splits})
        self._max_right = max(len(r) for rs in self.splits.values() for r in rs)
        self._lchars = {a for a, _ in pairs}
        self._fchars = {b for _, b in pairs}
        self.pair_keys = {(ord(a) + 1) * _CHAR_SPAN + ord(b) + 1 for a, b in pairs}

    def reset(self) -> None:
        """Start the caches over; spaCy's vocabulary (which only grows) is rebuilt with them."""
        self.generation = getattr(self, "generation", -1) + 1
        if self.fast and self.generation:
            self.nlp = _blank(self.language)
            self.tok = _with_fast_suffix(self.nlp.tokenizer)
        self.tok_index: dict[str, int] = {}
        self.tokens: list[str] = []
        self.t_len = _Grow(np.int64)
        self.t_nonsym = _Grow(np.bool_)
        self.t_alpha = _Grow(np.bool_)
        self.t_hash = _Grow(np.uint64)
        self.t_class: list[int] = []  # sentencizer class: 0 other, 1 is_punct, 2 in punct_chars
        self.chunk_index: dict[str, int] = {}
        self.chunk_toks: list[tuple[int, ...]] = []
        self.chunk_sent: list[tuple[int, int, int, int]] = []  # sentence starts / state out, for state in F, T
        # a special case spanning chunks ends one chunk with a character of _lchars and starts the
        # next with one of _fchars: (code of the last character + 1) * _CHAR_SPAN, else 0, and
        # (code of the first character + 1), else 0
        self.c_last = _Grow(np.int64)
        self.c_first = _Grow(np.int64)
        self.c_last_l: list[int] = []  # the same, as lists: a line's few chunks are read faster from them
        self.c_first_l: list[int] = []
        if self.fast:  # the affixes of simple chunks, with spaCy's own lexical facts
            texts, puncts = self._spacy_tokens(" ".join(_SIMPLE_AFFIXES))
            self._add_tokens(texts, puncts)
            self.simple = texts == list(_SIMPLE_AFFIXES) and self.language == "en"

    def _add_tokens(self, texts: list[str], puncts: list[bool] | None = None) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self.tok_index]
        if not new:
            return
        if puncts is not None:
            pmap = dict(zip(texts, puncts))
        base = len(self.tokens)
        for i, t in enumerate(new):
            self.tok_index[t] = base + i
        self.tokens.extend(new)
        punct = self._punct
        self.t_len.extend([len(t) for t in new])
        self.t_nonsym.extend([any(c not in punct for c in t) for t in new])
        self.t_alpha.extend([any(c.isalpha() for c in t) for t in new])
        self.t_hash.extend([_char_hash(t) for t in new])
        if self.fast:
            pc = self.punct_chars
            self.t_class.extend([2 if t in pc else (1 if pmap[t] else 0) for t in new])

    def _spacy_tokens(self, text: str) -> tuple[list[str], list[bool]]:
        """spaCy's tokens of ``text`` and their ``is_punct``, read as arrays (no Token objects)."""
        from spacy.attrs import IS_PUNCT, ORTH

        doc = self.tok(text)
        if not len(doc):
            return [], []
        arr = doc.to_array([ORTH, IS_PUNCT])
        strings = self.nlp.vocab.strings
        names: dict[int, str] = {}
        texts = []
        for o in arr[:, 0].tolist():
            t = names.get(o)
            if t is None:
                t = names[o] = strings[o]
            texts.append(t)
        return texts, [bool(p) for p in arr[:, 1].tolist()]

    def _simple_split(self, chunks: list[str]) -> list[list[str] | None]:
        """spaCy's tokens of the chunks that need no tokenizer, else None: ASCII letters or ASCII
        digits, alone or with one opening bracket before and one of ``,;:!?)`` or a full stop after
        (the stop only where spaCy's suffix rules split it: after a lower-case letter, a digit or two
        capitals, as in "word." "2019." "USA."), that are no special case (whole, or without the bracket, the mark or both). Nothing else in spaCy's English
        rules splits them: its prefixes, suffixes and infixes all need another character (units
        such as ``km`` split only after a digit), and the matcher of multi-token special cases
        could only match the chunk itself. ``tests/test_heuristics_parity.py`` checks this against spaCy."""
        out: list[list[str] | None] = []
        if not self.simple:
            return [None] * len(chunks)
        match, rules = _SIMPLE.match, self.tok.rules
        for c in chunks:
            m = match(c)
            if m is None or c in rules:
                out.append(None)
                continue
            pre, core, post = m.groups()
            if post == "." and not (core[-1] in _LOWER_OR_DIGIT or (len(core) > 1 and core[-2:].isupper())):
                out.append(None)  # spaCy splits a final "." after a lower-case letter, a digit or two capitals only
            elif core in rules or (pre and post and (core + post in rules or pre + core in rules)):  # "(8)" is "(" "8)"
                out.append(None)
            elif pre or post:
                out.append([t for t in (pre, core, post) if t])
            else:
                out.append([core])
        return out

    def _learn_chunks(self, chunks: list[str]) -> None:
        """Tokenise unseen chunks (spaCy, in one call, for those that need it) and cache them."""
        simple = self._simple_split(chunks)
        hard = [c for c, sp in zip(chunks, simple) if sp is None]
        texts, puncts = self._spacy_tokens("\n".join(hard)) if hard else ([], [])
        easy = [t for sp in simple if sp is not None for t in sp if t not in self.tok_index]
        if easy:  # letters, digits (no punctuation) and the affixes, learnt with spaCy at reset
            self._add_tokens(easy, [False] * len(easy))
        self._add_tokens(texts, puncts)
        ti, pc = self.tok_index, self.t_class
        groups: list[list[int]] = [[]]
        for t in texts:
            if t.isspace():
                groups.append([])
            else:
                groups[-1].append(ti[t])
        groups = [g for g in groups if g]
        if len(groups) != len(hard):  # cannot happen with spaCy's whitespace rule; be safe
            groups = [[ti[t] for t in self._spacy_tokens(c)[0]] for c in hard]
        if len(hard) < len(chunks):
            it = iter(groups)
            groups = [next(it) if sp is None else [ti[t] for t in sp] for sp in simple]
        lchars, fchars = self._lchars, self._fchars
        base = len(self.chunk_toks)
        for k, (c, g) in enumerate(zip(chunks, groups)):
            self.chunk_index[c] = base + k
        self.chunk_toks.extend(tuple(g) for g in groups)
        self.chunk_sent.extend(_sent_summary([pc[i] for i in g]) for g in groups)
        last = [(ord(c[-1]) + 1) * _CHAR_SPAN if c[-1] in lchars else 0 for c in chunks]
        first = [ord(c[0]) + 1 if c[0] in fchars else 0 for c in chunks]
        self.c_last.extend(last)
        self.c_first.extend(first)
        self.c_last_l.extend(last)
        self.c_first_l.extend(first)

    def chunk_ids(self, chunks: list[str]) -> list[int]:
        ci = self.chunk_index
        try:
            return list(map(ci.__getitem__, chunks))
        except KeyError:
            self._learn_chunks([c for c in dict.fromkeys(chunks) if c not in ci])
            return list(map(ci.__getitem__, chunks))

    def _crossings(self, text: str, chunks: list[str], idx: list[int]) -> list[tuple[int, int]]:
        """Runs of chunks [i, j] joined by single spaces that a special-case pattern spans, merged."""
        n = len(idx)
        if n < 2:
            return []
        pk = self.pair_keys
        if n <= _SHORT:  # a line: numpy's per-call cost is more than the work
            cl, cf = self.c_last_l, self.c_first_l
            cands = []
            for i in range(n - 1):
                lk = cl[idx[i]]
                if lk:
                    fk = cf[idx[i + 1]]
                    if fk and lk + fk in pk:
                        cands.append(i)
        else:
            a = np.asarray(idx)
            lk = self.c_last.a[a[:-1]]
            fk = self.c_first.a[a[1:]]
            maybe = (lk != 0) & (fk != 0)
            if not maybe.any():
                return []
            cands = np.flatnonzero(maybe)
            keys = (lk[cands] + fk[cands]).tolist()
            cands = [i for i, key in zip(cands.tolist(), keys) if key in pk]
        if not cands:
            return []
        # spaCy's matcher works on the tokens before special cases are merged, which the cache does
        # not keep: match the patterns' text instead (a superset of the token matches, which is
        # safe: spaCy on a run of chunks no pattern leaves gives what it gives them in the text)
        splits, lens, max_right = self.splits, self._left_lens, self._max_right
        seps: list[str] | None = None  # the whitespace after each chunk, read only when needed
        regions: list[tuple[int, int]] = []
        for i in cands:
            if seps is not None and seps[i] != " ":
                continue
            a_text = chunks[i]
            right = ""
            ends: list[int] = []  # ends[c]: the chunk holding right[c]
            j = i + 1
            while j < n and len(right) < max_right:
                right += chunks[j]
                ends.extend([j] * len(chunks[j]))
                j += 1
            end = -1
            for ln in lens:
                if ln > len(a_text):
                    break
                for r in splits.get(a_text[-ln:], ()):
                    if right.startswith(r):
                        end = max(end, ends[len(r) - 1])
            if end < 0:
                continue
            if seps is None:
                parts = _WS_SPLIT.split(text)
                if parts and parts[0] == "":
                    parts = parts[2:]
                seps = parts[1::2]
                if seps[i] != " ":
                    continue
            k = i + 1  # the pattern cannot reach past a separator other than one space
            while k < end and seps[k] == " ":
                k += 1
            end = min(end, k)
            if regions and i <= regions[-1][1]:
                regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
            else:
                regions.append((i, end))
        return regions

    # -- what the stages use --------------------------------------------------------------------
    def word_ids(self, text: str) -> np.ndarray:
        """Ids of ``split_into_words(text, language)``."""
        if self.fast:
            if len(self.chunk_index) > MAX_CHUNKS or len(self.tokens) > MAX_TOKENS:
                self.reset()
            chunks = text.split()
            idx = self.chunk_ids(chunks)
            seq = list(map(self.chunk_toks.__getitem__, idx))
            # chunks that a special case spans: spaCy on just those chunks (as they stand in the
            # text, joined by single spaces) gives what it gives them inside the whole text, since
            # no special-case span reaches past them
            for i, j in reversed(self._crossings(text, chunks, idx)):
                texts, puncts = self._spacy_tokens(" ".join(chunks[i : j + 1]))
                self._add_tokens(texts, puncts)
                ti = self.tok_index
                seq[i : j + 1] = [tuple(ti[t] for t in texts)]
            return np.fromiter(chain.from_iterable(seq), dtype=np.int64)
        else:
            if len(self.tokens) > MAX_TOKENS:
                self.reset()
            words = self.dt_tokenizer.word_tokenize(text)
            self._add_tokens(words)
        ti = self.tok_index
        return np.fromiter((ti[w] for w in words), dtype=np.int64, count=len(words))

    def count_sentences(self, line: str) -> int:
        """``len(split_into_sentences(line, language))``."""
        if not self.fast:
            from datatrove.utils.text import split_into_sentences

            return len(split_into_sentences(line, self.language))
        if len(self.chunk_index) > MAX_CHUNKS or len(self.tokens) > MAX_TOKENS:
            self.reset()
        chunks = line.split()
        if " ".join(chunks) == line:  # single spaces only: no whitespace tokens
            parts = None
            lead = False
        else:
            parts = _WS_SPLIT.split(line)
            lead = parts[0] == ""
        if not chunks:
            return 1  # datatrove's span arithmetic gives one (empty) sentence for a blank line
        idx = self.chunk_ids(chunks)
        if self._crossings(line, chunks, idx):
            texts, puncts = self._spacy_tokens(line)
            self._add_tokens(texts, puncts)
            classes = [self.t_class[self.tok_index[t]] for t in texts]
            return max(1, _count(classes))
        summ = self.chunk_sent
        starts, seen = 0, False
        seps = parts[1::2] if parts is not None else []
        # whitespace tokens (class 0): a leading run; after a chunk, a run other than exactly " "
        if lead and seps:
            seps_iter = iter(seps[1:])
            starts = 1  # the leading whitespace token opens the first sentence
        else:
            seps_iter = iter(seps)
        for c in idx:
            s = summ[c]
            if starts == 0:
                starts = 1
            if seen:
                starts += s[2]
                seen = bool(s[3])
            else:
                starts += s[0]
                seen = bool(s[1])
            sep = next(seps_iter, None)
            if sep is not None and sep != " " and seen:
                starts += 1
                seen = False
        return max(1, starts)


def _count(classes: list[int]) -> int:
    """Sentences spaCy's Sentencizer finds in a doc whose tokens have these classes."""
    if not classes:
        return 0
    starts, seen = 1, False
    for c in classes:
        if seen and c == 0:
            starts += 1
            seen = False
        elif c == 2:
            seen = True
    return starts


def _sent_summary(classes: list[int]) -> tuple[int, int, int, int]:
    """For a chunk: (new sentence starts, seen_period after) entering with seen_period False, then True."""
    out = []
    for seen in (False, True):
        starts = 0
        for c in classes:
            if seen and c == 0:
                starts += 1
                seen = False
            elif c == 2:
                seen = True
        out.extend((starts, int(seen)))
    return tuple(out)


_VOCABS: dict[str, Vocab] = {}


def vocab(language: str) -> Vocab:
    v = _VOCABS.get(language)
    if v is None:
        v = _VOCABS[language] = Vocab(language)
    return v


# -- n-grams ----------------------------------------------------------------------------------------
_HASHED_FROM = 1024  # from this many n-grams on, a hash table groups them (below, sorting is cheaper)


def _groups(h: np.ndarray):
    """Group equal hashes: (inverse group id per position, first position of each group, counts),
    or Nones when all differ."""
    if len(h) >= _HASHED_FROM:
        return _groups_hashed(h)
    hs = np.sort(h)
    if not (hs[1:] == hs[:-1]).any():
        return None, None, None
    order = np.argsort(h)
    hs = h[order]
    start = np.empty(len(h), dtype=bool)
    start[0] = True
    np.not_equal(hs[1:], hs[:-1], out=start[1:])
    starts = np.flatnonzero(start)
    if len(starts) == len(h):  # all different
        return None, None, None
    gid_sorted = np.cumsum(start) - 1
    inv = np.empty(len(h), dtype=np.int64)
    inv[order] = gid_sorted
    first = np.minimum.reduceat(order, starts)
    counts = np.diff(np.append(starts, len(h)))
    return inv, first, counts


def _groups_hashed(h: np.ndarray):
    """``_groups`` in linear time: pandas' hash table numbers the groups in order of first
    appearance, so a group's first position is where the running maximum of the codes grows."""
    from pandas import factorize

    codes, uniques = factorize(h)
    if len(uniques) == len(h):
        return None, None, None
    top = np.maximum.accumulate(codes)
    new = np.empty(len(h), dtype=bool)
    new[0] = True
    np.greater(top[1:], top[:-1], out=new[1:])
    first = np.flatnonzero(new)
    counts = np.bincount(codes, minlength=len(uniques))
    return codes.astype(np.int64, copy=False), first, counts


def _same_windows(ids: np.ndarray, a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    if not len(a):
        return np.ones(0, dtype=bool)
    off = np.arange(n)
    return (ids[a[:, None] + off] == ids[b[:, None] + off]).all(axis=1)


class TextStats:
    """Everything the four heuristic stages compute from one text, computed on first use."""

    def __init__(self, text: str, language: str) -> None:
        self.text = text
        self.language = language
        self.vocab = vocab(language)
        self._ids: np.ndarray | None = None
        self._generation = -1
        self._top: dict[int, int] = {}
        self._dup: dict[int, int] = {}
        self._lines: list[str] | None = None
        self._sent: dict[str, int] = {}
        self._lens: np.ndarray | None = None

    # words
    @property
    def ids(self) -> np.ndarray:
        if self._ids is None or self._generation != self.vocab.generation:
            self._ids = self.vocab.word_ids(self.text)  # may start the vocab over: read the generation after
            self._generation = self.vocab.generation
            self._lens = None
        return self._ids

    @property
    def n_words(self) -> int:
        return len(self.ids)

    def words(self) -> list[str]:
        ids = self.ids  # first: reading the ids may start the vocab over
        toks = self.vocab.tokens
        return [toks[i] for i in ids.tolist()]

    @property
    def word_lens(self) -> np.ndarray:
        ids = self.ids
        if self._lens is None:
            self._lens = self.vocab.t_len.a[ids]
        return self._lens

    def gopher_word_stats(self) -> tuple[int, int, float, int]:
        """(non-symbol words, words with a letter, mean length of non-symbol words, all words)."""
        ids = self.ids
        nonsym = self.vocab.t_nonsym.a[ids]
        n_nonsym = int(nonsym.sum())
        mean = float(self.word_lens[nonsym].sum()) / n_nonsym if n_nonsym else float("nan")
        return n_nonsym, int(self.vocab.t_alpha.a[ids].sum()), mean, len(ids)

    def stop_words_present(self, stop_words: set[str]) -> int:
        ids = self.ids  # first: reading the ids may start the vocab over
        ti = self.vocab.tok_index
        sid = [ti[w] for w in stop_words if w in ti]
        if not sid:
            return 0
        return int(np.isin(np.asarray(sid, dtype=np.int64), ids).sum())

    @property
    def splitlines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def sentences_in(self, line: str) -> int:
        n = self._sent.get(line)
        if n is None:
            n = self._sent[line] = self.vocab.count_sentences(line)
        return n

    # n-grams
    def top_ngram_chars(self, n: int) -> int | None:
        """datatrove's ``find_top_duplicate(get_n_grams(words, n))``; None when there is no n-gram."""
        if n not in self._top:
            self._top[n] = self._top_ngram(n)
        return self._top[n]

    def _top_ngram(self, n: int) -> int | None:
        ids = self.ids
        m = len(ids) - n + 1
        if m <= 0:
            return None
        if n < 1:
            return _dt_top(self.words(), n)
        h = _mix(ids)
        with np.errstate(over="ignore"):
            hn = h
            for k in range(1, n):
                hn = hn[:-1] * _B2 + h[k:]
        inv, first, counts = _groups(hn)
        if inv is None:  # every n-gram once: the first one wins
            return int(self.word_lens[:n].sum()) + n - 1
        best = counts.max()
        winners = np.flatnonzero(counts == best)
        g = winners[np.argmin(first[winners])]
        f = int(first[g])
        members = np.flatnonzero(inv == g)
        if not _same_windows(ids, members, np.full(len(members), f), n).all():
            return _dt_top(self.words(), n)  # hash collision: datatrove's way
        lens = self.word_lens
        return (int(lens[f : f + n].sum()) + n - 1) * int(best)

    def dup_ngram_chars(self, n: int) -> int:
        """datatrove's ``find_all_duplicate(words, n)``."""
        if n not in self._dup:
            self._dup[n] = self._dup_ngram(n)
        return self._dup[n]

    def _dup_ngram(self, n: int) -> int:
        ids = self.ids
        m = len(ids) - n + 1
        if m <= 0:
            return 0
        if n < 1:
            return _dt_all_dup(self.words(), n)
        lens = self.word_lens
        cum = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lens, out=cum[1:])
        pw, ipw = _POWERS.upto(int(cum[-1]))
        with np.errstate(over="ignore"):
            q = np.zeros(len(ids) + 1, dtype=np.uint64)
            np.cumsum(self.vocab.t_hash.a[ids] * ipw[cum[1:]], out=q[1:])
            h = (q[n:] - q[:-n]) * pw[cum[n:]]
        inv, first, counts = _groups(h)
        if inv is None:
            return 0
        pos = np.arange(m)
        firsts = first[inv]
        cand = np.flatnonzero(firsts != pos)
        if not cand.size:
            return 0
        same = _same_windows(ids, cand, firsts[cand], n)
        if not same.all():
            toks = self.vocab.tokens
            for i, f in zip(cand[~same].tolist(), firsts[cand[~same]].tolist()):
                a = "".join(toks[t] for t in ids[i : i + n].tolist())
                b = "".join(toks[t] for t in ids[f : f + n].tolist())
                if a != b:
                    return _dt_all_dup(self.words(), n)  # hash collision: datatrove's way
        clen = cum[n:] - cum[:-n]
        return _greedy_repeats(cand.tolist(), inv[cand].tolist(), firsts[cand].tolist(), clen[cand].tolist(), n)


def _greedy_repeats(cand: list[int], groups: list[int], firsts: list[int], clens: list[int], n: int) -> int:
    """datatrove's left-to-right scan (a repeated n-gram skips its n words), visiting only the
    positions whose n-gram occurred before: every other visited position is new by definition."""
    import bisect

    added: set[int] = set()  # groups added at a repeated position (their first occurrence was skipped)
    skip_starts: list[int] = []  # skipped ranges [s, s + n - 2]
    idx = rep = 0
    for p, g, f, cl in zip(cand, groups, firsts, clens):
        if p < idx:
            continue
        if g in added:
            hit = True
        else:
            k = bisect.bisect_right(skip_starts, f) - 1
            hit = not (k >= 0 and f <= skip_starts[k] + n - 2)
        if hit:
            rep += cl
            skip_starts.append(p + 1)
            idx = p + n
        else:
            added.add(g)
            idx = p + 1
    return rep


def _dt_top(words: list[str], n: int) -> int | None:
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return None
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def _dt_all_dup(words: list[str], n: int) -> int:
    from datatrove.pipeline.filters.gopher_repetition_filter import find_all_duplicate

    return find_all_duplicate(words, n)


_CACHE: OrderedDict[tuple[str, str], TextStats] = OrderedDict()
_CACHE_SIZE = 8


def analyze(text: str, language: str = "en") -> TextStats:
    """The shared analysis of ``text``: the stages that see the same text in a row reuse it."""
    key = (text, language)
    st = _CACHE.get(key)
    if st is None:
        st = _CACHE[key] = TextStats(text, language)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return st
