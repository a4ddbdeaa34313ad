"""Code: read repositories (directories, git working trees, tar/zip archives), filter them the
StarCoder / The Stack way, and redact secrets."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Literal

from datatrove.data import Document, DocumentsPipeline
from pydantic import Field, field_validator

from r1data.errors import ShardError
from r1data.sources.secrets import DEFAULT_KINDS, EXAMPLE_DOMAINS, KINDS
from r1data.stages.base import FilterStage, InputFile, ReaderStage, StageConfig, TaggerStage, reject
from r1data.dotted import suggest
from r1data.stages.registry import register

#: skipped like .gitignore'd paths (not documents): caches and build droppings nobody commits
DEFAULT_EXCLUDE = ["__pycache__/", "*.py[co]", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".ipynb_checkpoints/", ".DS_Store"]


def _known_languages() -> set[str]:
    from r1data.sources.languages import LANGUAGES

    return set(LANGUAGES)


class CodeReaderConfig(StageConfig):
    source: str = Field("code", description="value of the `source` column")
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE), description="gitignore-style patterns skipped like ignored files (not documents)")
    gitignore: bool = Field(True, description="honour .gitignore files (and .git/info/exclude) in directories")
    follow_symlinks: bool = Field(False, description="follow links whose target is inside the root (each directory once); others are rejected")
    languages: list[str] | None = Field(None, description="keep only these languages (linguist names); null: every detected language")
    keep_unknown: bool = Field(False, description="keep files whose language is not detected (language null) instead of rejecting them")
    skip_vendored: bool = Field(True, description="reject vendored paths (node_modules/, vendor/, third_party/, jquery.js ...) as vendored")
    skip_generated: bool = Field(True, description="reject lock files, *_pb2.py, 'Code generated ... DO NOT EDIT' files as generated")
    skip_minified: bool = Field(True, description="reject *.min.js and web files with very long lines as minified")
    max_file_kb: float = Field(1024, gt=0, description="larger files are rejected as too_large without being read (The Stack: 1 MB)")
    max_archive_mb: float = Field(1024, gt=0, description="an archive expanding beyond this is refused whole (archive_too_large)")
    max_archive_members: int = Field(200_000, ge=1, description="an archive with more entries is refused whole")
    max_compression_ratio: float = Field(100, gt=1, description="an archive expanding more than this many times its size is refused (zip_bomb)")

    @field_validator("languages")
    @classmethod
    def _known(cls, v):
        if v is None:
            return v
        if not v:
            raise ValueError("give at least one language, or null for all")
        canonical = {name.lower(): name for name in _known_languages()}  # "python" means Python
        bad = [x for x in v if x.lower() not in canonical]
        if bad:
            raise ValueError(f"unknown language {bad[0]!r}{suggest(bad[0].lower(), canonical)} (see r1data/sources/languages.py)")
        return [canonical[x.lower()] for x in v]


@register
class CodeReader(ReaderStage):
    """Read source trees (directories, git working trees, tar/zip archives) safely: one document per file, skips recorded."""

    name = "code_reader"
    Config = CodeReaderConfig
    inputs_are_roots = True
    requires = {"pathspec": "code"}
    example = """\
- stage: code_reader
  source: code
  languages: [Python, C, Shell]     # null: all detected languages
  exclude: [__pycache__/, site-packages/]
  max_file_kb: 1024
"""

    _rank, _world = 0, 1  # set by run(): which share of a shared directory this task reads

    @classmethod
    def check_config(cls, config: CodeReaderConfig) -> list[tuple[str, str]]:
        import importlib.util

        if (config.gitignore or config.exclude) and importlib.util.find_spec("pathspec") is None:
            return [("gitignore", "needs the Python module pathspec: pip install 'r1data[code]'")]
        return []

    def setup(self) -> None:
        self.source = self.config.source

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._rank, self._world = rank, world_size
        yield from super().run(data, rank, world_size)

    def assigned_files(self, rank: int, world_size: int) -> list[InputFile]:
        # A directory is shared: every task walks it (cheap) and reads every world_size-th file, so
        # one big tree still uses all workers. An archive goes whole to one task (it streams).
        return [f for f in self.files if os.path.isdir(f.uri) or f.index % world_size == rank]

    def read_file(self, file: InputFile) -> Iterator[Document]:
        from datatrove.utils.logging import logger

        from r1data.sources.code_classify import repository_licence
        from r1data.sources.code_files import ArchiveRefused, Limits, open_root

        c = self.config
        limits = Limits(
            max_file_bytes=int(c.max_file_kb * 1024),
            max_archive_bytes=int(c.max_archive_mb * 2**20),
            max_members=c.max_archive_members,
            max_ratio=c.max_compression_ratio,
        )
        name = os.path.basename(file.uri.rstrip("/"))
        try:
            root = open_root(file.uri, limits, exclude=c.exclude, gitignore=c.gitignore, follow_symlinks=c.follow_symlinks)
        except ArchiveRefused as e:
            doc = Document(text="", id=f"{self.source}:{name}", metadata={"path": name, "repo": name, "refused": str(e)})
            reject(doc, self.label, e.reason)
            yield doc
            raise ShardError(file.uri, f"archive refused ({e.reason}): {e}") from None
        except OSError as e:
            raise ShardError(file.uri, str(e)) from None
        shared = root.kind == "directory"
        try:
            licence, licence_file = repository_licence(root.licence_files())
            for ordinal, entry in enumerate(root.entries()):
                if shared and ordinal % self._world != self._rank:
                    continue
                yield self._entry_doc(root, entry, ordinal, licence, licence_file, limits.max_file_bytes)
        except OSError as e:
            raise ShardError(file.uri, str(e)) from None
        finally:
            root.close()
        if root.stats and (not shared or self._rank == 0):  # every task walks a shared tree: count it once
            # ignored paths are not documents; the manifest's input entry says how many there were
            self.file_notes[file.uri] = {"ignored_files": root.stats["ignored"], "ignored_dirs": root.stats["ignored_dirs"]}
            logger.info(f"{file.uri}: ignored like .gitignore'd paths: {dict(root.stats)}")

    def _entry_doc(self, root, entry, ordinal: int, licence, licence_file, limit: int) -> Document:
        from r1data.sources.code_classify import (
            binary_by_extension, decode_source, generated_marker, generated_name, looks_binary, minified, spdx_header, vendored,
        )
        from r1data.sources.languages import detect_language, extension_of

        c = self.config
        path = entry.path
        md = {"path": path, "repo": root.name, "record_index": ordinal}
        if root.vcs:
            md["vcs"] = root.vcs
        if entry.size is not None:
            md["size_bytes"] = entry.size
        md.update(entry.detail)
        doc = Document(text="", id=f"{self.source}:{root.name}/{path}", metadata=md)

        def rejected(reason: str, text: str = "") -> Document:
            doc.text = text
            reject(doc, self.label, reason)
            return doc

        if entry.skip:
            return rejected(entry.skip)
        if c.skip_vendored and vendored(path):
            return rejected("vendored")
        if entry.size is not None and entry.size > limit:
            return rejected("too_large")
        if binary_by_extension(path):
            return rejected("binary")
        try:
            data = entry.read(limit + 1)
        except OSError as e:
            md["error"] = " ".join(str(e).split())[:300]
            return rejected("unreadable")
        if len(data) > limit:  # the listed size was wrong or unknown
            return rejected("too_large")
        md["size_bytes"] = len(data)
        if looks_binary(data):
            return rejected("binary")
        language = detect_language(path, data[:512])
        md["language"] = language
        md["extension"] = extension_of(path.rsplit("/", 1)[-1]) or None
        decoded = decode_source(data)
        if decoded is None:
            return rejected("undecodable")
        text, md["encoding"] = decoded
        if c.skip_generated and (generated_name(path) or generated_marker(text)):
            return rejected("generated", text)
        if c.skip_minified and minified(path, text, language):
            return rejected("minified", text)
        if language is None and not c.keep_unknown:
            return rejected("unknown_language", text)
        if c.languages is not None and language not in c.languages:
            return rejected("language_not_selected", text)
        if not text.strip():
            return rejected("empty_file", text)
        spdx = spdx_header(text)
        if spdx:
            md.update(license=spdx, license_source="spdx_header")
        elif licence:
            md.update(license=licence, license_source="license_file", license_file=licence_file)
        md["lines"] = text.count("\n") + (0 if text.endswith("\n") else 1)
        md["git_sha1"] = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        doc.text = text
        return doc


# ------------------------------------------------------------------------------------------------
# quality


class CodeQualityConfig(StageConfig):
    max_line_length: int | None = Field(1000, ge=1, description="longest line allowed: max_line_length")
    max_mean_line_length: float | None = Field(100, gt=0, description="mean line length allowed: mean_line_length")
    min_alphanum_fraction: float | None = Field(0.25, ge=0, le=1, description="least share of letters and digits: alphanum_fraction")
    line_rules_skip: list[str] = Field(["Markdown", "reStructuredText", "Text"], description="languages exempt from the three rules above (unwrapped prose)")
    auto_generated_markers: list[str] = Field(
        ["auto-generated", "autogenerated", "automatically generated", "generated automatically", "do not edit"],
        description="phrases (any case) in the first marker_lines lines that mark generated code: auto_generated",
    )
    marker_lines: int = Field(5, ge=1, description="how many leading lines are searched for the markers")
    max_encoded_chars: int | None = Field(1024, ge=1, description="longest base64/hex/unicode-escape run allowed: encoded_data")
    max_encoded_fraction: float | None = Field(0.5, gt=0, le=1, description="largest share of such runs allowed: encoded_data")
    max_digit_fraction: float | None = Field(0.5, gt=0, le=1, description="largest share of digits among non-space characters: numeric_data")
    data_min_chars: int | None = Field(50, ge=0, description="JSON/YAML/TOML/XML/CSV/INI files shorter than this: data_file_too_short")
    data_max_chars: int | None = Field(5000, ge=1, description="data files longer than this: data_file_too_long")
    reject_xml_in_code: bool = Field(True, description="non-XML files starting with <?xml version=: xml_in_non_xml")
    html_min_visible_fraction: float | None = Field(0.2, ge=0, le=1, description="HTML with less visible text than this share: html_visible_text")
    html_min_visible_chars: int = Field(100, ge=0, description="HTML with fewer visible characters: html_visible_text")


# StarCoder's "encoded data" runs: base64 (a run of 64+ characters of its alphabet, newlines
# included), hexadecimal byte literals (8+ of 0x1f / \x1f, comma or space separated; StarCoder also
# counts bare "1f 2e ..." pairs), 8+ \uXXXX escapes.
_HEX_RUN = re.compile(r"(?:(?:0[xX]|\\x)[0-9a-fA-F]{2}(?![0-9a-fA-F])[,\s]*){8,}")
_UNICODE_RUN = re.compile(r"(?:\\u[0-9a-fA-F]{4}){8,}")
_HTML_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)
_B64_CLASS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n")
# bytes -> 'A' inside the base64 alphabet (newline too: it joins wrapped lines), ' ' outside it
_B64_TABLE = bytes(65 if b in _B64_CLASS else 32 for b in range(256))
_NOT_ALNUM = bytes(b for b in range(256) if not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122))
_NOT_DIGIT = bytes(b for b in range(256) if not 48 <= b <= 57)
_SPACE = b" \t\n\r\x0b\x0c"


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def char_counts(text: str) -> tuple[int, int, int]:
    """``(letters and digits, digits, non-space characters)`` of ``text``, at C speed for its ASCII part."""
    b = text.encode("utf-8", "surrogatepass")  # bytes >= 0x80 belong to non-ASCII characters
    alnum = len(b.translate(None, _NOT_ALNUM))
    digits = len(b.translate(None, _NOT_DIGIT))
    spaces = len(b) - len(b.translate(None, _SPACE))
    if not text.isascii():
        rest = "".join(_NON_ASCII.findall(text))
        alnum += sum(c.isalnum() for c in rest)
        digits += sum(c.isdigit() for c in rest)
        spaces += sum(c.isspace() for c in rest)
    return alnum, digits, len(text) - spaces


def encoded_runs(text: str) -> list[int]:
    """Lengths of base64, hex-literal and unicode-escape runs (see above) in ``text``."""
    mapped = text.encode("utf-8", "surrogatepass").translate(_B64_TABLE)
    runs = [n for n in map(len, mapped.split()) if n >= 64] if b"A" * 64 in mapped else []
    # matched where their prefix occurs: scanning every position with the regex is 10x slower
    for prefixes, pattern in ((("0x", "0X", "\\x"), _HEX_RUN), (("\\u",), _UNICODE_RUN)):
        for prefix in prefixes:
            i = text.find(prefix)
            while i != -1:
                m = pattern.match(text, i)
                if m:
                    runs.append(m.end() - i)
                i = text.find(prefix, m.end() if m else i + len(prefix))
    return runs


@register
class CodeQuality(FilterStage):
    """StarCoder / The Stack code filters: line lengths, alphanumeric share, generated markers, encoded and data files."""

    name = "code_quality"
    Config = CodeQualityConfig
    example = """\
- stage: code_quality
  max_line_length: 1000
  max_mean_line_length: 100
  min_alphanum_fraction: 0.25
"""

    def keep(self, doc: Document):
        from r1data.sources.languages import DATA_LANGUAGES

        c = self.config
        text = doc.text
        lang = doc.metadata.get("language")
        if not text:
            return False, "empty"
        alnum, digits, nonspace = char_counts(text)
        if lang not in c.line_rules_skip:
            lengths = [len(line) for line in text.splitlines()] or [0]
            if c.max_line_length is not None and max(lengths) > c.max_line_length:
                return False, "max_line_length"
            if c.max_mean_line_length is not None and sum(lengths) / len(lengths) > c.max_mean_line_length:
                return False, "mean_line_length"
            if c.min_alphanum_fraction is not None and alnum / len(text) < c.min_alphanum_fraction:
                return False, "alphanum_fraction"
        if c.auto_generated_markers:
            head = "\n".join(text.split("\n", c.marker_lines)[: c.marker_lines]).lower()
            if any(m.lower() in head for m in c.auto_generated_markers):
                return False, "auto_generated"
        if c.reject_xml_in_code and lang not in ("XML", "SVG", "HTML") and "<?xml version=" in text[:100]:
            return False, "xml_in_non_xml"
        if lang in DATA_LANGUAGES:
            if c.data_min_chars is not None and len(text) < c.data_min_chars:
                return False, "data_file_too_short"
            if c.data_max_chars is not None and len(text) > c.data_max_chars:
                return False, "data_file_too_long"
        if c.max_encoded_chars is not None or c.max_encoded_fraction is not None:
            runs = encoded_runs(text)
            if runs and (
                (c.max_encoded_chars is not None and max(runs) > c.max_encoded_chars)
                or (c.max_encoded_fraction is not None and sum(runs) / len(text) > c.max_encoded_fraction)
            ):
                return False, "encoded_data"
        if c.max_digit_fraction is not None and nonspace and digits / nonspace > c.max_digit_fraction:
            return False, "numeric_data"
        if lang == "HTML" and c.html_min_visible_fraction is not None:
            visible = " ".join(_HTML_DROP.sub(" ", text).split())
            if len(visible) < c.html_min_visible_chars or len(visible) / len(text) < c.html_min_visible_fraction:
                return False, "html_visible_text"
        return True


# ------------------------------------------------------------------------------------------------
# secrets

#: labels of the secret_redaction stages that redacted a document (working state, never written)
REDACTED_KEY = "_redacted"

SecretKind = Literal[KINDS]  # type: ignore[valid-type]


class SecretRedactionConfig(StageConfig):
    kinds: list[SecretKind] = Field(list(DEFAULT_KINDS), description="what to redact (ip_address is off by default)")
    keep_email_domains: list[str] = Field(list(EXAMPLE_DOMAINS), description="addresses at these domains are examples, kept as they are")
    drop_if: list[SecretKind] = Field([], description="reject documents that contained these kinds (reason contains_<kind>) instead of keeping them redacted")
    by_content: bool = Field(True, description="also find secrets by their surroundings: a 40-character secret key next to an AWS key id, high-entropy strings next to key ids (code-v1: false)")
    redact_rejected: bool = Field(
        True, description="redact documents rejected before this stage too (or in an earlier phase), so rejected/ holds no secret either (code-v1: false)"
    )


@register
class SecretRedaction(TaggerStage):
    """Redact API keys, tokens, private keys, passwords and e-mail addresses, rejected documents too; counts per kind in `redactions`."""

    # With redact_rejected (the default) the run's sinks pass every row through ``scrub`` before
    # writing it, wherever it was rejected: by an earlier stage, by the reader, in an earlier phase.
    # Whatever the recipe redacts is then absent from rejected/ as from shards/.

    name = "secret_redaction"
    version = 2  # 2: by_content, redact_rejected
    Config = SecretRedactionConfig
    example = """\
- stage: secret_redaction
  kinds: [private_key, aws_access_key_id, aws_secret_access_key, github_token, password, email]
  drop_if: [private_key]
"""

    def _redact(self, doc: Document) -> dict[str, int]:
        from r1data.sources.secrets import redact

        c = self.config
        doc.metadata[REDACTED_KEY] = (*doc.metadata.get(REDACTED_KEY, ()), self.label)
        if not isinstance(doc.text, str) or not doc.text:
            return {}
        text, counts = redact(doc.text, c.kinds, c.keep_email_domains, c.by_content)
        if counts:
            doc.text = text
            prior = doc.metadata.get("redactions") or {}
            doc.metadata["redactions"] = {k: prior.get(k, 0) + counts.get(k, 0) for k in sorted(set(prior) | set(counts))}
        return counts

    def tag(self, doc: Document) -> str | None:
        counts = self._redact(doc)
        # counts of an earlier pass (a work sink scrubbed the document in an earlier phase) count too
        found = set(counts) | set(doc.metadata.get("redactions") or {})
        for kind in self.config.drop_if:
            if kind in found:
                return f"contains_{kind}"
        return None

    def scrub(self, doc: Document) -> None:
        """Redact a document about to be written that has not passed this stage (rejected before it)."""
        if self.config.redact_rejected and self.label not in doc.metadata.get(REDACTED_KEY, ()):
            self._ensure_setup()
            self._redact(doc)


def scrubbers(steps) -> list:
    """The ``scrub`` of every stage in ``steps`` that redacts rejected documents too (secret_redaction
    with ``redact_rejected``, pii_redact): the sinks pass every row they write through these (a no-op
    for a row the stage has already redacted)."""
    out = []
    for s in steps:
        if isinstance(s, SecretRedaction):
            if s.config.redact_rejected:
                out.append(s.scrub)
        elif getattr(s, "name", None) == "pii_redact":
            out.append(s.scrub)
    return out
