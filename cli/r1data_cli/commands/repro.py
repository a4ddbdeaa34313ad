"""``r1data repro``: the whole path from raw data to a trained model and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from r1data_cli.output import user_errors

STEP_KINDS = ("source", "raw", "mix", "heldout", "tokenizer", "tokens", "train", "report")


def repro(
    recipe: Annotated[Path, typer.Argument(help="End-to-end recipe, e.g. pipelines/repro.yaml.", show_default=False)],
    preset: Annotated[Optional[str], typer.Option("--preset", help="A preset of the recipe (tiny, gpu, ...); default: the recipe's.", show_default=False)] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a value: mix.holdout=0.1, train.set=[train.steps=50], ...", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option("--until", help=f"Stop after this kind of step: {', '.join(STEP_KINDS)}.", show_default=False)] = None,
    force: Annotated[Optional[list[str]], typer.Option("--force", help="Redo a step even if its result is current (e.g. train:raw).", show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Workers of each pipeline run (default: all cores).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the steps, which would run and which are reused, and exit.")] = False,
) -> None:
    """Run the recipes, mix, tokenize, train (and the raw-text ablation), and write the report; reruns reuse finished steps."""
    from r1data.errors import ConfigError

    with user_errors():
        if until is not None and until not in STEP_KINDS:
            raise ConfigError(f"--until {until}: one of {', '.join(STEP_KINDS)}")
        from r1data.repro.run import run_repro
        from r1data.repro.spec import load_repro
        from r1data.run.executor import console_logging

        spec, chosen, _ = load_repro(recipe, preset, list(set_ or []))
        console_logging()
        typer.echo(f"r1data repro {spec.name} (preset {chosen}) -> {spec.out_dir}", err=True)
        results = run_repro(
            spec, preset=chosen, recipe_path=str(recipe), log=lambda m: typer.echo(m, err=True), force=set(force or []),
            until=until, dry_run=dry_run, workers=workers,
        )
    if dry_run:
        return
    import json

    report = Path(spec.out_dir) / "report" / "report.json"
    if report.is_file() and (until is None or until == "report"):
        ab = json.loads(report.read_text()).get("ablation")
        if ab:
            typer.echo(
                f"held-out loss: raw {ab['heldout_loss_raw']:.4f}, processed {ab['heldout_loss_processed']:.4f} nats/token "
                f"(raw - processed = {ab['difference_raw_minus_processed']:+.4f}); "
                f"bits/byte {ab['heldout_bpb_raw']:.4f} vs {ab['heldout_bpb_processed']:.4f}"
            )
        typer.echo(f"report: {report.parent / 'index.html'}")
    reused = sum(r.reused for r in results.values())
    typer.echo(f"{len(results)} steps, {reused} reused")


def register(app: typer.Typer) -> None:
    app.command("repro")(repro)
