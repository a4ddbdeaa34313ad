"""r1data export: a real run's kept shards written as Megatron .bin/.idx, datatrove .ds, JSONL(.zst) and a
datasets folder, each read back with its ecosystem's reader; token ids and texts round-trip exactly."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from r1data.tokenize.bpe import load_tokenizer, train_bpe
from tests.conftest import r1data_cmd

pytestmark = pytest.mark.filterwarnings("ignore:Transformer Engine and Apex")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real pipeline run on the web-tiny WARCs (reader, extraction, url_filter) and a BPE trained on its shards."""
    d = tmp_path_factory.mktemp("export-run")
    recipe = d / "web.yaml"
    recipe.write_text(
        f"name: webtiny\ninputs: [{ROOT / 'tests/data/web-tiny'}]\nstages:\n  - stage: warc_reader\n  - stage: html_extract\n"
        f"  - stage: url_filter\noutput: {{path: {d / 'out'}}}\nexecutor: {{type: local, tasks: 1, workers: 1}}\n"
    )
    res = r1data_cmd("run", recipe, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    train_bpe([str(d / "out")], 700, d / "tok")
    return d / "out", d / "tok" / "tokenizer.json"


def shard_rows(out: Path) -> list[dict]:
    return [r for f in sorted((out / "shards").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def expected_tokens(out: Path, tok_path: Path) -> list[list[int]]:
    tok, _ = load_tokenizer(tok_path)
    eos = tok.token_to_id("<|endoftext|>")
    return [tok.encode(r["text"], add_special_tokens=False).ids + [eos] for r in shard_rows(out)]


def export(*args):
    return r1data_cmd("export", *map(str, args), timeout=300)


def read_megatron_spec(prefix: Path) -> list[np.ndarray]:
    """A reader written from the published MMIDIDX layout (megatron/core/datasets/indexed_dataset.py)."""
    codes = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}
    buf = prefix.with_suffix(".idx").read_bytes()
    assert buf[:9] == b"MMIDIDX\x00\x00"
    version, = struct.unpack_from("<Q", buf, 9)
    code, = struct.unpack_from("<B", buf, 17)
    n_seq, n_doc = struct.unpack_from("<QQ", buf, 18)
    assert version == 1
    off = 34
    lengths = np.frombuffer(buf, np.int32, n_seq, off)
    off += 4 * n_seq
    pointers = np.frombuffer(buf, np.int64, n_seq, off)
    off += 8 * n_seq
    doc_idx = np.frombuffer(buf, np.int64, n_doc, off)
    assert off + 8 * n_doc == len(buf)
    assert doc_idx[0] == 0 and doc_idx[-1] == n_seq
    dtype = codes[code]
    data = prefix.with_suffix(".bin").read_bytes()
    return [np.frombuffer(data, dtype, int(n), int(p)) for n, p in zip(lengths, pointers)]


def test_megatron_round_trips_token_ids(run, tmp_path):
    out, tok = run
    want = expected_tokens(out, tok)
    res = export(out, "--format", "megatron", "--tokenizer", tok, "--out", tmp_path / "mg")
    assert res.returncode == 0, res.stderr
    assert f"--data-path {tmp_path / 'mg' / 'data'}" in res.stdout
    got = read_megatron_spec(tmp_path / "mg" / "data")
    assert [g.dtype for g in got[:1]] == [np.uint16]  # vocabulary 700 < 65,500: Megatron's uint16
    assert [g.tolist() for g in got] == want
    m = json.loads((tmp_path / "mg" / "manifest.json").read_text())
    assert m["documents"] == len(want) == len(shard_rows(out)) and m["tokens"] == sum(map(len, want))
    assert m["tokenizer"]["eos_id"] == want[0][-1]

    # Megatron-Core's own reader (megatron-core from PyPI runs on CPU)
    pytest.importorskip("torch")
    try:
        from megatron.core.datasets.indexed_dataset import IndexedDataset
    except ImportError:
        pytest.skip("megatron-core not installed: checked with the spec reader above only")
    ds = IndexedDataset(str(tmp_path / "mg" / "data"))
    assert len(ds) == len(want)
    assert [ds[i].tolist() for i in range(len(ds))] == want
    assert ds.document_indices.tolist() == list(range(len(want) + 1))

    # 4-byte ids on request; the same ids
    res = export(out, "--format", "megatron", "--tokenizer", tok, "--out", tmp_path / "mg4", "--token-size", "4")
    assert res.returncode == 0, res.stderr
    ds4 = IndexedDataset(str(tmp_path / "mg4" / "data"))
    assert ds4[0].dtype == np.int32 and [ds4[i].tolist() for i in range(len(ds4))] == want


def test_datatrove_round_trips_with_datatroves_reader(run, tmp_path):
    out, tok = run
    want = expected_tokens(out, tok)
    flat = [t for doc in want for t in doc]
    res = export(out, "--format", "datatrove", "--tokenizer", tok, "--out", tmp_path / "dt", "--name", "webtiny", "--loss")
    assert res.returncode == 0, res.stderr
    d = tmp_path / "dt"
    assert sorted(p.name for p in d.iterdir()) == ["manifest.json", "webtiny.ds", "webtiny.ds.index", "webtiny.ds.loss", "webtiny.ds.metadata"]
    pytest.importorskip("torch")
    from datatrove.utils.dataset import DatatroveFolderDataset

    # one window holding every token; positions come from the .index file and restart at each document
    ds = DatatroveFolderDataset(str(d), seq_len=len(flat) - 1, filename_pattern="*.ds", token_size=2, return_positions=True)
    assert len(ds) == 1
    item = ds[0]
    assert item["input_ids"].tolist() == flat
    assert item["positions"].tolist() == [i for doc in want for i in range(len(doc))]
    # windows of 64 + 1 tokens, as a trainer reads them
    ds = DatatroveFolderDataset(str(d), seq_len=64, filename_pattern="*.ds", token_size=2)
    assert [t for i in range(len(ds)) for t in ds[i]["input_ids"].tolist()] == flat[: len(ds) * 65]
    assert np.fromfile(d / "webtiny.ds.index", "<u8").tolist() == np.cumsum([len(x) for x in want]).tolist()
    assert (d / "webtiny.ds.loss").read_bytes() == b"\x01" * len(flat)
    first = (d / "webtiny.ds.metadata").read_text().splitlines()
    assert first[0].endswith("|2") and first[1] == str(len(flat))


def test_token_shards_export_as_they_are(run, tmp_path):
    out, tok = run
    from r1data.tokenize.encode import encode_shards

    encode_shards(tok, [str(out)], tmp_path / "tokens")
    res = export(tmp_path / "tokens", "--format", "megatron", "--out", tmp_path / "mg")
    assert res.returncode == 0, res.stderr
    assert [g.tolist() for g in read_megatron_spec(tmp_path / "mg" / "data")] == expected_tokens(out, tok)
    res = export(tmp_path / "tokens", "--format", "jsonl", "--out", tmp_path / "j")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "token shards" in res.stderr


def test_jsonl_and_zst_round_trip_every_column(run, tmp_path):
    out, _ = run
    rows = shard_rows(out)
    for r in rows:
        r["meta"] = json.loads(r["meta"]) if r["meta"] else None
    for fmt, name in (("jsonl", "j"), ("jsonl.zst", "z")):
        res = export(out, "--format", fmt, "--out", tmp_path / name)
        assert res.returncode == 0, res.stderr
    plain = [json.loads(line) for f in sorted((tmp_path / "j").glob("*.jsonl")) for line in f.read_text("utf-8").splitlines()]
    import zstandard

    zst = []
    for f in sorted((tmp_path / "z").glob("*.jsonl.zst")):
        with zstandard.ZstdDecompressor().stream_reader(open(f, "rb")) as r:
            zst += [json.loads(line) for line in io.TextIOWrapper(r, encoding="utf-8")]
    assert plain == rows and zst == rows
    assert any(r["url"] for r in rows)


def test_hf_folder_and_parquet_loading(run, tmp_path):
    out, _ = run
    datasets = pytest.importorskip("datasets")
    rows = shard_rows(out)
    res = export(out, "--format", "hf", "--out", tmp_path / "hf")
    assert res.returncode == 0, res.stderr
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds["text"] == [r["text"] for r in rows] and ds["id"] == [r["id"] for r in rows]
    assert not (tmp_path / "hf" / ".hf-cache").exists()
    # the shards load as they are, too (what docs/export.md says)
    pq_ds = datasets.load_dataset("parquet", data_files=sorted(str(f) for f in (out / "shards").glob("*.parquet")),
                                  split="train", cache_dir=str(tmp_path / "cache"))
    assert pq_ds["text"] == [r["text"] for r in rows]


def test_one_line_errors(run, tmp_path):
    out, tok = run
    (tmp_path / "empty" / "shards").mkdir(parents=True)
    cases = [
        ((tmp_path / "empty", "--format", "jsonl", "--out", tmp_path / "o1"), "no .parquet files"),
        ((out, "--format", "megatron", "--tokenizer", tmp_path / "nope.json", "--out", tmp_path / "o2"), "nope.json: no such tokenizer"),
        ((out, "--format", "megatron", "--out", tmp_path / "o3"), "needs --tokenizer"),
        ((out, "--format", "parquet", "--out", tmp_path / "o4"), "unknown format"),
    ]
    for args, needle in cases:
        res = export(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and needle in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    assert export(out, "--format", "jsonl", "--out", tmp_path / "o5").returncode == 0
    res = export(out, "--format", "jsonl.zst", "--out", tmp_path / "o5")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--overwrite" in res.stderr
    res = export(out, "--format", "jsonl.zst", "--out", tmp_path / "o5", "--overwrite")
    assert res.returncode == 0 and sorted(p.suffix for p in (tmp_path / "o5").iterdir()) == [".json", ".zst"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    res = export(out, "--format", "jsonl", "--out", tmp_path / "mine", "--overwrite")
    assert res.returncode == 2 and "not an earlier r1data export" in res.stderr and (tmp_path / "mine" / "notes.txt").exists()


def test_datatrove_files_equal_datatroves_own_tokenizer_output(run, tmp_path):
    """The same documents through datatrove's DocumentTokenizer (no shuffling) give byte-identical files."""
    out, tok = run
    from datatrove.data import Document
    from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

    docs = [Document(text=r["text"], id=r["id"]) for r in shard_rows(out)]
    theirs = DocumentTokenizer(str(tmp_path / "theirs"), tokenizer_name_or_path=str(tok), eos_token="<|endoftext|>",
                               shuffle_documents=False, save_filename="web")
    for _ in theirs.run(iter(docs)) or ():
        pass
    res = export(out, "--format", "datatrove", "--tokenizer", tok, "--out", tmp_path / "ours", "--name", "web")
    assert res.returncode == 0, res.stderr
    t = tmp_path / "theirs" / "web_00000_unshuffled.ds"
    o = tmp_path / "ours" / "web.ds"
    assert o.read_bytes() == t.read_bytes()
    assert Path(str(o) + ".index").read_bytes() == Path(str(t) + ".index").read_bytes()
    assert Path(str(o) + ".metadata").read_text() == Path(str(t) + ".metadata").read_text()


def test_megatron_files_equal_megatron_cores_builder_output(run, tmp_path):
    """The same token ids through Megatron-Core's IndexedDatasetBuilder give byte-identical .bin/.idx files."""
    out, tok = run
    torch = pytest.importorskip("torch")
    try:
        from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    except ImportError:
        pytest.skip("megatron-core not installed")
    want = expected_tokens(out, tok)
    b = IndexedDatasetBuilder(str(tmp_path / "theirs.bin"), dtype=np.uint16)
    for ids in want:
        b.add_document(torch.tensor(ids), [len(ids)])
    b.finalize(str(tmp_path / "theirs.idx"))
    res = export(out, "--format", "megatron", "--tokenizer", tok, "--out", tmp_path / "ours")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ours" / "data.bin").read_bytes() == (tmp_path / "theirs.bin").read_bytes()
    assert (tmp_path / "ours" / "data.idx").read_bytes() == (tmp_path / "theirs.idx").read_bytes()
