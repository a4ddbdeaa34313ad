"""A quality gate for generated text: is a back-translation or an EDA variant still good text?

A variant is compared with the document it was made from, on three figures:

- ``ppl_ratio``: KenLM perplexity of the variant / perplexity of its source, under the project's
  model (``models/kenlm/en``, scored like the ``kenlm_perplexity`` stage). Word salad and
  broken machine translation ("Left initiate us...") read worse than their source.
- ``length_ratio``: words of the variant / words of the source (a translation that lost a clause
  or doubled a phrase).
- ``similarity``: chrF of the variant against its source (character 1..6-grams, spaces ignored,
  precision and recall averaged over the orders, then F-beta with beta 2, as sacrebleu's chrF):
  below the floor the variant has lost the meaning; at or above the ceiling it changed nothing
  worth keeping.

``judge`` gives the first failed check (``perplexity``, ``length_ratio``, ``similarity``,
``unchanged``) and the figures; the stages prefix the check with their kind
(``backtranslation_perplexity``, ``eda_similarity``, ...).

    gate = QualityGate(GateOptions())                 # loads KenLM lazily, on first use
    [(check, figures)] = gate.judge_many([(source, variant)])
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"\w+(?:['’]\w+)*")


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _char_ngrams(text: str, n: int) -> Counter:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf(hypothesis: str, reference: str, order: int = 6, beta: float = 2.0) -> float:
    """chrF in [0, 1] of ``hypothesis`` against ``reference`` (whitespace removed, as chrF does)."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    if not hyp or not ref:
        return 1.0 if hyp == ref else 0.0
    precs, recs = [], []
    for n in range(1, order + 1):
        h, r = _char_ngrams(hyp, n), _char_ngrams(ref, n)
        if not h or not r:  # shorter than n characters: orders that exist only
            break
        match = sum((h & r).values())
        precs.append(match / sum(h.values()))
        recs.append(match / sum(r.values()))
    p, r = sum(precs) / len(precs), sum(recs) / len(recs)
    if p == 0 and r == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r)


@dataclass(frozen=True)
class Thresholds:
    max_ppl_ratio: float | None
    min_length_ratio: float | None
    max_length_ratio: float | None
    min_similarity: float | None
    max_similarity: float | None


def figures(source: str, variant: str, ppl_source: float | None, ppl_variant: float | None) -> dict[str, Any]:
    """The gate's figures for one variant (rounded, JSON-friendly; ``None`` where not computable)."""
    ws, wv = word_count(source), word_count(variant)
    ratio = None
    if ppl_source and ppl_variant is not None and math.isfinite(ppl_source) and math.isfinite(ppl_variant):
        ratio = round(ppl_variant / ppl_source, 4)
    return {
        "ppl": None if ppl_variant is None else round(ppl_variant, 1),
        "source_ppl": None if ppl_source is None else round(ppl_source, 1),
        "ppl_ratio": ratio,
        "length_ratio": round(wv / ws, 4) if ws else None,
        "similarity": round(chrf(variant, source), 4),
    }


def judge(fig: dict[str, Any], t: Thresholds) -> str | None:
    """The first check ``fig`` fails (``unchanged``, ``length_ratio``, ``similarity``, ``perplexity``), or None."""
    sim, lr, pr = fig["similarity"], fig["length_ratio"], fig["ppl_ratio"]
    if t.max_similarity is not None and sim >= t.max_similarity:
        return "unchanged"
    if lr is not None and ((t.min_length_ratio is not None and lr < t.min_length_ratio) or (t.max_length_ratio is not None and lr > t.max_length_ratio)):
        return "length_ratio"
    if t.min_similarity is not None and sim < t.min_similarity:
        return "similarity"
    if t.max_ppl_ratio is not None and pr is not None and pr > t.max_ppl_ratio:
        return "perplexity"
    return None


class QualityGate:
    """``figures`` and ``judge`` for many (source, variant) pairs, perplexities from one KenLM model.

    Each distinct source is scored once; the scorer is ``r1data.quality.kenlm_model.KenLMScorer``
    (``kenlm`` and ``sentencepiece`` are imported here, not when the module is)."""

    def __init__(self, thresholds: Thresholds, model: str, sp_model: str | None = None):
        from r1data.quality.kenlm_model import KenLMScorer

        self.thresholds = thresholds
        self.scorer = KenLMScorer(model, sp_model)

    def assess(self, pairs: list[tuple[str, str]]) -> list[tuple[str | None, dict[str, Any]]]:
        """``(failed check or None, figures)`` per ``(source, variant)`` pair, in order."""
        if not pairs:
            return []
        sources = list(dict.fromkeys(s for s, _ in pairs))
        ppl_src = dict(zip(sources, self.scorer.perplexities(sources)))
        ppl_var = self.scorer.perplexities([v for _, v in pairs])
        out = []
        for (s, v), pv in zip(pairs, ppl_var):
            fig = figures(s, v, ppl_src[s], pv)
            out.append((judge(fig, self.thresholds), fig))
        return out
