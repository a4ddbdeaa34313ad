"""A decoder-only transformer: token embedding, ``n_layers`` blocks (RMSNorm -> attention with RoPE,
RMSNorm -> SwiGLU or MoE), a final RMSNorm and an output projection.

``Transformer.forward(tokens, targets)`` returns ``(loss, stats)`` when targets are given (``stats``
carries the MoE load counts and auxiliary losses) and the logits otherwise. Shapes: tokens (B, S)
-> hidden (B, S, D) -> logits (B, S, V).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from r1data.train.config import ModelConfig
from r1data.train.moe import MoE, RoutedExperts, Router, SwiGLU, grouped_mm_available


def rope_tables(head_dim: int, seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (seq_len, head_dim/2) in float32."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (first half, second half) of each head's features; x (B, S, H, Dh)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class Attention(nn.Module):
    """Causal self-attention with grouped-query heads, RoPE and PyTorch's fused SDPA kernels."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, (self.n_heads + 2 * self.n_kv) * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_heads * self.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, S, _ = x.shape
        q, k, v = self.wqkv(x).split(
            [self.n_heads * self.head_dim, self.n_kv * self.head_dim, self.n_kv * self.head_dim], dim=-1)
        q = apply_rope(q.view(B, S, self.n_heads, self.head_dim), cos, sin)
        k = apply_rope(k.view(B, S, self.n_kv, self.head_dim), cos, sin)
        v = v.view(B, S, self.n_kv, self.head_dim)
        if self.n_kv != self.n_heads:  # expand shared kv heads so every SDPA backend (flash too) applies
            rep = self.n_heads // self.n_kv
            k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        if mask is None:
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        elif isinstance(mask, torch.Tensor):  # (B, 1, S, S) boolean, True = may attend (causal and the same document)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
        else:  # a FlexAttention BlockMask (model.doc_mask_kernel: flex)
            from torch.nn.attention.flex_attention import flex_attention

            y = flex_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), block_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(B, S, -1))  # (B, S, D)


class Block(nn.Module):
    """Pre-norm residual block; the feed-forward is dense (``SwiGLU``) or ``MoE``."""

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.is_moe = cfg.is_moe_layer(layer)
        self.ffn = MoE(cfg.dim, cfg.ffn_hidden, cfg.moe) if self.is_moe else SwiGLU(cfg.dim, cfg.dense_hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        if self.is_moe:
            y, stats = self.ffn(self.ffn_norm(x))
            return x + y, stats
        return x + self.ffn(self.ffn_norm(x)), None


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, max_seq_len: int):
        super().__init__()
        self.cfg, self.vocab_size, self.max_seq_len = cfg, vocab_size, max_seq_len
        self.tok_embeddings = nn.Embedding(vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_tables(cfg.head_dim, max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.grad_checkpointing = False
        #: the token that ends a document (the tokenizer's eos) when ``cfg.doc_mask``; set by the caller
        self.doc_sep: int | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Normal(0, init_std) weights; residual output projections scaled by 1/sqrt(2 * n_layers) (GPT-2)."""
        std = self.cfg.init_std
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        nn.init.normal_(self.tok_embeddings.weight, std=std)
        if not self.cfg.tie_embeddings:
            nn.init.normal_(self.output.weight, std=std)
        for block in self.layers:
            nn.init.normal_(block.attn.wqkv.weight, std=std)
            nn.init.normal_(block.attn.wo.weight, std=out_std)
            for m in block.ffn.modules():
                if isinstance(m, SwiGLU):
                    nn.init.normal_(m.w13.weight, std=std)
                    nn.init.normal_(m.w2.weight, std=out_std)
                elif isinstance(m, RoutedExperts):
                    nn.init.normal_(m.w13, std=std)
                    nn.init.normal_(m.w2, std=out_std)
                elif isinstance(m, Router):
                    nn.init.normal_(m.gate.weight, std=std)
                    m.expert_bias.zero_()

    def moe_layers(self) -> list[MoE]:
        return [b.ffn for b in self.layers if b.is_moe]

    def set_expert_impl(self, impl: str, device: torch.device) -> str:
        """Choose the expert kernel: ``grouped`` (torch._grouped_mm), ``loop``, or ``auto`` (grouped on SM90+ CUDA)."""
        if impl == "auto":
            impl = "grouped" if device.type == "cuda" and grouped_mm_available(device) else "loop"
        if impl == "grouped" and not grouped_mm_available(device):
            raise RuntimeError(f"model.moe.impl=grouped: torch._grouped_mm does not run on {device} with torch "
                               f"{torch.__version__}; use impl: loop or auto")
        for moe in self.moe_layers():
            moe.impl = impl
        return impl

    def document_mask(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """The attention mask of packed documents: causal, and within the document (a document ends
        with ``doc_sep``, which belongs to it). A (B, 1, S, S) boolean tensor for SDPA, or a
        FlexAttention ``BlockMask`` with ``cfg.doc_mask_kernel: flex``; None when ``cfg.doc_mask`` is off."""
        if not self.cfg.doc_mask:
            return None
        if self.doc_sep is None:
            raise RuntimeError("model.doc_mask: the document separator (the tokenizer's eos id) is not set")
        sep = (tokens == self.doc_sep).to(torch.int32)
        doc = torch.cumsum(sep, dim=1) - sep  # document number of each position
        B, S = tokens.shape
        if self.cfg.doc_mask_kernel == "flex":  # one block mask per batch, shared by every layer
            from torch.nn.attention.flex_attention import create_block_mask

            def same_doc_causal(b, h, q, kv):
                return (q >= kv) & (doc[b, q] == doc[b, kv])

            return create_block_mask(same_doc_causal, B, None, S, S, device=tokens.device)
        causal = torch.ones(S, S, dtype=torch.bool, device=tokens.device).tril_()
        return ((doc[:, :, None] == doc[:, None, :]) & causal).unsqueeze(1)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None, reduction: str = "mean"):
        S = tokens.shape[1]
        cos, sin = self.rope_cos[:S], self.rope_sin[:S]
        mask = self.document_mask(tokens)
        h = self.tok_embeddings(tokens)  # (B, S, D)
        if h.dtype != cos.dtype:
            # FSDP2 with bf16 parameters: the blocks' forward inputs are cast to bf16 on the way in, but not
            # when activation checkpointing recomputes a block in backward; cast the tables here so both agree
            cos, sin = cos.to(h.dtype), sin.to(h.dtype)
        stats = []
        for block in self.layers:
            if self.grad_checkpointing and self.training:
                h, st = checkpoint(block, h, cos, sin, mask, use_reentrant=False)
            else:
                h, st = block(h, cos, sin, mask)
            if st is not None:
                stats.append(st)
        if targets is None:
            return self.output(self.norm(h))  # logits (B, S, V)
        loss = self._loss(h, targets, reduction)
        out = {"aux_loss": sum((s["aux_loss"] for s in stats), loss.new_zeros(())),
               "z_loss": sum((s["z_loss"] for s in stats), loss.new_zeros(()))}
        if stats:
            out["tokens_per_expert"] = torch.stack([s["tokens_per_expert"] for s in stats])  # (moe layers, E)
        return loss, out


    def _loss(self, h: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
        logits = self.output(self.norm(h))  # (B, S, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction=reduction)

    def compile_for_training(self) -> None:
        """torch.compile each block and the loss head (blocks share one compiled graph; no whole-model unroll)."""
        for block in self.layers:
            block.compile()
        self._loss = torch.compile(self._loss)


def count_params(model: Transformer) -> dict[str, int]:
    """Total and active parameter counts, split the way FLOPs are counted.

    ``active`` counts each MoE layer's routed experts at ``top_k / num_experts`` of their size
    (router and shared experts in full). ``embedding`` is the input embedding alone, which does no
    matrix multiply; the output projection is counted as a normal matrix.
    """
    cfg = model.cfg
    total = sum(p.numel() for p in model.parameters())
    routed = sum(m.experts.w13.numel() + m.experts.w2.numel() for m in model.moe_layers())
    active = total - routed + (routed * cfg.moe.top_k) // cfg.moe.num_experts if routed else total
    embedding = model.tok_embeddings.weight.numel() if not cfg.tie_embeddings else 0
    return {"total": total, "active": active, "embedding": embedding, "routed_experts": routed}


def flops_per_token(model: Transformer, seq_len: int, causal: bool = False) -> float:
    """Training FLOPs per token: 6 * (active non-embedding parameters) for the matrix multiplies forward
    and backward, plus the attention scores and values.

    ``causal=False`` (torchtitan's and PaLM's convention, the ``mfu`` metric): 12 * layers * heads *
    head_dim * seq_len, as if every query attended to every key. ``causal=True`` (the ``mfu_causal``
    metric): half of that, the work a causal kernel actually does (each query sees (S + 1) / 2 keys on
    average; the +1 is ignored)."""
    n = count_params(model)
    cfg = model.cfg
    attn = 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
    return 6 * (n["active"] - n["embedding"]) + (attn // 2 if causal else attn)
