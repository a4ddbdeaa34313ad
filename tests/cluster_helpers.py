"""Shared by the cluster tests (Slurm, Ray): run the CLI, a cached local reference run, output equality."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
WEB_TINY = ROOT / "tests" / "data" / "web-tiny"
_local_runs: dict[int, Path] = {}


def r1data(*args, env: dict | None = None, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the ``r1data`` command (this checkout's) in a subprocess, as a user would."""
    res = subprocess.run(
        [sys.executable, "-m", "r1data_cli.app", *map(str, args)],
        cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True, timeout=timeout,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"r1data {' '.join(map(str, args))} exited {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    return res


def web_args(out: Path, tasks: int) -> list[str]:
    """The web recipe (exact dedup included: map, decide and final phases) on the 24-record sample."""
    return ["run", "pipelines/web.yaml", "--input", str(WEB_TINY), "--output", str(out), "--tasks", str(tasks)]


def local_reference(tmp_root: Path, tasks: int) -> Path:
    """The same recipe run locally (once per session and task count)."""
    if tasks not in _local_runs:
        out = tmp_root / f"local-{tasks}"
        r1data(*web_args(out, tasks), "--overwrite")
        _local_runs[tasks] = out
    return _local_runs[tasks]


def failing_recipe(tmp_path: Path, input_index: int, executor: str) -> tuple[Path, Path]:
    """A two-task recipe whose task on input ``input_index`` raises (``test_fail_on_input``), and its output folder.

    The workers unpickle that test stage: put ``TESTS`` on their PYTHONPATH."""
    out = tmp_path / "failing"
    recipe = tmp_path / "failing.yaml"
    recipe.write_text(
        f"name: failing\ninputs: [{WEB_TINY}]\nstages:\n  - stage: warc_reader\n  - stage: test_fail_on_input\n    input_index: {input_index}\n"
        f"output: {{path: {out}}}\nexecutor: {executor}\n"
    )
    return recipe, out


def rows(out: Path, sub: str, columns: list[str]) -> list[tuple]:
    got = []
    for f in sorted((out / sub).glob("*.parquet")):
        t = pq.read_table(f, columns=columns)
        got.extend(zip(*(t.column(c).to_pylist() for c in columns)))
    return sorted(got, key=repr)


def assert_same_output(out: Path, ref: Path) -> None:
    """Same kept ids, same rejected ids with stage and reason, and in fact the very same Parquet files."""
    assert rows(out, "shards", ["id"]) == rows(ref, "shards", ["id"])
    assert rows(out, "rejected", ["id", "stage", "reason", "duplicate_of"]) == rows(ref, "rejected", ["id", "stage", "reason", "duplicate_of"])
    for sub in ("shards", "rejected"):
        names = sorted(p.name for p in (out / sub).glob("*.parquet"))
        assert names == sorted(p.name for p in (ref / sub).glob("*.parquet"))
        for n in names:
            a, b = pq.read_table(out / sub / n), pq.read_table(ref / sub / n)
            assert a.equals(b), f"{sub}/{n} differs from the local run's"
    m, r = json.loads((out / "manifest.json").read_text()), json.loads((ref / "manifest.json").read_text())
    assert m["counts"] == r["counts"]
    assert [(o["path"], o["rows"], o["sha256"]) for o in m["outputs"]["shards"]] == [(o["path"], o["rows"], o["sha256"]) for o in r["outputs"]["shards"]]
