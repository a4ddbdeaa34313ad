"""GSM8K augmentation: chain recomputation on known problems, type preservation, the verifier's reasons."""

from __future__ import annotations

import gzip
import json
import random
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1data.augment.math import (
    MalformedProblem,
    analyze,
    apply_changes,
    evaluate,
    format_number,
    generate,
    parse_number,
    verify,
)

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    """``shared/data`` beside the checkout (CI) or beside a parent folder (worktrees)."""
    for d in Path(__file__).resolve().parents[1:4]:
        if (d.parent / "shared" / "data").is_dir():
            return d.parent / "shared" / "data"
    return None

SAMPLE = ROOT / "data" / "sample" / "augment" / "gsm8k.jsonl"

NATALIA_Q = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
NATALIA_A = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
WENG_Q = "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?"
WENG_A = "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"
BETTY_Q = (
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. Her parents "
    "decided to give her $15 for that purpose, and her grandparents twice as much as her parents. How much more money "
    "does Betty need to buy the wallet?"
)
BETTY_A = (
    "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\nBetty's grandparents gave her 15 * 2 = $<<15*2=30>>30.\n"
    "This means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.\n#### 5"
)


def test_natalia_chain_is_recomputed_exactly():
    p = analyze(NATALIA_Q, NATALIA_A)
    assert p.augmentable and p.variables == [48]
    c = apply_changes(p, {48: 120})
    assert c.question == NATALIA_Q.replace("48", "120")
    assert c.solution == (
        "Natalia sold 120/2 = <<120/2=60>>60 clips in May.\n"
        "Natalia sold 120+60 = <<120+60=180>>180 clips altogether in April and May.\n#### 180"
    )
    assert verify(p, c.question, c.solution) is None


def test_decimal_chain_and_prose_restatement():
    p = analyze(WENG_Q, WENG_A)
    assert p.variables == [12, 50]
    c = apply_changes(p, {12: 18})
    assert c.solution == "Weng earns 18/60 = $<<18/60=0.3>>0.3 per minute.\nWorking 50 minutes, she earned 0.3 x 50 = $<<0.3*50=15>>15.\n#### 15"
    assert verify(p, c.question, c.solution) is None
    c = apply_changes(p, {50: 45})
    assert "Working 45 minutes" in c.solution and c.solution.endswith("#### 9")
    assert verify(p, c.question, c.solution) is None


def test_whole_stays_whole():
    q = "Tom has 48 apples. He gives half of them to Ann, and Ann doubles hers. How many apples does Ann have?"
    a = "Ann gets 48/2 = <<48/2=24>>24 apples.\nShe doubles them: 24*2 = <<24*2=48>>48.\n#### 48"
    p = analyze(q, a)
    c = apply_changes(p, {48: 121})  # Ann would get 60.5 apples; the final 121 is whole again
    assert verify(p, c.question, c.solution) == "math_intermediate_type_changed"
    c = apply_changes(analyze(NATALIA_Q, NATALIA_A), {48: 121})
    assert verify(analyze(NATALIA_Q, NATALIA_A), c.question, c.solution) == "math_answer_type_changed"


def test_final_answer_type_and_sign():
    p = analyze(WENG_Q, WENG_A)
    c = apply_changes(p, {12: 15, 50: 30})  # $7.50: the whole answer became a decimal
    assert verify(p, c.question, c.solution) == "math_answer_type_changed"
    p = analyze(WENG_Q, WENG_A)
    c = apply_changes(p, {12: 13})  # 13/60 has no finite decimal form
    assert verify(p, c.question, c.solution) in ("math_answer_type_changed", "math_intermediate_type_changed")
    b = analyze(BETTY_Q, BETTY_A)
    assert b.variables == [15, 100] or 15 in b.variables
    c = apply_changes(b, {15: 20})  # Betty would need $-10
    assert verify(b, c.question, c.solution) == "math_answer_type_changed"
    c = apply_changes(b, {15: 10})
    assert c.solution.endswith("#### 20") and verify(b, c.question, c.solution) is None


def test_verifier_catches_broken_variants():
    p = analyze(NATALIA_Q, NATALIA_A)
    good = apply_changes(p, {48: 120})
    assert verify(p, good.question, good.solution.replace("=180>>", "=181>>")) == "math_chain_inconsistent"
    assert verify(p, good.question, good.solution.replace("#### 180", "#### 181")) == "math_chain_inconsistent"
    assert verify(p, good.question, good.solution.replace(">>180 clips", ">>18 clips")) == "math_chain_inconsistent"
    # the question says 120 but the chain still starts from 48
    assert verify(p, good.question, NATALIA_A) in ("math_unsupported_operand", "math_unchanged")
    stale = good.solution.replace("clips in May.", "clips in May, half of 48.")
    assert verify(p, good.question, stale) == "math_stale_number"
    restated = good.solution.replace("Natalia sold 120/2", "Natalia sold 48/2")
    assert verify(p, good.question, restated) == "math_chain_inconsistent"
    assert verify(p, NATALIA_Q, NATALIA_A) == "math_unchanged"


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("", "math_missing_solution"),
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", "math_no_final_answer"),
        ("Natalia sold 48/2 = <<48/2=24>>24.\n#### seventy-two", "math_bad_final_answer"),
        ("Natalia sold 48/2 = <<48/2=25>>25 clips in May.\n#### 25", "math_original_inconsistent"),
        ("Natalia sold 48/2 = <<48/2 24>>24 clips.\n#### 24", "math_bad_annotation"),
        ("Natalia sold <<48/(2=24>>24 clips.\n#### 24", "math_bad_annotation"),
    ],
)
def test_malformed_records(answer, reason):
    with pytest.raises(MalformedProblem) as e:
        analyze(NATALIA_Q, answer)
    assert e.value.reason == reason


def test_non_augmentable_reasons():
    # the solution uses a number it never explains (7 = 3 + 4 computed in the head)
    q = "Sam has 3 red and 4 blue marbles. He buys 5 bags of marbles with the same number in each as he has now. How many marbles does he buy?"
    a = "Sam buys 7*5 = <<7*5=35>>35 marbles.\n#### 35"
    assert analyze(q, a).skip == "unexplained_operand"
    assert analyze(q, "He buys 35 marbles.\n#### 35").skip == "no_steps"


def test_years_and_repeated_numbers_are_frozen():
    q = "In 2019, Ann had 5 apples and 5 pears. She bought 12 more apples. How many apples did she have?"
    a = "Ann had 5+12 = <<5+12=17>>17 apples.\n#### 17"
    p = analyze(q, a)
    frozen = {q.text: q.frozen for q in p.qnumbers}
    assert frozen["2019"] == "year" and frozen["5"] == "repeated"
    assert p.variables == [12]


def test_number_words_are_rewritten_as_words():
    q = "Jeremy listened to five fewer songs yesterday than today. Yesterday, he listened to nine songs. How many songs did Jeremy listen to in two days?"
    a = "Jeremy listened to 9 + 5 = <<9+5=14>>14 songs today.\nThus, he listened to 9 + 14 = <<9+14=23>>23 songs in two days.\n#### 23"
    p = analyze(q, a)
    c = apply_changes(p, {9: 11})
    assert "listened to eleven songs" in c.question and "five fewer" in c.question
    assert c.solution.endswith("#### 27") and verify(p, c.question, c.solution) is None


def _sample(n: int):
    with open(SAMPLE, encoding="utf-8") as f:
        return [json.loads(line) for line in f][:n]


def test_every_generated_variant_of_the_sample_passes_the_verifier():
    made = 0
    for i, r in enumerate(_sample(120)):
        p = analyze(r["text"], r["answer"])
        if not p.augmentable:
            continue
        for n in range(2):
            c = generate(p, random.Random(f"{i}/{n}"))
            if isinstance(c, str):
                continue
            assert verify(p, c.question, c.solution) is None, (r["id"], c.changes)
            # re-derive the chain from the variant alone: every annotation computes
            v = analyze(c.question, c.solution)
            assert all(s.exact == s.result.value for s in v.steps)
            made += 1
    assert made >= 120  # about two thirds of the problems yield variants


def test_generation_is_deterministic():
    p = analyze(WENG_Q, WENG_A)
    a = generate(p, random.Random("seed"))
    b = generate(p, random.Random("seed"))
    assert a.question == b.question and a.solution == b.solution


def test_shared_gsm8k_train_known_problems():
    if shared_data() is None:
        pytest.skip("../shared/data not present (CI places shared/ beside the clone)")
    path = shared_data() / "math" / "gsm8k" / "train.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(3)]
    assert rows[0]["question"] == NATALIA_Q and rows[0]["answer"] == NATALIA_A
    assert analyze(rows[2]["question"], rows[2]["answer"]).variables == analyze(BETTY_Q, BETTY_A).variables


_num = st.fractions(min_value=-1000, max_value=1000, max_denominator=1000).filter(lambda v: (v.denominator & (v.denominator - 1)) == 0 or v.denominator % 5 == 0)


@settings(max_examples=150, deadline=None)
@given(_num)
def test_format_parse_round_trip(v):
    try:
        text = format_number(v)
    except ValueError:
        return  # no finite decimal form (e.g. 1/15)
    assert parse_number(text) == v


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=2, max_size=6), st.lists(st.sampled_from("+-*/"), min_size=5, max_size=5))
def test_evaluate_matches_exact_arithmetic(nums, ops):
    expr = str(nums[0])
    expected = Fraction(nums[0])
    terms = [Fraction(nums[0])]
    for n, op in zip(nums[1:], ops):
        expr += f"{op}{n}"
    # reference: Python's own parser on Fractions
    ref = eval(" ".join(f"Fraction({t})" if t.isdigit() else t for t in _split(expr)))  # noqa: S307 - digits and operators only
    assert evaluate(expr) == ref
    del expected, terms


def _split(expr: str) -> list[str]:
    out, cur = [], ""
    for ch in expr:
        if ch.isdigit():
            cur += ch
        else:
            out += [cur, ch]
            cur = ""
    return out + [cur]


def test_stage_text_layout_and_examples_validate():
    from datatrove.data import Document

    from r1data.config.spec import build_spec
    from r1data.yamlsrc import load_yaml_text
    from r1data.stages.augment import MathAugment, MathAugmentConfig
    from r1data.stages.base import rejection
    from r1data.stages.registry import all_stages

    st = MathAugment(MathAugmentConfig(answer_field=None, separator="\n\n", variants=2, candidates=4))
    docs = [
        Document(text=WENG_Q + "\n\n" + WENG_A, id="w", metadata={}),
        Document(text="Just prose, no problem here.", id="p", metadata={}),
        Document(text=WENG_Q + "\n\nShe earns 12/60 = <<12/60=0.3>>0.3.\n#### 0.3", id="bad", metadata={}),
    ]
    out = list(st.run(iter(docs)))
    variants = [d for d in out if d.metadata.get("augmented_from") == "w"]
    assert len(variants) == 2 and all(rejection(v) is None for v in variants)
    for v in variants:
        q, _, sol = v.text.partition("\n\n")
        assert verify(analyze(WENG_Q, WENG_A), q, sol) is None
    assert docs[1].metadata["augment"]["math_augment"] == {"status": "skipped", "reason": "not_gsm8k"}
    assert rejection(docs[2]) == ("math_augment", "math_original_inconsistent")
    # every augmentation stage's documented example is a valid recipe entry
    for name in ("math_augment", "code_augment", "backtranslate", "eda", "domain_tag", "domain_upsample", "math_normalize", "text_template"):
        example = all_stages()[name].example
        body = "".join("  " + line + "\n" for line in example.splitlines())
        tagger = "" if name == "domain_tag" else "  - stage: domain_tag\n"
        src = load_yaml_text(f"name: t\ninputs: [x.jsonl]\nstages:\n  - stage: jsonl_reader\n    source: t\n{tagger}{body}", file="e.yaml")
        build_spec(src)
