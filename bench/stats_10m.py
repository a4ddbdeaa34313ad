"""Benchmark ``r1data stats`` on a generated 10-million-row output directory: wall time and peak RSS.

    python bench/stats_10m.py                       # generate /tmp/r1data-stats-10m (once), then measure
    python bench/stats_10m.py --rows 1000000 --dir /tmp/s1m --files 20
    python bench/stats_10m.py --keep                # keep the generated data for the next run

The data looks like a real run's output (``shards/`` and ``rejected/`` part files with the core
columns, ``lang``/``lang_score``, ``ppl``/``ppl_score``, ``quality_clf``/``quality_clf_score``,
``domain``, ``duplicate_of``, row groups of 2,048 rows as the sink writes them, a manifest and
per-task stats). Texts are short (lognormal, median ~200 bytes) to keep the disk use reasonable;
every text is unique (a pool sentence plus the row number), and the text column is not
dictionary-encoded, so a reader pays for every byte.

``r1data stats`` runs as a child process; its peak RSS comes from ``wait4`` (the kernel's
``ru_maxrss`` of that process alone), its wall time from the parent's clock. The figure to compare
it with is the uncompressed size of the data, printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

STAGES = [
    "warc_reader", "html_extract", "language_id", "language_filter", "gopher_repetition", "gopher_quality",
    "kenlm_perplexity", "quality_classifier", "quality_filter", "exact_dedup", "minhash_dedup",
]
# (stage, reason, share of rejected documents)
REJECTIONS = [
    ("html_extract", "empty_extraction", 0.04),
    ("language_filter", "language_not_allowed", 0.20),
    ("language_filter", "language_score_too_low", 0.04),
    ("gopher_repetition", "dup_line_frac", 0.06),
    ("gopher_repetition", "top_2_gram", 0.03),
    ("gopher_quality", "gopher_short_doc", 0.12),
    ("gopher_quality", "gopher_below_alpha_threshold", 0.05),
    ("quality_filter", "ppl_score_below_threshold", 0.16),
    ("quality_filter", "quality_clf_score_below_threshold", 0.10),
    ("exact_dedup", "exact_duplicate", 0.08),
    ("minhash_dedup", "near_duplicate", 0.12),
]
SOURCES = (["web", "code", "books", "math"], [0.8, 0.1, 0.05, 0.05])
LANGS = (["en", "de", "fr", "es", "zh", "ru", "ja", "nl"], [0.82, 0.04, 0.04, 0.03, 0.03, 0.02, 0.01, 0.01])
DOMAINS = (["general", "code", "math", "science", "news"], [0.6, 0.15, 0.08, 0.1, 0.07])


def _vocabulary(rng: np.random.Generator, n: int = 4000) -> list[str]:
    syl = ["ka", "lo", "mi", "ren", "to", "sa", "vel", "an", "dor", "pe", "qu", "is", "th", "er", "on", "al", "st", "in"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syl, size=rng.integers(1, 4))))
    return sorted(words)


def _text_pool(rng: np.random.Generator, size: int) -> pa.Array:
    vocab = np.array(_vocabulary(rng))
    counts = np.clip(rng.lognormal(3.5, 0.8, size).astype(int), 3, 2000)
    texts = []
    for c in counts:
        words = vocab[rng.zipf(1.3, c) % len(vocab)]
        # a line break every ~12 words, like extracted paragraphs
        lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
        texts.append(".\n".join(lines) + ".")
    return pa.array(texts, pa.string())


def _choice(rng, values_probs, n) -> pa.Array:
    values, probs = values_probs
    return pa.DictionaryArray.from_arrays(pa.array(rng.choice(len(values), n, p=probs).astype(np.int32)), pa.array(values)).cast(pa.string())


def _f32(x) -> pa.Array:
    return pa.array(np.asarray(x, dtype=np.float32))


def _table(rng, pool, hosts, rank: int, start: int, n: int, schema: pa.Schema, rejected: bool) -> pa.Table:
    rows = np.arange(start, start + n)
    row_str = pc.cast(pa.array(rows), pa.string())
    texts = pc.binary_join_element_wise(pool.take(pa.array(rng.integers(0, len(pool), n))), row_str, " ")
    source = _choice(rng, SOURCES, n)
    is_web = pc.equal(source, "web")
    host_idx = rng.zipf(1.2, n) % len(hosts)
    urls = pc.binary_join_element_wise(pa.array(hosts[host_idx]), row_str, "/doc/")
    urls = pc.if_else(is_web, urls, pa.nulls(n, pa.string()))
    paths = pc.if_else(is_web, pa.nulls(n, pa.string()), pc.binary_join_element_wise("file-", row_str, ".txt", ""))
    cols = {
        "id": pc.binary_join_element_wise(f"urn:r1:{rank:05d}:", row_str, ""),
        "text": texts,
        "source": source,
        "url": urls,
        "path": paths,
        "date": pa.array(np.array(["2020-08-03", "2021-01-17", "2023-06-02", "2024-11-30"])[rng.integers(0, 4, n)]),
        "input_file": pa.array([f"s3://bucket/crawl/CC-MAIN-{rank:05d}.warc.gz"] * n),
        "input_index": pa.array(np.full(n, rank, np.int32)),
        "record_index": pa.array(rows - rows[0]),
        "lang": _choice(rng, LANGS, n),
        "lang_score": _f32(rng.beta(8, 1.5, n)),
        "ppl": _f32(rng.lognormal(6.0, 0.6, n)),
        "ppl_score": _f32(rng.uniform(0, 1, n)),
        "quality_clf": _f32(rng.beta(2, 2, n)),
        "quality_clf_score": _f32(rng.uniform(0, 1, n)),
        "domain": _choice(rng, DOMAINS, n),
        "meta": pa.array(['{"charset": "utf-8"}'] * n),
    }
    if rejected:
        pick = rng.choice(len(REJECTIONS), n, p=[r[2] for r in REJECTIONS])
        cols["stage"] = pa.array(np.array([r[0] for r in REJECTIONS])[pick])
        cols["reason"] = pa.array(np.array([r[1] for r in REJECTIONS])[pick])
        dup = np.isin(pick, [i for i, r in enumerate(REJECTIONS) if r[1].endswith("_duplicate")])
        target = pc.binary_join_element_wise(f"urn:r1:{rank:05d}:", pc.cast(pa.array(rows // 7), pa.string()), "")
        cols["duplicate_of"] = pc.if_else(pa.array(dup), target, pa.nulls(n, pa.string()))
    return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)


def generate(out: Path, rows: int, files: int, seed: int = 0, kept_fraction: float = 0.6) -> dict:
    """Write ``files`` tasks' worth of shards and rejected parts holding ``rows`` documents in all."""
    from r1data.io.schema import rejected_schema, shard_schema

    stage_cols = {
        "lang": "string", "lang_score": "float32", "ppl": "float32", "ppl_score": "float32",
        "quality_clf": "float32", "quality_clf_score": "float32", "domain": "string",
    }
    kept_schema, rej_schema = shard_schema(stage_cols), rejected_schema(stage_cols)
    rng = np.random.default_rng(seed)
    pool = _text_pool(rng, 20_000)
    hosts = np.array([f"https://{'www.' if i % 3 == 0 else ''}site{i}.{['com', 'org', 'net', 'de'][i % 4]}" for i in range(5000)])
    if out.exists():
        shutil.rmtree(out)
    for sub in ("shards", "rejected", "stats"):
        (out / sub).mkdir(parents=True)
    # only the small, repetitive columns are dictionary-encoded, as pyarrow would choose for them
    dict_cols = ["source", "date", "input_file", "lang", "domain", "meta", "stage", "reason"]
    per_file = rows // files
    chunk = 100_000
    totals = {"read": 0, "kept": 0, "rejected": 0, "text_bytes": 0}
    outputs = {"shards": [], "rejected": []}
    start = 0
    for rank in range(files):
        n_file = per_file + (1 if rank < rows % files else 0)
        n_kept = int(n_file * kept_fraction)
        funnel: dict[tuple[str, str], int] = {}
        for sub, schema, n_sub, rej in (("shards", kept_schema, n_kept, False), ("rejected", rej_schema, n_file - n_kept, True)):
            path = out / sub / f"part-{rank:05d}.parquet"
            with pq.ParquetWriter(path, schema, compression="zstd", compression_level=3, use_dictionary=dict_cols) as w:
                done = 0
                while done < n_sub:
                    n = min(chunk, n_sub - done)
                    t = _table(rng, pool, hosts, rank, start, n, schema, rej)
                    totals["text_bytes"] += pc.sum(pc.binary_length(t["text"])).as_py()
                    if rej:
                        for (s, r), c in _count_pairs(t):
                            funnel[(s, r)] = funnel.get((s, r), 0) + c
                    w.write_table(t, row_group_size=2048)
                    start += n
                    done += n
            outputs[sub].append({"path": f"{sub}/{path.name}", "rows": n_sub, "bytes": path.stat().st_size})
        totals["read"] += n_file
        totals["kept"] += n_kept
        totals["rejected"] += n_file - n_kept
        report = {
            "rank": rank, "read": n_file, "kept": n_kept, "rejected": n_file - n_kept,
            "funnel": [{"stage": s, "reason": r, "count": c} for (s, r), c in sorted(funnel.items())],
            "input_files": [{"uri": f"s3://bucket/crawl/CC-MAIN-{rank:05d}.warc.gz", "index": rank, "documents": n_file}],
            "input_errors": [],
        }
        (out / "stats" / f"{rank:05d}.json").write_text(json.dumps({"r1data": report, "datatrove": []}))
    manifest = {
        "r1data_manifest": 1,
        "schema_version": 1,
        "pipeline": "bench-10m",
        "config": {"name": "bench-10m", "stages": [{"stage": s, "name": s} for s in STAGES]},
        "counts": {k: totals[k] for k in ("read", "kept", "rejected")},
        "inputs": [{"index": r, "uri": f"s3://bucket/crawl/CC-MAIN-{r:05d}.warc.gz"} for r in range(files)],
        "input_errors": [],
        "outputs": outputs,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return totals


def _count_pairs(t: pa.Table):
    g = t.group_by(["stage", "reason"]).aggregate([("stage", "count")])
    return zip(zip(g["stage"].to_pylist(), g["reason"].to_pylist()), g["stage_count"].to_pylist())


def _uncompressed(files) -> int:
    total = 0
    for f in files:
        md = pq.ParquetFile(f).metadata
        total += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    return total


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def measure(cmd: list[str]) -> tuple[float, int, float, int, str]:
    """Run ``cmd``; return (wall seconds, peak RSS bytes, CPU seconds, exit code, stdout) of that process alone.

    ``os.wait4`` gives the child's own resource usage (``RUSAGE_CHILDREN`` would keep the maximum
    over every child this script ever ran)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        sys.stderr.write(stderr)
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, proc.returncode, stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=100, help="tasks; each writes one shard and one rejected part")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/r1data-stats-10m"))
    ap.add_argument("--regenerate", action="store_true", help="regenerate even if the data exists")
    ap.add_argument("--keep", action="store_true", help="keep the generated data afterwards")
    ap.add_argument("--format", default="table", choices=["table", "json"])
    ap.add_argument("--no-scaling", dest="scaling", action="store_false", help="skip the runs on 10 %% and 30 %% of the tasks")
    args = ap.parse_args()

    marker = args.dir / ".bench-rows"
    if args.regenerate or not marker.exists() or marker.read_text().split() != [str(args.rows), str(args.files)]:
        t0 = time.perf_counter()
        totals = generate(args.dir, args.rows, args.files)
        marker.write_text(f"{args.rows} {args.files}\n")
        (args.dir / ".bench-text-bytes").write_text(str(totals["text_bytes"]))
        print(f"generated {args.rows:,} rows in {args.files} tasks under {args.dir} in {time.perf_counter() - t0:.0f} s")
    text_bytes = int((args.dir / ".bench-text-bytes").read_text())
    on_disk = dir_bytes(args.dir)
    uncompressed = _uncompressed(sorted(args.dir.rglob("*.parquet")))
    cmd = [sys.executable, "-m", "r1data_cli.app", "stats", str(args.dir), "--format", args.format]
    load = os.getloadavg()[0]
    wall, rss, cpu, rc, out = measure(cmd)
    print(out if args.format == "table" else out[:2000])
    print(f"rows:                  {args.rows:,} in {2 * args.files} Parquet files")
    print(f"parquet on disk:       {on_disk / 2**30:.2f} GiB")
    print(f"parquet uncompressed:  {uncompressed / 2**30:.2f} GiB (text alone {text_bytes / 2**30:.2f} GiB)")
    print(f"r1data stats wall:     {wall:.1f} s  ({args.rows / wall / 1e6:.2f} M rows/s, {os.cpu_count()} cores)")
    print(f"r1data stats CPU:      {cpu:.1f} s (user + system)")
    print(f"r1data stats peak RSS: {rss / 2**20:.0f} MiB  ({100 * rss / uncompressed:.1f} % of the uncompressed data)")
    print(f"load average before:   {load:.1f} on {os.cpu_count()} cores (other processes slow the wall time down)")
    print(f"exit code:             {rc}")
    if args.scaling:
        # the same command on the first 10 % and 30 % of the tasks: memory must not follow the rows
        print("\nscaling (files of the first N tasks, given as a file list):")
        print(f"{'tasks':>6} {'rows':>12} {'uncompressed':>13} {'wall s':>7} {'CPU s':>7} {'peak RSS':>9}")
        for frac in (0.1, 0.3, 1.0):
            n = max(1, round(args.files * frac))
            files = [args.dir / sub / f"part-{r:05d}.parquet" for r in range(n) for sub in ("shards", "rejected")]
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            w, r, c, code, _ = measure([sys.executable, "-m", "r1data_cli.app", "stats", *map(str, files), "--format", "json"])
            print(f"{n:>6} {rows:>12,} {_uncompressed(files) / 2**30:>9.2f} GiB {w:>7.1f} {c:>7.1f} {r / 2**20:>5.0f} MiB" + ("" if code == 0 else f"  exit {code}"))
    if not args.keep:
        shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
