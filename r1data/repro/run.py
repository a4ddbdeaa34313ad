"""``r1data repro``: raw data -> recipes -> mixture -> tokenizer -> token shards -> MoE -> report.

Steps, in order (each reused when its key is unchanged, see ``steps.py``):

  source:<name>      every pipeline recipe, as written (augmentation included)
  raw:<name>         the same inputs through the recipe's reader/extraction stages only (ablation)
  mix:processed      the processed sources' kept text, held-out keys removed, mixed by weight
  mix:raw            the raw text, the same held-out keys removed, mixed by the same weights
  heldout            the held-out clean documents (evaluation set of both models), also split by source
  neutral            the neutral evaluation text (``eval.neutral``: no recipe reads it, no filter touched it)
  tokenizer          byte-level BPE trained on the processed mixture
  tokens:<set>       token shards of processed, raw, held-out (all and per source) and neutral text
  train:processed    the MoE on the processed mixture (train:processed-seed1 ... with ``seeds``)
  train:raw          the same model and budget on the raw mixture
  eval:<run>         every evaluation set scored with the run's final checkpoint
  report             report.html + report.json: funnels, mixture, curves, expert load, manifest chain
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import yaml

from r1data.config.knobs import KNOBS
from r1data.repro.recipe import manifest_fingerprint, run_recipe
from r1data.repro.spec import ReproSpec
from r1data.repro.steps import StepResult, Steps, digest

STEP_ORDER = ("source", "raw", "mix", "heldout", "tokenizer", "tokens", "train", "report")  # eval runs with train


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


def _neutral_shards(src: Path, out: Path):
    """The neutral evaluation file (JSON Lines, gzip) as one Parquet text shard."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    with gzip.open(src, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
                rows.append({"id": str(rec["id"]), "text": str(rec["text"]), "source": str(rec.get("source", "neutral"))})
            except (ValueError, KeyError, TypeError) as e:
                from r1data.errors import InputError

                raise InputError(f"{src}:{n}: not a JSON object with id and text ({e})") from None
    (out / "shards").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "shards" / "part-00000.parquet", compression="zstd")
    return digest([(r["id"], r["text"]) for r in rows]), {"documents": len(rows), "bytes": sum(len(r["text"].encode()) for r in rows), "file": str(src)}


def _file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_tag(variant: str, seed: int) -> str:
    """``processed`` for the first seed (the folder and step names of a one-seed run), ``processed-seed1`` after."""
    return variant if seed == 0 else f"{variant}-seed{seed}"


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
    write_root: Path | None = None,
    lookup: list[Path] | tuple = (),
) -> dict[str, StepResult]:
    """Run every step (or up to ``until``, a step kind such as ``tokens``); returns the step results.

    ``write_root``/``lookup``: see ``Steps`` (a sweep value writes only what changes into its folder)."""
    from r1data.repro import mix as mixing

    out = Path(spec.out_dir)
    here = write_root or out
    steps = Steps(log, force=force, dry_run=dry_run, root=out if write_root else None, write_root=write_root, lookup=lookup)
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
            knobs = {k: getattr(src, k) for k in KNOBS} if variant == "processed" else {}
            sets = src.set if variant == "processed" else [s for s in src.set if s.split(".")[1:2] and s.split(".")[1] in src.raw_stages]

            def fn(o: Path, recipe=recipe, sets=sets, knobs=knobs, src=src):
                _, m, _ = run_recipe(recipe, o, inputs=src.inputs, sets=sets, tasks=src.tasks, workers=workers, knobs=knobs)
                return manifest_fingerprint(o), {"recipe": str(recipe), "config_hash": m["config_hash"], "counts": m["counts"]}

            from r1data.config.spec import Overrides
            from r1data.run.pipeline import load_spec, plan_run

            # the key is planned at the canonical folder, so a sweep finds it wherever it was written
            plan = plan_run(load_spec(recipe, Overrides(sets=list(sets), inputs=src.inputs, output=str(dest), tasks=src.tasks, knobs=knobs)))
            step = "source:" + name if variant == "processed" else "raw:" + name
            res = steps.run(step, dest, {"plan": plan.plan_hash()}, fn, clean=False)
            runs[variant][name] = {"step": res, "dir": res.out}
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
            return mixing.make_mixture(shard_dirs, spec.mix, o, name=f"mix-{variant}", recipes_dir=here / "recipes", workers=workers)

        mixes[variant] = steps.run(f"mix:{variant}", dest, {"mix": spec.mix.model_dump(), "upstream": upstream}, fn)

    if not reached("heldout"):
        return steps.results
    owners = (mixes["processed"].info.get("plan") or {}).get("source_owner", {})
    held = steps.run(
        "heldout", out / "heldout", {"mix": mixes["processed"].fingerprint, "layout": 2},
        lambda o: mixing.extract_heldout(mixes["processed"].out, o, owners),
    )
    neutral = None
    if spec.eval.neutral:
        nfile = Path(spec.eval.neutral)
        neutral = steps.run("neutral", out / "eval" / "neutral", {"file": nfile.name, "sha256": _file_sha256(nfile)},
                            lambda o: _neutral_shards(nfile, o))
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
    token_sets = {v: (mixes[v].out / "shards", mixes[v].fingerprint) for v in variants}
    token_sets["heldout"] = (held.out / "shards", held.fingerprint)
    if spec.eval.per_source:
        for src_name in sorted(held.info.get("by_owner", {})):
            token_sets[f"heldout:{src_name}"] = (held.out / "by_source" / src_name, held.fingerprint)
    if neutral is not None:
        token_sets["neutral"] = (neutral.out / "shards", neutral.fingerprint)
    tokens: dict[str, StepResult] = {}
    for tname, (shards, upstream) in token_sets.items():

        def enc(o: Path, shards=shards):
            from r1data.tokenize.encode import encode_shards

            man = encode_shards(tok.out / "tokenizer.json", [str(shards)], o, overwrite=True)
            return digest(man.get("outputs", man)), {"tokens": man.get("totals", {}).get("tokens")}

        tokens[tname] = steps.run(f"tokens:{tname}", out / "tokens" / tname.replace(":", "-"),
                                  {"tokenizer": tok.fingerprint, "text": upstream, "shards": shards.name}, enc)
    eval_names = [n for n in token_sets if n not in variants]

    # 5. training, same config and budget for each variant (and each seed), then every evaluation set
    from r1data.repro.trainstep import prepare_train_dir, run_train_dir
    from r1data.train.config import load_train_config

    base = load_train_config(spec.train.config, list(spec.train.set))
    for variant in variants:
        for seed in range(spec.seeds):
            tag = train_tag(variant, seed)
            tsets = list(spec.train.set) + ([f"train.seed={base.train.seed + seed}", f"data.seed={base.data.seed + seed}"] if seed else [])
            dest = out / "train" / tag
            cfg_text = prepare_train_dir(spec.train.config, tsets, tokens[variant].out, tokens["heldout"].out, dest, dry=True)
            eval_plan = {"sets": {n: str(tokens[n].out) for n in eval_names}, "fingerprints": {n: tokens[n].fingerprint for n in eval_names},
                         "max_tokens": spec.eval.max_tokens}
            if not reached("train"):
                if not dry_run:  # ready for another machine: python -m r1data.repro.trainstep DIR
                    prepare_train_dir(spec.train.config, tsets, tokens[variant].out, tokens["heldout"].out, dest)
                    (dest / "eval_sets.json").write_text(json.dumps(eval_plan, indent=1))
                    log(f"train:{tag}: prepared; run `PYTHONPATH=. python -m r1data.repro.trainstep {dest}` where the GPU is")
                continue

            def fn(o: Path, variant=variant, tsets=tsets):
                text = prepare_train_dir(spec.train.config, tsets, tokens[variant].out, tokens["heldout"].out, o, dry=True)
                cfg_file = o / "config.yaml"
                if cfg_file.is_file() and cfg_file.read_text() != text:
                    import shutil

                    shutil.rmtree(o)  # another config trained here: start again
                summary = _finished_summary(o, text)
                if summary is None:  # train, or resume a run cut short (here or on another machine)
                    prepare_train_dir(spec.train.config, tsets, tokens[variant].out, tokens["heldout"].out, o)
                    summary = run_train_dir(o, log=log)
                if summary.get("stopped"):  # interrupted: not a finished step; the next run resumes it
                    from r1data.errors import FatalError

                    raise FatalError(f"train:{o.name}: stopped at step {summary.get('step')}; rerun to resume from its last checkpoint")
                return digest(summary.get("final_checkpoint_sha256") or summary), summary

            trained = steps.run(
                f"train:{tag}", dest, {"config": cfg_text, "tokens": tokens[variant].fingerprint, "heldout": tokens["heldout"].fingerprint},
                fn, clean=False,
            )
            if not eval_names:
                continue

            def ev(o: Path, trained=trained, eval_plan=eval_plan):
                from r1data.repro.evalstep import evaluate_sets

                done = trained.out / "eval.json"  # scored where it trained (trainstep), for this checkpoint and these sets
                rec = json.loads(done.read_text()) if done.is_file() else {}
                if (rec.get("checkpoint_sha256") and rec.get("checkpoint_sha256") == trained.info.get("final_checkpoint_sha256")
                        and rec.get("fingerprints") == eval_plan["fingerprints"] and rec.get("max_tokens") == eval_plan["max_tokens"]):
                    res = rec["results"]
                else:
                    res = evaluate_sets(trained.out, {n: tokens[n].out for n in eval_names}, max_tokens=spec.eval.max_tokens)
                (o / "eval.json").write_text(json.dumps(res, indent=1))
                return digest(res), {"sets": res, "train_step": trained.name}

            steps.run(f"eval:{tag}", out / "eval" / "runs" / tag,
                      {"train": trained.fingerprint, "sets": {n: tokens[n].fingerprint for n in eval_names}, "max_tokens": spec.eval.max_tokens}, ev)

    # 6. report, always rewritten (cheap)
    if reached("report") and not dry_run:
        from r1data.repro.report import write_report

        write_report(spec, steps.results, here / "report", preset=preset, recipe_path=recipe_path)
    return steps.results


SWEEP_KNOBS = tuple(KNOBS)


def parse_sweep(spec: ReproSpec, text: str) -> tuple[str, list[str], list]:
    """``KNOB=V1,V2,...`` -> (knob, the sources it changes, values). KNOB is ``filter_threshold`` or
    ``dedup_window`` (every source that sets it) or ``sources.NAME.KNOB`` (that source)."""
    from r1data.errors import ConfigError

    if "=" not in text:
        raise ConfigError(f"--sweep {text}: expected KNOB=V1,V2,..., e.g. filter_threshold=0.5,0.7,0.9")
    knob, vals = (x.strip() for x in text.split("=", 1))
    parts = knob.split(".")
    if len(parts) == 3 and parts[0] == "sources":
        if parts[1] not in spec.sources:
            raise ConfigError(f"--sweep {text}: no source {parts[1]!r} (sources: {', '.join(spec.sources)})")
        names, field = [parts[1]], parts[2]
    else:
        field = knob
        names = [n for n, s in spec.sources.items() if getattr(s, field, None) is not None] if field in SWEEP_KNOBS else []
        if field in SWEEP_KNOBS and not names:
            raise ConfigError(f"--sweep {text}: no source sets {field}; name one: sources.NAME.{field}=...")
    if field not in SWEEP_KNOBS:
        raise ConfigError(f"--sweep {text}: sweepable knobs are {', '.join(SWEEP_KNOBS)} (or sources.NAME.KNOB)")
    values = [yaml.safe_load(v) for v in vals.split(",") if v.strip()]
    if len(values) < 2 or len(set(map(str, values))) != len(values):
        raise ConfigError(f"--sweep {text}: give at least two different values, comma-separated")
    for v in values:
        if KNOBS[field].problem(v):
            raise ConfigError(f"--sweep {text}: {v!r} is not a valid {field} ({KNOBS[field].range_text})")
    return knob, names, values


def run_sweep(spec: ReproSpec, sweep: str, *, preset: str | None, recipe_path: str, log: Callable[[str], None] = print,
              force: set[str] | None = None, dry_run: bool = False, workers: int | None = None) -> dict:
    """One processed-side training per value of a knob, on the same budget; every step whose key does not
    depend on the value is reused (from the main run's folders or another value's). Writes
    ``OUT/sweep/KNOB/report/`` (sweep.json, sweep.png, index.html) and returns sweep.json's data."""
    from r1data.repro.report import eval_sets, write_sweep_report

    knob, names, values = parse_sweep(spec, sweep)
    field = knob.split(".")[-1]
    out = Path(spec.out_dir)
    base = out / "sweep" / knob
    points = []
    for value in values:
        sources = {n: (s.model_copy(update={field: value}) if n in names else s) for n, s in spec.sources.items()}
        spec_v = spec.model_copy(update={"sources": sources, "ablation": False})
        write_root = base / str(value)
        lookup = sorted(p for p in (out / "sweep").glob("*/*") if p.is_dir() and p.name != "report" and p != write_root)
        log(f"sweep {knob}={value} -> {write_root}")
        results = run_repro(spec_v, preset=preset, recipe_path=recipe_path, log=log, force=force, dry_run=dry_run,
                            workers=workers, write_root=write_root, lookup=lookup)
        points.append({
            "value": value,
            "eval_sets": eval_sets(results),
            "steps": {r.name: {"key": r.key, "fingerprint": r.fingerprint, "out": str(r.out), "reused": r.reused} for r in results.values()},
            "report": str(write_root / "report"),
        })
    data = {"knob": knob, "sources": names, "values": values, "seeds": spec.seeds, "points": points}
    if not dry_run:
        write_sweep_report(data, base / "report")
    return data
