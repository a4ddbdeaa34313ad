"""The Ray executor against a local Ray cluster started here with `ray start --head`.

Skipped with the reason when Ray is not installed (it is the ``ray`` extra, ~240 MB); with
R1DATA_REQUIRE_RAY=1 (scripts/test.sh, i.e. CI, installs Ray and sets it) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cluster_helpers import TESTS, assert_same_output, failing_recipe, local_reference, r1data, web_args

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address():
    """A throw-away Ray head node (2 CPUs), stopped by process group when the module is done."""
    try:
        import ray  # noqa: F401
    except ImportError as e:
        if os.environ.get("R1DATA_REQUIRE_RAY") == "1":
            pytest.fail(f"Ray is not installed ({e}); R1DATA_REQUIRE_RAY=1 demands the Ray tests run")
        pytest.skip(f"Ray is not installed ({e}); pip install 'r1data[ray]' (scripts/test.sh does)")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="r1ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), RAY_USAGE_STATS_ENABLED="0")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # its own session: the daemons `ray start` leaves behind share its process group, which is
    # how they are stopped below (`ray stop` would kill every Ray process on the machine)
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    out, _ = head.communicate(timeout=180)
    if head.returncode != 0:
        pytest.fail(f"ray start failed ({head.returncode}):\n{out[-3000:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):  # gcs_server and raylet take their time over SIGTERM
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(head.pid):
                time.sleep(0.2)
            if not _group_alive(head.pid):
                break
        shutil.rmtree(temp, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                return True
    return False


def test_web_recipe_on_ray_equals_a_local_run(ray_address, tmp_path_factory):
    ref = local_reference(tmp_path_factory.getbasetemp(), 2)
    out = tmp_path_factory.mktemp("ray") / "web"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    res = r1data(*web_args(out, 2), "--executor", "ray", "--address", ray_address, "--json", env=env)
    kept = json.loads((ref / "manifest.json").read_text())["counts"]["kept"]
    assert json.loads(res.stdout)["kept"] == kept > 0
    assert "[ray] connected to Ray (1 node(s), 2 CPUs)" in res.stderr
    assert_same_output(out, ref)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"]["type"] == "ray" and manifest["executor"]["address"] == ray_address
    st = json.loads(r1data("status", out, "--json").stdout)
    assert st["executor"] == "ray" and st["complete"] and [p["completed"] for p in st["phases"]] == [2, 1, 2, 3, 1, 2, 1, 2]  # exact map, decide; minhash map, buckets, clusters; line map, decide; final


def test_failing_task_on_ray_is_reported_with_its_log(ray_address, tmp_path, monkeypatch):
    from r1data_test_stages import registered

    from r1data.errors import FatalError
    from r1data.run.pipeline import execute, load_spec, plan_run

    recipe, out = failing_recipe(tmp_path, 0, f"{{type: ray, tasks: 2, address: '{ray_address}'}}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    with registered(), pytest.raises(FatalError) as err:
        execute(plan_run(load_spec(recipe)))
    msg = str(err.value)
    assert "1 of 2 tasks of phase final failed on Ray" in msg and "task 0: ValueError: test_fail_on_input refuses" in msg
    log = out / "logs" / "task_00000.log"
    assert f"(log: {log})" in msg and "test_fail_on_input refuses" in log.read_text()
    res = r1data("status", out, check=False)
    assert res.returncode == 1 and "final task 0: ValueError: test_fail_on_input refuses" in res.stdout
