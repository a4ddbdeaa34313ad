"""The streaming scans behind ``r1data stats``: polars lazy queries over Parquet files, merged per file set.

Every query selects only the columns it needs, reduces them to a small aggregate table inside
polars' streaming engine (``collect(engine="streaming")``) and never materialises text: text is
only ever turned into its byte length (``str.len_bytes``) inside the stream. What comes back is
bounded by the number of groups, not of documents:

- ``lengths``: per (source, lang, domain[, stage, reason]) group and length bucket: documents,
  bytes, min and max length (see ``buckets.py``);
- ``ranges`` then ``scores``: min/max/nulls of every numeric stage column, then its bucket table;
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
from r1data.stats.sources import FileError, ShardFile, _one_line

GROUP_COLUMNS = ("source", "lang", "domain")
REJECT_GROUP_COLUMNS = ("stage", "reason")
DEDUP_REASONS = ("exact_duplicate", "near_duplicate")
LENGTH_SPEC = BucketSpec("log")
NUMERIC_TYPES = ("float", "double", "halffloat", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
# scheme://[user@]host[:port]/... -> host, lower-cased, without a leading "www."
_HOST_RE = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?([^/?#:]+)"


def host_expr(url: pl.Expr) -> pl.Expr:
    return url.str.extract(_HOST_RE, 1).str.to_lowercase().str.strip_prefix("www.")


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


def _collect(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    return pl.collect_all(queries, engine="streaming")


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
        try:
            outs = _collect(build(pl.scan_parquet([f.path for f in group]), cols))
            for i, df in enumerate(outs):
                res.frames[i].append(df)
            res.ok_files.extend(group)
            continue
        except Exception as e:
            if len(group) == 1:
                res.errors.append(FileError(group[0].path, f"unreadable data ({_one_line(e)})"))
                continue
        for f in group:  # find the broken file(s): one scan per file, the others still count
            try:
                outs = _collect(build(pl.scan_parquet(f.path), cols))
            except Exception as e:
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
    keys: list[str]
    lengths: pl.DataFrame  # keys..., bucket, n, sum, min, max
    scores: dict[str, tuple[BucketSpec, pl.DataFrame]]  # column -> (spec, bucket table of non-null values)
    hosts: pl.DataFrame | None  # host, n
    cluster_hashes: pl.Series | None
    has_text: bool
    errors: list[FileError]

    @property
    def documents(self) -> int:
        return int(self.lengths["n"].sum()) if self.lengths.height else sum(f.rows for f in self.files)


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
        keys += list(REJECT_GROUP_COLUMNS)
    score_cols = list(specs)
    has_url = any("url" in f.columns for f in files)
    has_dup = rejected and any("duplicate_of" in f.columns for f in files)
    has_text = any("text" in f.columns for f in files)

    def build(lf: pl.LazyFrame, cols: dict[str, str]) -> list[pl.LazyFrame]:
        key_exprs = [pl.col(k).cast(pl.String) if k in cols else pl.lit(None, pl.String).alias(k) for k in keys]
        if "text" in cols:
            n = pl.col("text").str.len_bytes()
        else:  # no text column: count documents only
            n = pl.lit(None, pl.UInt32)
        lengths = (
            lf.select(*key_exprs, n.alias("_n"))
            .group_by(*keys, LENGTH_SPEC.expr(pl.col("_n")).alias("bucket"))
            .agg(pl.len().cast(pl.UInt64).alias("docs"), *bucket_aggs(pl.col("_n")))
        )
        qs = [lengths]
        for c in score_cols:
            if c in cols:
                q = lf.select(specs[c].expr(pl.col(c)).alias("bucket"), pl.col(c).cast(pl.Float64).fill_nan(None).alias("_v"))
                q = q.filter(pl.col("_v").is_not_null()).group_by("bucket").agg(*bucket_aggs(pl.col("_v")))
            else:
                q = pl.LazyFrame(schema={"bucket": pl.Int32, "n": pl.UInt64, "sum": pl.Float64, "min": pl.Float64, "max": pl.Float64})
            qs.append(q)
        if has_url:
            if "url" in cols:
                qs.append(lf.select(host_expr(pl.col("url")).alias("host")).drop_nulls().group_by("host").agg(pl.len().cast(pl.UInt64).alias("n")))
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

    n_q = 1 + len(score_cols) + int(has_url) + int(has_dup)
    res = run_queries(files, build, n_q)
    lengths = merge_buckets_keys(res.frames[0], keys)
    scores = {}
    for i, c in enumerate(score_cols):
        table = merge_buckets(res.frames[1 + i], ["bucket"])
        scores[c] = (specs[c], table)
    pos = 1 + len(score_cols)
    hosts = None
    if has_url:
        frames = [f for f in res.frames[pos] if f.height]
        hosts = (
            pl.concat(frames).group_by("host").agg(pl.col("n").sum()).sort(["n", "host"], descending=[True, False])
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
        errors=res.errors,
    )


def merge_buckets_keys(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """Merge length tables: like ``merge_buckets`` but also summing the document count ``docs``."""
    frames = [f for f in frames if f is not None and f.height]
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
    """Exact token counts with a ``tokenizers`` JSON file: per key group and per length bucket.

    Streams record batches of the text (and group columns) with pyarrow and tokenizes each batch
    in Rust threads; returns (table keys..., bucket, docs, n, sum, min, max of tokens per document,
    errors)."""
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    frames, errors = [], []
    for f in files:
        if "text" not in f.columns:
            continue
        cols = ["text"] + [k for k in keys if k in f.columns]
        try:
            pf = pq.ParquetFile(f.path)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
                texts = batch.column("text").to_pylist()
                counts = [len(e.ids) for e in tok.encode_batch([t or "" for t in texts], add_special_tokens=False)]
                df = pl.from_arrow(batch.drop_columns(["text"])) if len(cols) > 1 else pl.DataFrame()
                df = df.with_columns(pl.Series("_t", counts, pl.UInt64)) if df.width else pl.DataFrame({"_t": pl.Series(counts, dtype=pl.UInt64)})
                for k in keys:
                    if k not in df.columns:
                        df = df.with_columns(pl.lit(None, pl.String).alias(k))
                frames.append(
                    df.group_by(*keys, LENGTH_SPEC.expr(pl.col("_t")).alias("bucket")).agg(
                        pl.len().cast(pl.UInt64).alias("docs"), *bucket_aggs(pl.col("_t"))
                    )
                )
                if len(frames) > 64:  # keep the partial tables few: merge as we go
                    frames = [merge_buckets_keys(frames, keys)]
        except Exception as e:
            errors.append(FileError(f.path, f"unreadable data while tokenizing ({_one_line(e)})"))
    return merge_buckets_keys(frames, keys), errors


def bucket_specs(files: Sequence[ShardFile]) -> tuple[dict[str, BucketSpec], dict[str, tuple], list[FileError]]:
    """Bucket specs for every numeric stage column, chosen from its range over all files."""
    cols = score_columns(files)
    ranges, errors = numeric_ranges(files, cols)
    specs = {}
    for c in cols:
        vmin, vmax = ranges.get(c, (None, None))
        integer = any(f.columns.get(c, "").startswith(("int", "uint")) for f in files)
        specs[c] = choose_spec(vmin, vmax, integer)
    return specs, ranges, errors
