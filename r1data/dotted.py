"""``--set KEY=VALUE`` overrides and "did you mean" hints, one behaviour for ``run``, ``train`` and ``repro``.

A ``--set`` item is split at its first ``=``. The key is a dotted path (``model.moe.top_k``; empty
segments and surrounding spaces are ignored); the value is read as YAML (``2`` -> int,
``[a, b]`` -> list, ``null`` -> None), falls back to the text itself when it is not valid YAML, and
is ``""`` when empty. Every malformed item is reported, together, before anything is applied.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from r1data.errors import ConfigError


def suggest(name: str, options: Iterable) -> str:
    """``"; did you mean X?"`` for the closest of ``options``, or ``""``."""
    close = difflib.get_close_matches(name, [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


@dataclass(frozen=True)
class SetItem:
    flag: str  # "--set KEY=VALUE" as given, for messages and for remembering what set a value
    path: tuple[str, ...]
    value: Any


def parse_value(text: str) -> Any:
    if not text.strip():
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_sets(items: Iterable[str], example: str, problems: list[str] | None = None) -> list[SetItem]:
    """Parse every item; ``ConfigError`` listing each malformed one (``example``: a valid KEY=VALUE),
    or, given ``problems``, add them there (the caller reports them with its own)."""
    out, bad = [], []
    for item in items:
        key, eq, text = item.partition("=")
        path = tuple(p.strip() for p in key.split(".") if p.strip())
        if not eq or not path:
            bad.append(f"--set {item}: expected KEY=VALUE, e.g. {example}")
            continue
        out.append(SetItem(f"--set {item}", path, parse_value(text)))
    if bad and problems is None:
        raise ConfigError(bad)
    (problems if problems is not None else []).extend(bad)
    return out


def put(data: dict, path: tuple, value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value``, making the mappings on the way.

    An int part indexes a list (``("stages", 2, "x")``); anything else in the way that is not a
    mapping is replaced by one."""
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = node[part]
            continue
        nxt = node.get(part)
        wanted = list if isinstance(path[i + 1], int) else dict
        if not isinstance(nxt, wanted):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value
