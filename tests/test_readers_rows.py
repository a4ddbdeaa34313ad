"""JSONL / JSON / Parquet / CSV readers with a field mapping, and r1data shards read back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from r1data.io.schema import shard_schema
from r1data.io.shards import ShardWriter, iter_documents
from r1data.stages.base import InputFile, rejection
from r1data.stages.readers import CsvReader, CsvReaderConfig, JsonlReader, ParquetReader, RowReaderConfig

ROOT = Path(__file__).resolve().parents[1]
MATH = ROOT / "data" / "sample" / "math"
GSM8K_TEMPLATE = "Question: {question}\nAnswer: {answer}"


def read(cls, path: Path, **config) -> list[Document]:
    config_cls = CsvReaderConfig if cls is CsvReader else RowReaderConfig
    reader = cls(config_cls(**config))
    reader.files = [InputFile(index=0, uri=str(path))]
    docs = list(reader.run(None, 0, 1))
    read.report = reader.report
    return docs


def reason(doc):
    r = rejection(doc)
    return r[1] if r else None


def test_gsm8k_question_and_answer_become_text():
    docs = read(JsonlReader, MATH / "gsm8k" / "train.jsonl.gz", source="math", template=GSM8K_TEMPLATE)
    assert len(docs) == 7473 and not any(rejection(d) for d in docs)
    first = docs[0]
    assert first.id == "math:train.jsonl.gz#0"
    assert first.text.startswith("Question: Natalia sold clips to 48 of her friends in April")
    assert first.text.endswith("Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")
    assert {k: v for k, v in first.metadata.items() if k not in ("source", "input_file", "input_index", "record_index")} == {}


def test_first_matching_template_wins_and_other_fields_go_to_meta():
    templates = [GSM8K_TEMPLATE, "Problem: {problem}\n\nSolution: {solution}\n\nFinal answer: {answer}"]
    docs = read(JsonlReader, MATH / "champ" / "champ_problems.jsonl", source="math", template=templates)
    assert len(docs) == 270 and not any(rejection(d) for d in docs)
    d = docs[0]
    assert d.id == "P_Combinatorics_1" and d.metadata["category"] == "Combinatorics"
    assert d.text.startswith("Problem: Let a string consist of digit 1, 2, 3.") and d.text.endswith("Final answer: 239")
    assert "problem" not in d.metadata and "solution" not in d.metadata and "answer" not in d.metadata
    kept = read(JsonlReader, MATH / "champ" / "champ_problems.jsonl", source="math", template=templates, drop_template_fields=False)
    assert kept[0].metadata["answer"] == "239"


def test_rows_missing_fields_or_text_are_rejected_with_reasons(tmp_path):
    f = tmp_path / "rows.jsonl"
    rows = [{"question": "q?", "answer": "a"}, {"question": "only a question"}, {"question": "q", "answer": None},
            {"text": "   "}, [1, 2], "not json {"]
    f.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n\n")
    docs = read(JsonlReader, f, source="qa", template="{question} {answer}")
    assert [reason(d) for d in docs] == [None, "missing_fields", "missing_fields", "missing_fields", "missing_fields", "invalid_json"]
    assert docs[1].metadata["missing_fields"] == ["answer"] and docs[5].metadata["error"].startswith("line 6:")
    plain = read(JsonlReader, f, source="qa")
    assert [reason(d) for d in plain] == ["missing_text_field"] * 3 + ["empty_text", "missing_text_field", "invalid_json"]


@pytest.mark.parametrize("compressed", [False, True])
def test_a_line_that_is_not_utf8_is_one_rejected_row(tmp_path, compressed):
    """One Latin-1 byte in line 8 of 300: that row is rejected as invalid_utf8 (line number and byte
    in its error) and the other 299 are read. A text stream used to fail on the whole 8 KB block:
    the file was an error and every row of it lost."""
    rows = [json.dumps({"text": f"row {i}: " + "word " * 20}) for i in range(300)]
    data = ("\n".join(rows) + "\n").encode().replace(b"row 7:", b"row 7 caf\xe9:")
    f = tmp_path / ("rows.jsonl.gz" if compressed else "rows.jsonl")
    f.write_bytes(gzip.compress(data) if compressed else data)
    docs = read(JsonlReader, f, source="qa")
    assert read.report["errors"] == []
    assert len(docs) == 300 and [reason(d) for d in docs].count(None) == 299
    bad = docs[7]
    assert reason(bad) == "invalid_utf8" and bad.metadata["error"].startswith("line 8: not UTF-8")
    assert bad.text.startswith('{"text": "row 7 caf\ufffd:')
    assert [d.text for d in docs[8:10]] == [f"row {i}: " + "word " * 20 for i in (8, 9)]


def test_truncated_gzip_jsonl_keeps_the_rows_before_the_cut(tmp_path):
    rows = [json.dumps({"text": f"row {i} " + "x" * 200}) for i in range(3000)]
    whole = gzip.compress(("\n".join(rows) + "\n").encode(), compresslevel=1)
    f = tmp_path / "cut.jsonl.gz"
    f.write_bytes(whole[: len(whole) // 2])
    docs = read(JsonlReader, f, source="qa")
    (err,) = read.report["errors"]
    assert "truncated file" in err["error"] and 1000 < len(docs) < 3000
    assert [d.text for d in docs] == [f"row {i} " + "x" * 200 for i in range(len(docs))]


def test_a_csv_line_that_does_not_decode_costs_its_row_not_the_file(tmp_path):
    """A UTF-8 CSV (CRLF, a quoted field over two lines) with one Latin-1 byte: that row is
    rejected as invalid_encoding, the other rows are read with the same text a text stream gives."""
    lines = ["q,a"] + [f"What is {i}?,It is {i}." for i in range(200)] + ['"two\r\nlines",x']
    good = ("\r\n".join(lines) + "\r\n").encode()
    f = tmp_path / "rows.csv"
    f.write_bytes(good.replace(b"What is 7?", b"What is caf\xe9 7?"))
    docs = read(CsvReader, f, source="qa", template="{q} {a}")
    assert read.report["errors"] == [] and len(docs) == 201
    assert [reason(d) for d in docs].count("invalid_encoding") == 1 and reason(docs[7]) == "invalid_encoding"
    assert docs[7].metadata["error"].startswith("line 9: not utf-8-sig") and "caf\ufffd" in docs[7].text
    assert docs[8].text == "What is 8? It is 8." and docs[200].text == "two\nlines x"
    (tmp_path / "ok.csv").write_bytes(good)
    assert [d.text for d in read(CsvReader, tmp_path / "ok.csv", source="qa", template="{q} {a}")][8:] == [d.text for d in docs[8:]]


def test_byte_order_mark_before_json_lines_or_an_array(tmp_path):
    rows = [{"text": "first"}, {"text": "second"}]
    lines, array = tmp_path / "bom.jsonl", tmp_path / "bom.json"
    lines.write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in rows).encode())
    array.write_bytes(b"\xef\xbb\xbf \n" + json.dumps(rows).encode())
    for f in (lines, array):
        assert [(d.text, reason(d)) for d in read(JsonlReader, f, source="qa")] == [("first", None), ("second", None)]


def test_json_lines_ending_in_cr_crlf_or_lf_read_alike(tmp_path):
    """Lines ended by CR alone (old Mac), CRLF or LF give the same rows and row ids, as a text
    stream's universal newlines did before the reader read bytes."""
    rows = [json.dumps({"text": f"row {i}"}) for i in range(5)]
    got = {}
    for name, sep in (("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")):
        f = tmp_path / f"{name}.jsonl"
        f.write_bytes((sep.join(rows) + sep).encode())
        got[name] = [(d.id.split("#")[1], d.text, reason(d)) for d in read(JsonlReader, f, source="qa")]
    assert got["lf"] == got["crlf"] == got["cr"] == [(str(i), f"row {i}", None) for i in range(5)]


def test_core_columns_mapping_and_reserved_names(tmp_path):
    f = tmp_path / "pages.jsonl.gz"
    row = {"uid": 7, "body": "hello", "link": "https://x.org/a", "created": "2024-05-01", "source": "crawl-7",
           "input_file": "elsewhere", "text": "a field called text", "lang": "en", "extra": {"k": [1, 2]}}
    f.write_bytes(gzip.compress((json.dumps(row) + "\n").encode()))
    [d] = read(JsonlReader, f, source="web", text_field="body", id_field="uid", url_field="link", date_field="created",
               rename={"extra": "details"})
    assert (d.id, d.text) == ("7", "hello")
    md = d.metadata
    assert (md["url"], md["date"], md["source"]) == ("https://x.org/a", "2024-05-01", "web")
    assert md["row_source"] == "crawl-7" and md["row_input_file"] == "elsewhere" and md["row_text"] == "a field called text"
    assert md["input_file"] == str(f) and md["details"] == {"k": [1, 2]} and md["lang"] == "en"
    [only] = read(JsonlReader, f, source="web", text_field="body", id_field="uid", meta_fields=["lang"])
    assert {k for k in only.metadata if k not in ("source", "input_file", "input_index", "record_index")} == {"lang"}


def test_json_array_files(tmp_path):
    f = tmp_path / "items.json"
    f.write_text(json.dumps([{"text": "one"}, {"text": "two", "n": 2}, 3]))
    docs = read(JsonlReader, f, source="x")
    assert [(d.id, d.text, reason(d)) for d in docs] == [("x:items.json#0", "one", None), ("x:items.json#1", "two", None),
                                                         ("x:items.json#2", "", "missing_text_field")]
    (tmp_path / "bad.json").write_text('[{"text": "one"}, {"te')
    assert read(JsonlReader, tmp_path / "bad.json", source="x") == []
    assert "invalid JSON array" in read.report["errors"][0]["error"]


def test_template_validation():
    with pytest.raises(ValidationError, match="names no field"):
        RowReaderConfig(source="m", template="no fields here")
    with pytest.raises(ValidationError, match="fields must be named"):
        RowReaderConfig(source="m", template="{0} and {1}")
    with pytest.raises(ValidationError):
        RowReaderConfig(source="m", template="{unclosed")
    with pytest.raises(ValidationError, match="source"):
        RowReaderConfig()


# --------------------------------------------------------------------------------------------
# CSV


def test_csv_with_bom_quotes_and_newlines(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_bytes('\ufeffquestion,answer,topic\n"What is 2+2, really?","It is 4.\nSurely.",arith\nbare,row,t,EXTRA\n'.encode("utf-8"))
    docs = read(CsvReader, f, source="qa", template="{question}\n{answer}")
    assert docs[0].text == "What is 2+2, really?\nIt is 4.\nSurely." and docs[0].metadata["topic"] == "arith"
    assert docs[0].id == "qa:qa.csv#0" and docs[1].metadata["extra_fields"] == ["EXTRA"]


def test_tsv_without_header_and_gzip(tmp_path):
    f = tmp_path / "pairs.tsv.gz"
    f.write_bytes(gzip.compress(b"1\tfirst text\n2\tsecond text\n"))
    docs = read(CsvReader, f, source="t", header=False, columns=["id", "text"])
    assert [(d.id, d.text) for d in docs] == [("1", "first text"), ("2", "second text")]
    with pytest.raises(ValidationError, match="needs columns"):
        CsvReaderConfig(source="t", header=False)


def test_csv_in_another_encoding_is_rejected_row_by_row(tmp_path, caplog):
    """A Latin-1 file read as UTF-8: its non-ASCII rows are rejected (invalid_encoding, kept with
    U+FFFD in rejected/) and one warning line names the file and says to set encoding:; ASCII rows
    are read. With the right encoding every row is read."""
    f = tmp_path / "latin.csv"
    f.write_bytes("text\ncaf\xe9\nplain\n".encode("latin-1"))
    docs = read(CsvReader, f, source="t")
    assert [(d.text, reason(d)) for d in docs] == [("caf\ufffd", "invalid_encoding"), ("plain", None)]
    assert read.report["errors"] == []
    d1, d2 = read(CsvReader, f, source="t", encoding="latin-1")
    assert (d1.text, d2.text) == ("café", "plain")
    u16 = tmp_path / "utf16.csv"  # not ASCII-compatible: read as a text stream, as before
    u16.write_bytes("text\ncafé\n".encode("utf-16"))
    assert [d.text for d in read(CsvReader, u16, source="t", encoding="utf-16")] == ["café"]


# --------------------------------------------------------------------------------------------
# Parquet, and r1data's own shards read back


def test_a_corrupt_parquet_row_group_costs_its_rows_not_the_rest(tmp_path):
    """Zeros over the middle of a Parquet file of ten row groups: the row group they hit is named
    (with its row range) and the row groups after it are still read, with their own row ids."""
    f = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": [f"row {i} " + "x" * 300 for i in range(5000)]}), f, row_group_size=500)
    data = bytearray(f.read_bytes())
    k = len(data) // 2
    data[k : k + 200] = bytes(200)
    f.write_bytes(bytes(data))
    docs = read(ParquetReader, f, source="web")
    (err,) = read.report["errors"]
    assert "corrupt Parquet data in row group" in err["error"] and "the other row groups were read" in err["error"]
    assert 4000 <= len(docs) < 5000
    texts = {d.id: d.text for d in docs}
    assert texts["web:t.parquet#4999"] == "row 4999 " + "x" * 300 and texts["web:t.parquet#0"] == "row 0 " + "x" * 300


def test_parquet_with_field_mapping_reads_only_needed_columns(tmp_path):
    f = tmp_path / "t.parquet"
    pq.write_table(pa.table({"q": ["a?", "b?"], "a": ["1", "2"], "big": ["x" * 10, "y" * 10], "keep": [1, 2],
                             "when": pa.array([None, None], pa.timestamp("s"))}), f)
    docs = read(ParquetReader, f, source="p", template="{q} {a}", meta_fields=["keep"])
    assert [(d.id, d.text, d.metadata["keep"]) for d in docs] == [("p:t.parquet#0", "a? 1", 1), ("p:t.parquet#1", "b? 2", 2)]
    assert "big" not in docs[0].metadata


def write_shard(path: Path, docs: list[Document], columns: dict[str, str] | None = None) -> None:
    w = ShardWriter(path, shard_schema(columns or {}))
    for d in docs:
        w.write(d)
    w.close()


def test_reading_r1data_shards_back_round_trips(tmp_path):
    docs = [
        Document(text="first", id="web:<urn:uuid:1>", metadata={"source": "web", "url": "https://a.org/", "date": "2024-01-02T03:04:05Z",
                 "input_file": "/in/a.warc.gz", "input_index": 3, "record_index": 9, "lang": "en", "lang_score": 0.5,
                 "charset": "utf-8", "nested": {"a": [1, "b"]}}),
        Document(text="second", id="books:x.txt#1", metadata={"source": "books", "path": "x.txt", "input_file": "/in/x.txt",
                 "input_index": 0, "record_index": 1, "title": "X", "headings": ["I", "II"]}),
    ]
    shard = tmp_path / "part-00000.parquet"
    write_shard(shard, docs, {"lang": "string", "lang_score": "float32"})
    back = read(ParquetReader, shard, source="ignored")
    assert [(d.id, d.text) for d in back] == [(d.id, d.text) for d in docs]
    a, b = back[0].metadata, back[1].metadata
    assert (a["source"], a["url"], a["date"], a["lang"], a["charset"], a["nested"]) == ("web", "https://a.org/", "2024-01-02T03:04:05Z", "en", "utf-8", {"a": [1, "b"]})
    assert (b["source"], b["path"], b["title"], b["headings"]) == ("books", "x.txt", "X", ["I", "II"])
    assert a["input_file"] == str(shard) and a["record_index"] == 0  # this run's provenance, not the old one
    assert "meta" not in a and "row_meta" not in a and "row_source" not in a
    # written again, the rows equal the originals in every column but the provenance ones
    again = tmp_path / "again.parquet"
    write_shard(again, back, {"lang": "string", "lang_score": "float32"})
    provenance = {"input_file", "input_index", "record_index"}
    orig = pq.read_table(shard).to_pylist()
    new = pq.read_table(again).to_pylist()
    assert [{k: v for k, v in r.items() if k not in provenance} for r in new] == [{k: v for k, v in r.items() if k not in provenance} for r in orig]


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=8,
)
_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(
    lambda k: k not in {"id", "text", "source", "url", "path", "date", "input_file", "input_index", "record_index", "meta"}
)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=200).filter(str.strip), st.dictionaries(_keys, _values, max_size=5)), min_size=1, max_size=8))
@settings(max_examples=40, deadline=None)
def test_shard_round_trip_property(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("rt") / "s.parquet"
    docs = [Document(text=t, id=f"s:{i}", metadata={"source": "s", "input_file": "f", "input_index": 0, "record_index": i, **m})
            for i, (t, m) in enumerate(rows)]
    write_shard(path, docs)
    back = read(ParquetReader, path, source="other")
    expected = [d.metadata | {"id": d.id, "text": d.text} for d in iter_documents(path)]
    got = [d.metadata | {"id": d.id, "text": d.text} for d in back]
    for e, g in zip(expected, got, strict=True):
        for k in ("input_file", "input_index", "record_index"):
            e.pop(k), g.pop(k)
        assert g == e
