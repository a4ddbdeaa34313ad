"""Where a plan runs: executors by name (``executor.type`` in a recipe, ``--executor`` on the CLI).

An executor is a function ``run(plan, *, overwrite, on_progress, on_event, on_line, wait) -> RunResult``
that claims the output folder (``r1data.run.output.prepare_output``), runs every phase of
``plan.phases()`` in order, and ends with ``finish_run`` (or, not waiting, ``RunResult.submitted``).
Its module registers it::

    from r1data.run.executors import register

    @register("local")
    def run_local(plan, *, overwrite=False, on_progress=None, on_event=None, on_line=None, wait=True): ...

The planner looks executors up here by name and never imports one: the built-in modules below are
imported on first use, so a local run never loads Slurm's or Ray's code.
"""

from __future__ import annotations

import importlib
from typing import Callable

from r1data.errors import ConfigError
from r1data.run.output import RunResult

Runner = Callable[..., RunResult]

# name -> module that registers it when imported (data, not imports: see tests/test_layering.py)
BUILTIN = {"local": "r1data.run.local", "slurm": "r1data.run.slurm", "ray": "r1data.run.ray"}
_RUNNERS: dict[str, Runner] = {}


def register(name: str) -> Callable[[Runner], Runner]:
    def deco(fn: Runner) -> Runner:
        _RUNNERS[name] = fn
        return fn

    return deco


def names() -> list[str]:
    return sorted(set(BUILTIN) | set(_RUNNERS))


def get(name: str) -> Runner:
    """The executor called ``name``; ``ConfigError`` naming the known ones otherwise."""
    if name not in _RUNNERS and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _RUNNERS:
        raise ConfigError(f"unknown executor {name!r}; known: {', '.join(names())}")
    return _RUNNERS[name]
