"""KenLM + SentencePiece perplexity, scored as CCNet does, and built with the real ``lmplz``.

Scoring (``KenLMScorer``): text is normalised (``r1data.quality.normalize``), cut into
SentencePiece pieces and scored by a KenLM n-gram model. A document's perplexity is CCNet's::

    ppl = 10 ** (-sum(log10 P(line)) / sum(pieces(line) + 1))      # +1: the </s> of each line

``mode="lines"`` (the default) normalises and scores each line as its own sentence, which is what
CCNet's ``DocLM`` is written to do. ``mode="document"`` reproduces what CCNet's pipeline actually
computed for its published cut-offs (its SentencePiece step normalises the whole document, and
normalisation deletes newlines, so the document is scored as one glued line): use it with CCNet's
own models when comparing against CCNet's percentiles.

Building (``build_kenlm``): normalise the corpus line by line, train (or reuse) a SentencePiece
model, encode, estimate with ``lmplz``, binarise with ``build_binary``, write the model card.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from r1data.errors import ConfigError
from r1data.quality.normalize import normalize, normalize_lines, warm_up

Mode = Literal["lines", "document"]


def sp_model_for(model: str | Path) -> Path:
    """The SentencePiece model that goes with a KenLM file: ``<folder>/<stem>.sp.model`` (CCNet's naming)."""
    from r1data.quality.cards import model_stem

    p = Path(model)
    return p.with_name(f"{model_stem(p)}.sp.model")


class KenLMScorer:
    """Perplexity of documents under a KenLM model with its SentencePiece model.

    >>> s = KenLMScorer("models/kenlm/en/en.arpa.bin")          # finds en.sp.model beside it
    >>> s.perplexities(["The cat sat on the mat.", ""])          # [213.4, None]
    """

    def __init__(self, model: str | Path, sp_model: str | Path | None = None, *, mode: Mode = "lines", max_chars: int = 100_000):
        import kenlm
        import sentencepiece

        self.model_path = Path(model)
        self.sp_path = Path(sp_model) if sp_model else sp_model_for(model)
        self.lm = kenlm.Model(str(self.model_path))
        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(self.sp_path))
        self.mode = mode
        self.max_chars = max_chars
        warm_up(keep_newlines=True)

    def encode(self, lines: list[str]) -> tuple[list[str], list[int]]:
        """Each line's pieces joined by spaces, and how many pieces each line has.

        One C++ call for the whole batch, on one thread (the executor already runs one task per
        core). SentencePiece is ~60 % of the cost of scoring; a per-word cache was tried and is not
        faster (dictionary lookups cost as much as the C++ encoder) and is not exact (the encoder
        breaks ties between equal-probability segmentations by floating-point rounding of the
        whole line's score)."""
        pieces = self.sp.encode(lines, out_type=str, num_threads=1)
        # map() with C callables: no Python frame per line (this loop is 15 % of the stage otherwise)
        return list(map(" ".join, pieces)), list(map(len, pieces))

    def log_scores(self, texts: list[str]) -> list[tuple[float, int]]:
        """``(sum of log10 probabilities, token count)`` per text; ``(0, 0)`` when nothing is left to score."""
        score = self.lm.score
        if self.mode == "document":
            joined, counts = self.encode([normalize(t[: self.max_chars]) for t in texts])
            return [(score(j), n + 1) if n else (0.0, 0) for j, n in zip(joined, counts)]
        per_doc = [normalize_lines(t[: self.max_chars]) for t in texts]
        joined, counts = self.encode([line for lines in per_doc for line in lines])
        out = []
        i = 0
        for lines in per_doc:
            k = i + len(lines)
            js, ns = joined[i:k], counts[i:k]
            if 0 in ns:  # a line of characters SentencePiece deletes has nothing to score
                js = [j for j, n in zip(js, ns) if n]
                ns = [n for n in ns if n]
            out.append((sum(map(score, js)), sum(ns) + len(ns)))  # + one </s> per line
            i = k
        return out

    def perplexities(self, texts: list[str]) -> list[float | None]:
        """CCNet's document perplexity per text, or None for a text with nothing to score."""
        return [10.0 ** (-s / n) if n else None for s, n in self.log_scores(texts)]


# ------------------------------------------------------------------------------------------------
# building


def find_tool(name: str) -> str:
    """Path of ``lmplz``/``build_binary``: $R1DATA_KENLM_BIN, this Python's bin folder, then PATH."""
    candidates = []
    if os.environ.get("R1DATA_KENLM_BIN"):
        candidates.append(Path(os.environ["R1DATA_KENLM_BIN"]) / name)
    candidates.append(Path(sys.executable).parent / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise ConfigError(
        f"{name} not found (looked in $R1DATA_KENLM_BIN, {Path(sys.executable).parent} and PATH): "
        "run scripts/setup.sh (scripts/setup.d/20-kenlm.sh builds it from the kenlm sdist)"
    )


def _run(cmd: list[str], log: list[str], stdin=None, stdout=None) -> subprocess.CompletedProcess:
    log.append(" ".join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd, stdin=stdin, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _arpa_counts(arpa: Path) -> dict[str, int]:
    counts = {}
    with open(arpa, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram "):
                n, c = line[6:].split("=")
                counts[n.strip()] = int(c)
            elif line.startswith("\\1-grams"):
                break
    return counts


def train_sentencepiece(lines_file: Path, prefix: Path, vocab_size: int, character_coverage: float, threads: int) -> list[str]:
    """Train a unigram SentencePiece model on normalised lines (deterministic with one thread).

    ``prefix`` must be in the folder of ``lines_file``."""
    import sentencepiece as spm

    # The model file records its trainer's input and prefix: relative names, from inside their
    # folder, keep a temporary directory's random name out of it (so rebuilds are byte-identical).
    args = dict(
        input=lines_file.name,
        model_prefix=prefix.name,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=character_coverage,
        hard_vocab_limit=False,  # a small corpus may not support the full vocabulary
        input_sentence_size=2_000_000,
        shuffle_input_sentence=True,
        num_threads=threads,
        minloglevel=2,
    )
    cwd = os.getcwd()
    os.chdir(lines_file.parent)
    try:
        spm.SentencePieceTrainer.train(**args)
    finally:
        os.chdir(cwd)
    return ["sentencepiece.SentencePieceTrainer.train(" + ", ".join(f"{k}={v!r}" for k, v in args.items() if k not in ("input", "model_prefix")) + ")"]


def build_kenlm(
    corpus: list[str],
    out_dir: str | Path,
    *,
    order: int = 5,
    vocab_size: int = 8000,
    sp_model: str | Path | None = None,
    prune: list[int] | None = None,
    binary_type: Literal["probing", "trie"] = "trie",
    quantize_bits: int | None = 8,
    memory: str = "1G",
    discount_fallback: bool | None = None,
    character_coverage: float = 0.9995,
    calibration_sample: list[str] | None = None,
    mode: Mode = "lines",
    threads: int = 1,
    description: str = "",
    keep_arpa: bool = False,
    log=print,
) -> dict[str, Any]:
    """Build ``<out>/<name>.arpa.bin`` + ``<name>.sp.model`` + the model card; returns the card.

    ``discount_fallback=None`` runs ``lmplz`` without it and retries with it when lmplz says the
    corpus is too small to estimate Kneser-Ney discounts (the card records which ran)."""
    from r1data.quality.cards import card_path_for, file_entry, versions, write_card
    from r1data.quality.corpus import Corpus

    if not 2 <= order <= 6:
        raise ConfigError(f"--order {order}: KenLM here is compiled for orders 2..6")
    out = Path(out_dir)
    name = out.name
    if not name or name in (".", ".."):
        raise ConfigError(f"--out {out_dir}: give a folder named after the model, e.g. models/kenlm/en")
    lmplz, build_binary = find_tool("lmplz"), find_tool("build_binary")
    src = Corpus(corpus, "corpus")
    out.mkdir(parents=True, exist_ok=True)
    lm_path, sp_path = out / f"{name}.arpa.bin", out / f"{name}.sp.model"
    commands: list[str] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="r1data-kenlm-") as tmpd:
        tmp = Path(tmpd)
        norm_file = tmp / "normalized.txt"
        n_docs = n_lines = 0
        with open(norm_file, "w", encoding="utf-8") as f:
            for text in src:
                n_docs += 1
                lines = normalize_lines(text) if mode == "lines" else [normalize(text)]
                for line in lines:
                    if line:
                        f.write(line + "\n")
                        n_lines += 1
        if n_lines == 0:
            raise ConfigError(f"corpus {', '.join(map(str, src.files))}: no text left after normalisation")
        log(f"normalised {n_docs:,} documents into {n_lines:,} lines")
        if sp_model:
            sp_src = Path(sp_model)
            if not sp_src.is_file():
                raise ConfigError(f"--sp-model: file not found: {sp_src}")
            if sp_src.resolve() != sp_path.resolve():
                shutil.copyfile(sp_src, sp_path)
            commands.append(f"# SentencePiece model taken from {sp_src}")
        else:
            log(f"training SentencePiece (unigram, {vocab_size} pieces)")
            commands += train_sentencepiece(norm_file, tmp / "sp", vocab_size, character_coverage, threads)
            shutil.move(str(tmp / "sp.model"), sp_path)
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
        pieces_file = tmp / "pieces.txt"
        n_tokens = 0
        with open(norm_file, encoding="utf-8") as fin, open(pieces_file, "w", encoding="utf-8") as fout:
            batch: list[str] = []

            def flush():
                nonlocal n_tokens
                for p in sp.encode(batch, out_type=str, num_threads=threads):
                    n_tokens += len(p)
                    fout.write(" ".join(p) + "\n")
                batch.clear()

            for line in fin:
                batch.append(line.rstrip("\n"))
                if len(batch) >= 4096:
                    flush()
            flush()
        log(f"encoded {n_tokens:,} pieces; estimating a {order}-gram model with lmplz")
        arpa = tmp / f"{name}.arpa"
        base = [lmplz, "-o", str(order), "-S", memory, "-T", str(tmp), "--text", str(pieces_file), "--arpa", str(arpa)]
        if prune:
            base += ["--prune", *map(str, prune)]
        used_fallback = bool(discount_fallback)
        res = _run(base + (["--discount_fallback"] if used_fallback else []), commands)
        if res.returncode != 0 and discount_fallback is None and "discount_fallback" in res.stderr:
            log("lmplz: corpus too small for Kneser-Ney discount estimation; rerunning with --discount_fallback")
            used_fallback = True
            res = _run(base + ["--discount_fallback"], commands)
        if res.returncode != 0:
            tail = " ".join(res.stderr.strip().splitlines()[-3:])
            raise ConfigError(f"lmplz failed (exit {res.returncode}): {tail}")
        counts = _arpa_counts(arpa)
        bb = [build_binary]
        if binary_type == "trie" and quantize_bits:
            bb += ["-q", str(quantize_bits), "-b", str(quantize_bits)]
        bb += ["-T", str(tmp / "trie-tmp") if binary_type == "trie" else str(tmp), binary_type, str(arpa), str(lm_path)]
        res = _run(bb, commands)
        if res.returncode != 0:
            tail = " ".join(res.stderr.strip().splitlines()[-3:])
            raise ConfigError(f"build_binary failed (exit {res.returncode}): {tail}")
        if keep_arpa:
            shutil.copyfile(arpa, out / f"{name}.arpa")
    # Commands name temporary files and this machine's tool paths; keep them stable across rebuilds.
    commands = [c.replace(str(tmp), "$TMP").replace(lmplz, "lmplz").replace(build_binary, "build_binary") for c in commands]
    card: dict[str, Any] = {
        "card_format": "r1data.model_card.v1",
        "kind": "kenlm",
        "name": name,
        "description": description,
        "files": {"lm": file_entry(lm_path, out), "sp_model": file_entry(sp_path, out)},
        "model": {
            "order": order,
            "sp_vocab_size": sp.get_piece_size(),
            "ngrams": counts,
            "binary_type": binary_type,
            "quantize_bits": quantize_bits if binary_type == "trie" else None,
            "prune": prune,
            "discount_fallback": used_fallback,
        },
        "scoring": {"mode": mode, "normalization": "ccnet", "perplexity": "10 ** (-sum(log10 p) / (pieces + 1 per line))"},
        "training": {"corpus": src.describe(), "documents": n_docs, "lines": n_lines, "pieces": n_tokens},
        "commands": commands,
        "versions": versions("ufal.kenlm", "kenlm", "sentencepiece") | {"kenlm_tools": "kenlm 0.3.0 sdist (lmplz, build_binary)"},
        "calibration": None,
    }
    if calibration_sample:
        log("calibrating on " + ", ".join(map(str, calibration_sample)))
        scorer = KenLMScorer(lm_path, sp_path, mode=mode)
        card["calibration"] = calibrate_kenlm(scorer, calibration_sample).to_dict()
    write_card(card, card_path_for(lm_path))
    log(f"wrote {lm_path} ({lm_path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
    return card


def calibrate_kenlm(scorer: KenLMScorer, sample: list[str], batch: int = 256, limit: int | None = None):
    """Percentile table of the scorer's perplexity on raw sample text (lower is better, log space)."""
    from r1data.quality.calibration import Calibration
    from r1data.quality.corpus import Corpus

    c = Corpus(sample, "calibration sample", limit=limit)
    ppls: list[float] = []
    skipped = 0
    buf: list[str] = []
    for text in c:
        buf.append(text)
        if len(buf) >= batch:
            got = scorer.perplexities(buf)
            skipped += sum(p is None for p in got)
            ppls += [p for p in got if p is not None]
            buf = []
    if buf:
        got = scorer.perplexities(buf)
        skipped += sum(p is None for p in got)
        ppls += [p for p in got if p is not None]
    return Calibration.fit(ppls, higher_is_better=False, space="log", sample=c.describe(), skipped=skipped)
