"""Hostile inputs: recipes that explode when expanded, nesting, file names that are not UTF-8, one-line errors."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pyarrow.parquet as pq
import pytest

from r1data.yamlsrc import load_yaml_text
from r1data.errors import ConfigError
from r1data.paths import escape_surrogates
from tests.conftest import r1data_cmd

ROOT = Path(__file__).resolve().parents[1]
needs_bytes_names = pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores any bytes in names")


def laughs(levels: int) -> str:
    lines = ['name: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9, 12])
def test_billion_laughs_is_refused_at_once(levels):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        load_yaml_text(laughs(levels), "laughs.yaml")
    assert time.perf_counter() - t0 < 2  # linear in the file, not in its expansion (was 10.9 s at 6 levels)


def test_small_aliases_still_work_and_keep_their_lines():
    src = load_yaml_text("base: &d {a: 1, b: [1, 2]}\nother: *d\nthird: *d\n", "ok.yaml")
    assert src.data["other"] == {"a": 1, "b": [1, 2]} and src.data["third"]["b"] == [1, 2]
    assert src.line_of(("base", "b")) == 1 and src.line_of(("third", "a")) == 3


@pytest.mark.parametrize("text", ["x: " + "[" * 1000 + "]" * 1000, "".join("  " * i + f"k{i}:\n" for i in range(1200)) + "  " * 1200 + "v: 1\n"])
def test_deep_nesting_is_refused(text):
    with pytest.raises(ConfigError, match="nested deeper than"):
        load_yaml_text(text, "deep.yaml")


def test_validate_billion_laughs_and_deep_nesting_give_rc2_and_one_line(tmp_path):
    for name, text in (("laughs.yaml", laughs(9)), ("deep.yaml", "name: x\nstages: " + "[" * 1500 + "]" * 1500 + "\n")):
        recipe = tmp_path / name
        recipe.write_text(text)
        t0 = time.perf_counter()
        res = r1data_cmd("validate", recipe, timeout=120)
        assert res.returncode == 2, res.stderr
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"error: {recipe}") and "Traceback" not in res.stderr
        assert time.perf_counter() - t0 < 60


def test_escape_surrogates_round_trips():
    for raw in (b"bad\xff.py", b"caf\xe9 100%.txt", b"ok.py", "naïve.py".encode(), b"\xc3(\xa0\xa1%41"):
        name = os.fsdecode(raw)
        escaped = escape_surrogates(name)
        escaped.encode("utf-8")  # always writable
        if name.encode("utf-8", "surrogateescape") == raw and "\udcff" not in name and escaped == name:
            continue  # valid UTF-8 names are unchanged
        assert unquote_to_bytes(escaped) == raw


@needs_bytes_names
def test_a_file_name_that_is_not_utf8_is_read_with_its_neighbours(tmp_path):
    """``bad\\xff.py`` in a directory and as a tar member: read, escaped, and its task's other files kept."""
    repo = tmp_path / "repo"
    repo.mkdir()
    body = "def f(x):\n    return x + 1\n"
    (repo / "good.py").write_text(body)
    (repo / "other.py").write_text(body.replace("1", "2"))
    with open(os.path.join(os.fsencode(repo), b"bad\xff.py"), "w") as fh:
        fh.write(body.replace("1", "3"))
    tar_path = tmp_path / "repo.tar"
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, text in ((b"pkg/ok.py", body), (b"pkg/bad\xfe.py", body.replace("1", "4"))):
            info = tarfile.TarInfo(os.fsdecode(name))
            data = text.encode()
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    recipe = tmp_path / "code.yaml"
    recipe.write_text(
        "name: code\ninputs: [" + f"{repo}, {tar_path}" + "]\nstages:\n  - stage: code_reader\n    source: code\n"
        "output: {path: " + str(tmp_path / "out") + "}\nexecutor: {type: local, tasks: 1, workers: 1}\n"
    )
    res = r1data_cmd("run", recipe, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    rows = []
    for sub in ("shards", "rejected"):
        for f in sorted((tmp_path / "out" / sub).glob("*.parquet")):
            rows += pq.read_table(f).to_pylist()
    paths = {r["path"] for r in rows}
    assert {"good.py", "other.py", "bad%FF.py", "pkg/ok.py", "pkg/bad%FE.py"} <= paths, paths
    assert unquote_to_bytes("bad%FF.py") == b"bad\xff.py"


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    """An unwritable --output: one line naming the file, rc 1; ``--debug`` gives the traceback."""
    if os.geteuid() == 0:
        # root ignores permission bits: a path under a regular file fails the same way for everyone
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out = blocker / "out"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "out"
    res = r1data_cmd("run", "pipelines/math.yaml", "--output", out, timeout=300)
    assert res.returncode in (1, 2), res.stderr
    assert "Traceback" not in res.stderr
    errors = [x for x in res.stderr.splitlines() if x.startswith("error:")]
    assert errors and str(out.parent) in errors[0], res.stderr
    dbg = r1data_cmd("run", "pipelines/math.yaml", "--output", out, "--debug", timeout=300)
    assert dbg.returncode != 0 and ("Traceback" in dbg.stderr or "error:" in dbg.stderr)


def _zeros_gz(path: Path, gigabytes: float, level: int = 9) -> None:
    import zlib

    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    chunk = bytes(2**24)
    with open(path, "wb") as fh:
        for _ in range(int(gigabytes * 2**30) // len(chunk)):
            fh.write(comp.compress(chunk))
        fh.write(comp.flush())


PEAK = """
import resource, subprocess, sys
res = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(res.stderr)
print("PEAK_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "RC", res.returncode)
"""


@pytest.mark.parametrize("kind", ["warc", "jsonl", "csv"])
def test_a_small_compressed_bomb_is_named_and_bounded(tmp_path, kind):
    """1 GB of zeros, gzipped to ~1 MB, as a WARC and as JSON Lines: peak RSS < 1 GiB, one line naming the file."""
    import json as _json

    data = tmp_path / "in"
    data.mkdir()
    bomb = data / {"warc": "x.warc.gz", "jsonl": "x.jsonl.gz", "csv": "x.csv.gz"}[kind]
    _zeros_gz(bomb, 1.0)
    assert bomb.stat().st_size < 4 * 2**20
    good = data / ("good.jsonl")
    if kind == "jsonl":
        good.write_text(_json.dumps({"text": "a kept row", "id": "g1"}) + "\n")
        stages = "  - stage: jsonl_reader\n    source: t\n"
    elif kind == "csv":
        good = data / "good.csv"
        good.write_text("g1,a kept row\n")
        stages = "  - stage: csv_reader\n    source: t\n    header: false\n    columns: [id, text]\n"
    else:
        stages = "  - stage: warc_reader\n"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: bomb\ninputs: [{data}]\nstages:\n{stages}output: {{path: {tmp_path / 'out'}}}\n"
        "executor: {type: local, tasks: 1, workers: 1}\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "cli")]))
    import subprocess

    res = subprocess.run(
        [sys.executable, "-c", PEAK, sys.executable, "-m", "r1data_cli.app", "run", str(recipe)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    peak_kb = int(res.stdout.split("PEAK_KB")[1].split()[0])
    assert peak_kb < 2**20, f"peak RSS {peak_kb / 2**20:.2f} GiB"
    assert "Traceback" not in res.stdout
    named = [x for x in res.stdout.splitlines() if "x." in x and str(bomb.name) in x]
    assert named, res.stdout[-3000:]
    manifest = _json.loads((tmp_path / "out" / "manifest.json").read_text())
    if kind == "warc":
        errors = _json.dumps(manifest.get("input_errors", manifest))
        assert bomb.name in errors and ("input_too_large" in errors or "corrupt_input" in errors)
    else:
        rows = pq.read_table(next((tmp_path / "out" / "rejected").glob("*.parquet"))).to_pylist()
        assert [r["reason"] for r in rows] == ["line_too_long"]
        kept = pq.read_table(next((tmp_path / "out" / "shards").glob("*.parquet"))).to_pylist()
        assert [r["text"] for r in kept] == ["a kept row"]


def test_a_failed_manifest_write_leaves_the_old_file_and_no_tmp(tmp_path):
    """Disk full (here: a file-size limit) while writing: the previous content stays, no *.tmp is left."""
    import subprocess

    target = tmp_path / "manifest.json"
    target.write_text('{"old": true}\n')
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from r1data.io.atomic import write_text_atomic\n"
        f"write_text_atomic({str(target)!r}, 'x' * 100000)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "File too large" in res.stderr
    assert target.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def _small_run(tmp_path: Path) -> Path:
    import json as _json

    rows = [{"id": f"d{i:03d}", "text": f"Document number {i}. " + "Some words that fill the page. " * 40} for i in range(300)]
    src = tmp_path / "in"
    src.mkdir()
    for part in range(3):
        (src / f"p{part}.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in rows[part * 100 : (part + 1) * 100]))
    recipe = tmp_path / "r.yaml"
    out = tmp_path / "out"
    recipe.write_text(
        f"name: small\ninputs: [{src}]\nstages:\n  - stage: jsonl_reader\n    source: t\n"
        f"output: {{path: {out}}}\nexecutor: {{type: local, tasks: 3, workers: 1}}\n"
    )
    res = r1data_cmd("run", recipe, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_head_and_show_name_a_truncated_or_corrupt_shard(tmp_path):
    out = _small_run(tmp_path)
    shards = sorted((out / "shards").glob("*.parquet"))
    assert len(shards) == 3
    # shard 0: cut short (no footer); shard 1: data pages overwritten, footer intact
    data = shards[0].read_bytes()
    shards[0].write_bytes(data[: len(data) // 2])
    data = bytearray(shards[1].read_bytes())
    mid = len(data) // 2
    data[mid - 2000 : mid + 2000] = bytes(4000)
    shards[1].write_bytes(bytes(data))
    first_ids = {pq.read_table(shards[2]).column("id")[0].as_py()}

    res = r1data_cmd("head", out, "-n", "3", "--jsonl")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    warned = [x for x in res.stderr.splitlines() if x.startswith("warning: skipped")]
    assert any(shards[0].name in x for x in warned) and any(shards[1].name in x for x in warned), res.stderr
    got = [json.loads(x)["id"] for x in res.stdout.splitlines()]
    assert got and got[0] in first_ids

    res = r1data_cmd("show", "d000", out)  # d000 lived in the truncated shard
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "could not be read" in res.stderr and shards[0].name in res.stderr
    res = r1data_cmd("show", "d250", out)
    assert res.returncode == 0, res.stderr


def test_worker_memory_limit_turns_an_oversized_file_into_an_input_error(tmp_path):
    """With ``executor.memory_limit_gb``, a file that needs more memory than the limit (a 6 GB line
    allowed by a raised max_line_mb) is named as input_too_large and the other file is still read."""
    import json as _json

    data = tmp_path / "in"
    data.mkdir()
    _zeros_gz(data / "big.jsonl.gz", 2.5, level=1)
    (data / "good.jsonl").write_text(_json.dumps({"text": "a kept row", "id": "g1"}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: mem\ninputs: [{data}]\nstages:\n  - stage: jsonl_reader\n    source: t\n    max_line_mb: 100000\n"
        f"output: {{path: {tmp_path / 'out'}}}\nexecutor: {{type: local, tasks: 2, workers: 1, memory_limit_gb: 1.5}}\n"
    )
    res = r1data_cmd("run", recipe, timeout=600)
    assert "Traceback" not in res.stderr
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    errors = json.dumps(manifest["input_errors"])
    assert "big.jsonl.gz" in errors and "input_too_large" in errors
    kept = pq.read_table(next((tmp_path / "out" / "shards").glob("*.parquet"))).to_pylist()
    assert [r["text"] for r in kept] == ["a kept row"]


def test_a_full_disk_mid_run_is_a_few_lines_and_resumes(tmp_path):
    """Writing shards fails (a file-size limit standing in for a full disk): rc 1, a few lines and no
    traceback on the console (the task log keeps it), and the same command then finishes the run."""
    import subprocess

    out = tmp_path / "out"
    code = (
        "import resource, signal, sys, runpy\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300000, 300000))\n"
        f"sys.argv = ['r1data', 'run', 'pipelines/math.yaml', '--output', {str(out)!r}]\n"
        "runpy.run_module('r1data_cli.app', run_name='__main__')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "cli")]))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and len(res.stderr.splitlines()) <= 6, res.stderr
    assert "File too large" in res.stderr and "rerun the same command" in res.stderr
    assert "Traceback" in "".join(p.read_text() for p in (out / "logs").rglob("*.log"))
    again = r1data_cmd("run", "pipelines/math.yaml", "--output", out, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
