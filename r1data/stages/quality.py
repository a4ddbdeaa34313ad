"""LM-based quality scoring: KenLM perplexity, a fastText quality classifier, and the filter on both.

Score first, filter later: ``kenlm_perplexity`` and ``quality_classifier`` only add columns (raw
score + calibrated score), ``quality_filter`` decides. So score columns are in ``rejected/`` too,
and thresholds change without re-scoring.

Calibrated scores (``*_score``) are percentile ranks against raw text stored with each model:
0.7 = better than 70 % of raw, unfiltered text (see ``r1data.quality.calibration``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from datatrove.data import Document
from pydantic import Field, field_validator, model_validator

from r1data.paths import resolve_path, sha256_file
from r1data.stages.base import FilterStage, StageConfig, TaggerStage
from r1data.stages.registry import register

DEFAULT_KENLM = "models/kenlm/en/en.arpa.bin"
DEFAULT_CLASSIFIER = "models/quality/web/web.ftz"


def _modules_missing(requires: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("model", f"needs the Python module {mod}: pip install 'r1data[{extra}]'")
        for mod, extra in requires.items()
        if importlib.util.find_spec(mod) is None
    ]


def _card_describes_other_model(card_path: Path, model: Path, kinds: tuple[str, ...]) -> str | None:
    """A calibration belongs to one model: refuse a card whose model file has another size.

    (Size, not sha256: hashing CCNet's 4 GB models at every validation would take seconds.)"""
    from r1data.quality.cards import load_card

    try:
        card = load_card(card_path)
    except ValueError:
        return None
    want = "fasttext_quality" if "fasttext" in kinds else "kenlm"
    if card.get("kind") not in (None, want):
        return f"{card_path} is the card of a {card.get('kind')} model; {model} needs a {want} calibration"
    entry = (card.get("files") or {}).get("model" if want == "fasttext_quality" else "lm")
    if not entry or "bytes" not in entry:
        return None
    size = model.stat().st_size
    if entry["bytes"] != size:
        return (
            f"the calibration in {card_path} was computed for {entry.get('path')} ({entry['bytes']:,} bytes), "
            f"not for {model} ({size:,} bytes): run `r1data models calibrate {model} --sample RAW_TEXT...`"
        )
    return None


def _text_problem(doc: Document) -> str | None:
    """Why a document cannot be scored at all, or None."""
    if not isinstance(doc.text, str):
        return "not_text"
    if not doc.text.strip():
        return "empty_text"
    return None


def _merge(reasons: list[str | None], live_reasons: list[str | None]) -> list[str | None]:
    """``reasons`` with its ``None`` entries filled, in order, from ``live_reasons``."""
    it = iter(live_reasons)
    return [r if r is not None else next(it) for r in reasons]


class _ModelScorer(TaggerStage):
    """Shared plumbing: model + card + calibration resolved at validation, loaded in ``setup``."""

    raw_column: ClassVar[str]
    score_column: ClassVar[str]
    model_kinds: ClassVar[tuple[str, ...]]
    batch_size = 256

    @classmethod
    def _resolve(cls, config) -> dict[str, Any]:
        """Files and calibration for ``config``; ``problems`` lists what is missing (validation-time)."""
        from r1data.quality.cards import card_path_for, check_model_file, find_calibration, load_card

        model = resolve_path(config.model)
        out: dict[str, Any] = {"model": model, "problems": [], "card": None, "card_path": None, "calibration": None}
        problem = check_model_file(model, cls.model_kinds, "model file")
        if problem:
            out["problems"].append(("model", problem))
            return out
        card_path = card_path_for(model)
        if card_path.is_file():
            try:
                out["card"], out["card_path"] = load_card(card_path), card_path
            except ValueError as e:
                out["problems"].append(("model", str(e)))
        cal, cal_path, problem = find_calibration(model, config.calibration)
        if problem:
            out["problems"].append(("calibration", problem))
        elif cal_path is not None and cal_path.name.endswith(".card.json"):
            problem = _card_describes_other_model(cal_path, model, cls.model_kinds)
            if problem:
                out["problems"].append(("calibration", problem))
        out["calibration"], out["calibration_path"] = cal, cal_path
        return out

    raw_digits: ClassVar[int] = 4
    unscorable_reason: ClassVar[str] = "no_text_after_normalization"

    def _raw_scores(self, texts: list[str]) -> list[float | None]:
        """The model's value per text (``None``: nothing left to score)."""
        raise NotImplementedError

    def process_batch(self, docs: list[Document], _retry: bool = True) -> list[str | None]:
        reasons: list[str | None] = [_text_problem(d) for d in docs]
        live = [d for d, r in zip(docs, reasons) if r is None]
        if not live:
            return reasons
        try:
            raws = self._raw_scores([d.text for d in live])
        except Exception as e:
            if not _retry:
                raise
            return _merge(reasons, self._error(live, e))
        scores = self._cal.score_array([r if r is not None else math.nan for r in raws])
        out: list[str | None] = []
        for doc, raw, score in zip(live, raws, scores):
            if raw is None:
                out.append(self.unscorable_reason)
                continue
            doc.metadata[self.raw_column] = round(float(raw), self.raw_digits)
            doc.metadata[self.score_column] = round(float(score), 4)
            out.append(None)
        return _merge(reasons, out)

    def _resolved_for_setup(self) -> dict[str, Any]:
        """``_resolve`` in a worker: a problem there (the file went away since validation) is fatal."""
        r = self._resolve(self.config)
        if r["problems"]:
            raise ValueError("; ".join(m for _, m in r["problems"]))
        self._cal = r["calibration"]
        return r

    def _error(self, docs: list[Document], exc: Exception) -> list[str | None]:
        from datatrove.utils.logging import logger

        logger.warning(f"{self.label}: scoring failed for a batch ({type(exc).__name__}: {exc}); retrying one by one")
        reasons: list[str | None] = []
        for doc in docs:
            try:
                reasons.extend(self.process_batch([doc], _retry=False))
            except Exception as e:  # one bad document must not take the task down
                doc.metadata["quality_error"] = f"{type(e).__name__}: {e}"[:300]
                reasons.append("scoring_error")
        return reasons

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        r = self._resolve(self.config)
        cal = r["calibration"]
        d["model_file"] = {"path": str(r["model"]), "sha256": sha256_file(r["model"]) if r["model"].is_file() else None}
        if r["card_path"]:
            d["model_card"] = {"path": str(r["card_path"]), "sha256": sha256_file(r["card_path"])}
        if cal is not None:
            d["calibration"] = {"from": str(r.get("calibration_path")), "n_documents": cal.n_documents, "summary": cal.summary()}
        return d


# ------------------------------------------------------------------------------------------------


class KenLMPerplexityConfig(StageConfig):
    model: str = Field(DEFAULT_KENLM, description="KenLM model: binary (.arpa.bin) or ARPA; its card and <stem>.sp.model sit beside it")
    sp_model: str | None = Field(None, description="SentencePiece model; default <stem>.sp.model beside the KenLM file (CCNet's naming)")
    calibration: str | None = Field(None, description="calibration table (a model card or `r1data models calibrate` output); default the model's card")
    mode: Literal["lines", "document"] = Field("lines", description="lines: score each line (CCNet's DocLM); document: CCNet's pipeline exactly (newlines dropped)")
    max_chars: int = Field(100_000, ge=100, description="characters of each document that are scored")


@register
class KenLMPerplexity(_ModelScorer):
    """Score documents with KenLM + SentencePiece perplexity (`ppl`) and its calibrated rank (`ppl_score`, higher is better)."""

    name = "kenlm_perplexity"
    Config = KenLMPerplexityConfig
    columns = {"ppl": "float32", "ppl_score": "float32"}
    requires = {"kenlm": "quality", "sentencepiece": "quality"}
    raw_column, score_column = "ppl", "ppl_score"
    raw_digits = 1
    model_kinds = ("kenlm-binary", "kenlm-arpa")
    example = """\
- stage: kenlm_perplexity
  model: models/kenlm/en/en.arpa.bin     # or CCNet's en.arpa.bin (+ en.sp.model beside it)
  mode: lines
"""

    @classmethod
    def _sp_path(cls, config: KenLMPerplexityConfig, model: Path) -> Path:
        from r1data.quality.kenlm_model import sp_model_for

        return resolve_path(config.sp_model) if config.sp_model else sp_model_for(model)

    @classmethod
    def check_config(cls, config: KenLMPerplexityConfig) -> list[tuple[str, str]]:
        problems = _modules_missing(cls.requires)
        r = cls._resolve(config)
        problems += r["problems"]
        if not any(p == "model" for p, _ in r["problems"]):
            sp = cls._sp_path(config, r["model"])
            if not sp.is_file():
                how = "" if config.sp_model else " (set sp_model: to its path)"
                problems.append(("sp_model", f"SentencePiece model not found: {sp}{how}"))
        return problems

    def setup(self) -> None:
        from r1data.quality.kenlm_model import KenLMScorer

        r = self._resolved_for_setup()
        self._scorer = KenLMScorer(r["model"], self._sp_path(self.config, r["model"]), mode=self.config.mode, max_chars=self.config.max_chars)

    def _raw_scores(self, texts: list[str]) -> list[float | None]:
        return self._scorer.perplexities(texts)


# ------------------------------------------------------------------------------------------------


class QualityClassifierConfig(StageConfig):
    model: str = Field(DEFAULT_CLASSIFIER, description="fastText classifier (.bin/.ftz), e.g. DCLM's; its card sits beside it")
    positive_label: str | None = Field(None, description="label of good text, e.g. __label__hq for DCLM's model; default from the model card")
    preprocess: Literal["auto", "oneline", "normalized"] = Field(
        "auto", description="auto: the card's; oneline: lines joined (DCLM); normalized: CCNet normalisation + punctuation split"
    )
    calibration: str | None = Field(None, description="calibration table (a model card or `r1data models calibrate` output); default the model's card")
    max_chars: int = Field(100_000, ge=100, description="characters of each document the classifier reads")


@register
class QualityClassifier(_ModelScorer):
    """Score documents with a fastText quality classifier: P(good) (`quality_clf`) and its calibrated rank (`quality_clf_score`)."""

    name = "quality_classifier"
    Config = QualityClassifierConfig
    columns = {"quality_clf": "float32", "quality_clf_score": "float32"}
    requires = {"fasttext": "quality"}
    raw_column, score_column = "quality_clf", "quality_clf_score"
    model_kinds = ("fasttext",)
    batch_size = 256
    example = """\
- stage: quality_classifier
  model: models/quality/web/web.ftz
  # DCLM's classifier: model: openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin,
  #   positive_label: __label__hq, preprocess: oneline, calibration: dclm.card.json
"""

    @classmethod
    def _settings(cls, config: QualityClassifierConfig, card: dict | None) -> tuple[str | None, str]:
        card = card or {}
        label = config.positive_label or card.get("positive_label")
        pre = config.preprocess if config.preprocess != "auto" else card.get("preprocess", "oneline")
        return label, pre

    @classmethod
    def check_config(cls, config: QualityClassifierConfig) -> list[tuple[str, str]]:
        problems = _modules_missing(cls.requires)
        r = cls._resolve(config)
        problems += r["problems"]
        if not any(p == "model" for p, _ in r["problems"]):
            label, _ = cls._settings(config, r["card"])
            if not label:
                problems.append(
                    ("positive_label", f"{r['model']} has no model card naming its positive label: set positive_label (DCLM's: __label__hq)")
                )
        return problems

    def setup(self) -> None:
        from r1data.quality.fasttext_model import FastTextScorer

        r = self._resolved_for_setup()
        label, pre = self._settings(self.config, r["card"])
        self._scorer = FastTextScorer(r["model"], label, preprocess=pre, max_chars=self.config.max_chars)

    def _raw_scores(self, texts: list[str]) -> list[float | None]:
        return list(self._scorer.probabilities(texts))


# ------------------------------------------------------------------------------------------------


class QualityFilterConfig(StageConfig):
    threshold: float = Field(0.5, ge=0, le=1, description="keep documents whose calibrated scores are >= this (--filter-threshold)")
    scores: list[str] = Field(["ppl_score", "quality_clf_score"], min_length=1, description="calibrated score columns to combine")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="per-column thresholds that take precedence over threshold, e.g. {ppl_score: 0.6}"
    )
    combine: Literal["all", "any", "mean"] = Field("all", description="all: every score passes; any: one passes; mean: their mean passes")

    @field_validator("scores")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("list each score column once")
        return v

    @field_validator("thresholds")
    @classmethod
    def _in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for k, t in v.items():
            if not 0 <= t <= 1:
                raise ValueError(f"{k}: a threshold is a calibrated percentile between 0 and 1 (got {t})")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        unknown = [k for k in self.thresholds if k not in self.scores]
        if unknown:
            raise ValueError(f"thresholds for {', '.join(unknown)}, which is not in scores ({', '.join(self.scores)})")
        if self.combine == "mean" and self.thresholds:
            raise ValueError("combine: mean compares the mean score with threshold; per-column thresholds do not apply")
        return self


@register
class QualityFilter(FilterStage):
    """Keep documents whose calibrated quality scores pass the threshold: all of them (default), any, or their mean."""

    name = "quality_filter"
    Config = QualityFilterConfig
    needs = ("ppl_score", "quality_clf_score")
    knobs = {"filter_threshold": "threshold"}
    example = """\
- stage: quality_filter
  threshold: 0.7            # --filter-threshold sets this
  combine: all              # all | any | mean
  # thresholds: {ppl_score: 0.6}
"""

    @classmethod
    def needs_for(cls, config: QualityFilterConfig) -> tuple[str, ...]:
        return tuple(config.scores)

    def setup(self) -> None:
        c = self.config
        self._limits = [(col, c.thresholds.get(col, c.threshold)) for col in c.scores]

    def keep(self, doc: Document):
        values = []
        for col, _ in self._limits:
            v = doc.metadata.get(col)
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return False, f"missing_{col}"
            values.append(float(v))
        if self.config.combine == "mean":
            if sum(values) / len(values) >= self.config.threshold:
                return True
            return False, "low_mean_quality_score"
        failing = [col for (col, limit), v in zip(self._limits, values) if v < limit]
        ok = not failing if self.config.combine == "all" else len(failing) < len(values)
        if ok:
            return True
        # the reason names every score that failed, e.g. low_ppl_score, low_ppl_score_and_quality_clf_score
        return False, "low_" + "_and_".join(failing)
