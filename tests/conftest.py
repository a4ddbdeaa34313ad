"""Shared fixtures: paths to the bundled data and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# helpers of the cluster tests (cluster_helpers, r1data_test_stages) are imported as top-level
# modules: Slurm and Ray jobs unpickle test stages by that name
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared" / "data"
TINY = ROOT / "tests" / "data" / "web-tiny"
SAMPLE = ROOT / "data" / "sample" / "web"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny() -> Path:
    return TINY


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not present (CI places ../shared beside the checkout)")
    return SHARED


@pytest.fixture
def cli():
    """Invoke the typer app in-process: ``cli("run", "x.yaml")`` -> click Result."""
    from typer.testing import CliRunner

    from r1data_cli.app import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def r1data_cmd(*args, cwd=ROOT, timeout=600, **kw) -> subprocess.CompletedProcess:
    """Run the real ``r1data`` console entry point in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "r1data_cli.app", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kw
    )
