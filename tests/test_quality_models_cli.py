"""`r1data models ...` end to end on small corpora: real lmplz/build_binary, real fastText."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1data.quality.corpus import read_texts
from r1data.quality.synthetic import make_junk
from r1data.stages.quality import KenLMPerplexity, KenLMPerplexityConfig, QualityClassifier, QualityClassifierConfig
from r1data_cli.app import app

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "data" / "reference"
runner = CliRunner()


def invoke(*args):
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res


def write_jsonl(path: Path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpora")
    docstrings, _ = read_texts([REF / "python-docstrings.train.jsonl.gz"], limit=250)
    books, _ = read_texts([REF / "books.train.jsonl.gz"], limit=60)
    good_raw, _ = read_texts([REF / "python-docs.calibration.jsonl.gz"], limit=25)
    junk = make_junk(good_raw, [("shuffled", 25), ("link_list", 25), ("keyword_stuffing", 25)], seed=5, pool="heldout")
    return {
        "positive": write_jsonl(d / "positive.jsonl", docstrings + books),
        # plain text: one document per line
        "tiny": _lines(d / "tiny.txt", ["the cat sat on the mat .", "the dog sat on the log .", "a cat and a dog ."] * 3),
        "sample": write_jsonl(d / "sample.jsonl", good_raw + junk),
        "negative": REF / "cc-spam.train.jsonl.gz",
    }


def _lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def kenlm_model(corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny"
    res = invoke("models", "build-kenlm", "--corpus", corpora["positive"], "--out", out, "--order", 4, "--vocab-size", 600,
                 "--calibration-sample", corpora["sample"], "--description", "test model")  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_build_kenlm_writes_model_sp_and_card(kenlm_model, corpora):
    lm, sp, card_path = kenlm_model / "tiny.arpa.bin", kenlm_model / "tiny.sp.model", kenlm_model / "tiny.card.json"
    assert lm.read_bytes().startswith(b"mmap lm ") and sp.stat().st_size > 0
    card = json.loads(card_path.read_text())
    from r1data.paths import sha256_file

    assert card["kind"] == "kenlm" and card["model"]["order"] == 4 and card["model"]["ngrams"]["4"] > 0
    assert card["training"]["corpus"] == [
        {"path": str(corpora["positive"]), "sha256": sha256_file(corpora["positive"]), "bytes": corpora["positive"].stat().st_size, "documents": 310}
    ]
    assert card["files"]["lm"]["sha256"] == sha256_file(lm)
    assert any(c.startswith("lmplz -o 4") for c in card["commands"]) and any(c.startswith("build_binary -q 8 -b 8") for c in card["commands"])
    cal = card["calibration"]
    assert cal["n_documents"] == 100 and cal["higher_is_better"] is False and len(cal["values"]) == 101
    assert (kenlm_model / "tiny.card.md").read_text().startswith("# Model card: tiny (kenlm)")
    # the model works as a stage, and separates real text from its shuffled words
    assert KenLMPerplexity.check_config(KenLMPerplexityConfig(model=str(kenlm_model / "tiny.arpa.bin"))) == []
    from r1data.quality.kenlm_model import KenLMScorer

    good, _ = read_texts([corpora["sample"]], limit=25)
    bad = make_junk(good, [("shuffled", 25)], seed=9)
    ppl = KenLMScorer(kenlm_model / "tiny.arpa.bin").perplexities(good + bad)
    assert sum(ppl[:25]) / 25 < sum(ppl[25:]) / 25


def test_build_kenlm_falls_back_to_discount_fallback_on_a_tiny_corpus(corpora, tmp_path):
    res = invoke("models", "build-kenlm", "--corpus", corpora["tiny"], "--out", tmp_path / "toy", "--order", 3, "--vocab-size", 100, "--binary", "probing")
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "toy/toy.card.json").read_text())
    assert card["model"]["discount_fallback"] is True and card["model"]["binary_type"] == "probing"
    assert card["calibration"] is None and "calibration: none" in res.output
    assert "--discount_fallback" in card["commands"][-2]


def test_models_info_checks_sha256(kenlm_model, tmp_path):
    res = invoke("models", "info", kenlm_model)
    assert res.exit_code == 0 and "ok lm:" in res.output and "Raw score at percentiles" in res.output
    copy = tmp_path / "tiny"
    shutil.copytree(kenlm_model, copy)
    with open(copy / "tiny.sp.model", "ab") as f:
        f.write(b"x")
    res = invoke("models", "info", copy / "tiny.arpa.bin")
    assert res.exit_code == 1 and "MISMATCH sp_model" in res.output


def test_calibrate_a_ccnet_style_pair_without_card(kenlm_model, corpora, tmp_path):
    # CCNet publishes <lang>.arpa.bin + <lang>.sp.model and nothing else
    shutil.copy(kenlm_model / "tiny.arpa.bin", tmp_path / "xx.arpa.bin")
    shutil.copy(kenlm_model / "tiny.sp.model", tmp_path / "xx.sp.model")
    cfg = KenLMPerplexityConfig(model=str(tmp_path / "xx.arpa.bin"))
    assert [p for p, _ in KenLMPerplexity.check_config(cfg)] == ["calibration"]
    res = invoke("models", "calibrate", tmp_path / "xx.arpa.bin", "--sample", corpora["sample"], "--mode", "document")
    assert res.exit_code == 0, res.output
    assert "calibrated" in res.output and "p30" in res.output
    card = json.loads((tmp_path / "xx.card.json").read_text())
    assert card["kind"] == "kenlm" and card["scoring"]["mode"] == "document" and card["calibration"]["n_documents"] == 100
    assert KenLMPerplexity.check_config(cfg) == []


def test_calibrate_to_another_place_for_a_read_only_model(kenlm_model, corpora, tmp_path):
    shutil.copy(kenlm_model / "tiny.arpa.bin", tmp_path / "yy.arpa.bin")
    shutil.copy(kenlm_model / "tiny.sp.model", tmp_path / "yy.sp.model")
    out = tmp_path / "elsewhere" / "yy-calibration.json"
    res = invoke("models", "calibrate", tmp_path / "yy.arpa.bin", "--sample", corpora["sample"], "--out", out, "--limit", 40)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["calibration"]["n_documents"] == 40
    assert not (tmp_path / "yy.card.json").exists()
    cfg = KenLMPerplexityConfig(model=str(tmp_path / "yy.arpa.bin"), calibration=str(out))
    assert KenLMPerplexity.check_config(cfg) == []


def test_train_quality_reports_heldout_metrics(corpora, tmp_path):
    res = invoke("models", "train-quality", "--positive", corpora["positive"], "--negative", corpora["negative"],
                 "--synthetic", "shuffled=150", "--synthetic", "link_list=150", "--synthetic", "keyword_stuffing=150",
                 "--out", tmp_path / "clf", "--epoch", 5, "--heldout", 0.2, "--calibration-sample", corpora["sample"])  # fmt: skip
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "clf/clf.card.json").read_text())
    ev = card["evaluation"]
    assert ev["positives"] > 20 and ev["negatives"] > 20 and ev["heldout_fraction"] == 0.2
    assert ev["roc_auc"] > 0.9 and 0 < ev["precision"] <= 1 and 0 < ev["recall"] <= 1
    assert card["positive_label"] == "__label__hq" and card["preprocess"] == "normalized"
    assert card["training"]["synthetic_negatives"]["kinds"] == {"shuffled": 150, "link_list": 150, "keyword_stuffing": 150}
    assert (tmp_path / "clf/clf.ftz").is_file() and card["calibration"]["higher_is_better"] is True
    assert "held-out: precision" in res.output
    assert QualityClassifier.check_config(QualityClassifierConfig(model=str(tmp_path / "clf/clf.ftz"))) == []


def test_a_dclm_style_classifier_loads_unchanged(corpora, tmp_path):
    """DCLM ships a bare fastText .bin with labels __label__hq / __label__cc and no card."""
    res = invoke("models", "train-quality", "--positive", corpora["positive"], "--negative", corpora["negative"],
                 "--synthetic", "shuffled=100", "--out", tmp_path / "made", "--epoch", 3, "--lr", 0.05, "--no-quantize",
                 "--preprocess", "oneline", "--dim", 8)  # fmt: skip
    assert res.exit_code == 0, res.output
    bare = tmp_path / "dclm" / "openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin"
    bare.parent.mkdir()
    shutil.copy(tmp_path / "made/made.bin", bare)
    # no card: the positive label and a calibration are missing, and validation says so
    problems = dict(QualityClassifier.check_config(QualityClassifierConfig(model=str(bare))))
    assert set(problems) == {"positive_label", "calibration"}
    res = invoke("models", "calibrate", bare, "--sample", corpora["sample"])
    assert res.exit_code == 2 and "pass --positive-label (DCLM's: __label__hq)" in res.output
    res = invoke("models", "calibrate", bare, "--sample", corpora["sample"], "--positive-label", "__label__nope")
    assert res.exit_code == 2 and "'__label__nope' is not one of the model's labels (__label__hq, __label__cc)" in res.output.replace("__label__cc, __label__hq", "__label__hq, __label__cc")
    res = invoke("models", "calibrate", bare, "--sample", corpora["sample"], "--positive-label", "__label__hq")
    assert res.exit_code == 0, res.output
    cfg = QualityClassifierConfig(model=str(bare))
    assert QualityClassifier.check_config(cfg) == []
    stage = QualityClassifier(cfg)
    from datatrove.data import Document

    good, _ = read_texts([corpora["sample"]], limit=3)
    out = list(stage.run(iter([Document(text=t, id=str(i)) for i, t in enumerate(good)])))
    assert all(0 <= d.metadata["quality_clf"] <= 1 and 0 <= d.metadata["quality_clf_score"] <= 1 for d in out)


@pytest.mark.parametrize(
    "args, message",
    [
        (["build-kenlm", "--corpus", "nope.txt", "--out", "{tmp}/m"], "corpus: file not found:"),
        (["build-kenlm", "--corpus", "{positive}", "--out", "{tmp}/m", "--prune", "a b"], "--prune 'a b': give integers"),
        (["train-quality", "--positive", "{positive}", "--out", "{tmp}/m"], "give junk text with --negative"),
        (["train-quality", "--positive", "{positive}", "--out", "{tmp}/m", "--synthetic", "spam=3"], "--synthetic 'spam=3': expected KIND=COUNT"),
        (["calibrate", "{tmp}/missing.bin", "--sample", "{positive}"], "model file not found:"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(corpora, tmp_path, args, message):

    argv = [a.format(tmp=tmp_path, positive=corpora["positive"]) for a in args]
    res = runner.invoke(app, ["models", *argv])
    # CliRunner does not go through run_app's error mapping for typer.Exit: the code is the same
    assert res.exit_code == 2, res.output
    assert message in res.output
