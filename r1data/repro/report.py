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
    for variant in ("processed", "raw"):
        r = results.get(f"train:{variant}")
        if r is None:
            continue
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
