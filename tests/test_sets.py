"""``--set KEY=VALUE`` reads the same way in ``run``, ``train`` and ``repro`` (one parser: r1data/dotted.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1data.config.spec import Overrides, apply_overrides
from r1data.errors import ConfigError
from r1data.repro.spec import load_repro
from r1data.train.config import load_train_config
from r1data.yamlsrc import load_yaml_file

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "pipelines" / "web.yaml"
REPRO = REPO / "pipelines" / "repro.yaml"
TRAIN = REPO / "pipelines" / "train-moe-tiny.yaml"


def _run(sets):
    return apply_overrides(load_yaml_file(WEB), Overrides(sets=sets)).data


def test_values_read_alike_in_run_train_and_repro():
    # YAML values; text that is not valid YAML stays text; an empty value is ""
    assert _run(["output.row_group_rows=[1"])["output"]["row_group_rows"] == "[1"
    assert _run(["output.compression="])["output"]["compression"] == ""
    assert _run([" output . row_group_rows =7"])["output"]["row_group_rows"] == 7
    with pytest.raises(ConfigError) as e:
        load_train_config(str(TRAIN), sets=["train.steps=[1"])
    assert "train.steps" in str(e.value) and "'[1'" in str(e.value)
    assert load_train_config(str(TRAIN), sets=[" train . steps =70"]).train.steps == 70
    spec, _, _ = load_repro(REPRO, None, [" mix . holdout =0.25"])
    assert spec.mix.holdout == 0.25


def test_repro_set_with_text_that_is_not_yaml_is_a_config_error():
    # before: yaml's ScannerError escaped as a traceback
    with pytest.raises(ConfigError) as e:
        load_repro(REPRO, None, ["mix.holdout=[0.1"])
    assert "mix.holdout" in str(e.value)


@pytest.mark.parametrize("load", [
    lambda sets: _run(sets),
    lambda sets: load_train_config(str(TRAIN), sets=sets),
    lambda sets: load_repro(REPRO, None, sets),
], ids=["run", "train", "repro"])
def test_every_malformed_item_is_reported_at_once(load):
    with pytest.raises(ConfigError) as e:
        load(["no-equals-sign", "=1"])
    text = str(e.value)
    assert "--set no-equals-sign: expected KEY=VALUE" in text and "--set =1: expected KEY=VALUE" in text


def test_unknown_keys_get_the_same_hint():
    with pytest.raises(ConfigError, match="did you mean output"):
        _run(["outptu.path=x"])
    with pytest.raises(ConfigError, match="did you mean train"):
        load_train_config(str(TRAIN), sets=["trian.steps=3"])
    with pytest.raises(ConfigError, match="did you mean mix"):
        load_repro(REPRO, None, ["mixx.holdout=0.1"])
