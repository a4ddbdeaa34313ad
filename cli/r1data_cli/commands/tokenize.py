"""``r1data tokenize train`` (byte-level BPE on shards) and ``r1data tokenize encode`` (text shards -> token shards)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from r1data_cli.output import user_errors

tokenize_app = typer.Typer(
    name="tokenize",
    help="Train a BPE tokenizer on shards, and encode text shards into token shards for r1data train.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@tokenize_app.command("train")
def train(
    shards: Annotated[list[str], typer.Option("--shards", help="Text shards: a pipeline output folder, a shards/ folder, files or globs (repeatable).", show_default=False)],
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Vocabulary size, including the 256 byte symbols and <|endoftext|>.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for tokenizer.json and manifest.json.", show_default=False)],
    min_frequency: Annotated[int, typer.Option("--min-frequency", help="Merge only pairs seen at least this often.")] = 2,
    max_docs: Annotated[Optional[int], typer.Option("--max-docs", min=1, help="Train on the first N documents only.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing tokenizer.json.")] = False,
) -> None:
    """Train a byte-level BPE tokenizer (GPT-2 style) on the text of r1data shards."""
    with user_errors():
        from r1data.tokenize.bpe import train_bpe

        m = train_bpe(shards, vocab_size, out, min_frequency=min_frequency, max_docs=max_docs, overwrite=overwrite)
    typer.echo(f"{m['tokenizer']}: vocabulary {m['vocab_size']:,} (end-of-text id {m['special_tokens'].get('<|endoftext|>')}), "
               f"trained on {m['documents']:,} documents ({m['bytes'] / 2**20:.1f} MiB) in {m['seconds']:.1f} s")


@tokenize_app.command("encode")
def encode(
    shards: Annotated[list[str], typer.Argument(help="Text shards: a pipeline output folder, a shards/ folder, files or globs.", show_default=False)],
    tokenizer: Annotated[Path, typer.Option("--tokenizer", "-t", help="Any tokenizer.json (Hugging Face tokenizers format).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the token shards and manifest.json.", show_default=False)],
    eos: Annotated[Optional[str], typer.Option("--eos", help="End-of-text token appended to each document (default: <|endoftext|>, </s>, [SEP], ... whichever exists).", show_default=False)] = None,
    row_group_tokens: Annotated[int, typer.Option("--row-group-tokens", min=1, help="Tokens per Parquet row group (the trainer's read unit).")] = 262_144,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a finished output folder.")] = False,
) -> None:
    """Encode text shards into token shards (one per input, list<int32> tokens per document + end-of-text)."""
    with user_errors():
        from r1data.tokenize.encode import encode_shards

        def progress(src, info):
            typer.echo(f"  {src} -> {info['path']}: {info['rows']:,} documents, {info['tokens']:,} tokens"
                       + (" (kept from an earlier run)" if info.get("resumed") else ""), err=True)

        m = encode_shards(tokenizer, shards, out, eos=eos, row_group_tokens=row_group_tokens, overwrite=overwrite, on_file=progress)
    t = m["totals"]
    rate = t["tokens"] / m["seconds"] if m["seconds"] else 0
    typer.echo(f"{out}: {len(m['outputs'])} token shards, {t['rows']:,} documents, {t['tokens']:,} tokens "
               f"({t['bytes_per_token']} bytes/token) in {m['seconds']:.1f} s ({rate / 1e3:.0f}k tokens/s)")


def register(app: typer.Typer) -> None:
    app.add_typer(tokenize_app, name="tokenize")
