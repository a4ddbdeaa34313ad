"""fastText quality classifiers: DCLM-style training and P(positive) scoring.

DCLM's classifier (``openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin``) is a supervised
fastText model over word unigrams + bigrams that reads a document as one line and answers
``__label__hq`` or ``__label__cc``; its score is the probability of ``__label__hq``. r1data trains
the same kind of model (``train_quality``) and scores any such model (``FastTextScorer``) with a
configurable positive label, so DCLM's file loads unchanged.

Text preprocessing, recorded in the model card and applied identically at scoring time:

- ``oneline`` (DCLM): lines joined with spaces, nothing else;
- ``normalized`` (r1data's models): CCNet normalisation (lower-case, accents, digits -> 0, unicode
  punctuation) and punctuation split off words, so ``word,`` and ``word`` share a feature.
"""

from __future__ import annotations

import hashlib
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from r1data.errors import ConfigError
from r1data.quality.normalize import normalize_lines, warm_up

Preprocess = Literal["oneline", "normalized"]
_PUNCT = re.compile(r"([^\w\s])")
_SPACES = re.compile(r"\s+")


def preprocess_text(text: str, style: Preprocess, max_chars: int = 100_000) -> str:
    """The one line a classifier reads (fastText predicts one line at a time)."""
    text = text[:max_chars]
    if style == "oneline":
        return " ".join(text.strip().splitlines())
    line = " ".join(normalize_lines(text))
    return _SPACES.sub(" ", _PUNCT.sub(r" \1 ", line)).strip()


def load_fasttext_model(path: str | Path):
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time deprecation warning
    return fasttext.load_model(str(path))


class FastTextScorer:
    """P(positive label) of documents under a fastText classifier.

    >>> s = FastTextScorer("models/quality/web/web.ftz", positive_label="__label__hq", preprocess="normalized")
    >>> s.probabilities(["Some text.", "Other text."])   # array([0.93, 0.12])
    """

    def __init__(self, model: str | Path, positive_label: str, *, preprocess: Preprocess = "oneline", max_chars: int = 100_000):
        self.model_path = Path(model)
        self.model = load_fasttext_model(model)
        labels = list(self.model.get_labels())
        if positive_label not in labels:
            raise ConfigError(f"{model}: positive_label {positive_label!r} is not one of the model's labels ({', '.join(labels)})")
        self.positive_label = positive_label
        self.labels = labels
        self.preprocess = preprocess
        self.max_chars = max_chars
        if preprocess == "normalized":
            warm_up(keep_newlines=True)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        lines = [preprocess_text(t, self.preprocess, self.max_chars) for t in texts]
        # k=-1: every label with its probability, so the positive label's is always there
        labels, probs = self.model.predict(lines, k=-1, threshold=0.0)
        out = np.zeros(len(lines), dtype=np.float64)
        pos = self.positive_label
        for i, (labs, ps) in enumerate(zip(labels, probs)):
            for lab, p in zip(labs, ps):
                if lab == pos:
                    out[i] = min(float(p), 1.0)  # fastText's softmax can overshoot 1 by rounding
                    break
        return out


# ------------------------------------------------------------------------------------------------
# training


def _is_heldout(line: str, fraction: float, seed: int) -> bool:
    """A stable split by content: the same document (or an exact duplicate) always lands on the same side."""
    h = hashlib.blake2b(f"{seed}:{line}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < fraction


def train_quality(
    positive: list[str],
    negative: list[str],
    out_dir: str | Path,
    *,
    positive_label: str = "__label__hq",
    negative_label: str = "__label__cc",
    heldout: float = 0.1,
    seed: int = 0,
    dim: int = 32,
    epoch: int = 10,
    lr: float = 0.2,
    word_ngrams: int = 2,
    min_count: int = 2,
    bucket: int = 200_000,
    quantize: bool = True,
    preprocess: Preprocess = "normalized",
    max_chars: int = 100_000,
    synthetic_negatives: list[tuple[str, int]] | None = None,
    synthetic_from: list[str] | None = None,
    calibration_sample: list[str] | None = None,
    threads: int = 1,
    description: str = "",
    log=print,
) -> dict[str, Any]:
    """Train ``<out>/<name>.ftz`` (or ``.bin`` unquantised) + its card; returns the card.

    ``synthetic_negatives`` adds generated junk (``[(kind, count)]``, see ``r1data.quality.synthetic``)
    made from the documents of ``synthetic_from`` (default: the positive files)."""
    from r1data.quality.fasttext_train import train_supervised, zeroed_malloc
    from r1data.quality.cards import card_path_for, file_entry, versions, write_card
    from r1data.quality.corpus import Corpus
    from r1data.quality.metrics import binary_report

    for lab, flag in ((positive_label, "--positive-label"), (negative_label, "--negative-label")):
        if not lab.startswith("__label__") or " " in lab:
            raise ConfigError(f"{flag} {lab!r}: fastText labels look like __label__NAME (no spaces)")
    if positive_label == negative_label:
        raise ConfigError("--positive-label and --negative-label must differ")
    if not 0 < heldout < 0.5:
        raise ConfigError(f"--heldout {heldout}: give a fraction between 0 and 0.5")
    out = Path(out_dir)
    name = out.name
    if not name or name in (".", ".."):
        raise ConfigError(f"--out {out_dir}: give a folder named after the model, e.g. models/quality/web")
    t0 = time.perf_counter()
    if preprocess == "normalized":
        warm_up(keep_newlines=True)
    pos_c, neg_c = Corpus(positive, "positive"), Corpus(negative, "negative")
    rows: list[tuple[str, str]] = []  # (label, one-line text)
    for corpus, lab in ((pos_c, positive_label), (neg_c, negative_label)):
        for text in corpus:
            line = preprocess_text(text, preprocess, max_chars)
            if line:
                rows.append((lab, line))
    synth_info = None
    if synthetic_negatives:
        from r1data.quality.synthetic import make_junk

        base_c = Corpus(synthetic_from or positive, "synthetic base")
        base = [t for t in base_c]
        junk = make_junk(base, synthetic_negatives, seed=seed)
        for text in junk:
            line = preprocess_text(text, preprocess, max_chars)
            if line:
                rows.append((negative_label, line))
        synth_info = {"kinds": dict(synthetic_negatives), "seed": seed, "base": base_c.describe(), "documents": len(junk)}
    n_pos = sum(1 for lab, _ in rows if lab == positive_label)
    n_neg = len(rows) - n_pos
    if n_pos < 2 or n_neg < 2:
        raise ConfigError(f"need at least 2 positive and 2 negative documents with text (got {n_pos} and {n_neg})")
    train = [r for r in rows if not _is_heldout(r[1], heldout, seed)]
    test = [r for r in rows if _is_heldout(r[1], heldout, seed)]
    if not any(lab == positive_label for lab, _ in test) or not any(lab == negative_label for lab, _ in test):
        raise ConfigError(f"the held-out split ({heldout:.0%}) has no positive or no negative document; give more documents")
    random.Random(seed).shuffle(train)
    log(f"training fastText on {len(train):,} documents ({n_pos:,} positive, {n_neg:,} negative in all), holding out {len(test):,}")
    out.mkdir(parents=True, exist_ok=True)
    params = dict(lr=lr, dim=dim, epoch=epoch, wordNgrams=word_ngrams, minCount=min_count, bucket=bucket, loss="softmax", seed=seed, thread=threads)
    with tempfile.TemporaryDirectory(prefix="r1data-fasttext-") as tmpd:
        train_file = Path(tmpd) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as f:
            for lab, line in train:
                f.write(f"{lab} {line}\n")
        for attempt in range(3):
            try:
                model = train_supervised(input=str(train_file), verbose=0, **params)
                break
            except RuntimeError as e:
                if "NaN" not in str(e):
                    raise
                # a genuine divergence (too high a rate for the data): halve it, twice at most, and say so
                if attempt == 2:
                    raise ConfigError(f"fastText training diverged (NaN) down to --lr {params['lr']:g}: try a lower learning rate") from None
                log(f"fastText training diverged (NaN) with lr {params['lr']:g}; retrying with lr {params['lr'] / 2:g}")
                params["lr"] = params["lr"] / 2
        if quantize:
            # product quantisation, retrained on the same data: ~100x smaller, AUC within noise
            with zeroed_malloc():
                model.quantize(input=str(train_file), qnorm=True, retrain=True, cutoff=min(100_000, len(model.words)), thread=threads, verbose=0)
    model_path = out / f"{name}.{'ftz' if quantize else 'bin'}"
    model.save_model(str(model_path))
    scorer = FastTextScorer(model_path, positive_label, preprocess="oneline")  # test lines are preprocessed already
    pos_lines = [line for lab, line in test if lab == positive_label]
    neg_lines = [line for lab, line in test if lab == negative_label]
    report = binary_report(scorer.probabilities(pos_lines), scorer.probabilities(neg_lines), threshold=0.5)
    report["heldout_fraction"] = heldout
    log(f"held-out: precision {report['precision']}, recall {report['recall']}, ROC AUC {report['roc_auc']}")
    card: dict[str, Any] = {
        "card_format": "r1data.model_card.v1",
        "kind": "fasttext_quality",
        "name": name,
        "description": description,
        "files": {"model": file_entry(model_path, out)},
        "positive_label": positive_label,
        "negative_label": negative_label,
        "preprocess": preprocess,
        "model": {"hyperparameters": params | {"quantized": quantize}, "words": len(model.words)},
        "training": {
            "positive": pos_c.describe(),
            "negative": neg_c.describe(),
            "synthetic_negatives": synth_info,
            "documents": {"positive": n_pos, "negative": n_neg, "train": len(train), "heldout": len(test)},
        },
        "evaluation": report,
        "commands": [f"fasttext.train_supervised({', '.join(f'{k}={v!r}' for k, v in params.items())})"]
        + ([f"model.quantize(qnorm=True, retrain=True, cutoff={min(100_000, len(model.words))})"] if quantize else []),
        "versions": versions("fasttext-numpy2-wheel", "fasttext"),
        "calibration": None,
    }
    if calibration_sample:
        log("calibrating on " + ", ".join(map(str, calibration_sample)))
        card["calibration"] = calibrate_fasttext(FastTextScorer(model_path, positive_label, preprocess=preprocess, max_chars=max_chars), calibration_sample).to_dict()
    write_card(card, card_path_for(model_path))
    log(f"wrote {model_path} ({model_path.stat().st_size / 2**10:.0f} KiB) in {time.perf_counter() - t0:.1f} s")
    return card


def calibrate_fasttext(scorer: FastTextScorer, sample: list[str], batch: int = 512, limit: int | None = None):
    """Percentile table of P(positive) on raw sample text (higher is better)."""
    from r1data.quality.calibration import Calibration
    from r1data.quality.corpus import Corpus

    c = Corpus(sample, "calibration sample", limit=limit)
    probs: list[float] = []
    skipped = 0
    buf: list[str] = []

    def flush():
        nonlocal skipped
        keep = [t for t in buf if t.strip()]
        skipped += len(buf) - len(keep)
        if keep:
            probs.extend(scorer.probabilities(keep).tolist())
        buf.clear()

    for text in c:
        buf.append(text)
        if len(buf) >= batch:
            flush()
    flush()
    return Calibration.fit(probs, higher_is_better=True, space="linear", sample=c.describe(), skipped=skipped)
