"""Line dedup speed and memory: r1data ``line_dedup`` vs a plain Python CCNet-style loop vs datatrove.

    python bench/line_dedup_speed.py                          # web sample + 20,000 synthetic pages
    python bench/line_dedup_speed.py --synthetic 50000 --json

Two document sets:

- **web**: the bundled web sample (data/sample/web, 4 WARC shards) through ``warc_reader`` and
  ``html_extract`` (Trafilatura), i.e. the real extracted pages that ``line_dedup`` would see;
- **synthetic**: pages of made-up *sites* (50 pages each on average) built from real text: each
  site has a navigation block (6 lines), a banner and a footer (2 lines) taken from real lines of
  the web sample, each page ends with "Page i of n" (one line after digit folding) and has a body
  of 12 paragraphs, each 2-4 random lines of the shared books (../shared/data/books) joined.

Each tool does the whole job on the same documents, keep-first semantics, one window: hash every
line, find the lines seen earlier, rewrite the documents.

- r1data: ``line_hashes`` per document (what the map step does), ``LineDedup.decide_arrays`` over the
  window (the decide step), ``LineDedup.apply`` per document (the apply step);
- plain Python, CCNet style: per line CCNet's ``normalize_for_dedup`` (strip, lower case, digits ->
  0, its Unicode punctuation and non-printing characters removed), the first 8 bytes of its SHA-1 as
  an int, a Python ``set`` of the hashes seen, the text rebuilt from the kept lines;
- datatrove: ``SentenceDedupSignature`` -> ``SentenceFindDedups`` -> ``SentenceDedupFilter`` with
  ``split_sentences=False, n_sentences=1`` (its line mode; ``min_doc_words=0``,
  ``min_num_sentences=0`` so that it drops no document; SHA-1 line hashes, since its default xxhash
  function is handed ``str``, which xxhash 3 refuses), files in a temporary folder.

Speed is per CPU-second of this process (``time.process_time``: lines/s/core and docs/s/core), the
best of ``--repeat`` passes. Memory is the peak of Python allocations (``tracemalloc``, which NumPy
reports to) while the tool runs, in a separate pass: the state a dedup of that window holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import book_files, read_text  # noqa: E402

# -- data ------------------------------------------------------------------------------------------


def web_pages(cache: Path) -> list[str]:
    """The extracted text of every page of the bundled web sample (cached as JSON)."""
    f = cache / "web-pages.json"
    if f.exists():
        return json.loads(f.read_text())
    import pyarrow.parquet as pq

    from r1data.config.spec import Overrides
    from r1data.run.pipeline import execute, load_spec, plan_run

    recipe = cache / "extract.yaml"
    out = cache / "extract"
    recipe.write_text(
        f"name: bench-extract\ninputs: [{ROOT / 'data/sample/web'}/*.warc.gz]\nstages:\n  - stage: warc_reader\n    source: web\n"
        f"  - stage: html_extract\noutput:\n  path: {out}\n"
    )
    execute(plan_run(load_spec(recipe, Overrides(tasks=1, workers=1))), overwrite=True)
    texts = [t for p in sorted((out / "shards").glob("*.parquet")) for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]
    f.write_text(json.dumps(texts))
    return texts


def synthetic_pages(n: int, web: list[str], seed: int = 0, pages_per_site: int = 50, paragraphs: int = 12) -> list[str]:
    rng = random.Random(seed)
    book = [ln.strip() for f in book_files() for ln in read_text(f).split("\n") if len(ln.strip()) > 20]
    web_lines = sorted({ln.strip() for t in web for ln in t.split("\n") if 15 <= len(ln.strip()) <= 120})
    pages = []
    sites = max(1, n // pages_per_site)
    chrome = [(rng.sample(web_lines, 6), rng.choice(web_lines), rng.sample(web_lines, 2)) for _ in range(sites)]
    for i in range(n):
        nav, banner, footer = chrome[rng.randrange(sites)]
        # a paragraph: 2-4 random lines of the books joined (real text, practically never repeated)
        body = [" ".join(rng.choice(book) for _ in range(rng.randint(2, 4))) for _ in range(paragraphs)]
        pages.append("\n".join(nav + [banner, ""] + body + [""] + footer + [f"Page {i} of {n}"]))
    return pages


# -- the tools ---------------------------------------------------------------------------------------


def run_r1data(texts: list[str]) -> tuple[list[str | None], int]:
    import numpy as np
    from datatrove.data import Document

    from r1data.dedup.lines import line_hashes
    from r1data.stages.linededup import LineDedup, LineDedupConfig

    stage = LineDedup(LineDedupConfig(min_words=0))
    hashes = [line_hashes(t, 1) for t in texts]  # map
    counts = np.fromiter((h.size for h in hashes), dtype=np.int64, count=len(hashes))
    n = len(texts)
    table = stage.decide_arrays(np.zeros(n, dtype=np.int32), np.arange(n, dtype=np.int64), np.concatenate(hashes), counts)  # decide
    decisions = stage.read_decisions(table)
    out: list[str | None] = []
    removed = 0
    for i, t in enumerate(texts):  # apply
        doc = Document(text=t, id=str(i), metadata={"input_index": 0, "record_index": i})
        stage.apply(doc, decisions)
        removed += doc.metadata["lines_removed"]
        out.append(doc.text)
    return out, removed


# CCNet's text_normalizer (its table of Unicode punctuation and its non-printing characters)
_CC_PUNCT = "，。、„”“«»１」「《》´∶：？！（）；–—．～’…━〈〉【】％►"
_CC_RE = re.compile("[" + re.escape(_CC_PUNCT) + "".join(map(chr, list(range(0, 32)) + list(range(127, 160)))) + "]")
_CC_DIGIT = re.compile(r"\d")


def _ccnet_normalize(line: str) -> str:
    line = line.strip()
    if not line:
        return line
    return _CC_RE.sub("", _CC_DIGIT.sub("0", line.lower()))


def run_plain_python(texts: list[str]) -> tuple[list[str | None], int]:
    seen: set[int] = set()
    out = []
    removed = 0
    for t in texts:
        kept = []
        for line in t.split("\n"):
            norm = _ccnet_normalize(line)
            if norm:
                h = int.from_bytes(hashlib.sha1(norm.encode("utf-8", "surrogatepass")).digest()[:8], "little")
                if h in seen:
                    removed += 1
                    continue
                seen.add(h)
            kept.append(line)
        out.append("\n".join(kept))
    return out, removed


def run_datatrove(texts: list[str]) -> tuple[list[str | None], int]:
    from datatrove.data import Document
    from datatrove.pipeline.dedup.sentence_dedup import SentDedupConfig, SentenceDedupFilter, SentenceDedupSignature, SentenceFindDedups

    from datatrove.utils.hashing import HashConfig

    # sha1: its default xxhash function is handed str, which xxhash 3.x refuses ("Strings must be encoded")
    cfg = SentDedupConfig(n_sentences=1, split_sentences=False, min_doc_words=0, min_num_sentences=0, hash_config=HashConfig(hash_fc="sha1"))
    with tempfile.TemporaryDirectory() as tmp:
        docs = lambda: (Document(text=t, id=str(i)) for i, t in enumerate(texts))  # noqa: E731
        SentenceDedupSignature(f"{tmp}/sigs", config=cfg).run(docs(), rank=0, world_size=1)
        SentenceFindDedups(f"{tmp}/sigs", f"{tmp}/dups", config=cfg).run(rank=0, world_size=1)
        got = {d.id: d.text for d in SentenceDedupFilter(f"{tmp}/dups", config=cfg).run(docs(), rank=0, world_size=1)}
    out = [got.get(str(i)) for i in range(len(texts))]
    removed = sum(t.count("\n") + 1 - (o.count("\n") + 1 if o is not None else 0) for t, o in zip(texts, out))
    return out, removed


TOOLS = {"r1data line_dedup": run_r1data, "plain Python (CCNet-style, set of hashes)": run_plain_python, "datatrove SentenceDedup (line mode)": run_datatrove}


def measure(name: str, fn, texts: list[str], repeat: int) -> dict:
    best = None
    for _ in range(repeat):
        t0, w0 = time.process_time(), time.perf_counter()
        _, removed = fn(texts)
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        if best is None or cpu < best[0]:
            best = (cpu, wall, removed)
    tracemalloc.start()
    fn(texts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cpu, wall, removed = best
    lines = sum(t.count("\n") + 1 for t in texts)
    return {
        "tool": name, "docs": len(texts), "lines": lines, "lines_removed": removed, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "lines_per_s_core": round(lines / cpu), "docs_per_s_core": round(len(texts) / cpu), "peak_mib": round(peak / 2**20, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", type=int, default=20_000, help="synthetic pages (0: skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-datatrove", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cache = Path(tempfile.gettempdir()) / "r1data-bench-line-dedup"
    cache.mkdir(exist_ok=True)
    web = web_pages(cache)
    from r1data.dedup.lines import _strip_table

    _strip_table()  # built once per process (~0.5 s): not part of the per-document cost
    import datatrove.pipeline.dedup.sentence_dedup  # noqa: F401  imports are not part of the timings either
    import r1data.stages.linededup  # noqa: F401
    sets = {"web sample": web}
    if args.synthetic:
        sets[f"synthetic ({args.synthetic} pages)"] = synthetic_pages(args.synthetic, web)
    results = []
    for set_name, texts in sets.items():
        for name, fn in TOOLS.items():
            if args.no_datatrove and name.startswith("datatrove"):
                continue
            r = {"set": set_name, **measure(name, fn, texts, args.repeat)}
            results.append(r)
            if not args.json:
                print(
                    f"{set_name:28s} {name:44s} docs {r['docs']:>7,} lines {r['lines']:>9,} removed {r['lines_removed']:>8,}  "
                    f"{r['lines_per_s_core']:>10,} lines/s/core {r['docs_per_s_core']:>8,} docs/s/core  peak {r['peak_mib']:>7.1f} MiB",
                    flush=True,
                )
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
