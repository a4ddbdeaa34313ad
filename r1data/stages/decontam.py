"""Benchmark decontamination: drop (or tag) training text that shares a long n-gram with an evaluation set."""

from __future__ import annotations

from typing import Literal

from datatrove.data import Document
from pydantic import Field

from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages.registry import register


class DecontaminateConfig(StageConfig):
    benchmarks: list[str] = Field(
        ["gsm8k", "champ", "humaneval"],
        min_length=1,
        description="bundled evaluation sets (gsm8k, champ, humaneval; see data/benchmarks) or files (.jsonl[.gz] rows, .txt paragraphs)",
    )
    ngram: int = Field(13, ge=5, le=50, description="words in the shared n-gram (GPT-3 and Open-R1: 13)")
    min_words: int = Field(8, ge=3, description="benchmark texts shorter than ngram but at least this long are matched whole")
    action: Literal["drop", "tag"] = Field(
        "drop", description="drop: reason benchmark_overlap; tag: keep the document, set the contamination columns"
    )


@register
class Decontaminate(TaggerStage):
    """Drop or tag documents sharing a word n-gram (default 13) with an evaluation set (GSM8K, CHAMP, HumanEval, files)."""

    name = "decontaminate"
    Config = DecontaminateConfig
    columns = {"contamination": "string", "contamination_ngram": "string", "contamination_item": "string"}
    batch_size = 64
    example = """\
- stage: decontaminate
  benchmarks: [gsm8k, humaneval]   # bundled; or files: evals/my-test-set.jsonl
  ngram: 13
  action: drop        # or tag: keep, and set `contamination`
"""

    @classmethod
    def check_config(cls, config: DecontaminateConfig) -> list[tuple[str, str]]:
        from r1data.errors import ConfigError
        from r1data.quality.contamination import resolve_benchmark

        problems = []
        for i, spec in enumerate(config.benchmarks):
            try:
                resolve_benchmark(spec)
            except ConfigError as e:
                problems.append((f"benchmarks[{i}]", str(e)))
        return problems

    def setup(self) -> None:
        from r1data.quality.contamination import build_index

        c = self.config
        self._index = build_index(c.benchmarks, n=c.ngram, min_words=c.min_words)

    def preload(self) -> list[tuple[str, str, dict]]:
        c = self.config
        return [("r1data.quality.contamination", "build_index", {"specs": list(c.benchmarks), "n": c.ngram, "min_words": c.min_words})]

    def describe(self) -> dict:
        d = super().describe()
        from r1data.quality.contamination import BUNDLES

        d["bundles"] = {b: BUNDLES[b][0] for b in self.config.benchmarks if b in BUNDLES}
        return d

    def tag(self, doc: Document) -> str | None:
        matches = self._index.find(doc.text)
        if not matches:
            return None
        m = matches[0]
        doc.metadata["contamination"] = m.benchmark
        doc.metadata["contamination_ngram"] = m.ngram
        doc.metadata["contamination_item"] = m.item
        self.stat_update(f"contaminated_{m.benchmark}")
        return "benchmark_overlap" if self.config.action == "drop" else None
