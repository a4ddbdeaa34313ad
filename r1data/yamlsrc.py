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


#: a recipe is a few hundred nodes; these bounds refuse hostile files (billion laughs, deep nesting)
MAX_DEPTH = 64
MAX_ALIAS_EXPANSION = 100_000  # values that aliases may add beyond the document's own


def _expanded_size(root: yaml.Node, file: str) -> None:
    """Refuse a document that is too deep, or too large once its aliases are expanded.

    Linear in the number of distinct nodes: an alias is the same node object as its anchor, so
    sizes are memoised by identity instead of walking every expansion (which is what made nine
    nested anchors take minutes and gigabytes)."""
    size: dict[int, int] = {}
    # iterative post-order walk; a node on the current path again is a recursive alias
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(child)] for child in _children(node))
            size[key] = total
            if total - len(size) > MAX_ALIAS_EXPANSION:
                raise ConfigError(
                    f"{file}:{node.start_mark.line + 1}: refused: YAML aliases expand to more than "
                    f"{MAX_ALIAS_EXPANSION:,} extra values (nested anchors, a 'billion laughs' file?)"
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(f"{file}:{node.start_mark.line + 1}: refused: a YAML alias refers to itself")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{file}:{node.start_mark.line + 1}: refused: nested deeper than {MAX_DEPTH} levels")
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) not in size:
                stack.append((child, depth + 1, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _walk(root: yaml.Node, lines: dict, problems: list[str], file: str) -> None:
    """Record the line of every key and list item; report duplicate keys.

    A node reached again through an alias is not walked again: its paths under the alias keep the
    line of the alias itself (``line_of`` falls back to the nearest ancestor)."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, YamlPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
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
            # pushed in reverse so that problems come out in document order
            for key_node, value_node in reversed(node.value):
                stack.append((value_node, path + (key_node.value,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
            for i in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[i], path + (i,)))


def load_yaml_text(text: str, file: str = "<string>") -> YamlSource:
    """Parse YAML text; raise ``ConfigError`` with ``file:line: problem`` on any syntax error."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, file)
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise ConfigError(f"{file}: refused: nested deeper than {MAX_DEPTH} levels") from None
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
        _walk(node, lines, problems, file)
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
