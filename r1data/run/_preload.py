"""Imported once in the fork server (see ``r1data.run.executor.preload_forkserver``), so pool
workers fork with the work below already done.

First it makes the calls listed in ``R1DATA_FORKSERVER_CALLS`` (JSON ``[module, function, kwargs]``,
from the steps' ``Stage.preload()``): read-only state such as the decontamination index or the
heuristics' tokenizer, built once here instead of once per worker. They come first because they
may decide how a module is imported (the tokenizer imports spaCy without torch). Then it imports
the modules named in ``R1DATA_FORKSERVER_PRELOAD``. A call that fails or a module that fails to
import is skipped: the worker that needs it does it (and reports the error) itself, as it would
without the preload."""

import importlib
import json
import os

try:
    _calls = json.loads(os.environ.get("R1DATA_FORKSERVER_CALLS") or "[]")
except ValueError:
    _calls = []
for _call in _calls if isinstance(_calls, list) else ():
    try:
        _mod, _fn, _kwargs = _call
        getattr(importlib.import_module(_mod), _fn)(**_kwargs)
    except BaseException:  # noqa: BLE001 - a preload never stops the fork server
        pass

for _name in filter(None, os.environ.get("R1DATA_FORKSERVER_PRELOAD", "").split(",")):
    try:
        importlib.import_module(_name)
    except BaseException:  # noqa: BLE001 - a preload never stops the fork server
        pass
