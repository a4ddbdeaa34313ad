"""Token-shard streaming: splits, epochs, exact resume, rank slices, and a property test of packing."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1data.errors import ConfigError, InputError
from r1data.tokenize.encode import TOKEN_SCHEMA
from r1data.train.data import HASH_BUCKETS, BatchLoader, PackedStream, doc_buckets, open_token_shards
from tests.trainutil import make_tokens


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    return make_tokens(tmp_path_factory.mktemp("data"))


def all_docs(path):
    return {r["id"]: np.array(r["tokens"], dtype=np.int32) for f in sorted(path.glob("*.parquet"))
            for r in pq.read_table(f, columns=["id", "tokens"]).to_pylist()}


def drain(stream, chunk=997):
    out = []
    try:
        while True:
            out.append(stream.read(chunk))
    except EOFError:
        pass
    return np.concatenate(out) if out else np.empty(0, np.int32)


def test_splits_are_disjoint_and_cover_every_document(tokens):
    shards = open_token_shards(tokens)
    docs = all_docs(tokens)
    held = {i for i in docs if doc_buckets([i])[0] < 0.1 * HASH_BUCKETS}
    assert 0 < len(held) < len(docs)
    counts = {}
    for split in ("train", "eval"):
        got = drain(PackedStream(shards, split, 0.1, shuffle=True, seed=7, repeat=False))
        ids = held if split == "eval" else set(docs) - held
        want = np.concatenate([docs[i] for i in sorted(ids)])
        # One epoch holds every token of the split exactly once (up to the last partial read).
        assert len(want) - len(got) < 997
        counts[split] = np.bincount(got, minlength=512)
        assert np.all(counts[split] <= np.bincount(want, minlength=512))
    assert counts["train"].sum() + counts["eval"].sum() > 0.99 * sum(len(d) for d in docs.values())


def test_shuffle_changes_order_per_epoch_but_is_seeded(tokens):
    shards = open_token_shards(tokens)
    a = PackedStream(shards, "train", 0.1, shuffle=True, seed=1)
    b = PackedStream(shards, "train", 0.1, shuffle=True, seed=1)
    c = PackedStream(shards, "train", 0.1, shuffle=True, seed=2)
    n = 250_000  # more than one epoch of train tokens (~180k)
    ra, rb, rc = a.read(n), b.read(n), c.read(n)
    assert np.array_equal(ra, rb) and not np.array_equal(ra, rc)
    assert a.epoch == 1  # wrapped into the second epoch
    epoch_len = len(drain(PackedStream(shards, "train", 0.1, shuffle=True, seed=1, repeat=False), chunk=1))
    assert not np.array_equal(ra[epoch_len:epoch_len + 1000], ra[:1000])  # the next epoch is reshuffled


def test_state_dict_resumes_exactly(tokens):
    shards = open_token_shards(tokens)
    s = PackedStream(shards, "train", 0.1, shuffle=True, seed=3)
    s.read(12_345)
    state = s.state_dict()
    expected = s.read(50_000)
    t = PackedStream(shards, "train", 0.1, shuffle=True, seed=3)
    t.load_state_dict(state)
    assert np.array_equal(t.read(50_000), expected)
    u = PackedStream(shards, "train", 0.2, shuffle=True, seed=3)
    with pytest.raises(ConfigError, match="eval_fraction"):
        u.load_state_dict(state)


def test_ranks_take_consecutive_slices_of_the_global_batch(tokens):
    shards = open_token_shards(tokens)
    one = BatchLoader(PackedStream(shards, "train", 0.1, shuffle=True, seed=5), batch_size=6, seq_len=32)
    ranks = [BatchLoader(PackedStream(shards, "train", 0.1, shuffle=True, seed=5), 3, 32, rank=r, world_size=2)
             for r in range(2)]
    for _ in range(4):
        glob = one.next_numpy()
        assert np.array_equal(np.concatenate([r.next_numpy() for r in ranks]), glob)
    x, y = one.next()
    assert x.shape == (6, 32) and np.array_equal(x[:, 1:].numpy(), y[:, :-1].numpy())


def test_bad_shards(tokens, tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        open_token_shards(tmp_path / "none")
    with pytest.raises(InputError, match="outside the model's vocabulary of 100"):
        PackedStream(open_token_shards(tokens), "train", 0.1, shuffle=False, seed=0, vocab_size=100).read(10)
    empty = tmp_path / "empty"
    empty.mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=TOKEN_SCHEMA), empty / "part-00000.parquet")
    with pytest.raises(InputError, match="holds no tokens"):
        PackedStream(open_token_shards(empty), "train", 0.0, shuffle=False, seed=0).read(10)


def test_shards_must_be_the_ones_the_manifest_lists(tokens, tmp_path):
    """A token folder is trained on only as its manifest describes it: a listed shard that is
    missing (a partial copy), a .parquet file it does not list, or a shard with another row count
    is one InputError line, not a quiet run on part of the data."""
    import json
    import shutil

    manifest = json.loads((tokens / "manifest.json").read_text())
    names = [o["path"] for o in manifest["outputs"]]
    assert names and open_token_shards(tokens).files  # the intact folder opens

    partial = tmp_path / "partial"
    shutil.copytree(tokens, partial)
    m = dict(manifest, outputs=manifest["outputs"] + [dict(manifest["outputs"][0], path="part-09999.parquet")])
    (partial / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match=r"1 of the \d+ shards .* are missing \(part-09999.parquet\)"):
        open_token_shards(partial)

    stray = tmp_path / "stray"
    shutil.copytree(tokens, stray)
    shutil.copy(stray / names[0], stray / "extra.parquet")
    with pytest.raises(InputError, match=r"does not list \(extra.parquet\)"):
        open_token_shards(stray)

    replaced = tmp_path / "replaced"
    shutil.copytree(tokens, replaced)
    table = pq.read_table(replaced / names[0])
    pq.write_table(table.slice(0, max(table.num_rows - 1, 0)), replaced / names[0])
    with pytest.raises(InputError, match="rows where manifest.json lists"):
        open_token_shards(replaced)


@settings(max_examples=25, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 999), min_size=0, max_size=40), min_size=1, max_size=30),
       rg_rows=st.integers(1, 7), chunk=st.integers(1, 50))
def test_unshuffled_stream_is_the_concatenation_of_documents(tmp_path_factory, docs, rg_rows, chunk):
    folder = tmp_path_factory.mktemp("prop")
    rows = [{"id": f"d{i}", "source": None, "tokens": d, "n_tokens": len(d), "n_bytes": len(d)} for i, d in enumerate(docs)]
    pq.write_table(pa.Table.from_pylist(rows, schema=TOKEN_SCHEMA), folder / "a.parquet", row_group_size=rg_rows)
    want = np.array([t for d in docs for t in d], dtype=np.int32)
    shards = open_token_shards(folder)
    if len(want) == 0:
        with pytest.raises(InputError):
            PackedStream(shards, "all", 0.0, shuffle=False, seed=0).read(1)
        return
    got = drain(PackedStream(shards, "all", 0.0, shuffle=False, seed=0, repeat=False), chunk=chunk)
    assert np.array_equal(got, want[:len(got)]) and len(want) - len(got) < chunk
    # Endless: the second epoch starts again at the first token.
    s = PackedStream(shards, "all", 0.0, shuffle=False, seed=0)
    assert np.array_equal(s.read(2 * len(want)), np.concatenate([want, want]))
