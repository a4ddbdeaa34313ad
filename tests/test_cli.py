"""The CLI through typer's CliRunner: stages, validate, errors; every stage's YAML example is valid."""

from __future__ import annotations


import pytest
import yaml

from r1data.config.spec import build_spec
from r1data.yamlsrc import load_yaml_text
from r1data.stages.base import ReaderStage
from r1data.stages.registry import all_stages


def test_stages_lists_every_registered_stage(cli):
    res = cli("stages")
    assert res.exit_code == 0
    for name, cls in all_stages().items():
        assert f"{name}@{cls.version}" in res.output


def test_stage_detail_shows_parameters_and_example(cli):
    res = cli("stages", "gopher_quality")
    assert res.exit_code == 0
    for needle in ("min_doc_words", "int | None", "50", "example", "- stage: gopher_quality"):
        assert needle in res.output


def test_unknown_stage_detail(cli):
    res = cli("stages", "gopher_qualty")
    assert res.exit_code == 2 and "did you mean gopher_quality?" in res.output


def test_validate_ok(cli):
    res = cli("validate", "pipelines/web.yaml")
    assert res.exit_code == 0 and "pipelines/web.yaml: ok" in res.output


def test_validate_reports_all_problems(cli, tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("name: r\ninputs: [tests/data/web-tiny]\nstages:\n  - stage: warc_reader\n  - stage: gopher_quality\n    min_doc_word: 3\n    max_doc_words: lots\n")
    res = cli("validate", bad)
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert lines == [
        f"error: {bad}:6 stages[1].min_doc_word: unknown parameter; did you mean min_doc_words?",
        f"error: {bad}:7 stages[1].max_doc_words: input should be a valid integer (got 'lots')",
    ]


def test_knob_rejected_when_unused(cli, tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text("name: r\ninputs: [tests/data/web-tiny]\nstages:\n  - stage: warc_reader\n")
    res = cli("validate", r, "--dedup-window", "5")
    assert res.exit_code == 2 and "--dedup-window 5:" in res.output and "has no stage that uses it" in res.output


def test_version(cli):
    res = cli("--version")
    assert res.exit_code == 0 and res.output.startswith("r1data ")


@pytest.mark.parametrize("name", sorted(all_stages()))
def test_every_stage_example_validates(name):
    cls = all_stages()[name]
    example = yaml.safe_load(cls.example)
    assert isinstance(example, list) and example[0]["stage"] == name, f"{name}: example must be a one-stage YAML list"
    registry = all_stages()
    makers = [sorted(n for n, c in registry.items() if col in c.columns)[0] for col in cls.needs]
    before = [{"stage": "warc_reader"}] + [{"stage": m} for m in dict.fromkeys(makers)]
    stages = example if issubclass(cls, ReaderStage) else before + example
    recipe = {"name": "ex", "inputs": ["tests/data/web-tiny"], "stages": stages}
    spec = build_spec(load_yaml_text(yaml.safe_dump(recipe), file=f"{name}-example.yaml"), {})
    assert spec.stages[-1].stage == name
    assert (cls.__doc__ or "").strip().count("\n") == 0, f"{name}: the class docstring is one line"
