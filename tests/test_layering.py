"""The import graph of ``r1data/``: no cycles between modules, and library packages stay below the machinery.

The graph is read from the source (``ast``), so imports inside functions count as much as
module-level ones: a function-local import hides a cycle from Python's import system, not from a
reader who has to change one side of it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "r1data"

# Packages (or single modules) anyone may import: they know nothing of recipes, stages or runs.
LIBRARY = (
    "r1data.augment", "r1data.dedup", "r1data.export", "r1data.io", "r1data.quality", "r1data.sources", "r1data.stats",
    "r1data.tokenize", "r1data.train", "r1data.errors", "r1data.paths", "r1data.yamlsrc", "r1data.dotted",
)
# The machinery that turns recipes into runs; a library module importing one of these is upside down.
MACHINERY = ("r1data.stages", "r1data.run", "r1data.config", "r1data.repro")


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported r1data module: line of the first such import}}``, every import in the file."""
    mods = _modules()

    def owner(name: str) -> str:  # the deepest module of ours that ``name`` names (or lies in)
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # ``from pkg import mod`` imports the module ``pkg.mod``; ``from mod import name`` imports ``mod``
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names]
            for t in targets:
                if t == "r1data" or t.startswith("r1data."):
                    m = owner(t)
                    if m and m != name:
                        edges.setdefault(m, node.lineno)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (as a closed path of modules) per strongly connected component with more than one module."""
    return [_cycle_through(graph, comp) for comp in tangles(graph)]


def tangles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each module of one reaches every other)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _cycle_through(graph: dict[str, dict[str, int]], comp: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first within the component)."""
    start, members = comp[0], set(comp)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def _describe(graph, cycle: list[str]) -> str:
    mods = _modules()
    hops = []
    for a, b in zip(cycle, cycle[1:]):
        hops.append(f"{a} -> {b} ({mods[a].relative_to(ROOT.parent)}:{graph[a][b]})")
    return "\n    ".join(hops)


def test_graph_sees_function_local_imports():
    # repro/run.py imports the BPE trainer only inside the step that trains it
    assert "r1data.tokenize.bpe" in import_graph()["r1data.repro.run"]


def test_find_cycles_names_the_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles():
    graph = import_graph()
    found = tangles(graph)
    assert not found, "import cycles in r1data/ (a function-local import still counts):\n  " + "\n  ".join(
        f"{', '.join(comp)} import each other, e.g.\n    {_describe(graph, _cycle_through(graph, comp))}" for comp in found
    )


def test_library_does_not_import_machinery():
    graph = import_graph()
    mods = _modules()
    bad = [
        f"{m} imports {t} ({mods[m].relative_to(ROOT.parent)}:{line})"
        for m, edges in sorted(graph.items())
        if _within(m, LIBRARY)
        for t, line in sorted(edges.items())
        if _within(t, MACHINERY)
    ]
    assert not bad, "library modules must not import r1data.stages, run, config or repro:\n  " + "\n  ".join(bad)


def test_every_module_is_classified():
    # a new top-level package must be put on one side (library or machinery) on purpose
    unknown = [m for m in _modules() if m != "r1data" and not _within(m, LIBRARY + MACHINERY)]
    assert not unknown, f"put these in LIBRARY or MACHINERY of tests/test_layering.py: {unknown}"


def test_planner_names_no_executor():
    # local, slurm and ray register themselves (r1data/run/executors.py); the planner asks the registry
    graph = import_graph()
    for planner in ("r1data.run.pipeline", "r1data.run.executors"):
        named = {"r1data.run.local", "r1data.run.slurm", "r1data.run.ray"} & set(graph[planner])
        assert not named, f"{planner} imports {sorted(named)}; look executors up by name in r1data.run.executors"


def test_trainer_needs_no_pydantic():
    """The trainer validates its config with dataclasses (train/config.py), not pydantic, on purpose: it
    runs on a bare GPU image with torch and PyYAML only. Both dialects give the same one-line
    ``file:line key: message`` errors and share r1data.dotted's --set parser and suggestions."""
    import subprocess
    import sys

    code = (
        "import sys\nimport r1data.train.config, r1data.train.loop\n"
        "print(sorted(m for m in ('pydantic', 'r1data.config', 'r1data.stages', 'r1data.run', 'datatrove') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout
