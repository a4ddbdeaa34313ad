"""The end-to-end report: ``report.json`` (every number) and ``index.html`` (the same, with plots)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from r1data.repro.spec import ReproSpec
from r1data.repro.steps import StepResult


def _metrics(run_dir: Path) -> tuple[list[dict], list[dict]]:
    from r1data.train.metrics import read_metrics

    if not (run_dir / "metrics.jsonl").is_file():
        return [], []
    return read_metrics(run_dir)


def _smooth(xs: list[float], k: int = 5) -> list[float]:
    out, acc = [], []
    for x in xs:
        acc.append(x)
        if len(acc) > k:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _spread(xs: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None with one value)."""
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def eval_sets(results: dict[str, StepResult]) -> dict[str, Any]:
    """Per evaluation set: each side's loss (mean over seeds), spread, bits per byte, and the difference.

    ``exceeds_2se``: |raw - processed| > 2 standard errors of the difference of the two means
    (sqrt(sd_p^2/n_p + sd_r^2/n_r)); None with one seed per side (no spread to compare with)."""
    runs: dict[str, dict[str, list[dict]]] = {}
    for r in results.values():
        if not r.name.startswith("eval:"):
            continue
        tag = r.name.split(":", 1)[1]
        variant = tag.split("-seed")[0]
        for name, res in (r.info.get("sets") or {}).items():
            runs.setdefault(name, {}).setdefault(variant, []).append(res | {"run": tag})
    table: dict[str, Any] = {}
    for name, sides in runs.items():
        entry: dict[str, Any] = {"bits_per_byte": {}, "runs": {}}
        for variant, rs in sides.items():
            rs = [x for x in rs if x.get("loss") is not None]
            if not rs:
                continue
            mean, sd = _spread([x["loss"] for x in rs])
            bmean, bsd = _spread([x["bits_per_byte"] for x in rs])
            entry[variant] = mean
            entry[f"{variant}_std"] = sd
            entry["bits_per_byte"][variant] = bmean
            entry["bits_per_byte"][f"{variant}_std"] = bsd
            entry["runs"][variant] = [{"run": x["run"], "loss": x["loss"], "bits_per_byte": x["bits_per_byte"]} for x in rs]
            entry["tokens"] = rs[0]["tokens"]
            entry["bytes"] = rs[0]["bytes"]
            entry["seeds"] = min(entry.get("seeds", len(rs)), len(rs))
        if not entry["runs"]:
            continue  # too small to score (under one window)
        if "processed" in entry and "raw" in entry:
            d = entry["raw"] - entry["processed"]
            entry["difference_raw_minus_processed"] = d
            entry["bits_per_byte"]["difference_raw_minus_processed"] = entry["bits_per_byte"]["raw"] - entry["bits_per_byte"]["processed"]
            sp, sr = entry["processed_std"], entry["raw_std"]
            if sp is not None and sr is not None:
                se = math.sqrt(sp**2 / len(entry["runs"]["processed"]) + sr**2 / len(entry["runs"]["raw"]))
                entry["standard_error"] = se
                entry["exceeds_2se"] = abs(d) > 2 * se
            else:
                entry["standard_error"] = None
                entry["exceeds_2se"] = None
        table[name] = entry
    order = ["heldout"] + sorted(n for n in table if n.startswith("heldout:")) + ["neutral"]
    return {n: table[n] for n in order + sorted(set(table) - set(order)) if n in table}


def collect(spec: ReproSpec, results: dict[str, StepResult]) -> dict[str, Any]:
    """Every figure the report shows, as plain data."""
    from r1data.run.manifest import package_versions

    sources = {}
    for name in spec.sources:
        entry = {}
        for variant, prefix in (("processed", "source:"), ("raw", "raw:")):
            r = results.get(prefix + name)
            if r is not None:
                c = r.info.get("counts", {})
                entry[variant] = {
                    "read": c.get("read"), "generated": c.get("generated", 0), "kept": c.get("kept"), "rejected": c.get("rejected"),
                    "dropped_by_stage": c.get("dropped_by_stage", {}), "config_hash": r.info.get("config_hash"), "dir": str(r.out),
                }
        sources[name] = entry
    mixes = {v: results[f"mix:{v}"].info for v in ("processed", "raw") if f"mix:{v}" in results}
    training = {}
    for r in results.values():
        if not r.name.startswith("train:"):
            continue
        variant = r.name.split(":", 1)[1]
        train, evals = _metrics(r.out)
        final = evals[-1] if evals else {}
        training[variant] = {
            "dir": str(r.out),
            "steps": r.info.get("step"),
            "tokens": r.info.get("tokens"),
            "seconds": r.info.get("seconds"),
            "params": r.info.get("params"),
            "final_eval_loss": final.get("eval_loss"),
            "final_eval_bpb": final.get("eval_bpb"),
            "final_train_loss": train[-1]["loss"] if train else None,
            "curve": {
                "step": [x["step"] for x in train],
                "loss": [x["loss"] for x in train],
                "eval_step": [x["step"] for x in evals],
                "eval_loss": [x["eval_loss"] for x in evals],
                "eval_bpb": [x["eval_bpb"] for x in evals],
                "expert_load_cv": [x.get("expert_load_cv") for x in train],
            },
            "checkpoint_sha256": r.info.get("final_checkpoint_sha256"),
        }
    ablation = None
    if "processed" in training and "raw" in training:
        p, q = training["processed"], training["raw"]
        if p["final_eval_loss"] is not None and q["final_eval_loss"] is not None:
            ablation = {
                "heldout_loss_raw": q["final_eval_loss"],
                "heldout_loss_processed": p["final_eval_loss"],
                "difference_raw_minus_processed": q["final_eval_loss"] - p["final_eval_loss"],
                "heldout_bpb_raw": q["final_eval_bpb"],
                "heldout_bpb_processed": p["final_eval_bpb"],
                "same_budget_tokens": p["tokens"] == q["tokens"],
                "tokens": p["tokens"],
            }
    chain = [
        {"step": r.name, "out": str(r.out), "key": r.key, "fingerprint": r.fingerprint, "seconds": r.seconds, "reused": r.reused}
        for r in results.values()
    ]
    heldout = results.get("heldout")
    tok = results.get("tokenizer")
    return {
        "r1data_repro_report": 1,
        "name": spec.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "sources": sources,
        "mixture": mixes,
        "heldout": heldout.info if heldout else None,
        "tokenizer": (tok.info.get("manifest") if tok else None),
        "tokens": {r.name.split(":", 1)[1]: r.info.get("tokens") for r in results.values() if r.name.startswith("tokens:")},
        "training": training,
        "ablation": ablation,
        "eval_sets": eval_sets(results),
        "seeds": spec.seeds,
        "chain": chain,
        "versions": package_versions(),
    }


def _plots(data: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pngs = {}
    tr = data["training"]
    if tr:
        fig, ax = plt.subplots(figsize=(7.5, 4))
        colors = {"processed": "tab:blue", "raw": "tab:orange"}
        for v, t in tr.items():
            if "-seed" in v:
                continue  # one curve per side: the first seed's
            c = t["curve"]
            if c["loss"]:
                ax.plot(c["step"], _smooth(c["loss"]), color=colors[v], alpha=0.45, label=f"{v}: train loss (smoothed)")
            if c["eval_loss"]:
                ax.plot(c["eval_step"], c["eval_loss"], "o-", color=colors[v], label=f"{v}: held-out loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.set_title("same model, same budget: processed vs raw text")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        pngs["loss"] = _png(fig)
        plt.close(fig)
        p = tr.get("processed") or next(iter(tr.values()))
        cvs = [x for x in p["curve"]["expert_load_cv"] if x]
        if cvs:
            fig, ax = plt.subplots(figsize=(7.5, 3.5))
            steps = [s for s, x in zip(p["curve"]["step"], p["curve"]["expert_load_cv"]) if x]
            for layer in range(len(cvs[0])):
                ax.plot(steps, [x[layer] for x in cvs], label=f"layer {layer}")
            ax.set_xlabel("step")
            ax.set_ylabel("expert load CV (std/mean)")
            ax.set_title("expert load over time (processed run)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, ncol=4)
            pngs["experts"] = _png(fig)
            plt.close(fig)
    src = data["sources"]
    names = [n for n in src if "processed" in src[n]]
    if names:
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        kept = [src[n]["processed"]["kept"] or 0 for n in names]
        rej = [src[n]["processed"]["rejected"] or 0 for n in names]
        ax.barh(names, kept, color="tab:green", label="kept")
        ax.barh(names, rej, left=kept, color="tab:red", alpha=0.6, label="rejected")
        ax.set_xlabel("documents (read + generated)")
        ax.set_title("funnel per source (processed recipes)")
        ax.legend(fontsize=8)
        pngs["funnel"] = _png(fig)
        plt.close(fig)
    mix = data["mixture"].get("processed")
    if mix:
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        ns = list(mix["plan"]["sources"])
        target = [mix["plan"]["sources"][n]["share"] for n in ns]
        actual = [mix["actual"].get(n, {}).get("share", 0) for n in ns]
        x = range(len(ns))
        ax.bar([i - 0.2 for i in x], target, width=0.4, label="target share")
        ax.bar([i + 0.2 for i in x], actual, width=0.4, label="mixture share")
        ax.set_xticks(list(x), ns)
        ax.set_ylabel("share of text bytes")
        ax.set_title("mixture (processed)")
        ax.legend(fontsize=8)
        pngs["mixture"] = _png(fig)
        plt.close(fig)
    return pngs


def _fmt(x: Any, nd: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{nd}f}" if math.isfinite(x) else str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return html.escape(str(x))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(spec: ReproSpec, results: dict[str, StepResult], out: Path, *, preset: str | None, recipe_path: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    data = collect(spec, results) | {"preset": preset, "recipe": recipe_path}
    (out / "report.json").write_text(json.dumps(data, indent=1, default=str))
    pngs = _plots(data)
    for name, b64 in pngs.items():
        (out / f"{name}.png").write_bytes(base64.b64decode(b64))

    def img(name: str) -> str:
        return f'<img src="data:image/png;base64,{pngs[name]}" alt="{name}">' if name in pngs else ""

    parts = [f"<h1>r1data repro: {html.escape(spec.name)}</h1>",
             f"<p>{html.escape(spec.description)}<br>recipe {html.escape(recipe_path)}, preset {html.escape(str(preset))}, "
             f"created {data['created']}</p>"]
    ab = data["ablation"]
    if ab:
        parts.append("<h2>Ablation: raw vs processed text, same model and budget</h2>")
        parts.append(_table(["", "held-out loss (nats/token)", "held-out bits/byte"], [
            ["raw extracted text", ab["heldout_loss_raw"], ab["heldout_bpb_raw"]],
            ["filtered + deduplicated + augmented", ab["heldout_loss_processed"], ab["heldout_bpb_processed"]],
            ["difference (raw − processed)", ab["difference_raw_minus_processed"], (ab["heldout_bpb_raw"] or 0) - (ab["heldout_bpb_processed"] or 0)],
        ]))
        parts.append(f"<p>Both models saw {_fmt(ab['tokens'])} training tokens; the held-out set is the same "
                     f"{_fmt((data['heldout'] or {}).get('documents'))} clean documents, encoded with the same tokenizer.</p>")
    es = data["eval_sets"]
    if es:
        n_seeds = data.get("seeds", 1)
        parts.append("<h2>Evaluation sets</h2><p>Every trained model's final checkpoint scored on each set: "
                     "<b>heldout</b> = held-out documents of the processed side (clean documents that passed our filters, "
                     "so it favours the processed model), <b>heldout:NAME</b> = the same per source, <b>neutral</b> = text "
                     "no recipe reads and no filter touched (data/eval/neutral.jsonl.gz). "
                     f"{n_seeds} seed(s) per side" + (": mean ± standard deviation; 'beyond 2 SE' = the difference exceeds "
                     "twice its standard error." if n_seeds > 1 else "; no spread with one seed (use --seeds N).") + "</p>")

        def pm(e, k):
            m, sd = e.get(k), e.get(f"{k}_std")
            return "–" if m is None else (f"{m:.4f} ± {sd:.4f}" if sd is not None else f"{m:.4f}")

        rows = []
        for n, e in es.items():
            b = e["bits_per_byte"]
            rows.append([n, e.get("tokens"), pm(e, "processed"), pm(e, "raw"), e.get("difference_raw_minus_processed"),
                         e.get("standard_error"), {True: "yes", False: "no"}.get(e.get("exceeds_2se"), "–"),
                         pm(b, "processed"), pm(b, "raw")])
        parts.append(_table(["set", "tokens", "processed loss", "raw loss", "raw − processed", "standard error", "beyond 2 SE",
                             "processed bits/byte", "raw bits/byte"], rows))
    parts.append("<h2>Training</h2>" + img("loss") + img("experts"))
    def params(p):
        return f"{p['total'] / 1e6:.2f}M ({p['active'] / 1e6:.2f}M active)" if isinstance(p, dict) and "total" in p else p

    tr_rows = [[v, t["steps"], t["tokens"], params(t["params"]), t["final_train_loss"], t["final_eval_loss"], t["final_eval_bpb"], t["seconds"]]
               for v, t in data["training"].items()]
    parts.append(_table(["run", "steps", "tokens", "parameters", "final train loss", "held-out loss", "held-out bits/byte", "seconds"], tr_rows))
    parts.append("<h2>Data funnel per source</h2>" + img("funnel"))
    rows = []
    for n, e in data["sources"].items():
        for v, c in e.items():
            top = sorted(((r, k, s) for s, rs in c["dropped_by_stage"].items() for r, k in rs.items()), key=lambda x: -x[1])[:4]
            rows.append([n, v, c["read"], c["generated"], c["kept"], c["rejected"], ", ".join(f"{r} {k}" for r, k, _ in top)])
    parts.append(_table(["source", "variant", "read", "generated", "kept", "rejected", "top drop reasons"], rows))
    parts.append("<h2>Mixture</h2>" + img("mixture"))
    for v, m in data["mixture"].items():
        rows = [[n, p["bytes"], p["documents"], p["share"], p["expected_copies"], m["actual"].get(n, {}).get("bytes"), m["actual"].get(n, {}).get("share")]
                for n, p in m["plan"]["sources"].items()]
        parts.append(f"<h3>{v}</h3>" + _table(["source", "bytes in", "documents in", "target share", "expected copies", "bytes out", "share out"], rows))
    parts.append("<h2>Manifest chain</h2><p>Each step's key covers its parameters and the fingerprints of what it read; a rerun reuses a step whose key is unchanged.</p>")
    parts.append(_table(["step", "output", "key", "fingerprint", "seconds", "reused"],
                        [[c["step"], c["out"], c["key"][:16], c["fingerprint"][:16], c["seconds"], c["reused"]] for c in data["chain"]]))
    parts.append("<h2>Versions</h2>" + _table(["package", "version"], [[k, v] for k, v in data["versions"].items()]))
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}"
             "td:first-child{text-align:left}img{max-width:100%;display:block;margin:1em 0}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>r1data repro {html.escape(spec.name)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    path = out / "index.html"
    path.write_text(page)
    return path


def write_sweep_report(data: dict[str, Any], out: Path) -> Path:
    """``sweep.json``, ``sweep.png`` (evaluation loss and bits per byte against the knob's value) and ``index.html``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(data, indent=1, default=str))
    points = data["points"]
    labels = [str(p["value"]) for p in points]
    names = []
    for p in points:
        names += [n for n in p["eval_sets"] if n not in names]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, ylabel in ((axes[0], None, "loss (nats/token)"), (axes[1], "bits_per_byte", "bits per byte")):
        for n in names:
            ys, errs = [], []
            for p in points:
                e = p["eval_sets"].get(n, {})
                src = e.get(metric, {}) if metric else e
                ys.append(src.get("processed", float("nan")))
                errs.append(src.get("processed_std") or 0.0)
            style = dict(lw=2.5) if n in ("heldout", "neutral") else dict(lw=1, alpha=0.7, ls="--")
            ax.errorbar(range(len(points)), ys, yerr=errs if any(errs) else None, marker="o", capsize=3, label=n, **style)
        ax.set_xticks(range(len(points)), labels)
        ax.set_xlabel(data["knob"])
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("processed model, same budget, per value")
    axes[1].set_title("bits per byte (comparable across tokenizers)")
    axes[1].legend(fontsize=7)
    png = _png(fig)
    plt.close(fig)
    (out / "sweep.png").write_bytes(base64.b64decode(png))
    rows = []
    for p in points:
        ran = [k for k, s in p["steps"].items() if not s["reused"]]
        for n, e in p["eval_sets"].items():
            rows.append([str(p["value"]), n, e.get("tokens"), e.get("processed"), e.get("processed_std"),
                         e.get("bits_per_byte", {}).get("processed"), len(ran)])
    parts = [f"<h1>r1data repro sweep: {html.escape(data['knob'])}</h1>",
             f"<p>Sources changed: {html.escape(', '.join(data['sources']))}; values {html.escape(', '.join(labels))}; "
             f"{data['seeds']} seed(s) per value. One processed-side training per value and seed, on the same budget; "
             "every step whose key does not depend on the value is reused. The tokenizer is retrained on each value's "
             "mixture, so compare losses across values in bits per byte. The held-out set also changes with the value "
             "(it is drawn from the processed side); the neutral set does not.</p>",
             f'<img src="data:image/png;base64,{png}" alt="sweep">',
             _table(["value", "set", "tokens", "processed loss", "std", "bits/byte", "steps run"], rows)]
    for p in points:
        parts.append(f"<h3>{html.escape(str(p['value']))}</h3>" + _table(
            ["step", "key", "reused", "output"], [[k, s["key"][:16], s["reused"], s["out"]] for k, s in p["steps"].items()]))
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}"
             "td:first-child{text-align:left}img{max-width:100%;display:block;margin:1em 0}")
    path = out / "index.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>r1data repro sweep</title><style>{style}</style></head>"
                    f"<body>{''.join(parts)}</body></html>")
    return path
