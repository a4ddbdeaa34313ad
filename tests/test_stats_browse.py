"""``r1data head`` (SQL ``--where``, never Python) and ``r1data show`` (why a document was dropped)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.stats_helpers import make_run
from typer.testing import CliRunner

from r1data.stats.browse import WhereError, find_document, head
from r1data_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("browse") / "run", threshold=0.3)


def rows(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("*.parquet")):
        out += pq.read_table(f).to_pylist()
    return out


def test_head_first_rows_in_file_order(run_dir):
    df = head(str(run_dir), n=3)
    assert df["id"].to_list() == [r["id"] for r in rows(run_dir / "shards")[:3]]


def test_head_where_filters_with_sql(run_dir):
    df = head(str(run_dir), n=1000, where="domain = 'math' AND lang_score > 0.5", rejected=False)
    want = [r["id"] for r in rows(run_dir / "shards") if r["domain"] == "math" and r["lang_score"] > 0.5]
    assert sorted(df["id"].to_list()) == sorted(want) and want
    df = head(str(run_dir), n=1000, where="reason = 'near_duplicate' AND duplicate_of IS NOT NULL", rejected=True)
    assert len(df) == sum(1 for r in rows(run_dir / "rejected") if r["reason"] == "near_duplicate")
    df = head(str(run_dir), n=1000, where="text LIKE '%café%'")
    assert all("café" in t for t in df["text"]) and len(df) == sum("café" in r["text"] for r in rows(run_dir / "shards"))


@pytest.mark.parametrize(
    "expr, message",
    [
        ("lang = ", "not a valid SQL expression"),
        ("no_such_column > 1", "unknown column 'no_such_column'"),
        ("__import__('os').system('touch PWNED')", "--where"),
        ("lang = 'en'; DROP TABLE x", "--where"),
        ("", "empty expression"),
    ],
)
def test_head_rejects_invalid_where(run_dir, expr, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WhereError, match=message.replace("(", r"\(").replace(")", r"\)")):
        head(str(run_dir), where=expr)
    r = runner.invoke(app, ["head", str(run_dir), "--where", expr])
    assert r.exit_code == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: --where")
    assert not (tmp_path / "PWNED").exists()  # nothing was executed


def test_head_type_error_is_one_line(run_dir):
    r = runner.invoke(app, ["head", str(run_dir), "--where", "text > 5"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "cannot evaluate" in r.stderr


def test_head_cli_table_and_jsonl(run_dir):
    r = runner.invoke(app, ["head", str(run_dir), "-n", "2", "--rejected", "--where", "stage = 'quality'"])
    assert r.exit_code == 0, r.output
    assert "ppl_score_below_threshold" in r.stdout or "quality_clf_score_below_threshold" in r.stdout
    assert "2 document(s) matching" in r.stdout
    r = runner.invoke(app, ["head", str(run_dir), "-n", "4", "--jsonl"])
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["id"] for d in docs] == [x["id"] for x in rows(run_dir / "shards")[:4]]
    assert docs[0]["text"] == rows(run_dir / "shards")[0]["text"]  # full text, not truncated
    r = runner.invoke(app, ["head", str(run_dir), "--where", "lang = 'xx'"])
    assert r.exit_code == 0 and "no matching documents" in r.stdout


def test_show_rejected_document_explains_why(run_dir):
    doc = next(r for r in rows(run_dir / "rejected") if r["stage"] == "quality")
    found, exact = find_document(doc["id"], [str(run_dir)])
    assert exact and len(found) == 1
    f = found[0]
    assert f.rejected and f.row["reason"] == doc["reason"]
    assert f.stage_config == {"stage": "quality_filter", "threshold": 0.3}
    assert f.passed_stages == ["warc_reader", "language_id", "english_only"]
    r = runner.invoke(app, ["show", doc["id"], str(run_dir)])
    assert r.exit_code == 0
    out = r.stdout
    assert "rejected by stage quality" in out and doc["reason"] in out and "threshold=0.3" in out
    assert "ppl_score" in out and "quality_clf_score" in out


def test_show_duplicate_points_to_the_kept_copy(run_dir):
    dup = next(r for r in rows(run_dir / "rejected") if r["reason"] == "near_duplicate")
    r = runner.invoke(app, ["show", dup["id"], str(run_dir), "--json"])
    got = json.loads(r.stdout)[0]
    assert got["status"] == "rejected" and got["reason"] == "near_duplicate"
    assert got["duplicate_of"]["id"] == dup["duplicate_of"] and got["duplicate_of"]["rejected"] is False
    kept = runner.invoke(app, ["show", dup["duplicate_of"], str(run_dir), "--json"])
    k = json.loads(kept.stdout)[0]
    assert k["status"] == "kept"
    assert k["duplicates"] == sum(1 for x in rows(run_dir / "rejected") if x["duplicate_of"] == dup["duplicate_of"])


def test_show_prefix_and_not_found(run_dir, tmp_path, monkeypatch):
    r = runner.invoke(app, ["show", "exact-", str(run_dir)])
    assert r.exit_code == 1 and "documents have an id starting with 'exact-'" in r.stderr
    r = runner.invoke(app, ["show", "nope-123", str(run_dir)])
    assert r.exit_code == 1 and "no document with id 'nope-123'" in r.stderr
    # without a directory: every run under ./out
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "out" / "web", threshold=0.3)
    r = runner.invoke(app, ["show", "doc-0003"])
    assert r.exit_code == 0 and "doc-0003" in r.stdout
    monkeypatch.chdir(tmp_path / "out")
    r = runner.invoke(app, ["show", "doc-0003"])
    assert r.exit_code == 2 and "no output directories under ./out" in r.stderr
