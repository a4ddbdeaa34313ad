"""`r1data run` end to end: the golden sample, resume after SIGKILL, corrupt inputs, the output contract."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, TINY, r1data_cmd

GOLDEN = ROOT / "tests" / "golden"
REGEN = os.environ.get("R1DATA_REGEN_GOLDEN") == "1"


def outcome(out: Path) -> dict:
    """What a run produced, independent of file layout: kept ids and (id, stage, reason) of rejects."""
    kept = sorted(i for f in sorted((out / "shards").glob("*.parquet")) for i in pq.read_table(f, columns=["id"])["id"].to_pylist())
    rej = sorted(
        tuple(r.values())
        for f in sorted((out / "rejected").glob("*.parquet"))
        for r in pq.read_table(f, columns=["id", "stage", "reason"]).to_pylist()
    )
    return {"kept": kept, "rejected": [list(r) for r in rej]}


def check_golden(name: str, got: dict) -> None:
    path = GOLDEN / f"{name}.json"
    if REGEN or not path.exists():
        path.write_text(json.dumps(got, indent=1) + "\n")
        if not REGEN:
            pytest.fail(f"wrote missing golden file {path}; check it in")
    assert got == json.loads(path.read_text()), f"output differs from {path} (R1DATA_REGEN_GOLDEN=1 rewrites it after review)"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "web"
    res = r1data_cmd("run", "pipelines/web.yaml", "--input", TINY, "--output", out, "--json")
    assert res.returncode == 0, res.stderr
    return out


def test_golden_tiny(tiny_run):
    check_golden("web-tiny", outcome(tiny_run))


def test_released_policy_web_v1_still_gives_its_output(tmp_path):
    """pipelines/web-v1.yaml (policy web-v1: Trafilatura, no new stages) reproduces the output web-v1
    gave when it was the default recipe (tests/golden/web-v1-tiny.json is that golden, unchanged)."""
    out = tmp_path / "web-v1"
    res = r1data_cmd("run", "pipelines/web-v1.yaml", "--input", TINY, "--output", out, "--json")
    assert res.returncode == 0, res.stderr
    check_golden("web-v1-tiny", outcome(out))


def test_summary_and_manifest(tiny_run):
    m = json.loads((tiny_run / "manifest.json").read_text())
    c = m["counts"]
    assert c["read"] == 24 and c["read"] == c["kept"] + c["rejected"]
    assert sum(n for reasons in c["dropped_by_stage"].values() for n in reasons.values()) == c["rejected"]
    assert list(c["dropped_by_stage"]) == [s for s in [x["name"] for x in m["config"]["stages"]] if s in c["dropped_by_stage"]]
    assert len(m["config_hash"]) == 64 and m["config"]["stages"][0]["stage"] == "warc_reader"
    assert [i["uri"] for i in m["inputs"]] == sorted(str(p) for p in TINY.glob("*.warc.gz"))
    assert all(i["size"] > 0 for i in m["inputs"])
    shards = m["outputs"]["shards"]
    assert sum(s["rows"] for s in shards) == c["kept"] and all(len(s["sha256"]) == 64 for s in shards)
    assert sum(s["rows"] for s in m["outputs"]["rejected"]) == c["rejected"]
    assert {"r1data", "datatrove", "pyarrow", "python"} <= set(m["versions"])
    lid = [x for x in m["models"] if x["stage"] == "language_id"][0]
    assert lid["path"].endswith("lid.176.ftz") and len(lid["sha256"]) == 64
    assert m["input_errors"] == []
    for sub in ("stats", "logs", "completions"):
        assert (tiny_run / sub).is_dir()
    # every shard in a folder is listed in the manifest: nothing unaccounted for
    listed = {s["path"] for s in shards} | {s["path"] for s in m["outputs"]["rejected"]}
    on_disk = {f"{p.parent.name}/{p.name}" for p in tiny_run.glob("*/*.parquet") if p.parent.name in ("shards", "rejected")}
    assert listed == on_disk


def test_kept_documents_are_clean_english(tiny_run):
    import polars as pl

    kept = pl.read_parquet(tiny_run / "shards")
    assert kept.height > 0 and set(kept["lang"]) == {"en"}
    assert not kept["text"].str.contains("<html").any()
    rej = pl.read_parquet(tiny_run / "rejected")
    cc = rej.filter(~pl.col("url").str.contains("python.org"))
    # the real Common Crawl pages of the fixture are dropped, with their reasons, except (web-v2's
    # Resiliparse extraction keeps more of its text than Trafilatura did) one company page in English
    assert cc.height == 4
    assert set(kept.filter(~pl.col("url").str.contains("python.org"))["url"]) <= {"http://037426.cn/"}
    assert cc["reason"].str.len_chars().min() > 0 and cc["stage"].str.len_chars().min() > 0


def test_rerun_is_a_no_op_and_other_config_is_refused(tiny_run):
    t0 = time.time()
    res = r1data_cmd("run", "pipelines/web.yaml", "--input", TINY, "--output", tiny_run, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["resumed_tasks"] > 0 and time.time() - t0 < 60
    res = r1data_cmd("run", "pipelines/web.yaml", "--input", TINY, "--output", tiny_run, "--set", "stages.gopher_quality.min_doc_words=10")
    assert res.returncode == 2 and "holds a run of a different config" in res.stderr and "--overwrite" in res.stderr


def _wait_for(path_glob: Path, pattern: str, timeout: float = 300) -> None:
    t0 = time.time()
    while not list(path_glob.glob(pattern)):
        if time.time() - t0 > timeout:
            raise TimeoutError(f"nothing matched {path_glob}/{pattern} after {timeout}s")
        time.sleep(0.05)


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    children: dict[int, list[int]] = {}
    for c, p in zip(out[0::2], out[1::2]):
        children.setdefault(int(p), []).append(int(c))
    todo, seen = [pid], []
    while todo:
        for c in children.get(todo.pop(), []):
            seen.append(c)
            todo.append(c)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_sigkill(tmp_path, tiny_run, workers):
    out = tmp_path / "web"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "cli")]))
    cmd = [sys.executable, "-m", "r1data_cli.app", "run", "pipelines/web.yaml", "--input", str(TINY), "--output", str(out), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for(out / "completions", "**/00000")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every worker, mid-run
        proc.wait()
    assert not (out / "manifest.json").exists()
    res = subprocess.run(cmd + ["--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["resumed_tasks"] >= 1
    assert outcome(out) == outcome(tiny_run)
    assert not list(out.rglob(".*.tmp-*"))  # no half-written shard survived


@pytest.mark.slow
def test_killed_worker_is_retried(tmp_path, tiny_run):
    """SIGKILL one pool worker mid-task: the pool notices, the task reruns, the output is unchanged."""
    out = tmp_path / "web"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "cli")]))
    cmd = [sys.executable, "-m", "r1data_cli.app", "run", "pipelines/web.yaml", "--input", str(TINY), "--output", str(out), "--workers", "2", "--json"]
    hold = tmp_path / "hold"  # the workers wait after each extraction while it exists: one is found mid-task
    hold.touch()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(env, R1DATA_TEST_EXTRACT_HOLD=str(hold)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    t0 = time.time()
    while killed is None and time.time() - t0 < 120:
        # pool workers are the forkserver's children; wait until one has started a task
        for pid in _descendants(proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"forkserver" in cmdline and _descendants(pid) and any((out / "logs").rglob("task_*.log")):
                killed = _descendants(pid)[0]
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.05)
    hold.unlink()
    stdout, stderr = proc.communicate(timeout=600)
    assert killed is not None, "no worker found to kill"
    assert proc.returncode == 0, stderr
    assert "a worker died" in stderr and "retrying it" in stderr
    assert outcome(out) == outcome(tiny_run)


def test_corrupt_inputs_among_good_ones(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    for f in TINY.glob("*.warc.gz"):
        shutil.copy(f, data / f.name)
    src = (TINY / "tiny-00000.warc.gz").read_bytes()
    (data / "tiny-00002.warc.gz").write_bytes(src[: len(src) // 2])  # truncated gzip
    (data / "tiny-00003.warc.gz").write_bytes(os.urandom(3000))  # random bytes with a WARC name
    out = tmp_path / "out"
    res = r1data_cmd("run", "pipelines/web.yaml", "--input", data, "--output", out)
    assert res.returncode == 0, res.stderr
    assert "2 input file(s) could not be fully read" in res.stdout
    assert "tiny-00002.warc.gz: truncated gzip" in res.stdout and "tiny-00003.warc.gz: not a valid WARC/ARC file" in res.stdout
    m = json.loads((out / "manifest.json").read_text())
    bad = {Path(e["uri"]).name: e for e in m["input_errors"]}
    assert set(bad) == {"tiny-00002.warc.gz", "tiny-00003.warc.gz"}
    assert bad["tiny-00002.warc.gz"]["documents_before_error"] > 0
    assert m["counts"]["read"] == 24 + bad["tiny-00002.warc.gz"]["documents_before_error"]
    assert m["counts"]["read"] == m["counts"]["kept"] + m["counts"]["rejected"]


def test_missing_input_exit_2(tmp_path):
    res = r1data_cmd("run", "pipelines/web.yaml", "--input", tmp_path / "nope" / "*.warc.gz", "--output", tmp_path / "o")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: input {tmp_path}/nope/*.warc.gz: the pattern matches no file (relative to {ROOT})"]
    assert not (tmp_path / "o").exists()


def test_invalid_yaml_exit_2_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages:\n  - stage: warc_reader\n    source: [web\n")
    res = r1data_cmd("run", bad)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}:") and "invalid YAML" in line


def test_unknown_stage_and_parameter_exit_2(tmp_path):
    recipe = (ROOT / "pipelines" / "web.yaml").read_text()
    bad = tmp_path / "web.yaml"
    bad.write_text(recipe.replace("stage: gopher_quality", "stage: gopher_quality\n    min_doc_word: 3").replace("stage: html_extract", "stage: html_extractor"))
    res = r1data_cmd("validate", bad)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert any("stages[2].stage: unknown stage 'html_extractor'; did you mean html_extract?" in x for x in lines)
    assert any("stages[6].min_doc_word: unknown parameter; did you mean min_doc_words?" in x for x in lines)
    assert all(x.startswith(f"error: {bad}:") for x in lines)


def test_dry_run_prints_plan_and_writes_nothing(tmp_path):
    res = r1data_cmd("run", "pipelines/web.yaml", "--input", TINY, "--output", tmp_path / "o", "--dry-run", "--dedup-window", "1")
    assert res.returncode == 0, res.stderr
    for needle in ("pipeline", "warc_reader", "exact_dedup", "window: 1", "shard schema", "input_index", "rejected/ adds: stage, reason, duplicate_of"):
        assert needle in res.stdout
    assert not (tmp_path / "o").exists()


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys, runpy\nsys.argv = ['r1data', '--help']\n"
        "try:\n    runpy.run_module('r1data_cli.app', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'kenlm', 'fasttext', 'datatrove', 'polars', 'pyarrow', 'trafilatura') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'cli'}"))
    assert "HEAVY []" in res.stdout, res.stdout + res.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_line_counts_documents_across_workers(tmp_path, workers):
    """A local run reports documents read, docs/s and an ETA from the input bytes, counted in the workers."""
    import re

    from r1data.config.spec import Overrides
    from r1data.run.executor import LocalExecutor, _ProgressLine
    from r1data.run.pipeline import load_spec, plan_run

    recipe = tmp_path / "read.yaml"
    recipe.write_text("name: read\nstages:\n  - stage: warc_reader\n    source: web\noutput:\n  path: out\n")
    plan = plan_run(load_spec(recipe, Overrides(inputs=[str(TINY)], output=str(tmp_path / "out"), tasks=2, workers=workers)))
    (phase,) = plan.phases()
    lines: list[str] = []
    ex = LocalExecutor(phase.pipeline, tasks=phase.tasks, workers=workers, logging_dir=str(plan.out_dir), on_line=lines.append, progress_every=0.01)
    assert ex.run() == []
    read = sum(json.loads(f.read_text())["r1data"]["read"] for f in (plan.out_dir / "stats").glob("*.json"))
    assert read == 24 and ex.docs_read == read
    assert lines and lines[-1].startswith("final: 24 docs read, ")  # the pool takes far longer than 0.01 s to start
    for line in lines:
        assert re.fullmatch(r"final: [\d,]+ docs read, [\d,.]+ docs/s, \d+% of [\d.]+ MiB input, ETA \w+", line), line

    # the line itself: half the input bytes consumed after 10 s -> 50 %, ETA 10 s
    prog = _ProgressLine(lines.append, "final", total_bytes=2000, expected_docs=None, every=10)
    prog.t0 -= 10
    prog.docs.value, prog.bytes.value = 120, 1000
    assert re.fullmatch(r"final: 120 docs read, 12\.0 docs/s, 50% of 0\.0 MiB input, ETA (9|10)s", prog.line())
    later = _ProgressLine(lines.append, "03-minhash_dedup-map", total_bytes=0, expected_docs=400, every=10)
    later.t0 -= 10
    later.docs.value = 100
    assert re.fullmatch(r"03-minhash_dedup-map: 100 docs read, 10\.0 docs/s, 25% of 400 docs, ETA 30s", later.line())
