"""`r1data repro` with the tiny preset: raw data to a trained MoE and its report, reuse on rerun."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import r1data_cmd


@pytest.fixture(scope="module")
def repro_run(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("repro") / "tiny"
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", timeout=1800)
    assert res.returncode == 0, res.stderr[-4000:]
    return out, res.stdout + res.stderr


@pytest.mark.slow
def test_tiny_preset_end_to_end(repro_run):
    out, log = repro_run
    report = json.loads((out / "report" / "report.json").read_text())
    assert (out / "report" / "index.html").stat().st_size > 20_000  # with its plots embedded
    for png in ("loss", "experts", "funnel", "mixture"):
        assert (out / "report" / f"{png}.png").is_file()
    # every source ran processed and raw, and the processed recipes dropped something
    assert set(report["sources"]) == {"web", "books", "code", "math", "augment"}
    web = report["sources"]["web"]
    assert web["processed"]["kept"] < web["raw"]["kept"]
    assert {"language_filter", "fineweb_quality"} <= set(web["processed"]["dropped_by_stage"])
    assert web["processed"]["read"] == web["raw"]["read"] == 160
    # the mixture holds every weighted source, near its target share
    mix = report["mixture"]["processed"]
    for name, plan in mix["plan"]["sources"].items():
        assert abs(mix["actual"][name]["share"] - plan["share"]) < 0.12, (name, mix)
    # the ablation: same budget, same held-out set, both losses finite
    ab = report["ablation"]
    assert ab["same_budget_tokens"] and ab["tokens"] > 0
    assert math.isfinite(ab["heldout_loss_raw"]) and math.isfinite(ab["heldout_loss_processed"])
    assert ab["difference_raw_minus_processed"] == pytest.approx(ab["heldout_loss_raw"] - ab["heldout_loss_processed"])
    assert "held-out loss: raw" in log
    # the held-out documents are in neither training mixture (not even as mirrors or augmented copies)
    held = set(pq.read_table(out / "heldout" / "shards", columns=["id"])["id"].to_pylist())
    assert held
    for variant in ("processed", "raw"):
        ids = set(pq.read_table(out / "mix" / variant / "shards", columns=["id"])["id"].to_pylist())
        assert not held & {i.split("#up-")[0] for i in ids}
    # the manifest chain names every step with its key and fingerprint
    steps = {c["step"] for c in report["chain"]}
    assert {"source:web", "raw:web", "mix:processed", "mix:raw", "heldout", "tokenizer", "tokens:heldout", "train:processed", "train:raw"} <= steps
    assert all(len(c["key"]) == 64 for c in report["chain"])
    assert report["training"]["processed"]["curve"]["expert_load_cv"][-1]


@pytest.mark.slow
def test_rerun_reuses_and_a_change_reruns_only_what_depends_on_it(repro_run):
    out, _ = repro_run
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r"(\d+) steps, \1 reused", res.stdout), res.stdout
    res = r1data_cmd(
        "repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", "--set", "tokenizer.vocab_size=1024", "--until", "tokenizer",
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ran = re.findall(r"^(\S+): running", res.stderr, re.M)
    assert ran == ["tokenizer"], res.stderr
    assert json.loads((out / "tokenizer" / "manifest.json").read_text())["vocab_size"] == 1024


def test_bad_recipe_is_refused_before_work(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text((Path("pipelines/repro.yaml")).read_text().replace("holdout: 0.05", "holdout: 1.5"))
    res = r1data_cmd("repro", bad, "--dry-run")
    assert res.returncode == 2 and "mix.holdout" in res.stderr and "Traceback" not in res.stderr
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "huge", "--dry-run")
    assert res.returncode == 2 and "no preset 'huge'" in res.stderr
