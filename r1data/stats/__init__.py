"""Inspect r1data output: counts, bytes, tokens, breakdowns, length and score distributions, the filter funnel.

    from r1data.stats import collect_stats, compare_stats, write_report
    s = collect_stats("out/web")              # a run directory, a glob or Parquet files
    c = compare_stats("out/web-0.6", "out/web-0.7")
    write_report(s, "report.html")

Everything streams through polars lazy scans: memory depends on the number of groups and
buckets, not on the number of documents (see ``scan.py``, ``buckets.py``).
"""

from __future__ import annotations


def collect_stats(*args, **kwargs):
    from r1data.stats.profile import collect_stats as f

    return f(*args, **kwargs)


def compare_stats(*args, **kwargs):
    from r1data.stats.compare import compare_stats as f

    return f(*args, **kwargs)


def write_report(*args, **kwargs):
    from r1data.stats.report import write_report as f

    return f(*args, **kwargs)
