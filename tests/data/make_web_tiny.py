"""Cut tests/data/web-tiny/ (2 small WARC shards + duplicates.json) from the bundled sample.

Deterministic: the smallest pages, 2 near- and 2 exact-duplicate groups, 5 Common Crawl records.
Run from the repository root:  python tests/data/make_web_tiny.py
"""

import glob
import io
import json
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

SRC = Path("data/sample/web")
DST = Path("tests/data/web-tiny")


def main() -> None:
    records = {}  # url -> (shard, raw record bytes, payload size)
    for f in sorted(glob.glob(str(SRC / "*.warc.gz"))):
        with open(f, "rb") as fh:
            it = ArchiveIterator(fh)
            for r in it:
                if r.rec_type != "response":
                    continue
                url = r.rec_headers.get_header("WARC-Target-URI")
                buf = io.BytesIO()
                w = WARCWriter(buf, gzip=True)
                payload = r.content_stream().read()
                r2 = w.create_warc_record(
                    url, "response", payload=io.BytesIO(payload), http_headers=r.http_headers,
                    warc_headers_dict={k: v for k, v in r.rec_headers.headers if k in ("WARC-Record-ID", "WARC-Date")},
                )
                w.write_record(r2)
                records[url] = (f, buf.getvalue(), len(payload))
    groups = json.loads((SRC / "duplicates.json").read_text())["duplicate_groups"]
    size = lambda g: sum(records[u][2] for u in g["urls"])
    near = sorted((g for g in groups if g["kind"] == "near"), key=size)[:2]
    exact = sorted((g for g in groups if g["kind"] == "exact"), key=size)[:2]
    in_groups = {u for g in groups for u in g["urls"]}
    docs = sorted((u for u in records if "python.org" in u and u not in in_groups), key=lambda u: records[u][2])[:12]
    cc = sorted(u for u in records if "python.org" not in u)[:5]
    chosen = list(dict.fromkeys([u for g in near + exact for u in g["urls"]] + docs + cc))
    chosen.sort(key=lambda u: (records[u][0], u))
    DST.mkdir(parents=True, exist_ok=True)
    half = (len(chosen) + 1) // 2
    for i, part in enumerate((chosen[:half], chosen[half:])):
        with open(DST / f"tiny-{i:05d}.warc.gz", "wb") as out:
            for u in part:
                out.write(records[u][1])
    (DST / "duplicates.json").write_text(json.dumps({"duplicate_groups": near + exact, "records": len(chosen)}, indent=1) + "\n")
    print(f"wrote {len(chosen)} records to {DST}")


if __name__ == "__main__":
    main()
