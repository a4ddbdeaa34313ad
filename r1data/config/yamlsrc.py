"""Load YAML while remembering the line of every key, so errors can say ``web.yaml:14 stages[2].x``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1data.errors import ConfigError

YamlPath = tuple  # of str (mapping keys) and int (list indices)


def format_path(path: YamlPath) -> str:
    """``("stages", 2, "min_doc_words")`` -> ``stages[2].min_doc_words``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


@dataclass
class YamlSource:
    """A parsed YAML document plus where each of its nodes came from."""

    data: Any
    file: str
    lines: dict[YamlPath, int] = field(default_factory=dict)
    #: paths set from the command line -> the flag that set them (``--set stages.x.y=1``)
    origins: dict[YamlPath, str] = field(default_factory=dict)

    def line_of(self, path: YamlPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def where(self, path: YamlPath) -> str:
        """``file:line path`` (or ``--flag: path`` for values set on the command line) for messages."""
        p = tuple(path)
        while p:
            if p in self.origins:
                return f"{self.origins[p]}: {format_path(path)}"
            p = p[:-1]
        line = self.line_of(path)
        loc = f"{self.file}:{line}" if line else self.file
        return f"{loc} {format_path(path)}"


def _walk(node: yaml.Node, path: YamlPath, lines: dict, problems: list[str], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    f"{file}:{line} {format_path(path + (key,))}: duplicate key (first defined on line {seen[key]})"
                )
            seen[key] = line
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines, problems, file)


def load_yaml_text(text: str, file: str = "<string>") -> YamlSource:
    """Parse YAML text; raise ``ConfigError`` with ``file:line: problem`` on any syntax error."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark else ""
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError(f"{file}{line}: invalid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: invalid YAML: {e}") from None
    finally:
        loader.dispose()
    lines: dict[YamlPath, int] = {}
    problems: list[str] = []
    if node is not None:
        _walk(node, (), lines, problems, file)
    if problems:
        raise ConfigError(problems)
    return YamlSource(data=data, file=file, lines=lines)


def load_yaml_file(path: str | Path) -> YamlSource:
    """Read and parse a YAML file; a missing or unreadable file is a ``ConfigError`` naming it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    return load_yaml_text(text, file=str(path))
