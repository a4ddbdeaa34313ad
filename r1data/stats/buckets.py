"""Fixed-size summaries of a numeric column: counts in fine buckets, from which quantiles and histograms follow.

Exact quantiles need every value in memory (4 bytes a document per column); a stream of 100 M
documents would need 400 MB for the lengths alone. Instead each value falls into a fine bucket
and the scan keeps, per bucket, the count, the sum, the smallest and the largest value. The
table has at most a few thousand rows whatever the number of documents, merges by addition (so
files, runs and groups combine), and gives

- counts, sums, means, minima and maxima: exact;
- histograms on any coarser grid aligned with the buckets (octaves, tenths): exact;
- quantiles: the bucket holding the wanted rank is found exactly, and the value is interpolated
  between that bucket's smallest and largest value, so the error is below the bucket's width:
  ``log`` buckets are 1/64 of an octave (about 1.1 % of the value; lengths below ~90 are exact),
  ``UNIT`` buckets 0.001 wide on [0, 1]. A bucket holding one distinct value is exact.

Quantiles use the same definition as ``numpy.quantile(..., method="linear")`` (the value at rank
``q * (n - 1)``, interpolated between neighbours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import polars as pl

LOG_PER_OCTAVE = 64
UNIT_BUCKETS = 1000
ZERO_BUCKET = -(2**30)  # log scale: zeros (empty texts) get a bucket of their own
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)

Scale = Literal["log", "unit", "linear"]


def quantile_key(q: float) -> str:
    """0.5 -> "p50", 0.01 -> "p1", 0.999 -> "p99.9"."""
    v = round(q * 100, 4)
    return f"p{int(v)}" if v == int(v) else f"p{v:g}"


@dataclass(frozen=True)
class BucketSpec:
    """How values map to integer bucket ids.

    ``log``: non-negative values; id = floor(64 * log2(x)) for x > 0, ``ZERO_BUCKET`` for 0.
    ``unit``: values in [0, 1]; id = floor(1000 * x), 1.0 in the last bucket.
    ``linear``: 1000 equal buckets between ``lo`` and ``hi`` (any sign).
    """

    scale: Scale
    lo: float = 0.0
    hi: float = 1.0

    def expr(self, e: pl.Expr) -> pl.Expr:
        """The polars expression giving each value's bucket id (null stays null)."""
        if self.scale == "log":
            x = e.cast(pl.Float64)
            return pl.when(x > 0).then(x.log(2).mul(LOG_PER_OCTAVE).floor()).otherwise(pl.when(x.is_not_null()).then(ZERO_BUCKET)).cast(pl.Int32)
        if self.scale == "unit":
            return e.cast(pl.Float64).clip(0, 1).mul(UNIT_BUCKETS).floor().clip(upper_bound=UNIT_BUCKETS - 1).cast(pl.Int32)
        width = (self.hi - self.lo) / UNIT_BUCKETS or 1.0
        return ((e.cast(pl.Float64) - self.lo) / width).floor().clip(0, UNIT_BUCKETS - 1).cast(pl.Int32)

    def edges(self, bucket: int) -> tuple[float, float]:
        """Value range [lo, hi) of one bucket id."""
        if self.scale == "log":
            if bucket == ZERO_BUCKET:
                return 0.0, 0.0
            return 2 ** (bucket / LOG_PER_OCTAVE), 2 ** ((bucket + 1) / LOG_PER_OCTAVE)
        if self.scale == "unit":
            return bucket / UNIT_BUCKETS, (bucket + 1) / UNIT_BUCKETS
        width = (self.hi - self.lo) / UNIT_BUCKETS or 1.0
        return self.lo + bucket * width, self.lo + (bucket + 1) * width

    def to_json(self) -> dict:
        return {"scale": self.scale, "lo": self.lo, "hi": self.hi}


def choose_spec(vmin: float | None, vmax: float | None, integer: bool = False) -> BucketSpec:
    """Pick a bucket scale from a column's range: [0,1] scores -> unit, positive long tails -> log."""
    if vmin is None or vmax is None:
        return BucketSpec("unit")
    if vmin >= 0 and vmax <= 1 and not integer:
        return BucketSpec("unit")
    if vmin >= 0:
        return BucketSpec("log")
    return BucketSpec("linear", float(vmin), float(vmax))


def bucket_aggs(value: pl.Expr) -> list[pl.Expr]:
    """Aggregations kept per bucket (and per group): count, sum, min, max."""
    return [
        value.count().cast(pl.UInt64).alias("n"),
        value.cast(pl.Float64).sum().alias("sum"),
        value.cast(pl.Float64).min().alias("min"),
        value.cast(pl.Float64).max().alias("max"),
    ]


def merge_buckets(frames: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """Combine bucket tables (from several files or groups) with the same key columns."""
    frames = [f for f in frames if f is not None and f.height]
    if not frames:
        return pl.DataFrame()
    df = pl.concat(frames, how="diagonal_relaxed")
    return (
        df.group_by(keys, maintain_order=False)
        .agg(pl.col("n").sum(), pl.col("sum").sum(), pl.col("min").min(), pl.col("max").max())
        .sort(keys, nulls_last=True)
    )


@dataclass
class Distribution:
    """A merged bucket table for one column (optionally one group): summary, quantiles, histograms."""

    spec: BucketSpec
    bucket: list[int]
    n: list[int]
    sums: list[float]
    mins: list[float]
    maxs: list[float]

    @classmethod
    def from_frame(cls, spec: BucketSpec, df: pl.DataFrame) -> "Distribution":
        """``df`` has columns bucket, n, sum, min, max (several rows per bucket are merged)."""
        if df.height:
            df = df.group_by("bucket").agg(pl.col("n").sum(), pl.col("sum").sum(), pl.col("min").min(), pl.col("max").max())
            df = df.filter(pl.col("bucket").is_not_null() & (pl.col("n") > 0)).sort("bucket")
            return cls(spec, df["bucket"].to_list(), df["n"].to_list(), df["sum"].to_list(), df["min"].to_list(), df["max"].to_list())
        return cls(spec, [], [], [], [], [])

    @property
    def count(self) -> int:
        return int(sum(self.n))

    @property
    def total(self) -> float:
        return float(sum(self.sums))

    def quantile(self, q: float) -> float | None:
        """Approximate ``numpy.quantile(values, q)``; see the module docstring for the error bound."""
        total = self.count
        if not total:
            return None
        rank = q * (total - 1)
        lo_rank = math.floor(rank)
        frac = rank - lo_rank
        a = self._value_at(lo_rank)
        if frac == 0 or lo_rank + 1 >= total:
            return a
        return a + frac * (self._value_at(lo_rank + 1) - a)

    def _value_at(self, rank: int) -> float:
        """Estimate of the value of the ``rank``-th smallest element (0-based)."""
        seen = 0
        for n, lo, hi in zip(self.n, self.mins, self.maxs):
            if rank < seen + n:
                if n == 1 or hi == lo:
                    return lo
                # values spread evenly between the bucket's smallest and largest one
                return lo + (hi - lo) * (rank - seen) / (n - 1)
            seen += n
        return self.maxs[-1]

    def summary(self, quantiles: tuple[float, ...] = QUANTILES) -> dict:
        total = self.count
        return {
            "count": total,
            "mean": (self.total / total) if total else None,
            "min": self.mins[0] if total else None,
            "max": self.maxs[-1] if total else None,
            "quantiles": {quantile_key(q): self.quantile(q) for q in quantiles},
        }

    def histogram(self, bins: int = 20) -> list[dict]:
        """Coarse bins aligned with the buckets: octaves (log), or ``bins`` equal bins (unit/linear)."""
        if not self.count:
            return []
        if self.spec.scale == "log":
            # one bin per power of two: [1, 2), [2, 4), ... [256, 512): a readable log axis; zeros first
            per = LOG_PER_OCTAVE
            zeros = 0
            coarse: dict[int, int] = {}
            for b, n in zip(self.bucket, self.n):
                if b == ZERO_BUCKET:
                    zeros += n
                else:
                    coarse[b // per] = coarse.get(b // per, 0) + n
            out = [{"lo": 0.0, "hi": 0.0, "count": zeros}] if zeros else []
            if coarse:
                lo_o, hi_o = min(coarse), max(coarse)
                out += [{"lo": 2.0**o, "hi": 2.0 ** (o + 1), "count": coarse.get(o, 0)} for o in range(lo_o, hi_o + 1)]
            return out
        per = UNIT_BUCKETS // bins
        counts = [0] * bins
        for b, n in zip(self.bucket, self.n):
            counts[min(b // per, bins - 1)] += n
        out = []
        for i, c in enumerate(counts):
            lo, _ = self.spec.edges(i * per)
            _, hi = self.spec.edges((i + 1) * per - 1)
            out.append({"lo": lo, "hi": hi, "count": c})
        if self.spec.scale == "unit":
            return out
        # linear: trim empty bins at both ends
        first = next(i for i, b in enumerate(out) if b["count"])
        last = max(i for i, b in enumerate(out) if b["count"])
        return out[first : last + 1]
