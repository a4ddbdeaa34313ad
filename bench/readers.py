"""Throughput of the code and books readers (and the code filters), against baselines run in the
same process on the same data.

    python bench/readers.py                  # everything, best of 3 runs each
    python bench/readers.py --only code --repeat 1

Code: ``code_reader`` over the standard library of this interpreter (site-packages and
__pycache__ excluded, as pipelines/code.yaml does): files/s and MB/s, against a bare
``os.walk`` + ``read`` + UTF-8 decode loop (the floor any reader pays); ``code_quality`` and
``secret_redaction`` over the documents it keeps, the latter against detect-secrets' scanner on a
150-file sample (``pip install detect-secrets`` to include it).

Books: ``books_reader`` (decode, strip, segment) over data/sample/books: books/s, MB/s of input
and pages/s, a page being 2,000 characters of output text; against gutenberg-cleaner's
``simple_cleaner`` (the classic header/footer stripper; ``pip install gutenberg-cleaner``) on the
three raw Gutenberg texts, with the first and last lines each one leaves.

Times are wall-clock (best of ``--repeat``) and CPU (process time of that run): on a shared
machine CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "cli")]

PAGE_CHARS = 2000


def best(fn, repeat: int):
    """``(result, wall seconds, cpu seconds)`` of the fastest of ``repeat`` calls."""
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        res = fn()
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        if out is None or wall < out[1]:
            out = (res, wall, cpu)
    return out


def line(label: str, n: float, unit: str, size_mb: float, wall: float, cpu: float, extra: str = "") -> None:
    print(f"  {label:<34} {n / wall:>10,.0f} {unit}/s  {size_mb / wall:>7.1f} MB/s  (wall {wall:.2f} s, cpu {cpu:.2f} s){extra}")


def bench_code(repeat: int) -> None:
    from r1data.stages.base import InputFile, rejection
    from r1data.stages.code import CodeQuality, CodeReader, CodeReaderConfig, SecretRedaction

    stdlib = sysconfig.get_paths()["stdlib"]
    exclude = ["__pycache__/", "*.py[co]", "site-packages/", "dist-packages/"]
    print(f"code reader on {stdlib}")

    def naive():
        n = size = 0
        for root, dirs, files in os.walk(stdlib):
            dirs[:] = [d for d in dirs if d not in ("__pycache__", "site-packages", "dist-packages")]
            for name in files:
                if name.endswith((".pyc", ".pyo")):
                    continue
                try:
                    with open(os.path.join(root, name), "rb") as fh:
                        data = fh.read(1 << 20)
                except OSError:
                    continue
                data.decode("utf-8", "replace")
                n += 1
                size += len(data)
        return n, size

    def reader():
        r = CodeReader(CodeReaderConfig(exclude=exclude))
        r.files = [InputFile(index=0, uri=stdlib)]
        return list(r.run(None, 0, 1))

    (n_files, n_bytes), nw, nc = best(naive, repeat)
    docs, w, c = best(reader, repeat)
    kept = [d for d in docs if not rejection(d)]
    kept_mb = sum(len(d.text.encode()) for d in kept) / 1e6
    # MB/s of both lines: the bytes the baseline reads (every file, up to 1 MB each)
    line("code_reader", len(docs), "files", n_bytes / 1e6, w, c, f"  {len(kept)} kept, {len(docs) - len(kept)} rejected")
    line("baseline: os.walk + read + decode", n_files, "files", n_bytes / 1e6, nw, nc)
    print(f"  code_reader / baseline: {w / nw:.2f}x the time (safety checks, classification, licences, git hashes)")

    quality = CodeQuality()
    _, w, c = best(lambda: [quality.keep(d) for d in kept], repeat)
    line("code_quality", len(kept), "docs", kept_mb, w, c)
    tagger = SecretRedaction()
    texts = [d.text for d in kept]

    def redact_all():
        from r1data.sources.secrets import redact

        return [redact(t, tagger.config.kinds, tagger.config.keep_email_domains) for t in texts]

    _, w, c = best(redact_all, repeat)
    line("secret_redaction", len(kept), "docs", kept_mb, w, c)
    try:
        from detect_secrets import SecretsCollection
        from detect_secrets.settings import default_settings
    except ImportError:
        print("  (pip install detect-secrets to compare with its scanner)")
        return
    # detect-secrets reads ~1 file/s per core here: compare on a fixed sample of 150 files
    sample = sorted(kept, key=lambda d: d.metadata["path"])[:: max(1, len(kept) // 150)][:150]
    paths = [os.path.join(stdlib, d.metadata["path"]) for d in sample]
    sample_mb = sum(len(d.text.encode()) for d in sample) / 1e6
    sample_texts = [d.text for d in sample]

    def redact_sample():
        from r1data.sources.secrets import redact

        return [redact(t, tagger.config.kinds, tagger.config.keep_email_domains) for t in sample_texts]

    def detect():
        with default_settings():
            sc = SecretsCollection()
            for p in paths:
                sc.scan_file(p)
        return sc

    _, w, c = best(redact_sample, repeat)
    line(f"secret_redaction, {len(paths)}-file sample", len(paths), "docs", sample_mb, w, c)
    _, dw, dc = best(detect, 1)
    line("baseline: detect-secrets scan_file", len(paths), "docs", sample_mb, dw, dc)
    print(f"  secret_redaction is {dw / w:.0f}x faster than detect-secrets on the same files (which only reports, with its own plugin set)")


def bench_books(repeat: int) -> None:
    from r1data.run.inputs import resolve_inputs
    from r1data.sources.gutenberg import parse_book
    from r1data.stages.books import BooksReader, read_bytes

    sample = ROOT / "data" / "sample" / "books"
    files = resolve_inputs([str(sample)], BooksReader.file_patterns, exclude_patterns=BooksReader.exclude_patterns)
    size = sum(len(read_bytes(f.uri, 1 << 30)) for f in files)  # uncompressed
    print(f"books reader on {sample} ({len(files)} books, {size / 1e6:.1f} MB uncompressed)")

    def reader():
        r = BooksReader()
        r.files = files
        return list(r.run(None, 0, 1))

    docs, w, c = best(reader, repeat)
    pages = sum(len(d.text) for d in docs) / PAGE_CHARS
    line("books_reader (chapter segments)", pages, "pages", size / 1e6, w, c, f"  {len(files) / w:.1f} books/s, {len(docs)} segments")

    raw = sample / "gutenberg"
    texts = {p.name: p.read_bytes() for p in sorted(raw.iterdir()) if p.suffix in (".txt", ".tex") and not p.name.startswith("LICENSE")}
    raw_mb = sum(map(len, texts.values())) / 1e6
    ours, w, c = best(lambda: {n: parse_book(b, name=n, latex=n.endswith(".tex")).body for n, b in texts.items()}, repeat)
    line("parse_book on the 3 raw PG texts", len(texts), "books", raw_mb, w, c)
    try:
        from gutenberg_cleaner import simple_cleaner
    except ImportError:
        print("  (pip install gutenberg-cleaner to compare with its simple_cleaner)")
        return
    theirs, bw, bc = best(lambda: {n: simple_cleaner(b.decode("latin-1")) for n, b in texts.items()}, repeat)
    line("baseline: gutenberg-cleaner", len(texts), "books", raw_mb, bw, bc)
    print(f"  parse_book / gutenberg-cleaner: {w / bw:.2f}x the time; first and last content lines each leaves:")
    for name in texts:
        for who, body in (("r1data", ours[name]), ("gutenberg-cleaner", theirs[name])):
            lines = [x.strip() for x in body.strip().splitlines() if x.strip()]
            print(f"    {name:<12} {who:<18} {lines[0][:48]!r:<52} ... {lines[-1][:48]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["code", "books"])
    args = ap.parse_args()
    from datatrove.utils.logging import logger

    logger.remove()  # the readers log skipped paths at INFO
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if args.only in (None, "code"):
        bench_code(args.repeat)
    if args.only in (None, "books"):
        bench_books(args.repeat)


if __name__ == "__main__":
    main()
