"""Hold documents out of training by a stable key, so every variant of a document lands on the same side."""

from __future__ import annotations

import re
from typing import Literal

import xxhash
from datatrove.data import Document
from pydantic import Field

from r1data.stages.base import FilterStage, StageConfig
from r1data.stages.registry import register

_URL_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*([^?#]*)")


def holdout_key(doc: Document, key: str = "auto") -> str:
    """The key that decides the side of a document.

    ``auto``: an augmented or upsampled copy follows its original (``augmented_root``); a web page
    is keyed by its URL path without host and query, so mirrors and tracking-parameter copies of a
    held-out page are held out too; anything else by its id."""
    md = doc.metadata
    if key in ("auto", "root") and md.get("augmented_root"):
        return str(md["augmented_root"])
    if key in ("auto", "url_path") and md.get("url"):
        m = _URL_PATH.match(md["url"])
        if m:
            return m.group(1) or "/"
    return str(md.get("augmented_root") or doc.id) if key == "root" else str(doc.id)


def in_holdout(key: str, fraction: float, seed: int) -> bool:
    return xxhash.xxh64_intdigest(key.encode("utf-8", "surrogatepass"), seed=seed) < fraction * 2**64


class HoldoutConfig(StageConfig):
    fraction: float = Field(0.05, ge=0, le=1, description="share of keys held out (reason held_out)")
    seed: int = Field(0, ge=0, description="hash seed; the same seed and key always give the same side")
    key: Literal["auto", "id", "url_path", "root"] = Field("auto", description="what identifies a document across variants")


@register
class Holdout(FilterStage):
    """Set documents aside for evaluation (reason held_out) by a hash of a stable key; the rest go on."""

    name = "holdout"
    Config = HoldoutConfig
    example = """\
- stage: holdout
  fraction: 0.05
  key: auto      # url path for web pages, the original for augmented copies, else the id
"""

    def keep(self, doc: Document):
        if in_holdout(holdout_key(doc, self.config.key), self.config.fraction, self.config.seed):
            return False, "held_out"
        return True
