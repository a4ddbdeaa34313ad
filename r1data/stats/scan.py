"""The streaming scans behind ``r1data stats``: polars lazy queries over Parquet files, merged per file set.

Every query selects only the columns it needs, reduces them to a small aggregate table inside
polars' streaming engine (``collect(engine="streaming")``) and never materialises text: text is
only ever turned into its byte length (``str.len_bytes``) inside the stream. What comes back is
bounded by the number of groups, not of documents:

- ``lengths``: one table per breakdown (all documents; source; lang; domain; for rejected
  documents (stage, reason)) with, per value and length bucket, documents, bytes, min and max
  length (see ``buckets.py``). Text is read once: the stream of (keys, length, bucket) comes
  out of polars in batches (``collect_batches``) and each batch is folded into every table, so
  memory stays flat however many documents there are, and table sizes add up instead of
  multiplying (a single group-by over source x lang x domain x reason x bucket could not);
- ``scores``: a bucket table per numeric stage column, on a scale chosen from the column's range
  (taken from the footers' statistics; a pass over those columns only for files without them);
- ``hosts``: documents per URL host;
- ``clusters``: 64-bit hashes of the distinct ``duplicate_of`` ids (dedup cluster count).

All of these merge by addition, so files with different schemas are scanned in groups and the
results combined. When a scan fails part-way (a file whose footer is fine but whose data pages
are corrupt), the files of that group are scanned one by one, the broken ones are named and left
out, and the rest still count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from r1data.io.schema import CORE_COLUMNS, REJECT_COLUMNS
from r1data.stats.buckets import BucketSpec, bucket_aggs, choose_spec, merge_buckets
from r1data.stats.sources import NUMERIC_TYPES, FileError, ShardFile, _one_line

GROUP_COLUMNS = ("source", "lang", "domain")
# breakdown name -> its key columns ("all": the whole set)
BREAKDOWNS = {"all": (), "source": ("source",), "lang": ("lang",), "domain": ("domain",), "stage": ("stage", "reason")}
DEDUP_REASONS = ("exact_duplicate", "near_duplicate")
LENGTH_SPEC = BucketSpec("log")


def authority_expr(url: pl.Expr) -> pl.Expr:
    """``scheme://AUTHORITY/...`` -> AUTHORITY (may still hold user@, :port, ?query): cheap per row.

    Two literal splits cost half of a regex over millions of URLs; the few distinct authorities
    are cleaned afterwards by ``normalize_hosts``."""
    return url.str.split_exact("://", 1).struct.field("field_1").str.split_exact("/", 1).struct.field("field_0")


def normalize_hosts(df: pl.DataFrame) -> pl.DataFrame:
    """Authority -> host: drop user@, :port, ?query/#fragment, lower-case, strip "www."; re-count."""
    host = (
        pl.col("host").str.replace(r"[?#].*$", "").str.replace(r"^.*@", "").str.replace(r":\d*$", "")
        .str.to_lowercase().str.strip_prefix("www.")
    )
    return (
        df.with_columns(host.alias("host"))
        .filter(pl.col("host").is_not_null() & (pl.col("host") != ""))
        .group_by("host")
        .agg(pl.col("n").sum())
    )


def score_columns(files: Sequence[ShardFile]) -> list[str]:
    """Numeric columns a stage declared (lang_score, ppl, quality_clf_score, ...), in first-seen order."""
    out: list[str] = []
    for f in files:
        for name, typ in f.columns.items():
            if name in CORE_COLUMNS or name in REJECT_COLUMNS or name in out:
                continue
            if typ in NUMERIC_TYPES:
                out.append(name)
    return out


def _groups(files: Sequence[ShardFile]) -> list[list[ShardFile]]:
    """Files with identical schemas, scanned together."""
    by: dict[tuple, list[ShardFile]] = {}
    for f in files:
        by.setdefault(f.schema_key(), []).append(f)
    return list(by.values())


# what reading a damaged file raises (a decoder may also panic); anything else is a bug and propagates
DATA_ERRORS = (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException)


def _collect(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    # one call: polars runs the (small-column) queries side by side on its thread pool
    return pl.collect_all(queries, engine="streaming")


BATCH_ROWS = 200_000  # rows of (keys, length) per batch folded into the tables: ~4 MB


def _fold_batches(stream: pl.LazyFrame, groupings: dict[str, tuple[str, ...]]) -> dict[str, pl.DataFrame]:
    """Aggregate a stream of (key columns, ``_n``, ``bucket``) into one bucket table per grouping."""
    aggs = [pl.len().cast(pl.UInt64).alias("docs"), *bucket_aggs(pl.col("_n"))]
    acc: dict[str, list[pl.DataFrame]] = {name: [] for name in groupings}
    for batch in stream.collect_batches(chunk_size=BATCH_ROWS, maintain_order=False, engine="streaming"):
        for name, keys in groupings.items():
            acc[name].append(batch.group_by(*keys, "bucket").agg(*aggs))
            if len(acc[name]) >= 16:  # merge as we go: the partial tables stay few and small
                acc[name] = [merge_buckets_keys(acc[name], list(keys))]
    return {name: merge_buckets_keys(acc[name], list(keys)) for name, keys in groupings.items()}


def fold_tables(
    files: Sequence[ShardFile],
    build_stream: Callable[[pl.LazyFrame, dict[str, str]], pl.LazyFrame],
    groupings: dict[str, tuple[str, ...]],
) -> tuple[dict[str, pl.DataFrame], list[FileError], list[ShardFile]]:
    """``_fold_batches`` over each schema group, isolating files that fail; returns (tables, errors, ok files)."""
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in groupings}
    errors: list[FileError] = []
    ok: list[ShardFile] = []

    def attempt(group: list[ShardFile]) -> bool:
        stream = build_stream(pl.scan_parquet([f.path for f in group]), group[0].columns)
        try:
            tables = _fold_batches(stream, groupings)
        except DATA_ERRORS as e:
            if len(group) == 1:
                errors.append(FileError(group[0].path, f"unreadable data ({_one_line(e)})"))
            return False
        for name, t in tables.items():
            parts[name].append(t)
        ok.extend(group)
        return True

    for group in _groups(files):
        if not attempt(group) and len(group) > 1:
            for f in group:  # find the broken file(s): one scan per file, the others still count
                attempt([f])
    return {name: merge_buckets_keys(parts[name], list(keys)) for name, keys in groupings.items()}, errors, ok


@dataclass
class ScanResult:
    frames: list[list[pl.DataFrame]] = field(default_factory=list)  # per query: one frame per file group
    errors: list[FileError] = field(default_factory=list)
    ok_files: list[ShardFile] = field(default_factory=list)


def run_queries(
    files: Sequence[ShardFile],
    build: Callable[[pl.LazyFrame, dict[str, str]], list[pl.LazyFrame]],
    n_queries: int,
) -> ScanResult:
    """Run ``build(scan, columns)``'s queries over each schema group; isolate files that fail."""
    res = ScanResult(frames=[[] for _ in range(n_queries)])
    for group in _groups(files):
        cols = group[0].columns
        queries = build(pl.scan_parquet([f.path for f in group]), cols)  # a bug here must not pass for a bad file
        try:
            outs = _collect(queries)
            for i, df in enumerate(outs):
                res.frames[i].append(df)
            res.ok_files.extend(group)
            continue
        except DATA_ERRORS as e:
            if len(group) == 1:
                res.errors.append(FileError(group[0].path, f"unreadable data ({_one_line(e)})"))
                continue
        for f in group:  # find the broken file(s): one scan per file, the others still count
            queries = build(pl.scan_parquet(f.path), cols)
            try:
                outs = _collect(queries)
            except DATA_ERRORS as e:
                res.errors.append(FileError(f.path, f"unreadable data ({_one_line(e)})"))
                continue
            for i, df in enumerate(outs):
                res.frames[i].append(df)
            res.ok_files.append(f)
    return res


@dataclass
class SetScan:
    """Merged aggregates of one file set (kept or rejected)."""

    files: list[ShardFile]
    keys: list[str]  # breakdowns present, e.g. ["source", "lang", "stage"]
    lengths: dict[str, pl.DataFrame]  # breakdown -> key columns..., bucket, docs, n, sum, min, max
    scores: dict[str, tuple[BucketSpec, pl.DataFrame]]  # column -> (spec, bucket table of non-null values)
    hosts: pl.DataFrame | None  # host, n
    cluster_hashes: pl.Series | None
    has_text: bool
    errors: list[FileError]

    def _with_errors(self, errors: list[FileError]) -> "SetScan":
        self.errors = errors + self.errors
        return self

    @property
    def documents(self) -> int:
        return int(self.lengths["all"]["docs"].sum()) if self.lengths["all"].height else 0


def numeric_ranges(files: Sequence[ShardFile], columns: list[str]) -> tuple[dict[str, tuple[Any, Any]], list[FileError]]:
    """(min, max) of each numeric column over every file that has it, in one streaming pass per group."""
    if not columns:
        return {}, []

    def build(lf: pl.LazyFrame, cols: dict[str, str]) -> list[pl.LazyFrame]:
        aggs = []
        for c in columns:
            if c in cols:
                x = pl.col(c).cast(pl.Float64).fill_nan(None)  # NaN would poison min/max
                aggs += [x.min().alias(f"{c}\x00min"), x.max().alias(f"{c}\x00max")]
        return [lf.select(aggs) if aggs else pl.LazyFrame({"_": [0]})]

    res = run_queries(files, build, 1)
    out: dict[str, list] = {}
    for df in res.frames[0]:
        for key, v in df.row(0, named=True).items():
            if "\x00" not in key or v is None:
                continue
            c, what = key.split("\x00")
            cur = out.setdefault(c, [None, None])
            i = 0 if what == "min" else 1
            cur[i] = v if cur[i] is None else (min if i == 0 else max)(cur[i], v)
    return {c: (v[0], v[1]) for c, v in out.items()}, res.errors


def scan_set(
    files: Sequence[ShardFile],
    specs: dict[str, BucketSpec],
    *,
    rejected: bool,
) -> SetScan:
    """Lengths, score buckets, URL hosts and dedup clusters of one file set, streamed."""
    keys = [k for k in GROUP_COLUMNS if any(k in f.columns for f in files)]
    if rejected:
        keys.append("stage")
    columns = [c for k in keys for c in BREAKDOWNS[k]]
    score_cols = list(specs)
    has_url = any("url" in f.columns for f in files)
    has_dup = rejected and any("duplicate_of" in f.columns for f in files)
    has_text = any("text" in f.columns for f in files)

    def build_stream(lf: pl.LazyFrame, cols: dict[str, str]) -> pl.LazyFrame:
        # absent columns are added as nulls with with_columns, which gives them the frame's rows (a
        # select of literals alone would be one row, whatever the file holds)
        absent = [pl.lit(None, pl.String).alias(k) for k in columns if k not in cols]
        if "text" not in cols:  # no text column: count documents only
            absent.append(pl.lit(None, pl.UInt32).alias("_n"))
        if absent:
            lf = lf.with_columns(absent)
        # low-cardinality keys are folded faster as categoricals; merged tables hold strings again
        key_exprs = [pl.col(k).cast(pl.String).cast(pl.Categorical) for k in columns]
        n = pl.col("text").str.len_bytes() if "text" in cols else pl.col("_n")
        return lf.select(*key_exprs, n.alias("_n")).with_columns(LENGTH_SPEC.expr(pl.col("_n")).alias("bucket"))

    lengths, len_errors, readable = fold_tables(files, build_stream, {k: BREAKDOWNS[k] for k in ["all", *keys]})

    def build(lf: pl.LazyFrame, cols: dict[str, str]) -> list[pl.LazyFrame]:
        qs = []
        for c in score_cols:
            if c in cols:
                q = lf.select(specs[c].expr(pl.col(c)).alias("bucket"), pl.col(c).cast(pl.Float64).fill_nan(None).alias("_v"))
                q = q.filter(pl.col("_v").is_not_null()).group_by("bucket").agg(*bucket_aggs(pl.col("_v")))
            else:
                q = pl.LazyFrame(schema={"bucket": pl.Int32, "n": pl.UInt64, "sum": pl.Float64, "min": pl.Float64, "max": pl.Float64})
            qs.append(q)
        if has_url:
            if "url" in cols:
                qs.append(lf.select(authority_expr(pl.col("url")).alias("host")).drop_nulls().group_by("host").agg(pl.len().cast(pl.UInt64).alias("n")))
            else:
                qs.append(pl.LazyFrame(schema={"host": pl.String, "n": pl.UInt64}))
        if has_dup:
            if "duplicate_of" in cols:
                qs.append(
                    lf.filter(pl.col("duplicate_of").is_not_null())
                    .select(pl.col("duplicate_of").hash(seed=0).alias("h"))
                    .unique()
                )
            else:
                qs.append(pl.LazyFrame(schema={"h": pl.UInt64}))
        return qs

    # the cheap columns, over the files whose text could be read (so every figure counts the same files)
    n_q = len(score_cols) + int(has_url) + int(has_dup)
    res = run_queries(readable, build, n_q) if n_q else ScanResult(ok_files=list(readable))
    if len(res.ok_files) < len(readable):  # a file broke in the second pass: drop it from the first too
        return scan_set([f for f in res.ok_files], specs, rejected=rejected)._with_errors(len_errors + res.errors)
    scores = {}
    for i, c in enumerate(score_cols):
        table = merge_buckets(res.frames[i], ["bucket"])
        scores[c] = (specs[c], table)
    pos = len(score_cols)
    hosts = None
    if has_url:
        frames = [f for f in res.frames[pos] if f.height]
        hosts = (
            normalize_hosts(pl.concat(frames)).sort(["n", "host"], descending=[True, False])
            if frames
            else pl.DataFrame(schema={"host": pl.String, "n": pl.UInt64})
        )
        pos += 1
    clusters = None
    if has_dup:
        frames = [f["h"] for f in res.frames[pos] if f.height]
        clusters = pl.concat(frames).unique() if frames else pl.Series("h", [], pl.UInt64)
    return SetScan(
        files=list(res.ok_files),
        keys=keys,
        lengths=lengths,
        scores=scores,
        hosts=hosts,
        cluster_hashes=clusters,
        has_text=has_text,
        errors=len_errors,
    )


def merge_buckets_keys(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """Merge length tables: like ``merge_buckets`` but also summing the document count ``docs``."""
    frames = [f.with_columns(pl.col(k).cast(pl.String) for k in keys) for f in frames if f is not None and f.height]
    if not frames:
        schema = {k: pl.String for k in keys} | {"bucket": pl.Int32, "docs": pl.UInt64, "n": pl.UInt64, "sum": pl.Float64, "min": pl.Float64, "max": pl.Float64}
        return pl.DataFrame(schema=schema)
    df = pl.concat(frames, how="diagonal_relaxed")
    return (
        df.group_by([*keys, "bucket"])
        .agg(pl.col("docs").sum(), pl.col("n").sum(), pl.col("sum").sum(), pl.col("min").min(), pl.col("max").max())
        .sort([*keys, "bucket"], nulls_last=True)
    )


def scan_tokens(files: Sequence[ShardFile], tokenizer_path: str, keys: list[str], batch_rows: int = 2048):
    """Exact token counts with a ``tokenizers`` JSON file, in the same per-breakdown tables as lengths.

    Streams record batches of the text (and key columns) with pyarrow and tokenizes each batch
    in Rust threads. Returns ({breakdown: table of tokens per document}, errors)."""
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    names = ["all", *keys]
    columns = [c for k in keys for c in BREAKDOWNS[k]]
    frames: dict[str, list[pl.DataFrame]] = {k: [] for k in names}
    errors = []
    for f in files:
        if "text" not in f.columns:
            continue
        try:
            pf = pq.ParquetFile(f.path)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=["text"] + [c for c in columns if c in f.columns]):
                texts = [t or "" for t in batch.column("text").to_pylist()]
                counts = [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]
                df = pl.from_arrow(batch.drop_columns(["text"])) if batch.num_columns > 1 else pl.DataFrame()
                df = df.with_columns(pl.Series("_t", counts, pl.UInt64))
                df = df.with_columns(pl.lit(None, pl.String).alias(c) for c in columns if c not in df.columns)
                df = df.with_columns(LENGTH_SPEC.expr(pl.col("_t")).alias("bucket"))
                for k in names:
                    frames[k].append(df.group_by(*BREAKDOWNS[k], "bucket").agg(pl.len().cast(pl.UInt64).alias("docs"), *bucket_aggs(pl.col("_t"))))
                    if len(frames[k]) > 64:  # keep the partial tables few: merge as we go
                        frames[k] = [merge_buckets_keys(frames[k], list(BREAKDOWNS[k]))]
        except Exception as e:
            errors.append(FileError(f.path, f"unreadable data while tokenizing ({_one_line(e)})"))
    return {k: merge_buckets_keys(frames[k], list(BREAKDOWNS[k])) for k in names}, errors


def bucket_specs(files: Sequence[ShardFile]) -> tuple[dict[str, BucketSpec], dict[str, tuple], list[FileError]]:
    """Bucket specs for every numeric stage column, chosen from its range over all files.

    The range comes from the footers' row-group statistics (r1data writes them) when every file
    has them; only the files that lack them are scanned, and only for those columns."""
    cols = score_columns(files)
    ranges: dict[str, tuple] = {}
    need_scan = [f for f in files if any(c in f.columns and c not in f.ranges for c in cols)]
    scanned, errors = numeric_ranges(need_scan, cols) if need_scan else ({}, [])
    for c in cols:
        lo = [f.ranges[c][0] for f in files if c in f.ranges and f.ranges[c][0] is not None]
        hi = [f.ranges[c][1] for f in files if c in f.ranges and f.ranges[c][1] is not None]
        if c in scanned:
            lo += [scanned[c][0]] if scanned[c][0] is not None else []
            hi += [scanned[c][1]] if scanned[c][1] is not None else []
        ranges[c] = (min(lo) if lo else None, max(hi) if hi else None)
    specs = {}
    for c in cols:
        vmin, vmax = ranges[c]
        integer = any(f.columns.get(c, "").startswith(("int", "uint")) for f in files)
        specs[c] = choose_spec(vmin, vmax, integer)
    return specs, ranges, errors
