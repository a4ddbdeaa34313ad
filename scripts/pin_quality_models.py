#!/usr/bin/env python
"""Write filters/quality-v1.yaml's model pins (path + sha256) from the bundled model files.

    python scripts/pin_quality_models.py          # after scripts/build_default_models.sh

Refuses to change the pins of a released policy unless --force: a policy name never changes its
output; copy it to quality-v2.yaml instead.
"""
import argparse
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "filters" / "quality-v1.yaml"
PINS = {
    "kenlm_en": "models/kenlm/en/en.arpa.bin",
    "kenlm_en_sp": "models/kenlm/en/en.sp.model",
    "kenlm_en_card": "models/kenlm/en/en.card.json",
    "quality_web": "models/quality/web/web.ftz",
    "quality_web_card": "models/quality/web/web.card.json",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="overwrite pins that differ")
    args = ap.parse_args()
    text = POLICY.read_text()
    changed = []
    for name, rel in PINS.items():
        sha = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()
        pat = re.compile(rf"(  {name}:\n    path: \.\./{re.escape(rel)}\n    sha256: )([0-9a-f]*)")
        m = pat.search(text)
        if not m:
            sys.exit(f"{POLICY}: no pin block for {name} ({rel})")
        if m.group(2) != sha:
            changed.append(name)
            text = pat.sub(rf"\g<1>{sha}", text)
    if changed and not args.force and "0" * 8 not in POLICY.read_text():
        sys.exit(f"pins would change for {', '.join(changed)}: pass --force (or release quality-v2)")
    POLICY.write_text(text)
    print(f"{POLICY.relative_to(ROOT)}: {'updated ' + ', '.join(changed) if changed else 'pins unchanged'}")


if __name__ == "__main__":
    main()
