"""The transformer: RoPE, gradient checkpointing, FLOP counting, and the trainer's import footprint."""

from __future__ import annotations

import subprocess

import pytest
import torch

from r1data.train.config import ModelConfig, MoEConfig
from r1data.train.model import Transformer, apply_rope, count_params, flops_per_token, rope_tables
from tests.trainutil import PYTHON, subprocess_env

pytestmark = pytest.mark.usefixtures("one_thread")


def test_rope_scores_depend_only_on_relative_position():
    cos, sin = rope_tables(16, 64, 10000.0)
    g = torch.Generator().manual_seed(0)  # not the global RNG: other tests before this one move it
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)

    def score(i, j):
        qi = apply_rope(q.expand(1, 64, 1, 16).contiguous(), cos, sin)[0, i, 0]
        kj = apply_rope(k.expand(1, 64, 1, 16).contiguous(), cos, sin)[0, j, 0]
        return float(qi @ kj)

    assert score(10, 3) == pytest.approx(score(40, 33), rel=1e-5)
    assert score(10, 3) != pytest.approx(score(10, 4), rel=1e-3)


def test_gradient_checkpointing_changes_nothing_but_memory():
    torch.manual_seed(0)
    cfg = ModelConfig(dim=32, n_layers=2, n_heads=2, ffn_hidden=32, moe=MoEConfig(num_experts=4, top_k=2))
    model = Transformer(cfg, 64, 16)
    x, y = torch.randint(0, 64, (2, 16)), torch.randint(0, 64, (2, 16))
    results = []
    for ckpt in (False, True):
        model.zero_grad()
        model.grad_checkpointing = ckpt
        loss, st = model(x, y)
        loss.backward()
        results.append((loss.detach(), st["tokens_per_expert"], [p.grad.clone() for p in model.parameters()]))
    (l0, c0, g0), (l1, c1, g1) = results
    assert torch.equal(l0, l1) and torch.equal(c0, c1)  # recomputation does not count expert load twice
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_flops_per_token_matches_the_hand_count():
    cfg = ModelConfig(dim=64, n_layers=2, n_heads=4, ffn_hidden=32, moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1))
    with torch.device("meta"):
        m = Transformer(cfg, 1000, 128)
    attn = 64 * 3 * 64 + 64 * 64
    routed_active = 2 * 3 * 64 * 32  # top-2 of 8 experts, SwiGLU (3 matrices)
    shared, router, norms = 3 * 64 * 32, 64 * 8, 2 * 64
    active_layer = attn + routed_active + shared + router + norms
    n = count_params(m)
    assert n["active"] == 2 * active_layer + 1000 * 64 * 2 + 64
    assert flops_per_token(m, 128) == 6 * (n["active"] - 1000 * 64) + 12 * 2 * 4 * 16 * 128
    # mfu_causal's count: the causal half of the attention scores and values.
    assert flops_per_token(m, 128, causal=True) == 6 * (n["active"] - 1000 * 64) + 6 * 2 * 4 * 16 * 128


def test_trainer_imports_only_torch_numpy_pyarrow_tokenizers_yaml():
    """The GPU image has no datatrove, pydantic, polars or typer: nothing on the trainer's path may import them."""
    code = ("import sys, r1data.train.loop, r1data.train.plot, r1data.train.__main__, r1data.tokenize.encode, "
            "r1data.tokenize.bpe; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'datatrove', 'pydantic', 'polars', 'typer', 'rich', "
            "'click', 'matplotlib', 'smart_open', 'fsspec'}); print(','.join(bad))")
    r = subprocess.run([PYTHON, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""
