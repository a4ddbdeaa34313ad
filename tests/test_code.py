"""Code: safe reading of trees and archives, skip reasons, languages, licences, quality rules, secrets."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from datatrove.data import Document
from hypothesis import given, settings
from hypothesis import strategies as st

from r1data.sources.code_classify import decode_source, identify_licence, spdx_header
from r1data.sources.languages import LANGUAGES, detect_language
from r1data.sources.secrets import redact
from r1data.stages.base import InputFile, rejection
from r1data.stages.code import CodeQuality, CodeQualityConfig, CodeReader, CodeReaderConfig, SecretRedaction, SecretRedactionConfig

ROOT = Path(__file__).resolve().parents[1]
FAKE_AWS_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
FAKE_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git program")


def read(*roots, rank=0, world=1, **config) -> list[Document]:
    reader = CodeReader(CodeReaderConfig(**config))
    reader.files = [InputFile(index=i, uri=str(r)) for i, r in enumerate(roots)]
    docs = list(reader.run(None, rank, world))
    reader.last_report = reader.report
    return docs


def by_path(docs) -> dict[str, Document]:
    return {d.metadata["path"]: d for d in docs}


def reason(doc) -> str | None:
    r = rejection(doc)
    return r[1] if r else None


def make_repo(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("import os\n\n\ndef main():\n    return os.getcwd()\n")
    (root / "src" / "util.c").write_text("// SPDX-License-Identifier: BSD-3-Clause\nint add(int a, int b) { return a + b; }\n")
    (root / "LICENSE").write_text(
        "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software, "
        "to deal in the Software without restriction.\n\nThe above copyright notice and this permission notice shall be "
        "included in all copies or substantial portions of the Software.\n"
    )
    return root


# --------------------------------------------------------------------------------------------
# directories and git working trees


@needs_git
def test_directory_repo_documents_and_licences(tmp_path):
    repo = make_repo(tmp_path / "proj")
    docs = by_path(read(repo))
    app = docs["src/app.py"]
    assert reason(app) is None and app.id == "code:proj/src/app.py"
    md = app.metadata
    assert (md["language"], md["extension"], md["repo"], md["lines"], md["encoding"]) == ("Python", ".py", "proj", 5, "utf-8")
    assert (md["license"], md["license_source"], md["license_file"]) == ("MIT", "license_file", "LICENSE")
    # git's own blob id of the file
    assert md["git_sha1"] == subprocess.run(["git", "hash-object", str(repo / "src" / "app.py")], capture_output=True, text=True).stdout.strip()
    c = docs["src/util.c"].metadata
    assert (c["language"], c["license"], c["license_source"]) == ("C", "BSD-3-Clause", "spdx_header")
    assert reason(docs["LICENSE"]) == "unknown_language"  # accounted for, not silently dropped


@needs_git
def test_git_working_tree_skips_dot_git_and_honours_gitignore(tmp_path):
    repo = make_repo(tmp_path / "proj")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.py").write_text("x = 1\n")
    (repo / "debug.log").write_text("noise\n")
    (repo / "keep.log").write_text("kept\n")
    (repo / "src" / ".gitignore").write_text("secret_local.py\n")
    (repo / "src" / "secret_local.py").write_text("x = 2\n")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("scratch.py\n")
    (repo / "scratch.py").write_text("x = 3\n")
    paths = set(by_path(read(repo)))
    assert not any(p.startswith(".git/") for p in paths)
    assert "build/out.py" not in paths and "debug.log" not in paths and "scratch.py" not in paths
    assert "src/secret_local.py" not in paths
    assert {"keep.log", "src/app.py", ".gitignore", "src/.gitignore"} <= paths
    docs = by_path(read(repo, gitignore=False))
    assert "build/out.py" in docs and "debug.log" in docs
    assert by_path(read(repo))["src/app.py"].metadata["vcs"] == "git"


def test_symlink_loop_outside_and_inside_links(tmp_path):
    repo = make_repo(tmp_path / "proj")
    outside = tmp_path / "outside.py"
    outside.write_text("stolen = True\n")
    os.symlink("b", repo / "a")
    os.symlink("a", repo / "b")  # a <-> b: a loop
    os.symlink(".", repo / "src" / "self")  # a directory loop
    os.symlink(str(outside), repo / "leak.py")
    os.symlink("/etc", repo / "etc")
    os.symlink("src/app.py", repo / "alias.py")
    os.symlink("missing.py", repo / "dangling.py")
    docs = by_path(read(repo))
    assert reason(docs["a"]) == reason(docs["b"]) == "symlink_loop"
    assert reason(docs["leak.py"]) == reason(docs["etc"]) == "symlink_outside_root"
    assert reason(docs["dangling.py"]) == "broken_symlink"
    assert reason(docs["alias.py"]) == reason(docs["src/self"]) == "symlink"
    assert docs["leak.py"].text == "" and "stolen" not in "".join(d.text for d in docs.values())
    # following links stays inside the root and visits each directory once
    followed = by_path(read(repo, follow_symlinks=True))
    assert followed["alias.py"].text == (repo / "src" / "app.py").read_text() and reason(followed["alias.py"]) is None
    assert reason(followed["src/self"]) == "symlink_loop" and reason(followed["leak.py"]) == "symlink_outside_root"
    assert reason(followed["a"]) == "symlink_loop"


def test_special_files_are_never_opened(tmp_path):
    repo = make_repo(tmp_path / "proj")
    os.mkfifo(repo / "pipe")
    assert reason(by_path(read(repo))["pipe"]) == "special_file"


def test_binary_minified_vendored_generated_and_size_skips(tmp_path):
    repo = make_repo(tmp_path / "proj")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (repo / "blob.py").write_bytes(b"import os\x00\x00\x01\x02")  # NUL bytes: binary whatever the name says
    (repo / "app.min.js").write_text("var a=1;")
    (repo / "bundle.js").write_text("function f(a,b){return a+b}" * 200)  # one 5,400-character line
    (repo / "node_modules" / "left-pad").mkdir(parents=True)
    (repo / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
    (repo / "api_pb2.py").write_text("x = 1\n")
    (repo / "gen.go").write_text("// Code generated by stringer; DO NOT EDIT.\npackage main\n")
    (repo / "huge.py").write_text("x = 1\n" * 300_000)
    (repo / "empty.py").write_text("\n\n")
    (repo / "notes.unknownext").write_text("hello\n")
    docs = by_path(read(repo))
    expected = {
        "logo.png": "binary", "blob.py": "binary", "app.min.js": "minified", "bundle.js": "minified",
        "node_modules/left-pad/index.js": "vendored", "api_pb2.py": "generated", "gen.go": "generated",
        "huge.py": "too_large", "empty.py": "empty_file", "notes.unknownext": "unknown_language",
    }
    assert {p: reason(docs[p]) for p in expected} == expected
    assert docs["logo.png"].text == "" and docs["blob.py"].text == ""  # binary: nothing stored
    assert docs["bundle.js"].text.startswith("function f")  # readable skips keep their text for audit
    kept = by_path(read(repo, skip_minified=False, skip_vendored=False, keep_unknown=True))
    assert reason(kept["bundle.js"]) is None and reason(kept["node_modules/left-pad/index.js"]) is None
    assert reason(kept["notes.unknownext"]) is None and kept["notes.unknownext"].metadata["language"] is None


def test_language_selection_and_validation(tmp_path):
    repo = make_repo(tmp_path / "proj")
    docs = by_path(read(repo, languages=["C"]))
    assert reason(docs["src/app.py"]) == "language_not_selected" and reason(docs["src/util.c"]) is None
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="did you mean python"):
        CodeReaderConfig(languages=["Pyhton"])
    assert CodeReaderConfig(languages=["python", "c++"]).languages == ["Python", "C++"]


def test_encodings(tmp_path):
    repo = tmp_path / "enc"
    repo.mkdir()
    (repo / "koi8.py").write_bytes("# -*- coding: koi8-r -*-\nname = 'привет'\n".encode("koi8-r"))
    (repo / "latin.c").write_bytes("/* caf\xe9 */\nint x;\n".encode("latin-1"))
    (repo / "bom.py").write_bytes(b"\xef\xbb\xbfx = 1\n")
    (repo / "sjis.txt").write_bytes("日本語のテキスト".encode("shift_jis") + b"\x1b\x02")
    docs = by_path(read(repo))
    assert docs["koi8.py"].metadata["encoding"] == "koi8-r" and "привет" in docs["koi8.py"].text
    assert docs["latin.c"].metadata["encoding"] == "cp1252" and "café" in docs["latin.c"].text
    assert docs["bom.py"].text == "x = 1\n" and docs["bom.py"].metadata["encoding"] == "utf-8-sig"
    assert reason(docs["sjis.txt"]) == "undecodable"
    assert decode_source(b"\xff\xfe\x00") is None  # a BOM that lies


def test_a_shared_directory_is_split_across_tasks_without_gaps_or_repeats(tmp_path):
    repo = tmp_path / "many"
    repo.mkdir()
    for i in range(50):
        (repo / f"m{i:02d}.py").write_text(f"x = {i}\n")
    one = read(repo)
    parts = [read(repo, rank=r, world=3) for r in range(3)]
    ids = [d.id for p in parts for d in p]
    assert sorted(ids) == sorted(d.id for d in one) and len(ids) == len(set(ids)) == 50
    # record_index is the file's place in the tree, whichever task read it
    assert sorted(d.metadata["record_index"] for p in parts for d in p) == list(range(50))


# --------------------------------------------------------------------------------------------
# archives


def test_zip_slip_archive_is_read_without_escaping(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/ok.py", "print('ok')\n")
        zf.writestr("../../evil.py", "import os; os.system('rm -rf /')\n")
        zf.writestr("/etc/passwd.py", "root = 0\n")
        zf.writestr("pkg/..\\..\\win.py", "x = 1\n")
        link = zipfile.ZipInfo("pkg/link.py")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/shadow")
    before = sorted(p.name for p in tmp_path.iterdir())
    docs = read(archive)
    got = {d.metadata["path"]: reason(d) for d in docs}
    assert got == {"pkg/ok.py": None, "../../evil.py": "unsafe_path", "/etc/passwd.py": "unsafe_path",
                   "pkg/..\\..\\win.py": "unsafe_path", "pkg/link.py": "symlink"}
    assert all(d.text == "" for d in docs if reason(d))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing was written anywhere
    assert not (tmp_path.parent / "evil.py").exists()


def test_tar_archive_with_traversal_links_and_licence(tmp_path):
    archive = tmp_path / "release-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        def add(name, data=b"", **kw):
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add("release-1.0/LICENSE", b"Apache License\nVersion 2.0, January 2004\n")
        add("release-1.0/main.rs", b"fn main() {}\n")
        add("release-1.0/../../escape.sh", b"#!/bin/sh\necho hi\n")
        add("release-1.0/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add("release-1.0/hard", type=tarfile.LNKTYPE, linkname="release-1.0/main.rs")
        add("release-1.0/dev", type=tarfile.CHRTYPE)
    docs = by_path(read(archive))
    assert {p: reason(d) for p, d in docs.items()} == {
        "release-1.0/LICENSE": "unknown_language", "release-1.0/main.rs": None, "release-1.0/../../escape.sh": "unsafe_path",
        "release-1.0/passwd": "symlink", "release-1.0/hard": "hardlink", "release-1.0/dev": "special_file",
    }
    rs = docs["release-1.0/main.rs"]
    assert rs.id == "code:release-1.0.tar.gz/release-1.0/main.rs"
    assert (rs.metadata["language"], rs.metadata["license"], rs.metadata["license_file"]) == ("Rust", "Apache-2.0", "LICENSE")


def test_zip_bomb_is_refused_with_a_reason(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.py", b"\0" * (40 * 2**20))
    reader = CodeReader(CodeReaderConfig())
    reader.files = [InputFile(index=0, uri=str(bomb))]
    docs = list(reader.run(None, 0, 1))
    [doc] = docs
    assert reason(doc) == "zip_bomb" and doc.id == "code:bomb.zip" and doc.text == ""
    assert "max_compression_ratio" in doc.metadata["refused"]
    [err] = reader.report["errors"]
    assert "archive refused (zip_bomb)" in err["error"] and err["uri"] == str(bomb)
    # the same archive under a higher ratio limit is only too big for max_archive_mb
    [doc] = read(bomb, max_compression_ratio=10_000, max_archive_mb=16)
    assert reason(doc) == "archive_too_large"


def test_overlapping_zip_entries_are_refused(tmp_path):
    # a non-recursive zip bomb: two central-directory entries share one compressed stream
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.py", b"x = 1\n" * 1000)
        zf.writestr("b.py", b"y = 2\n" * 1000)
    data = bytearray(buf.getvalue())
    central = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)  # the second entry
    struct.pack_into("<I", data, central + 42, 0)  # its local header offset -> the first entry's
    (tmp_path / "overlap.zip").write_bytes(bytes(data))
    [doc] = read(tmp_path / "overlap.zip")
    assert reason(doc) == "zip_bomb" and "overlap" in doc.metadata["refused"]


def test_corrupt_archive_is_an_input_error_not_a_crash(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    reader = CodeReader(CodeReaderConfig())
    reader.files = [InputFile(index=0, uri=str(tmp_path / "broken.tar.gz"))]
    assert list(reader.run(None, 0, 1)) == []
    assert "tar archive" in reader.report["errors"][0]["error"]


def test_truncated_tar_keeps_the_files_before_the_cut(tmp_path):
    """A .tar.gz cut in half: the files before the cut are read, the file the cut runs through is
    rejected as unreadable, and the archive is named in one line. The first pass over the archive
    (licences, limits) used to fail on the cut and lose every file."""
    import random

    rng = random.Random(0)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):  # random numbers: the archive does not compress away
        (src / f"m{i:02d}.py").write_text("\n".join(f"def f{i}_{k}(x):\n    return x * {rng.randint(0, 10**9)}" for k in range(200)))
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as tf:
        for f in sorted(src.iterdir()):
            tf.add(f, arcname=f"src/{f.name}")
    data = whole.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    reader = CodeReader(CodeReaderConfig())
    reader.files = [InputFile(index=0, uri=str(cut))]
    docs = list(reader.run(None, 0, 1))
    [err] = reader.report["errors"]
    assert err["uri"] == str(cut) and err["error"].startswith("corrupt tar archive")
    kept = [d for d in docs if reason(d) is None]
    assert 10 < len(kept) < 40 and [reason(d) for d in docs[len(kept):]] == ["unreadable"]
    full = {d.metadata["path"]: d.text for d in read(whole)}
    assert all(full[d.metadata["path"]] == d.text for d in kept)


# --------------------------------------------------------------------------------------------
# language table

LANGUAGE_TABLE = [
    ("a.py", b"", "Python"), ("a.pyi", b"", "Python"), ("a.c", b"", "C"), ("a.h", b"", "C"), ("a.cpp", b"", "C++"),
    ("a.cs", b"", "C#"), ("A.java", b"", "Java"), ("a.kt", b"", "Kotlin"), ("a.scala", b"", "Scala"),
    ("a.js", b"", "JavaScript"), ("a.mjs", b"", "JavaScript"), ("a.ts", b"", "TypeScript"), ("a.d.ts", b"", "TypeScript"),
    ("a.go", b"", "Go"), ("a.rs", b"", "Rust"), ("a.rb", b"", "Ruby"), ("Rakefile", b"", "Ruby"), ("a.php", b"", "PHP"),
    ("a.pl", b"", "Perl"), ("a.sh", b"", "Shell"), ("a.lua", b"", "Lua"), ("a.R", b"", "R"), ("a.jl", b"", "Julia"),
    ("a.swift", b"", "Swift"), ("a.hs", b"", "Haskell"), ("a.ml", b"", "OCaml"), ("a.ex", b"", "Elixir"),
    ("a.erl", b"", "Erlang"), ("a.clj", b"", "Clojure"), ("a.dart", b"", "Dart"), ("a.zig", b"", "Zig"),
    ("a.f90", b"", "Fortran"), ("a.sql", b"", "SQL"), ("a.html", b"", "HTML"), ("a.css", b"", "CSS"),
    ("a.tex", b"", "TeX"), ("a.md", b"", "Markdown"), ("a.json", b"", "JSON"), ("a.yaml", b"", "YAML"),
    ("a.toml", b"", "TOML"), ("Makefile", b"", "Makefile"), ("CMakeLists.txt", b"", "CMake"), ("Dockerfile", b"", "Dockerfile"),
    ("Dockerfile.prod", b"", "Dockerfile"), ("a.proto", b"", "Protocol Buffer"), ("a.ps1", b"", "PowerShell"),
    ("a.m", b"@interface Foo : NSObject\n@end\n", "Objective-C"), ("a.m", b"function y = f(x)\n  y = x;\nend\n", "MATLAB"),
    # by interpreter line, with no (or a misleading) extension
    ("run", b"#!/usr/bin/env python3.11\n", "Python"), ("run", b"#!/usr/bin/python2\n", "Python"),
    ("run", b"#!/bin/bash -e\n", "Shell"), ("run", b"#!/usr/bin/env -S node --no-warnings\n", "JavaScript"),
    ("run", b"#!/usr/bin/perl -w\n", "Perl"), ("run", b"#!/usr/bin/env ruby\n", "Ruby"), ("run", b"#!/usr/bin/env Rscript\n", "R"),
    ("tool.sh", b"#!/usr/bin/env python3\n", "Python"), ("run", b"#!/usr/bin/awk -f\n", "Awk"), ("run", b"#!/usr/bin/tclsh\n", "Tcl"),
    ("notes.xyz", b"", None), ("run", b"#!/opt/unknown-interpreter\n", None),
]


@pytest.mark.parametrize("path, head, language", LANGUAGE_TABLE)
def test_language_table(path, head, language):
    assert detect_language(path, head) == language


def test_at_least_twenty_programming_languages():
    languages = {lang for _, _, lang in LANGUAGE_TABLE if lang}
    assert len(languages) >= 40 and len(LANGUAGES) >= 60


# --------------------------------------------------------------------------------------------
# licences


def test_licence_identification():
    assert spdx_header("#!/bin/sh\n# SPDX-License-Identifier: GPL-2.0-or-later OR MIT\n") == "GPL-2.0-or-later OR MIT"
    assert spdx_header("/* SPDX-License-Identifier: Apache-2.0 */\nint x;") == "Apache-2.0"
    assert spdx_header("x = 1\n" * 2000 + "# SPDX-License-Identifier: MIT\n") is None  # only near the top
    stdlib_licence = Path(sys.base_prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "LICENSE.txt")
    if stdlib_licence.is_file():
        assert identify_licence(stdlib_licence.read_text()) == "PSF-2.0"
    common = Path("/usr/share/common-licenses")
    expected = {"GPL-2": "GPL-2.0", "GPL-3": "GPL-3.0", "LGPL-2.1": "LGPL-2.1", "LGPL-3": "LGPL-3.0", "Apache-2.0": "Apache-2.0",
                "MPL-2.0": "MPL-2.0", "BSD": "BSD-3-Clause", "CC0-1.0": "CC0-1.0"}
    for name, spdx in expected.items():  # the real texts Debian ships
        if (common / name).is_file():
            assert identify_licence((common / name).read_text(errors="replace")) == spdx, name


# --------------------------------------------------------------------------------------------
# code_quality: one tiny text per reason


def quality(text: str, language: str = "Python", **config):
    res = CodeQuality(CodeQualityConfig(**config)).keep(Document(text=text, id="t", metadata={"language": language}))
    return True if res is True else res[1]


@pytest.mark.parametrize(
    "text, language, expected",
    [
        ("def f(x):\n    return x + 1\n", "Python", True),
        ("x = '" + "a" * 1200 + "'\n", "Python", "max_line_length"),
        (("y = " + "b" * 150 + "\n") * 5, "Python", "mean_line_length"),
        ("{ } ( ) [ ] ; ; ; ; ; ; ; ; ;\n" * 5, "Python", "alphanum_fraction"),
        ("# This file is auto-generated, do not edit.\nx = 1\n", "Python", "auto_generated"),
        ("# generated automatically by configure\nx = 1\n", "Shell", "auto_generated"),
        ("<?xml version='1.0'?>\n<a>b</a>\n" + "x = 1\n" * 20, "Python", "xml_in_non_xml"),
        ('{"a": 1}', "JSON", "data_file_too_short"),
        ("{\n" + ",\n".join(f'  "key{i}": {i}' for i in range(500)) + "\n}", "JSON", "data_file_too_long"),
        ('DATA = """\n' + ("QUJD" * 19 + "\n") * 20 + '"""\n', "Python", "encoded_data"),  # wrapped base64
        ("table = [\n" + "".join(f"    0x{i:02x}, 0x{i + 1:02x}, 0x{i + 2:02x}, 0x{i + 3:02x},\n" for i in range(0, 200, 4)) + "]\n", "Python", "encoded_data"),
        ("s = (\n" + ("    '" + "\\u00e9" * 10 + "'\n") * 30 + ")\n", "Python", "encoded_data"),
        ("v = [\n" + "".join(f"    {i}, {i * 7}, {i * 13},\n" for i in range(10_000, 10_100)) + "]\n", "Python", "numeric_data"),
        ("<html><body>\n<div><span>hi</span></div>\n" + "<div class='x'><img src='a.png'></div>\n" * 50 + "</body></html>\n", "HTML", "html_visible_text"),
        ("An unwrapped paragraph of prose " * 60 + "\n", "Markdown", True),  # prose is exempt from line rules
    ],
)
def test_code_quality_reasons(text, language, expected):
    assert quality(text, language) == expected


def test_code_quality_thresholds_are_configurable():
    long_line = "x = '" + "ab " * 400 + "'\n"
    assert quality(long_line, max_line_length=None, max_mean_line_length=None) is True
    assert quality("# DO NOT EDIT\nx = 1\n", auto_generated_markers=[]) is True


# --------------------------------------------------------------------------------------------
# secrets


def test_fake_aws_key_is_redacted_and_only_counted(tmp_path):
    repo = tmp_path / "svc"
    repo.mkdir()
    (repo / "settings.py").write_text(
        f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_ID}"\naws_secret_access_key = "{FAKE_AWS_SECRET}"\nADMIN = "ops@acme-corp.io"\nDOCS = "user@example.com"\n'
    )
    [doc] = read(repo)
    tagger = SecretRedaction(SecretRedactionConfig())
    assert tagger.tag(doc) is None
    assert FAKE_AWS_ID not in doc.text and FAKE_AWS_SECRET not in doc.text and "ops@acme-corp.io" not in doc.text
    assert doc.text.startswith('AWS_ACCESS_KEY_ID = "<AWS_ACCESS_KEY_ID>"\naws_secret_access_key = "<AWS_SECRET_ACCESS_KEY>"')
    assert "user@example.com" in doc.text  # example domains are nobody's address
    assert doc.metadata["redactions"] == {"aws_access_key_id": 1, "aws_secret_access_key": 1, "email": 1}
    assert FAKE_AWS_ID not in repr(doc.metadata) and FAKE_AWS_SECRET not in repr(doc.metadata)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "private_key"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "private_key"),  # truncated: to the end
        ("token = 'ghp_" + "a1B2" * 9 + "'", "github_token"),
        ("GITLAB=glpat-" + "x" * 20, "gitlab_token"),
        ("SLACK=xoxb-123456789012-abcdefghij", "slack_token"),
        ("key=AIza" + "B" * 35, "google_api_key"),
        ("stripe.api_key = 'sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + "'", "stripe_key"),
        ("OPENAI_API_KEY=sk-" + "a" * 48, "openai_key"),
        ("HF_TOKEN=hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH", "huggingface_token"),
        ("auth = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'", "jwt"),
        ('db_password = "s3cr3t-v@lue"', "password"),
        ("contact: jane.doe+ml@university.edu", "email"),
    ],
)
def test_each_secret_kind(text, kind):
    redacted, counts = redact(text)
    assert counts == {kind: 1}, counts
    assert f"<{kind.upper()}>" in redacted


@pytest.mark.parametrize(
    "text",
    ['password = "changeme"', 'password = "${DB_PASSWORD}"', "password = os.environ['PW']", "x = a@b", "@decorator\ndef f(): pass",
     "ip = 192.168.0.1", "SHA = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'"],
)
def test_placeholders_and_lookalikes_are_left_alone(text):
    assert redact(text) == (text, {})


def test_drop_if_rejects_with_a_reason():
    doc = Document(text="-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n", id="k", metadata={})
    assert SecretRedaction(SecretRedactionConfig(drop_if=["private_key"])).tag(doc) == "contains_private_key"
    assert doc.metadata["redactions"] == {"private_key": 1} and "abc" not in doc.text


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
)
@settings(max_examples=200, deadline=None)
def test_an_aws_key_anywhere_never_survives(before, tail, after):
    key = "AKIA" + tail
    text, counts = redact(f"{before} {key} {after}")
    assert key not in text and counts.get("aws_access_key_id", 0) >= 1


# --------------------------------------------------------------------------------------------
# the reader's run contract: every file accounted for


def test_every_file_is_a_document_or_ignored(tmp_path):
    repo = make_repo(tmp_path / "proj")
    (repo / "__pycache__").mkdir()
    (repo / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\x00" * 10)
    (repo / "img.gif").write_bytes(b"GIF89a\x00")
    files = [p for p in repo.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    docs = read(repo)
    assert len(docs) == len(files)
    assert Counter(reason(d) for d in docs) == Counter({None: 2, "binary": 1, "unknown_language": 1})


@pytest.mark.parametrize("name", ["books_reader", "code_reader", "code_quality", "secret_redaction", "jsonl_reader", "parquet_reader", "csv_reader"])
def test_stage_examples_validate(name):
    import yaml

    from r1data.stages.registry import get_stage

    cls = get_stage(name)
    [entry] = yaml.safe_load(cls.example)
    assert entry.pop("stage") == name
    cls.Config.model_validate(entry)
    assert cls.check_config(cls.Config.model_validate(entry)) == []
