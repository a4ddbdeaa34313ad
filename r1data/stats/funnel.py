"""The filter funnel: documents (and bytes) each stage dropped, per reason, in pipeline order.

Counts come from ``rejected/`` itself (what is on disk is what users get), the number read from
the manifest (or the per-task stats, or kept + rejected when neither exists), the order from the
manifest's resolved config (or the step order of the per-task stats), and the time each stage
took from datatrove's step statistics in ``stats/``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from r1data.stats.scan import DEDUP_REASONS


def stage_seconds(task_stats: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in each step, summed over tasks (datatrove's ``time_stats.total``).

    Readers have none: their time is spent inside the generator that every later step pulls
    from, so it cannot be told apart from theirs."""
    out: dict[str, float] = {}
    for t in task_stats:
        for step in t.get("datatrove") or []:
            label = str(step.get("name", "")).split(": ", 1)[-1]
            ts = step.get("time_stats")
            if isinstance(ts, dict) and isinstance(ts.get("total"), (int, float)):
                out[label] = out.get(label, 0.0) + float(ts["total"])
    return out


def step_order(task_stats: list[dict[str, Any]]) -> list[str]:
    """Stage labels in the order datatrove ran them (fallback when there is no manifest).

    Steps are named "<kind>: <label>"; sinks, reduce steps ("?") and the readers of later phases
    (which re-read work files) are the executor's, not the recipe's."""
    order: list[str] = []
    for t in task_stats:
        from_inputs = (t.get("r1data") or {}).get("origin", "input") == "input"
        for step in t.get("datatrove") or []:
            name = str(step.get("name", ""))
            if ": " not in name:
                continue
            kind, label = name.split(": ", 1)
            if label in ("", "?", "sink") or (kind == "reader" and not from_inputs):
                continue
            if label not in order:
                order.append(label)
    return order


def build_funnel(
    read: int,
    rejected_by: pl.DataFrame,
    order: list[str],
    stage_types: dict[str, str],
    seconds: dict[str, float],
    generated_by_stage: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """``rejected_by``: stage, reason, documents, bytes. Returns one row per stage, reasons nested.

    Each row: stage, type (registered name when known), entered, generated (documents the stage
    created: augmentation), dropped, dropped_bytes, remaining (= entered + generated - dropped),
    share_of_read, share_of_entered, seconds, in_pipeline, reasons[{reason, documents, bytes,
    share_of_read}]."""
    generated_by_stage = generated_by_stage or {}
    per_stage: dict[str, list[dict]] = {}
    for row in rejected_by.sort(["documents", "reason"], descending=[True, False]).iter_rows(named=True):
        per_stage.setdefault(row["stage"] or "(unknown stage)", []).append(row)
    extra = sorted((s for s in per_stage if s not in order), key=lambda s: -sum(r["documents"] for r in per_stage[s]))
    extra += [s for s in generated_by_stage if s not in order and s not in extra]
    rows = []
    remaining = read
    for stage in list(order) + extra:
        reasons = per_stage.get(stage, [])
        dropped = sum(int(r["documents"]) for r in reasons)
        made = int(generated_by_stage.get(stage, 0))
        entered = remaining
        remaining = entered + made - dropped
        rows.append(
            {
                "stage": stage,
                "type": stage_types.get(stage),
                "in_pipeline": stage in order,
                "entered": entered,
                "generated": made,
                "dropped": dropped,
                "dropped_bytes": sum(int(r["bytes"] or 0) for r in reasons),
                "remaining": remaining,
                "share_of_read": dropped / read if read else None,
                # a stage that generates may drop some of its own new documents: they count as entering it
                "share_of_entered": dropped / (entered + made) if entered + made > 0 else None,
                "seconds": round(seconds[stage], 3) if stage in seconds else None,
                "reasons": [
                    {
                        "reason": r["reason"],
                        "documents": int(r["documents"]),
                        "bytes": int(r["bytes"] or 0),
                        "share_of_read": int(r["documents"]) / read if read else None,
                    }
                    for r in reasons
                ],
            }
        )
    return rows


def dedup_rates(funnel: list[dict[str, Any]], read: int, clusters: int | None) -> dict[str, Any] | None:
    """Exact and near-duplicate rates; None when no dedup stage ran and nothing was dropped as a duplicate."""
    rows = []
    for st in funnel:
        is_dedup_stage = "dedup" in (st.get("type") or st["stage"])
        found = {r["reason"]: r for r in st["reasons"] if r["reason"] in DEDUP_REASONS}
        if not found and not is_dedup_stage:
            continue
        if not found:  # a dedup stage that found no duplicates still gets its row
            rows.append({"stage": st["stage"], "reason": None, "documents": 0, "share_of_read": 0.0 if read else None, "share_of_entered": 0.0 if st["entered"] else None})
        for reason, r in found.items():
            rows.append(
                {
                    "stage": st["stage"],
                    "reason": reason,
                    "documents": r["documents"],
                    "share_of_read": r["documents"] / read if read else None,
                    "share_of_entered": r["documents"] / st["entered"] if st["entered"] > 0 else None,
                }
            )
    if not rows:
        return None
    total = sum(r["documents"] for r in rows)
    return {
        "duplicates": total,
        "share_of_read": total / read if read else None,
        "clusters": clusters,
        "by_stage": rows,
    }
