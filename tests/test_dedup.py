"""Dedup stages through the pipeline: reasons, window semantics, single vs multi form, tasks/workers.

A generated JSONL corpus of six shards plants exact copies and near copies (a few words changed)
of earlier documents, in the same shard and in other shards, so every rule can be checked against
known answers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from r1data.config.spec import Overrides
from r1data.run.pipeline import execute, load_spec, plan_run
from r1data.stages.dedup import ExactDedup, MinhashDedup, MinhashDedupConfig

SHARDS = 6


def _words(rng: random.Random, n: int) -> list[str]:
    vocab = [f"w{i}" for i in range(5000)]
    return [rng.choice(vocab) for _ in range(n)]


def _near_copy(rng: random.Random, text: str, changes: int = 1) -> str:
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = f"changed{rng.randrange(10**6)}"
    return " ".join(words)


def make_corpus(folder: Path, seed: int = 0) -> dict:
    """Six JSONL shards of 12 documents; every 4th document copies an earlier original (from any
    shard), exactly (after normalisation) or with one word changed (Jaccard ~0.95). An original is
    copied at most once and copies are never copied, so each duplicate group is one pair.

    Returns ``{"near": [(copy_id, original_id, original_shard, copy_shard)], "exact": [...]}``."""
    rng = random.Random(seed)
    shards: list[list[dict]] = [[] for _ in range(SHARDS)]
    truth = {"near": [], "exact": []}
    originals: list[tuple[int, dict]] = []
    for s in range(SHARDS):
        for r in range(12):
            doc = {"id": f"s{s}-r{r}", "text": " ".join(_words(rng, rng.randint(150, 250)))}
            if originals and r % 4 == 3:
                src_shard, src = originals.pop(rng.randrange(len(originals)))
                if r % 8 == 3:
                    doc["text"] = src["text"].upper() + "  \n"  # equal after case and space folding
                    truth["exact"].append((doc["id"], src["id"], src_shard, s))
                else:
                    doc["text"] = _near_copy(rng, src["text"])
                    truth["near"].append((doc["id"], src["id"], src_shard, s))
            else:
                originals.append((s, doc))
            shards[s].append(doc)
    folder.mkdir(parents=True, exist_ok=True)
    for s, docs in enumerate(shards):
        (folder / f"part-{s:02d}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return truth


RECIPE = """\
name: dedup-test
inputs: [{inputs}]
stages:
  - stage: jsonl_reader
    source: test
  - stage: exact_dedup
  - stage: minhash_dedup
output:
  path: {out}
"""


def run_dedup(tmp: Path, corpus: Path, out: Path, *, mode="multi", window=None, tasks=None, workers=None, sets=()) -> dict:
    recipe = tmp / "recipe.yaml"
    recipe.write_text(RECIPE.format(inputs=corpus, out=out))
    sets = list(sets) + [f"stages.exact_dedup.mode={mode}", f"stages.minhash_dedup.mode={mode}"]
    spec = load_spec(recipe, Overrides(sets=sets, dedup_window=window, tasks=tasks, workers=workers))
    execute(plan_run(spec), overwrite=True)
    return outcome(out)


def outcome(out: Path) -> dict:
    """Kept ids and, per rejected id, (stage, reason, duplicate_of): independent of file layout."""
    kept = sorted(i for f in (out / "shards").glob("*.parquet") for i in pq.read_table(f, columns=["id"])["id"].to_pylist())
    rejected = {}
    for f in (out / "rejected").glob("*.parquet"):
        for r in pq.read_table(f, columns=["id", "stage", "reason", "duplicate_of"]).to_pylist():
            rejected[r["id"]] = (r["stage"], r["reason"], r["duplicate_of"])
    return {"kept": kept, "rejected": rejected}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_corpus(folder)


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    """Multi form, one global window, one task, one worker."""
    tmp = tmp_path_factory.mktemp("ref")
    return run_dedup(tmp, corpus[0], tmp / "out", window=0, tasks=1, workers=1)


# -- the stage on tiny texts -------------------------------------------------------------------


def _decide(stage, texts: list[str]) -> dict:
    docs = [Document(text=t, id=f"d{i}", metadata={"input_index": 0, "record_index": i}) for i, t in enumerate(texts)]
    stage._ensure_setup()
    assert stage.map_batch(docs) == [None] * len(docs)
    rows = pa.table(
        {
            "id": [d.id for d in docs],
            "input_index": pa.array([0] * len(docs), type=pa.int32()),
            "record_index": pa.array(range(len(docs)), type=pa.int64()),
            **{c: [d.metadata[c] for d in docs] for c in stage.work_columns},
        }
    )
    t = stage.decide_window(rows)
    return {f"d{r}": (reason, dup) for r, reason, dup in zip(*(t.column(c).to_pylist() for c in ("record_index", "reason", "duplicate_of")))}


BASE = (
    "The quick brown fox jumps over the lazy dog while the farmer sleeps under the old oak tree. "
    "Down by the river the children play until the sun goes down behind the hills of the valley, "
    "and their mother calls them home for supper with a voice that carries across the fields. "
    "In the morning the baker opens his shop early, the smell of fresh bread drifting along the "
    "narrow street where merchants set out fruit, cloth and copper pots for the weekly market. "
    "Travellers arrive on foot and by cart, trading news of distant towns, of storms at sea and "
    "of a new bridge that the duke has promised to build before the winter floods return again."
)


def test_minhash_near_duplicate_reason_and_pointer():
    near = BASE.replace("children play", "children swim")
    other = "A completely different text about parquet files, row groups and the zstd codec. " * 5
    assert _decide(MinhashDedup(), [BASE, other, near]) == {"d2": ("near_duplicate", "d0")}


def test_minhash_keeps_documents_below_the_threshold():
    words = BASE.split()
    half = " ".join(words[: len(words) // 2] + [f"new{i}" for i in range(len(words) // 2)])
    assert _decide(MinhashDedup(), [BASE, half]) == {}
    # with a low enough threshold the same pair is a near duplicate
    low = MinhashDedup(MinhashDedupConfig(threshold=0.2))
    assert _decide(low, [BASE, half]) == {"d1": ("near_duplicate", "d0")}


def test_minhash_clusters_point_to_their_first_document():
    a1 = BASE.replace("lazy dog", "lazy cat")
    a2 = a1.replace("old oak", "old elm")
    assert _decide(MinhashDedup(), [BASE, a1, a2]) == {"d1": ("near_duplicate", "d0"), "d2": ("near_duplicate", "d0")}


def test_minhash_ignores_texts_without_words():
    assert _decide(MinhashDedup(), ["...", "!!!", "—", BASE]) == {}


def test_exact_duplicate_reason_and_pointer():
    assert _decide(ExactDedup(), ["Hello   World", "other", "hello world"]) == {"d2": ("exact_duplicate", "d0")}


def test_config_errors_are_clear(tmp_path):
    from r1data.errors import ConfigError

    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(inputs=tmp_path, out=tmp_path / "o").replace("  - stage: minhash_dedup\n", "  - stage: minhash_dedup\n    bands: 20\n    rows: 8\n"))
    with pytest.raises(ConfigError) as e:
        load_spec(recipe)
    assert "stages[2]" in str(e.value) and "bands x rows = 160 exceeds permutations = 112" in str(e.value)
    recipe.write_text(RECIPE.format(inputs=tmp_path, out=tmp_path / "o").replace("  - stage: minhash_dedup\n", "  - stage: minhash_dedup\n    bands: 20\n"))
    with pytest.raises(ConfigError, match="set both bands and rows"):
        load_spec(recipe)


# -- the pipeline ------------------------------------------------------------------------------


def test_planted_duplicates_are_found(corpus, reference):
    _, truth = corpus
    rej = reference["rejected"]
    for copy_id, src_id, *_ in truth["exact"]:
        assert rej[copy_id] == ("exact_dedup", "exact_duplicate", src_id)
    for copy_id, src_id, *_ in truth["near"]:
        assert rej[copy_id][:2] == ("minhash_dedup", "near_duplicate")
    planted = {c for c, *_ in truth["exact"] + truth["near"]}
    assert set(rej) == planted  # and nothing else
    assert len(reference["kept"]) == SHARDS * 12 - len(planted)


def test_window_semantics(corpus, tmp_path):
    """window 2: shards {0,1}, {2,3}, {4,5}; a copy is removed only when its original is in its window."""
    folder, truth = corpus
    got = run_dedup(tmp_path, folder, tmp_path / "out", window=2, tasks=3, workers=1)
    for kind in ("exact", "near"):
        for copy_id, src_id, src_shard, shard in truth[kind]:
            if src_shard // 2 == shard // 2:
                assert got["rejected"][copy_id][1] == f"{kind}_duplicate", copy_id
            else:
                assert copy_id in got["kept"], copy_id
    assert any(s // 2 != c // 2 for *_, s, c in truth["near"])  # the corpus does test the cross-window case


def test_single_form_gives_the_same_output(corpus, reference, tmp_path):
    assert run_dedup(tmp_path, corpus[0], tmp_path / "out", mode="single", window=0, workers=1) == reference


@pytest.mark.parametrize("tasks,workers", [(2, 1), (3, 1), pytest.param(3, 2, marks=pytest.mark.slow)])
def test_kept_set_does_not_depend_on_tasks_or_workers(corpus, reference, tmp_path, tasks, workers):
    assert run_dedup(tmp_path, corpus[0], tmp_path / "out", window=0, tasks=tasks, workers=workers) == reference


def test_band_groups_and_windowed_single_form_agree(corpus, tmp_path):
    folder, _ = corpus
    multi = run_dedup(tmp_path, folder, tmp_path / "m", window=2, tasks=2, workers=1, sets=["stages.minhash_dedup.band_groups=9"])
    single = run_dedup(tmp_path, folder, tmp_path / "s", mode="single", window=2, workers=1)
    assert multi == single


def test_rerun_on_the_output_removes_nothing_more(reference, tmp_path, corpus):
    """The kept shards, read back as input, lose nothing to dedup (one global window)."""
    out = Path(tmp_path) / "again"
    first = tmp_path / "first"
    run_dedup(tmp_path, corpus[0], first, window=0, tasks=2, workers=1)
    recipe = tmp_path / "again.yaml"
    recipe.write_text(RECIPE.format(inputs=first / "shards", out=out).replace("jsonl_reader", "parquet_reader"))
    spec = load_spec(recipe, Overrides(dedup_window=0))
    plan = plan_run(spec)
    plan.workers = 1
    res = execute(plan, overwrite=True)
    assert res.counts["rejected"] == 0 and res.counts["kept"] == len(reference["kept"])


# -- the multi form's reduce steps against the in-memory decision (hypothesis) -------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _variants(rng: random.Random, n_docs: int) -> list[str]:
    bases = [" ".join(_words(rng, rng.randint(30, 120))) for _ in range(3)]
    out = []
    for _ in range(n_docs):
        r = rng.random()
        if r < 0.6:
            out.append(_near_copy(rng, rng.choice(bases), changes=rng.randint(0, 3)))
        elif r < 0.7:
            out.append("")  # no words: never a duplicate
        else:
            out.append(" ".join(_words(rng, rng.randint(1, 40))))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 12), min_size=1, max_size=6),
    st.integers(0, 4),
    st.integers(1, 14),
    st.sampled_from([0.6, 0.8, 0.9]),
)
def test_bucket_and_cluster_tasks_decide_like_the_single_form(tmp_path_factory, rng, shard_sizes, window, groups, threshold):
    from r1data.stages.minhash_phases import MinhashBuckets, MinhashClusters
    from r1data.stages.barrier import BarrierContext, make_windows
    from r1data.io.schema import shard_schema
    from r1data.io.shards import ShardWriter

    stage = MinhashDedup(MinhashDedupConfig(threshold=threshold, band_groups=groups, window=window))
    stage._ensure_setup()
    ctx = BarrierContext(work_dir=str(tmp_path_factory.mktemp("work")), windows=make_windows(len(shard_sizes), window))
    schema = pa.schema(list(shard_schema({})) + stage.work_schema())
    tables = []
    for i, n in enumerate(shard_sizes):
        # records of a shard that earlier stages dropped leave gaps in record_index
        records = sorted(rng.sample(range(3 * n + 1), n))
        docs = [Document(text=t, id=f"{i}-{r}", metadata={"input_index": i, "record_index": r, "source": "t", "input_file": "f"})
                for t, r in zip(_variants(rng, n), records)]
        stage.map_batch(docs)
        w = ShardWriter(ctx.docs_path(i), schema)
        for d in docs:
            w.write(d)
        w.close()
        tables.append(pq.read_table(ctx.docs_path(i), columns=["id", "input_index", "record_index", "minhash"]))
    buckets = MinhashBuckets(stage)
    for rank in range(buckets.tasks(ctx)):
        buckets.run(ctx, rank, buckets.tasks(ctx))
    clusters = MinhashClusters(stage, buckets)
    for k, members in enumerate(ctx.windows):
        clusters.run(ctx, k, len(ctx.windows))
        multi = pq.read_table(ctx.decisions_path(k)).to_pylist()
        single = stage.decide_window(pa.concat_tables([tables[i] for i in members])).to_pylist()
        assert sorted(multi, key=lambda d: (d["input_index"], d["record_index"])) == sorted(
            single, key=lambda d: (d["input_index"], d["record_index"])
        )
