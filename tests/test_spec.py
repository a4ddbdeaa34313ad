"""Recipe validation: every problem found before any work, with file, line and YAML path."""

from __future__ import annotations

import textwrap

import pytest

from r1data.config.knobs import validate_knobs
from r1data.config.spec import Overrides, apply_overrides, build_spec
from r1data.yamlsrc import load_yaml_text
from r1data.errors import ConfigError

GOOD = """\
name: t
inputs: [tests/data/web-tiny]
stages:
  - stage: warc_reader
  - stage: html_extract
  - stage: language_id
  - stage: language_filter
    languages: [en]
  - stage: gopher_quality
    min_doc_words: 10
output: {path: /tmp/r1-spec-test}
"""


def spec_of(text: str, ov: Overrides | None = None, knobs=None):
    src = load_yaml_text(textwrap.dedent(text), file="recipe.yaml")
    if ov is not None:
        src = apply_overrides(src, ov)
    return build_spec(src, knobs or {})


def problems(text: str, ov: Overrides | None = None, knobs=None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        spec_of(text, ov, knobs)
    return e.value.problems


def test_good_recipe_validates():
    spec = spec_of(GOOD)
    assert [s.stage for s in spec.stages] == ["warc_reader", "html_extract", "language_id", "language_filter", "gopher_quality"]
    assert spec.stages[4].config.min_doc_words == 10
    assert spec.stage_columns() == {"lang": "string", "lang_score": "float32"}
    assert len(spec.config_hash()) == 64


def test_unknown_parameter_names_line_path_and_suggestion():
    text = GOOD.replace("min_doc_words: 10", "min_doc_word: 10")
    assert problems(text) == ["recipe.yaml:10 stages[4].min_doc_word: unknown parameter; did you mean min_doc_words?"]


def test_unknown_stage_with_suggestion():
    text = GOOD.replace("stage: gopher_quality", "stage: gopher_qualty")
    (p,) = problems(text)
    assert p.startswith("recipe.yaml:9 stages[4].stage: unknown stage 'gopher_qualty'; did you mean gopher_quality?")


def test_wrong_type_is_reported_with_value():
    text = GOOD.replace("min_doc_words: 10", "min_doc_words: many")
    (p,) = problems(text)
    assert p.startswith("recipe.yaml:10 stages[4].min_doc_words: ") and "'many'" in p


def test_all_problems_reported_at_once():
    text = GOOD.replace("min_doc_words: 10", "min_doc_word: 10").replace("languages: [en]", "languages: []")
    ps = problems(text)
    assert len(ps) == 2
    assert any("stages[3].languages" in p for p in ps)


def test_invalid_yaml_one_line_with_line_number():
    with pytest.raises(ConfigError) as e:
        load_yaml_text("name: x\nstages:\n  - stage: [unclosed\n", file="bad.yaml")
    (p,) = e.value.problems
    assert p.startswith("bad.yaml:") and "invalid YAML" in p and "\n" not in p


def test_duplicate_key_is_an_error():
    with pytest.raises(ConfigError) as e:
        load_yaml_text("name: a\nname: b\n", file="dup.yaml")
    assert e.value.problems == ["dup.yaml:2 name: duplicate key (first defined on line 1)"]


def test_first_stage_must_be_a_reader():
    text = GOOD.replace("  - stage: warc_reader\n", "")
    assert any("the first stage must be a reader" in p for p in problems(text))


def test_needs_columns_from_an_earlier_stage():
    text = GOOD.replace("  - stage: language_id\n", "")
    (p,) = problems(text)
    assert "language_filter needs column(s) lang, lang_score" in p and "add language_id" in p


def test_unknown_top_level_key():
    (p,) = problems(GOOD + "outputs: {}\n")
    assert p == "recipe.yaml:12 outputs: unknown key; did you mean output?"


def test_set_override_applies_and_errors_name_the_flag():
    spec = spec_of(GOOD, Overrides(sets=["stages.gopher_quality.min_doc_words=77"]))
    assert spec.stages[4].config.min_doc_words == 77
    (p,) = problems(GOOD, Overrides(sets=["stages.gopher_quality.min_doc_word=5"]))
    assert p == "--set stages.gopher_quality.min_doc_word=5: stages[4].min_doc_word: unknown parameter; did you mean min_doc_words?"
    (p,) = problems(GOOD, Overrides(sets=["stages.gopher_qualiti.min_doc_words=5"]))
    assert "no stage named 'gopher_qualiti'; did you mean gopher_quality?" in p


def test_set_parses_yaml_values():
    spec = spec_of(GOOD, Overrides(sets=["stages.language_filter.languages=[en, de]", "executor.tasks=3"]))
    assert spec.stages[3].config.languages == ["en", "de"]
    assert spec.executor.tasks == 3


def test_knob_without_a_consuming_stage_is_rejected():
    (p,) = problems(GOOD, knobs={"filter_threshold": 0.7})
    assert p.startswith("--filter-threshold 0.7: recipe.yaml has no stage that uses it")
    (p,) = problems(GOOD, knobs={"dedup_window": 10})
    assert p.startswith("--dedup-window 10: recipe.yaml has no stage that uses it; stages that use it:")


def test_knob_sets_the_consuming_stage():
    text = GOOD.replace("output:", "  - stage: exact_dedup\noutput:")
    spec = spec_of(text, knobs={"dedup_window": 7})
    assert spec.stages[-1].config.window == 7
    assert spec.knob_targets == {"dedup_window": ["exact_dedup"]}
    assert spec.resolved()["knobs"] == {"dedup_window": 7}


@pytest.mark.parametrize("t,w,msg", [(1.5, None, "between 0 and 1"), (None, -1, ">= 0")])
def test_knob_ranges(t, w, msg):
    with pytest.raises(ConfigError) as e:
        validate_knobs({"filter_threshold": t, "dedup_window": w})
    assert msg in str(e.value)


def test_policy_defaults_and_pins(tmp_path):
    (tmp_path / "filters").mkdir()
    (tmp_path / "pipelines").mkdir()
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    import hashlib

    sha = hashlib.sha256(b"x").hexdigest()
    (tmp_path / "filters" / "p-v1.yaml").write_text(
        f"name: p-v1\nmodels:\n  m: {{path: ../m.bin, sha256: {sha}}}\nstages:\n  gopher_quality: {{min_doc_words: 5, min_stop_words: 1}}\n"
    )
    recipe = tmp_path / "pipelines" / "r.yaml"
    recipe.write_text(GOOD.replace("name: t\n", "name: t\npolicy: p-v1\n"))
    from r1data.yamlsrc import load_yaml_file

    spec = build_spec(load_yaml_file(recipe), {})
    gq = spec.stages[4].config
    assert gq.min_doc_words == 10  # the recipe's own value wins
    assert gq.min_stop_words == 1  # the policy's default applies
    assert spec.resolved()["policies"][0]["name"] == "p-v1"
    from r1data.config.spec import load_policy, resolve_pins

    pol = load_policy("p-v1", recipe.parent)
    params = {"model": "pin:m"}
    assert resolve_pins(params, [pol]) == [] and params["model"] == str(model)
    model.write_bytes(b"changed")
    assert "does not match its sha256 pin" in resolve_pins({"model": "pin:m"}, [pol])[0][1]
    recipe.write_text(GOOD.replace("name: t\n", "name: t\npolicy: p-v2\n"))
    with pytest.raises(ConfigError) as e:
        build_spec(load_yaml_file(recipe), {})
    assert "no policy 'p-v2'" in e.value.problems[0] and "did you mean p-v1?" in e.value.problems[0]


def test_missing_model_fails_validation():
    text = GOOD.replace("  - stage: language_id\n", "  - stage: language_id\n    model: /nonexistent/lid.bin\n")
    (p,) = problems(text)
    assert p == "recipe.yaml:7 stages[2].model: model file not found: /nonexistent/lid.bin"


def test_pinned_stage_version():
    (p,) = problems(GOOD.replace("stage: gopher_quality", "stage: gopher_quality@9"))
    assert "gopher_quality@9 is pinned but this r1data has gopher_quality@1" in p
    assert spec_of(GOOD.replace("stage: gopher_quality", "stage: gopher_quality@1")).stages[4].stage == "gopher_quality"


def test_executor_type_comes_from_the_registry():
    """executor.type accepts what r1data.run.executors knows, including an executor a plugin registered."""
    from r1data.run import executors

    typo = problems(GOOD + "executor: {type: slrum}\n")
    assert typo == ["recipe.yaml:12 executor.type: unknown executor 'slrum'; did you mean slurm?"]
    other = problems(GOOD + "executor: {type: k8s}\n")
    assert other == ["recipe.yaml:12 executor.type: unknown executor 'k8s'; known: local, ray, slurm"]

    @executors.register("k8s")
    def run_k8s(plan, **kw):  # a plugin's executor: registering is all it takes to be valid
        raise NotImplementedError

    try:
        assert spec_of(GOOD + "executor: {type: k8s}\n").executor.type == "k8s"
        assert executors.get("k8s") is run_k8s
    finally:
        executors._RUNNERS.pop("k8s")
