"""Decoding web pages like a browser (warc_reader ``decoding: browser``, policy web-v2) on WARC files
written here with warcio: declared charsets that lie, broken UTF-8, BOMs, legacy CJK pages,
header/meta conflicts and mojibake. web-v1's decoding (``decoding: v1``, the default) is frozen."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from r1data.config.spec import load_policy
from r1data.stages.base import InputFile, rejection
from r1data.stages.readers import WarcReader, decode_web
from tests.conftest import ROOT, r1data_cmd

FRENCH = (
    "<p>Le café de la place a une belle façade. Nous y avons mangé une crème brûlée délicieuse, "
    "puis nous sommes allés au théâtre à côté. Où êtes-vous ? Ça coûte très cher, mais c'était génial.</p>"
)


def page(body: str, head: str = "", lang: str = "fr") -> str:
    return f'<!DOCTYPE html><html lang="{lang}"><head>{head}<title>Test</title></head><body>{body}</body></html>'


def write_warc(path: Path, pages: list[tuple[bytes, str]]) -> Path:
    """One gzipped WARC with an HTTP response record per (body, Content-Type)."""
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for i, (body, ctype) in enumerate(pages):
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(f"https://example.org/page/{i}", "response", payload=io.BytesIO(body), http_headers=http))
    return path


def read_pages(tmp_path: Path, pages: list[tuple[bytes, str]], **config):
    path = write_warc(tmp_path / "pages.warc.gz", pages)
    r = WarcReader(WarcReader.Config(**config))
    r.setup()
    return list(r.read_file(InputFile(index=0, uri=str(path))))


def browser(tmp_path: Path, body: bytes, ctype: str, **config):
    (doc,) = read_pages(tmp_path, [(body, ctype)], decoding="browser", **config)
    return doc


def test_latin1_declared_utf8(tmp_path):
    body = page(FRENCH).encode("latin-1")
    doc = browser(tmp_path, body, "text/html; charset=utf-8")
    assert rejection(doc) is None
    assert "Le café de la place a une belle façade" in doc.text and "Où êtes-vous" in doc.text
    assert doc.metadata["encoding"] == "cp1252" and doc.metadata["encoding_source"] == "detected"
    assert doc.metadata["encoding_declared"] == "utf-8"  # the header's charset, overruled by the bytes
    short = b"<html><body><p>caf\xe9 fa\xe7ade</p></body></html>"
    doc = browser(tmp_path, short, "text/html; charset=utf-8")
    assert "café façade" in doc.text and doc.metadata["encoding"] == "cp1252" and rejection(doc) is None


def test_utf8_with_a_few_invalid_bytes(tmp_path):
    good = page(FRENCH * 3, head='<meta charset="utf-8">').encode()
    cut = good.index("façade".encode()) + 2
    body = good[:cut] + b"\xff" + good[cut:] + b"<!-- \x80 -->"
    for ctype in ("text/html", "text/html; charset=utf-8"):
        doc = browser(tmp_path, body, ctype)
        assert rejection(doc) is None
        assert doc.metadata["encoding"] == "utf-8" and doc.metadata["encoding_replaced"] == 2
        assert doc.text.count("\ufffd") == 2 and doc.text.count("café") == 3  # not re-decoded whole as cp1252 ("cafÃ©")
        assert "Ã" not in doc.text
    # web-v1 (decoding: v1, the default) is frozen: it still re-decodes the whole page with a guess
    (old,) = read_pages(tmp_path, [(body, "text/html")])
    assert old.metadata["charset"] == "windows-1252" and "cafÃ©" in old.text and "encoding" not in old.metadata


def test_cp1252_with_meta(tmp_path):
    body = page("<p>“Quoted” text – it costs 5 € … naïve café.</p>", head='<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">')
    doc = browser(tmp_path, body.encode("cp1252"), "text/html")
    assert rejection(doc) is None
    assert "“Quoted” text – it costs 5 € … naïve café." in doc.text
    assert (doc.metadata["encoding"], doc.metadata["encoding_source"]) == ("cp1252", "meta")


def test_utf8_bom_wins_over_a_wrong_header(tmp_path):
    body = b"\xef\xbb\xbf" + page(FRENCH).encode()
    doc = browser(tmp_path, body, "text/html; charset=iso-8859-1")
    assert rejection(doc) is None
    assert doc.text.startswith("<!DOCTYPE html>") and "café" in doc.text  # BOM removed, not shown as "ï»¿"
    assert (doc.metadata["encoding"], doc.metadata["encoding_source"]) == ("utf-8", "bom")


@pytest.mark.parametrize(
    "codec,meta,text,want",
    [
        ("shift_jis", "Shift_JIS", "<p>日本語のウェブページです。今日の東京は晴れ、明日は雨が降るでしょう。</p>", "cp932"),
        ("gb2312", "gb2312", "<p>这是一个简体中文网页。今天北京天气晴朗，明天可能会下雨。</p>", "gb18030"),
    ],
)
def test_cjk_declared_in_meta_only(tmp_path, codec, meta, text, want):
    body = page(text, head=f'<meta http-equiv="Content-Type" content="text/html; charset={meta}">', lang="")
    doc = browser(tmp_path, body.encode(codec), "text/html")
    assert rejection(doc) is None and text in doc.text and "\ufffd" not in doc.text
    assert (doc.metadata["encoding"], doc.metadata["encoding_source"]) == (want, "meta")


def test_header_and_meta_disagree(tmp_path):
    ru = page("<p>Привет, мир! Это тестовая страница на русском языке.</p>", head='<meta charset="utf-8">', lang="ru")
    doc = browser(tmp_path, ru.encode("cp1251"), "text/html; charset=windows-1251")
    assert "Привет, мир!" in doc.text and rejection(doc) is None
    assert (doc.metadata["encoding"], doc.metadata["encoding_source"], doc.metadata["encoding_declared"]) == ("cp1251", "http", "utf-8")
    # the header's charset does not decode the bytes: evidence against it, the <meta> one does
    ja = page("<p>日本語のウェブページです。東京は晴れ。</p>", head='<meta charset="shift_jis">', lang="ja")
    doc = browser(tmp_path, ja.encode("cp932"), "text/html; charset=utf-8")
    assert "東京は晴れ" in doc.text and rejection(doc) is None
    assert (doc.metadata["encoding"], doc.metadata["encoding_source"], doc.metadata["encoding_declared"]) == ("cp932", "meta", "utf-8")
    # valid multi-byte UTF-8 is UTF-8 whatever the header says
    doc = browser(tmp_path, page(FRENCH, head='<meta charset="iso-8859-1">').encode(), "text/html; charset=iso-8859-1")
    assert "café" in doc.text and doc.metadata["encoding"] == "utf-8" and doc.metadata["encoding_declared"] == "cp1252"


def double_encoded() -> bytes:
    """UTF-8 text decoded as cp1252 and encoded again by a broken CMS: valid UTF-8 bytes, mojibake text."""
    return page(FRENCH, head='<meta charset="utf-8">').encode().decode("cp1252").encode()


def test_mojibake_is_rejected_by_default(tmp_path):
    doc = browser(tmp_path, double_encoded(), "text/html; charset=utf-8")
    assert "cafÃ©" in doc.text
    assert rejection(doc) == ("warc_reader", "encoding_suspect")
    assert doc.metadata["encoding_suspect"]["mojibake"] > 0


def test_mojibake_repaired_with_ftfy(tmp_path):
    doc = browser(tmp_path, double_encoded(), "text/html; charset=utf-8", on_mojibake="repair")
    assert rejection(doc) is None and doc.metadata["encoding_repaired"] is True
    assert "Le café de la place a une belle façade" in doc.text and "Ã" not in doc.text


def test_mojibake_kept_and_marked(tmp_path):
    doc = browser(tmp_path, double_encoded(), "text/html; charset=utf-8", on_mojibake="keep")
    assert rejection(doc) is None and "cafÃ©" in doc.text and doc.metadata["encoding_suspect"]["mojibake"] > 0


def test_many_replacement_characters_are_suspect(tmp_path):
    zh = "这是一个简体中文网页，今天北京天气晴朗。" * 10
    body = page(f"<p>{zh}</p>", head='<meta charset="utf-8">', lang="zh").encode()
    broken = body.replace("天气".encode(), b"\xe5\xa4\xff\xb0\x94")  # 10 damaged characters among ~200
    doc = browser(tmp_path, broken, "text/html; charset=utf-8")
    assert doc.metadata["encoding"] == "utf-8" and doc.metadata["encoding_replaced"] >= 10
    assert rejection(doc) == ("warc_reader", "encoding_suspect")
    doc = browser(tmp_path, broken, "text/html; charset=utf-8", max_replacement_frac=0.2)
    assert rejection(doc) is None


def test_decoding_options_need_browser_mode():
    with pytest.raises(ValueError, match="on_mojibake apply only with decoding: browser"):
        WarcReader.Config(on_mojibake="repair")
    assert WarcReader.columns_for(WarcReader.Config()) == {}
    assert WarcReader.columns_for(WarcReader.Config(decoding="browser")) == {"encoding": "string"}


def test_decode_web_never_raises_on_junk():
    d = decode_web(bytes(range(128, 256)) * 8, "no-such-codec")
    assert d.text is None or isinstance(d.text, str)
    assert decode_web(b"<p>plain ascii</p>", "base64").encoding == "utf-8"  # a bytes-to-bytes codec is no charset


def test_web_v2_policy_turns_it_on():
    pol = load_policy("web-v2", ROOT / "pipelines")
    assert pol.stages["warc_reader"]["decoding"] == "browser"
    assert WarcReader.Config(**pol.stages["warc_reader"]).on_mojibake == "reject"


def test_encoding_column_in_shards(tmp_path):
    pages = [
        (page(FRENCH).encode("latin-1"), "text/html; charset=utf-8"),
        (page("<p>Привет, мир!</p>", lang="ru").encode("cp1251"), "text/html; charset=windows-1251"),
        (double_encoded(), "text/html; charset=utf-8"),
    ]
    warc = write_warc(tmp_path / "pages.warc.gz", pages)
    recipe = tmp_path / "enc.yaml"
    recipe.write_text(
        f"name: enc\ninputs: [{warc}]\nstages:\n  - stage: warc_reader\n    decoding: browser\noutput:\n  path: {tmp_path / 'out'}\n"
    )
    res = r1data_cmd("run", recipe, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert (summary["read"], summary["kept"], summary["rejected"]) == (3, 2, 1)
    kept = pq.read_table(tmp_path / "out" / "shards")
    assert "encoding" in kept.schema.names and sorted(kept["encoding"].to_pylist()) == ["cp1251", "cp1252"]
    rej = pq.read_table(tmp_path / "out" / "rejected").to_pylist()
    assert [(r["reason"], r["encoding"]) for r in rej] == [("encoding_suspect", "utf-8")]
