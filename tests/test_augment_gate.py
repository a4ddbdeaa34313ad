"""The quality gate on back-translated and EDA variants: real Apertium, real WordNet, the project's KenLM model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from datatrove.data import Document

from r1data.augment.eda import DEFAULT_WORDNET, WordNet
from r1data.augment.gate import Thresholds, chrf, figures, judge, word_count
from r1data.config.spec import build_spec
from r1data.yamlsrc import load_yaml_text
from r1data.errors import ConfigError
from r1data.stages.augment import Backtranslate, BacktranslateConfig, Eda, EdaConfig, EdaGateOptions, GateOptions
from r1data.stages.base import rejection

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "augment"
HAVE_KENLM = (ROOT / "models" / "kenlm" / "en" / "en.arpa.bin").is_file()
needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium is not installed: run scripts/setup.sh")
needs_wordnet = pytest.mark.skipif(WordNet.check(DEFAULT_WORDNET) is not None, reason="WordNet not installed: run scripts/setup.sh")
pytestmark = pytest.mark.skipif(not HAVE_KENLM, reason="models/kenlm/en is missing")
COURIER = (
    "A courier received 80 packages yesterday and twice as many today.  All of these should be delivered tomorrow. "
    "How many packages should be delivered tomorrow?"
)


def test_chrf_and_word_counts():
    assert chrf("The cat sat.", "The cat sat.") == 1.0
    assert chrf("The  cat\nsat.", "The cat sat.") == 1.0  # whitespace is ignored, as in chrF
    assert chrf("xyz", "abc") == 0.0
    # "ab" against "abc": 1-grams P 2/2 R 2/3, 2-grams P 1/1 R 1/2 -> P 1, R 7/12 -> F2 = 5PR / (4P + R) = 7/11
    assert chrf("ab", "abc") == pytest.approx(7 / 11)
    assert word_count("Don't stop -- 3 cats.") == 4
    t = Thresholds(max_ppl_ratio=2.0, min_length_ratio=0.8, max_length_ratio=1.25, min_similarity=0.6, max_similarity=0.98)
    fig = figures("He sold 48 baskets.", "He sold 48 baskets of apples today.", 100.0, 150.0)
    assert fig["ppl_ratio"] == 1.5 and fig["length_ratio"] == 1.75 and judge(fig, t) == "length_ratio"
    assert judge(figures("a b c d", "a b c d", 10.0, 10.0), t) == "unchanged"
    assert judge(figures("a b c d", "a b c d", 10.0, 10.0), Thresholds(2.0, 0.8, 1.25, 0.6, None)) is None


def _bt(texts: dict[str, str], **cfg) -> dict[str, Document]:
    st = Backtranslate(BacktranslateConfig.model_validate({"backend": "apertium", **cfg}))
    docs = [Document(text=t, id=k, metadata={}) for k, t in texts.items()]
    return {d.metadata["augmented_from"]: d for d in st.run(iter(docs)) if "augmented_from" in d.metadata}


@needs_apertium
def test_apertium_garbage_is_rejected_with_reason_and_figures_and_good_round_trips_are_kept():
    out = _bt(
        {
            # issue 15's example: Apertium turns it into "Left initiate us with the simplest of examples."
            "issue": "Let us start with the simplest of examples.",
            # GSM8K train problems that are not in the KenLM model's training corpus
            "gas": "In North Carolina, Jim bought 10 gallons of gas at $2.00/gallon.  He paid $1.00 more per gallon in Virginia "
            "where he bought another 10 gallons of gas.  How much has he spent on gas?",
            "courier": COURIER,
            "river": "The old man walked slowly to the river and looked at the water.",
        }
    )
    issue, gas, courier, river = out["issue"], out["gas"], out["courier"], out["river"]
    assert issue.text == "Left initiate us with the simplest of examples."
    assert rejection(issue) == ("backtranslate", "backtranslation_perplexity")
    fig = issue.metadata["augmentation"]["gate"]
    assert fig["ppl_ratio"] > 2.0 and fig["length_ratio"] == 1.0 and set(fig) == {"ppl", "source_ppl", "ppl_ratio", "length_ratio", "similarity"}
    assert fig["ppl_ratio"] == pytest.approx(fig["ppl"] / fig["source_ppl"], rel=1e-3)
    assert "chevron" in gas.text and rejection(gas) == ("backtranslate", "backtranslation_perplexity")
    assert gas.metadata["augmentation"]["gate"]["ppl_ratio"] > 5
    # "All of these should be delivered tomorrow" -> "Everything of these would have to be handed morning": meaning lost
    assert rejection(courier) == ("backtranslate", "backtranslation_similarity")
    assert courier.metadata["augmentation"]["gate"]["similarity"] < 0.6 and courier.metadata["augmentation"]["gate"]["ppl_ratio"] < 2.0
    assert river.text == "The old man walked slowly to the river and looked in the water."
    assert rejection(river) is None and river.metadata["augmentation"]["gate"]["ppl_ratio"] < 1.5
    # thresholds are parameters: a looser gate keeps the courier, no gate keeps everything (today's behaviour)
    loose = _bt({"courier": COURIER}, gate={"min_similarity": 0.4})
    assert rejection(loose["courier"]) is None
    off = _bt({"issue": "Let us start with the simplest of examples."}, gate=None)
    assert rejection(off["issue"]) is None and "gate" not in off["issue"].metadata["augmentation"]


@needs_apertium
def test_backtranslate_replace_mode_rejects_the_document_when_the_gate_fails():
    st = Backtranslate(BacktranslateConfig(mode="replace"))
    out = list(st.run(iter([Document(text="Let us start with the simplest of examples.", id="p", metadata={})])))
    assert len(out) == 1 and rejection(out[0]) == ("backtranslate", "backtranslation_perplexity")
    assert out[0].metadata["augment"]["backtranslate"]["gate"]["ppl_ratio"] > 2.0
    st = Backtranslate(BacktranslateConfig(mode="replace", on_failure="keep"))
    out = list(st.run(iter([Document(text="Let us start with the simplest of examples.", id="p", metadata={})])))
    assert rejection(out[0]) is None and out[0].text == "Let us start with the simplest of examples."


@needs_wordnet
def test_eda_word_salad_is_rejected_and_good_variants_are_kept():
    prose = [json.loads(line) for line in open(SAMPLE / "prose.jsonl", encoding="utf-8")]
    docs = [Document(text=r["text"], id=r["id"], metadata={}) for r in prose]
    st = Eda(EdaConfig(operations=["synonym", "swap", "delete"], rate=0.1))  # pipelines/augment.yaml's EDA
    variants = {d.metadata["augmented_from"]: d for d in st.run(iter(docs)) if "augmented_from" in d.metadata}
    salad = variants["news-from-nowhere-02"]
    assert salad.metadata["augmentation"]["operation"] == "swap"
    assert rejection(salad) == ("eda", "eda_perplexity") and salad.metadata["augmentation"]["gate"]["ppl_ratio"] > 1.5
    kept = [v for v in variants.values() if rejection(v) is None]
    assert len(kept) >= 10
    lim = EdaGateOptions()
    for v in kept:
        g = v.metadata["augmentation"]["gate"]
        assert g["ppl_ratio"] <= lim.max_ppl_ratio and lim.min_similarity <= g["similarity"] < lim.max_similarity
        assert lim.min_length_ratio <= g["length_ratio"] <= lim.max_length_ratio
    # a heavier swap rate makes word salad the similarity floor catches
    text = "The quick farmer carried heavy baskets of fresh apples to the busy market.\nHe sold 48 baskets before noon and walked home happy."
    out = list(Eda(EdaConfig(operations=["swap"], rate=0.3)).run(iter([Document(text=text, id="salad", metadata={})])))
    assert rejection(out[1]) == ("eda", "eda_similarity") and out[1].metadata["augmentation"]["gate"]["similarity"] < 0.75
    # one swap in a 146-word document changes nothing worth keeping
    out = list(Eda(EdaConfig(operations=["swap"], rate=0.002)).run(iter([Document(text=prose[0]["text"], id="long", metadata={})])))
    assert rejection(out[1]) == ("eda", "eda_unchanged") and out[1].metadata["augmentation"]["gate"]["similarity"] >= 0.98
    assert out[0].metadata["augment"]["eda"] == {"status": "failed", "variants": 0, "reason": "eda_unchanged"}


def test_gate_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="min_length_ratio 1.5 is above max_length_ratio 1.25"):
        GateOptions(min_length_ratio=1.5)
    src = load_yaml_text(
        f"name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: eda\n    operations: [swap]\n"
        f"    gate: {{model: {tmp_path}/none.arpa.bin}}\n",
        file="r.yaml",
    )
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "stages[1].gate: gate.model: KenLM model not found" in str(e.value)
    src = load_yaml_text("name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: eda\n    operations: [swap]\n    gate: null\n", file="r.yaml")
    build_spec(src)
