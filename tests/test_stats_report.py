"""``--compare A B`` and ``--report``: differences between two runs, and a self-contained HTML file with plots."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tests.stats_helpers import make_run
from typer.testing import CliRunner

from r1data.stats.compare import compare_stats
from r1data_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cmp")
    return make_run(root / "t0.3", threshold=0.3), make_run(root / "t0.6", threshold=0.6)


def kept_ids(run: Path) -> set[str]:
    return {i for f in (run / "shards").glob("*.parquet") for i in pq.read_table(f, columns=["id"])["id"].to_pylist()}


def test_compare_counts_funnel_and_config(runs):
    a, b = runs
    c = compare_stats(str(a), str(b))
    ka, kb = kept_ids(a), kept_ids(b)
    assert c["totals"]["kept"] == {"a": len(ka), "b": len(kb), "delta": len(kb) - len(ka), "ratio": len(kb) / len(ka)}
    assert c["documents"] == {"kept_in_both": len(ka & kb), "kept_only_in_a": len(ka - kb), "kept_only_in_b": len(kb - ka)}
    assert {"key": "stages.quality.threshold", "a": 0.3, "b": 0.6} in c["config_changes"]
    assert not any(ch["key"] == "output.path" for ch in c["config_changes"])
    quality = next(r for r in c["funnel"] if r["stage"] == "quality")
    assert quality["dropped"]["delta"] == len(ka) - len(kb) > 0  # the stricter threshold drops exactly the difference
    d = c["distributions"]["ppl_score"]
    assert d["quantiles"]["p5"]["b"] >= 0.6 > d["quantiles"]["p5"]["a"]


def test_compare_cli_table_json_csv(runs):
    a, b = map(str, runs)
    r = runner.invoke(app, ["stats", "--compare", a, b])
    assert r.exit_code == 0, r.output
    assert "config changes" in r.stdout and "stages.quality.threshold" in r.stdout and "funnel: documents dropped" in r.stdout
    r = runner.invoke(app, ["stats", "--compare", a, b, "--format", "json"])
    c = json.loads(r.stdout)
    assert c["r1data_stats_compare"] == 1 and c["a"]["r1data_stats"] == 1
    r = runner.invoke(app, ["stats", "--compare", a, b, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    kept = next(x for x in rows if x["section"] == "totals" and x["key"] == "kept")
    assert int(kept["a"]) == len(kept_ids(runs[0])) and int(kept["b"]) == len(kept_ids(runs[1]))
    r = runner.invoke(app, ["stats", a, "--compare", a, b])
    assert r.exit_code == 2 and "not both" in r.stderr


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.refs: list[str] = []
        self.titles: list[str] = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for k, v in attrs:
            if k in ("src", "href") or (k == "xlink:href" and v and not v.startswith("#")):
                self.refs.append(v)
        self._in = tag

    def handle_data(self, data):
        if self._in in ("h1", "h2", "h3"):
            self.titles.append(data)


def test_report_is_self_contained_with_plots(runs, tmp_path):
    a, _ = runs
    path = tmp_path / "sub" / "report.html"
    r = runner.invoke(app, ["stats", str(a), "--report", str(path)])
    assert r.exit_code == 0 and f"report: {path}" in r.stdout
    text = path.read_text()
    p = _Collector()
    p.feed(text)
    assert p.refs == []  # nothing to fetch: no scripts, images, stylesheets or links
    assert p.tags["svg"] >= 8  # funnel, length, 4 scores, lang, domain, source, hosts
    for title in ("filter funnel", "document length", "ppl_score", "language share (kept)", "domain share (kept)"):
        assert title in text, title
    assert "quality_clf_score_below_threshold" in text
    # the funnel plot labels every stage
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)
    for stage in ("english_only", "quality", "near_dedup"):
        assert stage in svg


def test_compare_report(runs, tmp_path):
    path = tmp_path / "diff.html"
    r = runner.invoke(app, ["stats", "--compare", str(runs[0]), str(runs[1]), "--report", str(path), "--format", "json"])
    assert r.exit_code == 0
    json.loads(r.stdout)  # the report note goes to stderr, so stdout stays JSON
    text = path.read_text()
    assert text.count("<svg") >= 6 and "config changes" in text and "stages.quality.threshold" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (manual check only)")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    html = tmp_path / "report.html"
    runner.invoke(app, ["stats", str(runs[0]), "--report", str(html)])
    png = tmp_path / "shot.png"
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}", "--window-size=1200,2000", html.as_uri()],
        capture_output=True, timeout=120,
    )
    assert png.is_file() and png.stat().st_size > 20_000, proc.stderr[-500:]


def test_config_changes_are_not_repeated():
    from r1data.stats.compare import config_changes

    a = {"config": {"stages": [{"stage": "quality_filter", "name": "q", "threshold": 0.6}], "knobs": {"filter_threshold": 0.6}},
         "knobs": {"filter_threshold": 0.6, "applied_to": {"filter_threshold": ["q"]}}}
    b = {"config": {"stages": [{"stage": "quality_filter", "name": "q", "threshold": 0.7}], "knobs": {"filter_threshold": 0.7}},
         "knobs": {"filter_threshold": 0.7, "applied_to": {"filter_threshold": ["q"]}}}
    assert config_changes(a, b) == [{"key": "stages.q.threshold", "a": 0.6, "b": 0.7}, {"key": "knobs.filter_threshold", "a": 0.6, "b": 0.7}]
