#!/usr/bin/env bash
# Rebuild the bundled quality models (models/kenlm/en, models/quality/web) from data/reference/,
# with the same `r1data models` commands users run. Deterministic: one thread everywhere, fixed
# seeds, so a rebuild gives byte-identical model files (the cards record every input's sha256).
#   bash scripts/build_default_models.sh            # ~1-2 min on 2 cores
# Then update the sha256 pins in filters/quality-v1.yaml if a model changed (the script prints them).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${R1DATA_VENV:-$(pwd)/.venv}
PY="$VENV/bin/python"
export PYTHONPATH="$(pwd):$(pwd)/cli${PYTHONPATH:+:$PYTHONPATH}"
R=data/reference
WORK=build/default-models
mkdir -p "$WORK"

# What "good" means: documentation prose (stdlib docstrings), book prose and GSM8K's plain English.
GOOD_TRAIN=(--corpus $R/python-docstrings.train.jsonl.gz --corpus $R/books.train.jsonl.gz --corpus $R/gsm8k.train.jsonl.gz)

# The calibration sample stands in for raw English web text after language ID: 310 held-out good
# documents (Python documentation pages, book passages) and 1,101 generated junk pages (3 kinds,
# held-out keywords, made from those same held-out documents): 22 % good, as the head of raw
# CommonCrawl is a minority. Calibrated scores read "better than this fraction of that sample";
# recalibrate on your own crawl with `r1data models calibrate`.
"$PY" -m r1data.quality.synthetic --base $R/python-docs.calibration.jsonl.gz $R/books.calibration.jsonl.gz \
  --kinds shuffled=367,link_list=367,keyword_stuffing=367 --seed 11 --pool heldout --out "$WORK/junk.calibration.jsonl.gz"
CALIBRATION=(--calibration-sample $R/python-docs.calibration.jsonl.gz --calibration-sample $R/books.calibration.jsonl.gz
             --calibration-sample "$WORK/junk.calibration.jsonl.gz")

"$PY" -m r1data_cli.app models build-kenlm "${GOOD_TRAIN[@]}" --out models/kenlm/en \
  --order 5 --vocab-size 12000 --prune "0 0 1" --binary trie --quantize 8 "${CALIBRATION[@]}" \
  --description "English 5-gram KenLM on SentencePiece pieces: Python stdlib docstrings, book prose, GSM8K (r1data default)."

# Junk for training the classifier: real Common Crawl spam, plus generated junk made from the
# training positives with the training keyword pool (never the calibration/evaluation keywords).
# `gibberish` (words replaced by random strings) teaches it that punctuation and digits alone are
# no evidence of quality: without it, unknown-script spam scores ~0.5 (held-out CC AUC 0.87 -> 0.97).
"$PY" -m r1data_cli.app models train-quality \
  --positive $R/python-docstrings.train.jsonl.gz --positive $R/books.train.jsonl.gz --positive $R/gsm8k.train.jsonl.gz \
  --negative $R/cc-spam.train.jsonl.gz \
  --synthetic shuffled=1500 --synthetic link_list=1500 --synthetic keyword_stuffing=1500 --synthetic gibberish=1500 \
  --out models/quality/web --word-ngrams 2 --dim 32 --epoch 10 --lr 0.2 --bucket 200000 --seed 0 "${CALIBRATION[@]}" \
  --description "fastText quality classifier (DCLM-style word bigrams): documentation/book/GSM8K prose vs Common Crawl spam and generated junk (r1data default)."

sha256sum models/kenlm/en/en.arpa.bin models/kenlm/en/en.card.json models/quality/web/web.ftz models/quality/web/web.card.json
