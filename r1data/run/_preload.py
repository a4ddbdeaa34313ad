"""Imported once in the fork server (see ``r1data.run.executor.preload_forkserver``): imports the
modules named in ``R1DATA_FORKSERVER_PRELOAD`` so pool workers fork with them already loaded.

A module that fails to import is skipped: the worker that needs it imports it (and reports the
error) itself, as it would without the preload."""

import importlib
import os

for _name in filter(None, os.environ.get("R1DATA_FORKSERVER_PRELOAD", "").split(",")):
    try:
        importlib.import_module(_name)
    except BaseException:  # noqa: BLE001 - a preload never stops the fork server
        pass
