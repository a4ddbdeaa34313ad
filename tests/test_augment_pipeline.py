"""The augmentation recipe end to end: Parquet out, generated documents accounted for, every kept variant verified."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from r1data.augment.code import verify_python
from r1data.augment.math import analyze, verify
from r1data.config.spec import Overrides
from r1data.run.pipeline import execute, load_spec, plan_run
from r1data.stages.augment import BacktranslateConfig, EdaConfig

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "augment"
HAVE_TOOLS = shutil.which("apertium") is not None and Path("/usr/share/wordnet/index.noun").exists()


def _rows(name):
    return {r["id"]: r for r in (json.loads(line) for line in open(SAMPLE / name, encoding="utf-8"))}


def _table(out: Path, sub: str) -> pl.DataFrame:
    files = sorted((out / sub).glob("*.parquet"))
    return pl.concat([pl.from_arrow(pq.read_table(f)) for f in files], how="vertical")


def _meta(df: pl.DataFrame) -> list[dict]:
    return [json.loads(m) if m else {} for m in df["meta"].to_list()]


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_TOOLS, reason="apertium or WordNet missing: run scripts/setup.sh")
def test_augment_recipe_end_to_end(tmp_path):
    out = tmp_path / "augment"
    spec = load_spec(ROOT / "pipelines" / "augment.yaml", Overrides(output=str(out)))
    result = execute(plan_run(spec), overwrite=True)
    c = result.counts
    assert c["read"] == 246
    assert c["read"] + c["generated"] == c["kept"] + c["rejected"]
    kept, rej = _table(out, "shards"), _table(out, "rejected")
    assert kept.height == c["kept"] and rej.height == c["rejected"]
    both = pl.concat([kept.select("id", "input_index", "record_index", "meta"), rej.select("id", "input_index", "record_index", "meta")])
    assert both["id"].n_unique() == both.height
    assert both.select(pl.struct("input_index", "record_index").n_unique()).item() == both.height
    metas = _meta(both)
    by_stage = Counter(m["augmentation"]["stage"] for m in metas if "augmentation" in m)
    assert dict(by_stage) == c["generated_by_stage"]
    assert set(by_stage) == {"math_augment", "code_augment", "backtranslate", "eda", "domain_upsample"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["generated"] == c["generated"]
    up = next(s for s in manifest["stages"] if s["stage"] == "domain_upsample")
    assert up["applied"]["math"]["expected_copies"] == 2.0
    bt = next(s for s in manifest["stages"] if s["stage"] == "backtranslate")
    assert bt["backend"]["backend"] == "apertium"

    # every kept math variant passes the verifier against its original problem
    gsm = _rows("gsm8k.jsonl")
    py = _rows("python.jsonl")
    n_math = n_code = 0
    for row, m in zip(kept.iter_rows(named=True), _meta(kept)):
        aug = m.get("augmentation", {})
        if aug.get("kind") == "math":
            orig = gsm[m["augmented_from"]]
            q, _, sol = row["text"].removeprefix("Question: ").partition("\nAnswer: ")
            assert verify(analyze(orig["text"], orig["answer"]), q, sol) is None, row["id"]
            n_math += 1
        elif aug.get("kind") == "code":
            assert verify_python(py[m["augmented_from"]]["text"], row["text"], docstrings_removed=True) is None
            n_code += 1
    assert n_math >= 120 and n_code >= 20  # 140 problems of 200 yield one; 24 Python modules
    # every back-translated and EDA variant went through the quality gate: kept ones within its
    # thresholds, the others in rejected/ with the check they failed and the figures
    gates = {"backtranslate": BacktranslateConfig().gate, "eda": EdaConfig().gate}
    n_gated = Counter()
    for df, is_kept in ((kept, True), (rej, False)):
        for row, m in zip(df.iter_rows(named=True), _meta(df)):
            aug = m.get("augmentation", {})
            if aug.get("stage") not in gates:
                continue
            g, lim = aug.get("gate"), gates[aug["stage"]]
            assert g is not None and {"ppl", "source_ppl", "ppl_ratio", "length_ratio", "similarity"} <= set(g), row["id"]
            if is_kept:
                assert (g["ppl_ratio"] is None or g["ppl_ratio"] <= lim.max_ppl_ratio) and lim.min_similarity <= g["similarity"] < lim.max_similarity
                assert lim.min_length_ratio <= g["length_ratio"] <= lim.max_length_ratio
            else:
                prefix = "backtranslation" if aug["stage"] == "backtranslate" else "eda"
                assert row["reason"].startswith(prefix + "_"), row["reason"]
                n_gated[row["reason"]] += 1
    assert n_gated["backtranslation_perplexity"] > 0 and n_gated["eda_perplexity"] > 0
    # other languages pass through untouched, with the reason recorded
    shell = kept.filter(pl.col("id") == "r1data:scripts/setup.d/40-apertium.sh").row(0, named=True)
    assert json.loads(shell["meta"])["augment"]["code_augment"] == {"status": "skipped", "reason": "language_not_supported", "language": "shell"}
    # the math mix was upsampled: each math document twice
    kinds = [mt.get("augmentation", {}).get("kind") for mt in _meta(kept)]
    math_rows = [k for k, d in zip(kinds, kept["domain"].to_list()) if d == "math"]
    assert len(math_rows) == 2 * sum(1 for k in math_rows if k != "upsample")


_RECIPE = """\
name: aug-small
inputs: [{inputs}]
stages:
  - stage: jsonl_reader
    source: sample
  - stage: domain_tag
  - stage: math_augment
    variants: 2
    candidates: 3
  - stage: code_augment
    domains: [code]
    docstrings: remove
    layout: unparse
    comments: remove
  - stage: eda
    domains: [prose]
    operations: [swap, delete]
  - stage: domain_upsample
    weights: {{math: 1.5, code: 1.0, prose: 0.5}}
output: {{path: {out}}}
"""


def _small_run(tmp_path: Path, tasks: int, name: str) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    data = tmp_path / "in"
    if not data.exists():
        data.mkdir()
        lines = (SAMPLE / "gsm8k.jsonl").read_text().splitlines()[:40]
        bad = [
            {"id": "bad-no-final", "text": "How many?", "answer": "It is 2+2 = <<2+2=4>>4."},
            {"id": "bad-arith", "text": "Tom has 3 cats and 4 dogs. How many pets?", "answer": "3+4 = <<3+4=8>>8\n#### 8"},
            {"id": "bad-empty", "text": "Tom has 3 cats.", "answer": ""},
        ]
        (data / "a-math.jsonl").write_text("\n".join(lines + [json.dumps(b) for b in bad]) + "\n")
        (data / "b-code.jsonl").write_text("\n".join((SAMPLE / "python.jsonl").read_text().splitlines()[:6]) + "\n")
        (data / "c-prose.jsonl").write_text((SAMPLE / "prose.jsonl").read_text())
    recipe = tmp_path / f"{name}.yaml"
    out = tmp_path / name
    recipe.write_text(_RECIPE.format(inputs=data / "*.jsonl", out=out))
    result = execute(plan_run(load_spec(recipe, Overrides(tasks=tasks))), overwrite=True)
    return _table(out, "shards"), _table(out, "rejected"), result.counts


def test_small_recipe_is_deterministic_across_task_layouts_and_rejects_malformed(tmp_path):
    k1, r1, c1 = _small_run(tmp_path, 1, "one")
    k3, r3, c3 = _small_run(tmp_path, 3, "three")
    cols = ["id", "text", "record_index", "input_index"]
    assert k1.select(cols).sort("id").equals(k3.select(cols).sort("id"))
    assert r1.select(cols + ["reason"]).sort("id").equals(r3.select(cols + ["reason"]).sort("id"))
    assert c1["read"] + c1["generated"] == c1["kept"] + c1["rejected"]
    reasons = dict(zip(r1["id"].to_list(), r1["reason"].to_list()))
    assert reasons["bad-no-final"] == "math_no_final_answer"
    assert reasons["bad-arith"] == "math_original_inconsistent"
    assert reasons["bad-empty"] == "math_missing_solution"
    assert set(r1["stage"].to_list()) >= {"math_augment"}
    # downsampled prose documents are rejected, not lost
    assert "downsampled" in set(r1["reason"].to_list())
    # code variants re-formatted through ast.unparse still verify
    py = _rows("python.jsonl")
    for row, m in zip(k1.iter_rows(named=True), _meta(k1)):
        if m.get("augmentation", {}).get("kind") == "code":
            assert verify_python(py[m["augmented_from"]]["text"], row["text"], docstrings_removed=True) is None


def test_cli_summary_shows_generated_documents(tmp_path):
    from r1data_cli.app import app

    data = tmp_path / "in.jsonl"
    data.write_text("\n".join((SAMPLE / "gsm8k.jsonl").read_text().splitlines()[:5]) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: t\ninputs: [{data}]\nstages:\n  - stage: jsonl_reader\n    source: s\n  - stage: math_augment\noutput: {{path: {tmp_path / 'out'}}}\n"
    )
    res = CliRunner().invoke(app, ["run", str(recipe), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["read"] == 5 and summary["generated"] >= 3
    assert summary["kept"] + sum(d["count"] for d in summary["dropped"]) == summary["read"] + summary["generated"]
