"""Text renderings of a stats dict: rich tables for a terminal, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

BAR = "█"
SPARKS = " ▁▂▃▄▅▆▇█"
HIST_WIDTH = 32
SHOWN_QUANTILES = ("p5", "p25", "p50", "p75", "p95")


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_count(n: float | None) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit, div, floor in (("B", 1e9, 1e9), ("M", 1e6, 1e6), ("k", 1e3, 1e4)):
        if abs(n) >= floor:
            return f"{n / div:.1f} {unit}" if n / div < 100 else f"{n / div:,.0f} {unit}"
    return f"{n:,.0f}"


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000 or float(x).is_integer():
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3f}"


def seconds(x: float | None) -> str:
    if x is None:
        return ""
    if x < 0.01:
        return "<0.01 s"
    return f"{x:.2f} s" if x < 10 else f"{x:,.0f} s"


def sparkline(hist: list[dict]) -> str:
    """A histogram in one line of block characters (empty bins are blanks)."""
    top = max((b["count"] for b in hist), default=0)
    if not top:
        return ""
    return "".join(SPARKS[0] if not b["count"] else SPARKS[max(1, round(b["count"] / top * (len(SPARKS) - 1)))] for b in hist)


def bytes_bin_label(lo: float, hi: float) -> str:
    """A power-of-two byte range: "0 B", "256–511 B", "1–2 KiB", "64–128 MiB"."""
    if hi == 0:
        return "0 B"
    if hi <= 1024:
        return f"{lo:,.0f}–{hi - 1:,.0f} B" if hi - lo > 1 else f"{lo:,.0f} B"
    for unit, div in (("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30)):
        if hi <= div * 1024 or unit == "GiB":
            return f"{lo / div:g}–{hi / div:g} {unit}"
    return f"{lo:g}–{hi:g} B"


def bin_label(b: dict, scale: str) -> str:
    if scale == "log":
        if b["hi"] == 0:
            return "0"
        lo, hi = b["lo"], b["hi"]
        if lo >= 1 and float(lo).is_integer():
            return f"{human_count(lo)}–{human_count(hi - 1)}" if hi - lo > 1 else human_count(lo)
        return f"{lo:.3g}–{hi:.3g}"
    return f"{b['lo']:.2f}–{b['hi']:.2f}"


def histogram_table(hist: list[dict], scale: str, title: str, unit: str = "") -> Table:
    """Horizontal bars; ``unit="B"`` labels log bins as byte ranges."""
    t = Table(title=title, title_justify="left", box=None, show_header=False, pad_edge=False)
    t.add_column("bin", justify="right", style="dim")
    t.add_column("bar")
    t.add_column("n", justify="right")
    top = max((b["count"] for b in hist), default=0) or 1
    total = sum(b["count"] for b in hist) or 1
    for b in hist:
        width = b["count"] / top * HIST_WIDTH
        bar = BAR * int(width) + ("▏" if b["count"] and width < 1 else "")
        label = bytes_bin_label(b["lo"], b["hi"]) if unit == "B" and scale == "log" else bin_label(b, scale) + unit
        t.add_row(label, Text(bar, style="cyan"), f"{b['count']:,}  {100 * b['count'] / total:4.1f} %")
    return t


def _title(s: dict) -> str:
    bits = [s["target"]]
    if s.get("pipeline"):
        bits.append(f"pipeline {s['pipeline']}")
    if s.get("config_hash"):
        bits.append(f"config {s['config_hash'][:12]}")
    if s.get("finished"):
        bits.append(f"finished {s['finished']}")
    return " · ".join(bits)


def overview(s: dict) -> Group:
    t = s["totals"]
    f = s["files"]
    tok = "tokens" if s["tokens"]["method"] == "tokenizer" else f"tokens (≈ bytes/{s['tokens']['bytes_per_token']})"
    lines = [
        Text(_title(s), style="bold"),
        Text.assemble(
            ("read ", "dim"), f"{t['read']:,}", ("  kept ", "dim"), (f"{t['kept']:,}", "bold green"), f" ({pct(t['keep_rate'])})",
            ("  rejected ", "dim"), f"{t['rejected']:,}",
        ),
        Text.assemble(
            ("kept text ", "dim"), human_bytes(t["kept_bytes"]), ("  ", ""), human_count(t["kept_tokens"]), (f" {tok}", "dim"),
            ("  files ", "dim"), f"{f['kept']} shards ({human_bytes(f['kept_bytes_on_disk'])})",
            f", {f['rejected']} rejected ({human_bytes(f['rejected_bytes_on_disk'])})",
        ),
    ]
    return Group(*lines)


def funnel_table(s: dict, reasons: bool = True) -> Table | None:
    if not s["funnel"] and not s["rejected"]:
        return None
    t = Table(title="filter funnel (pipeline order)", title_justify="left")
    gen = bool(s["totals"].get("generated"))  # augmentation: a column for the documents stages created
    names = ["stage / reason", "entered"] + (["generated"] if gen else []) + [
        "dropped", "% of entered", "% of read", "remaining", "dropped bytes", "time"]
    for name in names:
        t.add_column(name, justify="left" if name == "stage / reason" else "right")

    def row(*cells, generated="", style=None):
        cells = list(cells)
        if gen:
            cells.insert(2, generated)
        t.add_row(*cells, style=style)

    read = s["totals"]["read"]
    row("read", "", "", "", "", f"{read:,}", "", "", style="bold")
    for st in s["funnel"]:
        label = st["stage"] + ("" if st["in_pipeline"] else " (not in manifest)")
        made = st.get("generated") or 0
        row(
            label, f"{st['entered']:,}", f"{st['dropped']:,}", pct(st["share_of_entered"]), pct(st["share_of_read"]),
            f"{st['remaining']:,}", human_bytes(st["dropped_bytes"]) if st["dropped"] else "", seconds(st["seconds"]),
            generated=f"+{made:,}" if made else "", style=None if (st["dropped"] or made) else "dim",
        )
        if reasons:
            for r in st["reasons"]:
                row(Text(f"  └ {r['reason']}", style="dim"), "", f"{r['documents']:,}", "", pct(r["share_of_read"]), "",
                    human_bytes(r["bytes"]), "")
    row("kept", "", "", "", pct(s["totals"]["keep_rate"]), f"{s['totals']['kept']:,}", "", "", style="bold green")
    return t


def breakdown_table(s: dict, key: str, which: str = "kept", limit: int | None = 12) -> Table | None:
    part = s.get(which) or {}
    rows = (part.get("by") or {}).get(key)
    if not rows:
        return None
    tok = "tokens" if s["tokens"]["method"] == "tokenizer" else "≈tokens"
    t = Table(title=f"{which} documents by {key}", title_justify="left")
    for name in (key, "documents", "% docs", "bytes", "% bytes", tok, "median length"):
        t.add_column(name, justify="left" if name == key else "right")
    shown = rows if limit is None else rows[:limit]
    for r in shown:
        t.add_row(
            "(none)" if r["value"] is None else str(r["value"]), f"{r['documents']:,}", pct(r["share_documents"]),
            human_bytes(r["bytes"]), pct(r["share_bytes"]), human_count(r["tokens"]), f"{num(r['median_bytes'])} B",
        )
    if len(rows) > len(shown):
        rest = rows[len(shown):]
        t.add_row(f"… {len(rest)} more", f"{sum(r['documents'] for r in rest):,}", "", human_bytes(sum(r["bytes"] for r in rest)), "", "", "", style="dim")
    return t


def distribution_table(s: dict, which: str = "kept") -> Table | None:
    part = s.get(which) or {}
    dists = []
    if part.get("length_bytes"):
        dists.append(("length (bytes)", part["length_bytes"], None))
    if part.get("length_tokens"):
        dists.append(("length (tokens)", part["length_tokens"], None))
    for col, d in (part.get("scores") or {}).items():
        dists.append((col, d, d.get("nulls")))
    if not dists:
        return None
    t = Table(title=f"{which} documents: lengths and scores", title_justify="left")
    t.add_column("column")
    for name in ("count", "nulls", "min", *SHOWN_QUANTILES, "max", "mean"):
        t.add_column(name, justify="right")
    t.add_column("histogram", no_wrap=True)
    for name, d, nulls in dists:
        q = d["quantiles"]
        axis = "[0,1]" if d["scale"] == "unit" else "log₂" if d["scale"] == "log" else "min–max"
        t.add_row(name, f"{d['count']:,}", "" if nulls is None else f"{nulls:,}", num(d["min"]),
                  *[num(q.get(k)) for k in SHOWN_QUANTILES], num(d["max"]), num(d["mean"]),
                  Text.assemble((sparkline(d["histogram"]), "cyan"), (f" {axis}", "dim")))
    return t


def dedup_table(s: dict) -> Table | None:
    d = s.get("dedup")
    if not d:
        return None
    t = Table(title=f"deduplication: {d['duplicates']:,} duplicates ({pct(d['share_of_read'])} of read)"
              + (f", {d['clusters']:,} clusters" if d.get("clusters") is not None else ""), title_justify="left")
    for name in ("stage", "reason", "documents", "% of entered", "% of read"):
        t.add_column(name, justify="left" if name in ("stage", "reason") else "right")
    for r in d["by_stage"]:
        t.add_row(r["stage"], r["reason"] or "(no duplicates found)", f"{r['documents']:,}", pct(r["share_of_entered"]), pct(r["share_of_read"]))
    return t


def contamination_table(s: dict) -> Table | None:
    rows = s.get("contamination")
    if rows is None:
        return None
    total = sum(r["documents"] for r in rows)
    t = Table(title=f"benchmark contamination (decontaminate): {total:,} documents", title_justify="left")
    for name in ("benchmark", "documents", "dropped", "tagged, kept"):
        t.add_column(name, justify="left" if name == "benchmark" else "right")
    for r in rows:
        t.add_row(r["benchmark"], f"{r['documents']:,}", f"{r['dropped']:,}", f"{r['tagged_kept']:,}")
    if not rows:
        t.add_row("(none found)", "0", "0", "0")
    return t


def hosts_table(s: dict, which: str = "kept", limit: int = 10) -> Table | None:
    h = (s.get(which) or {}).get("url_hosts")
    if not h or not h["top"]:
        return None
    t = Table(title=f"top URL domains ({which}; {h['distinct']:,} distinct)", title_justify="left")
    t.add_column("domain")
    t.add_column("documents", justify="right")
    t.add_column("share", justify="right")
    for r in h["top"][:limit]:
        t.add_row(r["host"], f"{r['documents']:,}", pct(r["share"]))
    return t


def print_stats(s: dict, console: Console, by: str | None = None, top: int = 10) -> None:
    """The table view: overview and warnings, funnel, breakdowns, distributions, dedup, URL domains."""
    console.print(overview(s))
    _print_notes(s, console)  # an unfinished run or an unreadable file changes how to read every table below
    if by == "stage":
        if not s["rejected"]:
            console.print("[yellow]no rejected documents found: there is no funnel to break down by stage[/]")
        else:
            console.print(funnel_table(s))
        return
    ft = funnel_table(s)
    if ft is not None:
        console.print(ft)
    keys = [by] if by else ["source", "lang", "domain"]
    for key in keys:
        bt = breakdown_table(s, key, limit=None if by else top)
        if bt is not None:
            console.print(bt)
        elif by:
            console.print(f"[yellow]no `{key}` column in the kept shards: nothing to break down by {key}[/]")
    dt = distribution_table(s)
    if dt is not None:
        console.print(dt)
    lb = (s.get("kept") or {}).get("length_bytes")
    if lb and lb["histogram"]:
        console.print(histogram_table(lb["histogram"], "log", "kept documents: length histogram (bytes)", "B"))
    for table in (dedup_table(s), contamination_table(s), hosts_table(s, limit=top)):
        if table is not None:
            console.print(table)


def _print_notes(s: dict, console: Console) -> None:
    for e in s.get("input_errors") or []:
        console.print(f"[yellow]input error[/] {e.get('uri')}: {e.get('error')}", markup=True, highlight=False)
    for e in s["files"]["errors"]:
        console.print(f"[red]unreadable[/] {e['path']}: {e['error']}", highlight=False)
    for w in s["warnings"]:
        console.print(f"[yellow]warning[/] {w}", highlight=False)


CSV_COLUMNS = {
    "breakdown": ["set", "key", "value", "documents", "bytes", "tokens", "share_documents", "share_bytes", "median_bytes"],
    "stage": ["stage", "reason", "entered", "documents", "bytes", "share_of_entered", "share_of_read", "seconds"],
}


def stats_csv(s: dict, by: str | None = None) -> str:
    """One table as CSV: the breakdown by ``by`` (default source) of kept and rejected documents, or the funnel."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if by == "stage":
        w.writerow(CSV_COLUMNS["stage"])
        w.writerow(["read", "", "", s["totals"]["read"], "", "", "", ""])
        for st in s["funnel"]:
            w.writerow([st["stage"], "", st["entered"], st["dropped"], st["dropped_bytes"], st["share_of_entered"], st["share_of_read"], st["seconds"]])
            for r in st["reasons"]:
                w.writerow([st["stage"], r["reason"], "", r["documents"], r["bytes"], "", r["share_of_read"], ""])
        return buf.getvalue()
    key = by or "source"
    w.writerow(CSV_COLUMNS["breakdown"])
    for which in ("kept", "rejected"):
        for r in ((s.get(which) or {}).get("by") or {}).get(key) or []:
            w.writerow([which, key, r["value"], r["documents"], r["bytes"], r["tokens"], r["share_documents"], r["share_bytes"], r["median_bytes"]])
    return buf.getvalue()
