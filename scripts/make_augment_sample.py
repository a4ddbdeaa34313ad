"""Rebuild the augmentation sample (data/sample/augment/*.jsonl) from ../shared/data and the stdlib.

    python scripts/make_augment_sample.py [SHARED_DATA_DIR]

All records use the field `text`, so one `jsonl_reader` reads the three files:
- gsm8k.jsonl: the first 200 GSM8K training problems; `question` -> `text`, `answer` kept (MIT).
- python.jsonl: 24 small CPython standard-library modules (PSF licence) and 1 shell script of
  this repository (Apache-2.0), with `path`, `language` and `license`.
- prose.jsonl: paragraphs of William Morris, "News from Nowhere" (public domain) and of
  A. N. Whitehead, "An Introduction to Mathematics" (public domain; LaTeX source of PG #41568).
"""

import gzip
import json
import re
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "data" / "sample" / "augment"  # where the sample files go
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = [
    "bisect.py", "colorsys.py", "copyreg.py", "fnmatch.py", "genericpath.py", "glob.py", "graphlib.py", "heapq.py",
    "keyword.py", "linecache.py", "nturl2path.py", "opcode.py", "operator.py", "posixpath.py", "queue.py",
    "reprlib.py", "sched.py", "shlex.py", "stat.py", "string.py", "textwrap.py", "this.py", "tty.py", "uu.py",
]


def write(name, rows):
    with open(HERE / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    rows = []
    with gzip.open(SHARED / "math" / "gsm8k" / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == 200:
                break
            r = json.loads(line)
            rows.append({"id": f"gsm8k-train-{i:05d}", "text": r["question"], "answer": r["answer"], "dataset": "gsm8k"})
    write("gsm8k.jsonl", rows)

    rows = []
    for m in MODULES:
        src = (STDLIB / m).read_text(encoding="utf-8")
        rows.append({"id": f"cpython-3.11:Lib/{m}", "text": src, "path": f"Lib/{m}", "language": "python", "license": "PSF-2.0"})
    sh = ROOT / "scripts" / "setup.d" / "40-apertium.sh"
    rows.append({"id": "r1data:scripts/setup.d/40-apertium.sh", "text": sh.read_text(), "path": "scripts/setup.d/40-apertium.sh", "language": "shell", "license": "Apache-2.0"})
    write("python.jsonl", rows)

    rows = []
    text = (SHARED / "backtranslation-apertium" / "sample.en.txt").read_text(encoding="utf-8")
    lines = text.replace("\n ", " ").split("\n")[6:]  # continuation lines start with a space
    lines = [ln.strip() for ln in lines if ln.strip()]
    for k in range(0, len(lines), 3):
        rows.append({"id": f"news-from-nowhere-{k // 3:02d}", "text": " ".join(lines[k : k + 3]), "title": "News from Nowhere", "license": "public-domain"})
    tex = (SHARED / "books" / "gutenberg-raw" / "41568-t.tex").read_text(encoding="latin-1")
    paras = [p.strip() for p in re.split(r"\n\s*\n", tex) if p.count("$") >= 6 and "\\" in p and 300 < len(p) < 1500]
    for k, p in enumerate(paras[:10]):
        rows.append({"id": f"whitehead-intro-math-{k:02d}", "text": p, "title": "An Introduction to Mathematics", "license": "public-domain"})
    write("prose.jsonl", rows)


if __name__ == "__main__":
    main()
