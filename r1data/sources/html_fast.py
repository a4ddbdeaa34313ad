"""Fast main-text extraction: Resiliparse's main-content extractor, then a line classifier.

Resiliparse (C++, lexbor) finds the main content in a few milliseconds but keeps lines that a human
would call boilerplate: titles, captions, share bars, "Advertisement", newsletter boxes, bylines.
Two passes win precision back:

1. (``prune``, web-v2's default) the DOM is pruned before extraction (``skip_elements``): the page
   title (``h1``), figure captions and elements whose class or id says caption;
2. (``classify``, optional: pure Python, 4x the time for +0.2 F1) each extracted line is scored by a logistic regression over jusText/boilerpipe-style features
   of the line and its neighbours (word count, punctuation, capitalisation, position relative to
   the long prose lines, boilerplate vocabulary) and dropped below a threshold.

The weights live in :mod:`r1data.sources.html_fast_weights`, written by
``bench/extraction_quality.py --train`` from the ScrapingHub article-extraction benchmark; the
feature list below is versioned with them (``FEATURES_VERSION``): changing a feature means
retraining and a new policy version.
"""

from __future__ import annotations

import math
import re

FEATURES_VERSION = 1


class ExtractionFailed(Exception):
    """Resiliparse refused the page; the message names its error (picklable, to leave a sandbox)."""

SKIP_SELECTORS = ("h1", "figcaption", '[class*="caption"]', '[id*="caption"]')

_EXTRACT_OPTS = dict(
    preserve_formatting=True,
    main_content=True,
    alt_texts=False,
    list_bullets=False,
    comments=False,
    post_meta=False,
)

_WORD = re.compile(r"\w+")
_END_PUNCT = re.compile(r"[.!?\"”’»:;)]\s*$")
_VOCAB = {
    "share": re.compile(r"\b(share|shares|tweet|facebook|twitter|whatsapp|pinterest|linkedin|email|print|reddit)\b", re.I),
    "subscribe": re.compile(r"(subscri|newsletter|sign ?up|log ?in|inbox|register|download|app\b|follow us)", re.I),
    "advert": re.compile(r"\b(advertisement|advertising|sponsored|promoted|ad|ads|continue reading|read more|click here)\b", re.I),
    "media": re.compile(r"\b(photo|photos|image|images|picture|video|getty|reuters|afp|ap|caption|credit|file|loaded|play)\b", re.I),
    "related": re.compile(r"\b(related|more from|more stories|recommended|popular|trending|latest|see also|you may|also like|next|previous)\b", re.I),
    "comment": re.compile(r"\b(comments?|reply|replies|posted|discussion)\b", re.I),
    "legal": re.compile(r"(©|\bcopyright\b|all rights reserved|\bprivacy\b|\bcookies?\b|\bterms\b)", re.I),
    "byline": re.compile(r"^\s*(by|von|par|por|di|from)\s+\S", re.I),
    "date": re.compile(
        r"(\b(19|20)\d\d\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|\d{1,2}:\d\d|\b(updated|published)\b)", re.I
    ),
    "url": re.compile(r"(https?://|www\.|\.com\b|@)", re.I),
}

FEATURES = (
    ["bias", "log_words", "log_chars", "end_punct", "cap_frac", "digit_frac", "avg_word_len", "indented", "short", "very_short"]
    + [f"kw_{k}" for k in _VOCAB]
    + ["rel_pos", "before_core", "after_core", "chars_before_frac", "chars_after_frac", "dup_line"]
    + ["prev_log_words", "prev_end_punct", "next_log_words", "next_end_punct", "prev_empty", "next_empty"]
    + ["page_log_lines", "page_long_frac"]
)


def _line_basic(line: str) -> tuple[float, float, float, float, float, float, float]:
    words = _WORD.findall(line)
    n = len(words)
    if not n:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    caps = sum(1 for w in words if w[0].isupper())
    digits = sum(1 for w in words if w[0].isdigit())
    return (
        float(n),
        math.log1p(n),
        1.0 if _END_PUNCT.search(line) else 0.0,
        caps / n,
        digits / n,
        min(sum(len(w) for w in words) / n, 15.0) / 10.0,
        math.log1p(len(line)),
    )


def line_features(lines: list[str]) -> list[list[float]]:
    """One feature row per line (in ``FEATURES`` order); empty lines get a row too (never kept)."""
    basics = [_line_basic(ln) for ln in lines]
    n = len(lines)
    # the "core": from the first to the last long, punctuated line (jusText's good paragraphs)
    long_idx = [i for i, b in enumerate(basics) if b[0] >= 12 and b[2]]
    first_core = long_idx[0] if long_idx else 0
    last_core = long_idx[-1] if long_idx else n - 1
    sizes = [len(ln) for ln in lines]
    total = float(sum(sizes)) or 1.0
    seen: dict[str, int] = {}
    for ln in lines:
        key = ln.strip().lower()
        if key:
            seen[key] = seen.get(key, 0) + 1
    page_log_lines = math.log1p(sum(1 for b in basics if b[0]))
    page_long_frac = len(long_idx) / max(1, sum(1 for b in basics if b[0]))
    rows = []
    before = 0.0
    for i, (ln, b) in enumerate(zip(lines, basics)):
        nw, logw, punct, cap, dig, awl, logc = b
        prev_b = basics[i - 1] if i > 0 else None
        next_b = basics[i + 1] if i + 1 < n else None
        row = [1.0, logw, logc / 5.0, punct, cap, dig, awl, 1.0 if ln.startswith(" ") else 0.0, 1.0 if nw < 8 else 0.0, 1.0 if nw < 3 else 0.0]
        row += [1.0 if rx.search(ln) else 0.0 for rx in _VOCAB.values()]
        after = total - before - sizes[i]
        row += [
            i / max(1, n - 1),
            1.0 if i < first_core else 0.0,
            1.0 if i > last_core else 0.0,
            before / total,
            after / total,
            1.0 if seen.get(ln.strip().lower(), 0) > 1 else 0.0,
        ]
        row += [
            prev_b[1] if prev_b else 0.0,
            prev_b[2] if prev_b else 0.0,
            next_b[1] if next_b else 0.0,
            next_b[2] if next_b else 0.0,
            1.0 if prev_b is None or not prev_b[0] else 0.0,
            1.0 if next_b is None or not next_b[0] else 0.0,
        ]
        row += [page_log_lines / 5.0, page_long_frac]
        rows.append(row)
        before += sizes[i]
    return rows


def resiliparse_lines(html, prune: bool = True) -> list[str]:
    """Resiliparse's main-content text of ``html`` (a str or HTMLTree), as lines."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, skip_elements=list(SKIP_SELECTORS) if prune else None, **_EXTRACT_OPTS)
    return text.split("\n")


def visible_text(html) -> str:
    """Every visible text of the page (the fallback when the main content is empty)."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, main_content=False, alt_texts=False, list_bullets=False)
    return "\n".join(ln.strip() for ln in text.split("\n") if ln.strip())


def score_lines(lines: list[str], weights) -> list[float]:
    """Probability that each line is main text under the logistic model ``weights``."""
    out = []
    for row in line_features(lines):
        z = sum(w * x for w, x in zip(weights, row))
        out.append(1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))))
    return out


def keep_lines(lines: list[str], weights, threshold: float) -> str:
    """The lines scored at or above ``threshold`` (empty lines never), joined."""
    kept = [ln.strip() for ln, p in zip(lines, score_lines(lines, weights)) if p >= threshold and ln.strip()]
    return "\n".join(kept)


def extract_or_error(html: str, prune: bool = True, classify: bool = False, threshold: float | None = None):
    """:func:`extract`, with a failure returned as an :class:`ExtractionFailed` instead of raised
    (a sandbox worker hands a returned exception back to the caller; a raised one kills it)."""
    try:
        return extract(html, prune=prune, classify=classify, threshold=threshold)
    except Exception as e:  # resiliparse: HTMLParserException, TypeError (text it cannot encode)
        return ExtractionFailed(f"{type(e).__name__}: {e}")


def extract(html: str, prune: bool = True, classify: bool = False, weights=None, threshold: float | None = None) -> str:
    """Main text of ``html``: Resiliparse main content with the DOM pruned (``prune``), then
    (``classify``) the line classifier. Raises what Resiliparse raises on input it cannot parse."""
    lines = resiliparse_lines(html, prune)
    if not classify:
        return "\n".join(ln.strip() for ln in lines if ln.strip())
    if weights is None:
        from r1data.sources.html_fast_weights import THRESHOLD, WEIGHTS

        weights = WEIGHTS
        threshold = THRESHOLD if threshold is None else threshold
    return keep_lines(lines, weights, 0.5 if threshold is None else threshold)
