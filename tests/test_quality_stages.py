"""Per-stage tiny-text tests for kenlm_perplexity, quality_classifier and quality_filter (exact reasons)."""

import json
import math
import shutil
from pathlib import Path

import pytest
from datatrove.data import Document
from pydantic import ValidationError

from r1data.stages.base import rejection
from r1data.stages.quality import (
    KenLMPerplexity,
    KenLMPerplexityConfig,
    QualityClassifier,
    QualityClassifierConfig,
    QualityFilter,
    QualityFilterConfig,
)

ROOT = Path(__file__).resolve().parents[1]
KENLM = ROOT / "models/kenlm/en/en.arpa.bin"
CLASSIFIER = ROOT / "models/quality/web/web.ftz"

GOOD = (
    "The json module provides functions to encode Python objects as JSON strings and to decode JSON "
    "strings back into Python objects. Use dumps() to serialise an object to a string and loads() to "
    "parse a string; dump() and load() work with file objects instead.\n"
    "Keys in JSON objects are always strings. When a dictionary is converted into JSON, all the keys of "
    "the dictionary are coerced to strings, so a round trip may not give back the original dictionary."
)
JUNK = (
    "cheap replica watches buy replica watches online best replica watches price replica watches free "
    "shipping discount replica watches replica watches for sale top 10 replica watches cheap replica watches\n"
    "Home | About Us | Contact | Privacy Policy | Login | Cart | Sitemap | Blog | Tags | Archives"
)


def run_stage(stage, *docs):
    out = list(stage.run(iter(docs)))
    assert len(out) == len(docs)  # stages never drop documents, they mark them
    return out


def doc(text, **md):
    return Document(text=text, id=str(hash(text)), metadata=dict(md))


@pytest.fixture(scope="module")
def kenlm_stage():
    return KenLMPerplexity(KenLMPerplexityConfig(model=str(KENLM)))


@pytest.fixture(scope="module")
def clf_stage():
    return QualityClassifier(QualityClassifierConfig(model=str(CLASSIFIER)))


def test_kenlm_scores_and_calibrates(kenlm_stage):
    good, junk = run_stage(kenlm_stage, doc(GOOD), doc(JUNK))
    assert rejection(good) is None and rejection(junk) is None
    assert 1 < good.metadata["ppl"] < junk.metadata["ppl"]
    assert 0 <= junk.metadata["ppl_score"] < good.metadata["ppl_score"] <= 1
    assert good.metadata["ppl_score"] >= 0.7


@pytest.mark.parametrize(
    "text, reason",
    [("", "empty_text"), ("  \n\t \n", "empty_text"), (b"\x89PNG\r\n", "not_text"), (None, "not_text"), ("\x00\x01\x02\x7f", "no_text_after_normalization")],
)
def test_kenlm_unscorable_documents_are_dropped_with_a_reason(kenlm_stage, text, reason):
    d = Document(text=text, id="x", metadata={})
    (out,) = run_stage(kenlm_stage, d)
    assert rejection(out) == ("kenlm_perplexity", reason)
    assert "ppl" not in out.metadata


def test_kenlm_document_mode_is_ccnets_glued_lines(kenlm_stage):
    from r1data.quality.kenlm_model import KenLMScorer

    lines = KenLMScorer(KENLM, mode="lines")
    whole = KenLMScorer(KENLM, mode="document")
    text = "First line here.\nSecond line there."
    # document mode scores "first line here.second line there." as one sentence, as CCNet's pipeline did
    assert whole.perplexities([text]) == whole.perplexities(["First line here.Second line there."])
    assert lines.perplexities([text]) != whole.perplexities([text])
    # lines mode: the sum over lines of log10 p, over pieces + one </s> per line
    (s, n), = lines.log_scores([text])
    parts = [lines.log_scores([t])[0] for t in text.split("\n")]
    assert s == pytest.approx(sum(p[0] for p in parts)) and n == sum(p[1] for p in parts)
    assert lines.perplexities([text])[0] == pytest.approx(10 ** (-s / n))


def test_classifier_scores_and_calibrates(clf_stage):
    good, junk, empty = run_stage(clf_stage, doc(GOOD), doc(JUNK), doc(" \n "))
    assert good.metadata["quality_clf"] > 0.5 > junk.metadata["quality_clf"]
    assert good.metadata["quality_clf_score"] >= 0.7 > junk.metadata["quality_clf_score"]
    assert rejection(empty) == ("quality_classifier", "empty_text")


def test_a_batch_never_loses_documents_and_skips_rejected_ones(kenlm_stage):
    docs = [doc(GOOD), Document(text=b"bytes", id="b", metadata={}), doc(JUNK)]
    docs[2].metadata["_rejected"] = ("earlier", "some_reason")
    out = run_stage(kenlm_stage, *docs)
    assert "ppl" in out[0].metadata and "ppl" not in out[2].metadata
    assert rejection(out[1]) == ("kenlm_perplexity", "not_text")
    assert rejection(out[2]) == ("earlier", "some_reason")


# -- quality_filter ---------------------------------------------------------------------------


def filt(**cfg):
    return QualityFilter(QualityFilterConfig(**cfg))


@pytest.mark.parametrize(
    "cfg, scores, reason",
    [
        ({"threshold": 0.7}, (0.8, 0.9), None),
        ({"threshold": 0.7}, (0.69, 0.9), "low_ppl_score"),
        ({"threshold": 0.7}, (0.9, 0.5), "low_quality_clf_score"),
        ({"threshold": 0.7}, (0.1, 0.2), "low_ppl_score_and_quality_clf_score"),
        ({"threshold": 0.7}, (0.7, 0.7), None),  # >= keeps
        ({"threshold": 0.7, "combine": "any"}, (0.1, 0.8), None),
        ({"threshold": 0.7, "combine": "any"}, (0.1, 0.2), "low_ppl_score_and_quality_clf_score"),
        ({"threshold": 0.7, "combine": "mean"}, (0.5, 0.95), None),
        ({"threshold": 0.7, "combine": "mean"}, (0.5, 0.8), "low_mean_quality_score"),
        ({"threshold": 0.7, "thresholds": {"ppl_score": 0.4}}, (0.5, 0.8), None),
        ({"threshold": 0.7, "thresholds": {"ppl_score": 0.4}}, (0.5, 0.6), "low_quality_clf_score"),
        ({"threshold": 0.5, "scores": ["ppl_score"]}, (0.4, None), "low_ppl_score"),
        ({"threshold": 0.5, "scores": ["ppl_score"]}, (0.6, None), None),
        ({"threshold": 0.5}, (0.9, None), "missing_quality_clf_score"),
    ],
)
def test_quality_filter_reasons(cfg, scores, reason):
    md = {k: v for k, v in zip(("ppl_score", "quality_clf_score"), scores) if v is not None}
    (out,) = run_stage(filt(**cfg), doc("text", **md))
    assert rejection(out) == (None if reason is None else ("quality_filter", reason))


def test_quality_filter_nan_score_is_missing():
    (out,) = run_stage(filt(), doc("text", ppl_score=math.nan, quality_clf_score=0.9))
    assert rejection(out) == ("quality_filter", "missing_ppl_score")


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"threshold": 1.5}, "less than or equal to 1"),
        ({"thresholds": {"ppl_score": 2}}, "between 0 and 1"),
        ({"thresholds": {"other_score": 0.5}}, "not in scores"),
        ({"combine": "mean", "thresholds": {"ppl_score": 0.5}}, "per-column thresholds do not apply"),
        ({"combine": "median"}, "'all', 'any' or 'mean'"),
        ({"scores": []}, "at least 1"),
        ({"scores": ["ppl_score", "ppl_score"]}, "once"),
    ],
)
def test_quality_filter_config_errors(cfg, message):
    with pytest.raises(ValidationError, match=message):
        QualityFilterConfig(**cfg)


def test_quality_filter_needs_follow_its_scores():
    assert QualityFilter.needs_for(QualityFilterConfig()) == ("ppl_score", "quality_clf_score")
    assert QualityFilter.needs_for(QualityFilterConfig(scores=["ppl_score"])) == ("ppl_score",)


# -- validation-time model checks -------------------------------------------------------------


def test_missing_model_is_named(tmp_path):
    missing = tmp_path / "nope" / "en.arpa.bin"
    problems = KenLMPerplexity.check_config(KenLMPerplexityConfig(model=str(missing)))
    assert problems == [("model", f"model file not found: {missing}")]
    problems = QualityClassifier.check_config(QualityClassifierConfig(model=str(tmp_path / "x.bin")))
    assert problems == [("model", f"model file not found: {tmp_path / 'x.bin'}")]


def test_wrong_or_unreadable_model_is_named(tmp_path):
    bogus = tmp_path / "en.arpa.bin"
    bogus.write_text("not a language model")
    (problem,) = KenLMPerplexity.check_config(KenLMPerplexityConfig(model=str(bogus)))
    assert problem[0] == "model" and str(bogus) in problem[1] and "expected a KenLM binary or an ARPA file" in problem[1]
    (problem,) = QualityClassifier.check_config(QualityClassifierConfig(model=str(KENLM)))
    assert "is a KenLM binary; expected a fastText model" in problem[1]


def test_model_without_card_needs_calibration_and_sp_model(tmp_path):
    # A CCNet-style file with nothing beside it.
    shutil.copy(KENLM, tmp_path / "xx.arpa.bin")
    problems = dict(KenLMPerplexity.check_config(KenLMPerplexityConfig(model=str(tmp_path / "xx.arpa.bin"))))
    assert "r1data models calibrate" in problems["calibration"] and "xx.card.json" in problems["calibration"]
    assert problems["sp_model"] == f"SentencePiece model not found: {tmp_path / 'xx.sp.model'} (set sp_model: to its path)"
    shutil.copy(CLASSIFIER, tmp_path / "dclm.bin")
    problems = dict(QualityClassifier.check_config(QualityClassifierConfig(model=str(tmp_path / "dclm.bin"))))
    assert "set positive_label" in problems["positive_label"] and "calibration" in problems


def test_broken_calibration_in_card_is_reported(tmp_path):
    for f in KENLM.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    card = json.loads((tmp_path / "en.card.json").read_text())
    card["calibration"]["values"] = card["calibration"]["values"][::-1]
    (tmp_path / "en.card.json").write_text(json.dumps(card))
    problems = dict(KenLMPerplexity.check_config(KenLMPerplexityConfig(model=str(tmp_path / "en.arpa.bin"))))
    assert "non-decreasing" in problems["calibration"] and "en.card.json" in problems["calibration"]


def test_describe_records_model_card_and_calibration(kenlm_stage):
    d = kenlm_stage.describe()
    assert d["model_file"]["sha256"] and d["model_card"]["path"].endswith("en.card.json")
    assert d["calibration"]["n_documents"] > 1000 and "p30" in d["calibration"]["summary"]


@pytest.mark.parametrize("cls", [KenLMPerplexity, QualityClassifier, QualityFilter])
def test_stage_examples_validate(cls):
    import yaml

    (entry,) = yaml.safe_load(cls.example)
    assert entry.pop("stage") == cls.name
    config = cls.Config.model_validate(entry)
    assert cls.check_config(config) == []


def test_help_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = "import sys, r1data_cli.app as a; a.app(['models', '--help'], standalone_mode=False); print(sorted(m for m in ('kenlm', 'fasttext', 'sentencepiece', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


def test_calibration_of_another_model_is_refused(tmp_path):
    shutil.copy(CLASSIFIER, tmp_path / "other.ftz")
    # the bundled KenLM card used for a different file (here: wrong size)
    with open(tmp_path / "other.ftz", "ab") as f:
        f.write(b"\0")
    own_card = str(CLASSIFIER.parent / "web.card.json")
    problems = dict(QualityClassifier.check_config(QualityClassifierConfig(model=str(tmp_path / "other.ftz"), calibration=own_card)))
    assert "was computed for web.ftz" in problems["calibration"] and str(tmp_path / "other.ftz") in problems["calibration"]
    kenlm_card = str(KENLM.parent / "en.card.json")
    problems = dict(QualityClassifier.check_config(QualityClassifierConfig(model=str(CLASSIFIER), calibration=kenlm_card)))
    assert problems["calibration"].endswith("needs a fasttext_quality calibration") and "card of a kenlm model" in problems["calibration"]
