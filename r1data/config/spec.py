"""A pipeline recipe, validated: every problem is found before any work and reported with its line.

A recipe is YAML::

    name: web
    inputs: [data/sample/web/*.warc.gz]      # files, globs, directories, s3://, gs://, https://
    stages:
      - stage: warc_reader                     # a registered stage; the first one reads the inputs
      - stage: gopher_quality                  # parameters sit beside ``stage``
        min_doc_words: 50
      - stage: language_filter
        name: english_only                     # optional label, for --set stages.english_only.x=y
        languages: [en]
    output: {path: out/web}
    executor: {type: local, tasks: 4, workers: 2}
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from r1data import dotted
from r1data.dotted import suggest
from r1data.config.knobs import KNOBS
from r1data.errors import ConfigError
from r1data.yamlsrc import YamlSource
from r1data.stages.base import ReaderStage, Stage, StageConfig
from r1data.stages.registry import all_stages

TOP_LEVEL_KEYS = ("name", "description", "policy", "inputs", "stages", "output", "executor")
RESERVED_STAGE_KEYS = ("stage", "name")


class OutputSpec(BaseModel):
    """Where and how shards are written."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="output directory; default out/<name>")
    row_group_rows: int = Field(2048, ge=1, le=1_000_000, description="rows per Parquet row group (at most)")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"


class ExecutorSpec(BaseModel):
    """Where the pipeline runs. ``tasks``: units of work; ``workers``: how many run at once."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field("local", description="an executor registered in r1data.run.executors: local, slurm, ray, or one a plugin registered")
    tasks: int | None = Field(None, ge=1, description="default: one per input file, at most 1024")
    workers: int | None = Field(None, ge=1, description="default: all cores (local)")
    memory_limit_gb: float | None = Field(
        None, gt=0, description="local: cap each worker's address space (RLIMIT_AS); a file that needs more is an input error (input_too_large), not an OOM kill"
    )
    # Slurm (see `r1data run --help`); ignored by the local executor.
    partition: str | None = None
    time: str = "04:00:00"
    cpus_per_task: int = Field(1, ge=1)
    mem_per_cpu_gb: float = Field(2.0, gt=0)
    qos: str | None = None
    account: str | None = None
    max_array_size: int | None = Field(None, ge=1)
    sbatch_args: dict[str, str] = Field(default_factory=dict)
    # Ray
    address: str | None = None

    @field_validator("type")
    @classmethod
    def _known_executor(cls, v: str) -> str:
        from r1data.dotted import suggest
        from r1data.run import executors

        known = executors.names()
        if v not in known:
            hint = suggest(v, known) or f"; known: {', '.join(known)}"
            raise ValueError(f"unknown executor {v!r}{hint}")
        return v


@dataclass
class StageSpec:
    stage: str  # registered name
    label: str  # unique within the pipeline
    cls: type[Stage]
    config: StageConfig
    path: tuple  # YAML path of the entry, for messages

    def build(self) -> Stage:
        return self.cls(self.config, label=self.label)


@dataclass
class Policy:
    """A named, versioned rule set from ``filters/NAME.yaml``: stage defaults and pinned models."""

    name: str
    path: str
    sha256: str
    description: str
    stages: dict[str, dict[str, Any]]
    models: dict[str, dict[str, Any]]


POLICY_KEYS = ("name", "description", "stages", "models")


def policy_dirs(recipe_dir: Path) -> list[Path]:
    """Where policies are looked up, first match wins: $R1DATA_FILTERS, RECIPE_DIR/../filters,
    RECIPE_DIR/filters, ./filters, the checkout's filters/."""
    from r1data.paths import REPO_ROOT

    dirs = [Path(d) for d in os.environ.get("R1DATA_FILTERS", "").split(os.pathsep) if d]
    return dirs + [recipe_dir.parent / "filters", recipe_dir / "filters", Path.cwd() / "filters", REPO_ROOT / "filters"]


def load_policy(name: Any, recipe_dir: Path) -> Policy:
    """Find ``<name>.yaml`` in the first of ``policy_dirs`` that has it (order: docs/layout.md)."""
    from r1data.yamlsrc import load_yaml_file
    from r1data.paths import sha256_file

    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"a policy is named by a string like web-v1 (got {name!r})")
    for d in policy_dirs(recipe_dir):
        f = d / f"{name}.yaml"
        if f.is_file():
            break
    else:
        known = sorted({p.stem for d in policy_dirs(recipe_dir) if d.is_dir() for p in d.glob("*.yaml")})
        raise ConfigError(f"no policy {name!r} in filters/{suggest(name, known)} (known: {', '.join(known) or 'none'})")
    src = load_yaml_file(f)
    data = src.data or {}
    problems = [f"{src.where((k,))}: unknown key{suggest(str(k), POLICY_KEYS)}" for k in data if k not in POLICY_KEYS]
    if data.get("name") != name:
        problems.append(f"{src.where(('name',))}: must be {name!r} (the file name)")
    stages = data.get("stages") or {}
    models = data.get("models") or {}
    if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
        problems.append(f"{src.where(('stages',))}: a mapping of stage name -> parameters")
        stages = {}
    if not isinstance(models, dict):
        problems.append(f"{src.where(('models',))}: a mapping of model name -> {{path, sha256}}")
        models = {}
    resolved_models = {}
    for mname, m in models.items():
        if not isinstance(m, dict) or "path" not in m:
            problems.append(f"{src.where(('models', mname))}: needs path (and sha256)")
            continue
        mp = Path(m["path"])
        mp = mp if mp.is_absolute() else (f.parent / mp).resolve()
        resolved_models[mname] = dict(m, path=str(mp))
    if problems:
        raise ConfigError(problems)
    return Policy(name=name, path=str(f), sha256=sha256_file(f), description=data.get("description", ""), stages=stages, models=resolved_models)


def resolve_pins(params: dict[str, Any], policies: list[Policy]) -> list[tuple[str, str]]:
    """Replace ``pin:NAME`` values by the pinned model's path, after checking its sha256."""
    from r1data.paths import sha256_file

    problems = []
    models = {}
    for pol in policies:
        models.update(pol.models)
    for key, value in list(params.items()):
        if not (isinstance(value, str) and value.startswith("pin:")):
            continue
        mname = value[4:]
        if mname not in models:
            problems.append((key, f"no pinned model {mname!r} in the recipe's policies{suggest(mname, models)}"))
            continue
        m = models[mname]
        path = Path(m["path"])
        if not path.exists():
            problems.append((key, f"pinned model {mname}: file not found: {path}"))
            continue
        want = m.get("sha256")
        if want and path.is_file() and sha256_file(path) != want:
            problems.append((key, f"pinned model {mname}: {path} does not match its sha256 pin {want[:12]}…"))
            continue
        params[key] = str(path)
    return problems


@dataclass
class PipelineSpec:
    name: str
    description: str
    policies: list[Policy]
    inputs: list[str]
    stages: list[StageSpec]
    output: OutputSpec
    executor: ExecutorSpec
    knobs: dict[str, Any]
    source: YamlSource
    knob_targets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def output_path(self) -> str:
        return self.output.path or os.path.join("out", self.name)

    def stage_columns(self) -> dict[str, str]:
        cols: dict[str, str] = {}
        for s in self.stages:
            cols.update(s.cls.columns_for(s.config))
        return cols

    def resolved(self) -> dict[str, Any]:
        """The recipe with every default filled in: what the manifest records and the hash covers."""
        return {
            "name": self.name,
            "description": self.description,
            "policies": [{"name": p.name, "path": p.path, "sha256": p.sha256} for p in self.policies],
            "inputs": list(self.inputs),
            "stages": [
                {"stage": s.stage, "version": s.cls.version, "name": s.label, **s.config.model_dump(mode="json")}
                for s in self.stages
            ],
            "output": self.output.model_dump(mode="json") | {"path": self.output_path},
            "executor": self.executor.model_dump(mode="json"),
            "knobs": dict(self.knobs),
        }

    def config_hash(self) -> str:
        """sha256 of what determines the output: everything but where and how wide the run is."""
        r = self.resolved()
        r["executor"] = {"tasks": r["executor"]["tasks"]}
        r.pop("description")
        blob = json.dumps(r, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------------------------------------
# overrides


@dataclass(init=False)
class Overrides:
    """What the command line changes in a recipe. Applied before validation, so errors point at the flag.

    Knobs (``r1data.config.knobs.KNOBS``) go in ``knobs`` or by name: ``Overrides(dedup_window=5)``."""

    sets: list[str]  # "stages.<name>.<param>=<value>", "output.path=..."
    inputs: list[str] | None
    output: str | None
    tasks: int | None
    workers: int | None
    executor: str | None
    executor_options: dict[str, Any]
    knobs: dict[str, Any]  # knob name -> value (None: not given)

    def __init__(self, sets=(), inputs=None, output=None, tasks=None, workers=None, executor=None, executor_options=None, knobs=None, **by_name):
        unknown = [k for k in by_name if k not in KNOBS]
        if unknown:
            raise TypeError(f"Overrides() got unexpected argument(s) {', '.join(unknown)} (knobs: {', '.join(KNOBS)})")
        self.sets, self.inputs, self.output, self.tasks, self.workers = list(sets or []), inputs, output, tasks, workers
        self.executor, self.executor_options = executor, dict(executor_options or {})
        self.knobs = {**(knobs or {}), **by_name}


def _stage_index(stages: list, key: str) -> int | None:
    if key.isdigit():
        i = int(key)
        return i if i < len(stages) else None
    for i, entry in enumerate(stages):
        if isinstance(entry, dict) and entry.get("name", entry.get("stage")) == key:
            return i
    for i, entry in enumerate(stages):  # a stage's registered name works when it is unambiguous
        if isinstance(entry, dict) and entry.get("stage") == key:
            return i
    return None


def apply_overrides(src: YamlSource, ov: Overrides) -> YamlSource:
    """Return a copy of ``src`` with the command line applied; remembers which flag set what."""
    data = copy.deepcopy(src.data) if isinstance(src.data, dict) else src.data
    out = YamlSource(data=data, file=src.file, lines=dict(src.lines), origins=dict(src.origins))
    if not isinstance(data, dict):
        return out
    problems = []

    def put(path: tuple, value: Any, flag: str) -> None:
        dotted.put(data, path, value)
        out.origins[path] = flag

    for item in dotted.parse_sets(ov.sets, "stages.gopher_quality.min_doc_words=100", problems):
        parts = item.path
        if parts[0] == "stages":
            stages = data.get("stages")
            if len(parts) != 3 or not isinstance(stages, list):
                problems.append(f"{item.flag}: expected stages.<name>.<param>=<value>")
                continue
            idx = _stage_index(stages, parts[1])
            if idx is None:
                names = [e.get("name", e.get("stage")) for e in stages if isinstance(e, dict)]
                problems.append(f"{item.flag}: no stage named {parts[1]!r}{suggest(parts[1], names)} (stages: {', '.join(map(str, names))})")
                continue
            put(("stages", idx, parts[2]), item.value, item.flag)
        elif parts[0] in TOP_LEVEL_KEYS:
            put(parts, item.value, item.flag)
        else:
            problems.append(f"{item.flag}: unknown key {parts[0]!r}{suggest(parts[0], TOP_LEVEL_KEYS)}")
    if ov.inputs:
        put(("inputs",), list(ov.inputs), "--input")
    if ov.output:
        put(("output", "path"), ov.output, "--output")
    if ov.tasks is not None:
        put(("executor", "tasks"), ov.tasks, "--tasks")
    if ov.workers is not None:
        put(("executor", "workers"), ov.workers, "--workers")
    if ov.executor is not None:
        put(("executor", "type"), ov.executor, "--executor")
    for k, v in ov.executor_options.items():
        if v is not None:
            put(("executor", k), v, f"--{k.replace('_', '-')}")
    if problems:
        raise ConfigError(problems)
    return out


def where(src: YamlSource, path: tuple) -> str:
    return src.where(path)


# ---------------------------------------------------------------------------------------------
# validation

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def strict_validate(model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    """Validate recipe values without coercion: ``"50"`` is not a number, ``1`` is not ``true``.

    Pydantic's strict mode, on the JSON form of the values: what YAML can write (lists for tuples,
    strings for paths, mappings for nested options) is accepted, an integer is a valid float, and
    a value of the wrong type is an error like any other. A value JSON cannot hold (a YAML date)
    is passed as its text."""
    return model.model_validate_json(json.dumps(params, default=str), strict=True)


def _type_hint(e: dict) -> str:
    """For a quoted number or boolean (``min_doc_words: "50"``): say what to write instead."""
    got = e.get("input")
    if not isinstance(got, str) or not e["type"].startswith(("int_", "float_", "bool_")):
        return ""
    try:
        number = float(got)
    except ValueError:
        number = None
    if number is not None and e["type"].startswith("int_"):
        whole = f", e.g. {int(number)}" if number.is_integer() else ""
        return f" (got the text {got!r}: write a whole number without quotes{whole})"
    if number is not None:  # YAML 1.1 reads 1e3 as text: an exponent needs a dot (1.0e3)
        quirk = "; YAML reads an exponent without a dot as text" if "e" in got.lower() and "." not in got else ""
        return f" (got the text {got!r}: write a number without quotes, e.g. {number!r}{quirk})"
    if got.lower() in ("true", "false", "yes", "no", "on", "off"):
        return f" (got the text {got!r}: write true or false without quotes)"
    return ""


def _pydantic_problems(src: YamlSource, base: tuple, err: ValidationError, fields) -> list[str]:
    out = []
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        path = base + loc
        if e["type"] == "extra_forbidden":
            key = str(loc[-1])
            msg = f"{where(src, path)}: unknown parameter{suggest(key, fields)}"
        elif e["type"] == "missing":
            msg = f"{where(src, path)}: required parameter is missing"
        elif e["type"] == "value_error":  # our own validators' words, as written
            msg = f"{where(src, path)}: {e['ctx']['error']}"
        else:
            got = e.get("input")
            got_s = _type_hint(e) or (f" (got {got!r})" if not isinstance(got, (dict, list)) else "")
            msg = f"{where(src, path)}: {e['msg'].lower()}{got_s}"
        out.append((src.line_of(path) or 0, msg))
    return [m for _, m in sorted(out, key=lambda x: x[0])]


def expand_vars(text: str, name: str = "") -> str:
    """``${stdlib}``, ``${purelib}``, ``${env:VAR}``, ``${name}`` and ``~`` in paths."""

    def sub(m: re.Match) -> str:
        key = m.group(1)
        if key == "stdlib":
            return sysconfig.get_paths()["stdlib"]
        if key == "purelib":
            return sysconfig.get_paths()["purelib"]
        if key == "name":
            return name
        if key.startswith("env:"):
            var = key[4:]
            if var not in os.environ:
                raise ConfigError(f"${{{key}}}: environment variable {var} is not set")
            return os.environ[var]
        raise ConfigError(f"${{{key}}}: unknown variable (known: stdlib, purelib, name, env:VAR)")

    return os.path.expanduser(re.sub(r"\$\{([^}]+)\}", sub, text))


def build_spec(src: YamlSource, knobs: dict[str, Any] | None = None) -> PipelineSpec:
    """Validate a (possibly overridden) recipe. Raises one ``ConfigError`` listing every problem.

    Section by section (each adds its problems and goes on): top-level keys, name, inputs, output,
    executor, policies, stages, the columns stages need, and where the knobs apply."""
    knobs = {k: v for k, v in (knobs or {}).items() if v is not None}
    data = src.data
    if not isinstance(data, dict):
        raise ConfigError(f"{src.file}:1: a recipe must be a mapping with name, inputs, stages, output, executor")
    problems: list[str] = []
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(f"{where(src, (key,))}: unknown key{suggest(str(key), TOP_LEVEL_KEYS)}")
    name = _spec_name(src, problems)
    inputs = _spec_inputs(src, name, problems)
    output = _spec_output(src, name, problems)
    executor = _spec_section(src, "executor", ExecutorSpec, problems)
    policies = _spec_policies(src, problems)
    registry = all_stages()
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        problems.append(f"{where(src, ('stages',))}: required: a list of stages, the first one a reader")
        raw_stages = []
    stages = _spec_stages(src, raw_stages, policies, knobs, registry, problems)
    _check_columns(src, stages, registry, problems)
    knob_targets = _knob_targets(src, stages, knobs, registry, problems) if raw_stages else {k: [] for k in knobs}
    if problems:
        raise ConfigError(problems)
    return PipelineSpec(
        name=name,
        description=data.get("description") or "",
        policies=policies,
        inputs=inputs,
        stages=stages,
        output=output,
        executor=executor,
        knobs=knobs,
        source=src,
        knob_targets=knob_targets,
    )


def _spec_name(src: YamlSource, problems: list[str]) -> str:
    name = src.data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{where(src, ('name',))}: required: a name of letters, digits, '_', '.', '-' (got {name!r})")
        return "pipeline"
    return name


def _spec_inputs(src: YamlSource, name: str, problems: list[str]) -> list[str]:
    raw_inputs = src.data.get("inputs")
    if raw_inputs is None:
        problems.append(f"{src.file}: inputs: required (a path, glob, directory or URL; or pass --input)")
        return []
    raw_list = raw_inputs if isinstance(raw_inputs, list) else [raw_inputs]
    inputs = []
    for i, item in enumerate(raw_list):
        p = ("inputs", i) if isinstance(raw_inputs, list) else ("inputs",)
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{where(src, p)}: must be a path, glob, directory or URL string (got {item!r})")
            continue
        try:
            inputs.append(expand_vars(item, name))
        except ConfigError as e:
            problems.append(f"{where(src, p)}: {e}")
    if not raw_list:
        problems.append(f"{where(src, ('inputs',))}: must list at least one path")
    return inputs


def _spec_section(src: YamlSource, key: str, model: type[BaseModel], problems: list[str]):
    raw = src.data.get(key) or {}
    if not isinstance(raw, dict):
        problems.append(f"{where(src, (key,))}: must be a mapping")
        return model()
    try:
        return strict_validate(model, raw)
    except ValidationError as e:
        problems.extend(_pydantic_problems(src, (key,), e, model.model_fields))
        return model()


def _spec_output(src: YamlSource, name: str, problems: list[str]) -> OutputSpec:
    output = _spec_section(src, "output", OutputSpec, problems)
    if output.path:
        try:
            output = output.model_copy(update={"path": expand_vars(output.path, name)})
        except ConfigError as e:
            problems.append(f"{where(src, ('output', 'path'))}: {e}")
        if "://" in (output.path or ""):
            problems.append(f"{where(src, ('output', 'path'))}: remote output is not supported yet; write to a local or shared filesystem path")
    return output


def _spec_policies(src: YamlSource, problems: list[str]) -> list[Policy]:
    policies: list[Policy] = []
    raw_policy = src.data.get("policy")
    if raw_policy is None:
        return policies
    for i, pname in enumerate(raw_policy if isinstance(raw_policy, list) else [raw_policy]):
        p = ("policy", i) if isinstance(raw_policy, list) else ("policy",)
        try:
            policies.append(load_policy(pname, Path(src.file).resolve().parent))
        except ConfigError as e:
            problems.extend(f"{where(src, p)}: {line}" for line in e.problems)
    return policies


def _spec_stages(src, raw_stages: list, policies: list[Policy], knobs: dict[str, Any], registry, problems: list[str]) -> list[StageSpec]:
    stages: list[StageSpec] = []
    labels: dict[str, int] = {}
    for i, entry in enumerate(raw_stages):
        s = _spec_stage(src, i, entry, policies, knobs, registry, labels, problems)
        if s is not None:
            stages.append(s)
    return stages


def _spec_stage(src, i: int, entry, policies: list[Policy], knobs: dict[str, Any], registry, labels: dict[str, int], problems: list[str]) -> StageSpec | None:
    """One ``stages[i]`` entry: a registered stage, its label, and its parameters (policy defaults,
    then the recipe's values, then knobs) validated."""
    p = ("stages", i)
    if not isinstance(entry, dict) or "stage" not in entry:
        problems.append(f"{where(src, p)}: each stage is a mapping with a 'stage:' key naming a registered stage")
        return None
    sname = entry["stage"]
    pinned = None
    if isinstance(sname, str) and "@" in sname:
        sname, _, pin = sname.partition("@")
        pinned = int(pin) if pin.isdigit() else pin
    if not isinstance(sname, str) or sname not in registry:
        problems.append(f"{where(src, p + ('stage',))}: unknown stage {sname!r}{suggest(str(sname), registry)} (see `r1data stages`)")
        return None
    cls = registry[sname]
    if pinned is not None and pinned != cls.version:
        problems.append(f"{where(src, p + ('stage',))}: {sname}@{pinned} is pinned but this r1data has {sname}@{cls.version}")
    label = entry.get("name", sname)
    if not isinstance(label, str) or not _NAME.match(label):
        problems.append(f"{where(src, p + ('name',))}: stage name must be letters, digits, '_', '.', '-'")
        label = sname
    if label in labels:
        problems.append(f"{where(src, p + ('name',))}: stage name {label!r} is used twice (also stages[{labels[label]}]); give one a different `name:`")
    labels[label] = i
    if i == 0 and not issubclass(cls, ReaderStage):
        problems.append(f"{where(src, p + ('stage',))}: the first stage must be a reader (e.g. warc_reader, jsonl_reader), got {sname}")
    if i > 0 and issubclass(cls, ReaderStage):
        problems.append(f"{where(src, p + ('stage',))}: only the first stage may be a reader")
    params = {}
    for pol in policies:  # rule-set defaults, then the recipe's own values, then knobs
        params.update(pol.stages.get(label, pol.stages.get(sname, {})))
    params.update({k: v for k, v in entry.items() if k not in RESERVED_STAGE_KEYS})
    pin_problems = resolve_pins(params, policies)
    if pin_problems:
        problems.extend(f"{where(src, p + (k,))}: {msg}" for k, msg in pin_problems)
        return None
    for knob, value in knobs.items():
        if knob in cls.knobs:
            params[cls.knobs[knob]] = value
    try:
        config = strict_validate(cls.Config, params)
    except ValidationError as e:
        problems.extend(_pydantic_problems(src, p, e, cls.Config.model_fields))
        return None
    for param, msg in cls.check_config(config):
        problems.append(f"{where(src, p + (param,))}: {msg}")
    return StageSpec(stage=sname, label=label, cls=cls, config=config, path=p)


def _check_columns(src: YamlSource, stages: list[StageSpec], registry, problems: list[str]) -> None:
    """Every column a stage needs is added by a stage before it."""
    provided: set[str] = set()
    for s in stages:
        missing = [c for c in s.cls.needs_for(s.config) if c not in provided]
        if missing:
            makers = sorted(n for n, c in registry.items() if set(missing) & set(c.columns))
            problems.append(
                f"{where(src, s.path + ('stage',))}: {s.stage} needs column(s) {', '.join(missing)} from an earlier stage"
                + (f" (add {' or '.join(makers)} before it)" if makers else "")
            )
        provided.update(s.cls.columns_for(s.config))


def _knob_targets(src: YamlSource, stages: list[StageSpec], knobs: dict[str, Any], registry, problems: list[str]) -> dict[str, list[str]]:
    """knob -> labels of the stages it sets; a knob no stage uses is a problem (never silently ignored)."""
    knob_targets: dict[str, list[str]] = {}
    for knob, value in knobs.items():
        targets = [s.label for s in stages if knob in s.cls.knobs]
        knob_targets[knob] = targets
        if not targets:
            users = sorted(n for n, c in registry.items() if knob in c.knobs)
            hint = f"; stages that use it: {', '.join(users)}" if users else "; no stage in this r1data uses it yet"
            problems.append(f"{KNOBS[knob].flag} {value}: {src.file} has no stage that uses it{hint}")
    return knob_targets
