"""MinHash signature speed: r1data vs datasketch vs datatrove on the same ~700-word book documents.

    python bench/minhash_speed.py                    # 1,000 documents, 112 permutations, word 5-grams
    python bench/minhash_speed.py --docs 3000 --json

Speed is documents per CPU-second of this process (``time.process_time``), i.e. docs/s/core: it
does not flatter or punish a tool for what else the machine is running, and none of the three
uses more than one thread here. Each tool gets the same documents (book text from
../shared/data/books cut into consecutive 700-word pieces, line breaks and punctuation kept):

- r1data: ``MinHasher(permutations=112, ngram=5).signatures`` in batches of 256 (tokenising
  included), the median of three passes;
- datasketch: ``re.findall(r"\\w+")`` on the lower-cased text, word 5-grams joined and encoded,
  ``MinHash(num_perm=112).update_batch`` (also reported alone, without the tokenising);
- datatrove: ``MinhashDedupSignature`` with 14 buckets x 8 hashes = 112, run as a pipeline step
  over the documents into a temporary folder (its spaCy tokeniser is loaded before timing).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import book_files, read_text  # noqa: E402

WORDS_PER_DOC = 700


def book_documents(n: int) -> list[str]:
    """``n`` consecutive 700-word pieces of the shared books (original spacing and punctuation)."""
    docs: list[str] = []
    for f in book_files():
        text = read_text(f)
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        for i in range(0, len(spans) - WORDS_PER_DOC + 1, WORDS_PER_DOC):
            docs.append(text[spans[i][0] : spans[i + WORDS_PER_DOC - 1][1]])
            if len(docs) == n:
                return docs
    return docs


def cpu_seconds(fn) -> tuple[float, float]:
    t0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - t0, time.perf_counter() - w0


def bench_r1data(docs: list[str], perms: int, ngram: int, batch: int = 256, repeat: int = 3):
    """The median of ``repeat`` passes (r1data's pass is short enough for timer noise to matter)."""
    from r1data.dedup.minhash import MinHasher

    hasher = MinHasher(permutations=perms, ngram=ngram, seed=1)
    hasher.signatures(docs[:batch])  # grow the power tables once, as a long run would have

    def run():
        for i in range(0, len(docs), batch):
            hasher.signatures(docs[i : i + batch])

    runs = sorted((cpu_seconds(run) for _ in range(repeat)), key=lambda r: r[0])
    return runs[len(runs) // 2]


_WORD = re.compile(r"\w+")


def breakdown(docs: list[str], perms: int, ngram: int, batch: int = 256) -> dict:
    """Where r1data's time goes (CPU µs per document), next to what plain-Python tokenising alone costs."""
    import numpy as np

    from r1data.dedup.minhash import MinHasher, shingle_hashes, word_hashes

    hasher = MinHasher(permutations=perms, ngram=ngram, seed=1)
    batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
    hasher.signatures(batches[0])
    per_doc = lambda cpu: round(cpu / len(docs) * 1e6, 1)  # noqa: E731
    words = [word_hashes(b) for b in batches]
    shingles = [shingle_hashes(w, ngram) for w in words]
    xs = [((sh >> np.uint64(32)).astype(np.uint32), st) for sh, st in shingles]
    out = {
        "words: lower, UTF-8, split and hash (r1data)": per_doc(cpu_seconds(lambda: [word_hashes(b) for b in batches])[0]),
        "shingles: n-gram hashes (r1data)": per_doc(cpu_seconds(lambda: [shingle_hashes(w, ngram) for w in words])[0]),
        "permutations + minimum (r1data)": per_doc(
            cpu_seconds(lambda: [hasher._min_into(x, st, np.full((len(st) - 1, perms), 0xFFFFFFFF, np.uint32)) for x, st in xs])[0]
        ),
        "for comparison: re.findall(r'\\w+', lower) only": per_doc(cpu_seconds(lambda: [_WORD.findall(d.lower()) for d in docs])[0]),
        "for comparison: lower().split() only": per_doc(cpu_seconds(lambda: [d.lower().split() for d in docs])[0]),
    }
    return out


def _datasketch_shingles(text: str, ngram: int) -> list[bytes]:
    words = _WORD.findall(text.lower())
    return [" ".join(words[i : i + ngram]).encode("utf-8") for i in range(max(len(words) - ngram + 1, 1))]


def bench_datasketch(docs: list[str], perms: int, ngram: int):
    from datasketch import MinHash

    def run():
        for d in docs:
            m = MinHash(num_perm=perms, seed=1)
            m.update_batch(_datasketch_shingles(d, ngram))

    full = cpu_seconds(run)
    shingled = [_datasketch_shingles(d, ngram) for d in docs]

    def only_update():
        for s in shingled:
            MinHash(num_perm=perms, seed=1).update_batch(s)

    return full, cpu_seconds(only_update)


def bench_datatrove(docs: list[str], perms: int, ngram: int):
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.logging import logger

    logger.remove()
    if perms % 8:
        raise SystemExit("datatrove's comparison needs permutations divisible by 8 (buckets of 8 hashes)")
    with tempfile.TemporaryDirectory(prefix="r1data-bench-dt-") as tmp:
        step = MinhashDedupSignature(output_folder=tmp, config=MinhashConfig(n_grams=ngram, num_buckets=perms // 8, hashes_per_bucket=8))
        step.get_shingles("load the spaCy tokeniser before the clock starts")
        documents = [Document(text=d, id=str(i)) for i, d in enumerate(docs)]

        def run():
            out = step.run(iter(documents), rank=0, world_size=1)
            if inspect.isgenerator(out):
                deque(out, maxlen=0)

        return cpu_seconds(run)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=1000, help="documents for r1data and datasketch")
    ap.add_argument("--datatrove-docs", type=int, default=None, help="documents for datatrove (default: --docs; it is ~100x slower)")
    ap.add_argument("--permutations", type=int, default=112)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)

    docs = book_documents(args.docs)
    words = sum(len(d.split()) for d in docs) / len(docs)
    results = {"documents": len(docs), "mean_words": round(words, 1), "permutations": args.permutations, "ngram": args.ngram, "tools": {}}

    def record(name, n, cpu_wall):
        cpu, wall = cpu_wall
        results["tools"][name] = {"docs": n, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "docs_per_cpu_s": round(n / cpu, 1)}

    record("r1data", len(docs), bench_r1data(docs, args.permutations, args.ngram))
    full, update = bench_datasketch(docs, args.permutations, args.ngram)
    record("datasketch", len(docs), full)
    record("datasketch update_batch only", len(docs), update)
    if not args.skip_datatrove:
        n = min(args.datatrove_docs or len(docs), len(docs))
        record("datatrove", n, bench_datatrove(docs[:n], args.permutations, args.ngram))

    results["r1data_breakdown_us_per_doc"] = breakdown(docs, args.permutations, args.ngram)
    ours = results["tools"]["r1data"]["docs_per_cpu_s"]
    results["ratios"] = {f"r1data / {k}": round(ours / v["docs_per_cpu_s"], 1) for k, v in results["tools"].items() if k != "r1data"}
    results["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print(
            f"{results['documents']} book documents of {results['mean_words']} words (whitespace-split), "
            f"{args.permutations} permutations, word {args.ngram}-grams; load average {results['load_average']:.1f}"
        )
        print(f"{'tool':<30} {'docs':>6} {'CPU s':>8} {'docs/s/core':>12} {'r1data is':>10}")
        for name, r in results["tools"].items():
            ratio = "" if name == "r1data" else f"{ours / r['docs_per_cpu_s']:.1f}x"
            print(f"{name:<30} {r['docs']:>6} {r['cpu_s']:>8.2f} {r['docs_per_cpu_s']:>12,.0f} {ratio:>10}")
        print("\nr1data, CPU µs per document")
        for step, us in results["r1data_breakdown_us_per_doc"].items():
            print(f"  {step:<52} {us:>7.1f}")
    return results


if __name__ == "__main__":
    main()
