"""Inputs that give no document (a 0-byte file, a gzip without records, an empty JSONL file) are
named in the run summary and in the manifest's ``input_errors`` as ``empty_input``."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

from r1data.run.manifest import aggregate
from tests.conftest import TINY, r1data_cmd


def run(tmp_path: Path, stage: str, inputs: str, *args: str):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: r\ninputs: [{inputs}]\nstages:\n{stage}output:\n  path: {tmp_path / 'out'}\n")
    res = r1data_cmd("run", recipe, *args)
    assert res.returncode == 0, res.stderr
    return res, json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_empty_and_recordless_warc_are_named(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "a-empty.warc.gz").write_bytes(b"")
    (data / "b-no-records.warc.gz").write_bytes(gzip.compress(b""))
    shutil.copy(TINY / "tiny-00000.warc.gz", data / "c-good.warc.gz")
    res, m = run(tmp_path, "  - stage: warc_reader\n", f"{data}/*.warc.gz")
    assert m["counts"]["read"] == 12
    assert m["input_errors"] == [
        {"uri": str(data / "a-empty.warc.gz"), "error": "empty_input: an empty file (0 bytes)", "documents_before_error": 0, "kind": "empty_input"},
        {"uri": str(data / "b-no-records.warc.gz"), "error": "empty_input: no documents in it (20 bytes)", "documents_before_error": 0,
         "kind": "empty_input"},
    ]
    assert "2 input(s) gave no documents (named in the manifest):" in res.stdout
    assert f"{data / 'a-empty.warc.gz'}: empty_input: an empty file (0 bytes)" in res.stdout
    assert "could not be fully read" not in res.stdout


def test_empty_jsonl_is_named(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "empty.jsonl").write_text("")
    (data / "blank.jsonl").write_text("\n\n")
    (data / "rows.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    _, m = run(tmp_path, "  - stage: jsonl_reader\n    source: t\n", str(data), "--json")
    assert [(Path(e["uri"]).name, e["kind"]) for e in m["input_errors"]] == [("blank.jsonl", "empty_input"), ("empty.jsonl", "empty_input")]
    assert m["counts"]["read"] == 2


def test_a_directory_shared_by_tasks_is_empty_only_if_no_task_read_from_it(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "one.py").write_text("print('hello')\n")
    _, m = run(tmp_path, "  - stage: code_reader\n    source: code\n", str(repo), "--tasks", "3")
    assert m["counts"]["read"] == 1 and m["input_errors"] == []  # two of the three tasks read nothing of it: not empty


def test_aggregate_keeps_read_errors_and_adds_empty_ones():
    reports = [
        {"read": 0, "kept": 0, "rejected": 0, "funnel": [],
         "input_files": [{"uri": "a", "index": 0, "documents": 0, "size": 0}, {"uri": "b", "index": 1, "documents": 0, "size": 9}],
         "input_errors": [{"uri": "b", "error": "truncated gzip", "documents_before_error": 0}]},
    ]
    errors = aggregate(reports, [])["input_errors"]
    assert errors == [
        {"uri": "a", "error": "empty_input: an empty file (0 bytes)", "documents_before_error": 0, "kind": "empty_input"},
        {"uri": "b", "error": "truncated gzip", "documents_before_error": 0},
    ]
