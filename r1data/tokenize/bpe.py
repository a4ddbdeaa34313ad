"""Train a byte-level BPE tokenizer (GPT-2 style pre-tokenisation) on the ``text`` of r1data shards."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from r1data.errors import ConfigError, InputError
from r1data.tokenize.textshards import find_parquet, iter_text_batches

EOS_TOKEN = "<|endoftext|>"
# What ``encode`` looks for when a foreign tokenizer.json is given and no --eos is named.
EOS_CANDIDATES = (EOS_TOKEN, "<|end_of_text|>", "</s>", "<eos>", "<|eos|>", "[SEP]", "<|im_end|>")


def train_bpe(
    inputs: list[str],
    vocab_size: int,
    out_dir: str | Path,
    *,
    min_frequency: int = 2,
    max_docs: int | None = None,
    special_tokens: tuple[str, ...] = (EOS_TOKEN,),
    overwrite: bool = False,
) -> dict:
    """Train on every document's text (or the first ``max_docs``); write ``tokenizer.json`` and
    ``manifest.json`` to ``out_dir`` and return the manifest.

    The 256 byte symbols are always in the vocabulary, so any text encodes without unknown tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from r1data.paths import sha256_file

    n_base = 256 + len(special_tokens)
    if vocab_size < n_base:
        raise ConfigError(f"--vocab-size: must be at least {n_base} (256 byte symbols + {len(special_tokens)} "
                          f"special token(s)), got {vocab_size}")
    if min_frequency < 1:
        raise ConfigError(f"--min-frequency: must be >= 1, got {min_frequency}")
    out = Path(out_dir)
    target = out / "tokenizer.json"
    if target.exists() and not overwrite:
        raise InputError(f"{target}: already exists; pass --overwrite to replace it")
    files = find_parquet(inputs)

    stats = {"documents": 0, "bytes": 0}

    def texts():
        for _, batch in iter_text_batches(files, ["text"]):
            for t in batch["text"]:
                if max_docs is not None and stats["documents"] >= max_docs:
                    return
                stats["documents"] += 1
                stats["bytes"] += len(t.encode("utf-8"))
                yield t

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    t0 = time.perf_counter()
    tok.train_from_iterator(texts(), trainer=trainer)
    seconds = time.perf_counter() - t0
    if stats["documents"] == 0:
        raise InputError(f"{', '.join(map(str, inputs))}: no documents to train on")

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".tokenizer.json.tmp-{os.getpid()}"
    tok.save(str(tmp))
    os.replace(tmp, target)
    import tokenizers

    manifest = {
        "kind": "r1data.tokenizer",
        "tokenizer": str(target),
        "sha256": sha256_file(target),
        "type": "byte-level BPE",
        "vocab_size": tok.get_vocab_size(with_added_tokens=True),
        "requested_vocab_size": vocab_size,
        "min_frequency": min_frequency,
        "special_tokens": {t: tok.token_to_id(t) for t in special_tokens},
        "eos_token": special_tokens[0] if special_tokens else None,
        "inputs": [{"path": str(f), "sha256": sha256_file(f)} for f in files],
        "documents": stats["documents"],
        "bytes": stats["bytes"],
        "seconds": round(seconds, 2),
        "tokenizers_version": tokenizers.__version__,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_tokenizer(path: str | Path):
    """Load any ``tokenizer.json`` (Hugging Face ``tokenizers`` format); ``InputError`` naming the file."""
    from tokenizers import Tokenizer

    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise InputError(f"{path}: no such tokenizer file (expected a tokenizer.json)")
    try:
        return Tokenizer.from_file(str(p)), p
    except Exception as e:
        raise InputError(f"{p}: not a tokenizers JSON file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def find_eos(tok, path: Path, eos: str | None) -> tuple[str, int]:
    """The end-of-text token appended to every document: ``eos`` if given, else the first known name found."""
    if eos is not None:
        i = tok.token_to_id(eos)
        if i is None:
            raise ConfigError(f"--eos: {eos!r} is not a token of {path}")
        return eos, i
    for name in EOS_CANDIDATES:
        i = tok.token_to_id(name)
        if i is not None:
            return name, i
    raise ConfigError(f"{path}: no end-of-text token found (looked for {', '.join(EOS_CANDIDATES)}); name one with --eos")
