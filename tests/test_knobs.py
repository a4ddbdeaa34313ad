"""Each command-line knob is declared once (r1data/config/knobs.py); everything else derives from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from r1data.config.knobs import KNOBS, validate_knobs
from r1data.config.spec import Overrides
from r1data.errors import ConfigError
from r1data.repro.spec import SourceSpec
from r1data.stages.base import Stage, StageConfig, check_stage_class
from r1data.stages.registry import all_stages

REPO = Path(__file__).resolve().parent.parent


def test_cli_options_come_from_the_declaration(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    for command in ("run", "validate"):
        out = " ".join(cli(command, "--help").output.split())
        for k in KNOBS.values():
            assert k.flag in out and k.help in out, (command, k.name)


def test_every_knob_is_used_by_a_stage_and_every_stage_knob_is_declared():
    used = {k for cls in all_stages().values() for k in cls.knobs}
    assert used == set(KNOBS)


def test_a_stage_naming_an_undeclared_knob_is_refused_at_registration():
    class C(StageConfig):
        size: int = 1

    class Bad(Stage):
        """A stage with a knob nobody declared."""

        name = "bad_knob_stage"
        Config = C
        knobs = {"max_size": "size"}

    with pytest.raises(TypeError, match="unknown knob max_size"):
        check_stage_class(Bad)


def test_overrides_take_knobs_by_name_or_as_a_dict():
    assert Overrides(dedup_window=3).knobs == {"dedup_window": 3}
    assert Overrides(knobs={"filter_threshold": 0.5}).knobs == {"filter_threshold": 0.5}
    with pytest.raises(TypeError, match="max_size"):
        Overrides(max_size=3)


@pytest.mark.parametrize("name", sorted(KNOBS))
def test_ranges_are_checked_alike_on_the_command_line_and_in_repro_sources(name):
    k = KNOBS[name]
    bad = (k.maximum + 1) if k.maximum is not None else (k.minimum - 1)
    with pytest.raises(ConfigError, match=k.flag):
        validate_knobs({name: bad})
    with pytest.raises(ValidationError):
        SourceSpec.model_validate({"recipe": "x.yaml", "raw_stages": ["x"], name: bad})
    good = k.minimum if k.minimum is not None else k.maximum
    assert getattr(SourceSpec.model_validate({"recipe": "x.yaml", "raw_stages": ["x"], name: good}), name) == good
    assert validate_knobs({name: good})[name] == good
