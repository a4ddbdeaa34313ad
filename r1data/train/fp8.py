"""Float8 training (``train.precision: fp8``) through torchao, for Hopper/Ada GPUs.

What runs in FP8 (e4m3 operands, dynamic scales, bf16 outputs; master weights and optimizer state
unchanged):

- every ``nn.Linear`` inside the transformer blocks — attention ``wqkv``/``wo``, dense SwiGLU
  ``w13``/``w2`` and the MoE shared experts — swapped for torchao's ``Float8Linear`` with the
  ``train.fp8_recipe`` scaling (``tensorwise``: one scale per tensor, cuBLAS; ``rowwise``: one per
  row, CUTLASS, power-of-two scales);
- with ``train.fp8_experts: true`` only, the routed experts' two grouped GEMMs, through torchao's
  ``_to_fp8_rowwise_then_scaled_grouped_mm`` (rowwise scales whatever ``fp8_recipe`` says: torchao has
  no tensorwise grouped GEMM). Off by default: on an H100 (torch 2.11, torchao 0.18) the FP8 grouped
  experts of the bench's MoE layer (8 experts of hidden 1152, 16,384 tokens, forward + backward) took
  5.49 ms against 2.57 ms in bf16, and the whole MoE trained at 0.76x the bf16 tokens/s with them
  (``bench/NOTES-train-gpu.md``, run 5): the per-row quantisation costs more than the FP8 GEMM saves
  at these widths. Its kernel
  needs every expert's group of tokens to be a multiple of 16 rows, so ``RoutedExperts`` pads each
  group with zero rows (``forward_grouped_fp8``); the experts need the grouped path
  (``model.moe.impl: grouped`` or ``auto`` on Hopper), a loop over experts stays bf16.

What stays in bf16 (or float32): the token embedding, the output head, the router (float32), the
norms, attention's softmax(QK^T)V (SDPA) and every linear whose sides are not multiples of 16.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from r1data.errors import ConfigError

MIN_CAPABILITY = (8, 9)  # FP8 tensor cores: Ada (8.9) and Hopper (9.0) onwards


def check_fp8_supported(device: torch.device) -> None:
    """Raise a one-line ``ConfigError`` when ``train.precision: fp8`` cannot run on ``device``."""
    if device.type != "cuda":
        raise ConfigError(f"train.precision: fp8 needs an NVIDIA GPU of compute capability 8.9 or newer "
                          f"(Ada, Hopper); this run is on {device.type}; use train.precision: bf16")
    cap = torch.cuda.get_device_capability(device)
    if cap < MIN_CAPABILITY:
        raise ConfigError(f"train.precision: fp8 needs compute capability 8.9 or newer (Ada, Hopper); "
                          f"{torch.cuda.get_device_name(device)} is {cap[0]}.{cap[1]}; use train.precision: bf16")
    _import_torchao()


def _import_torchao():
    try:
        import torchao.float8  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"train.precision: fp8 needs torchao (pip install torchao, or 'r1data[train]'); "
                          f"it could not be imported ({e})") from None


def fp8_linear_filter(module: nn.Module, fqn: str) -> bool:
    """Which ``nn.Linear`` become ``Float8Linear``: those inside the blocks (``layers.N.``) except the
    router's gate, with both sides multiples of 16 (the FP8 GEMM's alignment). Embedding and output
    head are outside ``layers`` and stay bf16."""
    if not isinstance(module, nn.Linear) or not fqn.startswith("layers."):
        return False
    if ".router." in f".{fqn}." or fqn.endswith(".router.gate"):
        return False
    return module.in_features % 16 == 0 and module.out_features % 16 == 0


def convert_to_fp8(model: nn.Module, recipe: str, emulate: bool = False, experts: bool = True) -> dict[str, list[str]]:
    """Swap the block linears for ``Float8Linear`` and, with ``experts``, switch grouped experts to the
    FP8 grouped GEMM.

    Returns the qualified names converted (``linear``) and the routed-expert modules now in FP8
    (``experts``; empty when ``experts`` is false). ``emulate`` (tests only) makes torchao compute the FP8 matmuls in high precision so
    the conversion can run on a CPU.
    """
    _import_torchao()
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    config = Float8LinearConfig.from_recipe_name(recipe)
    if emulate:
        import dataclasses

        config = dataclasses.replace(config, emulate=True)
    converted: list[str] = []

    def keep(module: nn.Module, fqn: str) -> bool:
        ok = fp8_linear_filter(module, fqn)
        if ok:
            converted.append(fqn)
        return ok

    convert_to_float8_training(model, module_filter_fn=keep, config=config)
    fp8_experts: list[str] = []
    for name, module in model.named_modules():
        if not experts:
            break
        if type(module).__name__ == "RoutedExperts" and module.dim % 16 == 0 and module.hidden % 16 == 0:
            module.fp8 = True
            fp8_experts.append(name)
    return {"linear": converted, "experts": fp8_experts}
