"""Write a large WARC set from real HTML, offline, for speed and scale runs of the web recipe.

    python bench/make_scale_set.py                              # 20,000 pages -> out/scale-set/
    python bench/make_scale_set.py --pages 2000 --out /tmp/s2k  # a small set for a quick run

Where the pages come from (nothing is downloaded):

- the 181 news and blog articles of the extraction benchmark (``shared/data/extraction-benchmark``),
- the HTTP responses of the bundled web sample (``data/sample/web``: Python documentation pages
  and Common Crawl captures) and of the Common Crawl 2020-34 excerpt (``shared/data/cc-2020-34-sample``).

Each output page is one of those, drawn at random with weights ``--mix`` (news, docs, cc; default
60/30/10), so page sizes range from a few KB to 1.5 MB as on the web. It gets a fresh URL on one of
many hosts, a fresh WARC-Record-ID and date. When the page decodes as UTF-8 its text is lightly
perturbed so that exact and near dedup do not collapse the copies: in text outside ``<script>``
and ``<style>``, ``--perturb`` (default 0.08) of the words of 4+ letters are swapped with another
word of the same page. That changes about a third of a page's word 5-grams, which puts two copies
well under the 0.8 Jaccard of ``minhash_dedup``, while the page keeps its structure, size, markup
and vocabulary. Pages that are not UTF-8 (some Common Crawl captures) are copied unchanged, so their
copies are exact duplicates.

The WARCs look like Common Crawl's: a warcinfo record, then per page a request, a response and a
metadata record, one gzip member per record, ``--pages-per-file`` responses per file, and every
response carries ``WARC-Identified-Payload-Type`` (datatrove's reader asks libmagic when it is
missing and silently skips XHTML pages that libmagic calls text/xml).
"""

from __future__ import annotations

import argparse
import base64
import glob
import gzip
import hashlib
import io
import random
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, shared_data  # noqa: E402


@dataclass
class Page:
    kind: str  # news | docs | cc
    payload: bytes
    content_type: str  # the HTTP Content-Type header
    identified: str  # WARC-Identified-Payload-Type
    path: str  # URL path of the original, reused in the new URL


def _identify(payload: bytes, ctype: str) -> str:
    head = payload[:2048].lstrip().lower()
    if "xhtml" in ctype or (head.startswith(b"<?xml") and b"<html" in head):
        return "application/xhtml+xml"
    return "text/html"


def load_pages(shared: Path) -> dict[str, list[Page]]:
    from warcio.archiveiterator import ArchiveIterator

    pools: dict[str, list[Page]] = {"news": [], "docs": [], "cc": []}
    for f in sorted((shared / "extraction-benchmark" / "html").glob("*.html.gz")):
        payload = gzip.decompress(f.read_bytes())
        pools["news"].append(Page("news", payload, "text/html; charset=utf-8", "text/html", "/" + f.name.split(".")[0][:16] + ".html"))
    warcs = sorted(glob.glob(str(ROOT / "data" / "sample" / "web" / "*.warc.gz"))) + sorted(
        glob.glob(str(shared / "cc-2020-34-sample" / "*.warc.gz"))
    )
    seen: set[bytes] = set()
    for w in warcs:
        with open(w, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type != "response" or rec.http_headers is None:
                    continue
                url = rec.rec_headers.get_header("WARC-Target-URI") or ""
                status = rec.http_headers.get_statuscode() or ""
                ctype = rec.http_headers.get_header("Content-Type") or "text/html"
                payload = rec.content_stream().read()
                if not status.startswith("2") or "html" not in ctype.lower():
                    continue
                digest = hashlib.sha1(payload).digest()
                if digest in seen:  # the bundled sample holds injected exact duplicates
                    continue
                seen.add(digest)
                kind = "docs" if "docs.python.org" in url else "cc"
                path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0][:80]
                pools[kind].append(Page(kind, payload, ctype, _identify(payload, ctype.lower()), path))
    return pools


_TAG = re.compile(rb"(<[^>]*>)")
_WORD = re.compile(r"[A-Za-z]{4,}")


def perturb(payload: bytes, rate: float, rng: random.Random) -> bytes:
    """Swap ``rate`` of the 4+-letter words in visible text with other words of the same page."""
    if rate <= 0:
        return payload
    try:
        html = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload
    parts = re.split(r"(<[^>]*>)", html)
    words = _WORD.findall(" ".join(p for i, p in enumerate(parts) if i % 2 == 0))
    if len(words) < 20:
        return payload
    skip = False
    out = []

    def swap(m: re.Match) -> str:
        return rng.choice(words) if rng.random() < rate else m.group(0)

    for i, p in enumerate(parts):
        if i % 2:  # a tag
            low = p[:8].lower()
            if low.startswith(("<script", "<style")):
                skip = True
            elif low.startswith(("</script", "</style")):
                skip = False
            out.append(p)
        else:
            out.append(p if skip or not p.strip() else _WORD.sub(swap, p))
    return "".join(out).encode("utf-8")


def _record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + f"Content-Length: {len(block)}\r\n\r\n"
    raw = head.encode("utf-8") + block + b"\r\n\r\n"
    return gzip.compress(raw, compresslevel=6, mtime=0)


def _digest(b: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(b).digest()).decode()


HOSTS = [f"{w}{n}.{tld}" for n in range(40) for w, tld in (("news", "com"), ("blog", "org"), ("www.site", "net"), ("docs", "io"))]


def write_set(out: Path, pages: int, per_file: int, mix: tuple[float, float, float], rate: float, seed: int) -> dict:
    pools = load_pages(shared_data())
    kinds = [k for k in ("news", "docs", "cc") if pools[k]]
    weights = [w for k, w in zip(("news", "docs", "cc"), mix) if pools[k]]
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("scale-*.warc.gz"):
        old.unlink()
    n_files = (pages + per_file - 1) // per_file
    raw_bytes = gz_bytes = 0
    counts = {k: 0 for k in kinds}
    t0 = time.time()
    for fi in range(n_files):
        path = out / f"scale-{fi:05d}.warc.gz"
        buf = io.BytesIO()
        info = f"software: r1data bench/make_scale_set.py\r\nformat: WARC File Format 1.0\r\nseed: {seed}\r\n".encode()
        buf.write(_record([("WARC-Type", "warcinfo"), ("WARC-Date", "2026-01-01T00:00:00Z"), ("WARC-Filename", path.name),
                           ("WARC-Record-ID", f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}>"), ("Content-Type", "application/warc-fields")], info))
        for i in range(fi * per_file, min(pages, (fi + 1) * per_file)):
            page = rng.choice(pools[rng.choices(kinds, weights)[0]])
            counts[page.kind] += 1
            payload = perturb(page.payload, rate, rng)
            host = rng.choice(HOSTS)
            url = f"https://{host}/p{i}{page.path}"
            date = f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"
            req_id, resp_id, meta_id = (f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}>" for _ in range(3))
            req = f"GET /p{i}{page.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: r1data-scale-set\r\nAccept: text/html\r\n\r\n".encode()
            http = (f"HTTP/1.1 200 OK\r\nContent-Type: {page.content_type}\r\nContent-Length: {len(payload)}\r\n\r\n").encode("latin-1") + payload
            meta = f"fetchTimeMs: {20 + i % 500}\r\ncharset-detected: UTF-8\r\n".encode()
            common = [("WARC-Date", date), ("WARC-Target-URI", url)]
            for rec in (
                _record([("WARC-Type", "request"), *common, ("WARC-Record-ID", req_id), ("Content-Type", "application/http; msgtype=request")], req),
                _record([("WARC-Type", "response"), *common, ("WARC-Record-ID", resp_id), ("WARC-Concurrent-To", req_id),
                         ("Content-Type", "application/http; msgtype=response"), ("WARC-Payload-Digest", _digest(payload)),
                         ("WARC-Block-Digest", _digest(http)), ("WARC-Identified-Payload-Type", page.identified)], http),
                _record([("WARC-Type", "metadata"), *common, ("WARC-Record-ID", meta_id), ("WARC-Concurrent-To", resp_id),
                         ("Content-Type", "application/warc-fields")], meta),
            ):
                buf.write(rec)
            raw_bytes += len(http)
        data = buf.getvalue()
        gz_bytes += len(data)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        print(f"\r{path.name}: {min(pages, (fi + 1) * per_file):,}/{pages:,} pages, {gz_bytes / 2**20:,.0f} MiB, {time.time() - t0:.0f} s",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"pages": pages, "files": n_files, "gzip_bytes": gz_bytes, "payload_bytes": raw_bytes, "by_kind": counts, "pool_sizes": {k: len(v) for k, v in pools.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=20_000, help="HTTP responses to write (default 20,000)")
    ap.add_argument("--pages-per-file", type=int, default=1000, help="responses per WARC file (default 1,000)")
    ap.add_argument("--out", default=str(ROOT / "out" / "scale-set"), help="output folder (default out/scale-set, git-ignored)")
    ap.add_argument("--mix", default="60,30,10", help="weights of news,docs,cc pages (default 60,30,10)")
    ap.add_argument("--perturb", type=float, default=0.08, help="share of words swapped per page (0 = exact copies)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    mix = tuple(float(x) for x in a.mix.split(","))
    if len(mix) != 3 or min(mix) < 0 or not sum(mix):
        ap.error("--mix takes three non-negative weights: news,docs,cc")
    if a.pages < 1 or a.pages_per_file < 1:
        ap.error("--pages and --pages-per-file must be positive")
    r = write_set(Path(a.out), a.pages, a.pages_per_file, mix, a.perturb, a.seed)
    print(
        f"{a.out}: {r['pages']:,} responses in {r['files']} files, {r['gzip_bytes'] / 2**20:,.1f} MiB gzip, "
        f"{r['payload_bytes'] / 2**20:,.1f} MiB of HTTP payload; pages by kind {r['by_kind']} drawn from {r['pool_sizes']} originals"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
