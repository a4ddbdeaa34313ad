"""Aggregate per-task stats into the run summary, and write ``manifest.json``."""

from __future__ import annotations

import json
import platform
import sys
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from r1data.io.schema import SCHEMA_VERSION
from r1data.io.shards import parquet_rows
from r1data.paths import sha256_file

TRACKED_PACKAGES = (
    "r1data", "datatrove", "pyarrow", "polars", "trafilatura", "warcio", "fasttext-numpy2-wheel", "kenlm", "ufal.kenlm",
    "sentencepiece", "datasketch", "spacy", "numpy", "torch", "tokenizers",
)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def load_task_stats(out_dir: Path) -> list[dict[str, Any]]:
    """Every task's r1data report, of every phase (``stats/NNNNN.json`` and ``stats/<phase>/NNNNN.json``)."""
    reports = []
    for f in sorted((out_dir / "stats").rglob("[0-9]*.json")):
        r = json.loads(f.read_text()).get("r1data") or {}
        r.setdefault("phase", "" if f.parent.name == "stats" else f.parent.name)
        reports.append(r)
    return reports


def aggregate(reports: list[dict[str, Any]], stage_order: list[str]) -> dict[str, Any]:
    """Sum task reports: read/kept/rejected, the funnel in pipeline order, input files and errors."""
    funnel: Counter = Counter()
    generated: Counter = Counter()
    read = kept = rejected = chars = 0
    files, errors = [], []
    for r in reports:
        origin = r.get("origin", "input")
        if origin == "reduce":
            continue
        if origin == "input":  # documents entering the run (phases reading work files re-read them)
            read += r["read"]
            files.extend(r.get("input_files", []))
            errors.extend(r.get("input_errors", []))
        if r.get("phase", "") == "":
            kept += r["kept"]
            chars += r.get("kept_chars", 0)
        rejected += r["rejected"]
        generated.update(r.get("generated_by_stage", {}))
        for f in r["funnel"]:
            funnel[(f["stage"], f["reason"])] += f["count"]
    errors += empty_inputs(files, errors)
    order = {s: i for i, s in enumerate(stage_order)}
    rows = sorted(funnel.items(), key=lambda kv: (order.get(kv[0][0], len(order)), -kv[1], kv[0][1]))
    by_stage: dict[str, dict[str, int]] = {}
    for (stage, reason), n in rows:
        by_stage.setdefault(stage, {})[reason] = n
    return {
        "read": read,
        "generated": sum(generated.values()),
        "generated_by_stage": {s: generated[s] for s in sorted(generated, key=lambda s: order.get(s, len(order)))},
        "kept": kept,
        "rejected": rejected,
        "kept_chars": chars,
        "dropped": [{"stage": s, "reason": r, "count": n} for (s, r), n in rows],
        "dropped_by_stage": by_stage,
        "input_files": sorted(files, key=lambda f: f["index"]),
        "input_errors": sorted(errors, key=lambda e: e["uri"]),
    }


def empty_inputs(files: list[dict[str, Any]], errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inputs that gave no document at all (a 0-byte file, a gzip without records, an empty folder).

    Decided over every task's entries: a directory shared by several tasks (code_reader) is empty
    only when no task read anything from it. Inputs that already failed are not listed twice."""
    docs: dict[str, int] = {}
    size: dict[str, int | None] = {}
    for f in files:
        docs[f["uri"]] = docs.get(f["uri"], 0) + int(f.get("documents") or 0)
        size.setdefault(f["uri"], f.get("size"))
    failed = {e["uri"] for e in errors}
    out = []
    for uri, n in docs.items():
        if n or uri in failed:
            continue
        what = "an empty file (0 bytes)" if size[uri] == 0 else "no documents in it" + (f" ({size[uri]:,} bytes)" if size[uri] else "")
        out.append({"uri": uri, "error": f"empty_input: {what}", "documents_before_error": 0, "kind": "empty_input"})
    return out


def describe_outputs(out_dir: Path, sub: str) -> list[dict[str, Any]]:
    out = []
    for f in sorted((out_dir / sub).glob("*.parquet")):
        out.append({"path": f"{sub}/{f.name}", "rows": parquet_rows(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)})
    return out


def write_manifest(out_dir: Path, content: dict[str, Any]) -> Path:
    path = out_dir / "manifest.json"
    from r1data.io.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    return path


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def manifest_content(*, plan, counts: dict, wall_seconds: float, started: str) -> dict[str, Any]:
    out_dir = Path(plan.out_dir)
    spec = plan.spec
    return {
        "r1data_manifest": 1,
        "schema_version": SCHEMA_VERSION,
        "pipeline": spec.name,
        "recipe": {"path": spec.source.file, "sha256": sha256_file(spec.source.file) if Path(spec.source.file).is_file() else None},
        "command": sys.argv,
        "started": started,
        "finished": now_iso(),
        "wall_seconds": round(wall_seconds, 2),
        "config": spec.resolved(),
        "config_hash": spec.config_hash(),
        "knobs": {**spec.knobs, "applied_to": spec.knob_targets},
        "executor": {"type": spec.executor.type, "tasks": plan.tasks, "workers": plan.workers},
        "inputs": [{"index": f.index, "uri": f.uri, "size": f.size} for f in plan.inputs],
        "input_errors": counts["input_errors"],
        "counts": {k: counts[k] for k in ("read", "generated", "generated_by_stage", "kept", "rejected", "dropped_by_stage")},
        "outputs": {"shards": describe_outputs(out_dir, "shards"), "rejected": describe_outputs(out_dir, "rejected")},
        "models": plan.models(),
        "versions": package_versions(),
        "stages": [s.build().describe() for s in spec.stages],
    }
