"""The books, code and math recipes, run end to end through the CLI on their bundled inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]


def r1data(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "r1data_cli.app", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def run_recipe(recipe: str, out: Path, *extra: str) -> dict:
    proc = r1data("run", recipe, "--output", str(out), "--overwrite", "--json", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["read"] == summary["kept"] + summary["rejected"]
    shards = pq.read_table(out / "shards").num_rows if list((out / "shards").glob("*.parquet")) else 0
    rejected = pq.read_table(out / "rejected").num_rows if list((out / "rejected").glob("*.parquet")) else 0
    assert (shards, rejected) == (summary["kept"], summary["rejected"])
    return summary


def meta(df: pl.DataFrame, key: str) -> pl.Series:
    return df["meta"].map_elements(lambda m: json.loads(m).get(key) if m else None, return_dtype=pl.Object)


@pytest.mark.parametrize("recipe", ["pipelines/books.yaml", "pipelines/code.yaml", "pipelines/math.yaml"])
def test_recipes_validate(recipe):
    proc = r1data("validate", recipe)
    assert proc.returncode == 0, proc.stderr
    assert f"{recipe}: ok" in proc.stdout


def test_math_recipe(tmp_path):
    s = run_recipe("pipelines/math.yaml", tmp_path / "math")
    # 6 GSM8K train problems share a 13-word n-gram with the GSM8K test set: dropped by decontaminate
    assert (s["read"], s["kept"], s["input_errors"]) == (7743, 7737, [])
    rej = pl.read_parquet(tmp_path / "math" / "rejected" / "*.parquet")
    assert set(rej["reason"]) == {"benchmark_overlap"} and set(rej["contamination"]) == {"gsm8k"}
    df = pl.read_parquet(tmp_path / "math" / "shards" / "*.parquet")
    champ = df.filter(pl.col("id") == "P_Combinatorics_1").row(0, named=True)
    assert champ["text"].startswith("Problem: Let a string consist of digit 1, 2, 3.") and json.loads(champ["meta"]) == {"category": "Combinatorics"}
    gsm = df.filter(pl.col("id") == "math:train.jsonl.gz#0").row(0, named=True)
    assert gsm["text"].startswith("Question: Natalia sold clips") and gsm["meta"] is None and gsm["lang"] == "en"
    assert set(df["source"]) == {"math"}


def test_code_recipe_on_a_stdlib_package_and_an_archive(tmp_path):
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    archive = tmp_path / "json-pkg.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(stdlib / "json", arcname="json-pkg", filter=lambda ti: None if "__pycache__" in ti.name else ti)
    (tmp_path / "leaky").mkdir()
    (tmp_path / "leaky" / "deploy.sh").write_text('#!/bin/sh\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\naws s3 ls\n')
    s = run_recipe("pipelines/code.yaml", tmp_path / "code", "--input", str(stdlib / "email"), "--input", str(archive),
                   "--input", str(tmp_path / "leaky"))
    files = [p for p in (stdlib / "email").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    json_files = [p for p in (stdlib / "json").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert s["read"] == len(files) + len(json_files) + 1  # every file is a kept or a rejected row
    df = pl.read_parquet(tmp_path / "code" / "shards" / "*.parquet")
    assert set(meta(df, "language")) == {"Python", "reStructuredText", "Shell"}
    assert set(meta(df, "license")) == {None}  # neither root holds a LICENSE file, no file an SPDX line
    assert df.filter(pl.col("path") == "json-pkg/decoder.py")["id"].to_list() == ["code:json-pkg.tar.gz/json-pkg/decoder.py"]
    leak = df.filter(pl.col("path") == "deploy.sh").row(0, named=True)
    assert "AKIAIOSFODNN7EXAMPLE" not in leak["text"] and json.loads(leak["meta"])["redactions"] == {"aws_access_key_id": 1}
    assert json.loads(leak["meta"])["language"] == "Shell"
    for part in (tmp_path / "code").rglob("*.parquet"):  # the key is nowhere in the output
        assert b"AKIAIOSFODNN7EXAMPLE" not in part.read_bytes()
    # readable as-is by DuckDB too
    import duckdb

    [(n,)] = duckdb.sql(f"select count(*) from read_parquet('{tmp_path / 'code' / 'shards'}/*.parquet')").fetchall()
    assert n == s["kept"]


def test_code_recipe_default_input_is_the_standard_library():
    proc = r1data("run", "pipelines/code.yaml", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert sysconfig.get_paths()["stdlib"] in proc.stdout


def test_books_recipe_on_the_raw_gutenberg_texts(tmp_path):
    s = run_recipe("pipelines/books.yaml", tmp_path / "books", "--input", "data/sample/books/gutenberg")
    assert s["input_errors"] == [] and s["rejected"] == 0
    df = pl.read_parquet(tmp_path / "books" / "shards" / "*.parquet").sort("input_index", "record_index")
    assert set(df["path"]) == {"3261.txt", "972.txt", "41568-t.tex"}
    novel = df.filter(pl.col("path") == "3261.txt")
    assert novel["id"][0] == "books:3261.txt#0" and novel["date"][0] == "2007-05-08"
    first = json.loads(novel["meta"][0])
    assert (first["title"][:17], first["author"], first["ebook_number"], first["segment_kind"]) == ("News from Nowhere", "William Morris", 3261, "chapter")
    assert not df["text"].str.contains("Project Gutenberg").any()
    assert (df["lang"] == "en").all()


@pytest.mark.slow
def test_books_recipe_on_all_bundled_books(tmp_path):
    s = run_recipe("pipelines/books.yaml", tmp_path / "books")
    assert s["input_errors"] == [] and s["rejected"] == 0
    df = pl.read_parquet(tmp_path / "books" / "shards" / "*.parquet")
    per_book = dict(df.group_by("path").len().iter_rows())
    # chapters shorter than min_chars (8,000 in books-v1) are merged with the next one
    assert per_book == {"3261.txt": 27, "972.txt": 17, "41568-t.tex": 17, "kjv.txt.gz": 423, "hamlet_gut.txt": 5,
                        "macbeth_gut.txt": 5, "sonnets_gut.txt": 11, "areopagitica_gut.txt": 3, "paradise_regained_gut.txt": 4}
    assert (df["text"].str.len_chars() <= 50_000).all()
