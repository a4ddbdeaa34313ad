"""One self-contained HTML file: the stats tables and plots as inline SVG (matplotlib, Agg backend: no display needed).

    write_report(collect_stats("out/web"), "report.html")
    write_compare_report(compare_stats("out/a", "out/b"), "diff.html")

Nothing is fetched when the file is opened: styles are inline, plots are ``<svg>`` elements, so
the file can be mailed, attached to an issue or opened offline.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from r1data.stats.render import bin_label, bytes_bin_label, human_bytes, human_count, num, pct

COLORS = ("#3b75af", "#e1812c", "#3a923a", "#c03d3e", "#9372b2", "#845b53")
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; } .cards { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 9em; }
.card b { display: block; font-size: 1.4em; } .card span { color: #666; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.6em 0; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f6f6f6; }
tr.reason td { color: #777; font-size: 0.95em; } tr.reason td:first-child { padding-left: 2em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .plot svg { max-width: 100%; height: auto; }
.warn { color: #a35b00; } .err { color: #b00020; }
"""


def check_available() -> None:
    """Raise a one-line ``ConfigError`` when matplotlib is missing (call before any work)."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        from r1data.errors import ConfigError

        raise ConfigError("--report needs matplotlib: pip install 'r1data[stats]'")


def _pyplot():
    check_available()
    import matplotlib

    matplotlib.use("Agg")  # no display: works on servers and in CI
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _svg(fig) -> str:
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inside HTML


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def plot_funnel(series: list[tuple[str, dict]]) -> str | None:
    """Documents remaining after each stage (horizontal bars), one bar per series."""
    stages = list(dict.fromkeys(r["stage"] for _, s in series for r in s["funnel"]))
    if not stages:
        return None
    plt = _pyplot()
    labels = ["read", *stages]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(labels) * max(1, len(series) * 0.7) + 0.8))
    h = 0.8 / len(series)
    for i, (name, s) in enumerate(series):
        by = {r["stage"]: r for r in s["funnel"]}
        vals, remaining = [s["totals"]["read"]], s["totals"]["read"]
        for st in stages:
            remaining = by[st]["remaining"] if st in by else remaining
            vals.append(remaining)
        ys = [j + i * h for j in range(len(labels))]
        ax.barh(ys, vals, height=h, color=COLORS[i % len(COLORS)], label=name)
        for y, v, st in zip(ys, vals, ["read", *stages]):
            dropped = by[st]["dropped"] if st in by else 0
            made = (by[st].get("generated") or 0) if st in by else 0
            note = f"{v:,}" + (f"  (+{made:,})" if made else "") + (f"  (−{dropped:,})" if dropped else "")
            ax.text(v, y, " " + note, va="center", fontsize=7.5)
    ax.set_yticks([j + h * (len(series) - 1) / 2 for j in range(len(labels))], labels)
    ax.invert_yaxis()
    ax.set_xlabel("documents remaining after the stage")
    ax.set_xlim(0, max(s["totals"]["read"] for _, s in series) * 1.3 or 1)
    if len(series) > 1:
        ax.legend(loc="lower right", frameon=False)
    ax.set_title("filter funnel")
    return _svg(fig)


def plot_histogram(title: str, xlabel: str, series: list[tuple[str, dict | None]], byte_bins: bool = False) -> str | None:
    """Bars of a histogram (``{"histogram", "scale"}`` dicts), series side by side on shared bins."""
    series = [(n, d) for n, d in series if d and d.get("histogram")]
    if not series:
        return None
    plt = _pyplot()
    scale = series[0][1]["scale"]
    bins = sorted({(b["lo"], b["hi"]) for _, d in series for b in d["histogram"]})
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    w = 0.8 / len(series)
    for i, (name, d) in enumerate(series):
        counts = {(b["lo"], b["hi"]): b["count"] for b in d["histogram"]}
        total = sum(counts.values()) or 1
        xs = [j + i * w for j in range(len(bins))]
        ax.bar(xs, [100 * counts.get(b, 0) / total for b in bins], width=w, color=COLORS[i % len(COLORS)], label=f"{name} ({total:,})", align="edge")
    step = max(1, len(bins) // 10)
    ticks = list(range(0, len(bins), step))
    label = (lambda lo, hi: bytes_bin_label(lo, hi)) if byte_bins and scale == "log" else (lambda lo, hi: bin_label({"lo": lo, "hi": hi}, scale))
    ax.set_xticks([t + 0.4 for t in ticks], [label(*bins[t]) for t in ticks], rotation=40, ha="right", fontsize=7)
    ax.set_ylabel("% of documents")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7.5)
    return _svg(fig)


def plot_shares(title: str, series: list[tuple[str, list[dict] | None]], top: int = 12) -> str | None:
    """Horizontal bars of the share of documents per value (language, domain, source, URL host)."""
    series = [(n, rows) for n, rows in series if rows]
    if not series:
        return None
    plt = _pyplot()
    values: list = []
    for _, rows in series:
        for r in rows:
            if r["value"] not in values:
                values.append(r["value"])
    values = values[:top]
    fig, ax = plt.subplots(figsize=(5.2, 0.3 * len(values) * max(1, len(series) * 0.7) + 0.9))
    h = 0.8 / len(series)
    for i, (name, rows) in enumerate(series):
        share = {r["value"]: r["share"] for r in rows}
        ys = [j + i * h for j in range(len(values))]
        ax.barh(ys, [100 * (share.get(v) or 0) for v in values], height=h, color=COLORS[i % len(COLORS)], label=name)
    ax.set_yticks([j + h * (len(series) - 1) / 2 for j in range(len(values))], ["(none)" if v is None else str(v) for v in values])
    ax.invert_yaxis()
    ax.set_xlabel("% of documents")
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=7.5)
    return _svg(fig)


def _by(s: dict, key: str, which: str = "kept") -> list[dict] | None:
    rows = ((s.get(which) or {}).get("by") or {}).get(key)
    return [{"value": r["value"], "share": r["share_documents"]} for r in rows] if rows else None


def _hosts(s: dict) -> list[dict] | None:
    h = (s.get("kept") or {}).get("url_hosts")
    return [{"value": r["host"], "share": r["share"]} for r in h["top"]] if h and h["top"] else None


def _plots(series_kept: list[tuple[str, dict]], funnel_series: list[tuple[str, dict]], length_series, score_series) -> list[str]:
    plots = [plot_funnel(funnel_series)]
    plots.append(plot_histogram("document length", "UTF-8 bytes (log bins)", length_series, byte_bins=True))
    names = list(dict.fromkeys(c for _, d in score_series for c in d))
    for col in names:
        plots.append(plot_histogram(col, col, [(n, d.get(col)) for n, d in score_series]))
    for key, title in (("lang", "language share (kept)"), ("domain", "domain share (kept)"), ("source", "source share (kept)")):
        plots.append(plot_shares(title, [(n, _by(s, key)) for n, s in series_kept]))
    plots.append(plot_shares("top URL domains (kept)", [(n, _hosts(s)) for n, s in series_kept]))
    return [p for p in plots if p]


def _align(cell: Any) -> str:
    """Numbers (and sizes, percentages) right-aligned by the stylesheet, words to the left."""
    text = str(cell)
    return "" if not text or text[0] in "0123456789+-−<" else ' style="text-align:left"'


def _table(headers: list[str], rows: list[list[Any]], row_classes: list[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td{_align(c)}>{_e(c)}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def _funnel_html(s: dict) -> str:
    gen = bool(s["totals"].get("generated"))

    def cells(first, entered, generated, *rest):
        return [first, entered, *([generated] if gen else []), *rest]

    rows, classes = [cells("read", "", "", "", "", "", f"{s['totals']['read']:,}", "", "")], [""]
    for st in s["funnel"]:
        made = st.get("generated") or 0
        rows.append(cells(st["stage"], f"{st['entered']:,}", f"+{made:,}" if made else "", f"{st['dropped']:,}", pct(st["share_of_entered"]),
                          pct(st["share_of_read"]), f"{st['remaining']:,}", human_bytes(st["dropped_bytes"]) if st["dropped"] else "",
                          "" if st["seconds"] is None else f"{st['seconds']:.2f} s"))
        classes.append("")
        for r in st["reasons"]:
            rows.append(cells(r["reason"], "", "", f"{r['documents']:,}", "", pct(r["share_of_read"]), "", human_bytes(r["bytes"]), ""))
            classes.append("reason")
    rows.append(cells("kept", "", "", "", "", pct(s["totals"]["keep_rate"]), f"{s['totals']['kept']:,}", "", ""))
    classes.append("")
    headers = cells("stage / reason", "entered", "generated", "dropped", "% of entered", "% of read", "remaining", "dropped bytes", "time")
    return _table(headers, rows, classes)


def _dist_html(part: dict) -> str:
    dists = []
    if part.get("length_bytes"):
        dists.append(("length (bytes)", part["length_bytes"]))
    if part.get("length_tokens"):
        dists.append(("length (tokens)", part["length_tokens"]))
    dists += list((part.get("scores") or {}).items())
    qs = ("p1", "p5", "p25", "p50", "p75", "p95", "p99")
    rows = [[n, f"{d['count']:,}", num(d["min"]), *[num(d["quantiles"].get(q)) for q in qs], num(d["max"]), num(d["mean"])] for n, d in dists]
    return _table(["column", "count", "min", *qs, "max", "mean"], rows) if rows else ""


def _breakdowns_html(s: dict) -> str:
    out = []
    for key in ("source", "lang", "domain"):
        rows = ((s.get("kept") or {}).get("by") or {}).get(key)
        if not rows:
            continue
        out.append(f"<h3>kept documents by {key}</h3>")
        out.append(_table([key, "documents", "% docs", "bytes", "% bytes", "tokens", "median length"], [
            ["(none)" if r["value"] is None else r["value"], f"{r['documents']:,}", pct(r["share_documents"]), human_bytes(r["bytes"]),
             pct(r["share_bytes"]), human_count(r["tokens"]), f"{num(r['median_bytes'])} B"] for r in rows[:30]
        ]))
    return "".join(out)


def _notes_html(s: dict) -> str:
    lines = [f'<p class="err">unreadable: {_e(e["path"])}: {_e(e["error"])}</p>' for e in s["files"]["errors"]]
    lines += [f'<p class="warn">warning: {_e(w)}</p>' for w in s["warnings"]]
    lines += [f'<p class="warn">input error: {_e(e.get("uri"))}: {_e(e.get("error"))}</p>' for e in s.get("input_errors") or []]
    return "".join(lines)


def _page(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"


def _cards(items: list[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in items) + "</div>"


def render_report(s: dict) -> str:
    """The HTML text of a one-run report."""
    t = s["totals"]
    tok = "tokens" if s["tokens"]["method"] == "tokenizer" else f"tokens (≈ bytes/{s['tokens']['bytes_per_token']})"
    meta = " · ".join(x for x in (s.get("pipeline") and f"pipeline {s['pipeline']}", s.get("config_hash") and f"config {s['config_hash'][:12]}",
                                   s.get("finished") and f"finished {s['finished']}") if x)
    body = [f"<h1>r1data stats: {_e(s['target'])}</h1><div class='meta'>{_e(meta)}</div>"]
    body.append(_cards([("read", f"{t['read']:,}"), ("kept", f"{t['kept']:,}"), ("keep rate", pct(t["keep_rate"])),
                        ("kept text", human_bytes(t["kept_bytes"])), (tok, human_count(t["kept_tokens"])), ("rejected", f"{t['rejected']:,}")]))
    body.append(_notes_html(s))
    score_series = [("kept", (s.get("kept") or {}).get("scores") or {})]
    length_series = [("kept", (s.get("kept") or {}).get("length_bytes"))]
    if s.get("rejected"):
        score_series.append(("rejected", s["rejected"].get("scores") or {}))
        length_series.append(("rejected", s["rejected"].get("length_bytes")))
    plots = _plots([("kept", s)], [("run", s)] if s["funnel"] else [], length_series, score_series)
    body.append("<h2>plots</h2><div class='plots'>" + "".join(f"<div class='plot'>{p}</div>" for p in plots) + "</div>")
    if s["funnel"]:
        body.append("<h2>filter funnel</h2>" + _funnel_html(s))
    if s.get("dedup"):
        d = s["dedup"]
        body.append(f"<h2>deduplication</h2><p>{d['duplicates']:,} duplicates ({pct(d['share_of_read'])} of read)"
                    + (f", {d['clusters']:,} clusters" if d.get("clusters") is not None else "") + "</p>")
        body.append(_table(["stage", "reason", "documents", "% of entered", "% of read"], [
            [r["stage"], r["reason"] or "(none found)", f"{r['documents']:,}", pct(r["share_of_entered"]), pct(r["share_of_read"])] for r in d["by_stage"]
        ]))
    body.append("<h2>breakdowns</h2>" + _breakdowns_html(s))
    body.append("<h2>lengths and scores (kept)</h2>" + _dist_html(s.get("kept") or {}))
    if s.get("rejected"):
        body.append("<h2>lengths and scores (rejected)</h2>" + _dist_html(s["rejected"]))
    body.append(f"<p class='meta'>r1data stats schema {s['r1data_stats']}; quantiles from 1/64-octave buckets (≤ 1.1 % off) and 0.001-wide score buckets.</p>")
    return _page(f"r1data stats: {s['target']}", "".join(body))


def render_compare_report(c: dict) -> str:
    """The HTML text of a two-run comparison: the same plots with A and B side by side."""
    a, b = c["a"], c["b"]
    body = [f"<h1>r1data stats: A vs B</h1><div class='meta'>A = {_e(a['target'])} · B = {_e(b['target'])}</div>"]
    from r1data.stats.compare import fmt_delta, fmt_total

    rows = [[k.replace("_", " "), fmt_total(k, d["a"]), fmt_total(k, d["b"]), fmt_delta(k, d)] for k, d in c["totals"].items()]
    body.append("<h2>totals</h2>" + _table(["", "A", "B", "B − A"], rows))
    if c.get("documents"):
        d = c["documents"]
        body.append(f"<p>kept documents by id: {d['kept_in_both']:,} in both, {d['kept_only_in_a']:,} only in A, {d['kept_only_in_b']:,} only in B</p>")
    if c["config_changes"]:
        body.append("<h2>config changes</h2>" + _table(["key", "A", "B"], [[x["key"], x["a"], x["b"]] for x in c["config_changes"]]))
    body.append(_notes_html(a) + _notes_html(b))
    series = [("A", a), ("B", b)]
    plots = _plots(
        series,
        [x for x in series if x[1]["funnel"]],
        [("A", (a.get("kept") or {}).get("length_bytes")), ("B", (b.get("kept") or {}).get("length_bytes"))],
        [("A", (a.get("kept") or {}).get("scores") or {}), ("B", (b.get("kept") or {}).get("scores") or {})],
    )
    body.append("<h2>plots (kept documents)</h2><div class='plots'>" + "".join(f"<div class='plot'>{p}</div>" for p in plots) + "</div>")
    frows = []
    classes = []
    for r in c["funnel"]:
        d = r["dropped"]
        frows.append([r["stage"], f"{d['a']:,}", f"{d['b']:,}", f"{d['delta']:+,}", pct(r["share_of_entered"]["a"]), pct(r["share_of_entered"]["b"])])
        classes.append("")
        for x in r["reasons"]:
            frows.append([x["reason"], f"{x['a']:,}", f"{x['b']:,}", f"{x['delta']:+,}", "", ""])
            classes.append("reason")
    if frows:
        body.append("<h2>funnel: documents dropped</h2>" + _table(["stage / reason", "A", "B", "B − A", "A % of entered", "B % of entered"], frows, classes))
    qs = ("p5", "p25", "p50", "p75", "p95")
    drows = [[n, *[f"{num(d['quantiles'].get(q, {}).get('a'))} → {num(d['quantiles'].get(q, {}).get('b'))}" for q in qs]] for n, d in c["distributions"].items()]
    if drows:
        body.append("<h2>distributions (kept, A → B)</h2>" + _table(["column", *qs], drows))
    return _page("r1data stats: A vs B", "".join(body))


def write_report(s: dict, path: str | Path) -> Path:
    """Write the one-run report; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_report(s), encoding="utf-8")
    return p


def write_compare_report(c: dict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_compare_report(c), encoding="utf-8")
    return p
