"""Language identification with fastText (``lid.176.ftz`` bundled) and a filter on its result."""

from __future__ import annotations

import importlib.util

from datatrove.data import Document
from pydantic import Field, field_validator

from r1data.paths import resolve_path
from r1data.stages.base import FilterStage, StageConfig, TaggerStage
from r1data.stages.registry import register

DEFAULT_LID_MODEL = "models/lid/lid.176.ftz"


def check_model_file(path: str, module: str, extra: str) -> list[tuple[str, str]]:
    """Validation-time check shared by model-backed stages: the file exists and the module imports."""
    problems = []
    p = resolve_path(path)
    if not p.is_file():
        problems.append(("model", f"model file not found: {p}"))
    elif not p.stat().st_size:
        problems.append(("model", f"model file is empty: {p}"))
    if importlib.util.find_spec(module) is None:
        problems.append(("model", f"needs the Python module {module}: pip install 'r1data[{extra}]'"))
    return problems


def load_fasttext(path: str):
    """A fastText model by a recipe path (relative to the working directory or the project)."""
    from r1data.quality.fasttext_model import load_fasttext_model

    return load_fasttext_model(resolve_path(path))


class LanguageIdConfig(StageConfig):
    model: str = Field(DEFAULT_LID_MODEL, description="fastText language-ID model (.bin/.ftz)")
    max_chars: int = Field(20_000, ge=100, description="characters of each document the model sees")


@register
class LanguageId(TaggerStage):
    """Tag each document with its most likely language (`lang`) and the model's probability (`lang_score`)."""

    name = "language_id"
    Config = LanguageIdConfig
    columns = {"lang": "string", "lang_score": "float32"}
    requires = {"fasttext": "web"}
    batch_size = 256
    example = """\
- stage: language_id
  model: models/lid/lid.176.ftz
"""

    @classmethod
    def check_config(cls, config: LanguageIdConfig) -> list[tuple[str, str]]:
        return check_model_file(config.model, "fasttext", "web")

    def setup(self) -> None:
        self._model = load_fasttext(self.config.model)

    def process_batch(self, docs: list[Document]) -> list[str | None]:
        texts = [" ".join(d.text[: self.config.max_chars].split()) for d in docs]
        labels, probs = self._model.predict(texts, k=1)
        for doc, lab, prob in zip(docs, labels, probs):
            if lab:
                doc.metadata["lang"] = lab[0].removeprefix("__label__")
                doc.metadata["lang_score"] = round(float(min(prob[0], 1.0)), 4)
            else:
                doc.metadata["lang"], doc.metadata["lang_score"] = None, 0.0
        return [None] * len(docs)


class LanguageFilterConfig(StageConfig):
    languages: list[str] | None = Field(["en"], description="ISO 639 codes to keep; null keeps any language")
    min_score: float = Field(0.65, ge=0, le=1, description="drop documents whose lang_score is below this")

    @field_validator("languages")
    @classmethod
    def _non_empty(cls, v):
        if v is not None and not v:
            raise ValueError("give at least one language, or null for any")
        return v


@register
class LanguageFilter(FilterStage):
    """Keep documents in the listed languages whose language-ID score reaches `min_score` (needs language_id)."""

    name = "language_filter"
    Config = LanguageFilterConfig
    needs = ("lang", "lang_score")
    example = """\
- stage: language_filter
  languages: [en]
  min_score: 0.65
"""

    def keep(self, doc: Document):
        lang = doc.metadata.get("lang")
        if lang is None and "lang_score" not in doc.metadata:
            return False, "no_language_id"
        if self.config.languages is not None and lang not in self.config.languages:
            return False, "language_not_allowed"
        if (doc.metadata.get("lang_score") or 0.0) < self.config.min_score:
            return False, "language_score_too_low"
        return True
