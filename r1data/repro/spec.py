"""The end-to-end recipe (``pipelines/repro.yaml``): sources, mixture, tokenizer, training, ablation, presets.

Validated like a pipeline recipe: every problem is reported with file, line and YAML path before
anything runs. A preset is a set of dotted overrides (``sources.web.inputs: [...]``) applied on
top of the recipe; ``--set key=value`` applies after the preset.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from r1data import dotted
from r1data.config.knobs import KNOBS
from r1data.config.spec import _pydantic_problems, expand_vars
from r1data.dotted import suggest
from r1data.errors import ConfigError
from r1data.yamlsrc import YamlSource, load_yaml_file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _SourceFields(_Strict):
    recipe: str = Field(..., description="pipeline recipe (YAML)")
    inputs: list[str] | None = Field(None, description="replace the recipe's inputs")
    set: list[str] = Field(default_factory=list, description="--set overrides for the recipe")
    tasks: int | None = Field(None, ge=1)
    raw_stages: list[str] = Field(..., min_length=1, description="stages (names or labels) kept for the raw variant of the ablation")


# ... and one field per knob (filter_threshold, dedup_window), typed and ranged as declared in r1data/config/knobs.py
SourceSpec = create_model(
    "SourceSpec",
    __base__=_SourceFields,
    __doc__="One pipeline recipe whose kept shards feed the mixture.",
    **{k.name: (Optional[k.type], Field(None, ge=k.minimum, le=k.maximum, description=f"{k.flag} for the recipe")) for k in KNOBS.values()},
)



class MixSpec(_Strict):
    """How the sources are mixed: shares of training text bytes, after the held-out set is taken out."""

    weights: dict[str, float] = Field(..., description="source -> share of the mixture's text bytes (normalised to 1)")
    total_mb: float | None = Field(None, gt=0, description="text MB of each mixture; default: what the processed sources hold")
    holdout: float = Field(0.05, ge=0, lt=1, description="share of documents (by stable key) held out for evaluation")
    seed: int = Field(0, ge=0)

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("give each source a weight >= 0, at least one > 0")
        return v


class TokenizerSpec(_Strict):
    vocab_size: int = Field(4096, ge=300, description="byte-level BPE vocabulary, trained on the processed mixture")


class TrainSpec(_Strict):
    config: str = Field(..., description="training config (YAML); data paths and out_dir are set by repro")
    set: list[str] = Field(default_factory=list, description="--set overrides for the training config")


class EvalSpec(_Strict):
    """The evaluation sets every trained model is scored on after training (besides the training curve)."""

    neutral: str | None = Field("data/eval/neutral.jsonl.gz", description="JSON Lines (gzip) of text outside every input; null: none")
    per_source: bool = Field(True, description="also score the held-out documents of each source separately")
    max_tokens: int | None = Field(None, ge=1, description="score at most this many tokens of each set (the first ones); default: all")


class ReproSpec(_Strict):
    name: str
    description: str = ""
    out_dir: str = "out/repro"
    preset: str | None = Field(None, description="preset applied when --preset is not given")
    sources: dict[str, SourceSpec]
    mix: MixSpec
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    train: TrainSpec
    ablation: bool = Field(True, description="also train on the raw extracted text with the same budget")
    eval: EvalSpec = Field(default_factory=EvalSpec)
    seeds: int = Field(1, ge=1, description="train each side this many times (model init and data order seeds 0..N-1 added to the config's)")
    presets: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _names(cls, v: dict[str, SourceSpec]) -> dict[str, SourceSpec]:
        if not v:
            raise ValueError("list at least one source")
        return v


def _set_dotted(data: dict, parts: tuple, value: Any, origin: str, src: YamlSource, problems: list[str]) -> None:
    if len(parts) > 1 and parts[0] not in data and parts[0] not in ReproSpec.model_fields:
        problems.append(f"{origin}: unknown key {parts[0]!r}{suggest(parts[0], ReproSpec.model_fields)}")
        return
    dotted.put(data, parts, value)
    src.origins[tuple(parts)] = origin


def load_repro(path: str | os.PathLike, preset: str | None = None, sets: list[str] | None = None) -> tuple[ReproSpec, str | None, YamlSource]:
    """Read, apply the preset and ``--set`` overrides, validate. Returns (spec, preset used, source)."""
    src = load_yaml_file(path)
    if not isinstance(src.data, dict):
        raise ConfigError(f"{path}:1: an end-to-end recipe is a mapping (name, sources, mix, tokenizer, train, presets)")
    data = copy.deepcopy(src.data)
    presets = data.get("presets") or {}
    chosen = preset or data.get("preset")
    problems: list[str] = []
    if chosen is not None:
        if chosen not in presets:
            raise ConfigError(f"{path}: no preset {chosen!r}{suggest(str(chosen), presets)} (presets: {', '.join(presets) or 'none'})")
        for key, value in (presets[chosen] or {}).items():
            _set_dotted(data, tuple(key.split(".")), copy.deepcopy(value), f"preset {chosen}: {key}", src, problems)
    for item in dotted.parse_sets(sets or [], "mix.holdout=0.1", problems):
        _set_dotted(data, item.path, item.value, item.flag, src, problems)
    if problems:
        raise ConfigError(problems)
    try:
        spec = ReproSpec.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_pydantic_problems(src, (), e, ReproSpec.model_fields)) from None
    problems = []
    unknown = set(spec.mix.weights) - set(spec.sources)
    if unknown:
        problems.append(f"{src.where(('mix', 'weights'))}: weights for sources that are not listed: {', '.join(sorted(unknown))}")
    for name, s in spec.sources.items():
        if not Path(s.recipe).is_file():
            problems.append(f"{src.where(('sources', name, 'recipe'))}: no such recipe {s.recipe}")
    if spec.eval.neutral and not Path(spec.eval.neutral).is_file():
        problems.append(f"{src.where(('eval', 'neutral'))}: no such evaluation file {spec.eval.neutral} (scripts/make_neutral_eval.py writes it)")
    if not Path(spec.train.config).is_file():
        problems.append(f"{src.where(('train', 'config'))}: no such training config {spec.train.config}")
    if problems:
        raise ConfigError(problems)
    spec = spec.model_copy(update={"out_dir": expand_vars(spec.out_dir, spec.name)})
    return spec, chosen, src
