"""``r1data train plot RUN_DIR``: PNG curves from a run's ``metrics.jsonl`` (needs matplotlib, the ``stats`` extra)."""

from __future__ import annotations

from pathlib import Path

from r1data.errors import InputError
from r1data.train.metrics import read_metrics


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``loss.png``, ``throughput.png``, ``optim.png`` and (for MoE runs) ``experts.png``; return their paths."""
    run = Path(run_dir)
    if not (run / "metrics.jsonl").is_file():
        raise InputError(f"{run}: no metrics.jsonl here (is it a training run's out_dir?)")
    train, evals = read_metrics(run)
    if not train:
        raise InputError(f"{run}/metrics.jsonl: no training steps logged yet")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'r1data[stats]'") from None

    out = Path(out_dir) if out_dir else run / "plots"
    out.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in train]
    name = run.name
    written = []

    def save(fig, filename):
        fig.tight_layout()
        path = out / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # Loss: training loss per logged step, held-out loss, and bits per byte on a second axis.
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, [r["loss"] for r in train], label="train loss", lw=1.2)
    if evals:
        ax.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="held-out loss", lw=1.5)
        ax2 = ax.twinx()
        ax2.plot([e["step"] for e in evals], [e["eval_bpb"] for e in evals], "s--", color="tab:green",
                 label="held-out bits/byte", lw=1)
        ax2.set_ylabel("bits per byte")
        ax2.legend(loc="upper center")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"{name}: loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    save(fig, "loss.png")

    # Throughput and MFU.
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, [r["tokens_per_s"] for r in train], label="tokens/s (all ranks)")
    ax.set_xlabel("step")
    ax.set_ylabel("tokens/s")
    ax.grid(alpha=0.3)
    mfus = [r.get("mfu") for r in train]
    if any(m is not None for m in mfus):
        ax2 = ax.twinx()
        ax2.plot(steps, [100 * m if m is not None else float("nan") for m in mfus], color="tab:red", ls="--", lw=1,
                 label="MFU %")
        ax2.set_ylabel("MFU (% of bf16 peak)")
        ax2.legend(loc="lower right")
    ax.set_title(f"{name}: throughput")
    ax.legend(loc="upper left")
    save(fig, "throughput.png")

    # Learning rate and gradient norm.
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    a1.plot(steps, [r["lr"] for r in train])
    a1.set_ylabel("learning rate")
    a1.grid(alpha=0.3)
    a2.plot(steps, [r["grad_norm"] for r in train], color="tab:orange")
    a2.set_ylabel("grad norm (before clipping)")
    a2.set_yscale("log")
    a2.set_xlabel("step")
    a2.grid(alpha=0.3)
    a1.set_title(f"{name}: optimizer")
    save(fig, "optim.png")

    # Expert load balance per MoE layer.
    if any(r.get("expert_load_cv") for r in train):
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
        n_layers = len(next(r["expert_load_cv"] for r in train if r.get("expert_load_cv")))
        for layer in range(n_layers):
            xs = [r["step"] for r in train if r.get("expert_load_cv")]
            a1.plot(xs, [r["expert_load_cv"][layer] for r in train if r.get("expert_load_cv")], label=f"MoE layer {layer}")
            a2.plot(xs, [r["expert_load_max_vio"][layer] for r in train if r.get("expert_load_max_vio")])
        a1.set_ylabel("load CV (std/mean)")
        a2.set_ylabel("max violation (max/mean - 1)")
        a2.set_xlabel("step")
        for a in (a1, a2):
            a.grid(alpha=0.3)
        a1.legend(fontsize=8, ncol=min(4, n_layers))
        a1.set_title(f"{name}: expert load balance")
        save(fig, "experts.png")
    return written
