"""Mixing sources by weight, and the held-out evaluation set, as ordinary r1data pipeline runs.

A mixture is a recipe that ``r1data repro`` writes and runs like any other (so it has a manifest,
a funnel and resume): ``parquet_reader`` over the sources' kept shards -> ``holdout`` (documents
whose stable key hashes into the held-out share go to ``rejected/`` as ``held_out``) ->
``domain_tag`` (the domain of a document is its source) -> ``domain_upsample`` with the expected
copies per source that turn its text bytes into its share of the mixture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from datatrove.data import Document

from r1data.repro.spec import MixSpec
from r1data.repro.steps import digest
from r1data.stages.holdout import holdout_key, in_holdout


def source_documents(shards: Path, holdout: float, seed: int) -> tuple[list[tuple[float, int]], set[str]]:
    """For each training document of a source's kept shards (held-out keys removed): the draw ``u``
    that ``domain_upsample`` will make for it and its UTF-8 text bytes; and the ``source`` values seen."""
    from r1data.stages.augment import seeded_rng

    docs: list[tuple[float, int]] = []
    values: set[str] = set()
    for f in sorted(shards.glob("*.parquet")):
        t = pq.read_table(f, columns=["id", "text", "url", "meta", "source"])
        sizes = pc.binary_length(pc.cast(t["text"], "binary")).to_pylist()
        values.update(v for v in t["source"].to_pylist() if v is not None)
        for i, u, meta, n in zip(t["id"].to_pylist(), t["url"].to_pylist(), t["meta"].to_pylist(), sizes):
            md = json.loads(meta) if meta else {}
            md["url"] = u
            if not in_holdout(holdout_key(Document(text="", id=i, metadata=md)), holdout, seed):
                docs.append((seeded_rng(seed, i).random(), n or 0))
    return docs, values


def _fraction_threshold(docs: list[tuple[float, int]], need: float) -> float:
    """The draw below which the documents hold ``need`` bytes: exact up to one document, not just on average."""
    if need <= 0:
        return 0.0
    ordered = sorted(docs)
    acc = 0
    for k, (u, n) in enumerate(ordered):
        acc += n
        if acc >= need:
            nxt = ordered[k + 1][0] if k + 1 < len(ordered) else 1.0
            return (u + nxt) / 2
    return 1.0


def mixture_plan(shard_dirs: dict[str, Path], mix: MixSpec) -> dict[str, Any]:
    """Bytes per source and the copies that give each its share of the target size.

    ``domain_upsample`` emits ``floor(w)`` copies of every document plus one more when its seeded
    draw is below ``w - floor(w)``; the fractional part is chosen here, from the draws themselves,
    so that the extra copies hold the wanted bytes exactly (up to one document)."""
    have = {name: source_documents(d, mix.holdout, mix.seed) for name, d in shard_dirs.items()}
    owners: dict[str, str] = {}
    for name, (_, values) in have.items():
        for v in values:
            if v in owners:
                from r1data.errors import ConfigError

                raise ConfigError(f"mix: sources {owners[v]} and {name} both write source={v!r}; give their readers different `source` values")
            owners[v] = name
    wsum = sum(mix.weights[n] for n in shard_dirs)
    sizes = {name: sum(n for _, n in docs) for name, (docs, _) in have.items()}
    total = int(mix.total_mb * 1e6) if mix.total_mb else sum(sizes.values())
    plan = {}
    for name, (docs, values) in have.items():
        b = sizes[name]
        share = mix.weights[name] / wsum
        w = (share * total / b) if b else 0.0
        whole = math.floor(w)
        copies = whole + _fraction_threshold(docs, (w - whole) * b)
        plan[name] = {"bytes": b, "documents": len(docs), "share": round(share, 6), "expected_copies": round(w, 6),
                      "weight": copies, "source_values": sorted(values)}
    return {"target_bytes": total, "sources": plan, "source_owner": owners}


def make_mixture(shard_dirs: dict[str, Path], mix: MixSpec, out: Path, *, name: str, recipes_dir: Path, workers: int | None = None):
    """Write and run the mixture recipe into ``out``; returns (fingerprint, info) for the step."""
    from r1data.repro.recipe import manifest_fingerprint, run_recipe

    plan = mixture_plan(shard_dirs, mix)
    empty = [n for n, p in plan["sources"].items() if not p["bytes"]]
    if empty:
        from r1data.errors import FatalError

        raise FatalError(f"{name}: source(s) {', '.join(empty)} kept no text to mix; check their runs or set their weight to 0")
    recipe = {
        "name": name,
        "description": "written by r1data repro: sources mixed by weight after the held-out set is taken out",
        "inputs": [str(d.resolve()) for d in shard_dirs.values()],
        "stages": [
            {"stage": "parquet_reader", "source": "mix"},
            {"stage": "holdout", "fraction": mix.holdout, "seed": mix.seed, "key": "auto"},
            {"stage": "domain_tag", "source_domains": plan["source_owner"], "rules": False},
            {"stage": "domain_upsample", "weights": {n: p["weight"] for n, p in plan["sources"].items()}, "default": 0.0, "seed": mix.seed},
        ],
        "output": {"path": str(out)},
        "executor": {"type": "local"},
    }
    recipes_dir.mkdir(parents=True, exist_ok=True)
    path = recipes_dir / f"{name}.yaml"
    path.write_text("# written by r1data repro; do not edit\n" + yaml.safe_dump(recipe, sort_keys=False))
    _, manifest, _ = run_recipe(path, out, workers=workers)
    shares = _actual_shares(out / "shards", plan["source_owner"])
    return manifest_fingerprint(out), {"plan": plan, "actual": shares, "recipe": str(path), "counts": manifest["counts"]}


def _actual_shares(shards: Path, owners: dict[str, str]) -> dict[str, Any]:
    import polars as pl

    df = (
        pl.scan_parquet(str(shards / "*.parquet"))
        .with_columns(pl.col("source").replace_strict(owners, default=pl.col("source")).alias("source"))
        .group_by("source")
        .agg(pl.len().alias("documents"), pl.col("text").str.len_bytes().sum().alias("bytes"))
        .collect()
    )
    total = df["bytes"].sum() or 1
    return {r["source"]: {"documents": r["documents"], "bytes": r["bytes"], "share": round(r["bytes"] / total, 4)} for r in df.to_dicts()}


def extract_heldout(mix_out: Path, out: Path, owners: dict[str, str] | None = None):
    """The held-out clean documents of a mixture (original documents only, no augmented variant).

    Also one folder per source under ``by_source/`` (``owners`` maps a document's ``source`` value
    to the repro source that wrote it), for the per-source evaluation sets."""
    import polars as pl

    from r1data.io.schema import shard_schema

    rej = pl.scan_parquet(str(mix_out / "rejected" / "*.parquet")).filter(pl.col("reason") == "held_out")
    df = rej.collect()
    generated = df["meta"].str.contains('"augmented_from"', literal=True).fill_null(False)
    df = df.filter(~generated)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    keep = [c for c in df.columns if c not in ("stage", "reason", "duplicate_of")]
    path = out / "shards" / "part-00000.parquet"
    df.select(keep).write_parquet(path, compression="zstd")
    owners = owners or {}
    owner = df["source"].replace_strict(owners, default=df["source"]).fill_null("unknown") if df.height else df["source"]
    by_source = {}
    for name in sorted(set(owner.to_list())):
        part = df.filter(owner == name).select(keep)
        (out / "by_source" / name).mkdir(parents=True, exist_ok=True)
        part.write_parquet(out / "by_source" / name / "part-00000.parquet", compression="zstd")
        by_source[name] = part.height
    info = {"by_owner": by_source, "documents": df.height, "by_source": dict(zip(*df.group_by("source").len().sort("source").to_dict(as_series=False).values())), "schema": shard_schema({}).names}
    return digest({"rows": df.height, "ids": sorted(df["id"].to_list())}), info
