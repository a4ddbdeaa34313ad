"""Locality-sensitive hashing over MinHash signatures: bands -> candidate pairs -> verified pairs -> clusters.

    params = LshParams.for_threshold(0.8, permutations=112)      # 14 bands x 8 rows (with verify)
    removed, kept = near_duplicates(signatures, params)            # positions in input order

Every function takes document *positions* (0..n-1 in input order within a window) and returns
arrays of positions, so the same code serves the in-memory (single) form and the multi-phase form,
whose bucket tasks each handle a group of bands and write their pairs to files.

Definitions (what ``near_duplicates`` computes, exactly):

- a document's band ``i`` is its signature values ``[i*rows, (i+1)*rows)``; two documents are a
  *candidate pair* when some band of theirs is equal (compared through a 64-bit hash of the band);
- inside one band bucket (documents sharing a band value), every pair is a candidate. A bucket of
  more than ``ALL_PAIRS_MAX`` documents is handled without enumerating all its pairs but with the
  same outcome: copies with identical signatures are chained, and only one of them is paired with
  the other distinct signatures. Only a bucket with more than ``DISTINCT_MAX`` *distinct*
  signatures is approximated, by the pairs (first, each other) and (each, next) of its distinct
  signatures in input order (which can leave apart two of its documents that all pairs would
  have joined);
- with ``verify``, a candidate pair is kept when the fraction of equal values over the *whole*
  signatures (an unbiased estimate of the pair's Jaccard similarity) is at least ``threshold``;
- clusters are the connected components of the kept pairs; a cluster's first document (lowest
  position) is kept and the others are its near duplicates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ALL_PAIRS_MAX = 64  # buckets up to this size contribute all their pairs (at most 2,016)
DISTINCT_MAX = 512  # a larger bucket: all pairs of its distinct signatures, up to this many
_U64 = np.uint64


@lru_cache(maxsize=None)
def _gauss_legendre(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _integrate(lo: float, hi: float, f) -> np.ndarray:
    """Gauss-Legendre quadrature of ``f(s)`` (vectorised: ``f`` maps nodes (m,) to (..., m)) over [lo, hi]."""
    x, w = _gauss_legendre()
    s = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    return f(s) @ (0.5 * (hi - lo) * w)


def verification_probability(jaccard, threshold: float, permutations: int) -> np.ndarray:
    """Probability that a pair of this Jaccard similarity passes verification: that at least
    ``ceil(threshold * permutations)`` of its signature values agree, each agreeing with
    probability ``jaccard`` (a binomial tail)."""
    s = np.clip(np.asarray(jaccard, dtype=float), 1e-12, 1 - 1e-12)[..., None]
    k = np.arange(int(np.ceil(threshold * permutations - 1e-9)), permutations + 1)
    log_choose = np.array([math.lgamma(permutations + 1) - math.lgamma(i + 1) - math.lgamma(permutations - i + 1) for i in k])
    return np.exp(log_choose + k * np.log(s) + (permutations - k) * np.log1p(-s)).sum(axis=-1)


def lsh_error_rates(threshold: float, bands, rows, permutations: int | None = None) -> tuple:
    """``(false positive area, false negative area)`` of the detection curve at ``threshold``.

    The detection curve is the LSH S-curve ``P(s) = 1 - (1 - s^rows)^bands`` (the probability that
    a pair of Jaccard similarity ``s`` becomes a candidate), times the probability that it passes
    verification when ``permutations`` is given. The false-positive area integrates it over
    similarities below the threshold, the false-negative area integrates ``1 - P`` above it (as
    datasketch's ``_optimal_param`` does for the S-curve alone). ``bands`` and ``rows`` may be
    arrays of the same shape."""
    b = np.asarray(bands, dtype=float)[..., None]
    r = np.asarray(rows, dtype=float)[..., None]

    def detect(s):
        p = 1.0 - (1.0 - s**r) ** b
        return p * verification_probability(s, threshold, permutations) if permutations else p

    fp = _integrate(0.0, threshold, detect)
    fn = _integrate(threshold, 1.0, lambda s: 1.0 - detect(s))
    return fp, fn


def choose_bands(threshold: float, permutations: int, fp_weight: float = 0.5, fn_weight: float = 0.5, verify: bool = False) -> tuple[int, int]:
    """The ``(bands, rows)`` with ``bands * rows <= permutations`` that minimise the weighted sum of
    the false-positive and false-negative areas at ``threshold`` (the first minimum, bands then
    rows ascending).

    Without ``verify`` this is datasketch's ``MinHashLSH`` rule (9 x 12 for 0.8 and 112). With
    ``verify`` the areas are those of the whole decision, LSH then verification: verification
    removes most of the LSH false positives, so the balance moves to more bands (14 x 8 for 0.8
    and 112, datatrove's default banding)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
    cands = np.array([(b, r) for b in range(1, permutations + 1) for r in range(1, permutations // b + 1)])
    fp, fn = lsh_error_rates(threshold, cands[:, 0], cands[:, 1], permutations if verify else None)
    err = fp * fp_weight + fn * fn_weight
    b, r = cands[int(np.argmin(err))]  # argmin returns the first minimum
    return int(b), int(r)


@dataclass(frozen=True)
class LshParams:
    """How signatures are cut into bands and which candidate pairs survive."""

    permutations: int
    bands: int
    rows: int
    threshold: float = 0.8
    verify: bool = True

    def __post_init__(self):
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.permutations:
            raise ValueError(f"bands x rows = {self.bands} x {self.rows} must be >= 1 and fit in {self.permutations} permutations")

    @classmethod
    def for_threshold(cls, threshold: float, permutations: int, verify: bool = True, weights: tuple[float, float] = (0.5, 0.5)) -> "LshParams":
        b, r = choose_bands(threshold, permutations, *weights, verify=verify)
        return cls(permutations=permutations, bands=b, rows=r, threshold=threshold, verify=verify)

    def candidate_probability(self, jaccard: float | np.ndarray) -> float | np.ndarray:
        """Probability that a pair of this Jaccard similarity shares at least one band."""
        return 1.0 - (1.0 - np.asarray(jaccard, dtype=float) ** self.rows) ** self.bands

    def detection_probability(self, jaccard: float | np.ndarray) -> float | np.ndarray:
        """Probability that a pair of this Jaccard similarity is reported (candidate, then verified)."""
        p = self.candidate_probability(jaccard)
        return p * verification_probability(jaccard, self.threshold, self.permutations) if self.verify else p


def _band_multipliers(rows: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(0x5EED_BA4D))
    return rng.integers(0, 2**63, size=rows, dtype=np.uint64) * _U64(2) + _U64(1)


def band_keys(signatures: np.ndarray, params: LshParams, bands: range | None = None) -> np.ndarray:
    """64-bit keys of the requested bands: shape ``(n_docs, len(bands))``.

    A key is a position-weighted sum of the band's values (odd 64-bit multipliers) passed through
    MurmurHash3's finaliser; equal bands give equal keys, and different bands collide with
    probability ~2^-64 (a collision only adds a candidate, which verification then judges)."""
    from r1data.dedup.minhash import fmix64

    bands = range(params.bands) if bands is None else bands
    mult = _band_multipliers(params.rows)
    out = np.empty((signatures.shape[0], len(bands)), dtype=_U64)
    with np.errstate(over="ignore"):
        for j, band in enumerate(bands):
            block = signatures[:, band * params.rows : (band + 1) * params.rows].astype(_U64)
            k = (block * mult).sum(axis=1, dtype=_U64)
            k += _U64(band)  # the same values in another band are another key
            out[:, j] = fmix64(k)
    return out


def signature_hashes(signatures: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each whole signature: equal signatures, equal hashes (to collapse copies)."""
    from r1data.dedup.minhash import fmix64

    mult = _band_multipliers(signatures.shape[1])
    with np.errstate(over="ignore"):
        return fmix64((signatures.astype(_U64) * mult).sum(axis=1, dtype=_U64))


def _all_pairs(members: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(len(members), 1)
    return np.stack((members[i], members[j]), axis=1)


def _large_bucket_pairs(members: np.ndarray, sig_hashes: np.ndarray) -> list[np.ndarray]:
    """Pairs of a bucket larger than ``ALL_PAIRS_MAX``: the same components as all its pairs, cheaper.

    Documents with identical signatures have the same estimated similarity to everyone, so each
    set of copies is chained (copy, next copy) and only its first member (its representative)
    is paired with the other representatives. Only when more than ``DISTINCT_MAX`` distinct
    signatures share the bucket do the representatives fall back to (first, each) and (each, next)."""
    order = np.argsort(sig_hashes, kind="stable")  # stable: copies stay in position order
    h, m = sig_hashes[order], members[order]
    same = h[1:] == h[:-1]
    out = [np.stack((m[:-1][same], m[1:][same]), axis=1)]
    reps = np.sort(m[np.concatenate(([True], ~same))])
    if len(reps) <= DISTINCT_MAX:
        out.append(_all_pairs(reps))
    else:
        out.append(np.stack((np.full(len(reps) - 1, reps[0]), reps[1:]), axis=1))
        out.append(np.stack((reps[1:-1], reps[2:]), axis=1))
    return out


def bucket_pairs(keys: np.ndarray, positions: np.ndarray, sig_hashes: np.ndarray | None = None) -> np.ndarray:
    """Candidate pairs of one band: ``keys[i]`` is the band key of the document at ``positions[i]``.

    ``positions`` must be ascending; ``sig_hashes`` (``signature_hashes`` of the same documents)
    lets a large bucket collapse identical signatures. Returns an ``(m, 2)`` int64 array of
    ``(earlier, later)`` position pairs (see the module docstring)."""
    n = len(keys)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    order = np.argsort(keys, kind="stable")  # stable: equal keys stay in ascending position
    k, p = keys[order], positions[order]
    brk = np.flatnonzero(k[1:] != k[:-1]) + 1
    starts = np.concatenate(([0], brk))
    lengths = np.diff(np.concatenate((starts, [n])))
    out = []
    for length in np.unique(lengths[(lengths >= 2) & (lengths <= ALL_PAIRS_MAX)]):
        s = starts[lengths == length]  # every bucket of this size at once
        i, j = np.triu_indices(int(length), 1)
        out.append(np.stack((p[s[:, None] + i].ravel(), p[s[:, None] + j].ravel()), axis=1))
    big = np.flatnonzero(lengths > ALL_PAIRS_MAX)
    if len(big):
        hashes = sig_hashes[order] if sig_hashes is not None else np.arange(n, dtype=_U64)
        for s, length in zip(starts[big], lengths[big]):
            out.extend(_large_bucket_pairs(p[s : s + length], hashes[s : s + length]))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    return np.concatenate(out).astype(np.int64, copy=False)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Sorted, deduplicated ``(a, b)`` pairs (positions below 2^31)."""
    if len(pairs) == 0:
        return pairs.reshape(0, 2).astype(np.int64)
    code = np.unique((pairs[:, 0].astype(np.int64) << 32) | pairs[:, 1].astype(np.int64))
    return np.stack((code >> 32, code & 0xFFFFFFFF), axis=1)


def candidate_pairs(signatures: np.ndarray, positions: np.ndarray, params: LshParams, bands: range | None = None) -> np.ndarray:
    """Deduplicated candidate pairs of the given bands (all bands by default)."""
    bands = range(params.bands) if bands is None else bands
    keys = band_keys(signatures, params, bands)
    hashes = signature_hashes(signatures)
    parts = [bucket_pairs(keys[:, j], positions, hashes) for j in range(len(bands))]
    return unique_pairs(np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64))


def matching_fraction(sig_a: np.ndarray, sig_b: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Row-wise fraction of equal values (the MinHash estimate of Jaccard similarity)."""
    out = np.empty(len(sig_a), dtype=np.float64)
    for lo in range(0, len(sig_a), chunk):
        out[lo : lo + chunk] = (sig_a[lo : lo + chunk] == sig_b[lo : lo + chunk]).mean(axis=1)
    return out


def verify_pairs(pairs: np.ndarray, sig_of, params: LshParams) -> np.ndarray:
    """The pairs whose estimated Jaccard similarity is >= ``params.threshold``.

    ``sig_of(positions)`` returns the signatures of the given positions (a row per position)."""
    if not params.verify or len(pairs) == 0:
        return pairs
    need = params.threshold * params.permutations - 1e-9
    keep = np.empty(len(pairs), dtype=bool)
    chunk = 1 << 16
    for lo in range(0, len(pairs), chunk):
        part = pairs[lo : lo + chunk]
        matches = (sig_of(part[:, 0]) == sig_of(part[:, 1])).sum(axis=1)
        keep[lo : lo + chunk] = matches >= need
    return pairs[keep]


def cluster_firsts(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of ``pairs``: ``(removed, kept)`` positions, where ``kept[i]`` is the
    first (lowest) position of ``removed[i]``'s component. Both sorted by ``removed``."""
    if len(pairs) == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nodes, idx = np.unique(pairs.ravel(), return_inverse=True)  # only documents in some pair
    idx = idx.reshape(-1, 2)
    n = len(nodes)
    graph = coo_matrix((np.ones(len(idx), dtype=np.int8), (idx[:, 0], idx[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # nodes are ascending, so the first node of each label is its component's lowest position
    _, first = np.unique(labels, return_index=True)
    kept_of = nodes[first[labels]]
    removed = kept_of != nodes
    return nodes[removed], kept_of[removed]


def near_duplicates(signatures: np.ndarray, params: LshParams, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Near duplicates of one window held in memory; row ``i`` of ``signatures`` is position ``i``.

    ``valid`` (bool per row) excludes documents without a signature (no word). Returns
    ``(removed, kept)`` as ``cluster_firsts`` does."""
    positions = np.arange(len(signatures), dtype=np.int64)
    if valid is not None:
        positions = positions[valid]
        signatures_v = signatures[valid]
    else:
        signatures_v = signatures
    pairs = candidate_pairs(signatures_v, positions, params)
    pairs = verify_pairs(pairs, lambda pos: signatures[pos], params)
    return cluster_firsts(pairs)
