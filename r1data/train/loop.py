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
    group: bool = False  # a process group is initialised (several ranks, or FSDP2 on a single one)

    @property
    def enabled(self) -> bool:
        return self.group

    def barrier(self):
        if self.enabled:
            dist.barrier()


def init_distributed(device_type: str, single: bool = False) -> Dist:
    """Join the process group torchrun describes in the environment (a no-op for a single process, unless
    ``single``: FSDP2 needs a group even on one rank, so one of size 1 is made, with or without torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not single:
        return Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        kw = {}
        if world <= 1 and "MASTER_ADDR" not in os.environ:  # plain `python -m r1data.train`: a private store
            kw = {"store": dist.HashStore(), "rank": 0, "world_size": 1}
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)  # one GPU per process, named up front so NCCL need not guess
            dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local_rank), **kw)
        else:
            dist.init_process_group(backend="gloo", **kw)
    return Dist(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(), group=True)


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


def shard_model(model: Transformer, param_dtype: torch.dtype | None) -> None:
    """FSDP2: each block is one unit (its parameters all-gathered for its forward and backward, then freed),
    the root holds the embedding, final norm and output head. The sharded master parameters and AdamW
    state stay float32; with ``param_dtype`` bfloat16 the all-gathered copies the blocks compute with are
    bf16 (half the all-gather traffic and unsharded memory) and gradients are reduce-scattered in float32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for block in model.layers:
        fully_shard(block, mp_policy=mp)
    fully_shard(model, mp_policy=mp)


def fsdp_param_dtype(cfg: TrainConfig, use_bf16: bool) -> torch.dtype | None:
    want = cfg.train.fsdp_param_dtype
    if want == "auto":
        want = "bf16" if use_bf16 else "fp32"
    return torch.bfloat16 if want == "bf16" else None


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
    if cfg.model.doc_mask and shards.eos_id is None:
        raise ConfigError(f"model.doc_mask: {cfg.data.path}/manifest.json names no eos_id to find document ends by")
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
    if cfg.model.doc_mask and cfg.model.doc_mask_kernel == "flex" and device.type != "cuda":
        raise ConfigError(f"model.doc_mask_kernel: flex trains only on CUDA (torch {torch.__version__} has no "
                          f"FlexAttention backward on {device.type}); use model.doc_mask_kernel: sdpa")
    dd = init_distributed(device.type, single=cfg.train.parallel == "fsdp2")
    if device.type == "cuda":
        device = torch.device("cuda", dd.local_rank)
        torch.cuda.set_device(device)
    say = (log or (lambda msg: print(msg, flush=True))) if dd.rank == 0 else (lambda msg: None)
    try:
        return _train(cfg, resume, overwrite, device, dd, say)
    finally:
        if dd.enabled and dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class _Run:
    """One training run between ``_init`` and the end: the model, its optimizer and data, and where it is."""

    cfg: TrainConfig
    device: torch.device
    dd: Dist
    say: object
    shards: object
    eval_shards: object
    vocab: int
    accum: int
    out_dir: Path
    model: Transformer
    run_model: torch.nn.Module  # the model as the forward pass sees it (DDP-wrapped under DDP)
    optimizer: torch.optim.Optimizer
    scheduler: object
    stream: PackedStream
    loader: BatchLoader
    fsdp: bool
    autocast: object
    params: dict
    fpt: float
    fpt_causal: float
    peak: float | None
    tokens_per_step: int
    metrics: MetricsWriter
    step: int = 0
    tokens_seen: int = 0


def _train(cfg: TrainConfig, resume: str, overwrite: bool, device: torch.device, dd: Dist, say) -> dict:
    """init, then train_step / log / eval / checkpoint until ``train.steps`` (or a stop signal)."""
    r = _init(cfg, resume, overwrite, device, dd, say)
    if r.step >= cfg.train.steps:
        say(f"nothing to do: the checkpoint is at step {r.step} and train.steps is {cfg.train.steps}")
        r.metrics.close()
        return {"step": r.step, "tokens": r.tokens_seen, "resumed": True, "rank": dd.rank}

    last_loss = last_eval = None
    t_start = time.perf_counter()
    clock = _Clock(r.tokens_seen)
    r.model.train()
    # Test hook: seconds to sleep after each step, so a test can SIGKILL a run between two given steps.
    step_delay = float(os.environ.get("R1DATA_TRAIN_STEP_DELAY", "0") or 0)
    with _Stop() as stop:
        while r.step < cfg.train.steps:
            sums, grad_norm, lr = _train_step(r)
            if r.step % cfg.train.log_every == 0 or r.step == cfg.train.steps:
                last_loss = _log_step(r, sums, grad_norm, lr, clock)
            if (cfg.train.eval_every and r.step % cfg.train.eval_every == 0) or r.step == cfg.train.steps:
                last_eval = _eval(r) or last_eval
                clock.pause()  # evaluation time is not training throughput
            if step_delay:
                time.sleep(step_delay)
            stop_now = _stop_requested(r, stop)
            if cfg.train.checkpoints and ((cfg.train.checkpoint_every and r.step % cfg.train.checkpoint_every == 0)
                                          or r.step == cfg.train.steps or stop_now):
                _checkpoint(r)
                clock.pause()
            if stop_now:
                say(f"stopped by a signal at step {r.step}; rerun with --resume auto to continue")
                break
    r.metrics.close()
    return {"step": r.step, "tokens": r.tokens_seen, "loss": last_loss, "eval": last_eval, "rank": dd.rank,
            "seconds": time.perf_counter() - t_start, "params": r.params, "flops_per_token": r.fpt,
            "flops_per_token_causal": r.fpt_causal,
            "stopped": r.step < cfg.train.steps}


# -- init -------------------------------------------------------------------------------------


def _init(cfg: TrainConfig, resume: str, overwrite: bool, device: torch.device, dd: Dist, say) -> _Run:
    """Check the data, pick the start (fresh or a checkpoint), build model, optimizer and data stream."""
    shards, eval_shards, vocab = prepare(cfg)
    micro_global = cfg.data.batch_size * dd.world_size
    global_batch = cfg.data.global_batch_size or micro_global
    if global_batch % micro_global:
        raise ConfigError(f"data.global_batch_size: {global_batch} must be a multiple of batch_size x ranks "
                          f"({cfg.data.batch_size} x {dd.world_size} = {micro_global})")
    accum = global_batch // micro_global
    out_dir = Path(cfg.out_dir)
    start_ckpt = _start_checkpoint(out_dir, resume, overwrite, dd)

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    use_bf16 = cfg.train.dtype == "bf16" or (cfg.train.dtype == "auto" and device.type == "cuda")
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext

    model, impl, precision = _build_model(cfg, vocab, device, use_bf16)
    model.doc_sep = shards.eos_id
    params = count_params(model)
    fpt = flops_per_token(model, cfg.data.seq_len)
    fpt_causal = flops_per_token(model, cfg.data.seq_len, causal=True)
    fsdp = dd.enabled and cfg.train.parallel == "fsdp2"
    fsdp_dtype = fsdp_param_dtype(cfg, use_bf16) if fsdp else None
    if fsdp:  # shard before the optimizer sees the parameters (they become DTensors)
        if cfg.train.compile:
            model.compile_for_training()
        shard_model(model, fsdp_dtype)
    optimizer = build_optimizer(model, cfg, device)
    schedule = LRSchedule(cfg.optim.warmup_steps, cfg.train.steps, cfg.optim.decay, cfg.optim.min_lr_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    stream = PackedStream(shards, "all" if cfg.data.eval_path else "train", cfg.data.eval_fraction,
                          shuffle=cfg.data.shuffle, seed=cfg.data.seed, vocab_size=vocab)
    loader = BatchLoader(stream, cfg.data.batch_size, cfg.data.seq_len, dd.rank, dd.world_size)

    r = _Run(cfg=cfg, device=device, dd=dd, say=say, shards=shards, eval_shards=eval_shards, vocab=vocab, accum=accum,
             out_dir=out_dir, model=model, run_model=model, optimizer=optimizer, scheduler=scheduler, stream=stream,
             loader=loader, fsdp=fsdp, autocast=autocast, params=params, fpt=fpt, fpt_causal=fpt_causal,
             peak=None, tokens_per_step=global_batch * cfg.data.seq_len, metrics=None)
    if start_ckpt is not None:
        _resume_from(r, start_ckpt)

    if cfg.train.compile and not fsdp:
        model.compile_for_training()
    if dd.enabled and not fsdp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        r.run_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                          broadcast_buffers=False, gradient_as_bucket_view=True)

    if dd.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(describe(cfg))
    r.metrics = MetricsWriter(out_dir / "metrics.jsonl", enabled=dd.rank == 0)
    r.peak = peak_flops(device)
    par_text = ""
    if fsdp:
        par_text = f" (FSDP2, {'bf16' if fsdp_dtype is not None else 'fp32'} parameters in compute, fp32 reduce)"
    say(f"{cfg.name}: {params['total'] / 1e6:.2f}M parameters ({params['active'] / 1e6:.2f}M active), "
        f"{len(model.moe_layers())} MoE layers (experts: {impl}), vocab {vocab}, {dd.world_size} rank(s) on {device.type}"
        f"{par_text}, {precision}; {global_batch} x {cfg.data.seq_len} tokens/step "
        f"(accumulation {accum}); {fpt / 1e6:.1f} MFLOP/token")
    return r


def _build_model(cfg: TrainConfig, vocab: int, device: torch.device, use_bf16: bool) -> tuple[Transformer, str, str]:
    """The model on ``device`` with its expert kernel and (fp8) precision; returns (model, expert impl, precision text)."""
    model = Transformer(cfg.model, vocab, cfg.data.seq_len).to(device)
    impl = model.set_expert_impl(cfg.model.moe.impl, device) if model.moe_layers() else "-"
    model.grad_checkpointing = cfg.train.grad_checkpointing
    precision = "bf16 autocast" if use_bf16 else "fp32"
    if cfg.train.precision == "fp8":
        from r1data.train.fp8 import convert_to_fp8

        done = convert_to_fp8(model, cfg.train.fp8_recipe, experts=cfg.train.fp8_experts)
        n_experts = len(done["experts"]) if impl == "grouped" else 0
        precision = (f"fp8 ({cfg.train.fp8_recipe}) in {len(done['linear'])} linears and {n_experts} of "
                     f"{len(model.moe_layers())} expert layers (rowwise), bf16 elsewhere")
    return model, impl, precision


def _start_checkpoint(out_dir: Path, resume: str, overwrite: bool, dd: Dist) -> Path | None:
    """Where to start: ``None`` (a fresh out_dir, emptied with ``overwrite``) or a checkpoint folder."""
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
    return start_ckpt


def _resume_from(r: _Run, start_ckpt: Path) -> None:
    """Load model, optimizer, schedule and data position from a checkpoint of the same model (DDP or FSDP2 alike)."""
    cfg = r.cfg
    saved = json.loads((start_ckpt / "trainer.json").read_text())
    if saved.get("model_hash") != _model_hash(cfg):
        raise ConfigError(f"--resume: {start_ckpt} was saved with another model config; use another out_dir")
    now = "fsdp2" if r.fsdp else "ddp"
    if saved.get("parallel", "ddp") != now:  # the files are unsharded either way: any mode reads them
        r.say(f"resuming a checkpoint written with train.parallel={saved.get('parallel', 'ddp')} on "
              f"{saved.get('world_size', 1)} rank(s) as {now} on {r.dd.world_size}")
    state = ckpt.load_checkpoint(start_ckpt, model=r.model, optimizer=r.optimizer, scheduler=r.scheduler,
                                 rank=r.dd.rank, map_location=r.device, full_state=r.fsdp)
    _apply_current_optim_config(r.optimizer, r.scheduler, cfg)
    r.stream.load_state_dict(state["data"])
    r.step, r.tokens_seen = int(state["step"]), int(state["tokens"])
    r.say(f"resumed from {start_ckpt} at step {r.step}")


# -- train_step -------------------------------------------------------------------------------


def _train_step(r: _Run) -> tuple[tuple, torch.Tensor, float]:
    """One optimizer step over ``accum`` micro-batches; returns ((loss, aux, z sums, expert load), grad norm, lr)."""
    cfg, dd, device, model = r.cfg, r.dd, r.device, r.model
    moe_count = len(model.moe_layers())
    loss_sum = torch.zeros((), device=device)
    aux_sum = torch.zeros((), device=device)
    z_sum = torch.zeros((), device=device)
    load = torch.zeros(moe_count, cfg.model.moe.num_experts, device=device, dtype=torch.int64) if moe_count else None
    for micro in range(r.accum):
        x, y = r.loader.next(device)
        last_micro = micro == r.accum - 1
        if r.fsdp:  # reduce-scatter gradients only on the last micro-batch
            model.set_requires_gradient_sync(last_micro)
            sync = contextlib.nullcontext()
        else:
            sync = contextlib.nullcontext() if (not dd.enabled or last_micro) else r.run_model.no_sync()
        with sync:
            with r.autocast():
                loss, st = r.run_model(x, y)
            total = loss + st["aux_loss"] + st["z_loss"]
            (total / r.accum).backward()
        loss_sum += loss.detach()
        aux_sum += st["aux_loss"].detach()
        z_sum += st["z_loss"].detach()
        if load is not None:
            load += st["tokens_per_expert"]
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or float("inf"))
    if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor holding the global norm
        grad_norm = grad_norm.full_tensor()
    lr = r.optimizer.param_groups[0]["lr"]
    r.optimizer.step()
    r.scheduler.step()
    r.optimizer.zero_grad(set_to_none=True)
    if load is not None:
        if dd.enabled:
            dist.all_reduce(load)
        for moe, layer_load in zip(model.moe_layers(), load):
            update_expert_bias(moe.router, layer_load)
    r.step += 1
    r.tokens_seen += r.tokens_per_step
    return (loss_sum, aux_sum, z_sum, load), grad_norm, lr


class _Clock:
    """Training throughput between two logged steps (time spent evaluating or checkpointing excluded)."""

    def __init__(self, tokens: int):
        self.t, self.tokens = time.perf_counter(), tokens

    def pause(self) -> None:
        self.t = time.perf_counter()


def _log_step(r: _Run, sums: tuple, grad_norm, lr: float, clock: _Clock) -> float:
    """Average the step's losses over ranks, write a metrics record and a line; ``FatalError`` on a non-finite loss."""
    loss_sum, aux_sum, z_sum, load = sums
    stats = torch.stack([loss_sum, aux_sum, z_sum]) / r.accum
    if r.dd.enabled:
        dist.all_reduce(stats)
        stats /= r.dd.world_size
    loss_v, aux_v, z_v = stats.tolist()  # the one host sync of a logged step
    now = time.perf_counter()
    tps = (r.tokens_seen - clock.tokens) / max(now - clock.t, 1e-9)
    steps_in_window = (r.tokens_seen - clock.tokens) // r.tokens_per_step
    clock.t, clock.tokens = now, r.tokens_seen
    world = r.dd.world_size
    rec = {"kind": "train", "step": r.step, "loss": loss_v, "lr": lr, "grad_norm": float(grad_norm),
           "tokens": r.tokens_seen, "tokens_per_s": tps, "step_s": (r.tokens_per_step / tps) if tps else None,
           "mfu": mfu(tps / world, r.fpt, r.peak),
           "mfu_causal": mfu(tps / world, r.fpt_causal, r.peak), "aux_loss": aux_v, "z_loss": z_v,
           "steps_in_window": steps_in_window}
    if load is not None:
        cv, vio = load_stats(load)
        rec["expert_load_cv"], rec["expert_load_max_vio"] = cv, vio
    if r.device.type == "cuda":
        rec["memory_gb"] = torch.cuda.max_memory_allocated(r.device) / 2**30
    r.metrics.write(rec)
    r.say(_format(rec, r.cfg.train.steps))
    if not math.isfinite(loss_v):
        r.metrics.close()
        raise FatalError(f"loss is {loss_v} at step {r.step}; lower optim.lr or raise optim.warmup_steps "
                         f"(resume from the last checkpoint with --resume auto)")
    return loss_v


# -- eval and checkpoint ----------------------------------------------------------------------


def _eval(r: _Run) -> dict | None:
    """Score the held-out data now; write and print the result (``None``: no held-out data)."""
    ev = evaluate(r.model, r.cfg, r.shards, r.eval_shards, r.vocab, r.device, r.dd, r.autocast)
    if ev is not None:
        r.metrics.write({"kind": "eval", "step": r.step, **ev})
        r.say(f"step {r.step}: eval loss {ev['eval_loss']:.4f}, {ev['eval_bpb']:.4f} bits/byte "
              f"({ev['eval_tokens']:,} tokens)")
    return ev


def _stop_requested(r: _Run, stop: _Stop) -> bool:
    """A stop signal on any rank stops every rank (after this step's checkpoint)."""
    stop_now = stop.requested
    if r.dd.enabled:
        flag = torch.tensor([1.0 if stop_now else 0.0], device=r.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        stop_now = bool(flag.item())
    return stop_now


def _checkpoint(r: _Run) -> None:
    """Save model, optimizer, schedule and data position at the current step."""
    cfg = r.cfg
    trainer_state = {"tokens": r.tokens_seen, "data": r.stream.state_dict(), "config_hash": cfg.config_hash(),
                     "model_hash": _model_hash(cfg), "name": cfg.name, "parallel": "fsdp2" if r.fsdp else "ddp"}
    path = ckpt.save_checkpoint(r.out_dir, r.step, model=r.model, optimizer=r.optimizer, scheduler=r.scheduler, full_state=r.fsdp,
                                trainer_state=trainer_state, rank=r.dd.rank, world_size=r.dd.world_size,
                                barrier=r.dd.barrier, keep=cfg.train.keep_checkpoints)
    if path:
        r.say(f"checkpoint {path}")


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
