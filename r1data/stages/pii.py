"""PII redaction for web text: e-mails, IP addresses, phone numbers and secrets -> typed placeholders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from datatrove.data import Document
from pydantic import Field

from r1data.stages.base import StageConfig, TaggerStage, is_rejected, reject
from r1data.stages.registry import register

PiiKind = Literal["email", "ip_address", "phone_number", "secrets"]
PLACEHOLDERS = {"email": "<EMAIL>", "ip_address": "<IP_ADDRESS>", "phone_number": "<PHONE_NUMBER>"}


class PiiRedactConfig(StageConfig):
    kinds: list[PiiKind] = Field(
        ["email", "ip_address", "phone_number", "secrets"],
        description="what to redact; secrets: every kind the code recipe's secret_redaction finds (keys, tokens, passwords)",
    )
    phone_region: str = Field("US", min_length=2, max_length=2, description="region for numbers written without +country code")
    keep_private_ips: bool = Field(True, description="private, loopback and documentation addresses are examples: kept")
    keep_email_domains: list[str] = Field(
        ["example.com", "example.org", "example.net", "example.edu", "localhost", "test", "invalid", "example"],
        description="addresses at these domains are examples, kept as they are",
    )
    drop_above: int | None = Field(
        None, ge=0, description="drop a document with more than this many matches (reason too_much_pii); null: never"
    )


@register
class PiiRedact(TaggerStage):
    """Replace e-mails, IPv4/IPv6 addresses, phone numbers and secrets by typed placeholders, rejected documents too."""

    # Every document passing the stage is redacted, including those an earlier stage rejected, and
    # the sinks pass every row they write through `scrub` (rows rejected in an earlier phase of a
    # multi-phase recipe), so nothing it would remove reaches rejected/ either. Counts: meta.pii.
    name = "pii_redact"
    Config = PiiRedactConfig
    requires = {"phonenumbers": "web"}
    example = """\
- stage: pii_redact
  kinds: [email, ip_address, phone_number, secrets]
  phone_region: US
  drop_above: 50        # a page that is mostly contact data: reason too_much_pii
"""

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        from r1data.sources import pii, secrets

        c = self.config
        counts: dict[str, int] = {}
        if "secrets" in c.kinds:
            kinds = [k for k in secrets.DEFAULT_KINDS if k != "email"]
            text, found = secrets.redact(text, kinds, c.keep_email_domains)
            counts.update(found)
        spans: dict[str, list[tuple[int, int]]] = {}
        if "email" in c.kinds:
            spans["email"] = secrets.find_spans(text, "email", tuple(c.keep_email_domains))
        if "ip_address" in c.kinds:
            spans["ip_address"] = pii.ipv4_spans(text, c.keep_private_ips) + pii.ipv6_spans(text, c.keep_private_ips)
        if "phone_number" in c.kinds:
            taken = spans.get("ip_address", []) + spans.get("email", [])
            spans["phone_number"] = [
                (s, e) for s, e in pii.phone_spans(text, c.phone_region) if not any(s < te and ts < e for ts, te in taken)
            ]
        merged = pii.merge_spans({k: v for k, v in spans.items() if v})
        if merged:
            text = pii.apply(text, merged, PLACEHOLDERS.__getitem__)
            for _, _, k in merged:
                counts[k] = counts.get(k, 0) + 1
        return text, counts

    def _redact_doc(self, doc: Document) -> int:
        from r1data.stages.code import REDACTED_KEY

        if self.label in doc.metadata.get(REDACTED_KEY, ()):
            return sum((doc.metadata.get("pii") or {}).values())
        doc.metadata[REDACTED_KEY] = (*doc.metadata.get(REDACTED_KEY, ()), self.label)
        if not isinstance(doc.text, str) or not doc.text:
            return 0
        text, counts = self.redact(doc.text)
        if not counts:
            return 0
        doc.text = text
        doc.metadata["pii"] = counts
        for kind, n in counts.items():
            self.stat_update(f"redacted_{kind}", value=n)
        return sum(counts.values())

    def scrub(self, doc: Document) -> None:
        """Redact a row about to be written that never passed this stage (rejected in an earlier phase)."""
        self._ensure_setup()
        self._redact_doc(doc)

    def _run_batch(self, batch: list[Document]) -> Iterator[Document]:
        with self.track_time():
            for doc in batch:
                if is_rejected(doc):  # already dropped: redacted all the same, never rejected again
                    self._redact_doc(doc)
                    continue
                n = self._redact_doc(doc)
                self.stat_update("total")
                limit = self.config.drop_above
                if limit is not None and n > limit:
                    reject(doc, self.label, "too_much_pii")
                    self.stat_update("dropped", "dropped_too_much_pii")
                else:
                    self.stat_update("forwarded")
        yield from batch
