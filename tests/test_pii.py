"""pii_redact: what it finds, what it must leave alone (code, versions, numbers), and rejected rows redacted too."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from r1data.sources import pii
from r1data.stages.pii import PiiRedact, PiiRedactConfig
from tests.conftest import r1data_cmd

ROOT = Path(__file__).resolve().parents[1]


def redact(text: str, **cfg) -> tuple[str, dict]:
    return PiiRedact(PiiRedactConfig(**cfg)).redact(text)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Write to jane.doe@university.edu for a copy.", "email"),
        ("The server at 93.184.216.34 answered.", "ip_address"),
        ("Our resolver is 2606:4700:4700::1111 now.", "ip_address"),
        ("Call (415) 555-2671 today.", "phone_number"),
        ("Call 415-555-2671 today.", "phone_number"),
        ("From abroad: +44 20 7946 0958.", "phone_number"),
        ("token = 'ghp_" + "a" * 36 + "'", "github_token"),
    ],
)
def test_each_kind_is_found(text, kind):
    out, counts = redact(text)
    assert counts.get(kind) == 1, (out, counts)
    assert "<" in out


@pytest.mark.parametrize(
    "text",
    [
        "Python 3.11.2.1 was released; see section 6.2.9.1. of the guide.",
        "v1.2.3.4 and version 10.0.19041.1 of Windows",
        "pi is 3.14159265358979 and e is 2.718281828459045",
        "ipaddress.IPv4Address(3232235521) is 192.168.0.1",
        "for i in range(10): print(1 2 3 4 5 6 7 8 9 10)",
        "@dataclasses.dataclass\nclass Point: pass",
        "std::vector<int> v; a::b::c; 12:30:45",
        "ISBN 978-3-16-148410-0, printed 2020-01-02, order id 1234567890123",
        "loopback 127.0.0.1, private 10.0.0.1 and docs 2001:db8::1 are examples",
        "aix-5307-0747-32 and build_2197947391",
        "Contact us at info@example.com (an example address).",
    ],
)
def test_code_versions_and_numbers_are_left_alone(text):
    out, counts = redact(text)
    assert counts == {} and out == text, counts


def test_precision_on_the_python_docs_sample():
    """Every phone number found in 530 real documentation pages is a written phone number: the two of the re module's phone book."""
    docs = []
    for f in ("python-docs.calibration", "python-docs.eval"):
        with gzip.open(ROOT / "data" / "reference" / f"{f}.jsonl.gz", "rt") as fh:
            docs += [json.loads(line)["text"] for line in fh]
    phones = set()
    for d in docs:
        phones |= {d[s:e] for s, e in pii.phone_spans(d)}
    assert phones == {"925.541.7625", "548.326.4584"}, phones
    for d in docs:
        for s, e in pii.ipv4_spans(d):
            before = d[max(0, s - 12) : s].lower()
            assert "version" not in before and "python" not in before, d[s - 30 : e + 10]


def test_drop_above_and_counts_in_meta():
    stage = PiiRedact(PiiRedactConfig(drop_above=2))
    docs = [
        Document(text="a@university.edu b@university.edu c@university.edu", id="many"),
        Document(text="one: a@university.edu", id="one"),
    ]
    out = {d.id: d for d in stage.run(iter(docs))}
    assert out["many"].metadata["_rejected"][1] == "too_much_pii"
    assert out["one"].metadata["pii"] == {"email": 1} and "_rejected" not in out["one"].metadata


def test_rejected_rows_are_redacted_too(tmp_path):
    """A document an earlier stage rejected (too short here) is written to rejected/ with its PII redacted."""
    src = tmp_path / "in.jsonl"
    rows = [
        {"id": "short", "text": "mail jane.doe@university.edu or call (415) 555-2671"},
        {"id": "long", "text": "This is a longer page about the weather in the valley, written for the visitors. " * 10
         + "Questions go to jane.doe@university.edu and the office phone is (415) 555-2671."},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: pii\ninputs: [{src}]\nstages:\n  - stage: jsonl_reader\n    source: web\n"
        "  - stage: gopher_quality\n    min_doc_words: 20\n  - stage: pii_redact\n"
        f"output: {{path: {tmp_path / 'out'}}}\nexecutor: {{type: local, tasks: 1, workers: 1}}\n"
    )
    res = r1data_cmd("run", recipe, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    blob = b""
    for f in sorted((tmp_path / "out").rglob("*")):
        if f.is_file():
            blob += f.read_bytes()
            if f.suffix == ".parquet":
                blob += json.dumps(pq.read_table(f).to_pylist(), default=str).encode()
    assert b"jane.doe@university.edu" not in blob and b"555-2671" not in blob
    rej = pq.read_table(next((tmp_path / "out" / "rejected").glob("*.parquet"))).to_pylist()
    assert rej[0]["id"] == "short" and "<EMAIL>" in rej[0]["text"] and "<PHONE_NUMBER>" in rej[0]["text"]
