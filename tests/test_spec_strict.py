"""Strict recipe values: a quoted number or boolean is a type error with its file and line, never
silently converted; what YAML naturally writes (an integer for a float, lists for tuples, mappings
for nested options) is still accepted."""

from __future__ import annotations

import pytest

from r1data.config.spec import Overrides
from tests.conftest import r1data_cmd
from tests.test_spec import GOOD, problems, spec_of


def test_numeric_string_is_refused_with_its_line():
    text = GOOD.replace("min_doc_words: 10", 'min_doc_words: "50"')
    assert problems(text) == [
        "recipe.yaml:10 stages[4].min_doc_words: input should be a valid integer (got the text '50': write a whole number without quotes, e.g. 50)"
    ]


def test_numeric_string_from_set_is_refused():
    ov = Overrides(sets=['stages.gopher_quality.min_doc_words="50"', "stages.gopher_quality.max_symbol_word_ratio=1e-1"])
    assert sorted(problems(GOOD, ov)) == [
        "--set stages.gopher_quality.max_symbol_word_ratio=1e-1: stages[4].max_symbol_word_ratio: input should be a valid number "
        "(got the text '1e-1': write a number without quotes, e.g. 0.1; YAML reads an exponent without a dot as text)",
        "--set stages.gopher_quality.min_doc_words=\"50\": stages[4].min_doc_words: input should be a valid integer "
        "(got the text '50': write a whole number without quotes, e.g. 50)",
    ]


@pytest.mark.parametrize(
    "line,where",
    [
        ("    min_doc_words: 50.0", "stages[4].min_doc_words: input should be a valid integer"),  # no silent truncation either
        ('    max_symbol_word_ratio: "0.1"', "stages[4].max_symbol_word_ratio: input should be a valid number (got the text '0.1'"),
        ('    languages: [en]\n    min_score: "0.5"', "min_score: input should be a valid number"),
    ],
)
def test_other_type_errors(line, where):
    text = GOOD.replace("    min_doc_words: 10", line) if "min_doc" in line or "symbol" in line else GOOD.replace("    languages: [en]", line)
    (p,) = problems(text)
    assert p.startswith("recipe.yaml:") and where in p


def test_booleans_and_output_options_are_strict_too():
    text = GOOD.replace("  - stage: gopher_quality", '  - stage: c4_quality\n    filter_curly_bracket: "false"\n  - stage: gopher_quality')
    text = text.replace("output: {path: /tmp/r1-spec-test}", 'output: {path: /tmp/r1-spec-test, row_group_rows: "100"}')
    assert problems(text) == [
        "recipe.yaml:13 output.row_group_rows: input should be a valid integer (got the text '100': write a whole number without quotes, e.g. 100)",
        "recipe.yaml:10 stages[4].filter_curly_bracket: input should be a valid boolean (got the text 'false': write true or false without quotes)",
    ]


def test_what_yaml_writes_is_still_accepted():
    text = GOOD.replace("    min_doc_words: 10", "    min_doc_words: 10\n    max_symbol_word_ratio: 1")  # an int for a float
    text = text.replace(
        "  - stage: gopher_quality",
        "  - stage: gopher_repetition\n    dup_n_grams: [[5, 0.25], [6, 0.2]]\n  - stage: gopher_quality",  # lists for tuples
    )
    spec = spec_of(text, Overrides(sets=["stages.gopher_quality.max_non_alpha_words_ratio=1", "stages.gopher_quality.min_doc_words=20"]))
    cfg = {s.label: s.config for s in spec.stages}
    assert cfg["gopher_quality"].max_symbol_word_ratio == 1.0 and isinstance(cfg["gopher_quality"].max_symbol_word_ratio, float)
    assert cfg["gopher_quality"].min_doc_words == 20 and cfg["gopher_quality"].max_non_alpha_words_ratio == 1.0
    assert list(cfg["gopher_repetition"].dup_n_grams) == [(5, 0.25), (6, 0.2)]


def test_nested_options_mapping_is_accepted():
    text = """\
    name: t
    inputs: [tests/data/web-tiny]
    stages:
      - stage: warc_reader
      - stage: backtranslate
        backend: apertium
        apertium: {pair: eng-spa, reverse: spa-eng, timeout: 60}
    """
    try:
        spec = spec_of(text)
    except Exception as e:  # apertium may be missing here: only a type error would be a failure of this test
        assert "input should be" not in str(e), e
        return
    assert spec.stages[1].config.apertium.timeout == 60.0


def test_validate_command_exit_2_one_line(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text(GOOD.replace("min_doc_words: 10", 'min_doc_words: "50"'))
    res = r1data_cmd("validate", bad)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {bad}:10 stages[4].min_doc_words: input should be a valid integer (got the text '50': write a whole number without quotes, e.g. 50)"
    ]
