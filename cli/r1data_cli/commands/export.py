"""``r1data export``: a run's shards (or token shards) as Megatron .bin/.idx, datatrove .ds, JSONL(.zst) or a datasets folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from r1data_cli.output import user_errors

FORMATS = ("megatron", "datatrove", "jsonl", "jsonl.zst", "hf")


def export(
    shards: Annotated[list[str], typer.Argument(help="A pipeline output folder (its shards/), a shards folder, token shards from `r1data tokenize encode`, files or globs.", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (must not exist or be empty, unless --overwrite).", show_default=False)],
    tokenizer: Annotated[Optional[Path], typer.Option("--tokenizer", "-t", help="tokenizer.json for megatron/datatrove from text shards.", show_default=False)] = None,
    eos: Annotated[Optional[str], typer.Option("--eos", help="End-of-text token appended to each document (default: <|endoftext|>, </s>, [SEP], ... whichever exists).", show_default=False)] = None,
    name: Annotated[str, typer.Option("--name", help="File name prefix of megatron (NAME.bin/.idx) and datatrove (NAME.ds) outputs.")] = "data",
    token_size: Annotated[Optional[int], typer.Option("--token-size", help="Bytes per token id, 2 or 4 (default: 2 when the vocabulary fits).", show_default=False)] = None,
    loss: Annotated[bool, typer.Option("--loss", help="datatrove: also write NAME.ds.loss (every token trained on).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in --out.")] = False,
) -> None:
    """Write kept shards in the formats trainers read: Megatron-LM, datatrove/nanotron, JSONL(.zst), Hugging Face datasets.

    A pipeline's shards also load as they are: datasets.load_dataset("parquet", data_files="OUT/shards/*.parquet").
    """
    with user_errors():
        from r1data.export import export as run_export

        m = run_export(shards, out, fmt, tokenizer=tokenizer, eos=eos, name=name, token_size=token_size, loss=loss, overwrite=overwrite)
    tokens = f", {m['tokens']:,} tokens" if "tokens" in m else ""
    typer.echo(f"{out}: {fmt}, {m['documents']:,} documents{tokens} from {len(m['inputs'])} shard(s) in {m['seconds']:.1f} s "
               f"({', '.join(m['files'][:4])}{', ...' if len(m['files']) > 4 else ''})")
    if fmt == "megatron":
        typer.echo(f"  Megatron-LM: --data-path {m['data_path']}")


def register(app: typer.Typer) -> None:
    app.command("export", no_args_is_help=True)(export)
