"""The web recipe against datatrove's FineWeb pipeline: docs/s/core, CPU ms/doc, ms/doc per stage.

    python bench/web_speed.py                                  # bundled sample, best of 3
    python bench/web_speed.py --input-set cc --repeat 5        # the real Common Crawl excerpt
    python bench/web_speed.py --input-set scale --scale-dir out/scale-set   # bench/make_scale_set.py output
    python bench/web_speed.py --only r1data --tasks 8 --workers 2
    python bench/web_speed.py --components                     # reader, sink, read-back, language ID: CPU ms/doc

Pipelines (each a fresh process, the same input files, tasks and workers; runs alternate between
pipelines and the best wall time of ``--repeat`` is kept):

- ``r1data``: ``r1data run pipelines/web.yaml`` with every stage it has (extraction, language ID,
  four heuristic stages, KenLM + fastText quality, exact and near dedup) and the Parquet sink;
- ``r1data-v1``: ``pipelines/web-v1.yaml``, the recipe as released with policy web-v1 (Trafilatura,
  none of the stages web-v2 added);
- ``datatrove``: WarcReader -> Trafilatura -> LanguageFilter -> GopherRepetition -> GopherQuality ->
  C4Quality -> FineWebQuality -> ParquetWriter on datatrove's LocalPipelineExecutor (FineWeb's
  pipeline; bench/_dt_web.py);
- ``datatrove-resiliparse``: the same with a Resiliparse extractor (a 10-line BaseExtractor).

Docs/s/core = documents read / wall seconds / min(workers, tasks). CPU ms/doc = user+system CPU of the whole
process tree (every process sampled from /proc every 0.5 s, so the last half second of a process
and processes shorter than that are missed) / documents read: on a shared machine it is the
steadier figure. Peak RSS is the largest VmHWM of any one process of the tree. Per-stage ms/doc is
each step's own timer (datatrove's ``time_stats``), summed over tasks, per document read.
Read counts are printed for every pipeline: datatrove's reader skips records without an HTML
``WARC-Identified-Payload-Type`` (asking libmagic when the header is missing), r1data reads every
response and rejects non-HTML with a reason, so the line to compare is r1data's documents that
passed its reader against datatrove's documents read.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, shared_data  # noqa: E402

PY = sys.executable


def input_set(name: str, scale_dir: str | None) -> tuple[str, str]:
    """``(folder, glob)`` of an input set."""
    if name == "sample":
        return str(ROOT / "data" / "sample" / "web"), "*.warc.gz"
    if name == "cc":
        return str(shared_data() / "cc-2020-34-sample"), "*.warc.gz"
    if name == "scale":
        d = Path(scale_dir or ROOT / "out" / "scale-set")
        if not list(d.glob("*.warc.gz")):
            raise SystemExit(f"{d}: no *.warc.gz; write a scale set first: python bench/make_scale_set.py --out {d}")
        return str(d), "*.warc.gz"
    d = Path(name)
    if d.is_dir():
        return str(d), "*.warc.gz"
    raise SystemExit(f"unknown input set {name!r}: sample, cc, scale or a folder of *.warc.gz")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), str(ROOT / "bench"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


_TICK = os.sysconf("SC_CLK_TCK")


def _tree_sample(root: int, seen: dict[int, tuple[float, int]]) -> None:
    """CPU seconds (own user+system) and peak RSS (VmHWM, KiB) of ``root`` and all its descendants, now.

    Pool workers are children of a fork server, not of the command, so rusage from wait4 misses
    them; /proc sees every process of the tree while it lives."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(d)
        stats[pid] = f
        children.setdefault(int(f[1]), []).append(pid)
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        f = stats.get(pid)
        if f is None:
            continue
        cpu = (int(f[11]) + int(f[12])) / _TICK  # utime, stime
        hwm = seen.get(pid, (0.0, 0))[1]
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
                        break
        except OSError:
            pass
        seen[pid] = (max(cpu, seen.get(pid, (0.0, 0))[0]), hwm)


def _timed(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; wall time, CPU time and peak RSS of its whole process tree (sampled every 0.5 s)."""
    load0 = os.getloadavg()[0]
    seen: dict[int, tuple[float, int]] = {}
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
        while proc.poll() is None:
            _tree_sample(proc.pid, seen)
            time.sleep(0.5)
        rc = proc.returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {rc}); its output is in {log}:\n" + log.read_text()[-3000:])
    return {
        "wall": wall,
        "cpu": sum(c for c, _ in seen.values()),
        # the largest resident set of any one process of the tree (the driver or one worker)
        "max_rss_mb": max((h for _, h in seen.values()), default=0) / 1024,
        "processes": len(seen),
        "load": (load0, os.getloadavg()[0]),
    }


def _steps_time(stats: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in stats:
        ts = s.get("time_stats", 0)
        total = ts.get("total", 0) if isinstance(ts, dict) else ts
        out[s["name"]] = out.get(s["name"], 0.0) + float(total or 0)
    return out


def _stat(stats: list[dict], name_part: str, key: str) -> int:
    n = 0
    for s in stats:
        if name_part in s["name"]:
            v = s.get("stats", {}).get(key, 0)
            n += v.get("total", 0) if isinstance(v, dict) else v
    return n


class R1data:
    def __init__(self, label: str, extra: list[str], recipe: str = "pipelines/web.yaml"):
        self.label, self.extra, self.recipe = label, extra, recipe

    def run(self, folder: str, pattern: str, tasks: int, workers: int, out: Path) -> dict:
        files = sorted(glob.glob(os.path.join(folder, pattern)))
        cmd = [PY, "-m", "r1data_cli.app", "run", self.recipe, "--output", str(out), "--overwrite",
               "--tasks", str(tasks), "--workers", str(workers), "--json", *self.extra]
        for f in files:
            cmd += ["--input", f]
        r = _timed(cmd, out.parent / f"{out.name}.log")
        steps: dict[str, float] = {}
        for f in sorted((out / "stats").rglob("*.json")):
            st = json.loads(f.read_text())
            for k, v in _steps_time(st["datatrove"]["stats"] if isinstance(st["datatrove"], dict) else st["datatrove"]).items():
                steps[k] = steps.get(k, 0.0) + v
        man = json.loads((out / "manifest.json").read_text())
        counts = man.get("counts", man)
        read = counts["read"]
        passed_reader = read - sum(counts.get("dropped_by_stage", {}).get("warc_reader", {}).values())
        r.update(read=read, passed_reader=passed_reader, kept=counts["kept"], steps=steps)
        return r


class Datatrove:
    def __init__(self, label: str, extractor: str, timeout: float):
        self.label, self.extractor, self.timeout = label, extractor, timeout

    def run(self, folder: str, pattern: str, tasks: int, workers: int, out: Path) -> dict:
        shutil.rmtree(out, ignore_errors=True)
        cmd = [PY, str(ROOT / "bench" / "_dt_web.py"), "--folder", folder, "--glob", pattern, "--out", str(out),
               "--tasks", str(tasks), "--workers", str(workers), "--extractor", self.extractor, "--timeout", str(self.timeout)]
        r = _timed(cmd, out.parent / f"{out.name}.log")
        stats = json.loads((out / "logs" / "stats.json").read_text())
        stats = stats["stats"] if isinstance(stats, dict) else stats
        read = _stat(stats, "Warc", "documents")
        kept = _stat(stats, "Parquet", "total")
        timeouts = _stat(stats, "", "timeout")
        r.update(read=read, passed_reader=read, kept=kept, steps=_steps_time(stats), timeouts=timeouts)
        return r


def components(folder: str, pattern: str, repeat: int) -> None:
    """CPU ms/doc of the parts of the hot path outside extraction and the heuristics, in this process:
    the WARC reader, the Parquet sink (Arrow conversion + zstd Parquet), reading a shard back (the
    work reader of the dedup phases) and language ID (on the text of the read documents, markup
    and all: longer than extracted text, so an upper bound)."""
    sys.path[:0] = [str(ROOT), str(ROOT / "cli")]
    from r1data.io.schema import shard_schema
    from r1data.io.shards import ShardWriter, iter_documents
    from r1data.stages.base import InputFile
    from r1data.stages.langid import LanguageId
    from r1data.stages.readers import WarcReader

    files = sorted(glob.glob(os.path.join(folder, pattern)))

    def cpu_best(fn):
        best = None
        for _ in range(repeat):
            t = time.process_time()
            out = fn()
            dt = time.process_time() - t
            best = dt if best is None or dt < best else best
        return out, best

    def read():
        r = WarcReader()
        r.files = [InputFile(index=i, uri=f, size=os.path.getsize(f)) for i, f in enumerate(files)]
        return list(r.run(None, 0, 1))

    read()  # imports and first-use costs out of the way
    docs, t_read = cpu_best(read)
    n = len(docs)
    tmp = Path(tempfile.mkdtemp(prefix="web-components-"))
    try:
        schema = shard_schema({"lang": "string", "lang_score": "float32"})

        def sink():
            w = ShardWriter(tmp / "part.parquet", schema)
            for d in docs:
                w.write(d)
            return w.close()

        _, t_sink = cpu_best(sink)
        _, t_back = cpu_best(lambda: sum(1 for _ in iter_documents(tmp / "part.parquet")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lid = LanguageId()
    lid.setup()
    _, t_lid = cpu_best(lambda: [lid.process_batch(docs[i : i + lid.batch_size]) for i in range(0, n, lid.batch_size)])
    chars = sum(len(d.text) for d in docs) / max(1, n)
    print(f"components, {n} documents (mean {chars:,.0f} characters), CPU ms/doc, best of {repeat}:")
    for label, t in (("warc_reader", t_read), ("sink (Arrow + zstd Parquet)", t_sink), ("shard read back", t_back), ("language_id (raw HTML text)", t_lid)):
        print(f"  {label:<30} {1000 * t / max(1, n):8.3f}")


def _policy_option() -> bool:
    out = subprocess.run([PY, "-m", "r1data_cli.app", "run", "--help"], capture_output=True, text=True, env=_env(), cwd=ROOT).stdout
    return "--policy" in out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input-set", default="sample", help="sample (data/sample/web), cc (Common Crawl 2020-34 excerpt), scale, or a folder")
    ap.add_argument("--scale-dir", default=None, help="folder of the scale set (default out/scale-set)")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs per pipeline, alternated; the best wall time is kept")
    ap.add_argument("--only", default=None, help="comma-separated pipeline labels to run (r1data, r1data-v1, datatrove, datatrove-resiliparse)")
    ap.add_argument("--timeout", type=float, default=60.0, help="datatrove extractor timeout per document, s (r1data's default is 60)")
    ap.add_argument("--keep", default=None, help="keep the outputs in this folder (default: a temporary folder, removed)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--components", action="store_true", help="only time the reader, sink, shard read-back and language ID in this process")
    a = ap.parse_args(argv)

    folder, pattern = input_set(a.input_set, a.scale_dir)
    if a.components:
        components(folder, pattern, a.repeat)
        return 0
    files = sorted(glob.glob(os.path.join(folder, pattern)))
    size = sum(os.path.getsize(f) for f in files)
    pipes: list = [R1data("r1data", [])]
    if (ROOT / "pipelines" / "web-v1.yaml").exists():
        pipes.append(R1data("r1data-v1", [], "pipelines/web-v1.yaml"))
    pipes += [Datatrove("datatrove", "trafilatura", a.timeout), Datatrove("datatrove-resiliparse", "resiliparse", a.timeout)]
    if a.only:
        want = set(a.only.split(","))
        pipes = [p for p in pipes if p.label in want]
        if not pipes:
            raise SystemExit(f"--only {a.only}: no such pipeline")
    cores = os.cpu_count() or 1
    busy = max(1, min(a.workers, a.tasks))  # workers that can run at once
    print(f"input: {folder}/{pattern}: {len(files)} files, {size / 2**20:.1f} MiB; {a.tasks} tasks, {a.workers} workers, "
          f"{cores} cores, best of {a.repeat}; load average at start {os.getloadavg()[0]:.1f}", flush=True)

    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="web-speed-"))
    base.mkdir(parents=True, exist_ok=True)
    best: dict[str, dict] = {}
    loads: list[float] = []
    try:
        for rep in range(a.repeat):
            for p in pipes:
                r = p.run(folder, pattern, a.tasks, a.workers, base / p.label)
                loads += list(r["load"])
                print(f"  run {rep + 1} {p.label:<22} {r['wall']:7.1f} s wall, {r['cpu']:7.1f} s cpu, read {r['read']}, "
                      f"load {r['load'][0]:.1f}->{r['load'][1]:.1f}", flush=True)
                if p.label not in best or r["wall"] < best[p.label]["wall"]:
                    best[p.label] = r
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)

    print(f"\nload average during the runs: min {min(loads):.1f}, max {max(loads):.1f} ({cores} cores)")
    print(f"\n{'pipeline':<22} {'read':>6} {'passed':>6} {'kept':>6} {'wall s':>8} {'docs/s':>8} {'docs/s/core':>11} {'cpu ms/doc':>10} {'peak RSS MB':>11}")
    for label, r in best.items():
        dps = r["read"] / r["wall"]
        print(f"{label:<22} {r['read']:>6} {r['passed_reader']:>6} {r['kept']:>6} {r['wall']:>8.1f} {dps:>8.1f} "
              f"{dps / busy:>11.2f} {1000 * r['cpu'] / max(1, r['read']):>10.1f} {r['max_rss_mb']:>11.0f}")
        r["docs_per_s_core"] = dps / busy
    passed = {label: r["passed_reader"] for label, r in best.items()}
    if len(set(passed.values())) > 1:
        print(f"WARNING: the pipelines did not read the same documents: {passed}")
    else:
        print(f"every pipeline read the same {next(iter(passed.values()))} HTML documents")
    for label, r in best.items():
        if r.get("timeouts"):
            print(f"WARNING: {label}: {r['timeouts']} extraction timeouts (documents dropped)")

    if "r1data" in best and len(best) > 1:
        print("\nratios (wall docs/s; cpu ms/doc) against r1data:")
        ref = best["r1data"]
        for label, r in best.items():
            if label == "r1data":
                continue
            print(f"  {label:<22} r1data is {ref['docs_per_s_core'] / r['docs_per_s_core']:.2f}x its docs/s/core, "
                  f"{(r['cpu'] / max(1, r['read'])) / (ref['cpu'] / max(1, ref['read'])):.2f}x its cpu speed")

    print("\nms/doc per stage (each step's own timer, summed over tasks, per document read):")
    for label, r in best.items():
        print(f"  {label}")
        for name, secs in r["steps"].items():
            print(f"    {name:<40} {1000 * secs / max(1, r['read']):8.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"input": folder, "tasks": a.tasks, "workers": a.workers, "repeat": a.repeat,
                                            "results": {k: {x: y for x, y in v.items()} for k, v in best.items()}}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
