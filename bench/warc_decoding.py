"""What ``warc_reader``'s ``decoding: browser`` (web-v2) costs against ``decoding: v1`` (web-v1).

    python bench/warc_decoding.py               # the bundled sample, best of 3 runs each
    python bench/warc_decoding.py --repeat 1 data/sample/web/web-00000.warc.gz

Reads the WARC files with each setting (``on_mojibake: keep``, so every document is decoded and
checked) and prints wall and CPU seconds of the best run, MB/s of decoded text, and how many
documents differ in text or were flagged as mojibake. On a shared machine CPU time is the
steadier figure.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1data.stages.base import InputFile  # noqa: E402
from r1data.stages.readers import WarcReader  # noqa: E402


def read_all(files: list[str], **config) -> tuple[list, float, float]:
    r = WarcReader(WarcReader.Config(**config))
    r.setup()
    w0, c0 = time.perf_counter(), time.process_time()
    docs = [d for i, f in enumerate(files) for d in r.read_file(InputFile(index=i, uri=f))]
    return docs, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", default=sorted(glob.glob(str(ROOT / "data" / "sample" / "web" / "*.warc.gz"))))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    read_all(args.files[:1])  # imports and first-use costs out of the timings
    read_all(args.files[:1], decoding="browser")
    results = {}
    for name, cfg in (("v1", {}), ("browser", {"decoding": "browser", "on_mojibake": "keep"})):
        runs = [read_all(args.files, **cfg) for _ in range(args.repeat)]
        docs, wall, cpu = min(runs, key=lambda r: r[1])
        results[name] = docs
        mb = sum(len(d.text.encode("utf-8", "surrogatepass")) for d in docs) / 2**20
        print(f"{name:8s} {len(docs)} documents, {mb:.1f} MB of text: wall {wall:.2f} s, CPU {cpu:.2f} s, {mb / wall:.1f} MB/s")
    differ = sum(a.text != b.text for a, b in zip(results["v1"], results["browser"]))
    flagged = sum("encoding_suspect" in d.metadata for d in results["browser"])
    print(f"browser vs v1: {differ} document(s) with other text, {flagged} flagged as mojibake")


if __name__ == "__main__":
    main()
