"""Decontamination speed: r1data's ``decontaminate`` index vs the n-gram-set method of Open-R1's script.

    python bench/decontam_speed.py                 # 2,000 documents of 700 words, GSM8K + CHAMP + HumanEval
    python bench/decontam_speed.py --docs 5000 --json

Speed is documents per CPU-second of this process (``time.process_time``), i.e. docs/s/core, so it
does not depend much on what else the machine runs. Both methods get the same documents: book text
from ../shared/data/books cut into consecutive 700-word pieces, with 1 % of them carrying a
planted GSM8K test question (so the found counts can be compared: they must be equal).

- r1data: ``BenchmarkIndex.find`` (byte-level normalisation, numpy word and n-gram hashes, a
  prefilter and ``searchsorted``, every hit verified);
- baseline: what Open-R1's ``scripts/decontaminate.py`` does per document: lower-case, strip
  punctuation, split, join every 13-word window into a string and look it up in a Python ``set``
  of the benchmark's 13-gram strings (its short items are not handled; neither are ours counted).
"""

from __future__ import annotations

import argparse
import gzip
import json
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import book_files, read_text  # noqa: E402

from r1data.quality.contamination import BUNDLES, build_index  # noqa: E402

WORDS = 700


def documents(n: int) -> list[str]:
    words: list[str] = []
    for f in book_files():
        words += read_text(f).split(" ")
        if len(words) > n * WORDS:
            break
    docs = [" ".join(words[i * WORDS : (i + 1) * WORDS]) for i in range(min(n, len(words) // WORDS))]
    with gzip.open(ROOT / "data/benchmarks/gsm8k-test.jsonl.gz", "rt") as fh:
        questions = [json.loads(line)["question"] for line in fh]
    for k, i in enumerate(range(0, len(docs), 100)):  # 1 %: a test question inside the page
        half = len(docs[i]) // 2
        docs[i] = docs[i][:half] + " " + questions[k % len(questions)] + " " + docs[i][half:]
    return docs


_TABLE = str.maketrans("", "", string.punctuation)


def _baseline_ngrams(text: str, n: int) -> list[str]:
    words = text.lower().translate(_TABLE).split()
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


def baseline_index(benchmarks: list[str], n: int) -> set[str]:
    grams: set[str] = set()
    for name in benchmarks:
        file, fields = BUNDLES[name]
        with gzip.open(ROOT / "data/benchmarks" / file, "rt") as fh:
            for line in fh:
                row = json.loads(line)
                for f in fields:
                    if isinstance(row.get(f), str):
                        grams.update(_baseline_ngrams(row[f], n))
    return grams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--ngram", type=int, default=13)
    ap.add_argument("--repeat", type=int, default=3, help="passes; the best is reported")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    benches = ["gsm8k", "champ", "humaneval"]
    docs = documents(args.docs)

    t0 = time.process_time()
    index = build_index(benches, n=args.ngram)
    build_r1 = time.process_time() - t0
    t0 = time.process_time()
    base = baseline_index(benches, args.ngram)
    build_base = time.process_time() - t0

    def run_r1() -> int:
        return sum(1 for d in docs if index.find(d))

    def run_base() -> int:
        return sum(1 for d in docs if any(g in base for g in _baseline_ngrams(d, args.ngram)))

    best = {"r1data": float("inf"), "baseline": float("inf")}
    found = {}
    for _ in range(args.repeat):  # alternated
        for name, fn in (("r1data", run_r1), ("baseline", run_base)):
            t0 = time.process_time()
            found[name] = fn()
            best[name] = min(best[name], time.process_time() - t0)
    res = {
        "documents": len(docs),
        "words_per_document": WORDS,
        "benchmark_ngrams": index.ngrams,
        "found": found,
        "build_seconds": {"r1data": round(build_r1, 2), "baseline": round(build_base, 2)},
        "docs_per_s_core": {k: round(len(docs) / v, 1) for k, v in best.items()},
        "ratio": round(best["baseline"] / best["r1data"], 2),
    }
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{len(docs)} documents x {WORDS} words, {index.ngrams:,} benchmark n-grams ({', '.join(benches)}), n={args.ngram}")
    for k in best:
        print(f"  {k:9s} {res['docs_per_s_core'][k]:>9,.0f} docs/s/core   found {found[k]}   index built in {res['build_seconds'][k]} s")
    print(f"  r1data / baseline: {res['ratio']}x")


if __name__ == "__main__":
    main()
