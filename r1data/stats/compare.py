"""``compare_stats(A, B)``: what changed between two runs — config, counts, funnel, shares, distributions, documents.

    c = compare_stats("out/web-t0.6", "out/web-t0.7")
    c["totals"]["kept"]          # {"a": 812, "b": 640, "delta": -172, "ratio": 0.788}
    c["config_changes"]          # [{"key": "stages.quality_filter.threshold", "a": 0.6, "b": 0.7}]
    c["documents"]               # kept in both / only in A / only in B (by id)
"""

from __future__ import annotations

import csv
import io
from typing import Any

import polars as pl

from r1data.stats.profile import collect_stats
from r1data.stats.render import human_bytes, human_count, num, pct
from r1data.stats.sources import resolve_target

COMPARE_SCHEMA_VERSION = 1
TOTALS = ("read", "generated", "kept", "rejected", "keep_rate", "kept_bytes", "kept_tokens", "rejected_bytes")
IGNORED_CONFIG_KEYS = ("output.path",)  # always differs between two runs; not a change of recipe


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(d, list) and d and all(isinstance(x, dict) and ("name" in x or "stage" in x) for x in d):
        for x in d:  # stages: keyed by label, so a stage inserted in B does not shift every later one
            out.update(_flatten({k: v for k, v in x.items() if k != "name"}, f"{prefix}{x.get('name') or x.get('stage')}."))
    else:
        out[prefix.rstrip(".")] = d
    return out


def config_changes(a: dict | None, b: dict | None) -> list[dict[str, Any]]:
    """Differences between two manifests' resolved configs (and knobs), as flattened keys."""
    if not a or not b:
        return []
    fa = _flatten({"config": a.get("config") or {}, "knobs": {k: v for k, v in (a.get("knobs") or {}).items() if k != "applied_to"}})
    fb = _flatten({"config": b.get("config") or {}, "knobs": {k: v for k, v in (b.get("knobs") or {}).items() if k != "applied_to"}})
    out, seen = [], set()
    for key in list(dict.fromkeys([*fa, *fb])):
        short = key.removeprefix("config.")
        if short in IGNORED_CONFIG_KEYS or short in seen:  # the resolved config may repeat the knobs
            continue
        seen.add(short)
        va, vb = fa.get(key, "(absent)"), fb.get(key, "(absent)")
        if va != vb:
            out.append({"key": short, "a": va, "b": vb})
    return out


def _delta(a, b) -> dict[str, Any]:
    if a is None or b is None:
        return {"a": a, "b": b, "delta": None, "ratio": None}
    return {"a": a, "b": b, "delta": b - a, "ratio": (b / a) if a else None}


def _funnel(sa: dict, sb: dict) -> list[dict[str, Any]]:
    fa = {r["stage"]: r for r in sa["funnel"]}
    fb = {r["stage"]: r for r in sb["funnel"]}
    order = list(dict.fromkeys([*fa, *fb]))
    rows = []
    for stage in order:
        ra, rb = fa.get(stage), fb.get(stage)
        reasons_a = {r["reason"]: r["documents"] for r in (ra or {}).get("reasons", [])}
        reasons_b = {r["reason"]: r["documents"] for r in (rb or {}).get("reasons", [])}
        reasons = []
        for reason in dict.fromkeys([*reasons_a, *reasons_b]):
            x, y = reasons_a.get(reason, 0), reasons_b.get(reason, 0)
            reasons.append({"reason": reason, "a": x, "b": y, "delta": y - x})
        rows.append(
            {
                "stage": stage,
                "in_a": ra is not None,
                "in_b": rb is not None,
                "dropped": _delta(ra["dropped"] if ra else 0, rb["dropped"] if rb else 0),
                "share_of_entered": {"a": ra["share_of_entered"] if ra else None, "b": rb["share_of_entered"] if rb else None},
                "remaining": {"a": ra["remaining"] if ra else None, "b": rb["remaining"] if rb else None},
                "reasons": reasons,
            }
        )
    return rows


def _distributions(sa: dict, sb: dict, which: str = "kept") -> dict[str, Any]:
    pa_, pb = sa.get(which) or {}, sb.get(which) or {}
    out = {}
    names = ["length_bytes", "length_tokens"] + list(dict.fromkeys([*(pa_.get("scores") or {}), *(pb.get("scores") or {})]))
    for name in names:
        da = pa_.get(name) if name.startswith("length") else (pa_.get("scores") or {}).get(name)
        db = pb.get(name) if name.startswith("length") else (pb.get("scores") or {}).get(name)
        if not da and not db:
            continue
        qa = (da or {}).get("quantiles") or {}
        qb = (db or {}).get("quantiles") or {}
        out[name] = {
            "a": da,
            "b": db,
            "mean": _delta((da or {}).get("mean"), (db or {}).get("mean")),
            "quantiles": {k: _delta(qa.get(k), qb.get(k)) for k in dict.fromkeys([*qa, *qb])},
        }
    return out


def _shares(sa: dict, sb: dict, key: str) -> list[dict[str, Any]]:
    ra = {r["value"]: r for r in ((sa.get("kept") or {}).get("by") or {}).get(key) or []}
    rb = {r["value"]: r for r in ((sb.get("kept") or {}).get("by") or {}).get(key) or []}
    rows = []
    for v in dict.fromkeys([*ra, *rb]):
        a, b = ra.get(v), rb.get(v)
        rows.append(
            {
                "value": v,
                "documents": _delta(a["documents"] if a else 0, b["documents"] if b else 0),
                "share_documents": _delta(a["share_documents"] if a else 0.0, b["share_documents"] if b else 0.0),
            }
        )
    return sorted(rows, key=lambda r: -max(r["documents"]["a"], r["documents"]["b"]))


def document_overlap(a: str, b: str) -> dict[str, int] | None:
    """Kept in both runs, only in A, only in B — by document id (64-bit hashes, streamed)."""
    ta, tb = resolve_target(a), resolve_target(b)
    if not ta.kept or not tb.kept or not all("id" in f.columns for f in ta.kept + tb.kept):
        return None

    def ids(files) -> pl.LazyFrame:
        return pl.scan_parquet([f.path for f in files]).select(pl.col("id").hash(seed=0).alias("h")).unique()

    try:
        ia, ib = ids(ta.kept), ids(tb.kept)
        both, na, nb = pl.collect_all(
            [ia.join(ib, on="h", how="inner").select(pl.len()), ia.select(pl.len()), ib.select(pl.len())], engine="streaming"
        )
    except pl.exceptions.PolarsError:
        return None
    both, na, nb = both.item(), na.item(), nb.item()
    return {"kept_in_both": both, "kept_only_in_a": na - both, "kept_only_in_b": nb - both}


def compare_stats(a: str, b: str, *, tokenizer: str | None = None) -> dict[str, Any]:
    """Stats of both runs and their differences; schema in docs/stats.md (``r1data_stats_compare``)."""
    sa = collect_stats(a, tokenizer=tokenizer)
    sb = collect_stats(b, tokenizer=tokenizer)
    ma = resolve_target(a).manifest if sa.get("run_dir") else None
    mb = resolve_target(b).manifest if sb.get("run_dir") else None
    keys = [k for k in ("source", "lang", "domain") if ((sa.get("kept") or {}).get("by") or {}).get(k) or ((sb.get("kept") or {}).get("by") or {}).get(k)]
    return {
        "r1data_stats_compare": COMPARE_SCHEMA_VERSION,
        "a": sa,
        "b": sb,
        "config_changes": config_changes(ma, mb),
        "totals": {k: _delta(sa["totals"][k], sb["totals"][k]) for k in TOTALS},
        "documents": document_overlap(a, b),
        "funnel": _funnel(sa, sb),
        "distributions": _distributions(sa, sb),
        "shares": {k: _shares(sa, sb, k) for k in keys},
    }


def fmt_total(key: str, v) -> str:
    if v is None:
        return "-"
    if key == "keep_rate":
        return pct(v)
    if key.endswith("bytes"):
        return human_bytes(v)
    if key.endswith("tokens"):
        return human_count(v)
    return f"{v:,}"


def fmt_delta(key: str, d: dict) -> str:
    if d["delta"] is None:
        return "-"
    if key == "keep_rate":
        return f"{100 * d['delta']:+.1f} pt"
    sign = "+" if d["delta"] >= 0 else "-"
    body = fmt_total(key, abs(d["delta"]))
    rel = f" ({100 * (d['ratio'] - 1):+.1f} %)" if d.get("ratio") else ""
    return f"{sign}{body}{rel}"


def print_compare(c: dict, console, top: int = 10) -> None:
    """The table view of a comparison."""
    from rich.table import Table

    console.print(f"[bold]A[/] {c['a']['target']}   [bold]B[/] {c['b']['target']}", highlight=False)
    if c["config_changes"]:
        t = Table(title="config changes", title_justify="left")
        for col in ("key", "A", "B"):
            t.add_column(col)
        for ch in c["config_changes"]:
            t.add_row(ch["key"], str(ch["a"]), str(ch["b"]))
        console.print(t)
    elif c["a"].get("config_hash") and c["a"].get("config_hash") == c["b"].get("config_hash"):
        console.print("same config (hash " + c["a"]["config_hash"][:12] + ")")
    t = Table(title="totals", title_justify="left")
    for col in ("", "A", "B", "B − A"):
        t.add_column(col, justify="left" if not col else "right")
    for k, d in c["totals"].items():
        t.add_row(k.replace("_", " "), fmt_total(k, d["a"]), fmt_total(k, d["b"]), fmt_delta(k, d))
    console.print(t)
    if c.get("documents"):
        d = c["documents"]
        console.print(f"kept documents by id: {d['kept_in_both']:,} in both, {d['kept_only_in_a']:,} only in A, {d['kept_only_in_b']:,} only in B")
    if c["funnel"]:
        t = Table(title="funnel: documents dropped", title_justify="left")
        for col in ("stage / reason", "A", "B", "B − A", "A % of entered", "B % of entered"):
            t.add_column(col, justify="left" if col.startswith("stage") else "right")
        for r in c["funnel"]:
            d = r["dropped"]
            t.add_row(r["stage"], f"{d['a']:,}", f"{d['b']:,}", f"{d['delta']:+,}", pct(r["share_of_entered"]["a"]), pct(r["share_of_entered"]["b"]),
                      style=None if (d["a"] or d["b"]) else "dim")
            for x in r["reasons"]:
                t.add_row(f"  └ {x['reason']}", f"{x['a']:,}", f"{x['b']:,}", f"{x['delta']:+,}", "", "", style="dim")
        console.print(t)
    if c["distributions"]:
        t = Table(title="kept documents: distributions (A → B)", title_justify="left")
        t.add_column("column")
        qs = ("p5", "p25", "p50", "p75", "p95")
        for q in ("mean", *qs):
            t.add_column(q, justify="right")
        for name, d in c["distributions"].items():
            cells = [f"{num(d['mean']['a'])} → {num(d['mean']['b'])}"]
            cells += [f"{num(d['quantiles'].get(q, {}).get('a'))} → {num(d['quantiles'].get(q, {}).get('b'))}" for q in qs]
            t.add_row(name, *cells)
        console.print(t)
    for key, rows in c["shares"].items():
        if not rows:
            continue
        t = Table(title=f"kept documents by {key}", title_justify="left")
        for col in (key, "A docs", "B docs", "A share", "B share", "Δ share"):
            t.add_column(col, justify="left" if col == key else "right")
        for r in rows[:top]:
            d, s = r["documents"], r["share_documents"]
            t.add_row(str(r["value"]), f"{d['a']:,}", f"{d['b']:,}", pct(s["a"]), pct(s["b"]), f"{100 * (s['delta'] or 0):+.1f} pt")
        console.print(t)


def compare_csv(c: dict) -> str:
    """Long-format CSV: section, key, a, b, delta."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "key", "a", "b", "delta"])
    for k, d in c["totals"].items():
        w.writerow(["totals", k, d["a"], d["b"], d["delta"]])
    for ch in c["config_changes"]:
        w.writerow(["config", ch["key"], ch["a"], ch["b"], ""])
    for r in c["funnel"]:
        w.writerow(["funnel", r["stage"], r["dropped"]["a"], r["dropped"]["b"], r["dropped"]["delta"]])
        for x in r["reasons"]:
            w.writerow(["funnel", f"{r['stage']}/{x['reason']}", x["a"], x["b"], x["delta"]])
    for name, d in c["distributions"].items():
        w.writerow(["distribution", f"{name}/mean", d["mean"]["a"], d["mean"]["b"], d["mean"]["delta"]])
        for q, v in d["quantiles"].items():
            w.writerow(["distribution", f"{name}/{q}", v["a"], v["b"], v["delta"]])
    for key, rows in c["shares"].items():
        for r in rows:
            w.writerow([f"share_{key}", r["value"], r["share_documents"]["a"], r["share_documents"]["b"], r["share_documents"]["delta"]])
    return buf.getvalue()
