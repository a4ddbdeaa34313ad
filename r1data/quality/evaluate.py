"""Held-out measurement of quality scorers: does a calibrated score separate good prose from junk?

The held-out sets come from ``data/reference/*.eval.jsonl.gz`` (never used to train or calibrate
the bundled models) plus junk generated from them with the held-out keyword pool::

    good = Python documentation pages, book passages (one book never seen in training)
    junk = real Common Crawl spam, shuffled words, link-list boilerplate, keyword stuffing

``bench/quality_scoring.py`` prints the result for the full sets; a test asserts it on a subset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from r1data.paths import REPO_ROOT
from r1data.quality.metrics import roc_auc

GOOD_FILES = {"python_docs": "python-docs.eval.jsonl.gz", "books": "books.eval.jsonl.gz"}
CC_FILE = "cc-spam.eval.jsonl.gz"
JUNK_KINDS = ("shuffled", "link_list", "keyword_stuffing")
EVAL_SEED = 12  # the calibration junk of scripts/build_default_models.sh uses 11


def heldout_sets(reference: Path | None = None, per_kind: int = 100, limit: int | None = None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``(good, junk)``: documents by kind. ``limit`` caps each good kind (for quick tests)."""
    from r1data.quality.corpus import read_texts
    from r1data.quality.synthetic import make_junk

    ref = Path(reference or REPO_ROOT / "data" / "reference")
    good = {k: read_texts([ref / f], k)[0][:limit] for k, f in GOOD_FILES.items()}
    base = [t for texts in good.values() for t in texts]
    junk = {"cc_spam": read_texts([ref / CC_FILE], "cc_spam")[0]}
    for kind in JUNK_KINDS:
        junk[kind] = make_junk(base, [(kind, per_kind)], seed=EVAL_SEED, pool="heldout")
    return good, junk


def separation(score: Callable[[list[str]], np.ndarray], good: dict[str, list[str]], junk: dict[str, list[str]]) -> dict:
    """ROC AUC of ``score`` (higher = better) for all good vs all junk, and vs each junk kind."""
    g = {k: np.asarray(score(v), dtype=np.float64) for k, v in good.items()}
    j = {k: np.asarray(score(v), dtype=np.float64) for k, v in junk.items()}
    all_g = np.concatenate(list(g.values()))
    all_j = np.concatenate(list(j.values()))
    return {
        "roc_auc": round(roc_auc(all_g, all_j), 4),
        "roc_auc_by_junk": {k: round(roc_auc(all_g, v), 4) for k, v in j.items()},
        "kept_at_0.7": {k: round(float((v >= 0.7).mean()), 3) for k, v in {**g, **j}.items()},
        "documents": {k: len(v) for k, v in {**good, **junk}.items()},
    }
