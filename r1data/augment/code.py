"""Semantics-preserving rewrites of Python source, each verified by compiling and comparing ASTs.

    >>> rw = rewrite_python(src, rename=True, docstrings="remove", comments="keep", layout="keep", seed=1)
    >>> rw.source, rw.renamed          # the variant and {scope: {old: new}}
    >>> verify_python(src, rw.source, docstrings_removed=True)   # None, or a drop reason

What is renamed: names *local to a function* (assigned there, loop and ``with`` targets,
``except ... as`` names, comprehension variables, walrus targets, ``match`` captures), found
with the interpreter's own scope analysis (``symtable``) and renamed together with every use in
nested functions that close over them (``nonlocal`` included). Never renamed: parameters
(callers may pass them by keyword), globals and ``global``/``nonlocal`` declarations of them,
builtins, attributes, keyword-argument names, imported names, names of nested functions and
classes (``__name__``), class-body names, ``__dunder__`` and ``__private`` names, and every name of
a function that calls ``locals()``, ``vars()``, ``eval``, ``exec``, ``dir()`` or reaches for frames
(``sys._getframe``, ``inspect.currentframe``) — those see local names as strings.

Layouts: ``keep`` edits the original text in place (positions from the AST and the tokenizer),
so formatting and comments survive; ``unparse`` re-formats through ``ast.unparse`` (which drops
comments). ``verify_python`` compiles the variant and walks both ASTs in parallel: every node
and field must be equal except identifiers of renamed locals, which must map one-to-one within
their scope; removed docstrings are normalised away on both sides.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import random
import symtable
import tokenize
from dataclasses import dataclass, field

#: calls that read local variables by name: a function using one is never renamed
DYNAMIC_CALLS = {"locals", "vars", "eval", "exec", "dir", "globals", "_getframe", "currentframe", "getframeinfo", "stack"}
_BUILTINS = set(dir(builtins))
_SOFT_KEYWORDS = {"match", "case", "_", "type"}
#: plausible local names; a variant picks from these before falling back to name_N
NAME_POOL = (
    "value", "item", "result", "total", "count", "index", "data", "entry", "key", "elem", "node", "acc", "tmp",
    "buf", "current", "other", "out", "res", "obj", "part", "piece", "step", "chunk", "row", "col", "pos", "size",
    "width", "length", "text", "line", "word", "name", "label", "flag", "state", "cache", "seen", "pending",
    "found", "target", "source", "head", "tail", "left", "right", "low", "high", "mid", "first", "last", "prev",
    "nxt", "counter", "amount", "score", "limit", "offset", "delta", "span", "bucket", "group", "pair", "record",
    "field", "option", "setting", "handle", "stream", "frame", "block", "token", "symbol", "entry_", "sample",
)


class CodeError(ValueError):
    """The source cannot be rewritten (does not parse, too dynamic, ...); ``reason`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class Rewrite:
    source: str
    renamed: dict[str, dict[str, str]] = field(default_factory=dict)  # scope qualname -> {old: new}
    docstrings_removed: int = 0
    comments_removed: int = 0
    skipped_scopes: list[str] = field(default_factory=list)  # functions left alone, with why


# --------------------------------------------------------------------------------------------
# scope analysis: the interpreter's symbol tables, matched to AST nodes in traversal order


def _tables(src: str) -> list[symtable.SymbolTable]:
    """Symbol tables in pre-order, without the blocks ``from __future__ import annotations`` adds."""
    out = []

    def walk(t):
        if t.get_name() == "_annotation" or t.get_type() == "annotation":
            return
        out.append(t)
        for c in t.get_children():
            walk(c)

    walk(symtable.symtable(src, "<src>", "exec"))
    return out


@dataclass
class _Occurrence:
    node: ast.AST
    field: str  # "id", "name", "arg", "rest" or "names[i]"
    name: str
    scope: int  # index (pre-order) of the scope that defines the name; 0 is the module


@dataclass
class _Scopes:
    tables: list[symtable.SymbolTable]
    nodes: list[ast.AST]  # the AST node of each table (the Module for index 0)
    parent: list[int]
    occurrences: list[_Occurrence]
    #: scopes that (or whose nested scopes) read names dynamically: locals(), eval, frames
    dynamic: set[int] = field(default_factory=set)


_SCOPE_NAMES = {ast.ListComp: "listcomp", ast.SetComp: "setcomp", ast.GeneratorExp: "genexpr", ast.DictComp: "dictcomp", ast.Lambda: "lambda"}


def analyze_scopes(src: str, tree: ast.Module) -> _Scopes:
    """Every identifier that names a variable, resolved to its defining scope.

    Scopes are visited in the order CPython's symbol table builder visits them, so the i-th scope
    entered here is the i-th symbol table; a disagreement raises ``CodeError(scope_mismatch)``
    instead of guessing."""
    tables = _tables(src)
    nodes: list[ast.AST] = [tree]
    parent: list[int] = [-1]
    occ: list[_Occurrence] = []
    dynamic: set[int] = set()

    def defining(scope: int, name: str) -> int:
        tab = tables[scope]
        try:
            sym = tab.lookup(name)
        except KeyError:
            return 0
        if sym.is_global():
            return 0
        if sym.is_free() or sym.is_nonlocal():
            p = parent[scope]
            while p > 0:
                pt = tables[p]
                if pt.get_type() == "function":
                    try:
                        ps = pt.lookup(name)
                    except KeyError:
                        ps = None
                    if ps is not None and ps.is_local() and not ps.is_free() and not ps.is_nonlocal():
                        return p
                p = parent[p]
            return 0
        return scope if tab.get_type() in ("function", "class") else 0

    class V(ast.NodeVisitor):
        def __init__(self):
            self.stack = [0]

        def add(self, node, fld, name):
            occ.append(_Occurrence(node, fld, name, defining(self.stack[-1], name)))

        def enter(self, node, name):
            i = len(nodes)
            if i >= len(tables) or tables[i].get_name() != name:
                got = tables[i].get_name() if i < len(tables) else "nothing"
                raise CodeError("scope_mismatch", f"line {getattr(node, 'lineno', '?')}: expected scope {name}, symtable has {got}")
            nodes.append(node)
            parent.append(self.stack[-1])
            self.stack.append(i)

        def leave(self):
            self.stack.pop()

        def _args_outside(self, args):
            for d in args.defaults:
                self.visit(d)
            for d in args.kw_defaults:
                if d is not None:
                    self.visit(d)

        def _annotations(self, args, returns):
            for a in args.posonlyargs + args.args + ([args.vararg] if args.vararg else []) + args.kwonlyargs + ([args.kwarg] if args.kwarg else []):
                if a.annotation is not None:
                    self.visit(a.annotation)
            if returns is not None:
                self.visit(returns)

        def _params(self, args):
            for a in args.posonlyargs + args.args + args.kwonlyargs + [x for x in (args.vararg, args.kwarg) if x]:
                self.add(a, "arg", a.arg)

        def visit_FunctionDef(self, node):
            # CPython's order: defaults, kw defaults, annotations, decorators, then the body
            self._args_outside(node.args)
            self._annotations(node.args, node.returns)
            for d in node.decorator_list:
                self.visit(d)
            self.add(node, "name", node.name)
            self.enter(node, node.name)
            self._params(node.args)
            for b in node.body:
                self.visit(b)
            self.leave()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Lambda(self, node):
            self._args_outside(node.args)
            self.enter(node, "lambda")
            self._params(node.args)
            self.visit(node.body)
            self.leave()

        def visit_ClassDef(self, node):
            for b in node.bases:
                self.visit(b)
            for k in node.keywords:
                self.visit(k.value)
            for d in node.decorator_list:
                self.visit(d)
            self.add(node, "name", node.name)
            self.enter(node, node.name)
            for b in node.body:
                self.visit(b)
            self.leave()

        def _comp(self, node, elts):
            gens = node.generators
            self.visit(gens[0].iter)  # evaluated in the enclosing scope
            self.enter(node, _SCOPE_NAMES[type(node)])
            for i, g in enumerate(gens):
                self.visit(g.target)
                if i:
                    self.visit(g.iter)
                for c in g.ifs:
                    self.visit(c)
            for e in elts:
                self.visit(e)
            self.leave()

        def visit_ListComp(self, node):
            self._comp(node, [node.elt])

        visit_SetComp = visit_GeneratorExp = visit_ListComp

        def visit_DictComp(self, node):
            self._comp(node, [node.key, node.value])

        def visit_Name(self, node):
            self.add(node, "id", node.id)

        def visit_Call(self, node):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in DYNAMIC_CALLS:  # every enclosing function may have its names read as strings
                dynamic.update(self.stack[1:])
            self.generic_visit(node)

        def visit_ExceptHandler(self, node):
            if node.type:
                self.visit(node.type)
            if node.name:
                self.add(node, "name", node.name)
            for b in node.body:
                self.visit(b)

        def visit_Global(self, node):
            for i, n in enumerate(node.names):
                self.add(node, f"names[{i}]", n)

        visit_Nonlocal = visit_Global

        def visit_MatchAs(self, node):
            if node.pattern:
                self.visit(node.pattern)
            if node.name:
                self.add(node, "name", node.name)

        def visit_MatchStar(self, node):
            if node.name:
                self.add(node, "name", node.name)

        def visit_MatchMapping(self, node):
            for k in node.keys:
                self.visit(k)
            for p in node.patterns:
                self.visit(p)
            if node.rest:
                self.add(node, "rest", node.rest)

    V().visit(tree)
    if len(nodes) != len(tables):
        raise CodeError("scope_mismatch", f"{len(nodes)} scopes in the AST, {len(tables)} in the symbol table")
    return _Scopes(tables, nodes, parent, occ, dynamic)


@dataclass
class _Plan:
    renames: dict[int, dict[str, str]]  # scope index -> {old: new}
    skipped: list[str]


def renameable(scopes: _Scopes) -> dict[int, list[str]]:
    """Per function scope, the local names a rewrite may rename (see the module docstring)."""
    out: dict[int, list[str]] = {}
    blocked: set[int] = set()
    for i, tab in enumerate(scopes.tables):
        if scopes.parent[i] in blocked or i in scopes.dynamic:
            blocked.add(i)
            continue
        if tab.get_type() != "function":
            continue
        params = set(tab.get_parameters())
        names = []
        for sym in tab.get_symbols():
            n = sym.get_name()
            if not sym.is_local() or sym.is_parameter() or sym.is_imported() or sym.is_global() or sym.is_nonlocal():
                continue
            if n in params or "__" in n or n.startswith(".") or sym.is_namespace():
                continue  # a nested def/class keeps its name: renaming would change __name__
            names.append(n)
        if names:
            out[i] = sorted(names)
    return out


def debug_fstring_names(tree: ast.Module) -> set[str]:
    """Names inside self-documenting f-string fields (``f"{total=}"`` prints the text ``total=``)."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.JoinedStr):
            for prev, cur in zip(n.values, n.values[1:]):
                if isinstance(cur, ast.FormattedValue) and isinstance(prev, ast.Constant) and str(prev.value).rstrip().endswith("="):
                    out.update(x.id for x in ast.walk(cur.value) if isinstance(x, ast.Name))
    return out


def plan_renames(
    scopes: _Scopes, tree: ast.Module, rng: random.Random, fraction: float = 1.0, keep: set[str] = frozenset()
) -> _Plan:
    """Choose a fresh name for each renameable local (but those in ``keep``); fresh names clash
    with no identifier of the file."""
    taken = _all_identifiers(tree) | _BUILTINS | set(keyword.kwlist) | _SOFT_KEYWORDS
    pool = list(NAME_POOL)
    rng.shuffle(pool)
    counter = 0

    def fresh() -> str:
        nonlocal counter
        while pool:
            cand = pool.pop()
            if cand not in taken:
                taken.add(cand)
                return cand
        while True:
            counter += 1
            cand = f"name_{counter}"
            if cand not in taken:
                taken.add(cand)
                return cand

    renames: dict[int, dict[str, str]] = {}
    for i, names in renameable(scopes).items():
        chosen = {n: fresh() for n in names if n not in keep and (fraction >= 1.0 or rng.random() < fraction)}
        if chosen:
            renames[i] = chosen
    skipped = [
        f"{scopes.tables[i].get_name()} (line {scopes.tables[i].get_lineno()}): reads names dynamically"
        for i in sorted(scopes.dynamic)
    ]
    return _Plan(renames, skipped)


def _all_identifiers(tree: ast.Module) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        for attr in ("id", "name", "attr", "arg", "asname", "rest"):
            v = getattr(n, attr, None)
            if isinstance(v, str):
                out.add(v)
        if isinstance(n, (ast.Global, ast.Nonlocal)):
            out.update(n.names)
        if isinstance(n, ast.alias):
            out.update(n.name.split("."))
    return out


# --------------------------------------------------------------------------------------------
# rewriting


def _docstring_nodes(tree: ast.AST) -> list[tuple[ast.Expr, bool]]:
    """Docstring statements, each with whether it is the only statement of a def/class body."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                out.append((first, len(n.body) == 1 and not isinstance(n, ast.Module)))
    return out


def strip_docstrings(tree: ast.AST) -> int:
    """Remove docstrings from the AST in place (a body left empty gets ``pass``); returns how many."""
    n = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or ([ast.Pass()] if not isinstance(node, ast.Module) else [])
                n += 1
    return n


def _line_offsets(src: str) -> list[int]:
    offs, pos = [0], 0
    for line in src.splitlines(keepends=True):
        pos += len(line)
        offs.append(pos)
    return offs


def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))


def rewrite_python(
    src: str,
    *,
    rename: bool = True,
    rename_fraction: float = 1.0,
    docstrings: str = "keep",
    comments: str = "keep",
    layout: str = "keep",
    seed: int = 0,
) -> Rewrite:
    """Rewrite ``src``; raises ``CodeError`` (``syntax_error``, ...) when it cannot be rewritten."""
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError) as e:
        raise CodeError("syntax_error", f"{type(e).__name__}: {e}") from None
    rng = random.Random(seed)
    scopes = analyze_scopes(src, tree)
    # in-place edits would change the text a self-documenting f-string prints; unparse rewrites it
    keep = debug_fstring_names(tree) if layout == "keep" else set()
    plan = plan_renames(scopes, tree, rng, rename_fraction, keep) if rename else _Plan({}, [])
    occ = scopes.occurrences
    mapping = {(o.scope, o.name): plan.renames[o.scope][o.name] for o in occ if o.name in plan.renames.get(o.scope, {})}
    renamed = {f"{scopes.tables[i].get_name()}@{scopes.tables[i].get_lineno()}": v for i, v in plan.renames.items()}
    if layout == "unparse":
        for o in occ:
            new = mapping.get((o.scope, o.name))
            if new is None:
                continue
            if o.field.startswith("names["):
                o.node.names[int(o.field[6:-1])] = new
            else:
                setattr(o.node, o.field, new)
        nd = strip_docstrings(tree) if docstrings == "remove" else 0
        try:
            out = ast.unparse(tree) + "\n"
        except Exception as e:  # unparse has gaps on exotic syntax; the document passes through
            raise CodeError("unparse_failed", f"{type(e).__name__}: {e}") from None
        ncom = sum(1 for t in _tokens(src) if t.type == tokenize.COMMENT)
        return Rewrite(out, renamed, nd, ncom, plan.skipped)
    # layout keep: edit the text at positions
    lines = src.splitlines(keepends=True)
    offs = _line_offsets(src)
    edits: list[tuple[int, int, str]] = []
    toks = _tokens(src)
    for o in occ:
        new = mapping.get((o.scope, o.name))
        if new is None:
            continue
        n = o.node
        if o.field == "id" or o.field == "arg":
            ln = lines[n.lineno - 1]
            a = offs[n.lineno - 1] + _char_col(ln, n.col_offset)
            if src[a : a + len(o.name)] != o.name:
                raise CodeError("rewrite_failed", f"line {n.lineno}: expected {o.name!r}")
            edits.append((a, a + len(o.name), new))
        else:
            # except ... as NAME, global/nonlocal NAME, match captures: the NAME token inside the node
            start = (n.lineno, n.col_offset)
            if isinstance(n, ast.ExceptHandler):
                end = (n.body[0].lineno, n.body[0].col_offset)
            else:
                end = (n.end_lineno, n.end_col_offset)
            hits = [t for t in toks if t.type == tokenize.NAME and t.string == o.name and _tok_in(t, start, end, lines)]
            if isinstance(n, (ast.Global, ast.Nonlocal)):
                hits = hits[:]  # every listed name is its own occurrence; pick by order
                idx = [i for i, x in enumerate(n.names) if x == o.name].index(int(o.field[6:-1])) if o.field.startswith("names[") else 0
                hits = hits[idx : idx + 1]
            elif isinstance(n, ast.ExceptHandler):
                hits = hits[-1:]  # "except E as NAME:": the last NAME before the body
            else:
                hits = hits[-1:]  # "pattern as NAME", "*NAME", "**NAME"
            if not hits:
                raise CodeError("rewrite_failed", f"line {n.lineno}: no token for {o.name!r}")
            t = hits[0]
            a = offs[t.start[0] - 1] + t.start[1]
            edits.append((a, a + len(o.name), new))
    ndoc = 0
    if docstrings == "remove":
        for d, only in _docstring_nodes(tree):
            a = offs[d.lineno - 1] + _char_col(lines[d.lineno - 1], d.col_offset)
            b = offs[d.end_lineno - 1] + _char_col(lines[d.end_lineno - 1], d.end_col_offset)
            replacement = "pass" if only else ""  # a body cannot be empty
            # take the whole line(s) when the docstring stands alone on them
            line_a, line_b = offs[d.lineno - 1], offs[d.end_lineno]
            rest = src[b:line_b].strip()
            if not src[line_a:a].strip() and (not rest or rest.startswith("#")):
                if replacement or rest:  # keep the line for "pass" or for a trailing comment
                    edits.append((a, b, replacement))
                else:
                    edits.append((line_a, line_b, ""))
            else:
                edits.append((a, b, replacement or "pass"))
            ndoc += 1
    ncom = 0
    if comments == "remove":
        for t in toks:
            if t.type == tokenize.COMMENT:
                line = lines[t.start[0] - 1]
                a = offs[t.start[0] - 1] + t.start[1]
                b = offs[t.start[0] - 1] + len(line.rstrip("\r\n"))
                if not line[: t.start[1]].strip():  # a comment line: drop the whole line
                    edits.append((offs[t.start[0] - 1], offs[t.start[0]], ""))
                else:
                    while a > offs[t.start[0] - 1] and src[a - 1] in " \t":
                        a -= 1
                    edits.append((a, b, ""))
                ncom += 1
    out = _apply_edits(src, edits)
    return Rewrite(out, renamed, ndoc, ncom, plan.skipped)


def _tokens(src: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, SyntaxError) as e:
        raise CodeError("syntax_error", f"tokenize: {e}") from None


def _tok_in(t, start, end, lines) -> bool:
    (sl, sc), (el, ec) = start, end
    tl, tc = t.start
    # token columns are characters; AST columns are UTF-8 bytes
    sc = _char_col(lines[sl - 1], sc) if sl - 1 < len(lines) else sc
    ec = _char_col(lines[el - 1], ec) if el - 1 < len(lines) else ec
    return (tl, tc) >= (sl, sc) and (tl, tc) < (el, ec) if (el, ec) != (sl, sc) else False


def _apply_edits(src: str, edits: list[tuple[int, int, str]]) -> str:
    edits = sorted(set(edits))
    out, last = [], 0
    for a, b, t in edits:
        if a < last:  # overlapping edits (a comment line inside a removed docstring's lines): keep the first
            continue
        out.append(src[last:a])
        out.append(t)
        last = b
    out.append(src[last:])
    return "".join(out)


# --------------------------------------------------------------------------------------------
# verification


def verify_python(original: str, variant: str, *, docstrings_removed: bool = False) -> str | None:
    """``None`` when ``variant`` is ``original`` up to renamed locals (and removed docstrings).

    Reasons: ``code_does_not_compile`` (the variant), ``code_ast_mismatch`` (any other
    difference: a renamed global, attribute, parameter or keyword; a rename that is not
    one-to-one within its scope; a changed literal or statement)."""
    try:
        compile(variant, "<variant>", "exec", dont_inherit=True)
        vt = ast.parse(variant)
    except (SyntaxError, ValueError):
        return "code_does_not_compile"
    ot = ast.parse(original)
    try:
        os_ = analyze_scopes(original, ot)
        vs_ = analyze_scopes(variant, vt)
    except (CodeError, SyntaxError, ValueError):
        return "code_ast_mismatch"
    allowed = {(i, n) for i, names in renameable(os_).items() for n in names}
    if docstrings_removed:
        strip_docstrings(ot)
        strip_docstrings(vt)
    o_index = {(id(o.node), o.field): o for o in os_.occurrences}
    v_index = {(id(o.node), o.field): o for o in vs_.occurrences}
    forward: dict[tuple[int, str], str] = {}
    backward: dict[tuple[int, str], str] = {}

    def ident(o_node, v_node, fld, a, b) -> bool:
        oo, vo = o_index.get((id(o_node), fld)), v_index.get((id(v_node), fld))
        if oo is None or vo is None:
            return a == b and oo is None and vo is None
        if oo.scope != vo.scope:  # the variant resolves the name elsewhere (a capture)
            return False
        if (oo.scope, a) not in allowed:
            return a == b
        if forward.setdefault((oo.scope, a), b) != b or backward.setdefault((oo.scope, b), a) != a:
            return False  # not one-to-one within the scope
        return True

    def same(x, y) -> bool:
        if type(x) is not type(y):
            return False
        if isinstance(x, ast.AST):
            for fld in x._fields:
                a, b = getattr(x, fld, None), getattr(y, fld, None)
                if fld in ("id", "name", "arg", "rest") and isinstance(a, str):
                    if not isinstance(b, str) or not ident(x, y, fld, a, b):
                        return False
                elif fld == "names" and isinstance(x, (ast.Global, ast.Nonlocal)):
                    if len(a) != len(b) or not all(ident(x, y, f"names[{i}]", p, q) for i, (p, q) in enumerate(zip(a, b))):
                        return False
                elif not same(a, b):
                    return False
            return True
        if isinstance(x, list):
            return len(x) == len(y) and all(same(p, q) for p, q in zip(x, y))
        return x == y

    if not same(ot, vt):
        return "code_ast_mismatch"
    return None
