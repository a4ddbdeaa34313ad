"""MoE layer: the grouped-GEMM path, the loop path and an independent dense reference agree in outputs
and gradients; routing and aux-loss-free balancing behave as specified.

On CPU, torch 2.13's ``torch._grouped_mm`` runs ATen's reference implementation (a loop of mm over
groups, in C++), so this test shows the sort/unsort/weighting logic and autograd of both paths are
right; the CUDA kernel itself is checked against the loop on the GPU by bench/train_gpu.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from r1data.train.config import MoEConfig
from r1data.train.moe import MoE, load_stats, update_expert_bias

pytestmark = pytest.mark.usefixtures("one_thread")


def dense_reference(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, combined with a (T, E) gate matrix: no sorting, no grouping."""
    x2 = x.reshape(-1, x.shape[-1])
    ids, weights, _, _ = moe.router(x2)
    gates = torch.zeros(x2.shape[0], moe.cfg.num_experts, dtype=x2.dtype).scatter_add(1, ids, weights.to(x2.dtype))
    h = torch.einsum("td,ehd->teh", x2, moe.experts.w13)  # (T, E, 2H)
    gate, up = h.chunk(2, dim=-1)
    y_all = torch.einsum("teh,edh->ted", F.silu(gate) * up, moe.experts.w2)  # (T, E, D)
    y = torch.einsum("ted,te->td", y_all, gates)
    if moe.shared is not None:
        y = y + moe.shared(x2)
    return y.reshape(x.shape)


def _grads(moe: MoE, x: torch.Tensor, impl: str | None, upstream: torch.Tensor):
    moe.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    if impl is None:
        y = dense_reference(moe, x)
    else:
        moe.impl = impl
        y, _ = moe(x)
    y.backward(upstream)
    named = {n: p.grad.clone() for n, p in moe.named_parameters()}
    return y.detach(), x.grad, named


@pytest.mark.parametrize("score_func,shared,route_norm", [("sigmoid", 1, True), ("softmax", 0, False), ("softmax", 2, True)])
def test_grouped_loop_and_dense_reference_agree(score_func, shared, route_norm):
    torch.manual_seed(0)
    cfg = MoEConfig(num_experts=6, top_k=2, num_shared_experts=shared, score_func=score_func, route_norm=route_norm)
    # float32: torch._grouped_mm takes no float64. Tolerances are float32 rounding (relative error ~1e-6).
    moe = MoE(dim=32, hidden=24, cfg=cfg)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.2)
    # An expert that no token picks: its group is empty and its weights must get zero gradient.
    moe.router.expert_bias[5] = -10.0
    moe.router.cfg.bias_update_rate = 1e-3  # bias used for selection
    x = torch.randn(3, 17, 32, dtype=torch.float32)
    upstream = torch.randn(3, 17, 32, dtype=torch.float32)

    y_ref, gx_ref, g_ref = _grads(moe, x, None, upstream)
    for impl in ("loop", "grouped"):
        y, gx, g = _grads(moe, x, impl, upstream)
        torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5, msg=f"{impl} output")
        torch.testing.assert_close(gx, gx_ref, rtol=1e-4, atol=1e-5, msg=f"{impl} input grad")
        for name in g_ref:
            torch.testing.assert_close(g[name], g_ref[name], rtol=1e-4, atol=1e-5, msg=f"{impl} grad of {name}")
    assert torch.all(g["experts.w13"][5] == 0) and torch.all(g["experts.w2"][5] == 0)
    assert g["router.gate.weight"].abs().sum() > 0  # the router learns through the gate weights


def test_grouped_and_loop_agree_in_float32_on_a_realistic_shape():
    torch.manual_seed(1)
    moe = MoE(dim=64, hidden=128, cfg=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1))
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(4, 64, 64)
    up = torch.randn(4, 64, 64)
    outs = {impl: _grads(moe, x, impl, up) for impl in ("loop", "grouped")}
    y_l, gx_l, g_l = outs["loop"]
    y_g, gx_g, g_g = outs["grouped"]
    torch.testing.assert_close(y_g, y_l, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_g, gx_l, rtol=1e-5, atol=1e-6)
    for name in g_l:
        torch.testing.assert_close(g_g[name], g_l[name], rtol=1e-5, atol=1e-6)


def test_bias_steers_selection_but_not_gate_weights():
    torch.manual_seed(2)
    cfg = MoEConfig(num_experts=4, top_k=1, score_func="sigmoid", route_norm=False)
    moe = MoE(dim=8, hidden=8, cfg=cfg)
    x = torch.randn(50, 8)
    moe.router.expert_bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0]))  # expert 2 wins every choice
    ids, weights, _, scores = moe.router(x)
    assert torch.all(ids == 2)
    torch.testing.assert_close(weights[:, 0], scores[:, 2])  # the weight is the raw score, without the bias


def test_bias_update_is_signed_and_centred():
    cfg = MoEConfig(num_experts=4, top_k=2, bias_update_rate=1e-3)
    moe = MoE(dim=8, hidden=8, cfg=cfg)
    update_expert_bias(moe.router, torch.tensor([10, 30, 20, 20]))
    b = moe.router.expert_bias
    assert b[0] > 0 and b[1] < 0 and abs(float(b.sum())) < 1e-9  # under-loaded up, over-loaded down, mean 0
    torch.testing.assert_close(b, torch.tensor([1e-3, -1e-3, 0.0, 0.0]))
    moe.cfg.bias_update_rate = 0.0
    update_expert_bias(moe.router, torch.tensor([0, 100, 0, 0]))
    torch.testing.assert_close(b, torch.tensor([1e-3, -1e-3, 0.0, 0.0]))  # off: unchanged


def test_aux_free_balancing_evens_out_a_skewed_router():
    """A router that sends most tokens to two experts becomes balanced by the bias updates alone (no gradients)."""
    torch.manual_seed(3)
    moe = MoE(dim=16, hidden=8, cfg=MoEConfig(num_experts=8, top_k=2, bias_update_rate=0.01))
    with torch.no_grad():
        moe.router.gate.weight[:2] += 0.1  # with inputs of mean 1, experts 0 and 1 win most tokens
    cvs = []
    for _ in range(200):
        _, st = moe(torch.randn(256, 16) + 1.0)
        cvs.append(load_stats(st["tokens_per_expert"][None])[0][0])
        update_expert_bias(moe.router, st["tokens_per_expert"])
    late = sum(cvs[-50:]) / 50
    # Multinomial noise alone gives a CV of about 0.12 for 512 picks over 8 experts.
    assert cvs[0] > 0.9 and late < 0.25, (cvs[0], late)


def test_load_stats():
    cv, vio = load_stats(torch.tensor([[10, 10, 10, 10], [40, 0, 0, 0]]))
    assert cv[0] == 0 and vio[0] == 0
    assert vio[1] == pytest.approx(3.0) and cv[1] == pytest.approx(3 ** 0.5)


def test_aux_and_z_losses():
    torch.manual_seed(4)
    moe = MoE(dim=8, hidden=8, cfg=MoEConfig(num_experts=4, top_k=2, aux_loss_coef=0.01, z_loss_coef=0.001,
                                             score_func="softmax"))
    x = torch.randn(64, 8)
    _, st = moe(x)
    # Switch loss is coef * E * sum f_i P_i >= coef (equality at perfect balance); z-loss is positive.
    assert float(st["aux_loss"].detach()) >= 0.01 - 1e-6
    assert float(st["z_loss"].detach()) > 0
    st["aux_loss"].backward()
    assert moe.router.gate.weight.grad.abs().sum() > 0
