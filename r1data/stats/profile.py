"""``collect_stats``: everything ``r1data stats`` shows, as one JSON-ready dict (schema in docs/stats.md).

    from r1data.stats import collect_stats
    stats = collect_stats("out/web")                     # or a glob, a file, a list of them
    stats["totals"]["kept"], stats["funnel"][0]["dropped"]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from r1data.errors import R1DataError
from r1data.stats.buckets import LOG_PER_OCTAVE, UNIT_BUCKETS, Distribution
from r1data.stats.funnel import build_funnel, dedup_rates, stage_seconds, step_order
from r1data.stats.scan import LENGTH_SPEC, SetScan, bucket_specs, scan_set, scan_tokens
from r1data.stats.sources import FileError, Target, resolve_target

STATS_SCHEMA_VERSION = 1
BYTES_PER_TOKEN = 4  # the usual rule of thumb for BPE tokenizers on English text; see docs/stats.md
TOP_HOSTS = 20
BREAKDOWN_KEYS = ("source", "lang", "domain", "stage")


class NothingReadable(R1DataError):
    """Every file named was unreadable: there is nothing to report."""

    exit_code = 1


def _dist_json(d: Distribution) -> dict[str, Any]:
    out = d.summary()
    out["histogram"] = d.histogram()
    out["scale"] = d.spec.scale
    return out


def _set_json(scan: SetScan, tokens: dict[str, pl.DataFrame] | None, top_hosts: int) -> dict[str, Any]:
    whole = scan.lengths["all"]
    docs = int(whole["docs"].sum()) if whole.height else 0
    nbytes = int(whole["sum"].sum() or 0) if whole.height else 0
    cols = ["bucket", "n", "sum", "min", "max"]
    length = Distribution.from_frame(LENGTH_SPEC, whole.select(cols))
    if tokens is not None:
        n_tokens = int(tokens["all"]["sum"].sum() or 0) if tokens["all"].height else 0
    else:
        n_tokens = round(nbytes / BYTES_PER_TOKEN)
    out: dict[str, Any] = {
        "documents": docs,
        "bytes": nbytes,
        "tokens": n_tokens,
        "length_bytes": _dist_json(length) if scan.has_text else None,
        "length_tokens": _dist_json(Distribution.from_frame(LENGTH_SPEC, tokens["all"].select(cols))) if tokens is not None else None,
        "by": {},
        "scores": {},
        "url_hosts": None,
    }
    for key in BREAKDOWN_KEYS:
        if key not in scan.keys:
            continue
        table = scan.lengths[key]
        agg = table.group_by(key).agg(pl.col("docs").sum(), pl.col("sum").sum().alias("bytes"))
        tok_map = {}
        if tokens is not None:
            tok = tokens[key].group_by(key).agg(pl.col("sum").sum().alias("tokens"))
            tok_map = dict(zip(tok[key].to_list(), tok["tokens"].to_list()))
        rows = []
        for value, d, b in agg.sort(["docs", key], descending=[True, False], nulls_last=True).iter_rows():
            b = int(b or 0)
            sub = table.filter(pl.col(key).is_null() if value is None else (pl.col(key) == value))
            med = Distribution.from_frame(LENGTH_SPEC, sub.select(cols)).quantile(0.5)
            rows.append(
                {
                    "value": value,
                    "documents": int(d),
                    "bytes": b,
                    "tokens": int(tok_map.get(value, 0)) if tokens is not None else round(b / BYTES_PER_TOKEN),
                    "share_documents": int(d) / docs if docs else None,
                    "share_bytes": b / nbytes if nbytes else None,
                    "median_bytes": med,
                }
            )
        out["by"][key] = rows
    for col, (spec, table) in scan.scores.items():
        d = Distribution.from_frame(spec, table)
        js = _dist_json(d)
        js["nulls"] = docs - d.count
        out["scores"][col] = js
    if scan.hosts is not None:
        with_url = int(scan.hosts["n"].sum()) if scan.hosts.height else 0
        out["url_hosts"] = {
            "distinct": scan.hosts.height,
            "documents_with_url": with_url,
            "top": [
                {"host": h, "documents": int(n), "share": int(n) / with_url if with_url else None}
                for h, n in scan.hosts.head(top_hosts).iter_rows()
            ],
        }
    return out


def _entering(target: Target) -> list[dict]:
    """Task reports of the tasks that read the run's inputs (later phases re-read work files)."""
    reports = [t.get("r1data") or {} for t in target.task_stats]
    return [r for r in reports if r.get("origin", "input") == "input"]


def _read_count(target: Target, kept: int, rejected: int) -> tuple[int, str]:
    m = target.manifest or {}
    if isinstance((m.get("counts") or {}).get("read"), int):
        return m["counts"]["read"], "manifest"
    entering = _entering(target)
    if entering and all(isinstance(r.get("read"), int) for r in entering):
        return sum(r["read"] for r in entering), "task_stats"
    return kept + rejected, "files"


def _generated(target: Target) -> dict[str, int]:
    """Documents each stage created (augmentation) rather than read: read + generated = kept + rejected.

    From the manifest (``counts.generated_by_stage``), else summed over the task reports."""
    counts = (target.manifest or {}).get("counts") or {}
    if isinstance(counts.get("generated_by_stage"), dict):
        return {k: int(v) for k, v in counts["generated_by_stage"].items()}
    out: dict[str, int] = {}
    for t in target.task_stats:
        r = t.get("r1data") or {}
        if r.get("origin") == "reduce":
            continue
        for stage, n in (r.get("generated_by_stage") or {}).items():
            out[stage] = out.get(stage, 0) + int(n)
    return out


def _check_against_manifest(target: Target, kept_docs: int, rejected_docs: int, read: int, read_from: str, generated: int = 0) -> list[str]:
    warnings = []
    if target.run_dir is not None and target.manifest is None:
        tasks = None
        run_json = target.run_dir / "run.json"
        if run_json.is_file():
            try:
                tasks = json.loads(run_json.read_text()).get("tasks")
            except ValueError:
                pass
        done_dir = target.run_dir / "completions"
        done = len([p for p in done_dir.iterdir() if p.is_file()]) if done_dir.is_dir() else 0
        of = f" ({done} of {tasks} tasks done)" if tasks else ""
        warnings.append(f"{target.run_dir}: no manifest.json: the run has not finished{of}; counts are from the files on disk")
    m = target.manifest
    if m:
        listed = {}
        for entries in (m.get("outputs") or {}).values():
            for e in entries or []:
                listed[str(target.run_dir / e["path"])] = e
        present = {f.path: f for f in target.files}
        broken = {e.path for e in target.errors}
        for path, e in listed.items():
            if path not in present and path not in broken:
                warnings.append(f"{path}: listed in the manifest ({e.get('rows', '?')} rows) but missing")
            elif path in present and isinstance(e.get("rows"), int) and e["rows"] != present[path].rows:
                warnings.append(f"{path}: holds {present[path].rows:,} rows, the manifest says {e['rows']:,}")
        for path in present:
            if path not in listed:
                warnings.append(f"{path}: not listed in the manifest (written after the run finished?)")
    if read_from != "files" and read + generated != kept_docs + rejected_docs:
        diff = read + generated - kept_docs - rejected_docs
        what = "missing from" if diff > 0 else "more than"
        made = f" + {generated:,} generated" if generated else ""
        warnings.append(
            f"read {read:,} documents ({read_from}){made} but shards + rejected hold {kept_docs + rejected_docs:,} "
            f"({abs(diff):,} {what} the files counted)"
        )
    return warnings


def _check_tokenizer(path: str) -> None:
    import importlib.util

    from r1data.errors import ConfigError, InputError

    if not Path(path).is_file():
        raise InputError(f"{path}: tokenizer file not found (give a tokenizers JSON file, e.g. tokenizer.json)")
    if importlib.util.find_spec("tokenizers") is None:
        raise ConfigError("--tokenizer needs the tokenizers package: pip install 'r1data[stats]'")
    from tokenizers import Tokenizer

    try:
        Tokenizer.from_file(str(path))
    except Exception as e:  # the library raises a bare Exception for a file it cannot parse
        raise InputError(f"{path}: not a tokenizers JSON file ({' '.join(str(e).split())[:150]})") from None


def collect_stats(targets: list[str] | str, *, tokenizer: str | None = None, top_hosts: int = TOP_HOSTS) -> dict[str, Any]:
    """Inspect an output directory or Parquet files; see docs/stats.md for the returned schema.

    Raises ``InputError`` for a path that does not exist or holds no Parquet file, and
    ``NothingReadable`` when no file could be read at all. Files that cannot be read are listed
    in ``files.errors`` and the others are still counted."""
    target = resolve_target(targets)
    if tokenizer is not None:
        _check_tokenizer(tokenizer)
    specs, _ranges, range_errors = bucket_specs(target.files)
    errors: dict[str, FileError] = {e.path: e for e in target.errors + range_errors}
    bad = set(errors)
    kept_files = [f for f in target.kept if f.path not in bad]
    rej_files = [f for f in target.rejected if f.path not in bad]
    kept = scan_set(kept_files, specs, rejected=False)
    rej = scan_set(rej_files, specs, rejected=True) if rej_files else None
    for e in kept.errors + (rej.errors if rej else []):
        errors.setdefault(e.path, e)
    if not kept.files and not (rej and rej.files):
        n = len(target.files) + len(target.errors)
        first = next(iter(errors.values())).line() if errors else target.label
        raise NothingReadable(f"none of the {n} Parquet file(s) could be read; first: {first}")
    tok_kept = tok_rej = None
    if tokenizer is not None:
        tok_kept, e1 = scan_tokens(kept.files, tokenizer, kept.keys)
        tok_rej, e2 = scan_tokens(rej.files, tokenizer, rej.keys) if rej else (None, [])
        for e in e1 + e2:
            errors.setdefault(e.path, e)

    kept_js = _set_json(kept, tok_kept, top_hosts)
    rej_js = _set_json(rej, tok_rej, top_hosts) if rej else None
    kept_docs = kept_js["documents"]
    rej_docs = rej_js["documents"] if rej_js else 0
    generated_by_stage = _generated(target)
    generated = sum(generated_by_stage.values())
    read, read_from = _read_count(target, kept_docs - generated, rej_docs)

    order = target.stage_order() or step_order(target.task_stats)
    warnings = list(target.warnings)
    if rej is not None and not order:
        warnings.append("stage order unknown (no manifest or task stats): the funnel lists stages by documents dropped")
    if rej is not None:
        by_reason = rej.lengths["stage"].group_by("stage", "reason").agg(pl.col("docs").sum().alias("documents"), pl.col("sum").sum().alias("bytes"))
    else:
        by_reason = pl.DataFrame(schema={"stage": pl.String, "reason": pl.String, "documents": pl.UInt64, "bytes": pl.Float64})
    funnel = build_funnel(read, by_reason, order, target.stage_types(), stage_seconds(target.task_stats), generated_by_stage)
    clusters = rej.cluster_hashes.len() if rej is not None and rej.cluster_hashes is not None else None
    dedup = dedup_rates(funnel, read, clusters)
    warnings += _check_against_manifest(target, kept_docs, rej_docs, read, read_from, generated)
    for scan in (kept, rej):
        if scan is None:
            continue
        footer_rows = sum(f.rows for f in scan.files)
        counted = scan.documents
        if footer_rows != counted:
            warnings.append(f"scanned {counted:,} rows but the file footers say {footer_rows:,}")
    contamination = _contamination(kept.files, rej.files if rej else [])
    m = target.manifest or {}
    return {
        "r1data_stats": STATS_SCHEMA_VERSION,
        "target": target.label,
        "run_dir": str(target.run_dir) if target.run_dir else None,
        "pipeline": m.get("pipeline"),
        "config_hash": m.get("config_hash"),
        "finished": m.get("finished"),
        "tokens": (
            {"method": "tokenizer", "tokenizer": str(tokenizer)}
            if tokenizer
            else {"method": "estimate", "bytes_per_token": BYTES_PER_TOKEN}
        ),
        "quantile_error": {"log_buckets_per_octave": LOG_PER_OCTAVE, "unit_buckets": UNIT_BUCKETS},
        "totals": {
            "read": read,
            "read_from": read_from,
            "generated": generated,
            "generated_by_stage": generated_by_stage,
            "kept": kept_docs,
            "rejected": rej_docs,
            # of the documents that entered (read, or generated by a stage), the fraction kept
            "keep_rate": kept_docs / (read + generated) if read + generated else None,
            "kept_bytes": kept_js["bytes"],
            "kept_tokens": kept_js["tokens"],
            "rejected_bytes": rej_js["bytes"] if rej_js else 0,
        },
        "files": {
            "kept": len(kept.files),
            "rejected": len(rej.files) if rej else 0,
            "kept_bytes_on_disk": sum(f.bytes for f in kept.files),
            "rejected_bytes_on_disk": sum(f.bytes for f in rej.files) if rej else 0,
            "errors": [{"path": e.path, "error": e.error} for e in errors.values()],
        },
        "columns": {
            "kept": sorted({c for f in kept.files for c in f.columns}),
            "rejected": sorted({c for f in rej.files for c in f.columns}) if rej else [],
        },
        "input_errors": m.get("input_errors") or [],
        "kept": kept_js,
        "rejected": rej_js,
        "funnel": funnel,
        "dedup": dedup,
        "contamination": contamination,
        "warnings": warnings,
    }


def _contamination(kept_files, rej_files) -> list[dict[str, Any]] | None:
    """Documents per benchmark that the ``decontaminate`` stage matched: dropped (rejected) or tagged (kept)."""
    counts: dict[str, dict[str, int]] = {}
    found = False
    for side, files in (("tagged_kept", kept_files), ("dropped", rej_files)):
        paths = [f.path for f in files if "contamination" in f.columns]
        if not paths:
            continue
        found = True
        df = pl.scan_parquet(paths).select("contamination").drop_nulls().group_by("contamination").len().collect()
        for bench, n in df.iter_rows():
            counts.setdefault(bench, {"tagged_kept": 0, "dropped": 0})[side] += int(n)
    if not found:
        return None
    return [{"benchmark": b, **c, "documents": c["tagged_kept"] + c["dropped"]} for b, c in sorted(counts.items())]
