"""``r1data models ...``: build, train, calibrate and inspect the quality-scoring models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from r1data_cli.output import user_errors

app = typer.Typer(
    name="models",
    help="Build, train, calibrate and inspect quality-scoring models (KenLM, fastText).",
    no_args_is_help=True,
)

Files = Annotated[list[str], typer.Option(show_default=False)]
CalSample = Annotated[
    Optional[list[str]],
    typer.Option(
        "--calibration-sample",
        help="Raw, unfiltered text to calibrate scores against (repeatable; .txt one doc per line, .jsonl, .parquet, folders).",
        show_default=False,
    ),
]


@app.command("build-kenlm")
def build_kenlm(
    corpus: Annotated[list[str], typer.Option("--corpus", help="Reference text (repeatable): .txt (one doc per line), .jsonl[.gz], .parquet or a folder.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Model folder, named after the model: models/kenlm/en -> en.arpa.bin, en.sp.model, en.card.json.", show_default=False)],
    order: Annotated[int, typer.Option("--order", min=2, max=6, help="n-gram order.")] = 5,
    vocab_size: Annotated[int, typer.Option("--vocab-size", min=100, help="SentencePiece pieces to train (a soft limit on small corpora).")] = 8000,
    sp_model: Annotated[Optional[Path], typer.Option("--sp-model", help="Use this SentencePiece model instead of training one.", show_default=False)] = None,
    prune: Annotated[Optional[str], typer.Option("--prune", help="lmplz --prune thresholds per order, e.g. '0 0 1'.", show_default=False)] = None,
    binary: Annotated[str, typer.Option("--binary", help="build_binary data structure: trie (small) or probing (fastest).")] = "trie",
    quantize: Annotated[int, typer.Option("--quantize", min=0, max=25, help="trie: bits for probabilities and backoffs (0 = none).")] = 8,
    memory: Annotated[str, typer.Option("--memory", help="lmplz -S: memory for sorting, e.g. 1G or 20%.")] = "1G",
    discount_fallback: Annotated[
        Optional[bool],
        typer.Option("--discount-fallback/--no-discount-fallback", help="lmplz --discount_fallback; default: only when the corpus is too small without it.", show_default=False),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="lines: normalise and score line by line; document: CCNet's exact document scoring.")] = "lines",
    calibration_sample: CalSample = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="SentencePiece threads (1 = reproducible).")] = 1,
    description: Annotated[str, typer.Option("--description", help="One line for the model card.")] = "",
) -> None:
    """Build a KenLM model the CCNet way: normalise, SentencePiece, lmplz, build_binary, model card."""
    from r1data.errors import ConfigError
    from r1data.quality.kenlm_model import build_kenlm as build

    with user_errors():
        if binary not in ("trie", "probing"):
            raise ConfigError(f"--binary {binary}: choose trie or probing")
        if mode not in ("lines", "document"):
            raise ConfigError(f"--mode {mode}: choose lines or document")
        prune_list = None
        if prune:
            try:
                prune_list = [int(x) for x in prune.replace(",", " ").split()]
            except ValueError:
                raise ConfigError(f"--prune {prune!r}: give integers, one per order, e.g. '0 0 1'") from None
        card = build(
            corpus, out, order=order, vocab_size=vocab_size, sp_model=sp_model, prune=prune_list, binary_type=binary,
            quantize_bits=quantize or None, memory=memory, discount_fallback=discount_fallback, mode=mode,
            calibration_sample=calibration_sample, threads=threads, description=description, log=lambda m: typer.echo(m, err=True),
        )  # fmt: skip
        _echo_summary(card, out / f"{out.name}.card.json")


def _parse_synthetic(items: list[str]) -> list[tuple[str, int]]:
    from r1data.errors import ConfigError
    from r1data.quality.synthetic import KINDS

    out = []
    for item in items:
        kind, _, n = item.partition("=")
        if kind not in KINDS or not n.isdigit():
            raise ConfigError(f"--synthetic {item!r}: expected KIND=COUNT with KIND one of {', '.join(KINDS)}")
        out.append((kind, int(n)))
    return out


@app.command("train-quality")
def train_quality(
    positive: Annotated[list[str], typer.Option("--positive", help="Good text (repeatable): .txt (one doc per line), .jsonl[.gz], .parquet or a folder.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Model folder, named after the model: models/quality/web -> web.ftz, web.card.json.", show_default=False)],
    negative: Annotated[Optional[list[str]], typer.Option("--negative", help="Junk text (repeatable).", show_default=False)] = None,
    synthetic: Annotated[
        Optional[list[str]],
        typer.Option("--synthetic", help="Add generated junk made from the positive text: KIND=COUNT, KIND in shuffled, link_list, keyword_stuffing, gibberish.", show_default=False),
    ] = None,
    synthetic_from: Annotated[Optional[list[str]], typer.Option("--synthetic-from", help="Text to make the generated junk from (default: --positive).", show_default=False)] = None,
    positive_label: Annotated[str, typer.Option("--positive-label", help="fastText label of good text (DCLM: __label__hq).")] = "__label__hq",
    negative_label: Annotated[str, typer.Option("--negative-label", help="fastText label of junk (DCLM: __label__cc).")] = "__label__cc",
    heldout: Annotated[float, typer.Option("--heldout", help="Fraction held out (by content hash) for precision/recall/ROC AUC.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the split, the shuffle, fastText and generated junk.")] = 0,
    dim: Annotated[int, typer.Option("--dim", min=2, help="Embedding size.")] = 32,
    epoch: Annotated[int, typer.Option("--epoch", min=1)] = 10,
    lr: Annotated[float, typer.Option("--lr")] = 0.2,
    word_ngrams: Annotated[int, typer.Option("--word-ngrams", min=1, help="2 = unigrams + bigrams (DCLM).")] = 2,
    min_count: Annotated[int, typer.Option("--min-count", min=1)] = 2,
    bucket: Annotated[int, typer.Option("--bucket", min=1000, help="Hash buckets for n-grams (model size).")] = 200_000,
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize", help="Write a quantised .ftz (small) instead of a .bin.")] = True,
    preprocess: Annotated[str, typer.Option("--preprocess", help="normalized (CCNet normalisation, punctuation split) or oneline (DCLM).")] = "normalized",
    calibration_sample: CalSample = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="fastText threads (1 = reproducible).")] = 1,
    description: Annotated[str, typer.Option("--description", help="One line for the model card.")] = "",
) -> None:
    """Train a DCLM-style fastText quality classifier (word bigrams) with a held-out evaluation in its card."""
    from r1data.errors import ConfigError
    from r1data.quality.fasttext_model import train_quality as train

    with user_errors():
        if preprocess not in ("normalized", "oneline"):
            raise ConfigError(f"--preprocess {preprocess}: choose normalized or oneline")
        synth = _parse_synthetic(synthetic or [])
        if not negative and not synth:
            raise ConfigError("give junk text with --negative, generated junk with --synthetic KIND=COUNT, or both")
        card = train(
            positive, list(negative or []), out, positive_label=positive_label, negative_label=negative_label, heldout=heldout,
            seed=seed, dim=dim, epoch=epoch, lr=lr, word_ngrams=word_ngrams, min_count=min_count, bucket=bucket, quantize=quantize,
            preprocess=preprocess, synthetic_negatives=synth or None, synthetic_from=synthetic_from, calibration_sample=calibration_sample,
            threads=threads, description=description, log=lambda m: typer.echo(m, err=True),
        )  # fmt: skip
        _echo_summary(card, out / f"{out.name}.card.json")


@app.command("calibrate")
def calibrate(
    model: Annotated[Path, typer.Argument(help="A KenLM (.arpa.bin/.arpa) or fastText (.bin/.ftz) model file.", show_default=False)],
    sample: Annotated[list[str], typer.Option("--sample", help="Raw, unfiltered text (repeatable): .txt (one doc per line), .jsonl, .parquet (r1data shards), folders.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the card here instead of <stem>.card.json beside the model.", show_default=False)] = None,
    sp_model: Annotated[Optional[Path], typer.Option("--sp-model", help="KenLM: SentencePiece model (default <stem>.sp.model beside it).", show_default=False)] = None,
    mode: Annotated[Optional[str], typer.Option("--mode", help="KenLM: lines or document (default: the card's, else lines).", show_default=False)] = None,
    positive_label: Annotated[Optional[str], typer.Option("--positive-label", help="fastText: the good label (default: the card's; DCLM: __label__hq).", show_default=False)] = None,
    preprocess: Annotated[Optional[str], typer.Option("--preprocess", help="fastText: normalized or oneline (default: the card's, else oneline).", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=2, help="Use at most this many sample documents.", show_default=False)] = None,
) -> None:
    """Compute a model's calibration table on raw text and store it in its model card.

    Calibrated scores read "better than this fraction of the sample", so the sample should be the text the scorer sees in production: extracted, language-identified, not yet quality-filtered (e.g. the shards of a run whose recipe stops before the quality stages). A model without a card (CCNet's, DCLM's) gets one beside it, or at --out.
    """
    from r1data.quality.calibrate import calibrate_model

    with user_errors():
        card, path = calibrate_model(
            model, sample, out=out, sp_model=sp_model, mode=mode, positive_label=positive_label, preprocess=preprocess, limit=limit
        )
        cal = card["calibration"]
        typer.echo(f"calibrated {model} on {cal['n_documents']:,} documents ({cal['skipped_documents']} unscorable) -> {path}")
        from r1data.quality.calibration import Calibration

        summ = Calibration.from_dict(cal).summary()
        typer.echo("raw score at percentiles: " + ", ".join(f"{k} {v}" for k, v in summ.items()))


@app.command("info")
def info(
    model: Annotated[Path, typer.Argument(help="A model file or its folder.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Show a model's card (files, training data, held-out metrics, calibration) and check its files' sha256."""
    from r1data.quality.calibrate import model_info

    with user_errors():
        card, card_path, checks = model_info(model)
    if as_json:
        typer.echo(json.dumps(card, indent=1, ensure_ascii=False))
        return
    from r1data.quality.cards import render_markdown

    typer.echo(f"card: {card_path}")
    for line in checks:
        typer.echo(line)
    typer.echo(render_markdown(card).rstrip())
    if any(line.startswith("MISMATCH") for line in checks):
        raise typer.Exit(1)


def _echo_summary(card: dict, card_path: Path) -> None:
    files = ", ".join(f"{f['path']} ({f['bytes'] / 2**20:.2f} MiB)" for f in card["files"].values())
    typer.echo(f"model: {files}")
    ev = card.get("evaluation")
    if ev:
        typer.echo(f"held-out: precision {ev['precision']}, recall {ev['recall']}, F1 {ev['f1']}, ROC AUC {ev['roc_auc']}")
    cal = card.get("calibration")
    typer.echo(f"calibration: {cal['n_documents']:,} documents" if cal else "calibration: none (run `r1data models calibrate`)")
    typer.echo(f"card: {card_path} (+ .md)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
