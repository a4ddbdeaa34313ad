"""line_dedup: repeated lines (site navigation, cookie banners, footers) removed within a dedup window.

A small JSONL corpus of two shards: pages of one site that share a navigation block, a cookie
banner and a footer (with a changing year and page counter), each with its own body text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from r1data.config.spec import Overrides
from r1data.dedup.lines import drop_lines, duplicate_lines, line_hashes, normalise_lines
from r1data.run.pipeline import execute, load_spec, plan_run

from tests.cluster_helpers import r1data

NAV = ["Home | Products | About us | Contact", "Sign in to your account"]
COOKIE = "We use cookies to improve your experience. By continuing you accept our Cookie Policy."
WORDS = (
    "river stone winter market bread copper cloth harbour lantern meadow orchard bridge candle garden "
    "village thunder valley forest mountain castle window letter silver morning evening shadow"
).split()


def _body(rng: random.Random, words: int) -> list[str]:
    """Paragraphs of distinct random sentences (never repeated across pages)."""
    paras = []
    left = words
    while left > 0:
        n = min(left, 30)
        paras.append(" ".join(rng.choice(WORDS) for _ in range(n)) + f" {rng.randrange(10**9)}x.")
        left -= n
    return paras


def _page(rng: random.Random, k: int, words: int = 90) -> str:
    footer = f"© {2020 + k} Example Shop Ltd. All rights reserved. Page {k}"  # digits differ: one line after normalising
    return "\n".join(NAV + [COOKIE, ""] + _body(rng, words) + ["", footer])


def make_corpus(folder: Path) -> dict[str, str]:
    """Two shards of three pages; s1-r1 has a short body (20 words)."""
    rng = random.Random(7)
    texts = {}
    folder.mkdir(parents=True, exist_ok=True)
    k = 0
    for s in range(2):
        rows = []
        for r in range(3):
            doc_id = f"s{s}-r{r}"
            texts[doc_id] = _page(rng, k, 20 if doc_id == "s1-r1" else 90)
            rows.append({"id": doc_id, "text": texts[doc_id]})
            k += 1
        (folder / f"part-{s:02d}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return texts


RECIPE = """\
name: line-dedup-test
inputs: [{inputs}]
stages:
  - stage: jsonl_reader
    source: test
  - stage: line_dedup
    min_words: 50
output:
  path: {out}
"""


def run(tmp: Path, corpus: Path, out: Path, *, window=None, tasks=None, workers=None, sets=()) -> dict:
    recipe = tmp / "recipe.yaml"
    recipe.write_text(RECIPE.format(inputs=corpus, out=out))
    spec = load_spec(recipe, Overrides(sets=list(sets), dedup_window=window, tasks=tasks, workers=workers))
    execute(plan_run(spec), overwrite=True)
    kept = {}
    for f in sorted((out / "shards").glob("*.parquet")):
        for r in pq.read_table(f, columns=["id", "text", "lines_removed", "chars_removed"]).to_pylist():
            kept[r["id"]] = r
    rejected = {}
    for f in sorted((out / "rejected").glob("*.parquet")):
        for r in pq.read_table(f, columns=["id", "text", "stage", "reason", "lines_removed"]).to_pylist():
            rejected[r["id"]] = r
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    return {"kept": kept, "rejected": rejected, "counts": counts}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


@pytest.fixture(scope="module")
def global_run(corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("global")
    return run(tmp, corpus[0], tmp / "out", window=0, tasks=1, workers=1)


# -- the library --------------------------------------------------------------------------------


def test_normalisation_folds_case_digits_punctuation_and_space():
    lines = normalise_lines("Home | About  Us\nhome · about us\n© 2023 Shop, Ltd.\n(C) 1999 shop ltd\n\n  ...  ")
    assert lines == ["home about us", "home about us", "0000 shop ltd", "c 0000 shop ltd", "", ""]
    h = line_hashes("Home | About  Us\nhome · about us\nab\n\n---", min_line_chars=3)
    assert h[0] == h[1] != 0 and list(h[2:]) == [0, 0, 0]  # too short, empty, punctuation only: never candidates


def test_keep_first_and_none():
    h = np.array([5, 7, 0, 5, 9, 7, 5, 0], dtype=np.uint64)
    assert duplicate_lines(h, "first").tolist() == [3, 5, 6]
    assert duplicate_lines(h, "none").tolist() == [0, 1, 3, 5, 6]
    assert drop_lines("a\nb\nc\nd", [0, 2]) == "b\nd"


# -- through the pipeline ----------------------------------------------------------------------------


def test_shared_lines_leave_every_page_but_the_first(corpus, global_run):
    _, texts = corpus
    kept, rejected = global_run["kept"], global_run["rejected"]
    # the first page keeps everything
    assert kept["s0-r0"]["text"] == texts["s0-r0"] and kept["s0-r0"]["lines_removed"] == 0
    for doc_id in ("s0-r1", "s0-r2", "s1-r0", "s1-r2"):
        row, orig = kept[doc_id], texts[doc_id]
        lines = orig.split("\n")
        want = "\n".join(x for x in lines if x not in NAV and x != COOKIE and not x.startswith("©"))
        assert row["text"] == want, doc_id
        assert row["lines_removed"] == 4 and row["chars_removed"] == len(orig) - len(want)
    # the body paragraphs are untouched
    assert all(p in kept["s1-r2"]["text"] for p in texts["s1-r2"].split("\n")[4:-2] if p)


def test_a_page_left_too_short_is_rejected_with_its_reason(corpus, global_run):
    _, texts = corpus
    row = global_run["rejected"]["s1-r1"]
    assert (row["stage"], row["reason"], row["lines_removed"]) == ("line_dedup", "line_dedup_too_short", 4)
    assert row["text"] == texts["s1-r1"]  # the rejected row keeps the original text
    c = global_run["counts"]
    assert c["read"] == 6 and c["kept"] == 5 and c["rejected"] == 1 and c["kept"] + c["rejected"] == c["read"]


def test_windows_are_respected(corpus, global_run, tmp_path):
    _, texts = corpus
    per_shard = run(tmp_path, corpus[0], tmp_path / "w1", window=1, tasks=1, workers=1)
    # window 1: the first page of the second shard is the first of its window and keeps its lines
    assert per_shard["kept"]["s1-r0"]["text"] == texts["s1-r0"]
    assert global_run["kept"]["s1-r0"]["text"] != texts["s1-r0"]
    assert per_shard["kept"]["s1-r2"]["lines_removed"] == 4
    assert per_shard["counts"]["kept"] + per_shard["counts"]["rejected"] == 6


def test_keep_none_removes_the_first_occurrence_too(corpus, tmp_path):
    _, texts = corpus
    res = run(tmp_path, corpus[0], tmp_path / "none", window=0, sets=["stages.line_dedup.keep=none"])
    assert res["kept"]["s0-r0"]["lines_removed"] == 4
    assert not any(x in res["kept"]["s0-r0"]["text"] for x in NAV + [COOKIE])


def test_same_output_for_any_tasks_workers_and_form(corpus, global_run, tmp_path):
    multi = run(tmp_path, corpus[0], tmp_path / "m2", window=0, tasks=2, workers=2)
    single = run(tmp_path, corpus[0], tmp_path / "s", window=0, sets=["stages.line_dedup.mode=single"])
    for other in (multi, single):
        assert other["kept"] == global_run["kept"]
        assert other["rejected"] == global_run["rejected"]


def test_rerun_is_byte_identical(corpus, tmp_path):
    a = run(tmp_path, corpus[0], tmp_path / "a", window=0, tasks=2, workers=1)
    b = run(tmp_path, corpus[0], tmp_path / "b", window=0, tasks=2, workers=2)
    assert a["kept"] == b["kept"]
    for sub in ("shards", "rejected"):
        fa = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / sub).glob("*.parquet"))
        fb = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b" / sub).glob("*.parquet"))
        assert fa == fb
        for p in fa:
            assert (tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes(), p


def test_slurm_dry_run_lists_the_phases(corpus, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "dry"
    recipe.write_text(RECIPE.format(inputs=corpus[0], out=out))
    res = r1data("run", str(recipe), "--executor", "slurm", "--dry-run", "--tasks", "2", "--dedup-window", "1")
    text = res.stdout
    assert "01-line_dedup-map" in text and "02-line_dedup-decide" in text
    assert not out.exists()


def test_the_fast_path_normalises_like_the_reference():
    from r1data.dedup.lines import normalised_line_bytes

    rng = random.Random(3)
    pool = [chr(c) for c in range(128)] + list("éÉßİ\u00a0\u200b\u3000“”…—٣४·©€\u2028\u0085\ufeff中文Ωω") + ["\n", " ", "ab"]
    for _ in range(500):
        s = "".join(rng.choice(pool) for _ in range(rng.randint(0, 80)))
        assert normalised_line_bytes(s) == [x.encode("utf-8", "surrogatepass") for x in normalise_lines(s)], repr(s)
