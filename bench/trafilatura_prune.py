"""Trafilatura with and without r1data's compiled pruning XPaths (r1data/sources/fastprune.py): ms/page and
whether every page's text is byte-identical.

    python bench/trafilatura_prune.py                       # bundled web sample, 300 pages
    python bench/trafilatura_prune.py --input-set cc        # the Common Crawl 2020-34 excerpt
    python bench/trafilatura_prune.py --input-set benchmark # ../shared/data/extraction-benchmark (181 pages)
    python bench/trafilatura_prune.py --input-set /tmp/scale8000 --pages 1000

One process, one core, process CPU time; datatrove's settings (favor_precision, no comments, tables)
with deduplicate off (its cache spans documents, so the second pass would see a warm cache). The
stock pass runs first, then ``install()``, then the compiled pass, then the stock pass again (the
lists put back), so a machine that slows down mid-run shows up as two differing stock figures.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pages(input_set: str, limit: int) -> list[str]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    if input_set == "benchmark":
        folder = ROOT.parent / "shared" / "data" / "extraction-benchmark" / "html"
        return [gzip.decompress(f.read_bytes()).decode("utf-8", "replace") for f in sorted(folder.glob("*.html.gz"))][:limit]
    folder = {"sample": ROOT / "data" / "sample" / "web",
              "cc": ROOT.parent / "shared" / "data" / "cc-2020-34-sample"}.get(input_set, Path(input_set))
    out = []
    for path in sorted(glob.glob(str(folder / "*.warc.gz"))):
        with open(path, "rb") as f:
            for rec in ArchiveIterator(f, record_types=WarcRecordType.response):
                out.append(rec.reader.read().split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace"))
                if len(out) >= limit:
                    return out
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input-set", default="sample", help="sample, cc, benchmark, or a folder of .warc.gz")
    ap.add_argument("--pages", type=int, default=300)
    args = ap.parse_args()
    import logging

    logging.disable(logging.CRITICAL)  # Trafilatura logs every page it finds no text in
    import trafilatura
    from trafilatura import xpaths

    from r1data.sources import fastprune

    html = pages(args.input_set, args.pages)
    kw = dict(favor_precision=True, include_comments=False, include_tables=True, deduplicate=False)

    def run():
        t = time.process_time()
        out = [trafilatura.extract(h, **kw) for h in html]
        return out, (time.process_time() - t) / len(html) * 1000

    saved = {n: list(getattr(xpaths, n)) for n in fastprune._LISTS if isinstance(getattr(xpaths, n, None), list)}
    stock, t_stock = run()
    n = fastprune.install()
    fast, t_fast = run()
    for name, items in saved.items():
        getattr(xpaths, name)[:] = items
    stock2, t_stock2 = run()
    differ = sum(a != b for a, b in zip(stock, fast))
    print(f"{len(html)} pages ({args.input_set}); {n} expressions compiled; with text: {sum(bool(t) for t in stock)}")
    print(f"Trafilatura stock {t_stock:.1f} ms/page (again after: {t_stock2:.1f}), compiled pruning {t_fast:.1f} ms/page: "
          f"{min(t_stock, t_stock2) / t_fast:.2f}x; pages whose text differs: {differ}; stock vs stock: "
          f"{sum(a != b for a, b in zip(stock, stock2))}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
