"""Per-step metrics as JSON lines, MFU, and peak FLOP rates.

Each line of ``OUT_DIR/metrics.jsonl`` is one object. Training lines (``"kind": "train"``)::

    step, loss, lr, grad_norm, tokens (seen so far, all ranks), tokens_per_s (all ranks), step_s,
    mfu (fraction of the accelerator's bf16 peak, counted on active parameters with full attention
    FLOPs as torchtitan does; null off GPU), mfu_causal (the same with the causal half of attention),
    aux_loss, z_loss (weighted, summed over MoE layers; 0 when off),
    expert_load_cv, expert_load_max_vio (one number per MoE layer), memory_gb (CUDA peak)

Evaluation lines (``"kind": "eval"``): step, eval_loss, eval_bpb (bits per UTF-8 byte), eval_tokens.
A resumed run appends to the same file; readers keep the last line for each (kind, step).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' datasheets, matched on the device name.
PEAK_BF16 = (
    ("H200", 989e12),
    ("H100", 989e12),  # SXM; the PCIe card's is 756e12
    ("H800", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("A10G", 125e12),
    ("RTX 4090", 165e12),
)


def peak_flops(device) -> float | None:
    """The device's bf16 peak in FLOP/s, or None when unknown (CPU)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "H100" in name and "PCIe" in name:
        return 756e12
    for key, flops in PEAK_BF16:
        if key in name:
            return flops
    return None


def mfu(tokens_per_s_per_device: float, flops_per_token: float, peak: float | None) -> float | None:
    if not peak:
        return None
    return tokens_per_s_per_device * flops_per_token / peak


class MetricsWriter:
    """Appends JSON lines (rank 0 only; other ranks pass ``enabled=False``)."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled
        self._f = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", buffering=1)

    def write(self, record: dict) -> None:
        if self._f is not None:
            self._f.write(json.dumps(_clean(record)) + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def read_metrics(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(train lines, eval lines) of a run, one per step (the last written wins after a resume)."""
    path = Path(run_dir) / "metrics.jsonl"
    train: dict[int, dict] = {}
    evals: dict[int, dict] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
            (evals if rec.get("kind") == "eval" else train)[rec["step"]] = rec
    return [train[k] for k in sorted(train)], [evals[k] for k in sorted(evals)]
