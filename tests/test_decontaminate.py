"""Benchmark decontamination: planted test questions in a WARC and in math rows are caught, same-topic pages are not."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from r1data.quality.contamination import build_index, normalize_words
from tests.conftest import r1data_cmd

ROOT = Path(__file__).resolve().parents[1]


def gsm8k_test(n: int) -> list[dict]:
    with gzip.open(ROOT / "data/benchmarks/gsm8k-test.jsonl.gz", "rt") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def humaneval(n: int) -> list[dict]:
    with gzip.open(ROOT / "data/benchmarks/humaneval.jsonl.gz", "rt") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


FILLER = (
    "Welcome to our homework help forum. Students post the problems they are stuck on and volunteers explain "
    "the reasoning step by step, so that everyone learns how to approach similar exercises on their own. "
)
SAME_TOPIC = (
    "Ducks are popular backyard birds. A healthy laying duck can give several eggs a week, and many families sell "
    "the surplus at a farmers market. Prices for fresh duck eggs vary by region and season, and some sellers bake "
    "muffins with the eggs they cannot sell. Keeping ducks needs water, shelter and a balanced feed."
)


def variants(question: str) -> dict[str, str]:
    return {
        "verbatim": question,
        "recased": question.upper(),
        "respaced": "  ".join(question.split()).replace(". ", ".\n\n"),
        "in_page": FILLER * 3 + "Here is one I could not solve: " + question + " Thanks for any help! " + FILLER * 2,
    }


def html(body: str) -> bytes:
    paras = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
    return f"<html><head><title>Forum</title></head><body><article>{paras}</article></body></html>".encode()


def write_warc(path: Path, pages: dict[str, str]) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for url, body in pages.items():
            payload = html(body)
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            rec = w.create_warc_record(
                url, "response", payload=io.BytesIO(payload), http_headers=headers,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"},
            )
            w.write_record(rec)


def test_normalisation_is_gpt3s():
    assert normalize_words("Janet’s ducks LAY 16-3-4 eggs,  per\tday.") == ["janets", "ducks", "lay", "1634", "eggs", "per", "day"]


def test_index_catches_variants_and_not_same_topic():
    idx = build_index(["gsm8k", "humaneval"])
    q = gsm8k_test(1)[0]["question"]
    for name, text in variants(q).items():
        m = idx.find(text)
        assert m and m[0].benchmark == "gsm8k", name
    assert idx.find(SAME_TOPIC) == []
    code = humaneval(1)[0]["prompt"]
    assert idx.find("# my solutions\n" + code)[0].benchmark == "humaneval"
    # a hash hit is verified against the words: a different 13-gram with the same length never matches
    assert idx.find(" ".join(["word"] * 500)) == []


def test_a_file_benchmark_and_tag_mode(tmp_path):
    ev = tmp_path / "my-eval.jsonl"
    ev.write_text(json.dumps({"question": "Which river flows through the old town of the city where the treaty was signed in the spring?"}) + "\n")
    idx = build_index([str(ev)])
    assert idx.find("Quiz: which river flows through the old town of the city where the treaty was signed in the spring")[0].benchmark == "my-eval"


def _rows(out: Path) -> list[dict]:
    rows = []
    for sub in ("shards", "rejected"):
        for f in sorted((out / sub).glob("*.parquet")):
            rows += pq.read_table(f).to_pylist()
    return rows


def test_planted_questions_are_caught_in_a_warc_and_in_math_rows(tmp_path):
    qs = gsm8k_test(3)
    pages, expect = {}, {}
    for i, row in enumerate(qs):
        for name, text in variants(row["question"]).items():
            url = f"https://forum.example/{i}/{name}"
            pages[url] = text
            expect[url] = "benchmark_overlap"
    pages["https://forum.example/ducks"] = SAME_TOPIC
    expect["https://forum.example/ducks"] = None
    code = humaneval(2)[1]["prompt"]
    pages["https://code.example/snippet"] = "Here is a snippet I found.\n\n" + code
    expect["https://code.example/snippet"] = "benchmark_overlap"
    (tmp_path / "web").mkdir()
    write_warc(tmp_path / "web" / "planted.warc.gz", pages)
    web = tmp_path / "web.yaml"
    web.write_text(
        f"name: web\ninputs: [{tmp_path / 'web'}]\nstages:\n  - stage: warc_reader\n  - stage: html_extract\n"
        f"  - stage: decontaminate\n    benchmarks: [gsm8k, humaneval]\noutput: {{path: {tmp_path / 'out-web'}}}\n"
        "executor: {type: local, tasks: 1, workers: 1}\n"
    )
    res = r1data_cmd("run", web, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {r["url"]: r for r in _rows(tmp_path / "out-web")}
    assert set(rows) == set(expect)
    for url, reason in expect.items():
        assert rows[url].get("reason") == reason, (url, rows[url].get("reason"), rows[url]["text"][:200])
        if reason:
            assert rows[url]["contamination"] in ("gsm8k", "humaneval") and len(rows[url]["contamination_ngram"].split()) == 13
        else:
            assert rows[url]["contamination"] is None

    math_in = tmp_path / "math.jsonl"
    with open(math_in, "w") as fh:
        for i, row in enumerate(qs):
            for name, text in variants(row["question"]).items():
                fh.write(json.dumps({"id": f"{i}-{name}", "question": text, "answer": "I think it is 7."}) + "\n")
        fh.write(json.dumps({"id": "clean", "question": "How many legs do three ducks and two cats have together in total?", "answer": "14"}) + "\n")
    math = tmp_path / "math.yaml"
    math.write_text(
        f"name: math\ninputs: [{math_in}]\nstages:\n  - stage: jsonl_reader\n    source: math\n"
        '    template: "Question: {question}\\nAnswer: {answer}"\n'
        f"  - stage: decontaminate\n    benchmarks: [gsm8k]\noutput: {{path: {tmp_path / 'out-math'}}}\n"
        "executor: {type: local, tasks: 1, workers: 1}\n"
    )
    res = r1data_cmd("run", math, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    got = {r["id"]: r.get("reason") for r in _rows(tmp_path / "out-math")}
    assert got.pop("clean") is None
    assert len(got) == 12 and set(got.values()) == {"benchmark_overlap"}
    st = r1data_cmd("stats", tmp_path / "out-math", "--format", "json", timeout=300)
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["contamination"] == [{"benchmark": "gsm8k", "tagged_kept": 0, "dropped": 12, "documents": 12}]


@pytest.mark.parametrize("action", ["tag"])
def test_tag_mode_keeps_the_document(action):
    from datatrove.data import Document

    from r1data.stages.decontam import Decontaminate, DecontaminateConfig

    stage = Decontaminate(DecontaminateConfig(benchmarks=["gsm8k"], action=action))
    doc = Document(text=FILLER + gsm8k_test(1)[0]["question"], id="d")
    out = list(stage.run(iter([doc])))
    assert "_rejected" not in out[0].metadata and out[0].metadata["contamination"] == "gsm8k"


_PROBE = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

def probe():
    from r1data.quality import contamination
    return len(contamination._INDEXES)

if __name__ == "__main__":
    from r1data.run.executor import preload_forkserver
    from r1data.stages.registry import get_stage

    stage = get_stage("decontaminate")
    preload_forkserver([stage(stage.Config(benchmarks=["humaneval"]))])
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as ex:
        print(ex.submit(probe).result())
"""


def test_pool_workers_inherit_the_index_built_in_the_fork_server(tmp_path):
    """Stage.preload(): the index is built once in the fork server, not once per worker."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"


def test_index_windows_stay_inside_one_item(tmp_path):
    """The index hashes all items in one pass over their joined words: an n-gram running from the end of one
    item into the next is not an n-gram of either; a short item matches only whole; the first item that has
    an n-gram names it, the same n-gram in a later item is stored once."""
    one = " ".join(f"alpha{i}" for i in range(20))
    two = " ".join(f"beta{i}" for i in range(20))
    short = " ".join(f"gamma{i}" for i in range(10))  # 10 words: >= min_words, < n
    again = "delta zero " + " ".join(f"alpha{i}" for i in range(13))  # repeats item one's first 13-gram
    f = tmp_path / "evalset.txt"
    f.write_text("\n\n".join([one, two, short, again]) + "\n")
    idx = build_index([str(f)], n=13, min_words=8)
    assert idx.items == {"evalset": 4}
    across = " ".join(one.split()[-6:] + two.split()[:7])
    assert idx.find(f"some words {across} more words") == []
    assert [m.item for m in idx.find(f"x y {one} z")] == ["evalset#0"]
    assert [m.item for m in idx.find(f"x y {two}")] == ["evalset#1"]
    assert idx.find(" ".join(short.split()[:9])) == []  # part of a short item: not a match
    assert [m.item for m in idx.find(f"it said {short} and more")] == ["evalset#2"]
    m = idx.find(" ".join(f"alpha{i}" for i in range(13)), first_only=False)
    assert [(x.item, x.count) for x in m] == [("evalset#0", 1)]  # stored once, named by the first item
    assert [x.item for x in idx.find("delta zero alpha0 alpha1 alpha2 alpha3 alpha4 alpha5 alpha6 alpha7 alpha8 alpha9 alpha10")] == ["evalset#3"]
