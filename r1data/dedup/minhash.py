"""MinHash signatures of word n-grams, vectorised over a batch of documents with NumPy.

    hasher = MinHasher(permutations=112, ngram=5, seed=1)
    sigs, shingles = hasher.signatures(["a first text ...", "another one ..."])
    sigs.shape      # (2, 112) uint32; row i is document i's signature
    shingles        # (2,) int64: distinct-position n-grams per document (0: no word, no signature)

How a document becomes a signature (each step is a few NumPy passes over the whole batch; there is
no Python loop over words or n-grams, which is where datasketch and datatrove spend their time):

1. **Words.** The text is lower-cased (``str.lower``, Unicode-aware) and encoded as UTF-8. A word
   is a maximal run of ASCII letters, digits and ``_``, or of non-ASCII characters other than the
   Latin-1 punctuation/space block (U+0080–U+00BF: NBSP, «», ©, ...), General Punctuation
   (U+2000–U+206F: typographic quotes, dashes, ellipsis, zero-width and special spaces) and CJK
   punctuation (U+3000–U+303F). So ``“Don't—stop!”`` gives ``don t stop``, as ``\\w+`` would.
2. **Word hashes (64-bit).** A polynomial hash of each word's bytes, computed for all words at
   once from one prefix sum over the batch's bytes (scaled by inverse powers of the base so that
   a word hashes alike wherever it stands), then mixed with MurmurHash3's 64-bit finaliser.
3. **Shingle hashes (64-bit).** Each run of ``ngram`` consecutive words of a document is combined
   by position (a polynomial in a second base) and mixed again. A document with fewer than
   ``ngram`` words (but at least one) has one shingle: all its words.
4. **Permutations.** ``permutations`` affine maps ``h_i(x) = a_i·x + b_i mod 2^32`` (``a_i`` odd,
   so each is a bijection) applied to the top 32 bits of every shingle hash; a document's
   signature is the per-map minimum. Because the shingle hashes are already uniformly mixed, these
   cheap maps behave as independent random permutations: the fraction of equal signature values
   is an unbiased estimate of the Jaccard similarity of the shingle sets, with binomial variance
   (checked in ``tests/test_minhash.py``). 32-bit arithmetic keeps NumPy on 8-lane AVX2
   instructions, twice the throughput of 64-bit multiplies.

The word and shingle hashes do not depend on ``seed``; the permutations do. Signatures of the same
text with the same (permutations, ngram, seed) are identical on every machine (NumPy integer
arithmetic wraps identically everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_VALUE = np.uint32(0xFFFFFFFF)
WORD_SPAN = 1 << 18  # bytes of text whose words are hashed together (see word_hashes)
MAX_BATCH_CHARS = 1 << 23  # MinHasher.signatures splits larger batches (bounds its temporaries)

_U64 = np.uint64
_BYTE_BASE = 0x100000001B3  # FNV-1 64-bit prime: odd, so invertible mod 2^64
_BYTE_BASE_INV = pow(_BYTE_BASE, -1, 2**64)
_NGRAM_BASE = 0x9E3779B97F4A7C15  # golden-ratio constant, odd
_FMIX1, _FMIX2 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)
_S33, _S32 = _U64(33), _U64(32)

_U8 = np.uint8


def _word_bytes(arr: np.ndarray) -> np.ndarray:
    """Which bytes can be part of a word: ASCII letters, digits, '_', and every byte >= 0x80 (the
    non-ASCII punctuation blocks are cut out separately, see _unicode_separators).

    Range tests with wrapping uint8 subtraction are SIMD passes, ~5x faster than a lookup table."""
    word = (arr - _U8(ord("a"))) < 26
    word |= (arr - _U8(ord("A"))) < 26
    word |= (arr - _U8(ord("0"))) < 10
    word |= arr == ord("_")
    word |= arr >= 0x80
    return word

# the shingle-combination multipliers for positions 0..31 (ngram <= 32)
_NGRAM_POWERS = [int(pow(_NGRAM_BASE, i, 2**64)) for i in range(32)]


class _PowerTable:
    """``base^k mod 2^64`` for k < len, grown by doubling; one per base, shared by all hashers."""

    def __init__(self, base: int):
        self.base = base
        self.table = np.ones(1, dtype=_U64)

    def get(self, n: int) -> np.ndarray:
        if len(self.table) < n:
            size = max(n, 2 * len(self.table), 1 << 16)
            t = np.full(size, self.base, dtype=_U64)
            t[0] = 1
            with np.errstate(over="ignore"):
                self.table = np.cumprod(t, dtype=_U64)  # integer products wrap mod 2^64
        return self.table[:n]


_POW = _PowerTable(_BYTE_BASE)
_IPOW = _PowerTable(_BYTE_BASE_INV)


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection that spreads every input bit), in place."""
    x ^= x >> _S33
    x *= _FMIX1
    x ^= x >> _S33
    x *= _FMIX2
    x ^= x >> _S33
    return x


def _unicode_separators(arr: np.ndarray, word: np.ndarray) -> None:
    """Clear ``word`` on the UTF-8 bytes of U+0080–U+00BF, U+2000–U+206F and U+3000–U+303F."""
    n = len(arr)  # the caller pads arr with 3 spaces, so i+2 is always in range for a lead byte
    lead = np.flatnonzero(arr[: n - 2] == 0xC2)
    if len(lead):
        lead = lead[(arr[lead + 1] >= 0x80) & (arr[lead + 1] <= 0xBF)]
        word[lead] = False
        word[lead + 1] = False
    for first, seconds in ((0xE2, (0x80, 0x81)), (0xE3, (0x80,))):
        lead = np.flatnonzero(arr[: n - 2] == first)
        if len(lead):
            nxt = arr[lead + 1]
            lead = lead[np.isin(nxt, seconds)]
            word[lead] = False
            word[lead + 1] = False
            word[lead + 2] = False


@dataclass(frozen=True)
class Words:
    """The words of a batch: 64-bit ``hashes`` in text order, and ``doc_starts[i]:doc_starts[i+1]``
    the slice of document ``i``."""

    hashes: np.ndarray
    doc_starts: np.ndarray


def _hash_words(arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, out: np.ndarray) -> None:
    """Polynomial hash of each word ``arr[s:e]``, position-independent: ``(C[e] - C[s]) * base^-s``
    from one prefix sum ``C`` over the span's bytes (weighted by powers of the base)."""
    lo, hi = int(starts[0]), int(ends[-1])
    n = hi - lo
    with np.errstate(over="ignore"):
        weighted = arr[lo:hi].astype(_U64)
        weighted *= _POW.get(n)
        prefix = np.empty(n + 1, dtype=_U64)
        prefix[0] = 0
        np.cumsum(weighted, out=prefix[1:])
        s, e = starts - lo, ends - lo
        np.subtract(prefix[e], prefix[s], out=out)
        out *= _IPOW.get(n)[s]
        out += (e - s).astype(_U64)  # the length too: a cheap guard against polynomial collisions
        fmix64(out)


def word_hashes(texts: Sequence[str]) -> Words:
    """Tokenise and hash the words of every text of a batch (see the module docstring)."""
    encoded = [t.lower().encode("utf-8", "surrogatepass") for t in texts]
    lengths = np.fromiter((len(b) + 1 for b in encoded), dtype=np.int64, count=len(encoded))
    buf = b" ".join(encoded) + b"    "  # one separator between documents, 3 bytes of padding
    arr = np.frombuffer(buf, dtype=np.uint8)
    word = _word_bytes(arr)
    _unicode_separators(arr, word)
    # word runs: a start is a word byte after a non-word byte, an end a non-word byte after a word byte
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    if word[0]:
        edges = np.concatenate(([0], edges))
    starts, ends = edges[0::2], edges[1::2]  # the padding guarantees every run ends
    h = np.empty(len(starts), dtype=_U64)
    # hash the words a span of ~WORD_SPAN bytes at a time: the prefix sums and power tables stay
    # cache-sized and bounded, however long one document is
    i = 0
    while i < len(starts):
        j = max(int(np.searchsorted(starts, starts[i] + WORD_SPAN, side="left")), i + 1)
        _hash_words(arr, starts[i:j], ends[i:j], out=h[i:j])
        i = j
    doc_bounds = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=doc_bounds[1:])
    doc_starts = np.searchsorted(starts, doc_bounds, side="left")
    return Words(hashes=h, doc_starts=doc_starts)


def shingle_hashes(words: Words, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every ``ngram`` consecutive words of each document of a batch.

    Returns ``(hashes, doc_starts)`` like ``word_hashes``: document ``i``'s shingles are
    ``hashes[doc_starts[i]:doc_starts[i+1]]``, in text order (possibly repeated)."""
    if not 1 <= ngram <= len(_NGRAM_POWERS):
        raise ValueError(f"ngram must be between 1 and {len(_NGRAM_POWERS)}, got {ngram}")
    h, ds = words.hashes, words.doc_starts
    counts = np.diff(ds)
    m = max(len(h) - ngram + 1, 0)
    with np.errstate(over="ignore"):
        g = h[:m].copy()
        for i in range(1, ngram):
            g += h[i : i + m] * _U64(_NGRAM_POWERS[i])
        # a shingle starting at word j is valid when its last word is in j's document
        doc_end = np.repeat(ds[1:], counts)[:m]
        out = g[np.arange(m) + ngram <= doc_end]
        per_doc = np.maximum(counts - ngram + 1, 0)
        short = np.flatnonzero((counts > 0) & (counts < ngram))
        if len(short):  # documents with fewer words than ngram: one shingle of all their words
            extra = np.zeros(len(short), dtype=_U64)
            for k, d in enumerate(short):
                for i in range(counts[d]):
                    extra[k] += h[ds[d] + i] * _U64(_NGRAM_POWERS[i])
            before = np.concatenate(([0], np.cumsum(per_doc)))[short]
            out = np.insert(out, before, extra)
            per_doc[short] = 1
        fmix64(out)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(per_doc, out=starts[1:])
    return out, starts


@dataclass(frozen=True)
class MinHasher:
    """Signatures of ``permutations`` uint32 values over word ``ngram``-shingles; ``seed`` picks the permutations."""

    permutations: int = 112
    ngram: int = 5
    seed: int = 1
    #: shingles per NumPy block (working set: permutations x block x 4 bytes)
    block: int = 8192
    _a: np.ndarray = field(init=False, repr=False, compare=False)
    _b: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.permutations < 1:
            raise ValueError(f"permutations must be >= 1, got {self.permutations}")
        rng = np.random.Generator(np.random.PCG64(self.seed))
        a = rng.integers(0, 2**32, size=self.permutations, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
        b = rng.integers(0, 2**32, size=self.permutations, dtype=np.uint64).astype(np.uint32)
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_b", b)

    def signatures(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(signatures, shingle_counts)`` for a batch of texts; see the module docstring.

        A text without any word gets the all-``0xFFFFFFFF`` signature and a shingle count of 0;
        callers should not compare it with anything."""
        n = len(texts)
        sig = np.full((n, self.permutations), MAX_VALUE, dtype=np.uint32)
        if n == 0:
            return sig, np.zeros(0, dtype=np.int64)
        counts = np.zeros(n, dtype=np.int64)
        lo = 0
        while lo < n:  # sub-batches of at most MAX_BATCH_CHARS characters (or one longer text)
            hi, chars = lo + 1, len(texts[lo])
            while hi < n and chars + len(texts[hi]) <= MAX_BATCH_CHARS:
                chars += len(texts[hi])
                hi += 1
            sh, starts = shingle_hashes(word_hashes(texts[lo:hi]), self.ngram)
            x = (sh >> _S32).astype(np.uint32)
            self._min_into(x, starts, sig[lo:hi])
            counts[lo:hi] = np.diff(starts)
            lo = hi
        return sig, counts

    def _min_into(self, x: np.ndarray, starts: np.ndarray, sig: np.ndarray) -> None:
        """``sig[d] = min over document d's shingles of a*x+b``, one block of shingles at a time.

        The block is laid out permutations x shingles, so every NumPy inner loop runs over a long
        contiguous row (one permutation applied to many shingles) and the per-document minimum is
        a SIMD reduction along that row."""
        total = len(x)
        if total == 0:
            return
        nonempty = starts[1:] > starts[:-1]
        a, b = self._a[:, None], self._b[:, None]
        buf = np.empty((self.permutations, min(self.block, total)), dtype=np.uint32)
        for lo in range(0, total, self.block):
            hi = min(lo + self.block, total)
            v = buf[:, : hi - lo]
            np.multiply(a, x[lo:hi], out=v)
            v += b
            # the documents with shingles in [lo, hi): the one holding lo, then those starting before hi
            d0 = np.searchsorted(starts, lo, side="right") - 1
            d1 = np.searchsorted(starts, hi, side="left")
            docs = np.arange(d0, max(d1, d0 + 1))
            docs = docs[nonempty[docs]]
            if len(docs) == 1:
                np.minimum(sig[docs[0]], v.min(axis=1), out=sig[docs[0]])
            else:
                mins = np.minimum.reduceat(v, np.maximum(starts[docs], lo) - lo, axis=1).T
                sig[docs] = np.minimum(sig[docs], mins)


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fraction of equal values between signatures (rows of ``a`` and ``b``, pairwise)."""
    return (a == b).mean(axis=-1)
