"""Golden: ``r1data stats`` on a real run of pipelines/web.yaml over the bundled tiny WARC sample."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from r1data.config.spec import Overrides
from r1data.run.pipeline import execute, load_spec, plan_run
from r1data_cli.app import app

pytestmark = pytest.mark.slow  # a real pipeline run: ~10 s alone, much more on a busy machine

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def web_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web") / "web"
    spec = load_spec(ROOT / "pipelines" / "web.yaml", Overrides(inputs=[str(ROOT / "tests" / "data" / "web-tiny")], output=str(out)))
    execute(plan_run(spec))
    return out


def test_stats_agree_with_the_manifest_and_the_files(web_run):
    r = runner.invoke(app, ["stats", str(web_run), "--format", "json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    m = json.loads((web_run / "manifest.json").read_text())
    kept_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (web_run / "shards").glob("*.parquet"))
    rej = [row for f in sorted((web_run / "rejected").glob("*.parquet")) for row in pq.read_table(f, columns=["stage", "reason"]).to_pylist()]
    assert s["totals"]["read"] == m["counts"]["read"] == kept_rows + len(rej)
    assert s["totals"]["kept"] == m["counts"]["kept"] == kept_rows
    assert s["warnings"] == [] and s["files"]["errors"] == []
    # the funnel is the manifest's dropped_by_stage, in the recipe's stage order
    order = [st["name"] for st in m["config"]["stages"]]
    assert [row["stage"] for row in s["funnel"]] == order
    got = {row["stage"]: {x["reason"]: x["documents"] for x in row["reasons"]} for row in s["funnel"] if row["reasons"]}
    assert got == m["counts"]["dropped_by_stage"]
    # times come from datatrove's step stats
    assert s["funnel"][order.index("html_extract")]["seconds"] > 0
    assert s["kept"]["by"]["lang"][0]["value"] == "en"
    assert s["kept"]["url_hosts"]["top"][0]["host"].endswith("python.org")


def test_table_head_and_show_on_a_real_run(web_run):
    r = runner.invoke(app, ["stats", str(web_run)])
    assert r.exit_code == 0 and "language_filter" in r.stdout and "fineweb_quality" in r.stdout
    rej = pq.read_table(sorted((web_run / "rejected").glob("*.parquet"))[0]).to_pylist()[0]
    r = runner.invoke(app, ["show", rej["id"], str(web_run)])
    assert r.exit_code == 0 and f"rejected by stage {rej['stage']}" in r.stdout and rej["reason"] in r.stdout
    r = runner.invoke(app, ["head", str(web_run), "-n", "2", "--where", "lang = 'en' AND url LIKE '%python.org%'", "--jsonl"])
    docs = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(docs) == 2 and all("python.org" in d["url"] and d["lang"] == "en" for d in docs)


def test_multi_phase_run_dedup_and_an_unfinished_copy(web_run, tmp_path):
    """web.yaml ends with exact_dedup, a barrier stage: a first phase writes its own rejected files."""
    import shutil

    from r1data.stats.profile import collect_stats

    m = json.loads((web_run / "manifest.json").read_text())
    s = collect_stats(str(web_run))
    dups = m["counts"]["dropped_by_stage"]["exact_dedup"]["exact_duplicate"]  # web-tiny holds exact copies
    assert s["dedup"]["duplicates"] == dups and 0 < s["dedup"]["clusters"] <= dups
    assert any(Path(f).name.startswith("01-exact_dedup") for f in (web_run / "rejected").iterdir())
    # the same files without a manifest: read comes from the tasks that read the inputs, order from datatrove
    partial = tmp_path / "partial"
    shutil.copytree(web_run, partial)
    (partial / "manifest.json").unlink()
    p = collect_stats(str(partial))
    assert p["totals"]["read"] == m["counts"]["read"] and p["totals"]["read_from"] == "task_stats"
    assert [r["stage"] for r in p["funnel"]] == [st["name"] for st in m["config"]["stages"]]
    assert [r["dropped"] for r in p["funnel"]] == [r["dropped"] for r in s["funnel"]]


def test_augmentation_run_funnel_counts_generated_documents(tmp_path):
    """pipelines/augment.yaml creates documents: the funnel adds them where they appear and ends at kept."""
    import shutil as sh

    if sh.which("apertium") is None:
        pytest.skip("apertium is not installed (scripts/setup.d/40-apertium.sh)")
    from r1data.stats.profile import collect_stats

    out = tmp_path / "aug"
    execute(plan_run(load_spec(ROOT / "pipelines" / "augment.yaml", Overrides(output=str(out)))))
    m = json.loads((out / "manifest.json").read_text())
    s = collect_stats(str(out))
    made = {r["stage"]: r["generated"] for r in s["funnel"] if r["generated"]}
    assert made == {k: v for k, v in m["counts"]["generated_by_stage"].items() if v} and made
    assert s["totals"]["generated"] == sum(made.values())
    assert s["funnel"][-1]["remaining"] == s["totals"]["kept"] == m["counts"]["kept"]
    assert s["totals"]["read"] + s["totals"]["generated"] == s["totals"]["kept"] + s["totals"]["rejected"]
    assert s["warnings"] == []
    assert {r["value"] for r in s["kept"]["by"]["domain"]} >= {"math", "code"}
