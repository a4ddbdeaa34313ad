"""The quality stages in real pipelines: the web recipe with --filter-threshold 0.7, English junk, validation."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from r1data.quality.evaluate import heldout_sets, separation
from r1data_cli.app import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def read(folder: Path):
    files = sorted(folder.glob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def web_tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("web") / "out"
    res = runner.invoke(
        app,
        ["run", str(ROOT / "pipelines/web.yaml"), "--input", str(ROOT / "tests/data/web-tiny"), "--output", str(out), "--filter-threshold", "0.7", "--json"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    return out, json.loads(res.output[res.output.index("{") :])


def test_web_recipe_keeps_documentation_and_drops_spam(web_tiny_run):
    out, summary = web_tiny_run
    kept, rejected = read(out / "shards"), read(out / "rejected")
    assert summary["read"] == len(kept) + len(rejected) == 24
    assert kept, "no documentation page survived"
    assert all("docs.python.org" in r["url"] for r in kept)
    # every Common Crawl record is dropped, by one stage or another
    cc = [r for r in rejected if "python.org" not in r["url"]]
    assert len(cc) == 5
    # the quality filter drops no documentation page that the heuristics kept
    assert not [r for r in rejected if r["stage"] == "quality_filter" and "docs.python.org" in r["url"]]
    for r in kept:
        assert r["ppl_score"] >= 0.7 and r["quality_clf_score"] >= 0.7
        assert r["ppl"] > 1 and 0 <= r["quality_clf"] <= 1


def test_web_recipe_records_knob_and_models(web_tiny_run):
    out, _ = web_tiny_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["knobs"]["filter_threshold"] == 0.7 and manifest["knobs"]["applied_to"]["filter_threshold"] == ["quality_filter"]
    params = {(m["stage"], m["param"]) for m in manifest["models"]}
    assert {("kenlm_perplexity", "model"), ("kenlm_perplexity", "sp_model"), ("quality_classifier", "model")} <= params
    assert all(m["sha256"] for m in manifest["models"])
    stages = {s["stage"]: s for s in manifest["stages"]}
    assert stages["kenlm_perplexity"]["calibration"]["n_documents"] > 1000
    schema = pq.read_schema(next((out / "shards").glob("*.parquet")))
    for col in ("ppl", "ppl_score", "quality_clf", "quality_clf_score"):
        assert str(schema.field(col).type) == "float"


@pytest.fixture(scope="module")
def english_junk_run(tmp_path_factory):
    """The scorers alone on English text: held-out documentation pages vs generated English junk."""
    d = tmp_path_factory.mktemp("junk")
    good, junk = heldout_sets(per_kind=4, limit=6)
    rows = [{"id": f"doc{i}", "kind": "python_docs", "text": t} for i, t in enumerate(good["python_docs"])]
    for kind in ("shuffled", "link_list", "keyword_stuffing"):
        rows += [{"id": f"{kind}{i}", "kind": kind, "text": t} for i, t in enumerate(junk[kind])]
    # only control characters: the reader keeps it (it is not whitespace), normalisation leaves nothing
    rows.append({"id": "blank", "kind": "blank", "text": "\x00\x07\x1b\n\x7f"})
    (d / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = d / "recipe.yaml"
    recipe.write_text(
        "name: english-junk\npolicy: quality-v1\n"
        f"inputs: [{d / 'in.jsonl'}]\n"
        "stages:\n  - stage: jsonl_reader\n    source: test\n    text_field: text\n    id_field: id\n"
        "  - stage: kenlm_perplexity\n  - stage: quality_classifier\n  - stage: quality_filter\n"
        f"output: {{path: {d / 'out'}}}\n"
    )
    res = runner.invoke(app, ["run", str(recipe), "--filter-threshold", "0.7"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return d / "out"


def test_english_junk_is_dropped_with_its_reason_and_scores_kept(english_junk_run):
    kept, rejected = read(english_junk_run / "shards"), read(english_junk_run / "rejected")
    kinds = lambda rows: sorted({json.loads(r["meta"])["kind"] for r in rows})  # noqa: E731
    assert kinds(kept) == ["python_docs"] and len(kept) == 6
    by_id = {r["id"]: r for r in rejected}
    assert (by_id["blank"]["stage"], by_id["blank"]["reason"]) == ("kenlm_perplexity", "no_text_after_normalization")
    junk = [r for r in rejected if r["id"] != "blank"]
    assert len(junk) == 12
    for r in junk:
        assert r["stage"] == "quality_filter"
        assert r["reason"] in ("low_ppl_score", "low_quality_clf_score", "low_ppl_score_and_quality_clf_score")
        # score first, filter later: the dropped documents carry their scores
        assert r["ppl_score"] is not None and r["quality_clf_score"] is not None
        failing = [c for c in ("ppl_score", "quality_clf_score") if r[c] < 0.7]
        assert r["reason"] == "low_" + "_and_".join(failing)


def test_missing_model_fails_validation_naming_the_file(tmp_path):
    recipe = tmp_path / "r.yaml"
    missing = tmp_path / "models" / "en.arpa.bin"
    recipe.write_text(
        f"name: r\ninputs: [{ROOT / 'tests/data/web-tiny'}]\nstages:\n  - stage: warc_reader\n"
        f"  - stage: kenlm_perplexity\n    model: {missing}\n  - stage: quality_classifier\n  - stage: quality_filter\n"
    )
    res = runner.invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 2
    assert f"r.yaml:6 stages[1].model: model file not found: {missing}" in res.output


def test_filter_without_its_scorers_fails_validation(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: r\ninputs: [{ROOT / 'tests/data/web-tiny'}]\nstages:\n  - stage: warc_reader\n"
        "  - stage: kenlm_perplexity\n  - stage: quality_filter\n"
    )
    res = runner.invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 2 and "quality_filter needs column(s) quality_clf_score from an earlier stage (add quality_classifier before it)" in res.output
    recipe.write_text(recipe.read_text() + "    scores: [ppl_score]\n")
    res = runner.invoke(app, ["validate", str(recipe)])
    assert res.exit_code == 0, res.output


def test_both_scorers_separate_heldout_good_text_from_junk():
    """ROC AUC >= 0.95 for each calibrated scorer on a small held-out set (the benchmark uses all of it)."""
    from r1data.quality.cards import find_calibration
    from r1data.quality.fasttext_model import FastTextScorer
    from r1data.quality.kenlm_model import KenLMScorer

    good, junk = heldout_sets(per_kind=25, limit=40)
    lm_path, clf_path = ROOT / "models/kenlm/en/en.arpa.bin", ROOT / "models/quality/web/web.ftz"
    lm, lm_cal = KenLMScorer(lm_path), find_calibration(lm_path, None)[0]
    clf, clf_cal = FastTextScorer(clf_path, "__label__hq", preprocess="normalized"), find_calibration(clf_path, None)[0]
    kenlm = separation(lambda t: lm_cal.score_array(lm.perplexities(t)), good, junk)
    fasttext = separation(lambda t: clf_cal.score_array(clf.probabilities(t)), good, junk)
    print("kenlm", kenlm, "\nfasttext", fasttext)
    assert kenlm["roc_auc"] >= 0.95 and fasttext["roc_auc"] >= 0.95
