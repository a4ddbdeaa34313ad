"""Domain tagging (``domain`` column) and per-domain upsampling for the data mix."""

from __future__ import annotations

import math
from typing import Any

from datatrove.data import Document
from pydantic import Field, model_validator

from r1data.stages.augment import AugmentStage, Outcome, Variant, seeded_rng
from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages.registry import register


class DomainTagConfig(StageConfig):
    source_domains: dict[str, str] = Field(default_factory=dict, description="reader `source` -> domain, trusted over everything else")
    rules: bool = Field(True, description="use metadata and text rules (code lines, math signals)")
    classifier: str | None = Field(None, description="fastText model (.bin/.ftz) with __label__<domain> labels; used before the text rules")
    classifier_threshold: float = Field(0.5, ge=0, le=1, description="the classifier's probability needed to decide")
    code_threshold: float = Field(0.5, ge=0, le=1, description="fraction of code-looking lines that makes a document code")
    math_threshold: float = Field(0.5, ge=0, le=1, description="math evidence (0..1) that makes a document math")
    default: str = Field("prose", min_length=1, description="domain when nothing else decides")
    max_chars: int = Field(20_000, ge=100, description="characters of each document the rules and classifier see")

    @model_validator(mode="after")
    def _something_decides(self):
        if not self.rules and not self.classifier and not self.source_domains:
            raise ValueError("enable rules, give a classifier, or map sources with source_domains")
        return self


@register
class DomainTag(TaggerStage):
    """Tag each document with its `domain` (math, code, prose, ...) by rules and an optional fastText classifier."""

    name = "domain_tag"
    Config = DomainTagConfig
    columns = {"domain": "string"}
    batch_size = 256
    example = """\
- stage: domain_tag
  source_domains: {gsm8k: math}
  classifier: null            # or a fastText model with __label__math/__label__code/__label__prose
"""

    @classmethod
    def check_config(cls, config: DomainTagConfig) -> list[tuple[str, str]]:
        if config.classifier:
            from r1data.stages.langid import check_model_file

            return [("classifier", msg) for _, msg in check_model_file(config.classifier, "fasttext", "web")]
        return []

    def setup(self) -> None:
        from r1data.augment.domain import DomainRules

        c = self.config
        model = None
        if c.classifier:
            from r1data.stages.langid import load_fasttext

            model = load_fasttext(c.classifier)
        self._rules = DomainRules(
            source_domains=c.source_domains, code_threshold=c.code_threshold, math_threshold=c.math_threshold,
            default=c.default, classifier=model, classifier_threshold=c.classifier_threshold, max_chars=c.max_chars,
        )
        if not c.rules:
            self._rules.code_threshold = self._rules.math_threshold = math.inf

    def tag(self, doc: Document) -> str | None:
        domain, by, score = self._rules.classify(doc.text, doc.metadata if self.config.rules else {"source": doc.metadata.get("source")})
        doc.metadata["domain"] = domain
        doc.metadata["domain_by"] = by
        doc.metadata["domain_score"] = score
        self.stat_update(f"domain_{domain}")
        return None


class DomainUpsampleConfig(StageConfig):
    weights: dict[str, float] | None = Field(None, description="domain -> expected copies of each document (2.5: two or three; 0.5: half are dropped)")
    repeat: dict[str, int] | None = Field(None, description="domain -> exact copies of each document (1 = unchanged)")
    default: float = Field(1.0, ge=0, description="weight (or repeat) of domains not listed")
    include_generated: bool = Field(True, description="also upsample documents an earlier augmentation stage generated")
    seed: int = Field(0, description="seed of the fractional part of weights; depends only on (seed, id)")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.weights is None) == (self.repeat is None):
            raise ValueError("give exactly one of weights (expected copies, may be fractional) or repeat (exact copies)")
        for k, v in (self.weights or {}).items():
            if v < 0 or not math.isfinite(v):
                raise ValueError(f"weights.{k}: must be a finite number >= 0 (got {v})")
        for k, v in (self.repeat or {}).items():
            if v < 0:
                raise ValueError(f"repeat.{k}: must be an integer >= 0 (got {v})")
        if self.repeat is not None and self.default != int(self.default):
            raise ValueError("with repeat, default must be a whole number of copies")
        return self


@register
class DomainUpsample(AugmentStage):
    """Per-domain upsampling for the data mix: each document is emitted `weight` times on average (copies are generated documents)."""

    name = "domain_upsample"
    Config = DomainUpsampleConfig
    needs = ("domain",)
    augment_kind = "upsample"
    batch_size = 256
    example = """\
- stage: domain_upsample
  weights: {math: 3.0, code: 2.0, prose: 1.0}   # or repeat: {math: 3}
  seed: 0
"""

    def factor(self, domain: str | None) -> float:
        c = self.config
        table: dict[str, float] = dict(c.weights or c.repeat or {})
        return float(table.get(domain, c.default)) if domain is not None else float(c.default)

    def describe(self) -> dict[str, Any]:
        c = self.config
        mode = "weights" if c.weights is not None else "repeat"
        table = c.weights if c.weights is not None else c.repeat
        applied = {d: {"expected_copies": float(w), "extra_copies": max(0.0, float(w) - 1.0), "drop_probability": max(0.0, 1.0 - float(w))} for d, w in sorted(table.items())}
        applied["*"] = {"expected_copies": c.default, "extra_copies": max(0.0, c.default - 1.0), "drop_probability": max(0.0, 1.0 - c.default)}
        return super().describe() | {"mode": mode, "applied": applied, "seed": c.seed, "include_generated": c.include_generated}

    def variant_id(self, parent: Document, n: int) -> str:
        return f"{parent.id}#up-{self.label}-{n}"

    def applies(self, doc: Document) -> bool:
        return self.config.include_generated or "augmented_from" not in doc.metadata

    def augment(self, doc: Document) -> Outcome:
        w = self.factor(doc.metadata.get("domain"))
        u = seeded_rng(self.config.seed, doc.id).random()
        copies = math.floor(w) + (1 if u < w - math.floor(w) else 0)
        if copies == 0:
            return Outcome(note={"status": "dropped", "weight": w}, reject="downsampled")
        extra = [Variant(doc.text, {"copy": k, "weight": w}) for k in range(1, copies)]
        return Outcome(variants=extra, note={"status": "augmented" if extra else "unchanged", "copies": copies, "weight": w})
