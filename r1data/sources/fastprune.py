"""Trafilatura's boilerplate XPaths evaluated in Python, with the same selections, several times faster.

Trafilatura prunes menus, share bars, footers and the like with a few large XPath expressions of one
shape: ``.//*[self::div or self::p ...][contains(@class, "nav") or starts-with(@id|@class, "shar")
or ...]``. libxml2 evaluates every ``contains`` of every element one by one (building a node-set for
each ``@id|@class``), and on the bundled web sample these expressions were about half of Trafilatura's
time (57 + 21 ms of 154 ms a page). This module parses each expression into the same boolean formula
and evaluates it with one regular-expression search per attribute source and element, and
``lxml``'s C-level tag filter for the ``self::`` tests.

Only the XPath subset those expressions use is understood (``.//*`` or ``.//tag``; predicates that
are ``or``/``and``/``not()`` of ``self::tag``, ``contains``/``starts-with`` of an attribute, an
attribute union or a ``translate`` of one, ``@a="v"`` and ``@a``); an expression outside it keeps its
libxml2 XPath, so a new Trafilatura release can never be evaluated wrongly, only slowly.
``install()`` swaps the compiled objects into Trafilatura's lists, in this process only (the
extraction sandbox's); web-v1's text stays byte-identical (``tests/test_fastprune.py``).
XPath semantics kept: a missing attribute is the empty string; ``@id|@class`` is the one of the two
that comes first on the element; ``translate`` maps (or, past the end of its third argument,
deletes) characters; the selected elements come in document order, the context element excluded.
"""

from __future__ import annotations

import re

from lxml import etree

__all__ = ["FastPath", "compile_xpath", "install"]

_TOKEN = re.compile(r"""\s*(?:(?P<str>"[^"]*"|'[^']*')|(?P<name>[A-Za-z_][\w.-]*(?:::[\w.-]+)?)|(?P<op>@|\||=|\(|\)|,))""")


class Unsupported(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"cannot read {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        value = m.group(kind)
        out.append((kind, value[1:-1] if kind == "str" else value))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    """Recursive descent over one predicate's tokens; returns a tree of tuples:
    ("or", [..]) ("and", [..]) ("not", x) ("self", tag) ("contains"|"starts", src, s) ("eq", src, s) ("has", src);
    a source is ("attr", (names...)) or ("translate", src, from, to)."""

    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise Unsupported(f"expected {value or kind}, got {tok[1]!r}")
        self.i += 1
        return tok[1]

    def expr(self):
        return self._chain("or", self.conj)

    def conj(self):
        return self._chain("and", self.atom)

    def _chain(self, word: str, part):
        """``part (word part)*`` -> the one part, or (word, [parts])."""
        parts = [part()]
        while self.peek() == ("name", word):
            self.take()
            parts.append(part())
        return parts[0] if len(parts) == 1 else (word, parts)

    def expr_all(self):
        e = self.expr()
        if self.i != len(self.t):
            raise Unsupported(f"trailing {self.t[self.i][1]!r}")
        return e

    def source(self):
        kind, value = self.peek()
        if (kind, value) == ("name", "translate"):
            self.take()
            self.take("op", "(")
            src = self.source()
            self.take("op", ",")
            a = self.take("str")
            self.take("op", ",")
            b = self.take("str")
            self.take("op", ")")
            return ("translate", src, a, b)
        names = []
        while True:
            self.take("op", "@")
            names.append(self.take("name"))
            if self.peek() != ("op", "|"):
                return ("attr", tuple(names))
            self.take()

    def atom(self):
        kind, value = self.peek()
        if (kind, value) == ("op", "("):
            self.take()
            e = self.expr()
            self.take("op", ")")
            return e
        if kind == "name" and value.startswith("self::"):
            self.take()
            return ("self", value[len("self::"):])
        if kind == "name" and value in ("contains", "starts-with", "not"):
            self.take()
            self.take("op", "(")
            if value == "not":
                e = self.expr()
                self.take("op", ")")
                return ("not", e)
            src = self.source()
            self.take("op", ",")
            s = self.take("str")
            self.take("op", ")")
            return ("contains" if value == "contains" else "starts", src, s)
        if (kind, value) == ("op", "@") or (kind, value) == ("name", "translate"):
            src = self.source()
            if self.peek() == ("op", "="):
                self.take()
                return ("eq", src, self.take("str"))
            return ("has", src)
        raise Unsupported(f"unsupported term {value!r}")


def _split_predicates(path: str) -> tuple[str, list[str]]:
    """``.//step[p1][p2]`` -> (step, [p1, p2]), honouring brackets inside quotes."""
    path = path.strip()
    if not path.startswith(".//"):
        raise Unsupported("not a descendant path")
    i = 3
    m = re.match(r"\*|[A-Za-z_][\w-]*", path[i:])
    if not m:
        raise Unsupported("no node test")
    step = m.group(0)
    i += m.end()
    preds = []
    while i < len(path):
        while i < len(path) and path[i].isspace():
            i += 1
        if i >= len(path):
            break
        if path[i] != "[":
            raise Unsupported(f"unexpected {path[i:i + 10]!r}")
        depth, j, quote = 0, i, None
        while j < len(path):
            c = path[j]
            if quote:
                quote = None if c == quote else quote
            elif c in "\"'":
                quote = c
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        else:
            raise Unsupported("unbalanced brackets")
        preds.append(path[i + 1:j])
        i = j + 1
    return step, preds


def _translate_table(a: str, b: str) -> dict:
    table = {}
    for k, ch in enumerate(a):
        if ord(ch) in table:  # XPath: the first occurrence wins
            continue
        table[ord(ch)] = b[k] if k < len(b) else None
    return table


def _base(src):
    """(attribute names, char table or None) of a source: a translate of one attribute (or union) that only
    maps characters can be searched on the attribute itself with character classes; None otherwise."""
    if src[0] == "attr":
        return src[1], None
    inner = src[1]
    if inner[0] != "attr":
        return None
    table = _translate_table(src[2], src[3])
    if any(v is None for v in table.values()):  # deletions change which characters are adjacent
        return None
    return inner[1], table


def _pattern(needle: str, table: dict | None) -> str | None:
    """Regex finding ``needle`` in translate(value) by searching value; None if it can never occur."""
    if not table:
        return re.escape(needle)
    out = []
    for c in needle:
        pre = {chr(x) for x, y in table.items() if y == c}
        if ord(c) not in table:
            pre.add(c)
        if not pre:
            return None
        out.append(re.escape(pre.pop()) if len(pre) == 1 else "[" + "".join(re.escape(x) for x in sorted(pre)) + "]")
    return "".join(out)


class _Gen:
    """Generates the Python source of one predicate function ``pred(el) -> bool``."""

    def __init__(self):
        self.env: dict = {"_first": _first}
        self.n = 0
        self.attrs: dict[str, str] = {}
        self.unions: dict[tuple, str] = {}

    def name(self, value) -> str:
        self.n += 1
        key = f"_c{self.n}"
        self.env[key] = value
        return key

    def value(self, names: tuple) -> str:
        """A variable holding the attribute's (or union's) value or None, loaded once at the function's top."""
        for n in names:
            self.attrs.setdefault(n, f"_a{len(self.attrs)}")
        if len(names) == 1:
            return self.attrs[names[0]]
        if names not in self.unions:
            self.unions[names] = f"_u{len(self.unions)}"
        return self.unions[names]

    def prologue(self) -> str:
        lines = [f"    {var} = g({n!r})" for n, var in self.attrs.items()]
        for names, var in self.unions.items():
            vals = [self.attrs[n] for n in names]
            if len(names) == 2:  # the common case, inline: one present -> it; both -> the element's order
                a, b = vals
                lines.append(f"    {var} = {b} if {a} is None else ({a} if {b} is None else _first(el, {names!r}))")
            else:
                lines.append(f"    {var} = _first(el, {names!r})")
        return "\n".join(lines) + "\n" if lines else ""

    def src_expr(self, src) -> str:
        """Python expression for the string value of a source (XPath string(): '' when missing)."""
        if src[0] == "attr":
            return f"({self.value(src[1])} or '')"
        table = self.name(_translate_table(src[2], src[3]))
        return f"{self.src_expr(src[1])}.translate({table})"

    def expr(self, tree) -> str:
        kind = tree[0]
        if kind == "or":
            groups: dict[tuple, list[str]] = {}
            rest = []
            for t in tree[1]:
                base = _base(t[1]) if t[0] in ("contains", "starts") and t[2] else None
                if base is None:
                    rest.append(self.expr(t))
                    continue
                pat = _pattern(t[2], base[1])
                if pat is None:
                    continue  # cannot match: false, a no-op in an or
                groups.setdefault(base[0], []).append(pat if t[0] == "contains" else r"\A" + pat)
            parts = []
            for names, pats in groups.items():
                search = self.name(re.compile("|".join(pats)).search)
                v = self.value(names)
                parts.append(f"{v} is not None and {search}({v}) is not None")
            parts += rest
            return "(" + " or ".join(f"({p})" for p in parts) + ")" if parts else "False"
        if kind == "and":
            return "(" + " and ".join(f"({self.expr(t)})" for t in tree[1]) + ")"
        if kind == "not":
            return f"(not {self.expr(tree[1])})"
        if kind == "self":
            return f"(el.tag == {tree[1]!r})"
        if kind in ("contains", "starts"):
            s = tree[2]
            method = "__contains__" if kind == "contains" else "startswith"
            return f"{self.src_expr(tree[1])}.{method}({s!r})"
        if kind == "eq":
            src, s = tree[1], tree[2]
            if src[0] == "attr":  # a node-set equals a string if any of its nodes does
                return "(" + " or ".join(f"{self.value((n,))} == {s!r}" for n in src[1]) + ")"
            return f"({self.src_expr(src)} == {s!r})"
        if kind == "has":
            src = tree[1]
            if src[0] != "attr":
                raise Unsupported("a translate() used as a boolean")
            return "(" + " or ".join(f"{self.value((n,))} is not None" for n in src[1]) + ")"
        raise Unsupported(kind)

    def function(self, tree):
        body = self.expr(tree)
        code = f"def pred(el):\n    g = el.get\n{self.prologue()}    return bool({body})\n"
        ns = dict(self.env)
        exec(compile(code, "<fastprune>", "exec"), ns)  # noqa: S102 - source generated from parsed XPath only
        ns["pred"].source = code
        return ns["pred"]


def _first(el, names: tuple):
    """An attribute union's string value: the attribute of ``names`` that comes first on the element."""
    got = None
    for n in names:
        if el.get(n) is not None:
            if got is not None:  # two present: the element's own attribute order decides
                for k in el.keys():
                    if k in names:
                        return el.get(k)
            got = n
    return None if got is None else el.get(got)


class _Predicate:
    """One predicate compiled: the tags its ``self::`` tests allow (None = any) or a function element -> bool."""

    def __init__(self, tree):
        self.tags = self._tag_only(tree)
        self.fn = _Gen().function(tree) if self.tags is None else None

    @staticmethod
    def _tag_only(tree):
        if tree[0] == "self":
            return {tree[1]}
        if tree[0] == "or" and all(t[0] == "self" for t in tree[1]):
            return {t[1] for t in tree[1]}
        return None


class FastPath:
    """Callable like ``lxml.etree.XPath``: ``fast(tree)`` -> the selected elements, in document order."""

    def __init__(self, path: str):
        self.path = path
        step, preds = _split_predicates(path)
        compiled = [_Predicate(_Parser(_tokens(p)).expr_all()) for p in preds]
        tags = None if step == "*" else {step}
        fns = []
        for c in compiled:
            if c.tags is not None:
                tags = c.tags if tags is None else tags & c.tags
            else:
                fns.append(c.fn)
        self._tags = None if tags is None else sorted(tags)
        self._fns = fns

    def __call__(self, tree):
        if isinstance(tree, etree._ElementTree):  # lxml evaluates an XPath on a tree from its root element
            tree = tree.getroot()
        skip = tree  # `.//*`: the context element's descendants, not itself
        it = tree.iter(*self._tags) if self._tags is not None else tree.iter(etree.Element)
        fns = self._fns
        if len(fns) == 1:
            f = fns[0]
            return [el for el in it if el is not skip and f(el)]
        return [el for el in it if el is not skip and all(f(el) for f in fns)]

    def __repr__(self):
        return f"FastPath({self.path!r})"


def compile_xpath(xpath) -> object:
    """A ``FastPath`` for an ``etree.XPath`` whose expression this module understands, else the XPath itself."""
    path = getattr(xpath, "path", None)
    if not isinstance(path, str) or getattr(xpath, "namespaces", None):
        return xpath
    try:
        return FastPath(path)
    except Unsupported:
        return xpath


_LISTS = ("OVERALL_DISCARD_XPATH", "TEASER_DISCARD_XPATH", "PRECISION_DISCARD_XPATH", "DISCARD_IMAGE_ELEMENTS",
          "COMMENTS_DISCARD_XPATH")


def install() -> int:
    """Swap compiled expressions into Trafilatura's pruning lists (in place: every module holding them sees
    the change). Returns how many were replaced; calling it again changes nothing."""
    from trafilatura import xpaths

    n = 0
    for name in _LISTS:
        lst = getattr(xpaths, name, None)
        if not isinstance(lst, list):
            continue
        for i, x in enumerate(lst):
            if isinstance(x, FastPath):
                continue
            fast = compile_xpath(x)
            if fast is not x:
                lst[i] = fast
                n += 1
    return n
