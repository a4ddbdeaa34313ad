"""Training configs: bad values fail before any work, with one line naming file, line and key."""

from __future__ import annotations

import pytest
import torch

from r1data.errors import ConfigError
from r1data.train.config import ModelConfig, MoEConfig, load_train_config
from r1data.train.model import Transformer, count_params
from tests.trainutil import ROOT, write_config

BASE = """\
name: t
model:
  dim: 64
  n_heads: 4
  moe:
    num_experts: 4
    top_k: 2
train:
  steps: 10
optim:
  warmup_steps: 2
"""


def problems(text: str, sets=()) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_train_config(text=text, sets=list(sets))
    return e.value.problems


def test_valid_config_and_float_written_as_yaml11_string():
    cfg = load_train_config(text=BASE + "  lr: 3e-4\n")  # YAML 1.1 reads 3e-4 as a string; it is accepted
    assert cfg.optim.lr == 3e-4 and cfg.model.moe.top_k == 2 and cfg.model.dim == 64


def test_top_k_above_num_experts():
    (p,) = problems(BASE.replace("top_k: 2", "top_k: 6"))
    assert p == "<config>:7 model.moe.top_k: must be between 1 and num_experts (4), got 6"


def test_dim_not_divisible_by_heads():
    (p,) = problems(BASE.replace("dim: 64", "dim: 66"))
    assert p == "<config>:3 model.dim: dim (66) must be divisible by n_heads (4)"


def test_unknown_key_suggests_and_wrong_type_names_the_type():
    ps = problems(BASE.replace("num_experts: 4", "num_expert: 4").replace("steps: 10", "steps: many"))
    assert any(p.startswith("<config>:6 model.moe.num_expert: unknown key; did you mean num_experts?") for p in ps)
    assert "<config>:9 train.steps: expected an integer, got 'many'" in ps


def test_set_override_is_named_in_the_message():
    (p,) = problems(BASE, ["model.moe.top_k=9"])
    assert p == "--set model.moe.top_k=9: model.moe.top_k: must be between 1 and num_experts (4), got 9"
    (p,) = problems(BASE, ["optim.warmup_steps=50"])
    assert p == "--set optim.warmup_steps=50: optim.warmup_steps: must be <= train.steps (10), got 50"
    (p,) = problems(BASE, ["model.moe.score_func=relu"])
    assert p == "--set model.moe.score_func=relu: model.moe.score_func: expected 'softmax' | 'sigmoid', got 'relu'"


def test_other_cross_field_checks():
    assert "n_kv_heads" in problems(BASE, ["model.n_kv_heads=3"])[0]
    assert "global_batch_size" in problems(BASE, ["data.batch_size=8", "data.global_batch_size=12"])[0]
    assert "route_norm" in problems(BASE, ["model.moe.score_func=softmax", "model.moe.top_k=1"])[0]


def test_dense_baseline_matches_active_parameters():
    moe = ModelConfig(dim=64, n_layers=2, n_heads=4, ffn_hidden=32, moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1))
    dense = ModelConfig(dim=64, n_layers=2, n_heads=4, ffn_hidden=32, ffn="dense", moe=moe.moe)
    assert dense.dense_hidden == 3 * 32
    with torch.device("meta"):
        a, b = count_params(Transformer(moe, 256, 16)), count_params(Transformer(dense, 256, 16))
    router = 2 * 64 * 8  # the only parameters the dense model has no counterpart for
    assert a["active"] - router == b["active"] == b["total"]
    assert a["total"] > a["active"]


def test_cli_rejects_bad_config_before_any_work(cli, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "no-tokens", tmp_path / "run")
    r = cli("train", cfg, "--set", "model.moe.top_k=5")
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: --set model.moe.top_k=5: model.moe.top_k: must be between 1 and num_experts (4), got 5"
    r = cli("train", cfg)  # valid config, missing data
    assert r.exit_code == 2 and r.stderr.strip() == f"error: data.path: {tmp_path / 'no-tokens'}: no such folder or file"
    assert not (tmp_path / "run").exists()


def test_cli_points_from_text_shards_to_tokenize(cli, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", ROOT / "tests" / "data" / "train-tiny", tmp_path / "run")
    r = cli("train", "run", cfg)
    assert r.exit_code == 2 and "r1data tokenize encode" in r.stderr
