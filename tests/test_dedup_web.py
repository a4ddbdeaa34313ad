"""Dedup quality on the bundled web sample (a copy of ../shared/data/web) with its ground truth.

``r1data run pipelines/web.yaml --dedup-window 100`` runs the whole web recipe (WARC, Trafilatura,
language ID, heuristics, exact_dedup, minhash_dedup) once for the module (~2 minutes on 2 cores).

How the figures are defined. ``duplicates.json`` lists 89 injected pairs of URLs (63 near, 26
exact: an original page and a copy). Some pages are in two pairs (an original with both a mirror
copy and a tracking-URL copy), so the pairs are first merged into *groups*: the connected sets of
URLs (83 groups).

- a group is *evaluable* when at least two of its pages reach the dedup stages (a page that an
  earlier filter dropped, e.g. as too short, cannot be deduplicated);
- an evaluable group is *recovered* when exactly one of those pages is kept and every other one
  is rejected by ``exact_dedup`` or ``minhash_dedup`` with a ``duplicate_of`` that leads to the
  kept page (directly, or through a page a later dedup stage rejected in turn: exact_dedup points
  at the page it kept, which minhash_dedup may then find to be a near copy of an earlier mirror);
- recall = recovered / evaluable groups;
- a *false removal* is a page in no group that a dedup stage rejected; the rate is over the pages
  in no group that reached the dedup stages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SAMPLE, r1data_cmd

pytestmark = pytest.mark.slow
DEDUP_STAGES = {"exact_dedup", "minhash_dedup"}


def _rows(folder: Path, columns: list[str]) -> list[dict]:
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f, columns=columns).to_pylist()]


def url_groups(truth_file: Path) -> list[set[str]]:
    """The injected pairs merged into connected sets of URLs."""
    parent: dict[str, str] = {}

    def find(u: str) -> str:
        while parent.setdefault(u, u) != u:
            u = parent[u]
        return u

    pairs = json.loads(truth_file.read_text())["duplicate_groups"]
    for g in pairs:
        for u in g["urls"][1:]:
            parent[find(u)] = find(g["urls"][0])
    groups: dict[str, set[str]] = {}
    for g in pairs:
        for u in g["urls"]:
            groups.setdefault(find(u), set()).add(u)
    return list(groups.values())


def dedup_quality(out: Path, truth_file: Path) -> dict:
    kept = {r["url"]: r for r in _rows(out / "shards", ["id", "url"])}
    rejected = {r["url"]: r for r in _rows(out / "rejected", ["id", "url", "stage", "reason", "duplicate_of"])}
    by_id = {r["id"]: r for r in rejected.values() if r["stage"] in DEDUP_STAGES}
    reached = set(kept) | {u for u, r in rejected.items() if r["stage"] in DEDUP_STAGES}

    def final_target(row: dict) -> str:
        seen = set()
        while row["duplicate_of"] in by_id and row["duplicate_of"] not in seen:
            seen.add(row["duplicate_of"])
            row = by_id[row["duplicate_of"]]
        return row["duplicate_of"]

    groups = url_groups(truth_file)
    evaluable = recovered = 0
    missed = []
    for g in groups:
        urls = sorted(u for u in g if u in reached)
        if len(urls) < 2:
            continue
        evaluable += 1
        keep = [u for u in urls if u in kept]
        ok = len(keep) == 1 and all(
            rejected[u]["reason"] in ("exact_duplicate", "near_duplicate") and final_target(rejected[u]) == kept[keep[0]]["id"]
            for u in urls
            if u != keep[0]
        )
        recovered += ok
        if not ok:
            missed.append([(u, rejected[u]["reason"] if u in rejected else "kept") for u in urls])
    in_groups = set().union(*groups)
    others = reached - in_groups
    false = sorted(u for u in others if u in rejected)
    return {
        "groups": len(groups),
        "evaluable": evaluable,
        "recovered": recovered,
        "recall": recovered / evaluable,
        "missed": missed,
        "other_pages_reaching_dedup": len(others),
        "false_removals": false,
        "false_removal_rate": len(false) / len(others),
        "exact_removed": sum(r["reason"] == "exact_duplicate" for r in rejected.values()),
        "near_removed": sum(r["reason"] == "near_duplicate" for r in rejected.values()),
    }


@pytest.fixture(scope="module")
def web_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web") / "out"
    res = r1data_cmd("run", "pipelines/web.yaml", "--dedup-window", "100", "--output", out, "--json", timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_injected_duplicates_are_removed(web_run):
    q = dedup_quality(web_run, SAMPLE / "duplicates.json")
    print(json.dumps({k: v for k, v in q.items() if k != "missed"}, indent=1))
    assert q["groups"] == 83 and q["evaluable"] >= 50  # the recipe's filters drop a page of ~30 groups
    assert q["recall"] >= 0.95, q["missed"]
    assert q["false_removal_rate"] <= 0.005, q["false_removals"]
    assert q["near_removed"] > 0 and q["exact_removed"] > 0


def test_single_form_decides_the_same_on_real_pages(web_run, tmp_path):
    """The pages that reached exact_dedup (its map phase's work files), deduplicated again in the
    single form, lose exactly the same pages with the same reasons and pointers."""
    docs = web_run / "work" / "exact_dedup" / "docs"
    recipe = tmp_path / "again.yaml"
    recipe.write_text(
        f"""\
name: again
inputs: ["{docs}/*.parquet"]
stages:
  - stage: parquet_reader
    source: web
  - stage: exact_dedup
    mode: single
  - stage: minhash_dedup
    mode: single
output:
  path: {tmp_path / "out"}
"""
    )
    res = r1data_cmd("run", recipe, "--dedup-window", "100", "--json", cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]

    def decisions(out: Path) -> set:
        return {
            (r["id"], r["stage"], r["reason"], r["duplicate_of"])
            for r in _rows(out / "rejected", ["id", "stage", "reason", "duplicate_of"])
            if r["stage"] in DEDUP_STAGES
        }

    first = decisions(web_run)
    assert first and decisions(tmp_path / "out") == first
