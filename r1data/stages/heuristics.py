"""Heuristic quality filters: datatrove's Gopher, C4 and FineWeb rules, by name with typed configs.

The rules, their parameters and drop reasons are datatrove's (``gopher_short_doc``,
``dup_line_frac``, ``curly_bracket``, ``line_punct_ratio`` ...) and every decision equals
datatrove's filter with the same parameters (tests/test_heuristics_parity.py). What differs is the
cost: words, sentences and n-grams come from one shared analysis of the text
(``r1data.sources.textstats``), computed once per document instead of once per filter, with a
per-chunk token cache and numpy n-gram hashing instead of Python strings.
"""

from __future__ import annotations

import re

from datatrove.data import Document
from pydantic import Field

from r1data.stages.base import FilterStage, StageConfig
from r1data.stages.registry import register

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile("\n+")
# C4 (datatrove's c4_filters): Wikipedia citations, terminal punctuation, policy boilerplate
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCT = (".", "?", "!", '"', "'")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


class _Heuristic(FilterStage):
    """A heuristic stage: its rules read the shared ``TextStats`` of the document's text."""

    requires = {"spacy": "web", "pandas": "web"}

    def setup(self) -> None:
        from r1data.sources.textstats import vocab

        vocab(self.config.language)  # load the tokenizer now, not on the first document

    def preload(self) -> list[tuple[str, str, dict]]:
        # the tokenizer (spaCy, imported without torch) loaded once in the fork server, not per worker
        return [("r1data.sources.textstats", "vocab", {"language": self.config.language})]

    def text_stats(self, text: str):
        from r1data.sources.textstats import analyze

        return analyze(text, self.config.language)


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
class GopherQuality(_Heuristic):
    """Gopher quality rules (MassiveText): word counts, word length, symbols, bullets, stop words."""

    name = "gopher_quality"
    Config = GopherQualityConfig
    example = """\
- stage: gopher_quality
  min_doc_words: 50
  max_non_alpha_words_ratio: 0.8
"""

    def setup(self) -> None:
        super().setup()
        from datatrove.pipeline.filters.gopher_quality_filter import STOP_WORDS

        sw = self.config.stop_words
        self._stop_words = set(STOP_WORDS if sw is None else sw)

    def keep(self, doc: Document):
        c = self.config
        text = doc.text
        st = self.text_stats(text)
        n_nonsym, n_alpha, mean_len, n_words = st.gopher_word_stats()
        if c.min_doc_words and n_nonsym < c.min_doc_words:
            return False, "gopher_short_doc"
        if c.max_doc_words and n_nonsym > c.max_doc_words:
            return False, "gopher_long_doc"
        # mean_len is nan without non-symbol words (datatrove: np.mean([])): no comparison holds
        if c.min_avg_word_length and mean_len < c.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if c.max_avg_word_length and mean_len > c.max_avg_word_length:
            return False, "gopher_above_avg_threshold"
        if not n_words and (c.max_symbol_word_ratio or c.max_non_alpha_words_ratio):
            return False, "gopher_short_doc"  # datatrove divides by zero here (only with min_doc_words off)
        if c.max_symbol_word_ratio and text.count("#") / n_words > c.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        if c.max_symbol_word_ratio and (text.count("...") + text.count("\u2026")) / n_words > c.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis"
        lines = st.splitlines
        if c.max_bullet_lines_ratio or c.max_ellipsis_lines_ratio:
            if not lines:
                return False, "gopher_short_doc"  # datatrove divides by zero (blank text, min_doc_words off)
        if c.max_bullet_lines_ratio:
            bullets = 0
            for s in lines:
                s = s.lstrip()
                bullets += s.startswith("\u2022") or s.startswith("-")
            if bullets / len(lines) > c.max_bullet_lines_ratio:
                return False, "gopher_too_many_bullets"
        if c.max_ellipsis_lines_ratio:
            ends = 0
            for s in lines:
                s = s.rstrip()
                ends += s.endswith("...") or s.endswith("\u2026")
            if ends / len(lines) > c.max_ellipsis_lines_ratio:
                return False, "gopher_too_many_end_ellipsis"
        if c.max_non_alpha_words_ratio and n_alpha / n_words < c.max_non_alpha_words_ratio:
            return False, "gopher_below_alpha_threshold"
        if c.min_stop_words and st.stop_words_present(self._stop_words) < c.min_stop_words:
            return False, "gopher_enough_stop_words"
        return True


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
class GopherRepetition(_Heuristic):
    """Gopher repetition rules: duplicated lines, paragraphs and n-grams."""

    name = "gopher_repetition"
    Config = GopherRepetitionConfig
    example = """\
- stage: gopher_repetition
  dup_line_frac: 0.3
"""

    def keep(self, doc: Document):
        c = self.config
        text = doc.text
        if not text:
            return False, "empty"
        paragraphs = _PARAGRAPHS.split(text.strip())
        dups, dup_chars = _find_duplicates(paragraphs)
        if c.dup_para_frac and dups / len(paragraphs) > c.dup_para_frac:
            return False, "dup_para_frac"
        if c.dup_para_char_frac and dup_chars / len(text) > c.dup_para_char_frac:
            return False, "dup_para_char_frac"
        lines = _LINES.split(text)
        dups, dup_chars = _find_duplicates(lines)
        if c.dup_line_frac and dups / len(lines) > c.dup_line_frac:
            return False, "dup_line_frac"
        if c.dup_line_char_frac and dup_chars / len(text) > c.dup_line_char_frac:
            return False, "dup_line_char_frac"
        st = self.text_stats(text)
        for n, frac in c.top_n_grams:
            top = st.top_ngram_chars(n)
            if top is not None and top / len(text) > frac:
                return False, f"top_{n}_gram"
        for n, frac in c.dup_n_grams:
            if st.dup_ngram_chars(n) / len(text) > frac:
                return False, f"duplicated_{n}_n_grams"
        return True


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
class C4Quality(_Heuristic):
    """C4 line and document rules: terminal punctuation, sentence counts, lorem ipsum, braces, policies."""

    name = "c4_quality"
    Config = C4QualityConfig
    example = """\
- stage: c4_quality
  filter_curly_bracket: false   # keep code-bearing documentation
"""

    def keep(self, doc: Document):
        """datatrove's C4 rules. Like datatrove's filter, a kept document's text becomes its kept
        lines (stripped, citations removed), which later stages see."""
        c = self.config
        text = doc.text
        st = self.text_stats(text)
        if c.split_paragraph:
            lines = st.splitlines
        else:
            from datatrove.utils.text import split_into_sentences

            lines = split_into_sentences(text, c.language)
        num_sentences = 0
        kept = []
        for line in lines:
            line = line.strip()
            words = line.split()
            if c.max_word_length != -1 and len(line) > c.max_word_length and any(len(w) > c.max_word_length for w in words):
                continue
            if c.remove_citations:
                line = _CITATION.sub("", line)
            if c.filter_no_terminal_punct and (not line.endswith(_END_PUNCT) or line.endswith("...")):
                continue
            if len(words) < c.min_words_per_line:
                continue
            low = line.lower()
            if c.filter_lorem_ipsum and "lorem ipsum" in low:
                return False, "lorem_ipsum"
            if c.filter_javascript and "javascript" in low:
                continue
            if c.filter_curly_bracket and "{" in line:
                return False, "curly_bracket"
            if c.filter_policy and any(p in low for p in _POLICY):
                continue
            if c.min_num_sentences != -1:
                num_sentences += st.sentences_in(line) if c.split_paragraph else 1
            kept.append(line)
        if num_sentences < c.min_num_sentences:
            return False, "too_few_sentences"
        doc.text = ("\n" if c.split_paragraph else " ").join(kept).strip()
        return True


class FineWebQualityConfig(StageConfig):
    line_punct_thr: float = Field(0.12, description="min fraction of lines ending in punctuation: line_punct_ratio")
    line_punct_exclude_zero: bool = False
    short_line_thr: float = Field(0.67, description="max fraction of short lines: short_line_ratio")
    short_line_length: int = Field(30, description="characters below which a line is short")
    char_duplicates_ratio: float = Field(0.01, description="max fraction of characters in duplicated lines: char_dup_ratio")
    new_line_ratio: float = Field(0.3, description="max newlines per word: list_ratio")
    language: str = "en"


@register
class FineWebQuality(_Heuristic):
    """FineWeb's extra rules: punctuated lines, short lines, duplicated characters, list-like pages."""

    name = "fineweb_quality"
    Config = FineWebQualityConfig
    example = """\
- stage: fineweb_quality
  line_punct_thr: 0.12
"""

    def setup(self) -> None:
        super().setup()
        from datatrove.utils.text import TERMINAL_PUNCTUATION

        self._stop_chars = tuple(TERMINAL_PUNCTUATION)

    def keep(self, doc: Document):
        c = self.config
        text = doc.text
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            return False, "empty"
        stop = self._stop_chars
        ratio = sum(1 for line in lines if line.endswith(stop)) / len(lines)
        if ratio < c.line_punct_thr and not (ratio == 0 and c.line_punct_exclude_zero):
            return False, "line_punct_ratio"
        ratio = sum(1 for line in lines if len(line) <= c.short_line_length) / len(lines)
        if ratio > c.short_line_thr:
            return False, "short_line_ratio"
        ratio = _find_duplicates(lines)[1] / (len(text) - text.count("\n"))
        if ratio > c.char_duplicates_ratio:
            return False, "char_dup_ratio"
        if text.count("\n") / self.text_stats(text).n_words > c.new_line_ratio:
            return False, "list_ratio"
        return True


def _find_duplicates(items: list[str]) -> tuple[int, int]:
    """(repeated items, characters in them): each occurrence after the first counts."""
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars
