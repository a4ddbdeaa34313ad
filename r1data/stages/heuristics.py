"""Heuristic quality filters: datatrove's Gopher, C4 and FineWeb rules, wrapped by name with typed configs.

The rules and their drop reasons are datatrove's (``gopher_short_doc``, ``dup_line_frac``,
``curly_bracket``, ``line_punct_ratio`` ...); r1data only gives them a validated config, a stable
name and routes every drop to ``rejected/``.
"""

from __future__ import annotations

from typing import ClassVar

from datatrove.data import Document
from pydantic import Field

from r1data.stages.base import FilterStage, StageConfig
from r1data.stages.registry import register


class _DatatroveFilter(FilterStage):
    """Wraps a datatrove ``BaseFilter``: its ``filter`` answers, r1data keeps the reason."""

    requires = {"spacy": "web"}
    #: the reason used when the datatrove filter drops without giving one
    default_reason: ClassVar[str] = ""

    def make_filter(self):
        raise NotImplementedError

    def setup(self) -> None:
        self._filter = self.make_filter()

    def keep(self, doc: Document):
        res = self._filter.filter(doc)
        if isinstance(res, tuple):
            ok, reason = res
        else:
            ok, reason = res, None
        if ok:
            return True
        return False, _clean_reason(reason) or self.default_reason or self.name


def _clean_reason(reason: str | None) -> str | None:
    if not reason:
        return None
    return "_".join(reason.replace("<", "lt").replace(">", "gt").split()).lower()


class GopherQualityConfig(StageConfig):
    min_doc_words: int | None = Field(50, description="fewer words: gopher_short_doc")
    max_doc_words: int | None = Field(100_000, description="more words: gopher_long_doc")
    min_avg_word_length: float | None = Field(3, description="gopher_below_avg_threshold")
    max_avg_word_length: float | None = Field(10, description="gopher_above_avg_threshold")
    max_symbol_word_ratio: float | None = Field(0.1, description="'#' and '...' per word: gopher_too_many_hashes/ellipsis")
    max_bullet_lines_ratio: float | None = Field(0.9, description="gopher_too_many_bullets")
    max_ellipsis_lines_ratio: float | None = Field(0.3, description="gopher_too_many_end_ellipsis")
    max_non_alpha_words_ratio: float | None = Field(0.8, description="min fraction of words with a letter: gopher_below_alpha_threshold")
    min_stop_words: int | None = Field(2, description="gopher_enough_stop_words")
    stop_words: list[str] | None = Field(None, description="default: the, be, to, of, and, that, have, with")
    language: str = Field("en", description="word tokenizer language")


@register
class GopherQuality(_DatatroveFilter):
    """Gopher quality rules (MassiveText): word counts, word length, symbols, bullets, stop words."""

    name = "gopher_quality"
    Config = GopherQualityConfig
    example = """\
- stage: gopher_quality
  min_doc_words: 50
  max_non_alpha_words_ratio: 0.8
"""

    def make_filter(self):
        from datatrove.pipeline.filters import GopherQualityFilter

        return GopherQualityFilter(**self.config.model_dump())


class GopherRepetitionConfig(StageConfig):
    dup_line_frac: float | None = Field(0.3, description="duplicated lines / lines")
    dup_para_frac: float | None = Field(0.3, description="duplicated paragraphs / paragraphs")
    dup_line_char_frac: float | None = Field(0.2, description="characters in duplicated lines / characters")
    dup_para_char_frac: float | None = Field(0.2, description="characters in duplicated paragraphs / characters")
    top_n_grams: list[tuple[int, float]] = Field([(2, 0.2), (3, 0.18), (4, 0.16)], description="[n, max fraction] of the top n-gram")
    dup_n_grams: list[tuple[int, float]] = Field(
        [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)], description="[n, max fraction] of duplicated n-grams"
    )
    language: str = "en"


@register
class GopherRepetition(_DatatroveFilter):
    """Gopher repetition rules: duplicated lines, paragraphs and n-grams."""

    name = "gopher_repetition"
    Config = GopherRepetitionConfig
    example = """\
- stage: gopher_repetition
  dup_line_frac: 0.3
"""

    def make_filter(self):
        from datatrove.pipeline.filters import GopherRepetitionFilter

        c = self.config.model_dump()
        c["top_n_grams"] = tuple(tuple(x) for x in c["top_n_grams"])
        c["dup_n_grams"] = tuple(tuple(x) for x in c["dup_n_grams"])
        return GopherRepetitionFilter(**c)


class C4QualityConfig(StageConfig):
    split_paragraph: bool = Field(True, description="lines are paragraphs (True, as in C4) or sentences")
    remove_citations: bool = Field(True, description="strip Wikipedia-style [1] citations")
    filter_no_terminal_punct: bool = Field(True, description="remove lines without terminal punctuation")
    min_num_sentences: int = Field(5, description="-1 disables; too_few_sentences")
    min_words_per_line: int = Field(3, description="-1 disables; shorter lines are removed")
    max_word_length: int = Field(1000, description="-1 disables; lines with longer words are removed")
    filter_lorem_ipsum: bool = Field(True, description="lorem_ipsum")
    filter_javascript: bool = Field(True, description="remove lines mentioning javascript")
    filter_curly_bracket: bool = Field(True, description="curly_bracket: drop documents containing '{'")
    filter_policy: bool = Field(True, description="remove cookie/terms-of-use lines")
    language: str = "en"


@register
class C4Quality(_DatatroveFilter):
    """C4 line and document rules: terminal punctuation, sentence counts, lorem ipsum, braces, policies."""

    name = "c4_quality"
    Config = C4QualityConfig
    example = """\
- stage: c4_quality
  filter_curly_bracket: false   # keep code-bearing documentation
"""

    def make_filter(self):
        from datatrove.pipeline.filters import C4QualityFilter

        return C4QualityFilter(**self.config.model_dump())


class FineWebQualityConfig(StageConfig):
    line_punct_thr: float = Field(0.12, description="min fraction of lines ending in punctuation: line_punct_ratio")
    line_punct_exclude_zero: bool = False
    short_line_thr: float = Field(0.67, description="max fraction of short lines: short_line_ratio")
    short_line_length: int = Field(30, description="characters below which a line is short")
    char_duplicates_ratio: float = Field(0.01, description="max fraction of characters in duplicated lines: char_dup_ratio")
    new_line_ratio: float = Field(0.3, description="max newlines per word: list_ratio")
    language: str = "en"


@register
class FineWebQuality(_DatatroveFilter):
    """FineWeb's extra rules: punctuated lines, short lines, duplicated characters, list-like pages."""

    name = "fineweb_quality"
    Config = FineWebQualityConfig
    example = """\
- stage: fineweb_quality
  line_punct_thr: 0.12
"""

    def make_filter(self):
        from datatrove.pipeline.filters import FineWebQualityFilter

        return FineWebQualityFilter(**self.config.model_dump())
