"""train.precision: fp8 — config checks, the one-line refusal off a capable GPU, which layers torchao
converts, and the zero-padding of expert groups that the FP8 grouped GEMM needs.

The FP8 matmuls themselves need an SM89+ GPU; ``bench/train_gpu.py --only fp8`` checks and times them there.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from r1data.errors import ConfigError
from r1data.train.config import ModelConfig, MoEConfig, load_train_config
from r1data.train.loop import train
from r1data.train.model import Transformer
from r1data.train.moe import RoutedExperts, pad_groups
from tests.test_train_config import BASE, problems
from tests.trainutil import make_tokens, write_config

HAS_TORCHAO = importlib.util.find_spec("torchao") is not None


def test_precision_config_values():
    cfg = load_train_config(text=BASE, sets=["train.precision=fp8", "train.fp8_recipe=rowwise"])
    assert cfg.train.precision == "fp8" and cfg.train.fp8_recipe == "rowwise"
    assert load_train_config(text=BASE).train.precision == "bf16"
    (p,) = problems(BASE, ["train.precision=fp16"])
    assert p == "--set train.precision=fp16: train.precision: expected 'bf16' | 'fp8', got 'fp16'"
    (p,) = problems(BASE, ["train.fp8_recipe=blockwise"])
    assert "train.fp8_recipe: expected 'tensorwise' | 'rowwise'" in p
    (p,) = problems(BASE, ["train.precision=fp8", "train.dtype=fp32"])
    assert p.endswith("train.precision: fp8 runs inside bf16 autocast; set train.dtype to auto or bf16 (got fp32)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_fp8_on_cpu_is_one_clear_line(tmp_path, cli, one_thread):
    tokens = make_tokens(tmp_path)
    cfg_path = write_config(tmp_path / "c.yaml", tokens, tmp_path / "run", steps=5)
    cfg = load_train_config(str(cfg_path), ["train.precision=fp8"])
    with pytest.raises(ConfigError) as e:
        train(cfg, log=lambda m: None)
    assert str(e.value) == ("train.precision: fp8 needs an NVIDIA GPU of compute capability 8.9 or newer "
                            "(Ada, Hopper); this run is on cpu; use train.precision: bf16")
    assert not (tmp_path / "run").exists()  # refused before anything was written
    r = cli("train", cfg_path, "--set", "train.precision=fp8")
    assert r.exit_code != 0
    assert r.output.strip().splitlines() == [f"error: {e.value}"]


def _model(ffn: str, hidden: int = 64) -> Transformer:
    cfg = ModelConfig(dim=64, n_layers=2, n_heads=4, ffn=ffn, ffn_hidden=hidden, dense_ffn_hidden=hidden,
                      moe=MoEConfig(num_experts=4, top_k=2, num_shared_experts=1))
    return Transformer(cfg, 512, 32)


@pytest.mark.skipif(not HAS_TORCHAO, reason="torchao is not installed (pip install torchao)")
def test_module_filter_converts_block_linears_only(one_thread):
    from torchao.float8.float8_linear import Float8Linear

    from r1data.train.fp8 import convert_to_fp8

    model = _model("moe")
    done = convert_to_fp8(model, "tensorwise", emulate=True)
    per_layer = ["attn.wqkv", "attn.wo", "ffn.shared.w13", "ffn.shared.w2"]
    assert sorted(done["linear"]) == sorted(f"layers.{i}.{n}" for i in range(2) for n in per_layer)
    assert done["experts"] == ["layers.0.ffn.experts", "layers.1.ffn.experts"]
    kinds = {n: type(m) for n, m in model.named_modules()}
    assert all(kinds[n] is Float8Linear for n in done["linear"])
    # Router, output head and embedding stay as they were.
    assert kinds["layers.0.ffn.router.gate"] is torch.nn.Linear and kinds["output"] is torch.nn.Linear
    assert kinds["tok_embeddings"] is torch.nn.Embedding
    assert all(m.fp8 for m in model.modules() if isinstance(m, RoutedExperts))

    # train.fp8_experts: false (the default): the same linears, the routed experts stay bf16.
    plain = _model("moe")
    done = convert_to_fp8(plain, "tensorwise", emulate=True, experts=False)
    assert sorted(done["linear"]) == sorted(f"layers.{i}.{n}" for i in range(2) for n in per_layer)
    assert done["experts"] == [] and not any(m.fp8 for m in plain.modules() if isinstance(m, RoutedExperts))

    # A side that is not a multiple of 16 keeps the layer (and the experts) in bf16.
    odd = _model("moe", hidden=40)  # w2: 40 -> 64; w13: 64 -> 80
    done = convert_to_fp8(odd, "rowwise", emulate=True)
    assert sorted(done["linear"]) == sorted(f"layers.{i}.{n}" for i in range(2) for n in ("attn.wqkv", "attn.wo",
                                                                                          "ffn.shared.w13"))
    assert done["experts"] == []


@pytest.mark.skipif(not HAS_TORCHAO, reason="torchao is not installed (pip install torchao)")
def test_converted_dense_model_trains_in_emulation(one_thread):
    """torchao's emulated FP8 (casts to e4m3 and back, on the CPU): same loss as the plain model to FP8
    rounding, gradients reach the master weights, checkpoint keys are unchanged."""
    from r1data.train.fp8 import convert_to_fp8

    torch.manual_seed(0)
    ref = _model("dense")
    fp8 = _model("dense")
    fp8.load_state_dict(ref.state_dict())
    convert_to_fp8(fp8, "tensorwise", emulate=True)
    assert list(fp8.state_dict()) == list(ref.state_dict())
    x = torch.randint(0, 512, (2, 32))
    y = torch.randint(0, 512, (2, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        l_ref, _ = ref(x, y)
        l_fp8, _ = fp8(x, y)
    assert float(l_fp8.detach()) == pytest.approx(float(l_ref), rel=2e-2)
    assert float(l_fp8.detach()) != float(l_ref)  # the quantisation did happen
    l_fp8.backward()
    g = fp8.layers[0].attn.wqkv.weight.grad
    assert g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() and g.abs().sum() > 0


def test_pad_groups_puts_each_expert_in_an_aligned_group(one_thread):
    """The padded layout the FP8 grouped GEMM runs on gives the same products as the unpadded one."""
    counts = torch.tensor([5, 0, 16, 17, 1])
    M, D, H = int(counts.sum()), 32, 48
    dest, offs, m_pad = pad_groups(counts, M, 16)
    assert m_pad == 48 + 16 * 5 and int(offs[-1]) == m_pad
    assert all(int(o) % 16 == 0 for o in offs)
    assert len(set(dest.tolist())) == M and int(dest.max()) < m_pad
    starts = torch.cat([torch.zeros(1, dtype=torch.int32), offs[:-1]])
    experts = torch.repeat_interleave(torch.arange(5), counts)
    assert all(int(starts[e]) <= int(r) < int(offs[e]) for r, e in zip(dest, experts))

    torch.manual_seed(0)
    x = torch.randn(M, D)
    w = torch.randn(5, H, D)
    plain = torch.cat([x[s:s + n] @ w[e].T for e, (s, n) in
                       enumerate(zip((torch.cumsum(counts, 0) - counts).tolist(), counts.tolist()))])
    xp = torch.zeros(m_pad, D)
    xp[dest] = x
    padded = torch.cat([xp[int(a):int(b)] @ w[e].T for e, (a, b) in enumerate(zip(starts, offs))])
    torch.testing.assert_close(padded[dest], plain)
    assert padded[torch.ones(m_pad, dtype=torch.bool).index_fill_(0, dest, False)].abs().sum() == 0
