"""The Parquet contract: writer/reader round trip, bounded row groups, readable by every common tool."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r1data.io.schema import rejected_schema, shard_schema
from r1data.io.shards import ShardWriter, iter_documents
from r1data.stages.base import reject

COLS = {"lang": "string", "lang_score": "float32"}

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20))
meta = st.dictionaries(st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8), json_scalar, max_size=4)


@st.composite
def documents(draw):
    n = draw(st.integers(0, 40))
    docs = []
    for i in range(n):
        md = {k: v for k, v in draw(meta).items() if k not in shard_schema(COLS).names}
        md.update(
            source="web",
            input_file="in.warc.gz",
            input_index=draw(st.integers(0, 1000)),
            record_index=i,
            url=draw(st.one_of(st.none(), st.text(max_size=40))),
            lang=draw(st.one_of(st.none(), st.sampled_from(["en", "de", "zh"]))),
        )
        if md["lang"] is not None:
            md["lang_score"] = draw(st.floats(0, 1, width=32))
        docs.append(Document(text=draw(text), id=f"doc-{i}", metadata=md))
    return docs


def _normalise(doc: Document) -> tuple:
    md = {k: v for k, v in doc.metadata.items() if v is not None and not k.startswith("_")}
    return doc.id, doc.text, json.dumps(md, sort_keys=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=documents(), row_group_rows=st.integers(1, 7))
def test_round_trip(tmp_path_factory, docs, row_group_rows):
    path = tmp_path_factory.mktemp("rt") / "part-00000.parquet"
    w = ShardWriter(path, shard_schema(COLS), row_group_rows=row_group_rows)
    for d in docs:
        w.write(d)
    assert w.close() == len(docs)
    back = list(iter_documents(path))
    assert [_normalise(d) for d in back] == [_normalise(d) for d in docs]
    md = pq.ParquetFile(path).metadata
    assert md.num_rows == len(docs)
    assert all(md.row_group(i).num_rows <= row_group_rows for i in range(md.num_row_groups))
    assert pq.ParquetFile(path).schema_arrow.equals(shard_schema(COLS), check_metadata=False)


def test_rejected_rows_carry_stage_reason_duplicate_of(tmp_path):
    d = Document(text="x", id="a", metadata={"source": "web", "input_file": "f", "input_index": 0, "record_index": 0})
    reject(d, "exact_dedup", "exact_duplicate", duplicate_of="b")
    w = ShardWriter(tmp_path / "r.parquet", rejected_schema(COLS), rejected=True)
    w.write(d)
    w.close()
    row = pq.read_table(tmp_path / "r.parquet").to_pylist()[0]
    assert (row["stage"], row["reason"], row["duplicate_of"]) == ("exact_dedup", "exact_duplicate", "b")
    assert row["meta"] is None  # internal state never leaks into meta


def test_killed_writer_leaves_no_shard(tmp_path):
    w = ShardWriter(tmp_path / "part-00000.parquet", shard_schema())
    w.write(Document(text="x", id="a", metadata={"source": "s", "input_file": "f", "input_index": 0, "record_index": 0}))
    w.flush()
    assert not (tmp_path / "part-00000.parquet").exists()  # only the temporary file exists until close
    w.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    path = tmp_path_factory.mktemp("tools") / "part-00000.parquet"
    w = ShardWriter(path, shard_schema(COLS), row_group_rows=2)
    for i in range(5):
        w.write(Document(text=f"text {i} ünïcode", id=f"d{i}", metadata={"source": "web", "input_file": "f", "input_index": 0, "record_index": i, "lang": "en", "lang_score": 0.5, "k": i}))
    w.close()
    return path


def test_polars_reads_shards(shards):
    import polars as pl

    df = pl.read_parquet(shards)
    assert df.height == 5 and df["lang_score"].dtype == pl.Float32
    assert df.filter(pl.col("id") == "d3")["meta"].item() == '{"k": 3}'


def test_duckdb_reads_shards(shards):
    duckdb = pytest.importorskip("duckdb")
    n, k = duckdb.sql(f"select count(*), sum(cast(json_extract(meta, '$.k') as int)) from read_parquet('{shards}')").fetchall()[0]
    assert (n, k) == (5, 10)


def test_hf_datasets_reads_shards(shards, tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=str(shards), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == 5 and ds[4]["text"] == "text 4 ünïcode" and ds.features["input_index"].dtype == "int32"
