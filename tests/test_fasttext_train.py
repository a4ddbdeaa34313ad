"""fastText leaves most of its input matrix to the allocator with thread=1; r1data's wrapper makes
training independent of what the process allocated and freed before."""

import json
import random
import subprocess
import sys

TRAIN = "from r1data.quality.fasttext_train import train_supervised"

SCRIPT = """
import json, sys
import numpy as np
{import_line}
if sys.argv[2] == "dirty":
    # what a long pipeline process leaves behind: freeing a big buffer raises glibc's mmap threshold,
    # so later multi-MB buffers come from the heap; free some full of 0xff bytes (NaN as float32)
    # between live ones so that they stay in the heap for fastText's next allocation
    big = bytearray(24 << 20)
    del big
    junk, keep = [], []
    for _ in range(12):
        junk.append(b"\\xff" * (8 << 20))
        keep.append(bytearray(64 << 10))
    del junk
try:
    m = train_supervised(input=sys.argv[1], lr=0.05, dim=8, epoch=3, wordNgrams=2, bucket=200_000, thread=1, seed=0, verbose=0)
    w = m.get_input_matrix()
    print(json.dumps({{"finite": bool(np.isfinite(w).all()), "sum": float(np.float64(w).sum())}}))
except RuntimeError as e:
    print(json.dumps({{"error": str(e)}}))
"""


def _corpus(path):
    rng = random.Random(0)
    words = [f"w{i}" for i in range(500)]
    with open(path, "w") as f:
        for i in range(400):
            f.write(("__label__a " if i % 2 else "__label__b ") + " ".join(rng.choice(words) for _ in range(50)) + "\n")
    return str(path)


def _run(path, heap, import_line=TRAIN):
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(import_line=import_line), path, heap], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_training_after_a_dirty_heap_matches_a_fresh_process(tmp_path):
    path = _corpus(tmp_path / "train.txt")
    clean, dirty = _run(path, "clean"), _run(path, "dirty")
    assert clean["finite"] and dirty == clean
