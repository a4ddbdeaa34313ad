"""``r1data stats``/``head``/``show`` on Parquet that r1data did not write: refused in one line, never
counted as documents; counts come from the rows read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.stats_helpers import make_run

from r1data.errors import InputError
from r1data.stats.buckets import BucketSpec
from r1data.stats.profile import collect_stats
from r1data.stats.scan import scan_set
from r1data.stats.sources import inspect_file
from tests.conftest import r1data_cmd

CORE = "id, text, source, url, path, date, input_file, input_index, record_index"


@pytest.fixture
def foreign(tmp_path) -> Path:
    """A folder holding one Parquet file of 3 rows, columns a and b: not an r1data shard."""
    d = tmp_path / "foreign"
    d.mkdir()
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}), d / "data.parquet")
    return d


@pytest.mark.parametrize("what", ["file", "folder"])
def test_stats_refuses_a_foreign_parquet(foreign, what):
    target = foreign / "data.parquet" if what == "file" else foreign
    res = r1data_cmd("stats", target)
    assert res.returncode == 2, res.stdout
    assert res.stderr.strip().splitlines() == [
        f"error: {foreign / 'data.parquet'}: not an r1data shard: missing column(s) {CORE}; stats, head and show read the output of r1data run"
    ]
    assert res.stdout == "" and "Traceback" not in res.stderr
    res = r1data_cmd("stats", target, "--format", "json")
    assert res.returncode == 2 and res.stdout == "" and len(res.stderr.strip().splitlines()) == 1


def test_head_and_show_refuse_it_in_one_line(foreign):
    for args in (("head", foreign / "data.parquet"), ("show", "x", foreign), ("stats", "--compare", foreign, foreign)):
        res = r1data_cmd(*args)
        assert res.returncode == 2, (args, res.stdout)
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith("error: ") and "not an r1data shard: missing column(s) id, text" in line


def test_foreign_file_beside_r1data_shards_is_named_and_left_out(tmp_path, foreign):
    run = make_run(tmp_path / "run")
    mixed = tmp_path / "mixed"
    shutil.copytree(run / "shards", mixed)
    shutil.copy(foreign / "data.parquet", mixed / "zz-foreign.parquet")
    want = sum(pq.read_metadata(f).num_rows for f in (run / "shards").glob("*.parquet"))
    s = collect_stats(str(mixed))
    assert s["totals"]["kept"] == want and s["files"]["kept"] == 3
    assert s["files"]["errors"] == [{"path": str(mixed / "zz-foreign.parquet"), "error": f"not an r1data shard (missing column(s) {CORE})"}]
    assert all(js["nulls"] >= 0 for js in s["kept"]["scores"].values())
    res = r1data_cmd("head", mixed, "-n", "1")
    assert res.returncode == 0 and f"warning: skipped {mixed / 'zz-foreign.parquet'}: not an r1data shard" in res.stderr


def test_rows_are_counted_from_the_data(tmp_path):
    """A file without text or key columns still counts every row (a select of literals alone gave 1)."""
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "lang_score": pa.array([0.5, None, 0.9], pa.float32())}), path)
    f = inspect_file(str(path))
    scan = scan_set([f], {"lang_score": BucketSpec("unit")}, rejected=False)
    assert scan.documents == 3
    assert int(scan.scores["lang_score"][1]["n"].sum()) == 2  # the null is not a value


def test_no_parquet_at_all_is_still_an_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no Parquet files"):
        collect_stats(str(tmp_path / "empty"))
