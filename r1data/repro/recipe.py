"""Run one pipeline recipe for ``r1data repro`` (a source, its raw ablation, the mixture), reusing a finished run."""

from __future__ import annotations

import json
from pathlib import Path

from r1data.repro.steps import digest


def manifest_fingerprint(out: Path) -> str:
    m = json.loads((out / "manifest.json").read_text())
    return digest({k: m["outputs"][k] for k in ("shards", "rejected")})


def run_recipe(recipe: str | Path, out: Path, *, inputs=None, sets=(), knobs=None, tasks=None, workers=None):
    """Run (or resume, or reuse) one pipeline recipe into ``out``; returns (plan, manifest dict, reused).

    ``knobs``: knob name -> value, as on the command line (``r1data.config.knobs``)."""
    from r1data.config.spec import Overrides
    from r1data.run.output import STATE_FILE
    from r1data.run.pipeline import execute, load_spec, plan_run

    ov = Overrides(sets=list(sets), inputs=list(inputs) if inputs else None, output=str(out), tasks=tasks, workers=workers, knobs=knobs)
    plan = plan_run(load_spec(recipe, ov))
    state = out / STATE_FILE
    same = state.is_file() and json.loads(state.read_text()).get("plan_hash") == plan.plan_hash()
    if same and (out / "manifest.json").is_file():
        return plan, json.loads((out / "manifest.json").read_text()), True
    execute(plan, overwrite=not same)
    return plan, json.loads((out / "manifest.json").read_text()), False
