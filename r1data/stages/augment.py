"""Augmentation stages: GSM8K number variants, Python rewrites, back-translation, EDA.

Each stage passes every document on and, after it, the variants it made. A variant is a new
document with a stable id (``<id>#aug-<stage>-<n>``), the original's metadata plus
``augmented_from`` / ``augmented_root`` / ``augmentation`` (kind and parameters), the original's
``source``, ``input_file`` and ``input_index``, and a ``record_index`` of its own (see
``generated_record_index``). A variant that fails its verifier is emitted *rejected*, with the
verifier's reason, so it lands in ``rejected/``: nothing is dropped silently. What a stage did
to an original (augmented, skipped and why) is recorded in its ``augment`` metadata.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import xxhash
from datatrove.data import Document
from pydantic import BaseModel, ConfigDict, Field, model_validator

from r1data.io.schema import INTERNAL_PREFIX
from r1data.stages.base import GENERATED_KEY, Stage, StageConfig, is_rejected, reject
from r1data.stages.registry import register

NOTES_KEY = "augment"  # doc.metadata["augment"][stage label] = what the stage did to the document
_GENERATED_BIT = 1 << 62


def generated_record_index(doc_id: str) -> int:
    """``record_index`` of a generated document: bit 62 set, low bits a 64-bit hash of its id.

    Ids are unique by construction, so these indices are unique in practice (a collision needs
    ~2^31 generated documents in one file), deterministic, and sort after every document the
    reader produced (readers count from 0), so "first in input order" always prefers originals."""
    return _GENERATED_BIT | (xxhash.xxh64_intdigest(doc_id.encode("utf-8")) & (_GENERATED_BIT - 1))


def seeded_rng(seed: int, doc_id: str, n: int = 0) -> random.Random:
    """A generator that depends only on (seed, document id, n): same output for any task layout."""
    return random.Random(f"{seed}\0{doc_id}\0{n}")


@dataclass
class Variant:
    text: str
    params: dict[str, Any] = field(default_factory=dict)  # what made it (goes to ``augmentation``)
    metadata: dict[str, Any] = field(default_factory=dict)  # fields that differ from the original's
    reason: str | None = None  # set: the variant is rejected with this reason


@dataclass
class Outcome:
    """What an augmentation stage did with one document."""

    variants: list[Variant] = field(default_factory=list)
    note: dict[str, Any] = field(default_factory=dict)  # recorded under metadata["augment"][label]
    reject: str | None = None  # reject the original itself (malformed record, failed replace)
    text: str | None = None  # replace the original's text (mode: replace)
    metadata: dict[str, Any] = field(default_factory=dict)  # added to the original


class DomainsMixin(StageConfig):
    """Parameters every augmentation stage has."""

    domains: list[str] | None = Field(None, description="only documents whose `domain` (domain_tag) is listed; null: every document")
    seed: int = Field(0, description="seed; a document's randomness depends only on (seed, id)")


class AugmentStage(Stage):
    """Base of stages that add documents: ``augment`` (or ``augment_batch``) returns an ``Outcome``."""

    kind: ClassVar[str] = "augment"
    #: short name used in variant ids and ``augmentation.kind``
    augment_kind: ClassVar[str] = "aug"

    def applies(self, doc: Document) -> bool:
        domains = getattr(self.config, "domains", None)
        return domains is None or doc.metadata.get("domain") in domains

    def augment(self, doc: Document) -> Outcome:
        raise NotImplementedError

    def augment_batch(self, docs: list[Document]) -> list[Outcome]:
        return [self._augment_safely(d) for d in docs]

    def _augment_safely(self, doc: Document, fn=None):
        """``fn(doc)`` (default ``augment``); a bug or a pathological document must not take the task down: it is recorded instead."""
        try:
            return (fn or self.augment)(doc)
        except Exception as e:  # noqa: BLE001 - reported in the document's metadata and the stats
            from datatrove.utils.logging import logger

            logger.warning(f"{self.label}: {doc.id}: {type(e).__name__}: {e}")
            return Outcome(note={"status": "error", "reason": "augment_error", "detail": f"{type(e).__name__}: {e}"[:300]})

    def variant_id(self, parent: Document, n: int) -> str:
        return f"{parent.id}#aug-{self.label}-{n}"

    def make_variant(self, parent: Document, v: Variant, n: int) -> Document:
        vid = self.variant_id(parent, n)
        md = {k: val for k, val in parent.metadata.items() if not k.startswith(INTERNAL_PREFIX) and k != NOTES_KEY}
        md.update(v.metadata)
        md["augmented_from"] = parent.id
        md["augmented_root"] = parent.metadata.get("augmented_root", parent.id)
        md["augmentation"] = {"kind": self.augment_kind, "stage": self.label, "version": self.version, "n": n, **v.params}
        md["record_index"] = generated_record_index(vid)
        md[GENERATED_KEY] = self.label
        doc = Document(text=v.text, id=vid, metadata=md)
        if v.reason:
            reject(doc, self.label, v.reason)
        return doc

    def _run_batch(self, batch: list[Document]) -> Iterator[Document]:
        """Each document of ``batch``, followed by the variants made from it (``Stage.run`` batches)."""
        live = [d for d in batch if not is_rejected(d) and self.applies(d)]
        outcomes: dict[int, Outcome] = {}
        if live:
            with self.track_time("batch"):
                for d, o in zip(live, self.augment_batch(live)):
                    outcomes[id(d)] = o
        for doc in batch:
            o = outcomes.get(id(doc))
            if o is None:
                yield doc
                continue
            self.stat_update("total")
            if o.note:
                doc.metadata.setdefault(NOTES_KEY, {})[self.label] = o.note
                status = o.note.get("status")
                if status and status != "augmented":
                    self.stat_update(f"{status}_{o.note.get('reason', '')}".rstrip("_"))
            doc.metadata.update(o.metadata)
            if o.text is not None:
                doc.text = o.text
            if o.reject:
                reject(doc, self.label, o.reject)
                self.stat_update("dropped", f"dropped_{o.reject}")
            yield doc
            for n, v in enumerate(o.variants, 1):
                out = self.make_variant(doc, v, n)
                self.stat_update("generated")
                self.stat_update("variants_rejected" if v.reason else "variants_kept")
                if v.reason:
                    self.stat_update(f"variant_{v.reason}")
                yield out


# --------------------------------------------------------------------------------------------
# math


class MathAugmentConfig(DomainsMixin):
    variants: int = Field(1, ge=1, le=20, description="verified variants wanted per problem")
    candidates: int = Field(3, ge=1, le=50, description="variants written and verified per problem at most (failures are rejected documents)")
    proposals: int = Field(32, ge=1, le=1000, description="number assignments tried per candidate before giving up")
    screen: bool = Field(True, description="apply the verifier's type rules to proposals before writing them (cheap; higher yield)")
    answer_field: str | None = Field("answer", description="metadata field holding the solution (GSM8K `answer`); null: the text holds question, separator, solution")
    separator: str = Field("\n\n", min_length=1, description="with answer_field null: what separates question and solution in the text")
    on_malformed: Literal["reject", "keep"] = Field("reject", description="a record that is not well-formed GSM8K: reject it (math_* reason) or keep it untouched")


@register
class MathAugment(AugmentStage):
    """GSM8K problems with new numbers: the calculator chain and the #### answer are recomputed and verified."""

    name = "math_augment"
    Config = MathAugmentConfig
    augment_kind = "math"
    batch_size = 64
    example = """\
- stage: math_augment
  variants: 2          # verified variants per problem
  candidates: 4        # at most this many written; each one failing the verifier is a rejected document
  answer_field: answer # GSM8K: question in the text, solution in the `answer` field
"""

    def _split(self, doc: Document) -> tuple[str, str | None] | None:
        """(question, solution) of a GSM8K record, or None for a document that is not one.

        A record is a document carrying the answer field (even empty: then it is malformed), or,
        with ``answer_field: null``, a text with a ``####`` line; anything else passes through."""
        c = self.config
        if c.answer_field:
            if c.answer_field not in doc.metadata:
                return None
            return doc.text, doc.metadata.get(c.answer_field)
        if not re.search(r"^####", doc.text, re.M):
            return None
        q, sep, sol = doc.text.partition(c.separator)
        return (q, sol) if sep else ("", doc.text)

    def augment(self, doc: Document) -> Outcome:
        from r1data.augment.math import MalformedProblem, analyze, generate, verify

        c = self.config
        split = self._split(doc)
        if split is None:
            return Outcome(note={"status": "skipped", "reason": "not_gsm8k"})
        question, solution = split
        try:
            problem = analyze(question, solution)
        except MalformedProblem as e:
            note = {"status": "malformed", "reason": e.reason, "detail": e.detail}
            return Outcome(note=note, reject=e.reason if c.on_malformed == "reject" else None)
        if not problem.augmentable:
            return Outcome(note={"status": "skipped", "reason": problem.skip})
        variants: list[Variant] = []
        seen = {(question, solution)}
        failed: dict[str, int] = {}
        kept = 0
        for n in range(c.candidates):
            if kept >= c.variants:
                break
            cand = generate(problem, seeded_rng(c.seed, doc.id, n), tries=c.proposals, screen=c.screen)
            if isinstance(cand, str):
                failed[cand] = failed.get(cand, 0) + 1
                continue
            if (cand.question, cand.solution) in seen:
                failed["duplicate"] = failed.get("duplicate", 0) + 1
                continue
            seen.add((cand.question, cand.solution))
            reason = verify(problem, cand.question, cand.solution)
            kept += reason is None
            params = {"changes": cand.changes, "proposals": cand.tries}
            if c.answer_field:
                variants.append(Variant(cand.question, params, {c.answer_field: cand.solution}, reason))
            else:
                variants.append(Variant(cand.question + c.separator + cand.solution, params, {}, reason))
        note: dict[str, Any] = {"status": "augmented" if kept else "skipped", "variants": kept}
        if not kept:
            note["reason"] = max(failed, key=failed.get) if failed else "verification_failed"
        if failed:
            note["not_written"] = failed
        return Outcome(variants=variants, note=note)


# --------------------------------------------------------------------------------------------
# code


class CodeAugmentConfig(DomainsMixin):
    variants: int = Field(1, ge=1, le=20, description="variants per Python file (differently renamed)")
    rename: bool = Field(True, description="rename function-local variables consistently")
    rename_fraction: float = Field(1.0, gt=0, le=1, description="fraction of renameable locals renamed in a variant")
    docstrings: Literal["keep", "remove"] = "keep"
    comments: Literal["keep", "remove"] = "keep"
    layout: Literal["keep", "unparse"] = Field("keep", description="keep: edit in place (formatting and comments survive); unparse: re-format with ast.unparse")
    language_field: str = Field("language", description="metadata field naming the programming language (code reader)")
    max_bytes: int = Field(1_000_000, ge=1, description="larger files pass through untouched (reason too_large)")

    @model_validator(mode="after")
    def _unparse_drops_comments(self):
        if self.layout == "unparse" and self.comments == "keep":
            raise ValueError("layout unparse re-formats through ast.unparse, which drops comments; set comments: remove, or layout: keep")
        if not (self.rename or self.docstrings == "remove" or self.comments == "remove" or self.layout == "unparse"):
            raise ValueError("nothing to rewrite: enable rename, docstrings: remove, comments: remove or layout: unparse")
        return self


PYTHON_SUFFIXES = (".py", ".pyi", ".pyw")


@register
class CodeAugment(AugmentStage):
    """Python rewrites through the AST (local renames, docstrings, comments, layout), each verified by compiling and comparing ASTs."""

    name = "code_augment"
    Config = CodeAugmentConfig
    augment_kind = "code"
    batch_size = 16
    example = """\
- stage: code_augment
  rename: true
  docstrings: remove
  comments: keep
  layout: keep        # or unparse (with comments: remove)
"""

    def language(self, doc: Document) -> str | None:
        md = doc.metadata
        lang = md.get(self.config.language_field)
        if isinstance(lang, str) and lang.strip():
            return lang.strip().lower()
        for key in ("path", "url", "input_file"):
            p = md.get(key)
            if isinstance(p, str) and p.lower().endswith(PYTHON_SUFFIXES):
                return "python"
        return None

    def augment(self, doc: Document) -> Outcome:
        from r1data.augment.code import CodeError, rewrite_python, verify_python

        c = self.config
        lang = self.language(doc)
        if lang not in ("python", "python3", "py"):
            return Outcome(note={"status": "skipped", "reason": "language_not_supported", "language": lang})
        if len(doc.text.encode("utf-8", "replace")) > c.max_bytes:
            return Outcome(note={"status": "skipped", "reason": "too_large"})
        variants, seen, kept = [], {doc.text}, 0
        note: dict[str, Any] = {}
        for n in range(c.variants):
            try:
                rw = rewrite_python(
                    doc.text, rename=c.rename, rename_fraction=c.rename_fraction, docstrings=c.docstrings,
                    comments=c.comments, layout=c.layout, seed=seeded_rng(c.seed, doc.id, n).randrange(2**32),
                )
            except CodeError as e:
                return Outcome(note={"status": "skipped", "reason": e.reason, "detail": e.detail[:300]})
            except (RecursionError, MemoryError) as e:
                return Outcome(note={"status": "skipped", "reason": "too_complex", "detail": type(e).__name__})
            if rw.skipped_scopes:
                note["not_renamed"] = rw.skipped_scopes[:20]
            if rw.source in seen:
                continue
            seen.add(rw.source)
            reason = verify_python(doc.text, rw.source, docstrings_removed=c.docstrings == "remove")
            kept += reason is None
            params = {
                "renamed": sum(len(v) for v in rw.renamed.values()), "docstrings_removed": rw.docstrings_removed,
                "comments_removed": rw.comments_removed if (c.comments == "remove" or c.layout == "unparse") else 0, "layout": c.layout,
            }
            variants.append(Variant(rw.source, params, {}, reason))
        note.update({"status": "augmented" if kept else "skipped", "variants": kept})
        if not variants:
            note["reason"] = "no_change"
        elif not kept:
            note["reason"] = "verification_failed"
        return Outcome(variants=variants, note=note)


# --------------------------------------------------------------------------------------------
# quality gate (back-translation and EDA variants)

DEFAULT_GATE_MODEL = "models/kenlm/en/en.arpa.bin"


class GateOptions(BaseModel):
    """Thresholds of the gate every back-translated or EDA variant passes (``r1data.augment.gate``); null turns a check off."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str = Field(DEFAULT_GATE_MODEL, description="KenLM model scoring variant and source (the kenlm_perplexity stage's default)")
    sp_model: str | None = Field(None, description="SentencePiece model; default <stem>.sp.model beside the KenLM file")
    max_ppl_ratio: float | None = Field(2.0, gt=0, description="reject a variant whose perplexity is more than this multiple of its source's")
    min_length_ratio: float | None = Field(0.8, gt=0, description="reject a variant with fewer words than this fraction of its source's")
    max_length_ratio: float | None = Field(1.25, gt=0, description="... or more words than this multiple")
    min_similarity: float | None = Field(0.6, ge=0, le=1, description="reject a variant whose chrF against its source is below this (meaning lost)")
    max_similarity: float | None = Field(0.98, gt=0, le=1, description="reject a variant whose chrF is at least this (nothing changed): <kind>_unchanged")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_length_ratio is not None and self.max_length_ratio is not None and self.min_length_ratio > self.max_length_ratio:
            raise ValueError(f"min_length_ratio {self.min_length_ratio} is above max_length_ratio {self.max_length_ratio}")
        if self.min_similarity is not None and self.max_similarity is not None and self.min_similarity >= self.max_similarity:
            raise ValueError(f"min_similarity {self.min_similarity} is not below max_similarity {self.max_similarity}")
        return self

    def thresholds(self):
        from r1data.augment.gate import Thresholds

        return Thresholds(self.max_ppl_ratio, self.min_length_ratio, self.max_length_ratio, self.min_similarity, self.max_similarity)


class EdaGateOptions(GateOptions):
    max_ppl_ratio: float | None = Field(1.5, gt=0, description="reject a variant whose perplexity is more than this multiple of its source's")
    min_similarity: float | None = Field(0.75, ge=0, le=1, description="reject a variant whose chrF against its source is below this (meaning lost)")


class GatedAugmentStage(AugmentStage):
    """An augmentation stage whose variants pass the quality gate (``config.gate``; null: off)."""

    #: prefix of the gate's reasons: ``<prefix>_perplexity``, ``_length_ratio``, ``_similarity``, ``_unchanged``
    gate_prefix: ClassVar[str] = "augmentation"

    @classmethod
    def gate_problems(cls, gate: GateOptions | None) -> list[tuple[str, str]]:
        """Validation-time: the gate's Python modules and model files."""
        if gate is None:
            return []
        import importlib.util

        from r1data.paths import resolve_path
        from r1data.quality.cards import check_model_file
        from r1data.quality.kenlm_model import sp_model_for

        problems = [
            ("gate", f"the quality gate needs the Python module {mod}: pip install 'r1data[quality]' (or gate: null)")
            for mod in ("kenlm", "sentencepiece")
            if importlib.util.find_spec(mod) is None
        ]
        model = resolve_path(gate.model)
        problem = check_model_file(model, ("kenlm-binary", "kenlm-arpa"), "gate.model: KenLM model")
        if problem:
            return problems + [("gate", problem)]
        sp = resolve_path(gate.sp_model) if gate.sp_model else sp_model_for(model)
        if not sp.is_file():
            problems.append(("gate", f"gate.sp_model: SentencePiece model not found: {sp}"))
        return problems

    def setup_gate(self) -> None:
        from r1data.augment.gate import QualityGate
        from r1data.paths import resolve_path

        g = self.config.gate
        self.gate = None
        if g is not None:
            self.gate = QualityGate(g.thresholds(), str(resolve_path(g.model)), str(resolve_path(g.sp_model)) if g.sp_model else None)

    def judge(self, pairs: list[tuple[str, str]]) -> list[tuple[str | None, dict[str, Any] | None]]:
        """``(reason or None, figures)`` per ``(source, variant)``; ``(None, None)`` with the gate off."""
        if self.gate is None:
            return [(None, None)] * len(pairs)
        try:
            verdicts = self.gate.assess(pairs)
        except Exception as e:  # noqa: BLE001 - one pathological text must not take the task down: retried one by one
            from datatrove.utils.logging import logger

            logger.warning(f"{self.label}: quality gate failed on a batch ({type(e).__name__}: {e}); retrying one by one")
            verdicts = []
            for pair in pairs:
                try:
                    verdicts += self.gate.assess([pair])
                except Exception as e1:  # noqa: BLE001 - the variant is rejected, the error recorded in its figures
                    verdicts.append(("gate_error", {"error": f"{type(e1).__name__}: {e1}"[:300]}))
        return [(f"{self.gate_prefix}_{check}" if check else None, fig) for check, fig in verdicts]

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        g = self.config.gate
        if g is not None:
            from r1data.paths import resolve_path, sha256_file

            model = resolve_path(g.model)
            d["gate_model"] = {"path": str(model), "sha256": sha256_file(model) if model.is_file() else None}
        return d


# --------------------------------------------------------------------------------------------
# back-translation


class ApertiumOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pair: str = Field("eng-spa", description="apertium mode to the pivot language")
    reverse: str = Field("spa-eng", description="apertium mode back")
    batch_chars: int = Field(200_000, ge=1000, description="characters per apertium call (many documents each)")
    timeout: float = Field(600.0, gt=0, description="seconds per apertium call")


class TransformersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str = Field(..., description="local checkpoint directory translating to the pivot language")
    reverse_model: str | None = Field(None, description="checkpoint back (default: model, for NLLB/M2M)")
    source_lang: str | None = Field(None, description="language code for multilingual models, e.g. eng_Latn")
    pivot_lang: str | None = Field(None, description="e.g. spa_Latn")
    device: str = "cpu"
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(512, ge=1)


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(..., description="server base URL, e.g. http://localhost:8000/v1")
    model: str = Field(..., description="model name the server serves")
    api_key_env: str | None = Field(None, description="environment variable holding the API key (never the key itself)")
    source_language: str = "English"
    pivot_language: str = "Spanish"
    timeout: float = Field(60.0, gt=0, description="seconds per request")
    retries: int = Field(4, ge=0, le=20, description="retries of a request that timed out or got 429/5xx")
    backoff: float = Field(1.0, ge=0, description="first retry delay in seconds; doubles each retry")
    max_backoff: float = Field(30.0, ge=0)
    concurrency: int = Field(8, ge=1, le=256, description="requests in flight")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    breaker: int = Field(16, ge=0, description="after this many documents failed in a row, stop calling the endpoint (0: never)")


DEFAULT_PROTECT = [r"<<[^<>\n]*>>", r"^####.*$"]


class BacktranslateConfig(DomainsMixin):
    backend: Literal["apertium", "transformers", "openai"] = Field("apertium", description="apertium (offline, Debian), transformers (local checkpoints) or openai (an OpenAI-compatible URL)")
    mode: Literal["add", "replace"] = Field("add", description="add: keep the original and add the round trip; replace: rewrite the text")
    apertium: ApertiumOptions = Field(ApertiumOptions(), description="{pair, reverse, batch_chars, timeout}")
    transformers: TransformersOptions | None = Field(None, description="{model, reverse_model, source_lang, pivot_lang, device, batch_size, max_new_tokens}")
    openai: OpenAIOptions | None = Field(None, description="{url, model, api_key_env, timeout, retries, backoff, concurrency, breaker, temperature, ...}")
    protect: list[str] = Field(DEFAULT_PROTECT, description="regexes of spans never translated (GSM8K annotations, #### lines)")
    preserve_numbers: bool = Field(True, description="drop a round trip whose numbers differ from the original's")
    min_ratio: float = Field(0.5, gt=0, description="drop a round trip shorter than this fraction of the original")
    max_ratio: float = Field(2.0, gt=0, description="... or longer than this multiple")
    max_chars: int = Field(20_000, ge=1, description="longer documents pass through untouched (reason too_long)")
    on_failure: Literal["reject", "keep"] = Field("reject", description="mode replace: a document whose round trip failed is rejected, or kept as it was")
    gate: GateOptions | None = Field(
        GateOptions(), description="quality gate against the source: {max_ppl_ratio, min_length_ratio, max_length_ratio, min_similarity, max_similarity, model}; null: off"
    )

    @model_validator(mode="after")
    def _backend_options(self):
        if self.backend == "transformers" and self.transformers is None:
            raise ValueError("backend transformers needs a `transformers:` section with at least `model:` (a local checkpoint directory)")
        if self.backend == "openai" and self.openai is None:
            raise ValueError("backend openai needs an `openai:` section with `url:` and `model:`")
        for p in self.protect:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"protect: {p!r} is not a regular expression: {e}") from None
        return self


def build_backend(c: BacktranslateConfig):
    from r1data.augment.backtranslate import make_backend

    if c.backend == "apertium":
        return make_backend("apertium", c.apertium.model_dump())
    if c.backend == "transformers":
        return make_backend("transformers", c.transformers.model_dump())
    return make_backend("openai", c.openai.model_dump())


@register
class Backtranslate(GatedAugmentStage):
    """Back-translation through a pivot language (apertium, a local transformers model, or an OpenAI-compatible endpoint); round trips pass a quality gate."""

    name = "backtranslate"
    version = 2  # 2: the quality gate
    Config = BacktranslateConfig
    augment_kind = "backtranslation"
    gate_prefix = "backtranslation"
    batch_size = 256
    example = """\
- stage: backtranslate
  backend: apertium          # offline; or transformers / openai
  mode: add                  # keep the original, add the round trip
  apertium: {pair: eng-spa, reverse: spa-eng}
  gate: {max_ppl_ratio: 2.0, min_similarity: 0.6}   # round trips that read worse or lost the meaning are rejected
"""

    @classmethod
    def check_config(cls, config: BacktranslateConfig) -> list[tuple[str, str]]:
        return [(config.backend, msg) for msg in build_backend(config).check()] + cls.gate_problems(config.gate)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"backend": build_backend(self.config).describe()}

    def setup(self) -> None:
        from r1data.augment.backtranslate import Protector

        self.backend = build_backend(self.config)
        self.backend.setup()
        self.protector = Protector(self.config.protect)
        self.setup_gate()

    def augment_batch(self, docs: list[Document]) -> list[Outcome]:
        from r1data.augment.backtranslate import _nonce, check_round_trip

        c = self.config
        outcomes: list[Outcome | None] = [None] * len(docs)
        todo, texts, spans = [], [], []
        nonce = _nonce([d.text for d in docs])
        for i, d in enumerate(docs):
            if len(d.text) > c.max_chars:
                outcomes[i] = Outcome(note={"status": "skipped", "reason": "too_long"})
                continue
            if not d.text.strip():
                outcomes[i] = Outcome(note={"status": "skipped", "reason": "empty"})
                continue
            t, sp = self.protector.protect(d.text, nonce)
            todo.append(i)
            texts.append(t)
            spans.append(sp)
        results = self.backend.round_trip(texts) if texts else []
        params = {"backend": c.backend, **({"pair": c.apertium.pair} if c.backend == "apertium" else {})}
        done = []
        for i, sp, tr in zip(todo, spans, results):
            d = docs[i]
            reason, detail, back = tr.error, tr.detail, None
            if reason is None:
                back = self.protector.restore(tr.text or "", sp, nonce)
                if back is None:
                    reason = "backtranslation_lost_protected_span"
                else:
                    reason = check_round_trip(d.text, back, min_ratio=c.min_ratio, max_ratio=c.max_ratio, preserve_numbers=c.preserve_numbers)
            done.append((i, back, reason, detail))
        # the quality gate: figures for every round trip that came back, a reason for those that passed the checks above
        scored = [k for k, (_, back, _, _) in enumerate(done) if back and back.strip()]
        verdicts = dict(zip(scored, self.judge([(docs[done[k][0]].text, done[k][1]) for k in scored])))
        for k, (i, back, reason, detail) in enumerate(done):
            gate_reason, fig = verdicts.get(k, (None, None))
            outcomes[i] = self._outcome(docs[i], back, reason or gate_reason, detail, params, fig)
        return outcomes

    def _outcome(self, d: Document, back: str | None, reason: str | None, detail: str, params: dict, fig: dict | None = None) -> Outcome:
        c = self.config
        note: dict[str, Any] = {"status": "augmented" if reason is None else "failed"}
        if reason:
            note["reason"] = reason
        if detail:
            note["detail"] = detail
        if fig is not None:
            params = {**params, "gate": fig}
            if c.mode == "replace":
                note["gate"] = fig
        if c.mode == "add":
            # a failed round trip is still a (rejected) variant, so the loss is visible
            return Outcome(variants=[Variant(back if back else d.text, params, {}, reason)], note=note)
        if reason:
            return Outcome(note=note, reject=reason if c.on_failure == "reject" else None)
        original = {"chars": len(d.text), "sha1": hashlib.sha1(d.text.encode("utf-8")).hexdigest(), **params}
        return Outcome(note=note, text=back, metadata={"backtranslated": original})


# --------------------------------------------------------------------------------------------
# EDA


class EdaConfig(DomainsMixin):
    operations: list[Literal["synonym", "insert", "swap", "delete"]] = Field(
        ["synonym", "swap", "delete"], min_length=1, description="one operation per variant, in turn"
    )
    rate: float = Field(0.1, gt=0, le=0.5, description="fraction of words changed (EDA's alpha)")
    variants: int = Field(1, ge=1, le=20)
    mode: Literal["add", "replace"] = "add"
    wordnet: str = Field("/usr/share/wordnet", description="WordNet 3.0 database directory (Debian wordnet-base)")
    senses: int = Field(3, ge=1, description="synonyms come from a word's most frequent senses only")
    min_words: int = Field(5, ge=1, description="shorter documents pass through untouched")
    gate: EdaGateOptions | None = Field(
        EdaGateOptions(), description="quality gate against the source: {max_ppl_ratio, min_length_ratio, max_length_ratio, min_similarity, max_similarity, model}; null: off"
    )


@register
class Eda(GatedAugmentStage):
    """Random replacement (EDA): WordNet synonyms, random insertion, swap and deletion at a rate, seeded; variants pass a quality gate."""

    name = "eda"
    version = 2  # 2: the quality gate
    Config = EdaConfig
    augment_kind = "eda"
    gate_prefix = "eda"
    batch_size = 64
    example = """\
- stage: eda
  operations: [synonym, swap, delete]
  rate: 0.1
  variants: 2
  domains: [prose]
  gate: {max_ppl_ratio: 1.5, min_similarity: 0.75}   # word salad and meaning-losing variants are rejected
"""

    @classmethod
    def check_config(cls, config: EdaConfig) -> list[tuple[str, str]]:
        from r1data.augment.eda import WordNet

        problems = []
        if {"synonym", "insert"} & set(config.operations):
            problem = WordNet.check(config.wordnet)
            if problem:
                problems.append(("wordnet", problem))
        return problems + cls.gate_problems(config.gate)

    def setup(self) -> None:
        from r1data.augment.eda import WordNet

        self.wordnet = WordNet(self.config.wordnet, senses=self.config.senses)
        self.setup_gate()

    def candidates(self, doc: Document) -> list[Variant] | Outcome:
        """The variants written for ``doc`` (before the gate), or the outcome of a document left alone."""
        from r1data.augment.eda import augment

        c = self.config
        if len(doc.text.split()) < c.min_words:
            return Outcome(note={"status": "skipped", "reason": "too_short"})
        variants, seen = [], {doc.text}
        start = seeded_rng(c.seed, doc.id).randrange(len(c.operations))
        for n in range(c.variants):
            op = c.operations[(start + n) % len(c.operations)]
            text, changed = augment(doc.text, op, rate=c.rate, rng=seeded_rng(c.seed, doc.id, n + 1), wordnet=self.wordnet)
            if changed and text not in seen:
                seen.add(text)
                variants.append(Variant(text, {"operation": op, "rate": c.rate, "changed": changed}))
        if not variants:
            return Outcome(note={"status": "skipped", "reason": "no_change"})
        return variants

    def augment_batch(self, docs: list[Document]) -> list[Outcome]:
        written: list[list[Variant] | Outcome] = [self._augment_safely(d, self.candidates) for d in docs]
        pairs = [(d.text, v.text) for d, w in zip(docs, written) if isinstance(w, list) for v in w]
        verdicts = iter(self.judge(pairs))
        outcomes = []
        for d, w in zip(docs, written):
            if isinstance(w, Outcome):
                outcomes.append(w)
                continue
            for v in w:
                v.reason, fig = next(verdicts)
                if fig is not None:
                    v.params["gate"] = fig
            outcomes.append(self._outcome(d, w))
        return outcomes

    def _outcome(self, doc: Document, variants: list[Variant]) -> Outcome:
        kept = [v for v in variants if v.reason is None]
        if self.config.mode == "replace":
            if not kept:  # every variant failed the gate: the document stays as it was
                v = variants[0]
                return Outcome(note={"status": "failed", "reason": v.reason, **v.params})
            v = kept[0]
            original = {"chars": len(doc.text), "sha1": hashlib.sha1(doc.text.encode("utf-8")).hexdigest()}
            return Outcome(note={"status": "augmented", **v.params}, text=v.text, metadata={"eda_replaced": original})
        note: dict[str, Any] = {"status": "augmented" if kept else "failed", "variants": len(kept)}
        if not kept:
            note["reason"] = variants[0].reason
        return Outcome(variants=variants, note=note)
