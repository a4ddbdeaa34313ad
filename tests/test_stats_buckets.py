"""Bucket summaries: quantiles within the documented error of numpy's, exact counts, merging by addition."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1data.stats.buckets import LOG_PER_OCTAVE, QUANTILES, BucketSpec, Distribution, bucket_aggs, choose_spec, merge_buckets

LOG_REL_ERROR = 2 ** (1 / LOG_PER_OCTAVE) - 1  # one bucket's width, relative to its lower edge


def table(values, spec: BucketSpec) -> pl.DataFrame:
    df = pl.DataFrame({"v": values}, schema={"v": pl.Float64})
    return df.group_by(spec.expr(pl.col("v")).alias("bucket")).agg(*bucket_aggs(pl.col("v")))


def dist(values, spec: BucketSpec) -> Distribution:
    return Distribution.from_frame(spec, table(values, spec))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=400))
def test_log_quantiles_within_one_bucket_of_numpy(values):
    d = dist(values, BucketSpec("log"))
    arr = np.array(values, dtype=float)
    for q in QUANTILES:
        want = float(np.quantile(arr, q))
        got = d.quantile(q)
        assert abs(got - want) <= LOG_REL_ERROR * want + 1e-9, (q, got, want)
    assert d.count == len(values)
    assert d.total == pytest.approx(arr.sum())
    assert d.summary()["min"] == arr.min() and d.summary()["max"] == arr.max()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=400))
def test_unit_quantiles_within_a_thousandth(values):
    d = dist(values, BucketSpec("unit"))
    for q in QUANTILES:
        assert abs(d.quantile(q) - float(np.quantile(values, q))) <= 1e-3 + 1e-9


def test_small_integers_are_exact():
    values = list(range(0, 90)) * 3 + [0, 0, 7]
    d = dist(values, BucketSpec("log"))
    for q in (0.1, 0.33, 0.5, 0.9):
        assert d.quantile(q) == pytest.approx(float(np.quantile(values, q)))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=200),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=200),
)
def test_merging_tables_equals_one_table_of_both(a, b):
    spec = BucketSpec("log")
    merged = Distribution.from_frame(spec, merge_buckets([table(a, spec), table(b, spec)], ["bucket"]))
    whole = dist(a + b, spec)
    assert merged.count == whole.count
    assert merged.histogram() == whole.histogram()
    for q in QUANTILES:
        assert merged.quantile(q) == pytest.approx(whole.quantile(q))


def test_histogram_counts_and_octave_edges():
    values = [0, 0, 1, 2, 3, 255, 256, 511, 512, 100_000]
    h = dist(values, BucketSpec("log")).histogram()
    assert sum(b["count"] for b in h) == len(values)
    assert h[0] == {"lo": 0.0, "hi": 0.0, "count": 2}  # empty texts get their own bin
    by_lo = {b["lo"]: b["count"] for b in h}
    assert by_lo[1.0] == 1 and by_lo[2.0] == 2 and by_lo[128.0] == 1 and by_lo[256.0] == 2 and by_lo[512.0] == 1
    unit = dist([0.0, 0.04, 0.05, 0.5, 1.0], BucketSpec("unit")).histogram()
    assert len(unit) == 20 and [b["count"] for b in unit][:2] == [2, 1] and unit[-1]["count"] == 1


def test_choose_spec():
    assert choose_spec(0.0, 1.0).scale == "unit"
    assert choose_spec(12.0, 90_000.0).scale == "log"
    assert choose_spec(0.0, 1.0, integer=True).scale == "log"
    lin = choose_spec(-3.0, 5.0)
    assert lin.scale == "linear" and (lin.lo, lin.hi) == (-3.0, 5.0)
    d = dist([-3.0, -1.0, 0.0, 2.5, 5.0], lin)
    assert d.quantile(0.5) == pytest.approx(0.0, abs=8 / 1000)


def test_empty_distribution():
    d = Distribution.from_frame(BucketSpec("log"), pl.DataFrame(schema={"bucket": pl.Int32, "n": pl.UInt64, "sum": pl.Float64, "min": pl.Float64, "max": pl.Float64}))
    assert d.count == 0 and d.quantile(0.5) is None and d.histogram() == []


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=300), st.sampled_from(["web", "books", "code"]), st.sampled_from(["en", "de", None])),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=1, max_value=4),
)
def test_counts_and_bytes_survive_any_split_into_files(tmp_path_factory, docs, n_files):
    """Whatever the documents and however they are spread over files, the stats equal a direct count."""
    from collections import Counter

    from datatrove.data import Document

    from r1data.io.schema import shard_schema
    from r1data.io.shards import ShardWriter
    from r1data.stats.profile import collect_stats

    out = tmp_path_factory.mktemp("prop")
    for f in range(n_files):
        w = ShardWriter(out / f"part-{f:05d}.parquet", shard_schema({"lang": "string"}), row_group_rows=7)
        for i, (text, source, lang) in enumerate(docs[f::n_files]):
            meta = {"source": source, "input_file": "x", "input_index": 0, "record_index": i, "lang": lang}
            w.write(Document(text=text, id=f"{f}-{i}", metadata=meta))
        w.close()
    s = collect_stats(str(out))
    assert s["totals"]["kept"] == len(docs)
    assert s["totals"]["kept_bytes"] == sum(len(t.encode()) for t, _, _ in docs)
    assert {r["value"]: r["documents"] for r in s["kept"]["by"]["source"]} == Counter(src for _, src, _ in docs)
    assert {r["value"]: r["documents"] for r in s["kept"]["by"]["lang"]} == Counter(lang for _, _, lang in docs)
    lengths = sorted(len(t.encode()) for t, _, _ in docs)
    assert s["kept"]["length_bytes"]["min"] == lengths[0] and s["kept"]["length_bytes"]["max"] == lengths[-1]
    assert sum(b["count"] for b in s["kept"]["length_bytes"]["histogram"]) == len(docs)
