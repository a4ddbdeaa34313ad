"""The datatrove side of bench/web_speed.py: FineWeb's web pipeline built from datatrove's own blocks.

Run as a script (a fresh process, like ``r1data run``) so both sides pay their start-up:

    python bench/_dt_web.py --folder data/sample/web --glob '*.warc.gz' --out /tmp/x --tasks 4 --workers 2 \
        --extractor trafilatura|resiliparse

WarcReader -> extractor -> LanguageFilter -> GopherRepetitionFilter -> GopherQualityFilter ->
C4QualityFilter -> FineWebQualityFilter -> ParquetWriter, on datatrove's LocalPipelineExecutor.
The language filter loads the same fastText model r1data bundles (``models/lid/lid.176.ftz``);
datatrove would download ``lid.176.bin`` from the internet, which this machine cannot reach.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datatrove.pipeline.extractors.base import BaseExtractor
from datatrove.utils.lid import FT176LID

ROOT = Path(__file__).resolve().parents[1]
LID_MODEL = ROOT / "models" / "lid" / "lid.176.ftz"


class LocalFT176(FT176LID):
    """fastText lid.176 loaded from a local file instead of downloaded."""

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText

            self._model = _FastText(str(LID_MODEL))
        return self._model


class ResiliparseExtractor(BaseExtractor):
    """Main-content plain text with Resiliparse (``extract_plain_text(main_content=True)``)."""

    name = "⛏ Resiliparse"
    _requires_dependencies = ["resiliparse"]

    def __init__(self, timeout: float = 60.0, main_content: bool = True):
        super().__init__(timeout)
        self.main_content = main_content

    def extract(self, text: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(text, main_content=self.main_content)


def _language_filter():
    from datatrove.pipeline.filters import LanguageFilter  # needs fasteners (the bench extra)

    f = LanguageFilter()  # languages=["en"], language_threshold=0.65, as FineWeb
    f.model = LocalFT176(f.languages)
    return f


def build(folder: str, glob: str, out: str, extractor: str, timeout: float) -> list:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import ParquetWriter

    lang = _language_filter()
    ext = Trafilatura(favour_precision=True, timeout=timeout) if extractor == "trafilatura" else ResiliparseExtractor(timeout=timeout)
    return [
        WarcReader(folder, glob_pattern=glob),
        ext,
        lang,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),  # as FineWeb
        FineWebQualityFilter(),
        ParquetWriter(f"{out}/output"),
    ]


def main(argv: list[str] | None = None) -> int:
    from datatrove.executor import LocalPipelineExecutor

    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    ap.add_argument("--glob", default="*.warc.gz")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--extractor", choices=("trafilatura", "resiliparse"), default="trafilatura")
    ap.add_argument("--timeout", type=float, default=60.0, help="extractor seconds per document (datatrove's default is 1)")
    a = ap.parse_args(argv)
    ex = LocalPipelineExecutor(
        build(a.folder, a.glob, a.out, a.extractor, a.timeout), tasks=a.tasks, workers=a.workers, logging_dir=f"{a.out}/logs"
    )
    ex.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
