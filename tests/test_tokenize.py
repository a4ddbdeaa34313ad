"""r1data tokenize: BPE training, encoding into token shards, the manifest, resume, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from r1data.errors import ConfigError, InputError
from r1data.tokenize.bpe import load_tokenizer, train_bpe
from r1data.tokenize.encode import encode_shards
from tests.trainutil import TRAIN_TINY


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    return train_bpe([str(TRAIN_TINY)], 600, out), out / "tokenizer.json"


def texts():
    return {r["id"]: r["text"] for f in sorted((TRAIN_TINY / "shards").glob("*.parquet"))
            for r in pq.read_table(f, columns=["id", "text"]).to_pylist()}


def test_bpe_training(tok):
    manifest, path = tok
    assert manifest["vocab_size"] == 600 and manifest["special_tokens"] == {"<|endoftext|>": 0}
    assert manifest["documents"] == 60 and len(manifest["inputs"]) == 2
    t, _ = load_tokenizer(path)
    ids = t.encode("Double, double toil and trouble").ids
    assert t.decode(ids) == "Double, double toil and trouble" and len(ids) < 31  # merges learned


def test_encode_round_trips_every_document(tok, tmp_path):
    _, path = tok
    m = encode_shards(path, [str(TRAIN_TINY)], tmp_path / "tokens", row_group_tokens=4096)
    t, _ = load_tokenizer(path)
    want = texts()
    rows = [r for f in sorted((tmp_path / "tokens").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == len(want) == m["totals"]["rows"] == 60
    for r in rows:
        assert r["tokens"][-1] == 0 and r["n_tokens"] == len(r["tokens"])
        assert t.decode(r["tokens"][:-1], skip_special_tokens=False) == want[r["id"]]  # byte-level BPE is lossless
        assert r["n_bytes"] == len(want[r["id"]].encode()) and r["source"] == "books"
    assert m["totals"]["tokens"] == sum(r["n_tokens"] for r in rows)
    assert m["tokenizer"]["eos_id"] == 0 and m["tokenizer"]["vocab_size"] == 600
    on_disk = json.loads((tmp_path / "tokens" / "manifest.json").read_text())
    assert on_disk["outputs"][0]["sha256"] and on_disk["inputs"][1]["rows"] == 27
    # Row groups close as soon as they reach row_group_tokens, so each is under that plus one document.
    longest = max(r["n_tokens"] for r in rows)
    for f in (tmp_path / "tokens").glob("*.parquet"):
        pf = pq.ParquetFile(f)
        sizes = [pc.sum(pf.read_row_group(i, columns=["n_tokens"]).column(0)).as_py() for i in range(pf.num_row_groups)]
        assert pf.num_row_groups > 1 and all(s < 4096 + longest for s in sizes)


def test_any_tokenizer_json_works_without_truncation(shared, tmp_path):
    bert = shared / "tokenizers" / "bert-minilm" / "tokenizer.json"
    m = encode_shards(bert, [str(TRAIN_TINY / "shards" / "part-00000.parquet")], tmp_path / "tokens")
    assert m["tokenizer"]["eos_token"] == "[SEP]" and m["tokenizer"]["eos_id"] == 102
    lengths = pq.read_table(tmp_path / "tokens" / "part-00000.parquet", columns=["n_tokens"]).column(0).to_numpy()
    assert lengths.max() > 512  # the file asks for truncation at 512; encoding must not truncate documents


def test_interrupted_encode_resumes_and_matches_a_clean_run(tok, tmp_path):
    _, path = tok
    clean = encode_shards(path, [str(TRAIN_TINY)], tmp_path / "clean")

    def stop_after_first(src, info):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_shards(path, [str(TRAIN_TINY)], tmp_path / "t", on_file=stop_after_first)
    assert (tmp_path / "t" / "part-00000.parquet").exists() and not (tmp_path / "t" / "manifest.json").exists()
    done = []
    m = encode_shards(path, [str(TRAIN_TINY)], tmp_path / "t", on_file=lambda s, i: done.append(i.get("resumed", False)))
    assert done == [True, False]
    assert [o["sha256"] for o in m["outputs"]] == [o["sha256"] for o in clean["outputs"]]
    with pytest.raises(InputError, match="already holds encoded shards"):
        encode_shards(path, [str(TRAIN_TINY)], tmp_path / "t")


def test_bad_input(tok, tmp_path):
    _, path = tok
    with pytest.raises(ConfigError, match=r"--vocab-size: must be at least 257"):
        train_bpe([str(TRAIN_TINY)], 100, tmp_path / "x")
    with pytest.raises(InputError, match="no such file or folder"):
        encode_shards(path, [str(tmp_path / "nowhere")], tmp_path / "y")
    pq.write_table(pq.read_table(TRAIN_TINY / "shards" / "part-00000.parquet", columns=["id"]), tmp_path / "no-text.parquet")
    with pytest.raises(InputError, match=r"no-text.parquet: missing column\(s\) text"):
        encode_shards(path, [str(tmp_path / "no-text.parquet")], tmp_path / "z")
    with pytest.raises(ConfigError, match="--eos: '<nope>' is not a token"):
        encode_shards(path, [str(TRAIN_TINY)], tmp_path / "w", eos="<nope>")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a tokenizers JSON file"):
        load_tokenizer(tmp_path / "bad.json")


def test_cli(cli, tmp_path):
    r = cli("tokenize", "train", "--shards", TRAIN_TINY, "--vocab-size", 300, "--out", tmp_path / "tok")
    assert r.exit_code == 0, r.output
    assert "vocabulary 300" in r.stdout
    r = cli("tokenize", "encode", TRAIN_TINY, "--tokenizer", tmp_path / "tok" / "tokenizer.json", "--out", tmp_path / "tokens")
    assert r.exit_code == 0 and "60 documents" in r.stdout
    r = cli("tokenize", "train", "--shards", tmp_path / "none", "--vocab-size", 300, "--out", tmp_path / "tok2")
    assert r.exit_code == 2 and r.stderr.strip() == f"error: {tmp_path / 'none'}: no such file or folder"
    assert np.all(pq.read_table(tmp_path / "tokens" / "part-00001.parquet", columns=["n_tokens"]).column(0).to_numpy() > 1)
