"""Text shaping for math data: join fields into the training text, normalise LaTeX and annotations."""

from __future__ import annotations

import string
from typing import Literal

from datatrove.data import Document
from pydantic import Field, field_validator

from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages.registry import register


class TextTemplateConfig(StageConfig):
    template: str = Field(..., description="Python format string over `text`, `id` and metadata fields, e.g. 'Question: {text}\\nAnswer: {answer}'")
    drop_fields: list[str] = Field(default_factory=list, description="metadata fields removed once they are in the text")
    domains: list[str] | None = Field(None, description="only documents of these domains (domain_tag); null: all")
    on_missing: Literal["reject", "skip"] = Field("reject", description="a document lacking a field: reject it (template_field_missing) or leave it as it is")

    @field_validator("template")
    @classmethod
    def _parses(cls, v: str) -> str:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as e:
            raise ValueError(f"not a format string: {e}") from None
        if not names:
            raise ValueError("the template uses no field; write e.g. '{text}\\n\\n{answer}'")
        if any(not n or not n.isidentifier() for n in names):
            raise ValueError("fields must be plain names like {text} or {answer} (no indexing, no positional {})")
        return v


@register
class TextTemplate(TaggerStage):
    """Rewrite the text from a template over the text and metadata fields (e.g. GSM8K question + answer)."""

    name = "text_template"
    Config = TextTemplateConfig
    batch_size = 256
    example = """\
- stage: text_template
  template: "Question: {text}\\nAnswer: {answer}"
  drop_fields: [answer]
"""

    def setup(self) -> None:
        self._fields = [f for _, f, _, _ in string.Formatter().parse(self.config.template) if f]

    def tag(self, doc: Document) -> str | None:
        c = self.config
        if c.domains is not None and doc.metadata.get("domain") not in c.domains:
            return None
        values = {"text": doc.text, "id": doc.id}
        for f in self._fields:
            if f in values:
                continue
            v = doc.metadata.get(f)
            if v is None:
                if c.on_missing == "skip":
                    return None
                doc.metadata["template_missing"] = f
                return "template_field_missing"
            values[f] = v
        doc.text = c.template.format(**values)
        for f in c.drop_fields:
            doc.metadata.pop(f, None)
        return None


class MathNormalizeConfig(StageConfig):
    latex: bool = Field(True, description="canonical LaTeX: $..$/$$..$$ delimiters, \\frac for \\dfrac, \\leq for \\le, no \\left/\\right, a^2 for a^{2}")
    annotations: Literal["keep", "strip"] = Field("keep", description="GSM8K calculator annotations <<48/2=24>>: keep or strip")
    prose_math: bool = Field(False, description="write prose arithmetic (2 x 3 = 6) as inline LaTeX ($2 \\times 3 = 6$)")
    fields: list[str] = Field(default_factory=list, description="metadata fields normalised too (e.g. [answer])")
    domains: list[str] | None = Field(["math"], description="only these domains (domain_tag); null: all documents")


@register
class MathNormalize(TaggerStage):
    """Normalise math prose: canonical LaTeX, GSM8K calculator annotations kept or stripped, prose arithmetic as LaTeX."""

    name = "math_normalize"
    Config = MathNormalizeConfig
    batch_size = 256
    example = """\
- stage: math_normalize
  latex: true
  annotations: strip
  fields: [answer]
"""

    def _norm(self, text: str) -> str:
        from r1data.augment.latex import canonical_latex, render_prose_math
        from r1data.augment.math import strip_annotations

        c = self.config
        if c.prose_math:
            text = render_prose_math(text)
        if c.annotations == "strip":
            text = strip_annotations(text)
        if c.latex:
            text = canonical_latex(text)
        return text

    def tag(self, doc: Document) -> str | None:
        c = self.config
        if c.domains is not None and doc.metadata.get("domain") not in c.domains:
            return None
        doc.text = self._norm(doc.text)
        for f in c.fields:
            v = doc.metadata.get(f)
            if isinstance(v, str):
                doc.metadata[f] = self._norm(v)
        return None
