"""Imported once in the fork server (see ``r1data.run.executor.preload_forkserver``): imports the
modules named in ``R1DATA_FORKSERVER_PRELOAD`` so pool workers fork with them already loaded.

Then it makes the calls listed in ``R1DATA_FORKSERVER_CALLS`` (JSON ``[module, function, kwargs]``,
from the steps' ``Stage.preload()``): read-only state such as the decontamination index, built once
here instead of once per worker. A module that fails to import or a call that fails is skipped: the
worker that needs it does it (and reports the error) itself, as it would without the preload."""

import importlib
import json
import os

for _name in filter(None, os.environ.get("R1DATA_FORKSERVER_PRELOAD", "").split(",")):
    try:
        if _name == "spacy":  # without torch (r1data.sources.textstats.import_spacy)
            from r1data.sources.textstats import import_spacy

            import_spacy()
        importlib.import_module(_name)
    except BaseException:  # noqa: BLE001 - a preload never stops the fork server
        pass

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
