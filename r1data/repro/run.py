"""``r1data repro``: raw data -> recipes -> mixture -> tokenizer -> token shards -> MoE -> report.

Steps, in order (each reused when its key is unchanged, see ``steps.py``):

  source:<name>      every pipeline recipe, as written (augmentation included)
  raw:<name>         the same inputs through the recipe's reader/extraction stages only (ablation)
  mix:processed      the processed sources' kept text, held-out keys removed, mixed by weight
  mix:raw            the raw text, the same held-out keys removed, mixed by the same weights
  heldout            the held-out clean documents (evaluation set of both models)
  tokenizer          byte-level BPE trained on the processed mixture
  tokens:<set>       token shards of processed, raw and held-out text
  train:processed    the MoE on the processed mixture
  train:raw          the same model and budget on the raw mixture
  report             report.html + report.json: funnels, mixture, curves, expert load, manifest chain
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import yaml

from r1data.repro.spec import ReproSpec
from r1data.repro.steps import StepResult, Steps, digest

STEP_ORDER = ("source", "raw", "mix", "heldout", "tokenizer", "tokens", "train", "report")


def _manifest_fingerprint(out: Path) -> str:
    m = json.loads((out / "manifest.json").read_text())
    return digest({k: m["outputs"][k] for k in ("shards", "rejected")})


def run_recipe(recipe: str | Path, out: Path, *, inputs=None, sets=(), filter_threshold=None, dedup_window=None, tasks=None, workers=None):
    """Run (or resume, or reuse) one pipeline recipe into ``out``; returns (plan, manifest dict, reused)."""
    from r1data.config.spec import Overrides
    from r1data.run.pipeline import STATE_FILE, execute, load_spec, plan_run

    ov = Overrides(sets=list(sets), inputs=list(inputs) if inputs else None, output=str(out), tasks=tasks, workers=workers,
                   filter_threshold=filter_threshold, dedup_window=dedup_window)
    plan = plan_run(load_spec(recipe, ov))
    state = out / STATE_FILE
    same = state.is_file() and json.loads(state.read_text()).get("plan_hash") == plan.plan_hash()
    if same and (out / "manifest.json").is_file():
        return plan, json.loads((out / "manifest.json").read_text()), True
    execute(plan, overwrite=not same)
    return plan, json.loads((out / "manifest.json").read_text()), False


def _finished_summary(out: Path, cfg_text: str) -> dict | None:
    """The summary of a finished run of exactly this config in ``out`` (trained here or elsewhere)."""
    cfg_file, summary_file = out / "config.yaml", out / "summary.json"
    if not (cfg_file.is_file() and summary_file.is_file()) or cfg_file.read_text() != cfg_text:
        return None
    summary = json.loads(summary_file.read_text())
    steps = yaml.safe_load(cfg_text)["train"]["steps"]
    return summary if summary.get("step") == steps and not summary.get("stopped") else None


def raw_recipe(recipe: Path, keep: list[str], dest: Path) -> Path:
    """Write a copy of ``recipe`` with only the ``keep`` stages (its reader and extraction)."""
    data = yaml.safe_load(recipe.read_text())
    stages = [s for s in data["stages"] if s.get("name", s.get("stage")) in keep or s.get("stage") in keep]
    missing = set(keep) - {s.get("name", s.get("stage")) for s in stages} - {s.get("stage") for s in stages}
    if missing:
        from r1data.errors import ConfigError

        raise ConfigError(f"raw_stages: {recipe} has no stage {', '.join(sorted(missing))}")
    data["name"] = f"{data['name']}-raw"
    data["description"] = f"raw variant of {recipe}: {', '.join(keep)} only (r1data repro ablation)"
    data["stages"] = stages
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(f"# written by r1data repro from {recipe}; do not edit\n" + yaml.safe_dump(data, sort_keys=False))
    return dest


def run_repro(
    spec: ReproSpec,
    *,
    preset: str | None,
    recipe_path: str,
    log: Callable[[str], None] = print,
    force: set[str] | None = None,
    until: str | None = None,
    dry_run: bool = False,
    workers: int | None = None,
) -> dict[str, StepResult]:
    """Run every step (or up to ``until``, a step kind such as ``tokens``); returns the step results."""
    from r1data.repro import mix as mixing

    out = Path(spec.out_dir)
    steps = Steps(log, force=force, dry_run=dry_run)
    stop_after = STEP_ORDER.index(until) if until else len(STEP_ORDER) - 1

    def reached(kind: str) -> bool:
        return STEP_ORDER.index(kind) <= stop_after

    variants = ["processed", "raw"] if spec.ablation else ["processed"]
    runs: dict[str, dict[str, dict]] = {"processed": {}, "raw": {}}

    # 1-2. pipeline recipes, processed and raw
    for variant in variants:
        for name, src in spec.sources.items():
            recipe = Path(src.recipe)
            if variant == "raw":
                recipe = raw_recipe(recipe, src.raw_stages, out / "recipes" / f"raw-{name}.yaml")
            dest = out / ("sources" if variant == "processed" else "raw") / name
            knobs = dict(filter_threshold=src.filter_threshold, dedup_window=src.dedup_window) if variant == "processed" else {}
            sets = src.set if variant == "processed" else [s for s in src.set if s.split(".")[1:2] and s.split(".")[1] in src.raw_stages]

            def fn(o: Path, recipe=recipe, sets=sets, knobs=knobs, src=src):
                _, m, _ = run_recipe(recipe, o, inputs=src.inputs, sets=sets, tasks=src.tasks, workers=workers, **knobs)
                return _manifest_fingerprint(o), {"recipe": str(recipe), "config_hash": m["config_hash"], "counts": m["counts"]}

            from r1data.config.spec import Overrides
            from r1data.run.pipeline import load_spec, plan_run

            plan = plan_run(load_spec(recipe, Overrides(sets=list(sets), inputs=src.inputs, output=str(dest), tasks=src.tasks, **knobs)))
            step = "source:" + name if variant == "processed" else "raw:" + name
            res = steps.run(step, dest, {"plan": plan.plan_hash()}, fn, clean=False)
            runs[variant][name] = {"step": res, "dir": dest}
    if not reached("mix"):
        return steps.results

    # 3. mixtures
    weights = {k: v for k, v in spec.mix.weights.items() if v > 0}
    mixes: dict[str, StepResult] = {}
    for variant in variants:
        shard_dirs = {name: runs[variant][name]["dir"] / "shards" for name in weights}
        upstream = {name: runs[variant][name]["step"].fingerprint for name in weights}
        dest = out / "mix" / variant

        def fn(o: Path, shard_dirs=shard_dirs, variant=variant):
            return mixing.make_mixture(shard_dirs, spec.mix, o, name=f"mix-{variant}", recipes_dir=out / "recipes", workers=workers)

        mixes[variant] = steps.run(f"mix:{variant}", dest, {"mix": spec.mix.model_dump(), "upstream": upstream}, fn)

    if not reached("heldout"):
        return steps.results
    held = steps.run(
        "heldout", out / "heldout", {"mix": mixes["processed"].fingerprint},
        lambda o: mixing.extract_heldout(mixes["processed"].out, o),
    )
    if not reached("tokenizer"):
        return steps.results

    # 4. tokenizer and token shards
    def train_tok(o: Path):
        from r1data.tokenize.bpe import train_bpe

        man = train_bpe([str(mixes["processed"].out / "shards")], spec.tokenizer.vocab_size, o, overwrite=True)
        return man["tokenizer"]["sha256"] if isinstance(man.get("tokenizer"), dict) else digest(man), {"manifest": man}

    tok = steps.run("tokenizer", out / "tokenizer", {"vocab": spec.tokenizer.vocab_size, "mix": mixes["processed"].fingerprint}, train_tok)
    if not reached("tokens"):
        return steps.results
    token_sets = {v: mixes[v].out / "shards" for v in variants} | {"heldout": held.out / "shards"}
    tokens: dict[str, StepResult] = {}
    for tname, shards in token_sets.items():
        upstream = held.fingerprint if tname == "heldout" else mixes[tname].fingerprint

        def enc(o: Path, shards=shards):
            from r1data.tokenize.encode import encode_shards

            man = encode_shards(tok.out / "tokenizer.json", [str(shards)], o, overwrite=True)
            return digest(man.get("outputs", man)), {"tokens": man.get("totals", {}).get("tokens")}

        tokens[tname] = steps.run(f"tokens:{tname}", out / "tokens" / tname, {"tokenizer": tok.fingerprint, "text": upstream}, enc)

    # 5. training, same config and budget for each variant
    from r1data.repro.trainstep import prepare_train_dir, run_train_dir

    for variant in variants:
        dest = out / "train" / variant
        cfg_text = prepare_train_dir(spec.train.config, spec.train.set, tokens[variant].out, tokens["heldout"].out, dest, dry=True)
        if not reached("train"):
            if not dry_run:  # ready for another machine: python -m r1data.repro.trainstep DIR
                prepare_train_dir(spec.train.config, spec.train.set, tokens[variant].out, tokens["heldout"].out, dest)
                log(f"train:{variant}: prepared; run `PYTHONPATH=. python -m r1data.repro.trainstep {dest}` where the GPU is")
            continue

        def fn(o: Path, variant=variant, cfg_text=cfg_text):
            cfg_file = o / "config.yaml"
            if cfg_file.is_file() and cfg_file.read_text() != cfg_text:
                import shutil

                shutil.rmtree(o)  # another config trained here: start again
            summary = _finished_summary(o, cfg_text)
            if summary is None:  # train, or resume a run cut short (here or on another machine)
                prepare_train_dir(spec.train.config, spec.train.set, tokens[variant].out, tokens["heldout"].out, o)
                summary = run_train_dir(o, log=log)
            return digest(summary.get("final_checkpoint_sha256") or summary), summary

        steps.run(
            f"train:{variant}", dest, {"config": cfg_text, "tokens": tokens[variant].fingerprint, "heldout": tokens["heldout"].fingerprint},
            fn, clean=False,
        )

    # 6. report, always rewritten (cheap)
    if reached("report") and not dry_run:
        from r1data.repro.report import write_report

        write_report(spec, steps.results, out / "report", preset=preset, recipe_path=recipe_path)
    return steps.results
