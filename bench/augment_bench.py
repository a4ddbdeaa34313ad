"""Augmentation benchmark: GSM8K variant yield and speeds of math, code, Apertium and EDA augmentation.

    python bench/augment_bench.py [--shared ../shared/data] [--skip apertium,code,...] [--problems N]

Prints one line per figure. Everything runs through the stages themselves (the code a pipeline
runs), on real data: GSM8K train (../shared/data/math/gsm8k/train.jsonl.gz), the CPython standard
library, Apertium from Debian, WordNet 3.0. Baselines run in the same process on the same data:

- math: parsing + checking the original chain only (what any GSM8K loader does);
- code: ast.parse + compile of the original (the floor of any AST-based rewrite);
- apertium: one `apertium | apertium` pipeline per document (what a naive integration does),
  against our batched stage, both on 2 worker processes.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datatrove.data import Document  # noqa: E402


def find_shared() -> Path | None:
    for d in ROOT.parents:
        if (d / "shared" / "data").is_dir():
            return d / "shared" / "data"
    return None


def load_gsm8k(shared: Path, n: int | None) -> list[dict]:
    with gzip.open(shared / "math" / "gsm8k" / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return rows[:n] if n else rows


def bench_math(rows: list[dict]) -> None:
    from r1data.augment.math import MalformedProblem, analyze
    from r1data.stages.augment import MathAugment, MathAugmentConfig

    docs = [Document(text=r["question"], id=f"gsm8k-train-{i}", metadata={"answer": r["answer"]}) for i, r in enumerate(rows)]
    t0 = time.perf_counter()
    for r in rows:
        try:
            analyze(r["question"], r["answer"])
        except MalformedProblem:
            pass
    base = time.perf_counter() - t0
    stage = MathAugment(MathAugmentConfig())  # the defaults: 1 verified variant, at most 3 candidates
    t0, c0 = time.perf_counter(), time.process_time()
    out = list(stage.run(iter(docs)))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    yielded = {d.metadata["augmented_from"] for d in out if "augmented_from" in d.metadata and "_rejected" not in d.metadata}
    written = sum(1 for d in out if "augmented_from" in d.metadata)
    failed = written - len(yielded)
    malformed = sum(1 for d in docs if d.metadata.get("_rejected"))
    reasons: dict[str, int] = {}
    for d in docs:
        note = d.metadata.get("augment", {}).get("math_augment", {})
        if note.get("status") != "augmented":
            reasons[note.get("reason", "?")] = reasons.get(note.get("reason", "?"), 0) + 1
    print(f"math  GSM8K train problems: {len(docs)}")
    print(f"math  yield (>= 1 verified variant): {len(yielded)}/{len(docs)} = {100 * len(yielded) / len(docs):.1f}%")
    print(f"math  variants written {written}, failed the verifier {failed}, malformed originals rejected {malformed}")
    print(f"math  why the others yield none: {dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}")
    print(
        f"math  speed: {len(docs) / dt:.0f} problems/s wall, {len(docs) / cpu:.0f} problems per CPU-second on 1 core "
        f"(analysis-only baseline {len(docs) / base:.0f}/s wall; augmentation costs {dt / base:.1f}x the analysis)"
    )


def bench_code(n_files: int) -> None:
    import ast

    from r1data.stages.augment import CodeAugment, CodeAugmentConfig

    stdlib = sysconfig.get_paths()["stdlib"]
    files = sorted(f for f in glob.glob(f"{stdlib}/**/*.py", recursive=True) if "/test" not in f and "site-packages" not in f)[:n_files]
    docs = []
    for f in files:
        try:
            docs.append(Document(text=Path(f).read_text(encoding="utf-8"), id=f, metadata={"language": "python"}))
        except (UnicodeDecodeError, OSError):
            continue
    size = sum(len(d.text.encode()) for d in docs)
    t0 = time.perf_counter()
    for d in docs:
        try:
            compile(ast.parse(d.text), d.id, "exec")
        except SyntaxError:
            pass
    base = time.perf_counter() - t0
    for layout, comments in (("keep", "keep"), ("unparse", "remove")):
        stage = CodeAugment(CodeAugmentConfig(docstrings="remove", layout=layout, comments=comments))
        fresh = [Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs]
        t0, c0 = time.perf_counter(), time.process_time()
        out = list(stage.run(iter(fresh)))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        variants = [d for d in out if "augmented_from" in d.metadata]
        bad = [d for d in variants if "_rejected" in d.metadata]
        skipped = sum(1 for d in fresh if d.metadata["augment"]["code_augment"]["status"] != "augmented")
        print(
            f"code  layout={layout}: {len(docs)} stdlib files ({size / 1e6:.1f} MB), {len(variants) - len(bad)} verified variants, "
            f"{len(bad)} failed verification, {skipped} passed through; {len(docs) / dt:.1f} files/s wall, "
            f"{len(docs) / cpu:.1f} files and {size / cpu / 1e6:.2f} MB per CPU-second on 1 core (parse+compile baseline {size / base / 1e6:.2f} MB/s)"
        )


def _cpu() -> float:
    """CPU seconds of this process and its (waited-for) children: apertium runs as children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _bt_worker(texts: list[str]) -> tuple[int, int, float]:
    from r1data.stages.augment import Backtranslate, BacktranslateConfig

    c0 = _cpu()
    st = Backtranslate(BacktranslateConfig())
    docs = [Document(text=t, id=str(i), metadata={}) for i, t in enumerate(texts)]
    out = list(st.run(iter(docs)))
    ok = sum(1 for d in out if "augmented_from" in d.metadata and "_rejected" not in d.metadata)
    return ok, len(docs), _cpu() - c0


def _naive_worker(texts: list[str]) -> float:
    c0 = _cpu()
    for t in texts:
        subprocess.run("apertium -u eng-spa | apertium -u spa-eng", shell=True, input=t.encode(), capture_output=True, check=True)
    return _cpu() - c0


def bench_apertium(rows: list[dict], n: int, naive_n: int, workers: int = 2) -> None:
    texts = [r["question"] for r in rows[:n]]
    chunks = [texts[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(workers) as pool:
        t0 = time.perf_counter()
        res = pool.map(_bt_worker, chunks)
        dt = time.perf_counter() - t0
    ok = sum(r[0] for r in res)
    cpu = sum(r[2] for r in res)
    kb = sum(len(t.encode()) for t in texts) / 1e3
    naive = texts[:naive_n]
    with ctx.Pool(workers) as pool:
        t0 = time.perf_counter()
        ncpu = sum(pool.map(_naive_worker, [naive[i::workers] for i in range(workers)]))
        ndt = time.perf_counter() - t0
    print(
        f"apertium  {len(texts)} GSM8K questions ({kb:.0f} KB) eng->spa->eng on {workers} processes: {len(texts) / dt:.1f} docs/s wall, "
        f"{kb / dt:.1f} KB/s; {len(texts) / cpu:.1f} docs and {kb / cpu:.1f} KB per CPU-second (so ~{workers * len(texts) / cpu:.0f} docs/s "
        f"on {workers} idle cores); {ok} usable variants ({100 * ok / len(texts):.1f}%)"
    )
    print(
        f"apertium  one pipeline per document (baseline, {len(naive)} docs): {len(naive) / ndt:.2f} docs/s wall, {len(naive) / ncpu:.2f} docs per CPU-second; "
        f"batching is {(len(texts) / cpu) / (len(naive) / ncpu):.0f}x more work per CPU-second"
    )


def bench_eda(rows: list[dict]) -> None:
    from r1data.stages.augment import Eda, EdaConfig

    docs = [Document(text=r["question"], id=str(i), metadata={}) for i, r in enumerate(rows)]
    st = Eda(EdaConfig(variants=2))
    t0 = time.perf_counter()
    st._ensure_setup()
    st.wordnet.synonyms("index")  # loads the index files
    setup = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    out = list(st.run(iter(docs)))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = sum(1 for d in out if "augmented_from" in d.metadata)
    print(f"eda   {len(docs)} docs -> {n} variants: {len(docs) / dt:.0f} docs/s wall, {len(docs) / cpu:.0f} per CPU-second on 1 core (WordNet index load {setup:.1f} s once per task)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=find_shared())
    ap.add_argument("--skip", default="", help="comma-separated: math,code,apertium,eda")
    ap.add_argument("--problems", type=int, default=None, help="GSM8K problems for the yield (default: all 7473)")
    ap.add_argument("--code-files", type=int, default=300)
    ap.add_argument("--apertium-docs", type=int, default=1000)
    a = ap.parse_args()
    if a.shared is None:
        sys.exit("error: ../shared/data not found; pass --shared")
    skip = set(filter(None, a.skip.split(",")))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    rows = load_gsm8k(a.shared, a.problems)
    if "math" not in skip:
        bench_math(rows)
    if "code" not in skip:
        bench_code(a.code_files)
    if "apertium" not in skip:
        bench_apertium(rows, a.apertium_docs, naive_n=20)
    if "eda" not in skip:
        bench_eda(rows[:2000])


if __name__ == "__main__":
    main()
