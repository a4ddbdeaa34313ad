"""What the secret redaction finds on real code: code-v1's settings against code-v2's.

    python bench/secrets_precision.py                 # the standard library (the code recipe's default input)
    python bench/secrets_precision.py DIR [DIR ...]   # any trees

Reads every file under 1 MB that is not binary (byte-code caches skipped; site-packages too when
reading the standard library), runs ``redact`` with each policy's ``secret_redaction`` settings,
and prints the counts per kind, the time each took, and every span code-v2 finds that code-v1 does
not (its kind, file and surroundings), for inspection.
"""

from __future__ import annotations

import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r1data.sources.secrets import find_spans, redact  # noqa: E402


def settings(policy: str) -> tuple[list[str], bool]:
    cfg = yaml.safe_load((ROOT / "filters" / f"{policy}.yaml").read_text())["stages"]["secret_redaction"]
    return cfg["kinds"], cfg.get("by_content", True)


def main(roots: list[Path], skip: tuple[str, ...]) -> None:
    (k1, c1), (k2, c2) = settings("code-v1"), settings("code-v2")
    n1, n2, added = Counter(), Counter(), []
    t1 = t2 = 0.0
    files = nbytes = 0
    for root in roots:
        for p in sorted(root.rglob("*")):
            if not p.is_file() or p.is_symlink() or any(x in p.parts for x in skip) or p.suffix in (".pyc", ".pyo"):
                continue
            try:
                data = p.read_bytes()
            except OSError:
                continue
            if len(data) > 2**20 or b"\0" in data[:8000]:
                continue
            text = data.decode("utf-8", "replace")
            files += 1
            nbytes += len(data)
            t = time.perf_counter()
            _, a = redact(text, k1, by_content=c1)
            t1 += time.perf_counter() - t
            t = time.perf_counter()
            _, b = redact(text, k2, by_content=c2)
            t2 += time.perf_counter() - t
            n1.update(a)
            n2.update(b)
            for kind in b:
                if b[kind] != a.get(kind, 0):
                    before, _ = redact(text, [k for k in k2 if k != kind], by_content=c2)
                    for s, e in find_spans(before, kind, by_content=c2):
                        added.append((kind, str(p), before[max(0, s - 50) : e + 10].replace("\n", "\\n")))
    print(f"{files} files, {nbytes / 1e6:.1f} MB")
    print(f"code-v1: {sum(n1.values())} redactions {dict(n1.most_common())} in {t1:.2f} s")
    print(f"code-v2: {sum(n2.values())} redactions {dict(n2.most_common())} in {t2:.2f} s")
    print(f"found by code-v2 only ({len(added)}):")
    for kind, path, around in added:
        print(f"  {kind}  {path}\n      ...{around}...")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main([Path(a) for a in sys.argv[1:]], ("__pycache__",))
    else:
        main([Path(sysconfig.get_paths()["stdlib"])], ("__pycache__", "site-packages", "dist-packages"))
