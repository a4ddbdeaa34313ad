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


def test_document_mask_makes_a_packed_document_see_only_itself():
    """With model.doc_mask, a document packed after another gives the same logits as the document
    alone (RoPE is relative, so its position in the window does not matter); without it, it does not.
    The mask is causal within each document; the separator (eos) belongs to the document it ends."""
    torch.manual_seed(0)
    sep = 1
    a = torch.tensor([5, 9, 7, 3, sep])
    b = torch.tensor([8, 4, 6, 2, 11, 12])
    packed = torch.cat([a, b]).unsqueeze(0)
    for masked in (True, False):
        cfg = ModelConfig(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn="dense", ffn_hidden=32, doc_mask=masked)
        torch.manual_seed(0)
        model = Transformer(cfg, 16, 16).eval()
        model.doc_sep = sep
        with torch.no_grad():
            whole = model(packed)[0, len(a):]
            alone = model(b.unsqueeze(0))[0]
            first = model(a.unsqueeze(0))[0]
        if masked:
            torch.testing.assert_close(whole, alone, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(model(packed)[0, : len(a)].detach(), first)  # the first document: unchanged
        else:
            assert not torch.allclose(whole, alone, atol=1e-3)
    cfg = ModelConfig(dim=32, n_layers=1, n_heads=4, ffn="dense", ffn_hidden=32, doc_mask=True)
    m = Transformer(cfg, 16, 16)
    m.doc_sep = sep
    mask = m.document_mask(torch.tensor([[5, sep, 6, 7, sep, 8]]))[0, 0]
    want = torch.tensor([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0],
                         [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(mask, want)
    m.doc_sep = None
    with pytest.raises(RuntimeError, match="document separator"):
        m(torch.tensor([[5, 6]]))


def test_flex_document_mask_gives_the_sdpa_mask_logits():
    """model.doc_mask_kernel: flex (a FlexAttention block mask) computes what the dense SDPA mask does:
    same logits, forward only (torch has no FlexAttention backward on the CPU), over windows whose
    length is not a multiple of the 128-token block, with documents crossing block edges."""
    torch.manual_seed(0)
    sep = 1
    x = torch.randint(2, 64, (2, 300))
    x[0, [7, 130, 131, 250]] = sep
    x[1, [127, 128]] = sep
    out = {}
    for kernel in ("sdpa", "flex"):
        cfg = ModelConfig(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn="dense", ffn_hidden=32, doc_mask=True,
                          doc_mask_kernel=kernel)
        torch.manual_seed(0)
        model = Transformer(cfg, 64, 300).eval()
        model.doc_sep = sep
        with torch.no_grad():
            out[kernel] = model(x)
    torch.testing.assert_close(out["flex"], out["sdpa"], rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match="applies only with model.doc_mask"):
        ModelConfig(doc_mask_kernel="flex")


def test_document_mask_off_is_the_causal_kernel():
    """doc_mask off: no mask is built and the logits are those of is_causal SDPA (bitwise)."""
    torch.manual_seed(0)
    cfg = ModelConfig(dim=32, n_layers=2, n_heads=4, ffn="dense", ffn_hidden=32)
    model = Transformer(cfg, 16, 16).eval()
    x = torch.randint(0, 16, (2, 12))
    assert model.document_mask(x) is None
    with torch.no_grad():
        ref = model(x)
        model.cfg.doc_mask, model.doc_sep = True, 99  # a separator that never occurs: one document per row
        same = model(x)
    torch.testing.assert_close(same, ref, rtol=1e-5, atol=1e-6)
