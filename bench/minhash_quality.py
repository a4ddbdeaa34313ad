"""MinHash dedup quality against exact Jaccard similarity, on a generated corpus with known similarities.

    python bench/minhash_quality.py                      # 600 families, threshold 0.8
    python bench/minhash_quality.py --families 2000 --threshold 0.7

The corpus: ``--families`` base documents (150-600 words drawn from the shared books' word
frequencies), each with 1-8 variants made by replacing random words, deleting a passage, or
appending new text, so that the exact Jaccard similarity of the word 5-gram sets of two members of
a family spreads over 0.3-1.0. The ground truth is computed exactly (Python sets of 5-grams) for
every pair inside a family; any pair that r1data reports across families is checked exactly too.

Reported, for r1data's defaults and for variations of them:

- *pairs*: precision and recall of the reported (verified) pairs against "exact Jaccard >=
  threshold", and the recall of the LSH candidates before verification;
- *documents*: of the documents removed, the fraction that do have an earlier document with exact
  Jaccard >= threshold (precision); of the documents that have one, the fraction removed (recall);
- the detection rate per Jaccard bin against the LSH S-curve ``1 - (1 - J^rows)^bands``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from _common import word_distribution  # noqa: E402


def generate(families: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Documents and their family number (documents of a family are contiguous, base first)."""
    vocab, p = word_distribution()
    rng = np.random.default_rng(seed)
    docs, fam = [], []

    def fresh(n: int) -> list[str]:
        return list(vocab[rng.choice(len(vocab), size=n, p=p)])

    for f in range(families):
        base = fresh(int(rng.integers(150, 600)))
        members = [base]
        for _ in range(int(rng.integers(1, 9))):
            words = list(members[int(rng.integers(0, len(members)))])
            kind = rng.random()
            if kind < 0.5:  # replace scattered words
                for _ in range(int(rng.integers(1, max(2, len(words) // 12)))):
                    words[int(rng.integers(0, len(words)))] = str(vocab[int(rng.integers(0, len(vocab)))])
            elif kind < 0.8:  # drop a passage
                cut = int(rng.integers(1, max(2, len(words) // 5)))
                at = int(rng.integers(0, len(words) - cut))
                del words[at : at + cut]
            else:  # append new text (other boilerplate)
                words += fresh(int(rng.integers(5, max(6, len(words) // 4))))
            members.append(words)
        order = rng.permutation(len(members))  # the base is not always first
        for i in order:
            docs.append(" ".join(members[i]))
            fam.append(f)
    return docs, fam


def shingle_set(text: str, n: int) -> set:
    w = text.split()
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)} if len(w) >= n else {tuple(w)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def evaluate(docs, fam, sets, sigs, valid, params, label: str, threshold: float) -> dict:
    from r1data.dedup.lsh import candidate_pairs, cluster_firsts, verify_pairs

    pos = np.flatnonzero(valid)
    t0 = time.perf_counter()
    cands = candidate_pairs(sigs[pos], pos, params)
    verified = verify_pairs(cands, lambda x: sigs[x], params)
    removed, kept = cluster_firsts(verified)
    seconds = time.perf_counter() - t0

    truth = set()
    jac = {}
    starts = np.flatnonzero(np.r_[True, np.diff(fam) != 0])
    ends = np.r_[starts[1:], len(fam)]
    for s, e in zip(starts, ends):
        for i in range(s, e):
            for j in range(i + 1, e):
                jac[(i, j)] = jaccard(sets[i], sets[j])
                if jac[(i, j)] >= threshold:
                    truth.add((i, j))

    def j_of(a, b):
        if (a, b) not in jac:
            jac[(a, b)] = jaccard(sets[a], sets[b])
        return jac[(a, b)]

    got = {tuple(x) for x in verified.tolist()}
    cand = {tuple(x) for x in cands.tolist()}
    tp = sum(j_of(a, b) >= threshold for a, b in got)
    # documents: has an earlier document of exact Jaccard >= threshold?
    has_earlier = {b for a, b in truth}
    rem = set(removed.tolist())
    rem_ok = sum(any(j_of(a, r) >= threshold for a in range(r) if fam[a] == fam[r]) for r in rem)
    bins = np.arange(0.3, 1.0001, 0.1)
    per_bin = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        pairs = [k for k, v in jac.items() if lo <= v < hi + (1e-9 if hi >= 1 else 0)]
        if pairs:
            mid = (lo + hi) / 2
            per_bin.append(
                {
                    "jaccard": f"{lo:.1f}-{hi:.1f}",
                    "pairs": len(pairs),
                    "candidate": sum(k in cand for k in pairs) / len(pairs),
                    "reported": sum(k in got for k in pairs) / len(pairs),
                    "s_curve_mid": float(params.candidate_probability(mid)),
                    "expected_mid": float(params.detection_probability(mid)),
                }
            )
    return {
        "config": label,
        "bands": params.bands,
        "rows": params.rows,
        "verify": params.verify,
        "true_pairs": len(truth),
        "candidate_pairs": len(cand),
        "candidate_recall": sum(k in cand for k in truth) / max(len(truth), 1),
        "reported_pairs": len(got),
        "pair_precision": tp / max(len(got), 1),
        "pair_recall": len(got & truth) / max(len(truth), 1),
        "docs_with_earlier_duplicate": len(has_earlier),
        "removed": len(rem),
        "doc_precision": rem_ok / max(len(rem), 1),
        "doc_recall": len(rem & has_earlier) / max(len(has_earlier), 1),
        "lsh_seconds": round(seconds, 3),
        "per_bin": per_bin,
    }


def main(argv=None) -> None:
    from r1data.dedup.lsh import LshParams, choose_bands
    from r1data.dedup.minhash import MinHasher

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", type=int, default=600)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--permutations", type=int, default=112)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    docs, fam = generate(args.families)
    fam = np.array(fam)
    sets = [shingle_set(d, args.ngram) for d in docs]
    sigs, counts = MinHasher(permutations=args.permutations, ngram=args.ngram).signatures(docs)
    t, k = args.threshold, args.permutations
    configs = [
        ("defaults (verify, bands for the whole decision)", LshParams.for_threshold(t, k)),
        ("verify, datasketch's bands (S-curve alone)", LshParams(k, *choose_bands(t, k), threshold=t)),
        ("no verification, datasketch's bands", LshParams.for_threshold(t, k, verify=False)),
        ("no verification, defaults' bands", LshParams(k, *choose_bands(t, k, verify=True), threshold=t, verify=False)),
    ]
    results = [evaluate(docs, fam, sets, sigs, counts > 0, p, label, t) for label, p in configs]
    if args.json:
        print(json.dumps({"documents": len(docs), "families": args.families, "results": results}, indent=1))
        return
    print(f"{len(docs)} documents in {args.families} families; threshold {t}, {k} permutations, word {args.ngram}-grams")
    print(f"{'configuration':<48} {'bands x rows':>12} {'pair P':>7} {'pair R':>7} {'cand R':>7} {'doc P':>7} {'doc R':>7}")
    for r in results:
        print(
            f"{r['config']:<48} {r['bands']:>5} x {r['rows']:<4} {r['pair_precision']:>7.3f} {r['pair_recall']:>7.3f} "
            f"{r['candidate_recall']:>7.3f} {r['doc_precision']:>7.3f} {r['doc_recall']:>7.3f}"
        )
    print(f"\ndetection rate per exact-Jaccard bin, {results[0]['config']}")
    print("(theory at the bin middle: S-curve for candidates, S-curve x binomial verification tail for reported)")
    print(f"{'Jaccard':>8} {'pairs':>7} {'candidate':>10} {'(theory)':>9} {'reported':>9} {'(theory)':>9}")
    for b in results[0]["per_bin"]:
        print(f"{b['jaccard']:>8} {b['pairs']:>7} {b['candidate']:>10.3f} {b['s_curve_mid']:>9.3f} {b['reported']:>9.3f} {b['expected_mid']:>9.3f}")


if __name__ == "__main__":
    main()
