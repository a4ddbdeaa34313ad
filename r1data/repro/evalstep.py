"""Score a finished training run's final checkpoint on several evaluation sets.

Each set (a folder of token shards) is read once from its start, unshuffled, in windows of the
training sequence length, up to ``max_tokens`` predicted tokens: the same windows for every model
that shares the tokenizer. Bits per byte = loss (nats/token) * tokens / (UTF-8 bytes * ln 2), with
tokens and bytes of the documents read.
"""

from __future__ import annotations

import math
from pathlib import Path


def evaluate_sets(train_dir: Path, sets: dict[str, Path], *, max_tokens: int | None = None, batch_size: int = 4) -> dict[str, dict]:
    import torch

    from r1data.train import checkpoint as ckpt
    from r1data.train.config import load_train_config
    from r1data.train.data import BatchLoader, PackedStream, open_token_shards
    from r1data.train.loop import resolve_vocab
    from r1data.train.model import Transformer

    cfg = load_train_config(str(train_dir / "config.yaml"), [])
    last = ckpt.latest_checkpoint(Path(cfg.out_dir))
    if last is None or not (last / "model.pt").is_file():
        from r1data.errors import FatalError

        raise FatalError(f"{train_dir}: no checkpoint with model.pt to evaluate (train.checkpoints must stay on)")
    vocab = resolve_vocab(cfg, open_token_shards(cfg.data.path, "data.path"))
    import contextlib

    device = torch.device("cuda" if torch.cuda.is_available() and cfg.train.device in ("auto", "cuda") else "cpu")
    use_bf16 = cfg.train.dtype == "bf16" or (cfg.train.dtype == "auto" and device.type == "cuda")  # as the trainer's evaluation
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
    model = Transformer(cfg.model, vocab, cfg.data.seq_len).to(device)
    model.load_state_dict(torch.load(last / "model.pt", map_location=device, weights_only=True))
    model.doc_sep = open_token_shards(cfg.data.path, "data.path").eos_id  # for model.doc_mask, as in training
    model.eval()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    out: dict[str, dict] = {}

    def score(shards, bs: int):
        stream = PackedStream(shards, "all", 0.0, shuffle=False, seed=0, repeat=False, vocab_size=vocab)
        loader = BatchLoader(stream, bs, cfg.data.seq_len)
        loss_sum, n = 0.0, 0
        with torch.no_grad():
            while max_tokens is None or n < max_tokens:
                try:
                    x, y = loader.next(device)
                except EOFError:
                    break
                with autocast():
                    loss, _ = model(x, y, reduction="sum")
                loss_sum += float(loss)
                n += y.numel()
        return stream, loss_sum, n

    for name, path in sets.items():
        shards = open_token_shards(path, f"eval set {name}")
        stream, loss_sum, n = score(shards, batch_size)
        if n == 0:  # a set smaller than one batch: one window at a time
            stream, loss_sum, n = score(shards, 1)
        if n == 0:
            out[name] = {"loss": None, "tokens": 0, "bytes": stream.bytes_read, "bits_per_byte": None}
            continue
        mean = loss_sum / n
        tpb = stream.tokens_read / stream.bytes_read if stream.bytes_read else float("nan")
        out[name] = {"loss": mean, "tokens": n, "bytes": round(n / tpb) if tpb == tpb and tpb else None,
                     "bits_per_byte": mean * tpb / math.log(2), "checkpoint": str(last), "device": device.type}
    return out
