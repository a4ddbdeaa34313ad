"""Heuristic stages vs datatrove's filters: agreement and ms/doc on real extracted text.

For each parameter set (datatrove's defaults and filters/web-v1.yaml) and each of the four
heuristics (gopher_repetition, gopher_quality, c4_quality, fineweb_quality) it runs datatrove's
filter and the r1data stage on every document, compares keep/drop, reason and (C4 rewrites kept
text) the resulting text, and times both on one core (CPU time of this process, so other load on the machine counts little). Then it times the four in a row per
document, the way a recipe runs them (each sees the text the previous one kept), for both.

Text comes from WARC pages (Resiliparse main-content extraction by default, fast; or Trafilatura,
which the web recipe uses) or from a JSONL file with a "text" field. Extracted text is cached.

    python bench/heuristics_parity.py                           # data/sample/web + cc-2020-34 + extraction-benchmark
    python bench/heuristics_parity.py --extractor trafilatura --limit 300
    python bench/heuristics_parity.py --jsonl texts.jsonl
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import ROOT, shared_data  # noqa: E402

STAGES = ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")


def _pages_from_warcs(files: list[str]):
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    for f in files:
        with open(f, "rb") as fh:
            for rec in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
                body = rec.reader.read()
                yield body.decode("utf-8", errors="replace")


def _pages_from_benchmark(folder: Path):
    for f in sorted(glob.glob(str(folder / "html" / "*"))):
        opener = gzip.open if f.endswith(".gz") else open
        with opener(f, "rb") as fh:
            yield fh.read().decode("utf-8", errors="replace")


def extract(pages, extractor: str) -> list[str]:
    if extractor == "trafilatura":
        from datatrove.pipeline.extractors import Trafilatura

        ex = Trafilatura(favour_precision=True, include_tables=True, deduplicate=False)
        fn = ex.extract
    else:
        from resiliparse.extract.html2text import extract_plain_text

        def fn(html):
            return extract_plain_text(html, main_content=True)

    out = []
    for html in pages:
        try:
            text = fn(html)
        except Exception:  # a page the extractor cannot parse is not a heuristics question
            continue
        if text and text.strip():
            out.append(text)
    return out


def load_texts(args) -> dict[str, list[str]]:
    if args.jsonl:
        with open(args.jsonl) as fh:
            return {Path(args.jsonl).name: [json.loads(line)["text"] for line in fh]}
    data = shared_data()
    sources = {
        "web-sample": lambda: _pages_from_warcs(sorted(glob.glob(str(ROOT / "data/sample/web/*.warc.gz")))),
        "cc-2020-34": lambda: _pages_from_warcs(sorted(glob.glob(str(data / "cc-2020-34-sample/*.warc.gz")))),
        "extraction-benchmark": lambda: _pages_from_benchmark(data / "extraction-benchmark"),
    }
    out = {}
    cache_dir = Path(args.cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, pages in sources.items():
        cache = cache_dir / f"{name}.{args.extractor}.jsonl"
        if cache.exists():
            texts = [json.loads(line)["text"] for line in cache.open()]
        else:
            t0 = time.process_time()
            texts = extract(pages(), args.extractor)
            print(f"extracted {len(texts)} texts from {name} with {args.extractor} in {time.process_time() - t0:.0f} s", flush=True)
            with cache.open("w") as fh:
                for t in texts:
                    fh.write(json.dumps({"text": t}) + "\n")
        out[name] = texts[: args.limit] if args.limit else texts
    return out


def param_sets() -> dict[str, dict[str, dict]]:
    import yaml

    web = yaml.safe_load((ROOT / "filters/web-v1.yaml").read_text())["stages"]
    return {"datatrove-defaults": {s: {} for s in STAGES}, "web-v1": {s: dict(web.get(s) or {}) for s in STAGES}}


def make_pair(stage: str, params: dict):
    """(datatrove filter, r1data stage) with the same parameters."""
    from datatrove.pipeline import filters as dtf

    from r1data.stages.registry import get_stage

    cls = get_stage(stage)
    st = cls(cls.Config(**params))
    st._ensure_setup()
    p = st.config.model_dump()
    if stage == "gopher_repetition":
        p["top_n_grams"] = tuple(map(tuple, p["top_n_grams"]))
        p["dup_n_grams"] = tuple(map(tuple, p["dup_n_grams"]))
        dt = dtf.GopherRepetitionFilter(**p)
    elif stage == "gopher_quality":
        dt = dtf.GopherQualityFilter(**p)
    elif stage == "c4_quality":
        dt = dtf.C4QualityFilter(**p)
    else:
        dt = dtf.FineWebQualityFilter(**p)
    return dt, st


def outcome(res) -> tuple[bool, str | None]:
    if isinstance(res, tuple):
        return bool(res[0]), (res[1] if not res[0] else None)
    return bool(res), None


def compare(texts: list[str], stage: str, params: dict) -> tuple[int, list, float, float]:
    """Agreeing documents, the differences, and ms/doc for datatrove and r1data (each alone)."""
    from datatrove.data import Document

    dt, st = make_pair(stage, params)
    agree, diffs = 0, []
    t_dt = t_r1 = 0.0
    for i, text in enumerate(texts):
        d1, d2 = Document(text=text, id=str(i)), Document(text=text, id=str(i))
        t0 = time.process_time()
        a = outcome(dt.filter(d1))
        t1 = time.process_time()
        b = outcome(st.keep(d2))
        t2 = time.process_time()
        t_dt += t1 - t0
        t_r1 += t2 - t1
        same_text = not (a[0] and b[0]) or d1.text == d2.text
        if a == b and same_text:
            agree += 1
        else:
            diffs.append((i, a, b, same_text))
    n = max(len(texts), 1)
    return agree, diffs, 1e3 * t_dt / n, 1e3 * t_r1 / n


def chain(texts: list[str], params: dict[str, dict], cold: bool) -> tuple[float, float, int]:
    """ms/doc for the four in a row (each sees the text the previous kept), datatrove vs r1data;
    ``cold``: r1data starts with empty token caches (as a task does on its first document)."""
    from datatrove.data import Document

    from r1data.sources import textstats

    if cold:
        textstats._VOCABS.clear()
        textstats._CACHE.clear()
    pairs = [make_pair(s, params[s]) for s in STAGES]  # loads spaCy (not timed)
    times = []
    kept = []
    for side in (0, 1):
        t0 = time.process_time()
        k = 0
        for i, text in enumerate(texts):
            d = Document(text=text, id=str(i))
            ok = True
            for pair in pairs:
                f = pair[side]
                ok = outcome(f.filter(d) if side == 0 else f.keep(d))[0]
                if not ok:
                    break
            k += ok
        times.append(1e3 * (time.process_time() - t0) / max(len(texts), 1))
        kept.append(k)
    assert kept[0] == kept[1], kept
    return times[0], times[1], kept[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extractor", choices=["resiliparse", "trafilatura"], default="resiliparse")
    ap.add_argument("--jsonl", help="texts to use instead of extracting (JSONL with a text field)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many documents per source")
    ap.add_argument("--cache", default="/tmp/r1data-heuristics-bench", help="where extracted texts are cached")
    ap.add_argument("--show", type=int, default=5, help="differences printed per filter")
    args = ap.parse_args()

    corpora = load_texts(args)
    total_diff = 0
    for corpus, texts in corpora.items():
        chars = sum(map(len, texts))
        print(f"\n== {corpus}: {len(texts)} documents, {chars / max(len(texts), 1):.0f} characters on average")
        for pname, params in param_sets().items():
            print(f"-- {pname}")
            print(f"   {'stage':<18} {'agree':>11} {'datatrove ms/doc':>17} {'r1data ms/doc':>14} {'speed-up':>9}")
            ms_dt, ms_r1, kept = chain(texts, params, cold=True)
            print(f"   {'four in a row, cold':<18} {'kept ' + str(kept):>11} {ms_dt:>17.2f} {ms_r1:>14.2f} {ms_dt / max(ms_r1, 1e-9):>8.1f}x", flush=True)
            for stage in STAGES:
                agree, diffs, ms_dt, ms_r1 = compare(texts, stage, params[stage])
                total_diff += len(diffs)
                print(f"   {stage:<18} {agree:>5}/{len(texts):<5} {ms_dt:>17.2f} {ms_r1:>14.2f} {ms_dt / max(ms_r1, 1e-9):>8.1f}x", flush=True)
                for i, a, b, same_text in diffs[: args.show]:
                    print(f"      DIFF doc {i}: datatrove {a}, r1data {b}, same kept text: {same_text}")
            ms_dt, ms_r1, kept = chain(texts, params, cold=False)
            print(f"   {'four in a row, warm':<18} {'kept ' + str(kept):>11} {ms_dt:>17.2f} {ms_r1:>14.2f} {ms_dt / max(ms_r1, 1e-9):>8.1f}x", flush=True)
    print(f"\n{total_diff} differing decisions in all")
    sys.exit(1 if total_diff else 0)


if __name__ == "__main__":
    main()
