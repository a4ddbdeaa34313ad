"""The Slurm executor against a real single-node cluster (scripts/slurm-up.sh; `make test` starts it).

Without a cluster the ``slurm`` tests are skipped with the reason; with R1DATA_REQUIRE_SLURM=1 (set
by scripts/test.sh, i.e. in CI) they fail instead. The first tests need no cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from cluster_helpers import ROOT, TESTS, assert_same_output, failing_recipe, local_reference, r1data, web_args

from r1data.run.slurm import SlurmExecutor, array_spec
from r1data.run.status import FAILED, snapshot

DEFAULT_STATE = Path(os.environ.get("R1DATA_SLURM_STATE", "/tmp/r1data-slurm"))
MAP, DECIDE, FINAL = "01-exact_dedup-map", "02-exact_dedup-decide", ""


# ---------------------------------------------------------------------------------------------
# no cluster needed


def _parse_array(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


@given(st.sets(st.integers(0, 3000), max_size=200))
def test_array_spec_round_trips(indices):
    spec = array_spec(sorted(indices))
    assert _parse_array(spec) == sorted(indices) if indices else spec == ""
    assert " " not in spec


@given(st.sets(st.integers(0, 5000), min_size=1, max_size=300), st.integers(1, 1001))
def test_chunks_keep_every_index_below_max_array_size(ranks, limit):
    ex = SlurmExecutor.__new__(SlurmExecutor)  # chunking needs only the limit
    ex.max_array_size = limit
    chunks = ex.chunks(sorted(ranks))
    assert sorted(offset + i for offset, idx in chunks for i in idx) == sorted(ranks)
    assert all(0 <= i < limit for _, idx in chunks for i in idx)
    assert len({offset for offset, _ in chunks}) == len(chunks)


def test_snapshot_classifies_every_task(tmp_path):
    """Markers + queue -> states: completed, running, pending, blocked, failed (marker or vanished), unsubmitted."""
    (tmp_path / "completions" / "p").mkdir(parents=True)
    (tmp_path / "completions" / "p" / "00000").touch()
    (tmp_path / "failures" / "p").mkdir(parents=True)
    (tmp_path / "failures" / "p" / "00003.json").write_text(json.dumps({"error": "ValueError: boom", "slurm_log": "/x/7_3.out"}))
    (tmp_path / "slurm_logs").mkdir()
    (tmp_path / "slurm_logs" / "7_4.out").write_text("slurmstepd: error: *** JOB 11 ON vm CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***\n")
    state = {
        "executor": "slurm",
        "phases": [{"name": "p", "tasks": 7}, {"name": "", "tasks": 1}],
        "jobs": [
            {"job_id": "7", "phase": "p", "offset": 0, "ranks": [0, 1, 2, 3, 4]},
            {"job_id": "9", "phase": "", "offset": 0, "ranks": [0]},
            {"job_id": "8", "phase": "p", "offset": 5, "ranks": [5]},
        ],
    }
    queue = {
        ("7", 0): ("COMPLETED", "None"), ("7", 1): ("RUNNING", "None"), ("7", 2): ("PENDING", "Resources"),
        ("7", 3): ("FAILED", "NonZeroExitCode"), ("8", 0): ("CANCELLED", "None"), ("9", 0): ("PENDING", "DependencyNeverSatisfied"),
    }
    st_ = snapshot(tmp_path, state, queue=queue)
    got = {t.rank: (t.state, t.detail) for t in st_.phases[0].ranks}
    assert got[0][0] == "completed"
    assert got[1] == ("running", "running")
    assert got[2] == ("pending", "Resources")
    assert got[3] == ("failed", "ValueError: boom")
    assert got[4] == ("failed", "over its time limit (from its Slurm log)")  # gone from the queue, no marker
    assert got[5] == ("failed", "CANCELLED: cancelled (scancel)")
    assert got[6][0] == "not_submitted"
    assert st_.phases[0].ranks[3].log == "/x/7_3.out"
    assert st_.phases[1].ranks[0].state == "blocked"
    assert not st_.complete and len(st_.failed()) == 3


def test_dry_run_prints_the_sbatch_scripts_and_touches_nothing(tmp_path):
    out = tmp_path / "dry"
    res = r1data(
        *web_args(out, 2), "--executor", "slurm", "--dry-run", "--partition", "cpu", "--time", "01:30:00",
        "--cpus-per-task", "2", "--mem-per-cpu", "4G", "--qos", "high", "--account", "proj", "--max-array-size", "1",
    )
    text = res.stdout
    for line in ("#SBATCH --partition=cpu", "#SBATCH --time=01:30:00", "#SBATCH --cpus-per-task=2", "#SBATCH --mem-per-cpu=4096M",
                 "#SBATCH --qos=high", "#SBATCH --account=proj", f"#SBATCH --output={out}/slurm_logs/%A_%a.out",
                 f"#SBATCH --chdir={ROOT}"):
        assert line in text
    venv_python = Path(sys.prefix) / "bin" / "python"
    assert f"srun --cpus-per-task=2 -l -n 1 {venv_python} -m r1data.run.slurm {out}/slurm/{MAP}/executor.pik --rank-offset 1" in text
    # --max-array-size 1: one array per rank, every index 0; later phases wait for earlier ones
    # 2 + 1 (exact dedup) + 2 + 3 + 1 (minhash: map, buckets, clusters) + 2 + 1 (line dedup: map, decide) + 2 (final)
    assert text.count("#SBATCH --array=0\n") == 14
    assert f"--dependency=afterok:<jobs of {MAP}, {DECIDE}>" in text
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# against the real cluster


@pytest.fixture(scope="module")
def slurm_env() -> dict:
    """Environment for talking to the test cluster (SLURM_CONF), or skip with the reason."""
    env = dict(os.environ)
    if "SLURM_CONF" not in env and (DEFAULT_STATE / "etc" / "slurm.conf").is_file():
        env["SLURM_CONF"] = str(DEFAULT_STATE / "etc" / "slurm.conf")
    problem = None
    if shutil.which("sbatch") is None:
        problem = "sbatch is not installed (scripts/setup.d/50-slurm.sh installs Slurm)"
    else:
        ping = subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True, timeout=30)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            problem = f"no Slurm cluster answers ({' '.join((ping.stdout + ping.stderr).split())[:200]})"
    if problem:
        hint = "start one with `sudo scripts/slurm-up.sh` (stop: scripts/slurm-down.sh), or run `make test`"
        if os.environ.get("R1DATA_REQUIRE_SLURM") == "1":
            pytest.fail(f"{problem}; R1DATA_REQUIRE_SLURM=1 demands the Slurm tests run")
        pytest.skip(f"{problem}; {hint}")
    return env


def _state(out: Path) -> dict:
    return json.loads((out / "slurm" / "state.json").read_text())


def _status(out: Path, env: dict) -> dict:
    return json.loads(r1data("status", out, "--json", "--no-finalize", env=env, check=False).stdout)


def _wait_status(out: Path, env: dict, until, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st_ = _status(out, env)
        if until(st_):
            return st_
        assert time.monotonic() < deadline, f"status never got there: {json.dumps(st_, indent=1)}"
        time.sleep(1)


@pytest.mark.slurm
@pytest.mark.slow
def test_web_recipe_as_slurm_arrays_equals_a_local_run(slurm_env, tmp_path_factory):
    """Every phase of the web recipe (exact dedup map/decide, MinHash map/buckets/clusters, final) as arrays
    chained with afterok; --max-array-size 1 splits every phase into one array per rank. Same Parquet as a local run."""
    ref = local_reference(tmp_path_factory.getbasetemp(), 2)
    out = tmp_path_factory.mktemp("slurm") / "web"
    res = r1data(*web_args(out, 2), "--executor", "slurm", "--max-array-size", "1", "--json", env=slurm_env)
    kept = json.loads((ref / "manifest.json").read_text())["counts"]["kept"]
    assert json.loads(res.stdout)["kept"] == kept > 0
    assert_same_output(out, ref)

    state = _state(out)
    assert state["max_array_size"] == 1
    jobs = state["jobs"]
    order = [p["name"] for p in state["phases"]]
    assert order[0] == MAP and order[1] == DECIDE and order[-1] == FINAL and any("minhash_dedup" in p for p in order)
    earlier: list[str] = []
    for phase in state["phases"]:
        js = [j for j in jobs if j["phase"] == phase["name"]]
        assert [(j["offset"], j["array"], j["ranks"]) for j in js] == [(r, "0", [r]) for r in range(phase["tasks"])]
        for j in js:  # each phase waits for every job of the phases before it
            assert j["dependency"] == ("afterok:" + ":".join(earlier) if earlier else None)
        earlier += [j["job_id"] for j in js]
    final_job = next(j for j in jobs if j["phase"] == FINAL)
    assert "#SBATCH --kill-on-invalid-dep=yes" in Path(final_job["script"]).read_text()
    for j in jobs:  # Slurm's log of array task %a of job %A
        log = out / "slurm_logs" / f"{j['job_id']}_0.out"
        assert log.is_file() and "r1data.run.slurm" in log.read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"]["type"] == "slurm"
    assert [j["job_id"] for j in manifest["executor"]["jobs"]] == [j["job_id"] for j in jobs]
    st_ = _status(out, slurm_env)
    assert st_["complete"] and st_["manifest"] and all(p["completed"] == p["tasks"] for p in st_["phases"])


@pytest.mark.slurm
@pytest.mark.slow
def test_scancel_then_rerun_completes_only_the_missing_rank(slurm_env, tmp_path_factory):
    ref = local_reference(tmp_path_factory.getbasetemp(), 2)
    out = tmp_path_factory.mktemp("scancel") / "web"
    run = [*web_args(out, 2), "--executor", "slurm"]
    r1data(*run, "--workers", "1", "--no-wait", env=slurm_env)  # --array=0-1%1: rank 1 waits while rank 0 runs
    state = _state(out)
    first = state["jobs"]
    phases = state["phases"]
    assert [j["phase"] for j in first] == [p["name"] for p in phases]  # one array per phase
    subprocess.run(["scancel", f"{first[0]['job_id']}_1"], env=slurm_env, check=True)

    st_ = _wait_status(out, slurm_env, lambda s: s["phases"][0]["running"] + s["phases"][0]["pending"] == 0)
    m = st_["phases"][0]
    assert (m["completed"], m["failed"]) == (1, 1)
    (lost,) = m["not_done"]
    assert lost["rank"] == 1 and lost["state"] == FAILED and "cancel" in lost["detail"].lower()
    assert lost["job"] == f"{first[0]['job_id']}_1"
    # the later phases can never start (afterok on an array with a cancelled task): Slurm drops them
    blocked = _wait_status(out, slurm_env, lambda s: all(p["blocked"] == p["tasks"] for p in s["phases"][1:]))
    assert [p["blocked"] for p in blocked["phases"][1:]] == [p["tasks"] for p in phases[1:]]
    assert subprocess.run(["squeue", "-h", "-j", ",".join(j["job_id"] for j in first[1:])], env=slurm_env, capture_output=True, text=True).stdout.strip() == ""

    done0 = out / "completions" / MAP / "00000"
    log0 = out / "logs" / MAP / "task_00000.log"
    before = (done0.stat().st_mtime_ns, log0.read_text())
    res = r1data(*run, env=slurm_env)  # run again (without the throttle): resubmits what is missing, waits
    assert f"{MAP}: submitted 1 of 2 tasks" in res.stderr
    for p in phases[1:]:
        assert f"{p['name'] or 'final'}: submitted {p['tasks']} of {p['tasks']} tasks" in res.stderr
    again = _state(out)["jobs"][len(first):]
    assert [(j["phase"], j["ranks"]) for j in again] == [(MAP, [1])] + [(p["name"], list(range(p["tasks"]))) for p in phases[1:]]
    assert again[1]["dependency"] == f"afterok:{again[0]['job_id']}"
    assert (done0.stat().st_mtime_ns, log0.read_text()) == before  # rank 0 was not run again
    assert_same_output(out, ref)


@pytest.mark.slurm
@pytest.mark.slow
def test_failing_task_shows_in_status_with_its_log(slurm_env, tmp_path, monkeypatch):
    from r1data_test_stages import registered

    from r1data.errors import FatalError
    from r1data.run.pipeline import execute, load_spec, plan_run

    recipe, out = failing_recipe(tmp_path, 1, "{type: slurm, tasks: 2}")
    for k, v in slurm_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))  # jobs unpickle the stage
    with registered(), pytest.raises(FatalError) as err:
        execute(plan_run(load_spec(recipe)))
    msg = str(err.value)
    assert "1 of 2 tasks of phase final failed on Slurm" in msg
    assert "task 1" in msg and "ValueError: test_fail_on_input refuses" in msg

    res = r1data("status", out, env=slurm_env, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "1 failed task(s)" in res.stdout and "final task 1 (job " in res.stdout
    assert "ValueError: test_fail_on_input refuses" in res.stdout
    st_ = json.loads(r1data("status", out, "--json", env=slurm_env, check=False).stdout)
    (failed,) = [t for t in st_["phases"][0]["not_done"]]
    assert failed["rank"] == 1 and failed["state"] == "failed"
    log = Path(failed["log"])
    assert log.parent == out / "slurm_logs" and log.name == failed["job"] + ".out"
    assert "ValueError: test_fail_on_input refuses" in log.read_text()  # the traceback is in Slurm's log
    marker = json.loads((out / "failures" / "00001.json").read_text())
    assert marker["slurm_job"] == failed["job"] and marker["log"].endswith("logs/task_00001.log")
    assert st_["phases"][0]["completed"] == 1 and not st_["manifest"]
    # no --max-array-size: the cluster's own limit, from `scontrol show config`
    config = subprocess.run(["scontrol", "show", "config"], env=slurm_env, capture_output=True, text=True, check=True).stdout
    (limit,) = [line.split("=")[1].strip() for line in config.splitlines() if line.startswith("MaxArraySize")]
    assert _state(out)["max_array_size"] == int(limit)


@pytest.mark.slurm
def test_bad_partition_is_refused_before_any_work(slurm_env, tmp_path):
    out = tmp_path / "bad"
    res = r1data(*web_args(out, 2), "--executor", "slurm", "--partition", "no-such-partition", env=slurm_env, check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("error: --executor slurm: sbatch rejects the job options:")
    assert "partition" in res.stderr.lower() and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()
