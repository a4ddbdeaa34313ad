"""``r1data train CONFIG.yaml`` (the same as ``r1data train run CONFIG.yaml``) and ``r1data train plot RUN_DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from r1data_cli.output import user_errors


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it is not a subcommand, is the config of ``run``:
    ``r1data train CONFIG.yaml --set x=1`` means ``r1data train run CONFIG.yaml --set x=1``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


train_app = typer.Typer(
    name="train",
    cls=_RunByDefault,
    help="Train a Mixture-of-Experts on token shards: r1data train CONFIG.yaml; plot a run: r1data train plot RUN_DIR.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@train_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="Training config (YAML), e.g. pipelines/train-moe-tiny.yaml.", show_default=False)],
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a value: model.moe.top_k=2, train.steps=500, data.path=...", show_default=False),
    ] = None,
    resume: Annotated[
        str, typer.Option("--resume", help="auto: continue from the latest checkpoint in out_dir (if any); none; or a checkpoint folder.")
    ] = "none",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start again in an out_dir that already holds a run.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate, print the resolved config and model size, and exit.")] = False,
) -> None:
    """Train (or resume) the model a config describes. Under torchrun every process runs this and they form a DDP group."""
    with user_errors():
        from r1data.train.config import describe, load_train_config

        cfg = load_train_config(str(config), list(set_ or []))
        if dry_run:
            from r1data.train.loop import dry_run as describe_run

            typer.echo(describe(cfg), nl=False)
            typer.echo(describe_run(cfg))
            return
        from r1data.train.loop import train

        summary = train(cfg, resume=resume, overwrite=overwrite, log=lambda msg: typer.echo(msg, err=True))
    if summary.get("loss") is not None and summary.get("rank", 0) == 0:
        ev = summary.get("eval") or {}
        tail = f", held-out {ev['eval_loss']:.4f} ({ev['eval_bpb']:.3f} bits/byte)" if ev else ""
        typer.echo(f"{cfg.name}: step {summary['step']}, loss {summary['loss']:.4f}{tail}, "
                   f"{summary['tokens']:,} tokens in {summary['seconds']:.0f} s -> {cfg.out_dir}")


@train_app.command("plot")
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run's out_dir (holds metrics.jsonl).", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the PNGs (default RUN_DIR/plots).", show_default=False)] = None,
) -> None:
    """Write PNG curves (loss and bits/byte, throughput and MFU, lr and grad norm, expert load) of a run."""
    with user_errors():
        from r1data.train.plot import plot_run

        for path in plot_run(run_dir, out):
            typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
