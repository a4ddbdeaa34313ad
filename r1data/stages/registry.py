"""The single list of stages: what ``r1data stages`` prints and what YAML ``stage:`` names resolve to."""

from __future__ import annotations

import importlib

from r1data.dotted import suggest
from r1data.stages.base import Stage, check_stage_class

# Modules that define the built-in stages. Importing them registers their classes. They must not
# import heavy dependencies at module level (see Stage.setup).
BUILTIN_MODULES = [
    "r1data.stages.readers",
    "r1data.stages.extract",
    "r1data.stages.langid",
    "r1data.stages.heuristics",
    "r1data.stages.dedup",
    "r1data.stages.linededup",
    "r1data.stages.augment",
    "r1data.stages.domain",
    "r1data.stages.mathtext",
    "r1data.stages.books",
    "r1data.stages.code",
    "r1data.stages.quality",
    "r1data.stages.holdout",
    "r1data.stages.decontam",
    "r1data.stages.pii",
    "r1data.stages.urlfilter",
]

_REGISTRY: dict[str, type[Stage]] = {}
_loaded = False


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator: add a stage under its ``name``. Names are unique and never reused."""
    check_stage_class(cls)
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
        raise TypeError(f"stage name {cls.name!r} is taken by {other.__module__}.{other.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in BUILTIN_MODULES:
            importlib.import_module(mod)


def all_stages() -> dict[str, type[Stage]]:
    _load_builtins()
    return dict(sorted(_REGISTRY.items()))


def get_stage(name: str) -> type[Stage]:
    """The class registered as ``name``; ``KeyError`` with a suggestion otherwise."""
    stages = all_stages()
    if name not in stages:
        raise KeyError(f"unknown stage {name!r}{suggest(name, stages)}")
    return stages[name]
