"""GPU speed of r1data's trainer: tokens/s and MFU of the real training loop, and the MoE layer's
grouped-GEMM expert compute against a loop over experts.

    PYTHONPATH=. python bench/train_gpu.py                  # everything (one H100: ~6 minutes)
    PYTHONPATH=. python bench/train_gpu.py --only layer     # check + layer timings only
    PYTHONPATH=. python bench/train_gpu.py --smoke          # tiny shapes, runs anywhere (CPU too)

Parts:
  check   grouped_mm vs loop vs a float32 reference on random inputs (outputs and gradients), with
          random, uneven and empty expert groups.
  layer   one MoE layer, forward + backward, bf16: torch._grouped_mm vs the loop, eager; median of
          CUDA-event timings over many repeats. Two shapes: the benchmark model's (8 experts, top-2)
          and a fine-grained one (64 experts, top-8, DeepSeek-style), where a loop hurts most.
  dense   the training loop (r1data.train.loop.train: data loader, bf16 autocast, torch.compile,
          fused AdamW, clipping, metrics) on synthetic token shards, dense model of width 1280.
  moe     the same for a MoE of equal active size: 8 experts (top-2) + 1 shared expert.

MFU is given both ways against 989 TFLOP/s (H100/H200 SXM dense bf16): ``mfu`` counts attention as
torchtitan does (6 x active non-embedding parameters + 12 x layers x heads x head_dim x seq_len FLOPs
per token, full attention), ``mfu_causal`` counts the causal half (6 x ... x seq_len). Numbers and
the machine go to bench/NOTES-train-gpu.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r1data.train.config import DataConfig, LoopConfig, ModelConfig, MoEConfig, OptimConfig, TrainConfig  # noqa: E402
from r1data.train.moe import MoE  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------------
def rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


def check(device: torch.device, smoke: bool) -> dict:
    """grouped vs loop in bf16 (autocast) against the loop in float32, same weights and inputs."""
    torch.manual_seed(0)
    dim, hidden, E, k, T = (64, 96, 8, 2, 300) if smoke else (512, 768, 16, 2, 4099)
    moe = MoE(dim, hidden, MoEConfig(num_experts=E, top_k=k, num_shared_experts=1)).to(device)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.05)
    with torch.no_grad():
        moe.router.expert_bias[: E // 4] = -5.0  # some experts get no tokens: empty groups
        moe.router.expert_bias[E // 4] = 0.3  # one gets many: uneven groups
    x = torch.randn(T, dim, device=device)
    up = torch.randn(T, dim, device=device)
    out = {}
    for impl, bf16 in (("loop", False), ("loop", True), ("grouped", True)):
        if impl == "grouped" and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] < 9:
            continue
        moe.impl = impl
        moe.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(True)
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else torch.autocast(device.type, enabled=False)
        with ctx:
            y, st = moe(xi)
        y.float().backward(up)
        out[(impl, bf16)] = (y.float().detach(), xi.grad.detach(), moe.experts.w13.grad.detach().clone(),
                             moe.experts.w2.grad.detach().clone(), st["tokens_per_expert"].cpu())
    ref = out[("loop", False)]
    res = {"groups": ref[4].tolist()}
    log(f"check: {T} tokens, {E} experts, top-{k}; tokens per expert {ref[4].tolist()}")
    for key, vals in out.items():
        if key == ("loop", False):
            continue
        errs = [rel_err(a, b) for a, b in zip(vals[:4], ref[:4])]
        name = f"{key[0]}-{'bf16' if key[1] else 'fp32'}"
        res[name] = errs
        ok = all(e < 2e-2 for e in errs) and all(math.isfinite(e) for e in errs)
        log(f"  {name:13s} rel. error vs fp32 loop: out {errs[0]:.2e}  dx {errs[1]:.2e}  dW13 {errs[2]:.2e}  "
            f"dW2 {errs[3]:.2e}  {'ok' if ok else 'FAIL'}")
        if not ok:
            raise SystemExit(f"check failed for {name}")
    if ("grouped", True) in out:
        g, l = out[("grouped", True)], out[("loop", True)]
        res["grouped_vs_loop_bf16"] = [rel_err(a, b) for a, b in zip(g[:4], l[:4])]
        log(f"  grouped vs loop, both bf16: {', '.join(f'{e:.2e}' for e in res['grouped_vs_loop_bf16'])}")
    return res


# ---------------------------------------------------------------------------------------------------
def time_cuda(fn, warmup: int, reps: int) -> float:
    """Median milliseconds of ``fn`` over ``reps`` runs, each bracketed by CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def time_cpu(fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def layer(device: torch.device, smoke: bool) -> list[dict]:
    shapes = [("model: 8 experts top-2 + 1 shared", 1280, 1152, 8, 2, 1, 16384),
              ("fine-grained: 64 experts top-8", 1280, 256, 64, 8, 0, 16384)]
    if smoke:
        shapes = [(n, 64, 64, e, k, s, 512) for n, _, _, e, k, s, _ in shapes]
    rows = []
    timer = time_cuda if device.type == "cuda" else time_cpu
    for name, dim, hidden, E, k, shared, T in shapes:
        torch.manual_seed(0)
        moe = MoE(dim, hidden, MoEConfig(num_experts=E, top_k=k, num_shared_experts=shared)).to(device)
        for p in moe.parameters():
            torch.nn.init.normal_(p, std=0.02)
        x = torch.randn(T, dim, device=device, requires_grad=True)
        g = torch.randn(T, dim, device=device, dtype=torch.bfloat16)
        res = {"shape": name, "dim": dim, "hidden": hidden, "experts": E, "top_k": k, "tokens": T}
        for impl in ("loop", "grouped"):
            moe.impl = impl

            def step():
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    y, _ = moe(x)
                y.backward(g)

            res[impl + "_ms"] = timer(step, warmup=3, reps=5 if smoke else 30)
        res["speedup"] = res["loop_ms"] / res["grouped_ms"]
        # The expert computation alone (what differs between the two): the same sorted tokens and group
        # sizes through RoutedExperts.forward_grouped vs forward_loop, forward + backward.
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            ids, _, _, _ = moe.router(x)
        counts = torch.bincount(ids.flatten(), minlength=E)
        xs = torch.randn(T * k, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
        gs = torch.randn(T * k, dim, device=device, dtype=torch.bfloat16)
        for impl in ("loop", "grouped"):
            fn = moe.experts.forward_grouped if impl == "grouped" else moe.experts.forward_loop

            def experts_step():
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    y = fn(xs, counts)
                y.backward(gs)

            res["experts_" + impl + "_ms"] = timer(experts_step, warmup=3, reps=5 if smoke else 30)
        res["experts_speedup"] = res["experts_loop_ms"] / res["experts_grouped_ms"]
        flops = 3 * 2 * T * k * 3 * dim * hidden  # expert GEMMs, forward + backward
        res["grouped_expert_tflops"] = flops / (res["experts_grouped_ms"] * 1e-3) / 1e12
        rows.append(res)
        log(f"layer [{name}] dim {dim}, expert hidden {hidden}, {T} tokens, groups {counts.tolist()[:8]}...: "
            f"whole layer loop {res['loop_ms']:.2f} ms vs grouped {res['grouped_ms']:.2f} ms = {res['speedup']:.2f}x; "
            f"experts only loop {res['experts_loop_ms']:.2f} ms vs grouped {res['experts_grouped_ms']:.2f} ms = "
            f"{res['experts_speedup']:.2f}x (grouped at {res['grouped_expert_tflops']:.0f} TFLOP/s)")
        del moe, x, g, xs, gs
    return rows


def blocks(device: torch.device, smoke: bool, profile: bool) -> list[dict]:
    """One transformer block (attention + FFN), compiled, forward + backward under bf16 autocast: dense vs
    MoE at equal active size, as in the model. Optionally the MoE block's top GPU kernels (torch.profiler)."""
    from r1data.train.model import Block, rope_tables

    cfgs = model_configs(smoke)
    T_seq, B = (64, 2) if smoke else (2048, 8)
    rows = []
    timer = time_cuda if device.type == "cuda" else time_cpu
    for kind in ("dense", "moe"):
        mcfg = cfgs[kind]
        torch.manual_seed(0)
        block = Block(mcfg, 0).to(device)
        if kind == "moe":
            block.ffn.impl = "grouped"
        for p in block.parameters():
            if p.ndim >= 2:
                torch.nn.init.normal_(p, std=0.02)
        cos, sin = (t.to(device) for t in rope_tables(mcfg.head_dim, T_seq, mcfg.rope_theta))
        x = torch.randn(B, T_seq, mcfg.dim, device=device, requires_grad=True)
        g = torch.randn(B, T_seq, mcfg.dim, device=device)
        block.compile()

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16):
                y, _ = block(x, cos, sin)
            y.backward(g)

        ms = timer(step, warmup=3, reps=5 if smoke else 20)
        rows.append({"kind": kind, "ms": ms})
        log(f"block [{kind}] compiled fwd+bwd, {B}x{T_seq} tokens: {ms:.2f} ms")
        if profile and kind == "moe" and device.type == "cuda":
            from torch.profiler import ProfilerActivity
            from torch.profiler import profile as prof

            with prof(activities=[ProfilerActivity.CUDA]) as p:
                for _ in range(3):
                    step()
                torch.cuda.synchronize()
            log(p.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=70))
        del block, x, g
    return rows


def fp8check(device: torch.device, smoke: bool) -> dict:
    """The FP8 expert path against bf16 and a float32 reference: one MoE layer (8 experts top-2 + 1 shared,
    empty and uneven groups), outputs and all gradients; then the experts alone, bf16 vs FP8 grouped GEMMs."""
    from r1data.train.fp8 import check_fp8_supported, convert_to_fp8

    check_fp8_supported(device)
    torch.manual_seed(0)
    dim, hidden, E, k, T = (128, 128, 8, 2, 512) if smoke else (1280, 1152, 8, 2, 16384)
    moe = MoE(dim, hidden, MoEConfig(num_experts=E, top_k=k, num_shared_experts=1)).to(device)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.02)
    with torch.no_grad():
        moe.router.expert_bias[0] = -5.0  # an expert with no tokens
        moe.router.expert_bias[1] = 0.3  # one with many
    x = torch.randn(T, dim, device=device)
    up = torch.randn(T, dim, device=device)
    out = {}
    for name in ("fp32", "bf16", "fp8"):
        if name == "fp8":
            convert_to_fp8(moe, "rowwise")
        moe.impl = "loop" if name == "fp32" else "grouped"
        moe.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(True)
        ctx = torch.autocast("cuda", enabled=False) if name == "fp32" else torch.autocast("cuda", dtype=torch.bfloat16)
        with ctx:
            y, st = moe(xi)
        y.float().backward(up)
        out[name] = (y.float().detach(), xi.grad.detach(), moe.experts.w13.grad.detach().clone(),
                     moe.experts.w2.grad.detach().clone())
    res = {"groups": st["tokens_per_expert"].tolist()}
    log(f"fp8check: {T} tokens, {E} experts top-{k}, groups {res['groups']}")
    for name in ("bf16", "fp8"):
        errs = [rel_err(a, b) for a, b in zip(out[name], out["fp32"])]
        res[name] = errs
        ok = all(math.isfinite(e) and e < (1e-1 if name == "fp8" else 2e-2) for e in errs)
        log(f"  {name} grouped vs fp32 loop, rel. error: out {errs[0]:.2e}  dx {errs[1]:.2e}  dW13 {errs[2]:.2e}  "
            f"dW2 {errs[3]:.2e}  {'ok' if ok else 'FAIL'}")
        if not ok:
            raise SystemExit(f"fp8check failed for {name}")
    # Experts alone, forward + backward, the same sorted tokens: bf16 grouped GEMM vs FP8 (with padding).
    counts = torch.tensor(res["groups"], device=device)
    xs = torch.randn(T * k, dim, device=device, dtype=torch.bfloat16, requires_grad=True)
    gs = torch.randn(T * k, dim, device=device, dtype=torch.bfloat16)
    timer = time_cuda if device.type == "cuda" else time_cpu
    for name, fn in (("bf16", moe.experts.forward_grouped), ("fp8", moe.experts.forward_grouped_fp8)):
        def experts_step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                yy = fn(xs, counts)
            yy.backward(gs)

        res[f"experts_{name}_ms"] = timer(experts_step, warmup=3, reps=5 if smoke else 30)
    flops = 3 * 2 * T * k * 3 * dim * hidden
    log(f"  experts alone fwd+bwd (eager): bf16 {res['experts_bf16_ms']:.2f} ms "
        f"({flops / res['experts_bf16_ms'] / 1e9:.0f} TFLOP/s), fp8 {res['experts_fp8_ms']:.2f} ms "
        f"({flops / res['experts_fp8_ms'] / 1e9:.0f} TFLOP/s)")
    return res


# ---------------------------------------------------------------------------------------------------
def synthetic_tokens(folder: Path, vocab: int, n_tokens: int, seed: int = 0, kind: str = "random", eos: bool = False) -> Path:
    """Synthetic documents (lengths 500..4000) in the token-shard format, with a manifest.

    ``random``: uniform token ids (speed only: the loss can only fall to ln(vocab)). ``markov``: text a
    model can learn, for comparing losses: each document walks a fixed random bigram chain (every token
    has 16 successors with Zipf weights) and then repeats its own first 256 tokens (a quarter for short ones), so the loss falls
    both by learning the chain and by copying from context (induction), over hundreds of steps.
    ``eos``: the last token of each document becomes the end-of-text id 0 (for ``model.doc_mask``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from r1data.tokenize.encode import TOKEN_SCHEMA

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lengths = []
    while sum(lengths) < n_tokens:
        lengths.append(int(rng.integers(500, 4000)))
    if kind == "random":
        values = rng.integers(1, vocab, size=sum(lengths), dtype=np.int32)
    else:
        succ = rng.integers(1, vocab, size=(vocab, 16), dtype=np.int64)
        p = 1.0 / np.arange(1, 17) ** 1.2
        cum = np.cumsum(p / p.sum())
        docs = []
        for n in lengths:
            copy = min(256, n // 4)
            walk = n - copy
            picks = np.minimum(np.searchsorted(cum, rng.random(walk)), 15)
            toks = np.empty(walk, dtype=np.int64)
            t = int(rng.integers(1, vocab))
            for i in range(walk):  # ~ a few M steps of a cheap loop: fine for the few M tokens a run needs
                t = succ[t, picks[i]]
                toks[i] = t
            docs.append(np.concatenate([toks, toks[:copy]]))
        values = np.concatenate(docs).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    if eos:  # each document ends in the end-of-text token (id 0), as the tokenizer writes them
        values[offsets[1:] - 1] = 0
    table = pa.Table.from_arrays([
        pa.array([f"doc{i}" for i in range(len(lengths))]), pa.array([None] * len(lengths), pa.string()),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)), pa.array(lengths, pa.int32()),
        pa.array([4 * n for n in lengths], pa.int64())], schema=TOKEN_SCHEMA)
    pq.write_table(table, folder / "part-00000.parquet", row_group_size=256)
    (folder / "manifest.json").write_text(json.dumps({
        "kind": "r1data.tokens", "tokenizer": {"vocab_size": vocab, "eos_id": 0}, "totals": {"tokens": int(sum(lengths))}}))
    return folder


def model_configs(smoke: bool) -> dict[str, ModelConfig]:
    if smoke:
        return {"dense": ModelConfig(dim=64, n_layers=2, n_heads=2, ffn="dense", ffn_hidden=64,
                                     moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1)),
                "wide": ModelConfig(dim=128, n_layers=2, n_heads=2, ffn="dense", ffn_hidden=64,
                                    moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1)),
                "moe": ModelConfig(dim=64, n_layers=2, n_heads=2, ffn="moe", ffn_hidden=64,
                                   moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1)),
                "xwide": ModelConfig(dim=256, n_layers=2, n_heads=2, ffn="dense", ffn_hidden=64,
                                     dense_ffn_hidden=512, moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1))}
    moe = MoEConfig(num_experts=8, top_k=2, num_shared_experts=1)
    # Width 1280, 20 layers, head_dim 128; dense SwiGLU hidden 3456 = 3 x 1152, so the MoE (top-2 + 1
    # shared expert of hidden 1152) has the same active parameters. Dense: 526M parameters.
    # wide: width 2048, 16 layers, 16 heads of 128, SwiGLU 5632 (2.75 x width): 1.03B parameters.
    # xwide: width 4096 (Llama-7B/8B's), 8 layers, 32 heads of 128, SwiGLU 11008: 2.03B parameters.
    return {"dense": ModelConfig(dim=1280, n_layers=20, n_heads=10, ffn="dense", ffn_hidden=1152, moe=moe),
            "moe": ModelConfig(dim=1280, n_layers=20, n_heads=10, ffn="moe", ffn_hidden=1152, moe=moe),
            "wide": ModelConfig(dim=2048, n_layers=16, n_heads=16, ffn="dense", ffn_hidden=1152,
                                dense_ffn_hidden=5632, moe=moe),
            "xwide": ModelConfig(dim=4096, n_layers=8, n_heads=32, ffn="dense", ffn_hidden=1152,
                                 dense_ffn_hidden=11008, moe=moe)}


def train_run(kind: str, mcfg: ModelConfig, tokens: Path, out: Path, args, compile_: bool | None = None,
              precision: str = "bf16", grad_ckpt: bool = False, steps: int | None = None, doc_mask: str = "off",
              parallel: str = "ddp") -> dict:
    from r1data.train.loop import train
    from r1data.train.metrics import read_metrics

    steps = steps or args.steps
    if doc_mask != "off":
        import dataclasses

        mcfg = dataclasses.replace(mcfg, doc_mask=True, doc_mask_kernel=doc_mask)
    cfg = TrainConfig(
        name=f"bench-{kind}", out_dir=str(out / kind), model=mcfg,
        data=DataConfig(path=str(tokens), seq_len=args.seq, batch_size=args.batch,
                        eval_fraction=0.02 if args.data == "markov" else 0.0),
        optim=OptimConfig(lr=args.lr, warmup_steps=min(20, steps // 4)),
        train=LoopConfig(steps=steps, log_every=args.log_every, eval_every=0, eval_batches=8, checkpoints=False,
                         compile=(not args.no_compile) if compile_ is None else compile_, device="auto",
                         precision="fp8" if precision.startswith("fp8") else precision, fp8_recipe=args.fp8_recipe,
                         fp8_experts=precision == "fp8-experts", grad_checkpointing=grad_ckpt,
                         parallel=parallel),
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    summary = train(cfg, overwrite=True, log=lambda m: log("    " + m))
    wall = time.perf_counter() - t0
    steps_m, evals = read_metrics(Path(cfg.out_dir))
    timed = steps_m[args.skip_windows:] or steps_m[-1:]  # the first windows include compilation
    tps = statistics.median(r["tokens_per_s"] for r in timed)
    mfus = [r["mfu"] for r in timed if r.get("mfu") is not None]
    mfus_causal = [r["mfu_causal"] for r in timed if r.get("mfu_causal") is not None]
    tail = [r["loss"] for r in steps_m[-max(1, len(steps_m) // 10):]]  # the last tenth of the logged steps
    res = {"kind": kind, "precision": precision, "grad_ckpt": grad_ckpt, "doc_mask": doc_mask, "parallel": parallel,
           "params_total": summary["params"]["total"], "params_active": summary["params"]["active"],
           "flops_per_token": summary["flops_per_token"], "tokens_per_s": tps,
           "mfu": statistics.median(mfus) if mfus else None,
           "mfu_causal": statistics.median(mfus_causal) if mfus_causal else None, "steps": steps, "wall_s": wall,
           "memory_gb": steps_m[-1].get("memory_gb"), "final_loss": steps_m[-1]["loss"],
           "tail_loss": sum(tail) / len(tail), "eval_loss": evals[-1]["eval_loss"] if evals else None,
           "losses": [r["loss"] for r in steps_m], "cv_last": steps_m[-1].get("expert_load_cv")}
    ev = f", eval loss {res['eval_loss']:.4f}" if res["eval_loss"] is not None else ""
    log(f"{kind}: {res['params_total'] / 1e6:.0f}M params ({res['params_active'] / 1e6:.0f}M active), "
        f"{tps / 1e3:.1f}k tokens/s, {_mfu_text(res)} (median of {len(timed)} windows of {args.log_every} steps), "
        f"peak memory {res['memory_gb'] or 0:.1f} GB, loss {res['final_loss']:.4f} (last-tenth mean "
        f"{res['tail_loss']:.4f}){ev}, wall {wall:.0f} s")
    return res


def _mfu_text(r: dict) -> str:
    """MFU both ways: full attention FLOPs (torchtitan's ``mfu``) and the causal half (``mfu_causal``)."""
    if r.get("mfu") is None:
        return "MFU n/a"
    return f"MFU {100 * r['mfu']:.1f}% (causal {100 * r['mfu_causal']:.1f}%)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="check,layer,dense,moe",
                   help="comma-separated parts: check,layer,blocks,fp8check,dense,moe,wide,xwide,moe-eager-grouped,"
                        "moe-eager-loop")
    p.add_argument("--profile", action="store_true", help="with blocks: print the MoE block's top GPU kernels")
    p.add_argument("--smoke", action="store_true", help="tiny shapes that run anywhere in seconds")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--skip-windows", type=int, default=4, help="logged windows to drop (compilation, warmup)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--precisions", default="bf16",
                   help="precisions to run each model at: bf16, fp8 (routed experts bf16), fp8-experts (fp8 there too)")
    p.add_argument("--fp8-recipe", default="tensorwise", choices=["tensorwise", "rowwise"])
    p.add_argument("--ckpt", default="off", help="activation checkpointing per block: off, on, or off,on")
    p.add_argument("--ckpt-steps", type=int, default=None, help="steps for the checkpointing-on runs (default --steps)")
    p.add_argument("--doc-mask", default="off",
                   help="model.doc_mask per run: off, sdpa, flex, or a list (off,sdpa,flex); documents then end in eos")
    p.add_argument("--parallel", default="ddp",
                   help="train.parallel per run: ddp (one GPU: plain), fsdp2 (fully_shard on a group of one), or ddp,fsdp2")
    p.add_argument("--data", default="random", choices=["random", "markov"],
                   help="synthetic tokens: uniform (speed) or a learnable chain with copies (loss comparisons)")
    p.add_argument("--json", default=None, help="write all results to this file")
    args = p.parse_args()
    if args.smoke:
        args.steps, args.batch, args.seq, args.vocab, args.log_every, args.skip_windows = 6, 2, 64, 512, 2, 1
    parts = args.only.split(",")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    if device.type == "cuda":
        env["capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
    try:
        import torchao

        env["torchao"] = torchao.__version__
    except ImportError:
        pass
    log(f"torch {env['torch']} on {env['device']} {env.get('capability', '')}; torchao {env.get('torchao', '-')}")
    results = {"env": env, "args": vars(args), "runs": []}
    if "check" in parts:
        results["check"] = check(device, args.smoke)
    if "layer" in parts:
        results["layer"] = layer(device, args.smoke)
    if "blocks" in parts:
        results["blocks"] = blocks(device, args.smoke, args.profile)
    if "fp8check" in parts:
        try:
            results["fp8check"] = fp8check(device, args.smoke)
        except (Exception, SystemExit) as e:
            import traceback

            traceback.print_exc()
            log(f"fp8check: FAILED: {type(e).__name__}: {e}")
    models = model_configs(args.smoke)
    with tempfile.TemporaryDirectory() as tmp:
        tokens = None
        for kind in ("dense", "moe", "wide", "xwide", "moe-eager-grouped", "moe-eager-loop"):
            if kind not in parts:
                continue
            if tokens is None:
                need = (args.steps + 2) * args.batch * (args.seq + 1) + 100_000
                if args.data == "markov":
                    need = int(need / 0.97)
                t0 = time.perf_counter()
                tokens = synthetic_tokens(Path(tmp) / "tokens", args.vocab, need, kind=args.data,
                                          eos=args.doc_mask != "off")
                log(f"{args.data} tokens: {need:,} in {time.perf_counter() - t0:.0f} s")
            mcfg = models["moe" if kind.startswith("moe") else kind]
            if kind.startswith("moe-eager"):  # the whole trainer without torch.compile: grouped vs loop experts
                import dataclasses

                mcfg = dataclasses.replace(mcfg, moe=dataclasses.replace(mcfg.moe, impl=kind.split("-")[-1]))
            for precision in args.precisions.split(","):
                for ck, dm, par in [(c, d, q) for c in args.ckpt.split(",") for d in args.doc_mask.split(",")
                                    for q in args.parallel.split(",")]:
                    name = (f"{kind}-{precision}" + ("-ckpt" if ck == "on" else "") + (f"-mask-{dm}" if dm != "off" else "")
                            + ("-fsdp2" if par == "fsdp2" else ""))
                    try:
                        r = train_run(name, mcfg, tokens, Path(tmp), args,
                                      compile_=False if kind.startswith("moe-eager") else None, precision=precision,
                                      grad_ckpt=ck == "on", steps=args.ckpt_steps if ck == "on" else None, doc_mask=dm,
                                      parallel=par)
                    except Exception as e:  # one failed variant must not cost the others' numbers
                        import traceback

                        traceback.print_exc()
                        log(f"{name}: FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                        results.setdefault("failed", []).append(name)
                        continue
                    results["runs"].append(r)
                    if args.json:
                        Path(args.json).write_text(json.dumps(results, indent=1))
                    torch._dynamo.reset()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
    log("\nsummary (MFU against the bf16 peak; causal = attention FLOPs halved)")
    for r in results["runs"]:
        ev = f"  eval {r['eval_loss']:.4f}" if r["eval_loss"] is not None else ""
        log(f"  {r['kind']:22s} {r['params_active'] / 1e6:5.0f}M active  {r['tokens_per_s'] / 1e3:7.1f}k tok/s  "
            f"{_mfu_text(r)}  {r['memory_gb'] or 0:5.1f} GB  loss(last tenth) {r['tail_loss']:.4f}{ev}")
    for r in results.get("layer", []):
        log(f"  layer {r['shape']}: grouped {r['grouped_ms']:.2f} ms vs loop {r['loop_ms']:.2f} ms = {r['speedup']:.2f}x; "
            f"experts only {r['experts_grouped_ms']:.2f} vs {r['experts_loop_ms']:.2f} ms = {r['experts_speedup']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
