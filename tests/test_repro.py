"""`r1data repro` with the tiny preset: raw data to a trained MoE and its report, reuse on rerun."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

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
    # evaluation sets: the processed held-out, each source's held-out, and the neutral text, both sides
    sets = report["eval_sets"]
    assert {"heldout", "neutral", "heldout:web", "heldout:books", "heldout:code", "heldout:math"} <= set(sets), sorted(sets)
    for name, e in sets.items():
        assert e["tokens"] > 0 and e["seeds"] == 1 and e["exceeds_2se"] is None, (name, e)
        for side in ("processed", "raw"):
            assert math.isfinite(e[side])
            # bits per byte = loss * tokens / (bytes * ln 2)
            assert e["bits_per_byte"][side] == pytest.approx(e[side] * e["tokens"] / (e["bytes"] * math.log(2)), rel=1e-3)
        assert e["difference_raw_minus_processed"] == pytest.approx(e["raw"] - e["processed"])
    neutral_docs = pq.read_table(out / "eval" / "neutral" / "shards", columns=["id"]).num_rows
    assert neutral_docs == sum(1 for _ in gzip.open("data/eval/neutral.jsonl.gz", "rt"))
    # the held-out loss scored after training is the training run's last held-out evaluation, read in full
    assert {"eval:processed", "eval:raw"} <= steps
    html = (out / "report" / "index.html").read_text()
    assert "Evaluation sets" in html and "neutral" in html


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


SMALL = ["--set", "train.set=[train.steps=8,optim.warmup_steps=2,train.eval_every=0,train.eval_batches=2,train.checkpoint_every=0,train.log_every=4]",
         "--set", "eval.max_tokens=2048"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """The tiny preset's data with a very small training budget (8 steps) and 2,048 evaluation tokens per set."""
    out = tmp_path_factory.mktemp("repro-small") / "tiny"
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", *SMALL, timeout=1800)
    assert res.returncode == 0, res.stderr[-4000:]
    return out


@pytest.mark.slow
def test_seeds_report_spread_and_significance(small_run):
    """--seeds 2 on a very small budget: two trainings per side, mean +- std, a 2-SE verdict per set."""
    out = small_run
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", *SMALL, "--seeds", "2", timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    ran = re.findall(r"^(\S+): running", res.stderr, re.M)
    assert sorted(ran) == ["eval:processed-seed1", "eval:raw-seed1", "train:processed-seed1", "train:raw-seed1"], ran  # the rest reused
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["seeds"] == 2
    for name, e in report["eval_sets"].items():
        assert e["seeds"] == 2 and len(e["runs"]["processed"]) == len(e["runs"]["raw"]) == 2
        p = [r["loss"] for r in e["runs"]["processed"]]
        assert p[0] != p[1]  # another init and data order
        assert e["processed"] == pytest.approx(sum(p) / 2)
        assert e["processed_std"] == pytest.approx(abs(p[0] - p[1]) / math.sqrt(2))
        se = math.sqrt(e["processed_std"] ** 2 / 2 + e["raw_std"] ** 2 / 2)
        assert e["standard_error"] == pytest.approx(se)
        assert e["exceeds_2se"] == (abs(e["difference_raw_minus_processed"]) > 2 * se)
        assert e["tokens"] <= 2048  # eval.max_tokens
    c0 = yaml.safe_load((out / "train" / "processed" / "config.yaml").read_text())
    c1 = yaml.safe_load((out / "train" / "processed-seed1" / "config.yaml").read_text())
    assert (c1["train"]["seed"], c1["data"]["seed"]) == (c0["train"]["seed"] + 1, c0["data"]["seed"] + 1)
    assert c1["train"]["steps"] == c0["train"]["steps"] and c1["data"]["batch_size"] == c0["data"]["batch_size"]  # same budget
    assert "±" in res.stdout


@pytest.mark.slow
def test_sweep_reuses_every_step_the_value_does_not_change(small_run):
    out = small_run
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", *SMALL,
                     "--sweep", "filter_threshold=0.7,0.9", timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((out / "sweep" / "filter_threshold" / "report" / "sweep.json").read_text())
    assert data["sources"] == ["web"] and data["values"] == [0.7, 0.9]
    a, b = (p["steps"] for p in data["points"])
    # sources the knob does not touch: the same key, reused from the main run's folder by both values
    for name in ("source:books", "source:code", "source:math", "source:augment", "neutral"):
        assert a[name]["key"] == b[name]["key"] and a[name]["fingerprint"] == b[name]["fingerprint"], name
        assert a[name]["reused"] and b[name]["reused"] and a[name]["out"] == b[name]["out"]
        assert "/sweep/" not in b[name]["out"]
    # 0.7 is the recipe's own value: its web run is the main run's; 0.9 is another run, in the sweep's folder
    assert a["source:web"]["reused"] and "/sweep/" not in a["source:web"]["out"]
    assert b["source:web"]["key"] != a["source:web"]["key"] and not b["source:web"]["reused"]
    assert "/sweep/filter_threshold/0.9/" in b["source:web"]["out"]
    # every step downstream of the web run differs; one processed training per value, no raw side
    for name in ("mix:processed", "heldout", "tokenizer", "tokens:neutral", "train:processed", "eval:processed"):
        assert a[name]["key"] != b[name]["key"], name
    assert not any(k.startswith(("raw:", "train:raw")) for k in a | b)
    for p in data["points"]:
        assert math.isfinite(p["eval_sets"]["neutral"]["processed"]) and p["eval_sets"]["neutral"]["tokens"] > 0
    assert (out / "sweep" / "filter_threshold" / "report" / "sweep.png").stat().st_size > 10_000
    # a second sweep run reuses everything
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--preset", "tiny", "--set", f"out_dir={out}", *SMALL,
                     "--sweep", "filter_threshold=0.7,0.9", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "running" not in res.stderr, res.stderr


def test_bad_sweep_and_seeds_are_refused_before_work():
    for arg, msg in (("foo=1,2", "sweepable knobs"), ("filter_threshold=0.5", "at least two"), ("filter_threshold=0.5,2", "not a valid"),
                     ("sources.nope.dedup_window=1,2", "no source 'nope'"), ("dedup_window=1,10", None)):
        res = r1data_cmd("repro", "pipelines/repro.yaml", "--sweep", arg, "--dry-run")
        if msg is None:
            assert res.returncode == 0 and "dedup_window=10: " in res.stdout, res.stderr[-2000:]
        else:
            assert res.returncode == 2 and msg in res.stderr and "Traceback" not in res.stderr, (arg, res.stderr)
    res = r1data_cmd("repro", "pipelines/repro.yaml", "--seeds", "0", "--dry-run")
    assert res.returncode == 2


def test_neutral_eval_set_is_regenerated_byte_for_byte(tmp_path):
    shared = Path("..") / "shared" / "data"
    if not (shared / "books" / "shakespeare-milton").is_dir():
        shared = Path("/work/shared/data")
    if not (shared / "books" / "shakespeare-milton").is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    dest = tmp_path / "neutral.jsonl.gz"
    subprocess.run([sys.executable, "scripts/make_neutral_eval.py", "--shared", str(shared), "--out", str(dest)], check=True, capture_output=True)
    assert dest.read_bytes() == Path("data/eval/neutral.jsonl.gz").read_bytes()
    rows = [json.loads(x) for x in gzip.open(dest, "rt")]
    assert sum(len(r["text"].encode()) for r in rows) > 800_000
    # none of it is in an input a recipe reads or in the reference corpora
    bundled = " ".join(p.name for p in Path("data/sample/books").rglob("*"))
    for r in rows:
        assert Path(r["origin"]).name not in bundled
