"""Training configuration: dataclasses that validate themselves, loaded from YAML with line numbers.

Each section owns a dataclass whose ``__post_init__`` checks its own fields (torchtitan style);
``TrainConfig.__post_init__`` checks what spans sections. ``load_train_config`` reads a YAML file,
applies ``--set key=value`` overrides, and turns every problem into one line that names the file,
line and key (``train-moe-tiny.yaml:14 model.moe.top_k: must be <= num_experts (4), got 6``), before
any work starts.

Only PyYAML is needed here (no pydantic), so the trainer runs on a bare GPU image.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from r1data import dotted
from r1data.dotted import suggest
from r1data.errors import ConfigError
from r1data.yamlsrc import YamlSource, format_path, load_yaml_file, load_yaml_text


class FieldError(ValueError):
    """Raised by ``__post_init__``: ``field`` is the offending key of that section."""

    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


def _need(cond: bool, field_name: str, message: str) -> None:
    if not cond:
        raise FieldError(field_name, message)


@dataclass
class MoEConfig:
    """Mixture-of-Experts feed-forward layers (used when ``model.ffn`` is ``moe``)."""

    num_experts: int = 8  # routed experts per MoE layer
    top_k: int = 2  # experts each token is sent to
    num_shared_experts: int = 1  # experts every token always goes through (DeepSeekMoE); 0 = none
    score_func: Literal["softmax", "sigmoid"] = "sigmoid"  # router affinity: softmax over experts, or per-expert sigmoid
    route_norm: bool = True  # renormalise the top-k gate weights to sum to 1
    route_scale: float = 1.0  # multiply gate weights (DeepSeek-V3 uses >1 with many experts)
    # Aux-loss-free balancing (DeepSeek-V3): a per-expert bias added to the scores only to choose experts,
    # nudged after each step by this rate towards under-loaded experts; updates are centred (sum to 0). 0 = off.
    bias_update_rate: float = 1e-3
    aux_loss_coef: float = 0.0  # Switch-Transformer load-balancing loss weight (0 = off)
    z_loss_coef: float = 0.0  # router z-loss weight, mean(logsumexp(logits)^2) (0 = off)
    impl: Literal["auto", "grouped", "loop"] = "auto"  # expert compute: torch._grouped_mm, a loop over experts, or grouped on CUDA

    def __post_init__(self):
        _need(self.num_experts >= 1, "num_experts", f"must be >= 1, got {self.num_experts}")
        _need(1 <= self.top_k <= self.num_experts, "top_k",
              f"must be between 1 and num_experts ({self.num_experts}), got {self.top_k}")
        _need(self.num_shared_experts >= 0, "num_shared_experts", f"must be >= 0, got {self.num_shared_experts}")
        _need(self.route_scale > 0, "route_scale", f"must be > 0, got {self.route_scale}")
        _need(0 <= self.bias_update_rate <= 1, "bias_update_rate", f"must be in [0, 1], got {self.bias_update_rate}")
        _need(self.aux_loss_coef >= 0, "aux_loss_coef", f"must be >= 0, got {self.aux_loss_coef}")
        _need(self.z_loss_coef >= 0, "z_loss_coef", f"must be >= 0, got {self.z_loss_coef}")
        _need(not (self.score_func == "softmax" and self.top_k == 1 and self.route_norm), "route_norm",
              "with score_func softmax and top_k 1, route_norm makes every gate 1.0 and the router gets no gradient; "
              "set route_norm: false")


@dataclass
class ModelConfig:
    """A decoder-only transformer: RoPE, RMSNorm, grouped-query attention, SwiGLU or MoE feed-forward."""

    vocab_size: Union[int, Literal["auto"]] = "auto"  # "auto": the token shards' tokenizer, padded to a multiple of 64
    dim: int = 256  # model width
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: Optional[int] = None  # grouped-query attention; None = n_heads
    ffn: Literal["moe", "dense"] = "moe"
    ffn_hidden: int = 512  # hidden width of one expert (and of each shared expert)
    # Dense baseline width; None = (top_k + num_shared_experts) * ffn_hidden, i.e. the MoE's active FFN size.
    dense_ffn_hidden: Optional[int] = None
    first_dense_layers: int = 0  # keep the first N layers dense (DeepSeek does); only with ffn: moe
    moe: MoEConfig = field(default_factory=MoEConfig)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False  # share the input embedding with the output projection
    init_std: float = 0.02
    # Packed windows hold several documents (each ends with the tokenizer's eos): true = a token
    # attends only to earlier tokens of its own document (SDPA with a boolean mask: no flash kernel).
    doc_mask: bool = False
    # How doc_mask is computed: sdpa (a dense (B, 1, S, S) boolean mask; any device) or flex
    # (FlexAttention with a block mask, which skips the blocks no query may see; trains on CUDA
    # only, with train.compile: true to be fast: torch has no FlexAttention backward on the CPU).
    doc_mask_kernel: Literal["sdpa", "flex"] = "sdpa"

    def __post_init__(self):
        _need(self.doc_mask or self.doc_mask_kernel == "sdpa", "doc_mask_kernel",
              f"{self.doc_mask_kernel} applies only with model.doc_mask: true")
        if self.vocab_size != "auto":
            _need(self.vocab_size >= 2, "vocab_size", f"must be >= 2, got {self.vocab_size}")
        for name in ("dim", "n_layers", "n_heads", "ffn_hidden"):
            _need(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        _need(self.dim % self.n_heads == 0, "dim", f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        _need((self.dim // self.n_heads) % 2 == 0, "n_heads",
              f"head dimension dim/n_heads = {self.dim // self.n_heads} must be even for RoPE")
        kv = self.kv_heads
        _need(kv >= 1 and self.n_heads % kv == 0, "n_kv_heads",
              f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({kv})")
        if self.dense_ffn_hidden is not None:
            _need(self.dense_ffn_hidden >= 1, "dense_ffn_hidden", f"must be >= 1, got {self.dense_ffn_hidden}")
        _need(0 <= self.first_dense_layers <= self.n_layers, "first_dense_layers",
              f"must be between 0 and n_layers ({self.n_layers}), got {self.first_dense_layers}")
        _need(self.norm_eps > 0, "norm_eps", f"must be > 0, got {self.norm_eps}")
        _need(self.rope_theta > 0, "rope_theta", f"must be > 0, got {self.rope_theta}")
        _need(self.init_std > 0, "init_std", f"must be > 0, got {self.init_std}")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def dense_hidden(self) -> int:
        """Hidden width of a dense FFN layer: explicit, or matched to the MoE's active parameters."""
        if self.dense_ffn_hidden is not None:
            return self.dense_ffn_hidden
        return (self.moe.top_k + self.moe.num_shared_experts) * self.ffn_hidden

    def is_moe_layer(self, layer: int) -> bool:
        return self.ffn == "moe" and layer >= self.first_dense_layers


@dataclass
class DataConfig:
    """Token shards written by ``r1data tokenize encode``, packed into fixed-length sequences."""

    path: str = "out/web/tokens"  # folder of token shards (with manifest.json) or one .parquet file
    seq_len: int = 256  # tokens per training sequence
    batch_size: int = 8  # sequences per micro-batch on each rank
    # Sequences per optimizer step over all ranks; None = batch_size * ranks. Gradient accumulation
    # makes up the rest: global_batch_size = batch_size * ranks * accumulation steps.
    global_batch_size: Optional[int] = None
    eval_fraction: float = 0.02  # documents held out for evaluation, chosen by a hash of their id
    eval_path: Optional[str] = None  # a separate folder of token shards to evaluate on instead
    shuffle: bool = True  # shuffle row groups and the documents inside each (seeded, reproducible)
    seed: int = 1234  # data order seed (independent of the model seed)

    def __post_init__(self):
        _need(bool(self.path), "path", "must name a folder of token shards")
        _need(self.seq_len >= 2, "seq_len", f"must be >= 2, got {self.seq_len}")
        _need(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        if self.global_batch_size is not None:
            _need(self.global_batch_size >= 1, "global_batch_size", f"must be >= 1, got {self.global_batch_size}")
            _need(self.global_batch_size % self.batch_size == 0, "global_batch_size",
                  f"must be a multiple of batch_size ({self.batch_size}), got {self.global_batch_size}")
        _need(0 <= self.eval_fraction < 1, "eval_fraction", f"must be in [0, 1), got {self.eval_fraction}")


@dataclass
class OptimConfig:
    """AdamW with linear warmup and cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 3e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # final lr as a fraction of the peak
    warmup_steps: int = 20
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.1  # applied to matrices only (not norms, biases, embeddings)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # clip the global grad norm to this; 0 = no clipping (the norm is still logged)

    def __post_init__(self):
        _need(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _need(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        _need(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _need(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        _need(0 <= self.beta1 < 1, "beta1", f"must be in [0, 1), got {self.beta1}")
        _need(0 <= self.beta2 < 1, "beta2", f"must be in [0, 1), got {self.beta2}")
        _need(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        _need(self.grad_clip >= 0, "grad_clip", f"must be >= 0, got {self.grad_clip}")


@dataclass
class LoopConfig:
    """How long to train, where, and how often to log, evaluate and checkpoint."""

    steps: int = 200  # optimizer steps
    seed: int = 0  # model initialisation seed
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    dtype: Literal["auto", "bf16", "fp32"] = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU
    # fp8: float8 matmuls (torchao) for the transformer blocks' linear layers (and the routed experts'
    # grouped GEMMs with fp8_experts), inside bf16 autocast; router, embeddings, norms and output head
    # stay bf16/fp32.
    # Needs an NVIDIA GPU of compute capability >= 8.9 and torchao (in the train extra).
    precision: Literal["bf16", "fp8"] = "bf16"
    fp8_recipe: Literal["tensorwise", "rowwise"] = "tensorwise"  # torchao scaling of the dense linears
    # fp8 for the routed experts' grouped GEMMs too (rowwise). Off: on an H100 with torchao 0.18 they
    # were 2.1x slower than bf16 at the bench's MoE widths (see r1data/train/fp8.py).
    fp8_experts: bool = False
    # Several ranks (torchrun): ddp replicates the model on every rank; fsdp2 shards parameters, gradients
    # and AdamW state over the ranks (torch.distributed.fsdp.fully_shard per block + the root).
    # (fsdp2 also runs on a single process, torchrun or not: the same code path, nothing to shard.)
    parallel: Literal["ddp", "fsdp2"] = "ddp"
    # fsdp2: dtype of the all-gathered parameters the blocks compute with (master copy and AdamW state stay
    # float32, gradients are reduced in float32). auto: bf16 when the run computes in bf16 (train.dtype).
    fsdp_param_dtype: Literal["auto", "bf16", "fp32"] = "auto"
    compile: bool = False  # torch.compile each transformer block
    grad_checkpointing: bool = False  # recompute block activations in backward (less memory, ~30% more compute)
    log_every: int = 1  # write a metrics line every N steps
    eval_every: int = 50  # held-out loss and bits-per-byte every N steps (0 = only at the end)
    eval_batches: int = 4  # micro-batches per evaluation
    checkpoint_every: int = 50  # steps between checkpoints (0 = only at the end)
    keep_checkpoints: int = 2  # newest checkpoints to keep
    checkpoints: bool = True  # false: never write checkpoints (benchmarks); the run cannot be resumed
    threads: Optional[int] = None  # torch CPU threads; None = torch's default

    def __post_init__(self):
        _need(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        for name in ("log_every", "eval_batches", "keep_checkpoints"):
            _need(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every"):
            _need(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        if self.threads is not None:
            _need(self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        _need(not (self.precision == "fp8" and self.dtype == "fp32"), "precision",
              "fp8 runs inside bf16 autocast; set train.dtype to auto or bf16 (got fp32)")


@dataclass
class TrainConfig:
    """A whole training run. ``out_dir`` receives metrics.jsonl, checkpoints/, config.json and plots/."""

    name: str = "moe"
    out_dir: str = "out/train/moe"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    description: str = ""

    def __post_init__(self):
        _need(bool(self.name), "name", "must not be empty")
        _need(bool(self.out_dir), "out_dir", "must not be empty")
        _need(self.optim.warmup_steps <= self.train.steps, "optim.warmup_steps",
              f"must be <= train.steps ({self.train.steps}), got {self.optim.warmup_steps}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Building dataclasses from YAML data, with locations in every message.


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


_NO = object()


def _coerce(value: Any, tp) -> Any:
    """``value`` as type ``tp``, or ``_NO``. Numbers written like ``3e-4`` (a string in YAML 1.1) are accepted."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value if value in typing.get_args(tp) else _NO
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            out = _coerce(value, arg)
            if out is not _NO:
                return out
        return _NO
    if tp is type(None):
        return None if value is None else _NO
    if tp is bool:
        return value if isinstance(value, bool) else _NO
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return _NO
        return _NO
    if tp is str:
        return value if isinstance(value, str) else _NO
    return _NO


def build_section(cls, data: Any, src: YamlSource, path: tuple = ()):
    """Build dataclass ``cls`` from ``data``; raise ``ConfigError`` listing every problem with its location."""
    problems: list[str] = []
    obj = _build(cls, data, src, path, problems)
    if problems:
        raise ConfigError(problems)
    return obj


def _build(cls, data: Any, src: YamlSource, path: tuple, problems: list[str]):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{src.where(path)}: expected a mapping of keys, got {type(data).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    n_before = len(problems)
    for key in data:
        if key not in fields:
            problems.append(f"{src.where(path + (key,))}: unknown key{suggest(str(key), fields)} "
                            f"(known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        tp, value = hints[name], data[name]
        if dataclasses.is_dataclass(tp):
            sub = _build(tp, value, src, path + (name,), problems)
            if sub is not None:
                kwargs[name] = sub
            continue
        out = _coerce(value, tp)
        if out is _NO:
            problems.append(f"{src.where(path + (name,))}: expected {_type_name(tp)}, got {value!r}")
        else:
            kwargs[name] = out
    if len(problems) > n_before:
        return None
    try:
        return cls(**kwargs)
    except FieldError as e:
        dotted = tuple(e.field.split("."))
        problems.append(f"{src.where(path + dotted)}: {e.message}")
        return None


def parse_sets(src: YamlSource, sets: list[str]) -> YamlSource:
    """Apply ``--set a.b.c=value`` overrides (``r1data.dotted``); remembers which flag set what."""
    data = copy.deepcopy(src.data) if isinstance(src.data, dict) else {}
    out = YamlSource(data=data, file=src.file, lines=dict(src.lines), origins=dict(src.origins))
    for item in dotted.parse_sets(sets, "model.moe.top_k=2"):
        dotted.put(data, item.path, item.value)
        out.origins[item.path] = item.flag
    return out


def load_train_config(path: str | None = None, sets: list[str] | None = None, text: str | None = None) -> TrainConfig:
    """Read a training config (a file, or YAML ``text``), apply overrides, validate; ``ConfigError`` on problems."""
    src = load_yaml_text(text, file="<config>") if text is not None else load_yaml_file(path)
    if src.data is None:
        src.data = {}
    if not isinstance(src.data, dict):
        raise ConfigError(f"{src.file}: expected a mapping with model/data/optim/train sections")
    src = parse_sets(src, list(sets or []))
    return build_section(TrainConfig, src.data, src)


def describe(cfg: TrainConfig) -> str:
    """The resolved config as YAML (what ``--dry-run`` prints and the run directory keeps)."""
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


__all__ = [
    "MoEConfig", "ModelConfig", "DataConfig", "OptimConfig", "LoopConfig", "TrainConfig",
    "load_train_config", "build_section", "FieldError", "describe", "format_path",
]
