"""The MinHash/LSH library (r1data.dedup): signatures against a plain-Python reference, estimator
quality, parameter choice against datasketch, bucket pairs, clusters, and dedup invariants."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1data.dedup.lsh import (
    ALL_PAIRS_MAX,
    LshParams,
    bucket_pairs,
    choose_bands,
    cluster_firsts,
    near_duplicates,
    signature_hashes,
    unique_pairs,
)
from r1data.dedup.minhash import _BYTE_BASE, _NGRAM_POWERS, MinHasher, word_hashes

M64 = 2**64 - 1


# -- a plain-Python reference of the documented algorithm, one word and one shingle at a time ----


def _is_word_char(c: str) -> bool:
    o = ord(c)
    if o < 0x80:
        return c.isalnum() or c == "_"
    return not (0x80 <= o <= 0xBF or 0x2000 <= o <= 0x206F or 0x3000 <= o <= 0x303F)


def ref_words(text: str) -> list[str]:
    words, cur = [], []
    for c in text.lower():
        if _is_word_char(c):
            cur.append(c)
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    return words


def ref_fmix(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def ref_word_hash(word: str) -> int:
    data = word.encode("utf-8", "surrogatepass")
    h = sum(b * pow(_BYTE_BASE, i, 2**64) for i, b in enumerate(data)) + len(data)
    return ref_fmix(h & M64)


def ref_signature(text: str, hasher: MinHasher) -> list[int]:
    hs = [ref_word_hash(w) for w in ref_words(text)]
    n = hasher.ngram
    grams = [hs[i : i + n] for i in range(len(hs) - n + 1)] if len(hs) >= n else ([hs] if hs else [])
    shingles = [ref_fmix(sum(h * _NGRAM_POWERS[i] for i, h in enumerate(g)) & M64) >> 32 for g in grams]
    a, b = hasher._a.tolist(), hasher._b.tolist()
    if not shingles:
        return [0xFFFFFFFF] * hasher.permutations
    return [min((ai * x + bi) & 0xFFFFFFFF for x in shingles) for ai, bi in zip(a, b)]


# ASCII words, Latin-1/CJK letters, typographic punctuation, NBSP, digits and line breaks
_ALPHABET = "ab cd,ef. 09_\n\t-'éÉß東京。“”—…\u00a0\u2009İ!"
texts = st.text(alphabet=_ALPHABET, max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(texts, min_size=1, max_size=6), st.integers(1, 6))
def test_signatures_match_the_plain_python_reference(batch, ngram):
    hasher = MinHasher(permutations=16, ngram=ngram, seed=3)
    sigs, counts = hasher.signatures(batch)
    for text, sig, count in zip(batch, sigs, counts):
        assert sig.tolist() == ref_signature(text, hasher), text
        words = len(ref_words(text))
        assert count == (max(words - ngram + 1, 1) if words else 0)


def test_word_rule_on_typographic_text():
    w = word_hashes(["“Don't—stop!” said\u00a0Bob… 3.14 café 東京は晴れ。明日も"])
    assert ref_words("“Don't—stop!” said\u00a0Bob… 3.14 café 東京は晴れ。明日も") == [
        "don", "t", "stop", "said", "bob", "3", "14", "café", "東京は晴れ", "明日も",
    ]
    assert w.hashes.tolist() == [ref_word_hash(x) for x in ["don", "t", "stop", "said", "bob", "3", "14", "café", "東京は晴れ", "明日も"]]


@settings(max_examples=30, deadline=None)
@given(st.lists(texts, min_size=1, max_size=12), st.integers(1, 5), st.integers(0, 2**32))
def test_signatures_do_not_depend_on_batching(batch, split, seed):
    hasher = MinHasher(permutations=24, seed=seed, block=7)  # tiny blocks: documents straddle them
    whole, _ = hasher.signatures(batch)
    parts = [hasher.signatures(batch[i : i + split])[0] for i in range(0, len(batch), split)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_same_seed_same_signature_other_seed_other_signature():
    text = "the quick brown fox jumps over the lazy dog " * 5
    a = MinHasher(seed=7).signatures([text])[0]
    assert np.array_equal(a, MinHasher(seed=7).signatures([text])[0])
    assert not np.array_equal(a, MinHasher(seed=8).signatures([text])[0])


def test_text_without_words_has_no_signature():
    sigs, counts = MinHasher(permutations=8).signatures(["", "  ...  !!! — “”", "word"])
    assert counts.tolist() == [0, 0, 1]
    assert (sigs[:2] == 0xFFFFFFFF).all() and not (sigs[2] == 0xFFFFFFFF).all()


def test_estimate_is_unbiased_with_binomial_spread():
    # pairs of documents of 400 distinct words sharing c of them: exact Jaccard of 1-gram sets
    rng = random.Random(0)
    hasher = MinHasher(permutations=112, ngram=1, seed=5)
    for target in (0.5, 0.8):
        c = round(800 * target / (1 + target))
        j = c / (800 - c)
        est = []
        for t in range(150):
            words = [f"w{t}x{i}" for i in range(800 - c)]
            rng.shuffle(words)
            a, b = words[:400], words[:c] + words[400 : 800 - c]
            sigs, _ = hasher.signatures([" ".join(a), " ".join(b)])
            est.append((sigs[0] == sigs[1]).mean())
        est = np.array(est)
        sd = np.sqrt(j * (1 - j) / 112)
        assert abs(est.mean() - j) < 3 * sd / np.sqrt(len(est)) + 0.005, (target, est.mean(), j)
        assert 0.75 * sd < est.std() < 1.3 * sd, (target, est.std(), sd)


# -- LSH parameters --------------------------------------------------------------------------


@pytest.mark.parametrize("threshold,permutations", [(0.8, 112), (0.5, 64), (0.9, 128), (0.7, 112)])
def test_band_choice_matches_datasketch(threshold, permutations):
    from datasketch.lsh import _optimal_param

    assert choose_bands(threshold, permutations) == _optimal_param(threshold, permutations, 0.5, 0.5)


def test_band_choice_defaults_and_weights():
    assert choose_bands(0.8, 112) == (9, 12)  # the S-curve alone: datasketch's choice
    # the whole decision (LSH, then verification) balanced: more bands, datatrove's banding
    assert choose_bands(0.8, 112, verify=True) == (14, 8)
    assert LshParams.for_threshold(0.8, 112) == LshParams(112, 14, 8, 0.8, True)
    assert LshParams.for_threshold(0.8, 112, verify=False) == LshParams(112, 9, 12, 0.8, False)
    b, r = choose_bands(0.8, 112, fp_weight=0.1, fn_weight=0.9)  # recall-heavy: lower S-curve
    assert LshParams(112, b, r).candidate_probability(0.8) > LshParams(112, 9, 12).candidate_probability(0.8)
    with pytest.raises(ValueError, match="fit in"):
        LshParams(permutations=112, bands=10, rows=12)


def test_verification_probability_is_the_binomial_tail():
    from scipy.stats import binom

    from r1data.dedup.lsh import verification_probability

    s = np.array([0.5, 0.75, 0.8, 0.85, 0.99])
    assert np.allclose(verification_probability(s, 0.8, 112), binom.sf(89, 112, s))  # >= 90 of 112 agree


# -- buckets and clusters --------------------------------------------------------------------


def _all_bucket_pairs(keys, positions):
    out = set()
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            if keys[i] == keys[j]:
                out.add((positions[i], positions[j]))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=0, max_size=40))
def test_small_buckets_give_all_their_pairs(key_list):
    keys = np.array(key_list, dtype=np.uint64)
    pos = np.arange(len(keys), dtype=np.int64) * 3
    pairs = {tuple(p) for p in bucket_pairs(keys, pos).tolist()}
    assert pairs == _all_bucket_pairs(key_list, pos.tolist())


def test_large_bucket_collapses_identical_signatures():
    n = ALL_PAIRS_MAX + 40
    keys = np.zeros(n, dtype=np.uint64)
    pos = np.arange(n, dtype=np.int64)
    hashes = (np.arange(n) % 5).astype(np.uint64)  # 5 distinct signatures, each copied
    pairs = bucket_pairs(keys, pos, hashes)
    assert len(pairs) < n + 10  # chains of copies + 10 pairs of representatives, not n^2/2
    removed, kept = cluster_firsts(unique_pairs(pairs))
    assert set(kept.tolist()) == {0}  # one component, kept at the first position
    assert len(removed) == n - 1


def test_clusters_keep_the_first_document_of_each_component():
    pairs = np.array([[5, 9], [2, 5], [7, 8], [11, 12], [8, 12]], dtype=np.int64)
    removed, kept = cluster_firsts(pairs)
    assert dict(zip(removed.tolist(), kept.tolist())) == {5: 2, 9: 2, 8: 7, 11: 7, 12: 7}


# -- dedup invariants on generated corpora ---------------------------------------------------


def _corpus(rng: random.Random, n_docs: int, n_bases: int) -> list[str]:
    """Documents derived from a few base texts by dropping or changing a few words, plus fresh ones."""
    vocab = [f"v{i}" for i in range(3000)]
    bases = [[rng.choice(vocab) for _ in range(rng.randint(40, 120))] for _ in range(n_bases)]
    docs = []
    for _ in range(n_docs):
        if rng.random() < 0.7:
            words = list(rng.choice(bases))
            for _ in range(rng.randint(0, 4)):
                k = rng.randrange(len(words))
                if rng.random() < 0.5:
                    words[k] = rng.choice(vocab)
                else:
                    del words[k]
        else:
            words = [rng.choice(vocab) for _ in range(rng.randint(0, 60))]
        docs.append(" ".join(words))
    return docs


corpora = st.builds(_corpus, st.randoms(use_true_random=False), st.integers(5, 60), st.integers(1, 5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora, st.sampled_from([0.5, 0.7, 0.8, 0.9]), st.integers(0, 1000))
def test_dedup_is_deterministic_and_idempotent(docs, threshold, seed):
    hasher = MinHasher(permutations=64, seed=seed)
    params = LshParams.for_threshold(threshold, 64)
    sigs, counts = hasher.signatures(docs)
    removed, kept = near_duplicates(sigs, params, counts > 0)
    again = near_duplicates(hasher.signatures(docs)[0], params, counts > 0)
    assert np.array_equal(removed, again[0]) and np.array_equal(kept, again[1])
    assert np.all(kept < removed)  # a duplicate always points to an earlier, kept document
    assert not set(kept.tolist()) & set(removed.tolist())
    survivors = np.setdiff1d(np.arange(len(docs)), removed)
    r2, _ = near_duplicates(sigs[survivors], params, (counts > 0)[survivors])
    assert len(r2) == 0  # re-running on the output removes nothing more


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora, st.integers(1, 9))
def test_band_groups_do_not_change_the_decision(docs, groups):
    from r1data.dedup.lsh import candidate_pairs
    from r1data.dedup.windowed import band_groups

    sigs, counts = MinHasher(permutations=112).signatures(docs)
    params = LshParams.for_threshold(0.8, 112)
    pos = np.flatnonzero(counts > 0)
    whole = candidate_pairs(sigs[pos], pos, params)
    split = unique_pairs(np.concatenate([candidate_pairs(sigs[pos], pos, params, g) for g in band_groups(params.bands, groups)]))
    assert np.array_equal(whole, split)


def test_signature_hash_is_equal_for_equal_signatures_only():
    sigs = np.array([[1, 2, 3], [1, 2, 3], [3, 2, 1]], dtype=np.uint32)
    h = signature_hashes(sigs)
    assert h[0] == h[1] != h[2]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(texts, min_size=1, max_size=6))
def test_long_texts_are_hashed_in_bounded_spans(monkeypatch, batch):
    """Tiny word spans and sub-batches (as a 100 MB page would meet) give the same signatures."""
    import r1data.dedup.minhash as mh

    hasher = MinHasher(permutations=8, ngram=2, seed=11)
    expected = [ref_signature(t, hasher) for t in batch]
    monkeypatch.setattr(mh, "WORD_SPAN", 5)
    monkeypatch.setattr(mh, "MAX_BATCH_CHARS", 30)
    assert hasher.signatures(batch)[0].tolist() == expected
