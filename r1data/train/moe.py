"""Mixture-of-Experts feed-forward: router, routed experts (grouped GEMM or a loop), shared experts.

Data flow for ``T`` tokens, ``E`` experts, ``k`` experts per token (no token is ever dropped, so every
shape is static and the layer compiles without graph breaks on the grouped path)::

    x (T, D) --router--> expert ids (T, k), gate weights (T, k)
             --sort the T*k (token, expert) pairs by expert--> x_sorted (T*k, D), tokens_per_expert (E,)
             --experts: one grouped GEMM per projection--> y_sorted (T*k, D)
             --unsort, weight by gates, sum over k--> y (T, D)   (+ shared experts(x))

Balancing (``MoEConfig``): an aux-loss-free per-expert bias (DeepSeek-V3) that only affects which
experts are chosen, updated after each optimizer step by ``update_expert_bias``; optionally the
Switch load-balancing loss and the router z-loss, returned as differentiable scalars.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from r1data.train.config import MoEConfig


def grouped_mm_available(device: torch.device) -> bool:
    """``torch._grouped_mm`` runs natively on CUDA SM90+ (and as ATen's reference loop on CPU)."""
    if not hasattr(torch, "_grouped_mm"):
        return False
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 9
    return device.type == "cpu"


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    # torch._grouped_mm is not on autocast's cast lists, so cast explicitly to what autocast would use.
    if x.is_cuda and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return x.dtype


class _PermuteRows(torch.autograd.Function):
    """``x[perm]`` whose gradient is the inverse gather ``g[inv]``: no scatter-add, no atomics, deterministic."""

    @staticmethod
    def forward(ctx, x, perm, inv):
        ctx.save_for_backward(inv)
        return x[perm]

    @staticmethod
    def backward(ctx, g):
        (inv,) = ctx.saved_tensors
        return g[inv], None, None


class _ScatterRows(torch.autograd.Function):
    """Rows of ``x`` (M, D) placed at rows ``dest`` (distinct) of a zero (n, D) buffer; gradient ``g[dest]``."""

    @staticmethod
    def forward(ctx, x, dest, n):
        ctx.save_for_backward(dest)
        out = x.new_zeros(n, x.shape[-1])
        out[dest] = x
        return out

    @staticmethod
    def backward(ctx, g):
        (dest,) = ctx.saved_tensors
        return g[dest], None, None


class _GatherRows(torch.autograd.Function):
    """``y[dest]`` (rows ``dest`` distinct); the gradient scatters back into zeros, no atomics."""

    @staticmethod
    def forward(ctx, y, dest):
        ctx.save_for_backward(dest)
        ctx.n = y.shape[0]
        return y[dest]

    @staticmethod
    def backward(ctx, g):
        (dest,) = ctx.saved_tensors
        out = g.new_zeros(ctx.n, g.shape[-1])
        out[dest] = g
        return out, None


def pad_groups(tokens_per_expert: torch.Tensor, rows: int, align: int):
    """Where each of ``rows`` expert-sorted rows goes when every group is padded to a multiple of ``align``.

    Returns ``dest`` (rows,) int64, distinct rows of the padded buffer; ``offs`` (E,) int32, the end row
    of each padded group (what grouped GEMMs take); ``m_pad``, the buffer's static size
    ``ceil(rows / align) * align + align * E``: the last group is stretched to ``m_pad`` so no size
    depends on the routing.
    """
    ends = torch.cumsum(tokens_per_expert, 0)
    padded = (tokens_per_expert + (align - 1)) // align * align
    pad_ends = torch.cumsum(padded, 0)
    m_pad = -(-rows // align) * align + align * tokens_per_expert.numel()
    row = torch.arange(rows, device=tokens_per_expert.device)
    expert = torch.searchsorted(ends, row, right=True)  # the expert of each sorted row
    dest = row + (pad_ends - padded - (ends - tokens_per_expert))[expert]
    offs = torch.cat([pad_ends[:-1], pad_ends.new_full((1,), m_pad)]).to(torch.int32)
    return dest, offs, m_pad


class _GatherPairs(torch.autograd.Function):
    """Rows of ``x`` (T, D) for the T*k (token, expert) pairs in expert order: ``x[order // k]``.

    The gradient sums each token's k rows after an inverse gather (instead of an index_add with atomics).
    """

    @staticmethod
    def forward(ctx, x, order, inverse, k):
        ctx.save_for_backward(inverse)
        ctx.k = k
        return x[order // k]

    @staticmethod
    def backward(ctx, g):
        (inverse,) = ctx.saved_tensors
        return g[inverse].view(-1, ctx.k, g.shape[-1]).sum(dim=1), None, None, None


class RoutedExperts(nn.Module):
    """``E`` SwiGLU experts stored as stacked weights: ``w13`` (E, 2H, D) holds gate and up, ``w2`` (E, D, H)."""

    ALIGN = 16  # rows per group the FP8 grouped GEMM needs

    def __init__(self, num_experts: int, dim: int, hidden: int):
        super().__init__()
        self.num_experts, self.dim, self.hidden = num_experts, dim, hidden
        self.w13 = nn.Parameter(torch.empty(num_experts, 2 * hidden, dim))
        self.w2 = nn.Parameter(torch.empty(num_experts, dim, hidden))
        self.fp8 = False  # set by r1data.train.fp8.convert_to_fp8 (train.precision: fp8)

    def forward(self, x_sorted: torch.Tensor, tokens_per_expert: torch.Tensor, impl: str) -> torch.Tensor:
        """``x_sorted`` (M, D), rows grouped by expert in order; ``tokens_per_expert`` (E,) sums to M."""
        if impl == "grouped":
            if self.fp8:
                return self.forward_grouped_fp8(x_sorted, tokens_per_expert)
            return self.forward_grouped(x_sorted, tokens_per_expert)
        return self.forward_loop(x_sorted, tokens_per_expert)

    def forward_grouped(self, x: torch.Tensor, tokens_per_expert: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(x)
        x = x.to(dtype)
        w13, w2 = self.w13.to(dtype), self.w2.to(dtype)
        offs = torch.cumsum(tokens_per_expert, 0, dtype=torch.int32)  # end row of each expert's group
        h = torch._grouped_mm(x, w13.transpose(-2, -1), offs=offs)  # (M, 2H)
        gate, up = h.chunk(2, dim=-1)
        return torch._grouped_mm(F.silu(gate) * up, w2.transpose(-2, -1), offs=offs)  # (M, D)

    def forward_grouped_fp8(self, x: torch.Tensor, tokens_per_expert: torch.Tensor) -> torch.Tensor:
        """The grouped path with both GEMMs in FP8 (torchao's rowwise-scaled grouped GEMM, CUDA SM89+).

        That kernel needs each group to be a multiple of ``ALIGN`` rows, so the sorted rows are
        scattered into a zero-padded buffer of a static size (``ceil(M / 16) * 16 + 16 * E`` rows; the
        last group absorbs the slack, so no shape depends on the routing and nothing syncs with the
        host). Padding rows are zeros in and are never read out, so they change no output or gradient.
        """
        from torchao.prototype.moe_training import _to_fp8_rowwise_then_scaled_grouped_mm as fp8_grouped_mm

        dest, offs, m_pad = pad_groups(tokens_per_expert, x.shape[0], self.ALIGN)
        xp = _ScatterRows.apply(x.to(torch.bfloat16), dest, m_pad)
        w13, w2 = self.w13.to(torch.bfloat16), self.w2.to(torch.bfloat16)
        h = fp8_grouped_mm(xp, w13.transpose(-2, -1), offs, out_dtype=torch.bfloat16,
                           pad_token_groups_for_grouped_mm=False)  # (m_pad, 2H)
        gate, up = h.chunk(2, dim=-1)
        y = fp8_grouped_mm(F.silu(gate) * up, w2.transpose(-2, -1), offs, out_dtype=torch.bfloat16,
                           pad_token_groups_for_grouped_mm=False)  # (m_pad, D)
        return _GatherRows.apply(y, dest)

    def forward_loop(self, x: torch.Tensor, tokens_per_expert: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(x)
        x = x.to(dtype)
        w13, w2 = self.w13.to(dtype), self.w2.to(dtype)
        outs, start = [], 0
        for e, n in enumerate(tokens_per_expert.tolist()):  # one host sync; fine off the GPU
            xe = x[start:start + n]
            gate, up = F.linear(xe, w13[e]).chunk(2, dim=-1)
            outs.append(F.linear(F.silu(gate) * up, w2[e]))
            start += n
        return torch.cat(outs, dim=0)


class SwiGLU(nn.Module):
    """A dense SwiGLU feed-forward: ``w2(silu(x W1) * x W3)`` with W1 and W3 fused into ``w13``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)


class Router(nn.Module):
    """Scores every expert for every token and picks the top ``k``.

    The selection uses ``scores + expert_bias``; the gate weights use the scores alone, so the bias
    steers load without distorting the output (aux-loss-free balancing). Routing runs in float32.
    """

    def __init__(self, dim: int, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg
        self.gate = nn.Linear(dim, cfg.num_experts, bias=False)
        # Persistent so checkpoints carry it; not a Parameter: the optimizer never touches it.
        self.register_buffer("expert_bias", torch.zeros(cfg.num_experts, dtype=torch.float32))

    def forward(self, x: torch.Tensor):
        """x (T, D) -> expert ids (T, k) int64, gate weights (T, k) fp32, logits (T, E) fp32, scores (T, E)."""
        with torch.autocast(x.device.type, enabled=False):  # float32 routing: bf16 logits flip top-k choices
            logits = F.linear(x.float(), self.gate.weight.float())
        scores = torch.softmax(logits, dim=-1) if self.cfg.score_func == "softmax" else torch.sigmoid(logits)
        choice = scores + self.expert_bias if self.cfg.bias_update_rate > 0 else scores
        _, expert_ids = torch.topk(choice, self.cfg.top_k, dim=-1, sorted=False)
        weights = scores.gather(-1, expert_ids)
        if self.cfg.route_norm:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return expert_ids, weights * self.cfg.route_scale, logits, scores


class MoE(nn.Module):
    """The MoE feed-forward layer. ``forward`` returns ``(y, stats)``; ``stats`` holds
    ``tokens_per_expert`` (E,) and the weighted ``aux_loss`` and ``z_loss`` (0-dim tensors)."""

    def __init__(self, dim: int, hidden: int, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg
        self.router = Router(dim, cfg)
        self.experts = RoutedExperts(cfg.num_experts, dim, hidden)
        self.shared = SwiGLU(dim, hidden * cfg.num_shared_experts) if cfg.num_shared_experts else None
        self.impl = "loop"  # set by the model once the device is known (``set_expert_impl``)

    def forward(self, x: torch.Tensor):
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # (T, D)
        T, k, E = x.shape[0], self.cfg.top_k, self.cfg.num_experts
        expert_ids, weights, logits, scores = self.router(x)

        flat = expert_ids.reshape(-1)  # (T*k,): pair i belongs to token i // k
        tokens_per_expert = torch.zeros(E, dtype=torch.int64, device=x.device).scatter_add_(
            0, flat, torch.ones_like(flat))
        order = torch.argsort(flat, stable=True)  # pairs grouped by expert, token order kept inside a group
        inverse = torch.empty_like(order).scatter_(0, order, torch.arange(order.numel(), device=order.device))
        # Gather in the compute dtype (half the bytes of the float32 residual stream).
        x_sorted = _GatherPairs.apply(x.to(_compute_dtype(x)), order, inverse, k)  # (T*k, D)
        y_sorted = self.experts(x_sorted, tokens_per_expert, self.impl)
        y = _PermuteRows.apply(y_sorted, inverse, order).view(T, k, -1)  # back to (token, choice) order
        y = (y * weights.to(y.dtype).unsqueeze(-1)).sum(dim=1)  # (T, D); one fused kernel when compiled
        if self.shared is not None:
            y = y + self.shared(x)

        zero = logits.new_zeros(())
        aux = zero
        if self.cfg.aux_loss_coef > 0:
            # Switch loss E * sum_i f_i * P_i: f_i the fraction of routed pairs, P_i the mean (normalised) score.
            frac = tokens_per_expert.float() / (T * k)
            probs = scores / scores.sum(dim=-1, keepdim=True)
            aux = self.cfg.aux_loss_coef * E * torch.sum(frac * probs.mean(dim=0))
        z = self.cfg.z_loss_coef * torch.logsumexp(logits, dim=-1).square().mean() if self.cfg.z_loss_coef > 0 else zero
        return y.reshape(shape), {"tokens_per_expert": tokens_per_expert, "aux_loss": aux, "z_loss": z}


@torch.no_grad()
def update_expert_bias(router: Router, tokens_per_expert: torch.Tensor) -> None:
    """One aux-loss-free balancing step: raise the bias of under-loaded experts by ``rate``, lower the
    over-loaded ones, and centre the update so the biases keep a zero mean (DeepSeek-V3, Wang et al. 2024).

    ``tokens_per_expert`` must be the step's counts summed over micro-batches and ranks, so every rank
    applies the same update.
    """
    rate = router.cfg.bias_update_rate
    if rate <= 0:
        return
    load = tokens_per_expert.float()
    delta = rate * torch.sign(load.mean() - load)
    router.expert_bias.add_(delta - delta.mean())


def load_stats(tokens_per_expert: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per layer: coefficient of variation of expert load (std/mean) and max violation (max/mean - 1).

    ``tokens_per_expert`` is (layers, E). Both are 0 for perfectly even load.
    """
    load = tokens_per_expert.double()
    mean = load.mean(dim=-1).clamp_min(1e-12)
    cv = load.std(dim=-1, unbiased=False) / mean
    max_vio = load.max(dim=-1).values / mean - 1
    return cv.tolist(), max_vio.tolist()
