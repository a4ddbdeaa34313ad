"""Helpers shared by the trainer's tests: a tokenizer and token shards made from tests/data/train-tiny."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_TINY = ROOT / "tests" / "data" / "train-tiny"

TINY_CONFIG = """\
name: {name}
out_dir: {out_dir}
model:
  dim: 64
  n_layers: 2
  n_heads: 4
  ffn_hidden: 64
  moe: {{num_experts: 4, top_k: 2, num_shared_experts: 1}}
data: {{path: {tokens}, seq_len: 64, batch_size: 8, eval_fraction: 0.1}}
optim: {{lr: 3.0e-3, warmup_steps: 5}}
train: {{steps: {steps}, eval_every: 10, eval_batches: 2, checkpoint_every: 10, log_every: 1, threads: 1}}
"""


def make_tokens(root: Path) -> Path:
    """Train a 512-token BPE on train-tiny and encode it into small row groups; returns the tokens folder."""
    from r1data.tokenize.bpe import train_bpe
    from r1data.tokenize.encode import encode_shards

    train_bpe([str(TRAIN_TINY)], 512, root / "tok")
    encode_shards(root / "tok" / "tokenizer.json", [str(TRAIN_TINY)], root / "tokens", row_group_tokens=8192)
    return root / "tokens"


def write_config(path: Path, tokens: Path, out_dir: Path, steps: int = 30, name: str = "test-tiny") -> Path:
    path.write_text(TINY_CONFIG.format(name=name, out_dir=out_dir, tokens=tokens, steps=steps))
    return path


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


PYTHON = sys.executable
