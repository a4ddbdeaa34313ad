"""The training loop: ``train(cfg)`` runs a ``TrainConfig`` from start (or from its latest checkpoint) to the end.

One process per device; under ``torchrun`` the processes form a DDP group (NCCL on CUDA, gloo on
CPU). Each optimizer step: ``accum`` micro-batches (forward under bf16 autocast on CUDA, backward,
gradients all-reduced on the last one), clip, AdamW step, schedule step, then the aux-loss-free
expert-bias update from the step's expert loads summed over micro-batches and ranks.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from r1data.errors import ConfigError, FatalError
from r1data.train import checkpoint as ckpt
from r1data.train.config import TrainConfig, describe
from r1data.train.data import BatchLoader, PackedStream, open_token_shards
from r1data.train.metrics import MetricsWriter, mfu, peak_flops
from r1data.train.model import Transformer, count_params, flops_per_token
from r1data.train.moe import load_stats, update_expert_bias


class LRSchedule:
    """Linear warmup over ``warmup`` steps, then cosine (or linear, or no) decay to ``min_ratio`` at ``total``."""

    def __init__(self, warmup: int, total: int, decay: str, min_ratio: float):
        self.warmup, self.total, self.decay, self.min_ratio = warmup, total, decay, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        if self.decay == "constant":
            return 1.0
        if self.decay == "linear":
            return 1.0 - (1.0 - self.min_ratio) * progress
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self):
        if self.enabled:
            dist.barrier()


def init_distributed(device_type: str) -> Dist:
    """Join the process group torchrun describes in the environment (a no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)  # one GPU per process, named up front so NCCL need not guess
            dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local_rank))
        else:
            dist.init_process_group(backend="gloo")
    return Dist(rank=dist.get_rank(), local_rank=local_rank, world_size=world)


def resolve_device(cfg: TrainConfig) -> torch.device:
    want = cfg.train.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but torch sees no CUDA device")
    return torch.device(want)


def resolve_vocab(cfg: TrainConfig, shards) -> int:
    if cfg.model.vocab_size != "auto":
        if shards.vocab_size and cfg.model.vocab_size < shards.vocab_size:
            raise ConfigError(f"model.vocab_size: {cfg.model.vocab_size} is smaller than the tokenizer's "
                              f"{shards.vocab_size} ({cfg.data.path}/manifest.json)")
        return cfg.model.vocab_size
    if not shards.vocab_size:
        raise ConfigError(f"model.vocab_size: auto needs {cfg.data.path}/manifest.json (from r1data tokenize encode); "
                          "set model.vocab_size")
    return -(-shards.vocab_size // 64) * 64  # a multiple of 64 keeps the output GEMM on fast tensor-core tiles


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices (ndim >= 2), none on norms and other vectors."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.eps,
                             fused=device.type == "cuda")


def _apply_current_optim_config(optimizer, scheduler, cfg: TrainConfig) -> None:
    """After loading a checkpoint, let the current config's schedule and hyperparameters govern the rest of the run.

    LambdaLR.load_state_dict copies the saved schedule's attributes (e.g. the old train.steps) into the
    live schedule object, and the optimizer state carries the saved lr, betas and decay; both are reset
    here. For an unchanged config this reproduces the saved values bit for bit.
    """
    schedule = LRSchedule(cfg.optim.warmup_steps, cfg.train.steps, cfg.optim.decay, cfg.optim.min_lr_ratio)
    n = len(optimizer.param_groups)
    scheduler.lr_lambdas = [schedule] * n
    scheduler.base_lrs = [cfg.optim.lr] * n
    for group, decay in zip(optimizer.param_groups, (cfg.optim.weight_decay, 0.0)):
        group["initial_lr"] = cfg.optim.lr
        group["lr"] = cfg.optim.lr * schedule(scheduler.last_epoch)  # LambdaLR's own expression
        group["betas"] = (cfg.optim.beta1, cfg.optim.beta2)
        group["eps"] = cfg.optim.eps
        group["weight_decay"] = decay
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


def shard_model(model: Transformer, device: torch.device) -> None:
    """FSDP2: each block is one unit (its parameters all-gathered for its forward and backward, then freed),
    the root holds the embedding, final norm and output head. Compute stays under bf16 autocast on
    float32 master parameters, as without sharding."""
    from torch.distributed.fsdp import fully_shard

    for block in model.layers:
        fully_shard(block)
    fully_shard(model)


class _Stop:
    """Remembers SIGTERM/SIGUSR1 (Slurm preemption) so the loop can checkpoint and exit cleanly."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def prepare(cfg: TrainConfig):
    """Validate everything that needs the data (paths, vocabulary, batch arithmetic) before any work."""
    shards = open_token_shards(cfg.data.path, "data.path")
    eval_shards = open_token_shards(cfg.data.eval_path, "data.eval_path") if cfg.data.eval_path else None
    vocab = resolve_vocab(cfg, shards)
    return shards, eval_shards, vocab


def train(cfg: TrainConfig, resume: str = "none", overwrite: bool = False, log=None) -> dict:
    """Run ``cfg``. ``resume``: ``auto`` (latest checkpoint in out_dir, if any), ``none``, or a checkpoint path.

    Returns a summary (final step, losses, tokens, seconds). Rank 0 writes ``out_dir/metrics.jsonl``,
    ``out_dir/config.yaml`` and ``out_dir/checkpoints/``.
    """
    device = resolve_device(cfg)
    if cfg.train.precision == "fp8":  # before anything is written or allocated
        from r1data.train.fp8 import check_fp8_supported

        check_fp8_supported(device)
    dd = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", dd.local_rank)
        torch.cuda.set_device(device)
    say = (log or (lambda msg: print(msg, flush=True))) if dd.rank == 0 else (lambda msg: None)
    try:
        return _train(cfg, resume, overwrite, device, dd, say)
    finally:
        if dd.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, resume: str, overwrite: bool, device: torch.device, dd: Dist, say) -> dict:
    shards, eval_shards, vocab = prepare(cfg)
    micro_global = cfg.data.batch_size * dd.world_size
    global_batch = cfg.data.global_batch_size or micro_global
    if global_batch % micro_global:
        raise ConfigError(f"data.global_batch_size: {global_batch} must be a multiple of batch_size x ranks "
                          f"({cfg.data.batch_size} x {dd.world_size} = {micro_global})")
    accum = global_batch // micro_global
    out_dir = Path(cfg.out_dir)

    # Where to start: a fresh out_dir, or its latest checkpoint.
    start_ckpt = None
    if resume not in ("auto", "none"):
        start_ckpt = Path(resume)
        if not (start_ckpt / "trainer.json").is_file():
            raise ConfigError(f"--resume: {resume} is not a checkpoint folder (no trainer.json)")
    elif resume == "auto":
        start_ckpt = ckpt.latest_checkpoint(out_dir)
    elif ckpt.list_checkpoints(out_dir) or (out_dir / "metrics.jsonl").exists():
        if not overwrite:
            raise ConfigError(f"out_dir: {out_dir} already holds a run; pass --resume auto to continue it or "
                              "--overwrite to start again")
    if overwrite and resume == "none" and dd.rank == 0 and out_dir.exists():
        for name in ("checkpoints", "metrics.jsonl", "plots", "config.yaml"):
            p = out_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    dd.barrier()

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    use_bf16 = cfg.train.dtype == "bf16" or (cfg.train.dtype == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext

    model = Transformer(cfg.model, vocab, cfg.data.seq_len).to(device)
    impl = model.set_expert_impl(cfg.model.moe.impl, device) if model.moe_layers() else "-"
    model.grad_checkpointing = cfg.train.grad_checkpointing
    precision = "bf16 autocast" if use_bf16 else "fp32"
    if cfg.train.precision == "fp8":
        from r1data.train.fp8 import convert_to_fp8

        done = convert_to_fp8(model, cfg.train.fp8_recipe)
        n_experts = len(done["experts"]) if impl == "grouped" else 0
        precision = (f"fp8 ({cfg.train.fp8_recipe}) in {len(done['linear'])} linears and {n_experts} of "
                     f"{len(model.moe_layers())} expert layers (rowwise), bf16 elsewhere")
    params = count_params(model)
    fpt = flops_per_token(model, cfg.data.seq_len)
    fpt_causal = flops_per_token(model, cfg.data.seq_len, causal=True)
    fsdp = dd.enabled and cfg.train.parallel == "fsdp2"
    if fsdp:  # shard before the optimizer sees the parameters (they become DTensors)
        if cfg.train.compile:
            model.compile_for_training()
        shard_model(model, device)
    optimizer = build_optimizer(model, cfg, device)
    schedule = LRSchedule(cfg.optim.warmup_steps, cfg.train.steps, cfg.optim.decay, cfg.optim.min_lr_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    stream = PackedStream(shards, "all" if cfg.data.eval_path else "train", cfg.data.eval_fraction,
                          shuffle=cfg.data.shuffle, seed=cfg.data.seed, vocab_size=vocab)
    loader = BatchLoader(stream, cfg.data.batch_size, cfg.data.seq_len, dd.rank, dd.world_size)

    step, tokens_seen = 0, 0
    if start_ckpt is not None:
        saved = json.loads((start_ckpt / "trainer.json").read_text())
        if saved.get("model_hash") != _model_hash(cfg):
            raise ConfigError(f"--resume: {start_ckpt} was saved with another model config; use another out_dir")
        if saved.get("parallel", "ddp") != ("fsdp2" if fsdp else "ddp"):
            raise ConfigError(f"--resume: {start_ckpt} was written with train.parallel="
                              f"{saved.get('parallel', 'ddp')} on {saved.get('world_size', 1)} rank(s); resume it "
                              f"the same way")
        state = ckpt.load_checkpoint(start_ckpt, model=model, optimizer=optimizer, scheduler=scheduler,
                                     rank=dd.rank, map_location=device, full_state=fsdp)
        _apply_current_optim_config(optimizer, scheduler, cfg)
        stream.load_state_dict(state["data"])
        step, tokens_seen = int(state["step"]), int(state["tokens"])
        say(f"resumed from {start_ckpt} at step {step}")

    run_model = model
    if cfg.train.compile and not fsdp:
        model.compile_for_training()
    if dd.enabled and not fsdp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        run_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                        broadcast_buffers=False, gradient_as_bucket_view=True)

    if dd.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(describe(cfg))
    metrics = MetricsWriter(out_dir / "metrics.jsonl", enabled=dd.rank == 0)
    peak = peak_flops(device)
    tokens_per_step = global_batch * cfg.data.seq_len
    say(f"{cfg.name}: {params['total'] / 1e6:.2f}M parameters ({params['active'] / 1e6:.2f}M active), "
        f"{len(model.moe_layers())} MoE layers (experts: {impl}), vocab {vocab}, {dd.world_size} rank(s) on {device.type}, "
        f"{precision}; {global_batch} x {cfg.data.seq_len} tokens/step "
        f"(accumulation {accum}); {fpt / 1e6:.1f} MFLOP/token")

    if step >= cfg.train.steps:
        say(f"nothing to do: the checkpoint is at step {step} and train.steps is {cfg.train.steps}")
        metrics.close()
        return {"step": step, "tokens": tokens_seen, "resumed": True, "rank": dd.rank}

    def save(at_step: int):
        trainer_state = {"tokens": tokens_seen, "data": stream.state_dict(), "config_hash": cfg.config_hash(),
                         "model_hash": _model_hash(cfg), "name": cfg.name, "parallel": "fsdp2" if fsdp else "ddp"}
        path = ckpt.save_checkpoint(out_dir, at_step, model=model, optimizer=optimizer, scheduler=scheduler, full_state=fsdp,
                                    trainer_state=trainer_state, rank=dd.rank, world_size=dd.world_size,
                                    barrier=dd.barrier, keep=cfg.train.keep_checkpoints)
        if path:
            say(f"checkpoint {path}")

    last_loss = last_eval = None
    moe_count = len(model.moe_layers())
    t_start = time.perf_counter()
    t_log, tokens_at_log = time.perf_counter(), tokens_seen
    model.train()
    # Test hook: seconds to sleep after each step, so a test can SIGKILL a run between two given steps.
    step_delay = float(os.environ.get("R1DATA_TRAIN_STEP_DELAY", "0") or 0)
    with _Stop() as stop:
        while step < cfg.train.steps:
            loss_sum = torch.zeros((), device=device)
            aux_sum = torch.zeros((), device=device)
            z_sum = torch.zeros((), device=device)
            load = torch.zeros(moe_count, cfg.model.moe.num_experts, device=device, dtype=torch.int64) if moe_count else None
            for micro in range(accum):
                x, y = loader.next(device)
                last_micro = micro == accum - 1
                if fsdp:  # reduce-scatter gradients only on the last micro-batch
                    model.set_requires_gradient_sync(last_micro)
                    sync = contextlib.nullcontext()
                else:
                    sync = contextlib.nullcontext() if (not dd.enabled or last_micro) else run_model.no_sync()
                with sync:
                    with autocast():
                        loss, st = run_model(x, y)
                    total = loss + st["aux_loss"] + st["z_loss"]
                    (total / accum).backward()
                loss_sum += loss.detach()
                aux_sum += st["aux_loss"].detach()
                z_sum += st["z_loss"].detach()
                if load is not None:
                    load += st["tokens_per_expert"]
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or float("inf"))
            if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor holding the global norm
                grad_norm = grad_norm.full_tensor()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if load is not None:
                if dd.enabled:
                    dist.all_reduce(load)
                for moe, layer_load in zip(model.moe_layers(), load):
                    update_expert_bias(moe.router, layer_load)
            step += 1
            tokens_seen += tokens_per_step

            if step % cfg.train.log_every == 0 or step == cfg.train.steps:
                stats = torch.stack([loss_sum, aux_sum, z_sum]) / accum
                if dd.enabled:
                    dist.all_reduce(stats)
                    stats /= dd.world_size
                loss_v, aux_v, z_v = stats.tolist()  # the one host sync of a logged step
                now = time.perf_counter()
                tps = (tokens_seen - tokens_at_log) / max(now - t_log, 1e-9)
                steps_in_window = (tokens_seen - tokens_at_log) // tokens_per_step
                t_log, tokens_at_log = now, tokens_seen
                rec = {"kind": "train", "step": step, "loss": loss_v, "lr": lr, "grad_norm": float(grad_norm),
                       "tokens": tokens_seen, "tokens_per_s": tps, "step_s": (tokens_per_step / tps) if tps else None,
                       "mfu": mfu(tps / dd.world_size, fpt, peak),
                       "mfu_causal": mfu(tps / dd.world_size, fpt_causal, peak), "aux_loss": aux_v, "z_loss": z_v,
                       "steps_in_window": steps_in_window}
                if load is not None:
                    cv, vio = load_stats(load)
                    rec["expert_load_cv"], rec["expert_load_max_vio"] = cv, vio
                if device.type == "cuda":
                    rec["memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
                metrics.write(rec)
                last_loss = loss_v
                say(_format(rec, cfg.train.steps))
                if not math.isfinite(loss_v):
                    metrics.close()
                    raise FatalError(f"loss is {loss_v} at step {step}; lower optim.lr or raise optim.warmup_steps "
                                     f"(resume from the last checkpoint with --resume auto)")

            if (cfg.train.eval_every and step % cfg.train.eval_every == 0) or step == cfg.train.steps:
                ev = evaluate(model, cfg, shards, eval_shards, vocab, device, dd, autocast)
                if ev is not None:
                    metrics.write({"kind": "eval", "step": step, **ev})
                    last_eval = ev
                    say(f"step {step}: eval loss {ev['eval_loss']:.4f}, {ev['eval_bpb']:.4f} bits/byte "
                        f"({ev['eval_tokens']:,} tokens)")
                t_log = time.perf_counter()  # evaluation time is not training throughput

            if step_delay:
                time.sleep(step_delay)
            stop_now = stop.requested
            if dd.enabled:
                flag = torch.tensor([1.0 if stop_now else 0.0], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop_now = bool(flag.item())
            if cfg.train.checkpoints and ((cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0)
                                          or step == cfg.train.steps or stop_now):
                save(step)
                t_log = time.perf_counter()
            if stop_now:
                say(f"stopped by a signal at step {step}; rerun with --resume auto to continue")
                break
    metrics.close()
    return {"step": step, "tokens": tokens_seen, "loss": last_loss, "eval": last_eval, "rank": dd.rank,
            "seconds": time.perf_counter() - t_start, "params": params, "flops_per_token": fpt,
            "flops_per_token_causal": fpt_causal,
            "stopped": step < cfg.train.steps}


@torch.no_grad()
def evaluate(model, cfg: TrainConfig, shards, eval_shards, vocab, device, dd: Dist, autocast) -> dict | None:
    """Mean held-out loss over up to ``train.eval_batches`` micro-batches, and bits per byte.

    Always the same held-out windows (the start of the split, unshuffled), so values are comparable
    across steps and runs. Bits per byte = loss / ln 2 * (tokens / UTF-8 bytes of the held-out documents read).
    """
    if eval_shards is None and cfg.data.eval_fraction == 0:
        return None
    stream = PackedStream(eval_shards or shards, "all" if eval_shards else "eval", cfg.data.eval_fraction,
                          shuffle=False, seed=cfg.data.seed, repeat=False, vocab_size=vocab)
    loader = BatchLoader(stream, cfg.data.batch_size, cfg.data.seq_len, dd.rank, dd.world_size)
    was_training = model.training
    model.eval()
    total = torch.zeros(2, device=device, dtype=torch.float64)  # summed loss, tokens
    for _ in range(cfg.train.eval_batches):
        try:
            x, y = loader.next(device)
        except EOFError:
            break
        with autocast():
            loss, _ = model(x, y, reduction="sum")
        total[0] += loss.double()
        total[1] += y.numel()
    model.train(was_training)
    if dd.enabled:
        dist.all_reduce(total)
    loss_sum, n = total.tolist()
    if n == 0:
        return None
    mean = loss_sum / n
    tokens_per_byte = stream.tokens_read / stream.bytes_read if stream.bytes_read else float("nan")
    return {"eval_loss": mean, "eval_bpb": mean / math.log(2) * tokens_per_byte, "eval_tokens": int(n)}


def _model_hash(cfg: TrainConfig) -> str:
    """Identifies the architecture a checkpoint holds (the expert kernel choice is not part of it)."""
    import hashlib

    model = cfg.to_dict()["model"]
    model["moe"] = {k: v for k, v in model["moe"].items() if k != "impl"}
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]


def _format(rec: dict, steps: int) -> str:
    parts = [f"step {rec['step']}/{steps}", f"loss {rec['loss']:.4f}", f"lr {rec['lr']:.2e}",
             f"gnorm {rec['grad_norm']:.3f}", f"{rec['tokens_per_s'] / 1e3:.1f}k tok/s"]
    if rec.get("mfu") is not None:
        parts.append(f"mfu {100 * rec['mfu']:.1f}% (causal {100 * rec['mfu_causal']:.1f}%)")
    if rec.get("expert_load_cv"):
        parts.append(f"load cv {sum(rec['expert_load_cv']) / len(rec['expert_load_cv']):.3f}")
    if rec.get("aux_loss"):
        parts.append(f"aux {rec['aux_loss']:.4f}")
    return "  ".join(parts)


def main_error(e: BaseException) -> int:
    """Print an r1data error as ``error: ...`` lines; return its exit code (for ``python -m r1data.train``)."""
    for line in str(e).splitlines() or [type(e).__name__]:
        print(f"error: {line}", file=sys.stderr)
    return getattr(e, "exit_code", 1)


def dry_run(cfg: TrainConfig) -> str:
    """Check the data and describe the model (sizes, FLOPs) without allocating it (``--dry-run``)."""
    shards, eval_shards, vocab = prepare(cfg)
    with torch.device("meta"):
        model = Transformer(cfg.model, vocab, cfg.data.seq_len)
    n = count_params(model)
    tokens = shards.manifest.get("totals", {}).get("tokens")
    lines = [
        f"# model: {n['total'] / 1e6:.2f}M parameters, {n['active'] / 1e6:.2f}M active per token "
        f"({n['embedding'] / 1e6:.2f}M input embedding), {len(model.moe_layers())} MoE layers, vocab {vocab}",
        f"# {flops_per_token(model, cfg.data.seq_len) / 1e6:.2f} MFLOP per token (training, full attention as "
        f"torchtitan counts it; {flops_per_token(model, cfg.data.seq_len, causal=True) / 1e6:.2f} with causal attention)",
        f"# data: {len(shards.files)} token shards, {len(shards.units)} row groups"
        + (f", {tokens:,} tokens" if tokens else ""),
    ]
    return "\n".join(lines)
