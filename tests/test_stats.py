"""``r1data stats``: counts, bytes, breakdowns, funnel, dedup and hosts, checked against pyarrow reading the same files."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.stats_helpers import STAGES, make_run
from typer.testing import CliRunner

from r1data.errors import InputError
from r1data.stats.profile import NothingReadable, collect_stats
from r1data_cli.app import app

runner = CliRunner()
# CI puts shared/ beside the clone; a git worktree under <project>/wt/<name> finds it two levels up
SHARED = next((p / "shared" / "data" for p in Path(__file__).resolve().parents[1:4] if (p / "shared" / "data").is_dir()), Path("shared/data"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("stats") / "run", threshold=0.3)


def read_rows(folder: Path) -> list[dict]:
    """Every row of every file in ``folder``, read independently with pyarrow."""
    rows = []
    for f in sorted(folder.glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return rows


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_counts_bytes_and_breakdowns_match_pyarrow(run_dir):
    s = collect_stats(str(run_dir))
    kept, rej = read_rows(run_dir / "shards"), read_rows(run_dir / "rejected")
    assert s["r1data_stats"] == 1
    assert s["totals"]["kept"] == len(kept)
    assert s["totals"]["rejected"] == len(rej)
    assert s["totals"]["read"] == len(kept) + len(rej)
    assert s["totals"]["read_from"] == "manifest"
    assert s["totals"]["kept_bytes"] == sum(len(r["text"].encode()) for r in kept)
    assert s["kept"]["bytes"] != sum(len(r["text"]) for r in kept)  # bytes, not characters (fixture has multi-byte text)
    assert s["totals"]["kept_tokens"] == round(s["totals"]["kept_bytes"] / 4)
    assert s["totals"]["rejected_bytes"] == sum(len(r["text"].encode()) for r in rej)
    for key in ("source", "lang", "domain"):
        want = Counter(r[key] for r in kept)
        got = {row["value"]: row["documents"] for row in s["kept"]["by"][key]}
        assert got == want, key
        by_bytes = {row["value"]: row["bytes"] for row in s["kept"]["by"][key]}
        assert by_bytes == {v: sum(len(r["text"].encode()) for r in kept if r[key] == v) for v in want}
    assert {row["value"]: row["documents"] for row in s["rejected"]["by"]["stage"]} == Counter(r["stage"] for r in rej)
    assert s["files"] == {"kept": 3, "rejected": 3, "kept_bytes_on_disk": sum(f.stat().st_size for f in (run_dir / "shards").iterdir()),
                          "rejected_bytes_on_disk": sum(f.stat().st_size for f in (run_dir / "rejected").iterdir()), "errors": []}
    assert s["warnings"] == []


def test_length_and_score_distributions(run_dir):
    s = collect_stats(str(run_dir))
    kept = read_rows(run_dir / "shards")
    lengths = np.array([len(r["text"].encode()) for r in kept], dtype=float)
    lb = s["kept"]["length_bytes"]
    assert lb["count"] == len(kept) and lb["min"] == lengths.min() and lb["max"] == lengths.max()
    assert lb["mean"] == pytest.approx(lengths.mean())
    for key, q in (("p5", 0.05), ("p50", 0.5), ("p95", 0.95)):
        want = float(np.quantile(lengths, q))
        assert lb["quantiles"][key] == pytest.approx(want, rel=0.011), key
    assert sum(b["count"] for b in lb["histogram"]) == len(kept)
    for col in ("lang_score", "ppl", "ppl_score", "quality_clf_score"):
        d = s["kept"]["scores"][col]
        vals = np.array([r[col] for r in kept], dtype=float)
        assert d["count"] == len(vals) and d["nulls"] == 0
        assert d["quantiles"]["p50"] == pytest.approx(float(np.quantile(vals, 0.5)), rel=0.011, abs=1e-3)
        assert sum(b["count"] for b in d["histogram"]) == len(vals)
    assert s["kept"]["scores"]["ppl"]["scale"] == "log"
    assert s["kept"]["scores"]["ppl_score"]["scale"] == "unit"
    # the threshold holds on what was kept
    assert s["kept"]["scores"]["ppl_score"]["min"] >= 0.3


def test_funnel_in_pipeline_order_with_reasons(run_dir):
    s = collect_stats(str(run_dir))
    rej = read_rows(run_dir / "rejected")
    assert [r["stage"] for r in s["funnel"]] == [label for label, _ in STAGES]
    counts = Counter((r["stage"], r["reason"]) for r in rej)
    remaining = s["totals"]["read"]
    for row in s["funnel"]:
        assert row["entered"] == remaining
        assert row["dropped"] == sum(n for (st, _), n in counts.items() if st == row["stage"])
        assert {r["reason"]: r["documents"] for r in row["reasons"]} == {rs: n for (st, rs), n in counts.items() if st == row["stage"]}
        assert row["dropped_bytes"] == sum(len(r["text"].encode()) for r in rej if r["stage"] == row["stage"])
        remaining = row["remaining"]
    assert remaining == s["totals"]["kept"]
    by_label = {r["stage"]: r for r in s["funnel"]}
    assert by_label["english_only"]["type"] == "language_filter"
    assert by_label["quality"]["seconds"] == pytest.approx(3 * 2.5)  # summed over the three tasks' datatrove stats
    assert by_label["warc_reader"]["seconds"] is None


def test_dedup_rates_and_clusters(run_dir):
    s = collect_stats(str(run_dir))
    rej = read_rows(run_dir / "rejected")
    dups = [r for r in rej if r["reason"] in ("exact_duplicate", "near_duplicate")]
    d = s["dedup"]
    assert d["duplicates"] == len(dups) > 0
    assert d["clusters"] == len({r["duplicate_of"] for r in dups})
    assert d["share_of_read"] == pytest.approx(len(dups) / s["totals"]["read"])
    exact = next(r for r in d["by_stage"] if r["reason"] == "exact_duplicate")
    entered = next(r["entered"] for r in s["funnel"] if r["stage"] == "exact_dedup")
    assert exact["share_of_entered"] == pytest.approx(exact["documents"] / entered)


def test_dedup_absent_when_no_dedup_stage(tmp_path):
    out = make_run(tmp_path / "run", threshold=0.3)
    for sub in ("shards", "rejected"):  # a run without dedup: drop those rows and stages
        for f in (out / sub).glob("*.parquet"):
            t = pq.read_table(f)
            if "reason" in t.column_names:
                import pyarrow.compute as pc

                t = t.filter(pc.invert(pc.is_in(t["reason"], value_set=__import__("pyarrow").array(["exact_duplicate", "near_duplicate"]))))
            pq.write_table(t, f)
    m = json.loads((out / "manifest.json").read_text())
    m["config"]["stages"] = [x for x in m["config"]["stages"] if "dedup" not in x["stage"]]
    m.pop("outputs")
    m["counts"].pop("read")
    (out / "manifest.json").write_text(json.dumps(m))
    shutil.rmtree(out / "stats")
    s = collect_stats(str(out))
    assert s["dedup"] is None
    assert s["totals"]["read_from"] == "files"


def test_top_url_hosts(run_dir):
    s = collect_stats(str(run_dir))
    kept = read_rows(run_dir / "shards")
    want = Counter(urlsplit(r["url"]).hostname.lower().removeprefix("www.") for r in kept if r["url"])
    h = s["kept"]["url_hosts"]
    assert {x["host"]: x["documents"] for x in h["top"]} == dict(want)
    assert h["distinct"] == len(want) and h["documents_with_url"] == sum(want.values())
    assert [x["documents"] for x in h["top"]] == sorted(want.values(), reverse=True)


def test_cli_table(run_dir):
    r = invoke("stats", str(run_dir))
    assert r.exit_code == 0, r.output
    out = r.output
    for text in ("filter funnel", "english_only", "language_not_allowed", "kept documents by source", "lang_score", "deduplication",
                 "top URL domains", "docs.python.org"):
        assert text in out, text
    # pipeline order in the funnel table
    pos = [out.index(f"│ {label} ") for label, _ in STAGES]
    assert pos == sorted(pos)


def test_cli_json_is_the_library_result(run_dir):
    r = invoke("stats", str(run_dir), "--format", "json")
    assert r.exit_code == 0
    s = json.loads(r.stdout)
    assert s["totals"]["kept"] == sum(pq.ParquetFile(f).metadata.num_rows for f in (run_dir / "shards").glob("*.parquet"))
    assert set(s) >= {"r1data_stats", "totals", "files", "kept", "rejected", "funnel", "dedup", "warnings", "tokens"}


def test_cli_csv_by_lang_and_by_stage(run_dir):
    r = invoke("stats", str(run_dir), "--format", "csv", "--by", "lang")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    kept = read_rows(run_dir / "shards")
    assert {x["value"]: int(x["documents"]) for x in rows if x["set"] == "kept"} == Counter(r["lang"] for r in kept)
    r = invoke("stats", str(run_dir), "--format", "csv", "--by", "stage")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["stage"] == "read"
    assert [x["stage"] for x in rows if not x["reason"]][1:] == [label for label, _ in STAGES]


def test_cli_by_stage_and_by_domain_tables(run_dir):
    r = invoke("stats", str(run_dir), "--by", "stage")
    assert "quality_clf_score_below_threshold" in r.output
    r = invoke("stats", str(run_dir), "--by", "domain")
    assert "kept documents by domain" in r.output and "kept documents by lang" not in r.output


def test_glob_and_file_lists(run_dir):
    s = collect_stats(str(run_dir / "shards" / "*.parquet"))
    assert s["totals"]["kept"] == len(read_rows(run_dir / "shards")) and s["rejected"] is None
    # a shell-expanded glob arrives as many arguments; kept and rejected files are told apart by their columns
    files = [str(p) for p in sorted(run_dir.glob("*/*.parquet"))]
    r = invoke("stats", *files, "--format", "json")
    s2 = json.loads(r.stdout)
    assert s2["totals"]["kept"] == s["totals"]["kept"]
    assert s2["totals"]["rejected"] == len(read_rows(run_dir / "rejected"))
    assert any("stage order unknown" in w for w in s2["warnings"])


def test_files_with_different_columns_are_merged(tmp_path):
    a = make_run(tmp_path / "a", threshold=0.3)
    b = make_run(tmp_path / "b", threshold=0.3, stage_columns={"lang": "string", "lang_score": "float32"}, n=60)
    s = collect_stats([str(a / "shards"), str(b / "shards")])
    assert s["totals"]["kept"] == len(read_rows(a / "shards")) + len(read_rows(b / "shards"))
    dom = {r["value"]: r["documents"] for r in s["kept"]["by"]["domain"]}
    assert dom[None] == len(read_rows(b / "shards"))  # b has no domain column
    assert s["kept"]["scores"]["ppl"]["nulls"] == len(read_rows(b / "shards"))


def _corrupt_copy(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    (dest / "shards" / "part-00001.parquet").write_bytes((run_dir / "shards" / "part-00001.parquet").read_bytes()[:300])  # truncated
    (dest / "shards" / "part-00009.parquet").write_text("this is not parquet\n")
    return dest


def test_corrupt_files_are_named_and_the_rest_counted(run_dir, tmp_path):
    out = _corrupt_copy(run_dir, tmp_path / "broken")
    s = collect_stats(str(out))
    bad = {Path(e["path"]).name for e in s["files"]["errors"]}
    assert bad == {"part-00001.parquet", "part-00009.parquet"}
    good = pq.read_table(out / "shards" / "part-00000.parquet").num_rows + pq.read_table(out / "shards" / "part-00002.parquet").num_rows
    assert s["totals"]["kept"] == good
    r = runner.invoke(app, ["stats", str(out)])
    assert r.exit_code == 0
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 2 and all("part-0000" in w and "not a readable Parquet file" in w for w in warnings)


def test_corrupt_data_page_behind_a_valid_footer(run_dir, tmp_path):
    out = tmp_path / "pages"
    shutil.copytree(run_dir, out)
    f = out / "shards" / "part-00002.parquet"
    data = bytearray(f.read_bytes())
    footer = pq.ParquetFile(f).metadata
    col = footer.row_group(0).column(1)  # the text column's first page
    start = col.data_page_offset
    for i in range(start + 20, start + 200):
        data[i] ^= 0x5A
    f.write_bytes(bytes(data))
    s = collect_stats(str(out))
    assert [Path(e["path"]).name for e in s["files"]["errors"]] == ["part-00002.parquet"]
    assert "unreadable data" in s["files"]["errors"][0]["error"]
    assert s["totals"]["kept"] == sum(pq.read_table(out / "shards" / n).num_rows for n in ("part-00000.parquet", "part-00001.parquet"))


def test_empty_directory_and_missing_path(tmp_path):
    (tmp_path / "empty" / "shards").mkdir(parents=True)
    with pytest.raises(InputError, match="no Parquet files"):
        collect_stats(str(tmp_path / "empty"))
    r = runner.invoke(app, ["stats", str(tmp_path / "empty")])
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and "empty: no Parquet files" in r.stderr
    r = runner.invoke(app, ["stats", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such file or directory" in r.stderr


def test_nothing_readable_exits_non_zero(tmp_path):
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "part-00000.parquet").write_bytes(b"PAR1garbagePAR1")
    with pytest.raises(NothingReadable):
        collect_stats(str(tmp_path))
    r = runner.invoke(app, ["stats", str(tmp_path)])
    assert r.exit_code == 1
    assert "none of the 1 Parquet file(s) could be read" in r.stderr and "part-00000.parquet" in r.stderr


def test_incomplete_run_without_manifest(run_dir, tmp_path):
    out = tmp_path / "partial"
    shutil.copytree(run_dir, out)
    (out / "manifest.json").unlink()
    (out / "run.json").write_text(json.dumps({"tasks": 4}))
    (out / "completions").mkdir()
    for r in range(3):
        (out / "completions" / f"{r:05d}").touch()
    s = collect_stats(str(out))
    assert s["totals"]["read_from"] == "task_stats"
    assert [r["stage"] for r in s["funnel"]] == [label for label, _ in STAGES]  # order from datatrove's step list
    assert any("no manifest.json" in w and "3 of 4 tasks" in w for w in s["warnings"])


def test_manifest_mismatch_is_reported(run_dir, tmp_path):
    out = tmp_path / "mismatch"
    shutil.copytree(run_dir, out)
    (out / "shards" / "part-00002.parquet").unlink()
    s = collect_stats(str(out))
    assert any("part-00002.parquet: listed in the manifest" in w for w in s["warnings"])
    assert any("shards + rejected hold" in w for w in s["warnings"])


def test_exact_tokens_with_a_tokenizer(run_dir):
    tok_path = SHARED / "tokenizers" / "bert-minilm" / "tokenizer.json"
    if not tok_path.is_file():
        pytest.skip("shared/data/tokenizers not available")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    kept = read_rows(run_dir / "shards")
    want = [len(tok.encode(r["text"], add_special_tokens=False).ids) for r in kept]
    s = collect_stats(str(run_dir), tokenizer=str(tok_path))
    assert s["tokens"]["method"] == "tokenizer"
    assert s["totals"]["kept_tokens"] == sum(want)
    assert s["kept"]["length_tokens"]["count"] == len(want) and s["kept"]["length_tokens"]["max"] == max(want)
    web = next(r for r in s["kept"]["by"]["source"] if r["value"] == "web")
    assert web["tokens"] == sum(n for n, r in zip(want, kept) if r["source"] == "web")
    r = runner.invoke(app, ["stats", str(run_dir), "--tokenizer", "/nonexistent/tokenizer.json"])
    assert r.exit_code == 2 and "tokenizer file not found" in r.stderr


def test_url_hosts_are_normalised():
    import polars as pl

    from r1data.stats.scan import authority_expr, normalize_hosts

    urls = ["http://user:pw@Host.COM:8080/x", "https://www.host.com?q=1", "HTTPS://host.com#top", "ftp://b.net",
            "mailto:someone@c.org", "no url at all", None, "https://[::1]:80/"]
    df = pl.DataFrame({"url": urls}).select(authority_expr(pl.col("url")).alias("host")).drop_nulls().group_by("host").agg(pl.len().alias("n"))
    got = dict(normalize_hosts(df).iter_rows())
    assert got == {"host.com": 3, "b.net": 1, "[::1]": 1}


def test_score_ranges_from_footers_or_a_scan(run_dir, tmp_path):
    from r1data.stats.scan import bucket_specs
    from r1data.stats.sources import resolve_target

    t = resolve_target(str(run_dir))
    assert all("ppl" in f.ranges for f in t.files)  # the sink writes statistics: no scan needed
    specs, ranges, _ = bucket_specs(t.files)
    kept, rej = read_rows(run_dir / "shards"), read_rows(run_dir / "rejected")
    ppl = [r["ppl"] for r in kept + rej]
    assert ranges["ppl"] == pytest.approx((min(ppl), max(ppl)))
    assert specs["ppl"].scale == "log" and specs["ppl_score"].scale == "unit"
    # files written without statistics are scanned for the range instead
    out = tmp_path / "nostats"
    shutil.copytree(run_dir, out)
    for f in out.glob("*/*.parquet"):
        pq.write_table(pq.read_table(f), f, write_statistics=False)
    t2 = resolve_target(str(out))
    assert not any(f.ranges for f in t2.files)
    specs2, ranges2, _ = bucket_specs(t2.files)
    assert ranges2["ppl"] == pytest.approx(ranges["ppl"]) and specs2 == specs
    assert collect_stats(str(out))["kept"]["scores"] == collect_stats(str(run_dir))["kept"]["scores"]


def test_exit_codes_through_the_console_entry_point(tmp_path):
    """The installed ``r1data`` script (``main``), not only CliRunner: errors must keep their exit code."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), str(root / "cli"), os.environ.get("PYTHONPATH", "")]))

    def r1data(*args):
        return subprocess.run([sys.executable, "-m", "r1data_cli.app", *args], capture_output=True, text=True, env=env, timeout=120)

    (tmp_path / "empty" / "shards").mkdir(parents=True)
    p = r1data("stats", str(tmp_path / "empty"))
    assert p.returncode == 2 and p.stderr.strip().endswith("no Parquet files (expected shards/*.parquet and rejected/*.parquet)")
    (tmp_path / "bad" / "shards").mkdir(parents=True)
    (tmp_path / "bad" / "shards" / "part-00000.parquet").write_text("garbage")
    p = r1data("stats", str(tmp_path / "bad"))
    assert p.returncode == 1 and "could be read" in p.stderr
    p = r1data("stats", str(tmp_path / "bad"), "--by", "nope")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "'nope' is not one of" in p.stderr


def test_bad_tokenizer_file_is_one_line(run_dir, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    r = runner.invoke(app, ["stats", str(run_dir), "--tokenizer", str(bad)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "not a tokenizers JSON file" in r.stderr


def test_funnel_arithmetic_with_generated_documents():
    import polars as pl

    from r1data.stats.funnel import build_funnel

    rej = pl.DataFrame({"stage": ["filter", "augment"], "reason": ["short", "unverified"], "documents": [3, 2], "bytes": [30, 20]})
    rows = build_funnel(10, rej, ["reader", "filter", "augment"], {}, {}, {"augment": 6})
    assert [(r["stage"], r["entered"], r["generated"], r["dropped"], r["remaining"]) for r in rows] == [
        ("reader", 10, 0, 0, 10), ("filter", 10, 0, 3, 7), ("augment", 7, 6, 2, 11)]
    assert rows[2]["share_of_entered"] == pytest.approx(2 / 13)
