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
    seeds: Annotated[Optional[int], typer.Option("--seeds", min=1, help="Train each side N times (model init and data order seeds); report mean ± std.", show_default=False)] = None,
    sweep: Annotated[Optional[str], typer.Option("--sweep", help="One training per value: filter_threshold=0.5,0.7,0.9 or dedup_window=1,10,0 (or sources.NAME.KNOB=...).", show_default=False)] = None,
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
        if seeds is not None:
            spec = spec.model_copy(update={"seeds": seeds})
        if sweep is not None:
            from r1data.repro.run import parse_sweep, run_sweep

            parse_sweep(spec, sweep)  # refuse a bad --sweep before any work
            if until is not None:
                raise ConfigError("--sweep runs every step of each value; leave out --until")
        console_logging()
        typer.echo(f"r1data repro {spec.name} (preset {chosen}) -> {spec.out_dir}", err=True)
        if sweep is not None:
            data = run_sweep(spec, sweep, preset=chosen, recipe_path=str(recipe), log=lambda m: typer.echo(m, err=True),
                             force=set(force or []), dry_run=dry_run, workers=workers)
    if sweep is not None:
        _print_sweep(data, Path(spec.out_dir), dry_run)
        return
    with user_errors():
        results = run_repro(
            spec, preset=chosen, recipe_path=str(recipe), log=lambda m: typer.echo(m, err=True), force=set(force or []),
            until=until, dry_run=dry_run, workers=workers,
        )
    if dry_run:
        return
    import json

    report = Path(spec.out_dir) / "report" / "report.json"
    if report.is_file() and (until is None or until == "report"):
        data = json.loads(report.read_text())
        ab = data.get("ablation")
        if ab:
            typer.echo(
                f"held-out loss: raw {ab['heldout_loss_raw']:.4f}, processed {ab['heldout_loss_processed']:.4f} nats/token "
                f"(raw - processed = {ab['difference_raw_minus_processed']:+.4f}); "
                f"bits/byte {ab['heldout_bpb_raw']:.4f} vs {ab['heldout_bpb_processed']:.4f}"
            )
        for name, e in (data.get("eval_sets") or {}).items():
            typer.echo(f"  {name:16s} {_side(e, 'processed')} processed, {_side(e, 'raw')} raw nats/token"
                       + (f", raw - processed {e['difference_raw_minus_processed']:+.4f}" if "difference_raw_minus_processed" in e else "")
                       + ({True: " (beyond 2 SE)", False: " (within 2 SE)"}.get(e.get("exceeds_2se"), "")))
        typer.echo(f"report: {report.parent / 'index.html'}")
    reused = sum(r.reused for r in results.values())
    typer.echo(f"{len(results)} steps, {reused} reused")


def _side(e: dict, k: str) -> str:
    m, sd = e.get(k), e.get(f"{k}_std")
    return "–" if m is None else (f"{m:.4f} ± {sd:.4f}" if sd is not None else f"{m:.4f}")


def _print_sweep(data: dict, out: Path, dry_run: bool) -> None:
    for p in data["points"]:
        ran = sum(not s["reused"] for s in p["steps"].values())
        sets = ", ".join(f"{n} {_side(e, 'processed')} ({e.get('bits_per_byte', {}).get('processed', float('nan')):.4f} bits/byte)"
                         for n, e in p["eval_sets"].items() if n in ("heldout", "neutral"))
        typer.echo(f"{data['knob']}={p['value']}: {len(p['steps'])} steps, {len(p['steps']) - ran} reused" + (f"; {sets}" if sets else ""))
    if not dry_run:
        typer.echo(f"sweep report: {out / 'sweep' / data['knob'] / 'report' / 'index.html'}")


def register(app: typer.Typer) -> None:
    app.command("repro")(repro)
