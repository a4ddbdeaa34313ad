"""EDA (WordNet from Debian's wordnet-base), domain tagging (rules, a real fastText model) and upsampling."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datatrove.data import Document

from r1data.augment.eda import DEFAULT_WORDNET, OPERATIONS, WordNet, augment
from r1data.augment.domain import DomainRules, code_score, math_score, train_domain_classifier
from r1data.config.spec import build_spec
from r1data.yamlsrc import load_yaml_text
from r1data.errors import ConfigError
from r1data.stages.augment import Eda, EdaConfig
from r1data.stages.base import rejection
from r1data.stages.domain import DomainTag, DomainTagConfig, DomainUpsample, DomainUpsampleConfig

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "augment"
HAVE_WORDNET = WordNet.check(DEFAULT_WORDNET) is None
needs_wordnet = pytest.mark.skipif(not HAVE_WORDNET, reason="WordNet not installed: run scripts/setup.sh (apt-get install wordnet-base)")
TEXT = (
    "The quick farmer carried heavy baskets of fresh apples to the busy market.\n"
    "He sold 48 baskets before noon and walked home happy."
)


def _rows(name):
    return [json.loads(line) for line in open(SAMPLE / name, encoding="utf-8")]


@needs_wordnet
def test_wordnet_reader_finds_synonyms():
    wn = WordNet()
    assert {"fast", "speedy"} <= set(wn.synonyms("quick"))
    assert "dog" not in wn.synonyms("dog") and wn.synonyms("the") == ()


@needs_wordnet
@pytest.mark.parametrize("op", OPERATIONS)
def test_eda_is_deterministic_for_a_seed_and_keeps_numbers_and_layout(op):
    wn = WordNet()
    a = augment(TEXT, op, rate=0.2, rng=random.Random("s1"), wordnet=wn)
    b = augment(TEXT, op, rate=0.2, rng=random.Random("s1"), wordnet=wn)
    c = augment(TEXT, op, rate=0.2, rng=random.Random("s2"), wordnet=wn)
    assert a == b and a[1] > 0
    assert a[0] != TEXT and (c[0] != a[0] or op == "swap")
    assert "48" in a[0] and a[0].count("\n") == 1


@needs_wordnet
def test_eda_stage_variants_and_replace_mode():
    docs = [Document(text=TEXT, id=f"p{i}", metadata={"domain": "prose"}) for i in range(3)]
    st = Eda(EdaConfig(variants=3, seed=5))
    out = list(st.run(iter(docs)))
    again = list(Eda(EdaConfig(variants=3, seed=5)).run(iter([Document(text=TEXT, id=f"p{i}", metadata={"domain": "prose"}) for i in range(3)])))
    assert [(d.id, d.text) for d in out] == [(d.id, d.text) for d in again]
    variants = [d for d in out if d.metadata.get("augmented_from") == "p0"]
    assert [v.metadata["augmentation"]["operation"] for v in variants] and len({v.text for v in variants}) == len(variants)
    st = Eda(EdaConfig(mode="replace", operations=["delete"], rate=0.3, gate=None))
    d = Document(text=TEXT, id="r", metadata={})
    out = list(st.run(iter([d])))
    assert len(out) == 1 and out[0].text != TEXT and out[0].metadata["eda_replaced"]["chars"] == len(TEXT)
    # with the gate on, deleting 6 of 23 words is too much: the document stays as it was, the note says why
    out = list(Eda(EdaConfig(mode="replace", operations=["delete"], rate=0.3)).run(iter([Document(text=TEXT, id="r", metadata={})])))
    note = out[0].metadata["augment"]["eda"]
    assert len(out) == 1 and out[0].text == TEXT and rejection(out[0]) is None and "eda_replaced" not in out[0].metadata
    assert note["status"] == "failed" and note["reason"] == "eda_length_ratio" and note["gate"]["length_ratio"] == round(17 / 23, 4)


def test_eda_without_wordnet_is_a_validation_error(tmp_path):
    src = load_yaml_text(
        f"name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: eda\n    wordnet: {tmp_path}\n", file="r.yaml"
    )
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "stages[1].wordnet: WordNet database not found" in str(e.value) and "apt-get install wordnet-base" in str(e.value)
    # swap and delete need no WordNet
    src = load_yaml_text(
        f"name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: eda\n    wordnet: {tmp_path}\n    operations: [swap, delete]\n",
        file="r.yaml",
    )
    build_spec(src)


def test_domain_rules_on_the_sample():
    r = DomainRules()
    for row in _rows("gsm8k.jsonl")[:30]:
        assert r.classify(row["text"], {"answer": row["answer"]})[:2] == ("math", "meta:answer")
        assert r.classify(row["text"] + "\n" + row["answer"], {})[0] == "math"
    for row in _rows("python.jsonl"):
        assert r.classify(row["text"], {"language": row["language"]})[0] == "code"
        if row["language"] == "python" and len(row["text"]) > 2000:
            assert r.classify(row["text"], {})[0] == "code", row["id"]
    news = [row for row in _rows("prose.jsonl") if row["id"].startswith("news")]
    assert all(r.classify(row["text"], {})[0] == "prose" for row in news)
    assert code_score("def f(x):\n    return x + 1\n") == 1.0 and math_score("<<2*3=6>>6\n#### 6") >= 0.9
    assert DomainRules(source_domains={"gsm8k": "math"}).classify("hello", {"source": "gsm8k"}) == ("math", "source", 1.0)


def test_domain_tag_with_a_real_fasttext_classifier(tmp_path):
    samples = [(r["text"], "math") for r in _rows("gsm8k.jsonl")[:150]]
    samples += [(line, "code") for r in _rows("python.jsonl") for line in r["text"].split("\n\n") if line.strip()][:300]
    samples += [(r["text"], "prose") for r in _rows("prose.jsonl")] * 5
    model = train_domain_classifier(samples, str(tmp_path / "domain.bin"))
    st = DomainTag(DomainTagConfig(classifier=model, rules=False, classifier_threshold=0.5))
    docs = [
        Document(text=_rows("gsm8k.jsonl")[190]["text"], id="m", metadata={}),
        Document(text=_rows("python.jsonl")[3]["text"], id="c", metadata={}),
        Document(text=_rows("prose.jsonl")[2]["text"], id="p", metadata={}),
    ]
    out = list(st.run(iter(docs)))
    assert [d.metadata["domain"] for d in out] == ["math", "code", "prose"]
    assert all(d.metadata["domain_by"] == "classifier" for d in out)
    src = load_yaml_text(
        f"name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: domain_tag\n    classifier: {tmp_path}/none.bin\n",
        file="r.yaml",
    )
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "stages[1].classifier: model file not found" in str(e.value)


def _tagged(n, domain):
    return [Document(text=f"text {i}", id=f"{domain}{i}", metadata={"domain": domain, "record_index": i}) for i in range(n)]


def test_upsample_weights_repeat_and_determinism():
    st = DomainUpsample(DomainUpsampleConfig(weights={"math": 2.5, "prose": 0.5}, seed=3))
    docs = _tagged(400, "math") + _tagged(400, "prose") + _tagged(10, "code")
    out = list(st.run(iter(docs)))
    kept = [d for d in out if rejection(d) is None]
    math_n = sum(d.metadata["domain"] == "math" for d in kept)
    prose_n = sum(d.metadata["domain"] == "prose" for d in kept)
    assert 900 < math_n < 1100 and 150 < prose_n < 250  # 2.5x and 0.5x on average
    assert sum(d.metadata["domain"] == "code" for d in kept) == 10  # default weight 1
    assert {rejection(d)[1] for d in out if rejection(d)} == {"downsampled"}
    again = list(DomainUpsample(DomainUpsampleConfig(weights={"math": 2.5, "prose": 0.5}, seed=3)).run(iter(_tagged(400, "math") + _tagged(400, "prose") + _tagged(10, "code"))))
    assert [d.id for d in out] == [d.id for d in again]
    st = DomainUpsample(DomainUpsampleConfig(repeat={"math": 3}))
    out = list(st.run(iter(_tagged(5, "math"))))
    assert len(out) == 15 and out[1].id == "math0#up-domain_upsample-1" and out[1].metadata["augmented_from"] == "math0"
    d = st.describe()
    assert d["mode"] == "repeat" and d["applied"]["math"]["expected_copies"] == 3.0


def test_upsample_config_errors():
    src = load_yaml_text(
        "name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: domain_tag\n"
        "  - stage: domain_upsample\n    weights: {math: 2}\n    repeat: {math: 2}\n",
        file="r.yaml",
    )
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "give exactly one of weights" in str(e.value)
    src = load_yaml_text("name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n  - stage: domain_upsample\n    weights: {math: 2}\n", file="r.yaml")
    with pytest.raises(ConfigError) as e:
        build_spec(src)
    assert "domain_upsample needs column(s) domain from an earlier stage (add domain_tag before it)" in str(e.value)
