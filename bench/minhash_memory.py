"""Peak memory of MinHash dedup's reduce tasks (buckets, clusters) against the window size and the corpus size.

    python bench/minhash_memory.py                         # 200 shards x 2,000 docs, windows 1, 10, 100
    python bench/minhash_memory.py --shards 100 --docs-per-shard 200 --windows 1,10,50   # quicker

What it does:

1. Generates a corpus of ``--shards`` Parquet shards. Words are drawn from the word frequencies of
   the shared books (a realistic Zipf-like distribution); ``--dup-rate`` of the documents are near
   copies (one or two words changed) of an earlier document, half of them from the same shard and
   half from any earlier shard. A second corpus of twice as many shards (the same first half)
   checks that memory does not follow the corpus size.
2. Runs the real pipeline's map phase (``parquet_reader`` -> ``minhash_dedup`` signatures -> work
   files) once per corpus with the local executor.
3. For each window size, runs every reduce task of the real multi-form plan (``buckets`` then
   ``clusters``) and measures the peak resident memory (VmHWM) of a fresh Python process
   per task for ``--sample`` windows (the rest run in this process, for the counts). The baseline
   is the peak of the same process that loads the task and the libraries it uses (Python, NumPy,
   pyarrow with its Parquet reader, SciPy, r1data) and reads one column of one work file.

It prints one table row per (corpus, window) with documents per window, peak RSS of the largest
bucket and cluster task, their increase over the baseline, the documents removed, the recall over
the injected copies whose original is in the same window and whose exact Jaccard similarity
(word 5-grams) is at least 0.8, and the removed documents that are not injected copies ("false").
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from _common import word_distribution  # noqa: E402


def _jaccard5(a: list[str], b: list[str]) -> float:
    sa = {tuple(a[i : i + 5]) for i in range(len(a) - 4)}
    sb = {tuple(b[i : i + 5]) for i in range(len(b) - 4)}
    return len(sa & sb) / len(sa | sb)


def generate(folder: Path, shards: int, docs_per_shard: int, words: int, dup_rate: float, seed: int = 0) -> list[tuple]:
    """Write the shards; returns the injected near copies as (copy shard, copy record, src shard,
    src record, exact Jaccard of their word 5-gram sets)."""
    vocab, p = word_distribution()
    folder.mkdir(parents=True, exist_ok=True)
    injected = []
    texts_by_shard: list[list[str]] = []
    for s in range(shards):
        rng = np.random.default_rng([seed, s])  # shard s is the same in every corpus size
        lengths = rng.integers(words // 2, words * 3 // 2, size=docs_per_shard)
        idx = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        texts = [" ".join(vocab[idx[bounds[i] : bounds[i + 1]]]) for i in range(docs_per_shard)]
        for r in range(docs_per_shard):
            if rng.random() >= dup_rate or (s == 0 and r == 0):
                continue
            if rng.random() < 0.5 or s == 0:
                ss, rr = s, int(rng.integers(0, max(r, 1)))
            else:
                ss = int(rng.integers(0, s))
                rr = int(rng.integers(0, docs_per_shard))
            if (ss, rr) == (s, r):
                continue
            src = (texts if ss == s else texts_by_shard[ss])[rr].split()
            for _ in range(int(rng.integers(1, 3))):
                src[int(rng.integers(0, len(src)))] = str(vocab[int(rng.integers(0, len(vocab)))])
            orig = (texts if ss == s else texts_by_shard[ss])[rr].split()
            texts[r] = " ".join(src)
            injected.append((s, r, ss, rr, _jaccard5(orig, src)))
        texts_by_shard.append(texts)
        ids = [f"synth-{s:04d}-{r:05d}" for r in range(docs_per_shard)]
        pq.write_table(pa.table({"id": ids, "text": texts}), folder / f"shard-{s:05d}.parquet", compression="zstd")
    return injected


RECIPE = """\
name: minhash-memory
inputs: ["{inputs}/*.parquet"]
stages:
  - stage: parquet_reader
    source: synth
  - stage: minhash_dedup
output:
  path: {out}
"""


def make_plan(corpus: Path, out: Path, window: int):
    from r1data.config.spec import Overrides
    from r1data.run.pipeline import load_spec, plan_run

    recipe = out.parent / f"{out.name}.yaml"
    recipe.write_text(RECIPE.format(inputs=corpus, out=out))
    return plan_run(load_spec(recipe, Overrides(dedup_window=window)))


def run_map(plan, workers: int) -> float:
    from r1data.run.executor import LocalExecutor

    map_phase = plan.phases()[0]
    shutil.rmtree(plan.out_dir, ignore_errors=True)
    t0 = time.perf_counter()
    ex = LocalExecutor(map_phase.pipeline, tasks=map_phase.tasks, workers=workers, logging_dir=str(plan.out_dir), phase=map_phase.name)
    failed = ex.run()
    if failed:
        raise SystemExit(f"map phase failed: {ex.failures}")
    return time.perf_counter() - t0


def peak_rss_kb() -> int:
    """This process's peak resident set size (VmHWM). Not ``ru_maxrss``: Linux carries that over
    ``exec`` from the forking parent, so a child would report the driver's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def task_rss(pickled: Path, rank: int) -> dict:
    """Run one reduce task in a fresh interpreter; its peak RSS and report."""
    res = subprocess.run([sys.executable, __file__, "--task", str(pickled), str(rank)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def reduce_window_size(plan, sample: int, tmp: Path) -> dict:
    """Run all reduce tasks of ``plan`` (sampled ones in subprocesses); peak RSS per step."""
    from r1data.run.pipeline import Plan  # noqa: F401  (the plan's classes must be importable in the child)

    phases = plan.phases()
    reduce_phases = phases[1:-1]
    ctx = reduce_phases[0].pipeline[0].ctx
    shutil.rmtree(Path(ctx.work_dir) / "buckets", ignore_errors=True)
    shutil.rmtree(Path(ctx.work_dir) / "decisions", ignore_errors=True)
    n_windows = len(ctx.windows)
    sampled = set(np.linspace(0, n_windows - 1, min(sample, n_windows)).round().astype(int).tolist())
    out = {"windows": n_windows, "steps": {}}
    for phase in reduce_phases:
        runner = phase.pipeline[0]
        step = runner.step
        pickled = tmp / f"{phase.name}.pkl"
        pickled.write_bytes(pickle.dumps((step, ctx)))
        per_window = phase.tasks // max(n_windows, 1)
        peak, reports = 0, []
        for rank in range(phase.tasks):
            if rank // per_window in sampled:
                r = task_rss(pickled, rank)
                peak = max(peak, r["maxrss_kb"])
                reports.append(r["report"])
            else:
                reports.append(step.run(ctx, rank, phase.tasks))
        out["steps"][step.name] = {"peak_kb": peak, "reports": reports, "baseline_kb": task_rss(pickled, -1)["maxrss_kb"]}
    return out


def decisions_removed(plan) -> set[tuple[int, int]]:
    ctx = plan.phases()[1].pipeline[0].ctx
    removed = set()
    for k in range(len(ctx.windows)):
        t = pq.read_table(ctx.decisions_path(k), columns=["input_index", "record_index"])
        removed.update(zip(t.column("input_index").to_pylist(), t.column("record_index").to_pylist()))
    return removed


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=int, default=200)
    ap.add_argument("--docs-per-shard", type=int, default=2000)
    ap.add_argument("--words", type=int, default=100, help="mean words per document")
    ap.add_argument("--dup-rate", type=float, default=0.05)
    ap.add_argument("--windows", default="1,10,100")
    ap.add_argument("--sample", type=int, default=3, help="windows per size whose tasks are measured in a fresh process")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/r1data-minhash-memory"))
    ap.add_argument("--keep", action="store_true", help="keep the generated corpora and work files")
    ap.add_argument("--task", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.task:  # child: run one task, print its peak RSS
        step, ctx = pickle.loads(Path(args.task[0]).read_bytes())
        rank = int(args.task[1])
        if rank >= 0:
            report = step.run(ctx, rank, step.tasks(ctx))
        else:  # the baseline: load what the task loads (lazily imported libraries, one column read)
            import pyarrow.dataset  # noqa: F401

            if step.name == "clusters":
                import scipy.sparse.csgraph  # noqa: F401
            pq.read_table(ctx.docs_path(ctx.windows[0][0]), columns=["record_index"])
            report = {}
        print(json.dumps({"maxrss_kb": peak_rss_kb(), "report": report}, default=str))
        return

    windows = [int(w) for w in args.windows.split(",")]
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    corpora = [(args.shards, windows), (2 * args.shards, [max(windows)])]
    for shards, ws in corpora:
        corpus = args.dir / f"corpus-{shards}"
        t0 = time.perf_counter()
        injected = generate(corpus, shards, args.docs_per_shard, args.words, args.dup_rate)
        gen_s = time.perf_counter() - t0
        out = args.dir / f"run-{shards}"
        map_s = run_map(make_plan(corpus, out, ws[0]), args.workers)
        print(f"corpus of {shards} shards x {args.docs_per_shard} documents: generated in {gen_s:.0f} s, map phase {map_s:.0f} s", file=sys.stderr)
        for w in ws:
            plan = make_plan(corpus, out, w)
            t0 = time.perf_counter()
            res = reduce_window_size(plan, args.sample, args.dir)
            removed = decisions_removed(plan)
            # injected copies at or above the threshold whose original is in the same window
            findable = [(c, r) for c, r, ss, _, j in injected if j >= 0.8 and (ss // w == c // w if w else True)]
            found = sum((c, r) in removed for c, r in findable)
            injected_set = {(c, r) for c, r, *_ in injected}
            b, c = res["steps"]["buckets"], res["steps"]["clusters"]
            rows.append(
                {
                    "shards": shards,
                    "window": w,
                    "windows": res["windows"],
                    "docs_per_window": shards * args.docs_per_shard // res["windows"],
                    "buckets_peak_mib": b["peak_kb"] / 1024,
                    "buckets_over_base_mib": (b["peak_kb"] - b["baseline_kb"]) / 1024,
                    "clusters_peak_mib": c["peak_kb"] / 1024,
                    "clusters_over_base_mib": (c["peak_kb"] - c["baseline_kb"]) / 1024,
                    "candidate_pairs": sum(r.get("candidate_pairs", 0) for r in c["reports"]),
                    "removed": len(removed),
                    "in_window_injected": len(findable),
                    "recall": found / max(len(findable), 1),
                    "removed_not_injected": len(removed - injected_set),
                    "reduce_s": time.perf_counter() - t0,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
        if not args.keep:
            shutil.rmtree(corpus, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)

    j = np.array([x[4] for x in injected])
    print(f"\ninjected near copies: {len(j)}, exact Jaccard median {np.median(j):.2f}, {np.mean(j >= 0.8):.0%} at or above 0.8")
    print("MinHash dedup reduce tasks: peak RSS of a fresh process per task (the largest of the measured tasks)")
    print(f"corpus: {args.docs_per_shard} docs/shard, ~{args.words} words/doc, {args.dup_rate:.0%} injected near copies; 112 permutations, 14 bands x 8 rows (the defaults)")
    print(f"{'shards':>6} {'window':>6} {'windows':>7} {'docs/window':>11} {'buckets MiB':>11} {'clusters MiB':>12} {'pairs':>8} {'removed':>8} {'recall':>7} {'false':>5}")
    for r in rows:
        print(
            f"{r['shards']:>6} {r['window']:>6} {r['windows']:>7} {r['docs_per_window']:>11,} {r['buckets_peak_mib']:>11.1f} "
            f"{r['clusters_peak_mib']:>12.1f} {r['candidate_pairs']:>8,} {r['removed']:>8,} {r['recall']:>7.3f} {r['removed_not_injected']:>5}"
        )
    b0, c0 = rows[0]["buckets_peak_mib"] - rows[0]["buckets_over_base_mib"], rows[0]["clusters_peak_mib"] - rows[0]["clusters_over_base_mib"]
    print(f"baseline of the same process with the task's libraries loaded and one column read: buckets {b0:.1f} MiB, clusters {c0:.1f} MiB")
    print("recall: injected copies with exact Jaccard >= 0.8 whose original is in the same window; false: removed, not injected")


if __name__ == "__main__":
    main()
