"""What ``model.doc_mask`` costs on the CPU: the tiny preset's model, training steps with and without it.

    python bench/doc_mask_cpu.py                    # 4 alternated rounds of 10 steps, one thread
    python bench/doc_mask_cpu.py --rounds 6 --steps 20 --threads 2

The model is ``pipelines/train-moe-tiny.yaml``'s (width 128, 4 layers, 4 heads, 8 experts top-2 +
1 shared, vocab 4096); a batch is 8 windows of 256 tokens in which a document ends every 40 tokens
(so the mask has real work: 6-7 documents per window). Each step is forward + backward + AdamW,
as the trainer does on the CPU (float32). Off and on alternate round by round from the same
initial weights; the figure is the median tokens/s over the rounds, per setting. The mask is the
SDPA boolean mask (``doc_mask_kernel: sdpa``): FlexAttention has no backward on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=4, help="alternated rounds per setting")
    p.add_argument("--steps", type=int, default=10, help="timed steps per round (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--doc-every", type=int, default=40, help="tokens per packed document")
    args = p.parse_args()

    import torch

    from r1data.train.config import ModelConfig, MoEConfig
    from r1data.train.model import Transformer

    torch.set_num_threads(args.threads)
    B, S, V, sep = 8, 256, 4096, 0
    cfg = dict(dim=128, n_layers=4, n_heads=4, ffn="moe", ffn_hidden=128,
               moe=MoEConfig(num_experts=8, top_k=2, num_shared_experts=1, score_func="sigmoid"))
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, V, (B, S + 1), generator=g)
    x[:, args.doc_every - 1 :: args.doc_every] = sep  # a document ends every doc_every tokens
    inputs, targets = x[:, :-1], x[:, 1:]
    torch.manual_seed(0)
    init = Transformer(ModelConfig(**cfg), V, S).state_dict()

    def run(masked: bool) -> float:
        model = Transformer(ModelConfig(**cfg, doc_mask=masked), V, S)
        model.load_state_dict(init)
        model.doc_sep = sep
        model.set_expert_impl("auto", torch.device("cpu"))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step():
            loss, _ = model(inputs, targets)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(2):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        return args.steps * B * S / (time.perf_counter() - t0)

    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.rounds):
        for masked in ((False, True) if r % 2 == 0 else (True, False)):
            rates[masked].append(run(masked))
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {B} x {S}, a document every {args.doc_every} tokens, "
          f"{args.rounds} rounds of {args.steps} steps")
    print(f"doc_mask off: {off:,.0f} tokens/s   on (SDPA mask): {on:,.0f} tokens/s   on/off {on / off:.3f}")
    print("rounds, off:", " ".join(f"{v:,.0f}" for v in rates[False]), "| on:", " ".join(f"{v:,.0f}" for v in rates[True]))


if __name__ == "__main__":
    main()
