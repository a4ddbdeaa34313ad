"""One training run of ``r1data repro``, in a folder that holds everything it needs.

Imports only what the trainer imports (torch, numpy, pyarrow, tokenizers, PyYAML), so the training
steps can run on a bare GPU machine from a source checkout, next to the token shards:

    PYTHONPATH=. python -m r1data.repro.trainstep out/repro/train/processed

writes ``summary.json`` beside ``metrics.jsonl`` and the checkpoints, then scores the final checkpoint
on the evaluation sets listed in ``eval_sets.json`` (``eval.json``); ``r1data repro`` then finds the
finished run and its scores and goes on to the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import yaml


def _resolved(base_config: str, sets: list[str], tokens: Path, heldout: Path, out_dir: Path) -> dict:
    from r1data.train.config import load_train_config

    extra = [f"data.path={tokens}", f"data.eval_path={heldout}", "data.eval_fraction=0", f"out_dir={out_dir}"]
    cfg = load_train_config(base_config, list(sets) + extra)
    return dataclasses.asdict(cfg)


def prepare_train_dir(base_config: str, sets: list[str], tokens: Path, heldout: Path, out_dir: Path, dry: bool = False) -> str:
    """Write ``out_dir/config.yaml`` (the base config with repro's data paths); returns its text.

    Paths inside are relative to the working directory, like every r1data path."""
    text = yaml.safe_dump(_resolved(base_config, sets, tokens, heldout, out_dir), sort_keys=True)
    if not dry:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(text)
    return text


def run_train_dir(out_dir: Path, log=None) -> dict:
    """Train (resuming from the folder's latest checkpoint) and write ``summary.json``."""
    from r1data.train.checkpoint import latest_checkpoint
    from r1data.train.config import load_train_config
    from r1data.train.loop import train

    cfg = load_train_config(str(out_dir / "config.yaml"), [])
    summary = train(cfg, resume="auto", log=log)
    last = latest_checkpoint(Path(cfg.out_dir))
    if last is not None and (last / "model.pt").is_file():
        h = hashlib.sha256()
        with open(last / "model.pt", "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        summary["final_checkpoint"] = str(last)
        summary["final_checkpoint_sha256"] = h.hexdigest()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def eval_train_dir(out_dir: Path, summary: dict, log=print) -> dict | None:
    """Score the final checkpoint on the evaluation sets ``r1data repro --until tokens`` listed in
    ``eval_sets.json`` (on this machine's GPU); writes ``eval.json``, which repro then takes as is."""
    plan_file = out_dir / "eval_sets.json"
    if not plan_file.is_file() or not summary.get("final_checkpoint_sha256"):
        return None
    from r1data.repro.evalstep import evaluate_sets

    plan = json.loads(plan_file.read_text())
    res = evaluate_sets(out_dir, {n: Path(p) for n, p in plan["sets"].items()}, max_tokens=plan.get("max_tokens"))
    rec = {"checkpoint_sha256": summary["final_checkpoint_sha256"], "fingerprints": plan["fingerprints"], "max_tokens": plan.get("max_tokens"), "results": res}
    (out_dir / "eval.json").write_text(json.dumps(rec, indent=1))
    for name, r in res.items():
        log(f"{name}: {r['loss']} nats/token over {r['tokens']:,} tokens")
    return rec


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m r1data.repro.trainstep TRAIN_DIR   (a folder r1data repro prepared)")
    eval_train_dir(Path(sys.argv[1]), run_train_dir(Path(sys.argv[1])))
