"""The WARC reader on real files: records, encodings, legacy formats, corrupt and truncated inputs."""

from __future__ import annotations

import gzip
import os

import pytest

from r1data.stages.base import InputFile, rejection
from r1data.stages.readers import WarcReader, decode_html
from tests.conftest import SAMPLE, TINY


def read(path, **config):
    r = WarcReader(WarcReader.Config(**config))
    r.setup()
    return list(r.read_file(InputFile(index=0, uri=str(path))))


def test_sample_shard_records():
    docs = read(SAMPLE / "web-00000.warc.gz")
    assert len(docs) == 160  # every HTTP response is a document; request/metadata/warcinfo records are not
    assert all(d.id.startswith("urn:uuid:") for d in docs)
    assert len({d.id for d in docs}) == 160
    ok = [d for d in docs if rejection(d) is None]
    assert all(d.metadata["url"].startswith("http") and d.metadata["date"] for d in ok)
    assert sum("<html" in d.text.lower() for d in ok) >= 150


def test_declared_legacy_charsets_are_decoded():
    seen = {}
    for shard in sorted(SAMPLE.glob("*.warc.gz")):
        for d in read(shard):
            cs = d.metadata.get("charset")
            if cs and cs != "utf-8":
                seen.setdefault(cs, d)
    assert "windows-1251" in seen and "gb18030" in seen  # declared windows-1251 and gb2312 (decoded as its superset)
    assert any("\u0400" <= ch <= "\u04ff" for ch in seen["windows-1251"].text)  # Cyrillic
    assert any("\u4e00" <= ch <= "\u9fff" for ch in seen["gb18030"].text)  # CJK
    assert "\ufffd" not in seen["gb18030"].text


@pytest.mark.parametrize(
    "payload,declared,charset",
    [
        ("Привет мир".encode("cp1251"), "windows-1251", "windows-1251"),
        ("<meta charset='koi8-r'>Привет".encode("koi8-r"), None, "koi8-r"),
        ("naïve café".encode("utf-8"), "iso-8859-1", "utf-8"),  # a wrong declaration falls through to UTF-8 when that decodes
        ("简体中文网页".encode("gb18030"), "gbk", "gb18030"),
        ("ok".encode(), "no-such-codec", "utf-8"),
    ],
)
def test_decode_html(payload, declared, charset):
    text, cs = decode_html(payload, declared)
    assert cs == charset and text


def test_undecodable_payload():
    assert decode_html(bytes(range(128, 256)) * 4, "utf-8")[0] is not None or True  # detectors guess; never raises


def test_legacy_arc_has_stable_ids(shared):
    path = shared / "warc-edge-cases" / "example.arc.gz"
    a, b = read(path), read(path)
    assert [d.id for d in a] == [d.id for d in b] and len(a) == 1
    assert a[0].metadata["url"] == "http://example.com/" and a[0].metadata["date"] == "2014-02-16T05:02:21Z"
    assert "Example Domain" in a[0].text


def test_chunked_and_post_records(shared):
    (doc,) = read(shared / "warc-edge-cases" / "example-iana.org-chunked.warc")
    assert "<html" in doc.text.lower() and rejection(doc) is None
    posts = read(shared / "warc-edge-cases" / "post-test.warc.gz")
    assert [rejection(d) for d in posts] == [("warc_reader", "non_html_content")] * 3  # JSON responses, kept as rejects


def test_wet_conversion_records_are_text(shared):
    (doc,) = read(shared / "cc-whirlwind" / "whirlwind.warc.wet.gz")
    assert doc.metadata["warc_type"] == "conversion" and doc.metadata["_extracted"] is True
    assert "Escopete" in doc.text and "<" not in doc.text[:200]
    assert read(shared / "cc-whirlwind" / "whirlwind.warc.wat.gz") == []  # metadata records only


def _reader_run(paths):
    r = WarcReader()
    r.files = [InputFile(index=i, uri=str(p)) for i, p in enumerate(paths)]
    docs = list(r.run(None, 0, 1))
    return docs, r.report


def test_truncated_gzip_keeps_records_before_the_cut(tmp_path):
    src = (TINY / "tiny-00000.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(src[: int(len(src) * 0.6)])
    docs, report = _reader_run([cut, TINY / "tiny-00001.warc.gz"])
    (err,) = report["errors"]
    assert err["uri"] == str(cut) and "truncated" in err["error"] or "not a valid" in err["error"]
    assert 0 < err["documents_before_error"] < 12
    assert len(docs) == err["documents_before_error"] + 12  # the good file is read in full


def test_random_bytes_named_warc_gz(tmp_path):
    bad = tmp_path / "random.warc.gz"
    bad.write_bytes(os.urandom(4096))
    gz = tmp_path / "gzipped-garbage.warc.gz"
    gz.write_bytes(gzip.compress(os.urandom(4096)))
    docs, report = _reader_run([bad, gz, TINY / "tiny-00001.warc.gz"])
    assert {e["uri"] for e in report["errors"]} == {str(bad), str(gz)}
    assert all("\n" not in e["error"] for e in report["errors"])
    assert len(docs) == 12


@pytest.mark.parametrize("gzipped", [False, True])
def test_garbage_after_a_newline_is_not_read_as_an_empty_warc(tmp_path, gzipped):
    """Bytes that start with a newline made warcio yield one 'record' with no headers and no
    WARC-Type (about 1 % of random files): it was skipped as a non-document record, so the file read
    as an empty WARC with no error. It is now named as not a WARC file."""
    import random

    data = b"\n" + random.Random(0).randbytes(4095)
    bad = tmp_path / ("garbage.warc.gz" if gzipped else "garbage.warc")
    bad.write_bytes(gzip.compress(data) if gzipped else data)
    docs, report = _reader_run([bad, TINY / "tiny-00001.warc.gz"])
    (err,) = report["errors"]
    assert err["uri"] == str(bad) and "without a WARC-Type" in err["error"]
    assert len(docs) == 12


def test_plain_warc_cut_inside_its_last_record_is_named(tmp_path):
    """An uncompressed WARC that ends inside a record: that record is dropped as truncated_record
    (its text would be cut short), the file is named in one line with the missing byte count, and
    the records before it are kept. It was read silently, the cut page kept as a document."""
    src = gzip.decompress((TINY / "tiny-00000.warc.gz").read_bytes())
    starts = [i for i in range(len(src)) if src.startswith(b"WARC/1.", i)]
    cut_at = (starts[-2] + starts[-1]) // 2  # inside the second-to-last record
    cut = tmp_path / "cut.warc"
    cut.write_bytes(src[:cut_at])
    docs, report = _reader_run([cut])
    (err,) = report["errors"]
    assert err["uri"] == str(cut) and "truncated WARC: the file ends inside its last record" in err["error"]
    assert "bytes missing" in err["error"] and "\n" not in err["error"]
    truncated = [d for d in docs if rejection(d) == ("warc_reader", "truncated_record")]
    assert len(truncated) == 1
    whole, _ = _reader_run([TINY / "tiny-00000.warc.gz"])
    complete = [d for d in docs if d not in truncated]
    assert [d.id for d in complete] == [d.id for d in whole[: len(complete)]]
    assert [d.text for d in complete] == [d.text for d in whole[: len(complete)]]
    assert truncated[0].id == whole[len(complete)].id


def test_damaged_members_in_the_middle_cost_their_records_only(tmp_path):
    """Common Crawl compresses each record alone. Bytes flipped inside two members in the middle of
    a real WARC: reading goes on from the next member that starts a record, only the two damaged
    records are lost, every other document is read as from the intact file, and one line names the
    file with the skipped byte ranges. (It used to stop at the first damage: half the file lost.)"""
    import re

    src = (SAMPLE / "web-00000.warc.gz").read_bytes()
    whole, _ = _reader_run([SAMPLE / "web-00000.warc.gz"])
    starts = [m.start() for m in re.finditer(rb"\x1f\x8b\x08", src)]
    data = bytearray(src)
    for k in (len(starts) // 3, 2 * len(starts) // 3):
        at = starts[k] + 300
        data[at : at + 16] = bytes(b ^ 0xA5 for b in data[at : at + 16])
    bad = tmp_path / "damaged.warc.gz"
    bad.write_bytes(bytes(data))
    docs, report = _reader_run([bad])
    (err,) = report["errors"]
    assert err["uri"] == str(bad) and err["error"].startswith("2 damaged part(s) skipped") and "\n" not in err["error"]
    assert len(docs) == len(whole) - 2
    got = {d.id: d.text for d in docs}
    assert all(got[d.id] == d.text for d in whole if d.id in got)


def test_missing_file_is_a_per_file_error(tmp_path):
    docs, report = _reader_run([tmp_path / "gone.warc.gz", TINY / "tiny-00001.warc.gz"])
    assert len(report["errors"]) == 1 and len(docs) == 12


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_corrupt_data_inside_the_last_member_is_named(tmp_path, where):
    """warcio prints and swallows a zlib error inside a member; the reader names it in one line and
    keeps the documents before it (it watches warcio's decompressor, no second decompression)."""
    import random

    payload = random.Random(0).randbytes(200_000).hex().encode()  # ~200 KB compressed: many of warcio's 16 KB reads
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body><p>" + payload + b"</p></body></html>"
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
        f"WARC-Target-URI: https://example.org/big\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n"
    ).encode()
    member = bytearray(gzip.compress(head + http + b"\r\n\r\n"))
    k = int(len(member) * where)
    member[k : k + 8] = bytes(b ^ 0xA5 for b in member[k : k + 8])
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes((TINY / "tiny-00000.warc.gz").read_bytes() + bytes(member))
    docs, report = _reader_run([bad])
    (err,) = report["errors"]
    assert err["error"].startswith("corrupt gzip data before byte ") and "\n" not in err["error"]
    assert err["documents_before_error"] >= 12 and len(docs) == err["documents_before_error"]
