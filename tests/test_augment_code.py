"""Python rewrites: what is renamed and what never is, the verifier's reasons, behaviour kept."""

from __future__ import annotations

import ast
import re
import sysconfig
import textwrap
from pathlib import Path

import pytest

from r1data.augment.code import CodeError, rewrite_python, verify_python

TRICKY = textwrap.dedent(
    '''\
    """Module docstring."""
    import os
    COUNT = 0
    total_global = 10

    def outer(a, b=2, *args, key=None, **kw):
        """Outer docstring."""
        total = a + b  # the sum
        global COUNT
        COUNT += 1
        items = [x * total for x in range(a) if x]
        pairs = {k: v for k, v in kw.items()}
        def inner():
            nonlocal total
            total += 1
            return total
        try:
            res = inner()
        except ValueError as err:
            res = str(err)
        msg = f"{res!r:>6} {total_global}"
        dbg = f"{total=}"
        if (n := len(items)) > 1:
            msg = msg + str(n)
        match items:
            case [first, *rest]:
                picked = (first, rest)
            case {"k": val, **others}:
                picked = (val, others)
            case _:
                picked = None
        obj = os.path
        lam = lambda q, r=total: q + r
        squares = sum(y * y for y in items)
        return dict(total=total, items=items, pairs=pairs, msg=msg, dbg=dbg, picked=picked, sep=obj.sep,
                    lam=lam(1), squares=squares, key=key, args=args, count=COUNT)

    def dynamic(a):
        hidden = a * 2
        return locals()

    def evaluating(a):
        hidden = a + 1
        return eval("hidden")

    class Box:
        size = 3
        def grow(self, by):
            """Grow."""
            new_size = self.size + by
            self.size = new_size
            return new_size
    '''
)


def _names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _run(src: str) -> dict:
    ns: dict = {}
    exec(compile(src, "<t>", "exec"), ns)  # noqa: S102 - our own test code
    out = ns["outer"](3, 4, 9, key="k", extra=1)
    out["lam"] = out["lam"]
    return {
        "outer": out,
        "dynamic": ns["dynamic"](5),
        "evaluating": ns["evaluating"](5),
        "box": ns["Box"]().grow(2),
    }


@pytest.mark.parametrize("layout, comments", [("keep", "keep"), ("keep", "remove"), ("unparse", "remove")])
def test_tricky_rewrite_keeps_behaviour_and_verifies(layout, comments):
    rw = rewrite_python(TRICKY, docstrings="remove", comments=comments, layout=layout, seed=7)
    assert verify_python(TRICKY, rw.source, docstrings_removed=True) is None
    assert _run(rw.source) == _run(TRICKY)
    tree = ast.parse(rw.source)
    names = _names(tree)
    # never renamed: parameters, globals, builtins, attributes, keyword arguments, names read dynamically
    for kept in ("a", "b", "args", "key", "kw", "COUNT", "total_global", "os", "len", "str", "sum", "dict", "hidden", "self", "by"):
        assert kept in names or kept in rw.source, kept
    assert "key=key" in rw.source and "obj" not in names and ".sep" in rw.source
    assert re.search(r"dict\(total=\w+, items=", rw.source)  # keyword-argument names are not variables
    assert "self.size" in rw.source and "new_size" not in names
    assert "Module docstring" not in rw.source and "Grow." not in rw.source
    # locals of outer were renamed consistently, inner's nonlocal included
    renamed = rw.renamed["outer@6"]
    for old in ("total", "items", "res", "err", "n", "first", "rest", "val", "others", "lam", "msg", "picked", "obj", "squares"):
        assert old in renamed or (layout == "keep" and old == "total"), old
    assert set(renamed) >= {"items", "res", "err"}
    assert any("dynamic" in s for s in rw.skipped_scopes) and any("evaluating" in s for s in rw.skipped_scopes)
    if comments == "keep":
        assert "# the sum" in rw.source
    if layout == "keep":
        assert 'f"{total=}"' in rw.source  # a self-documenting f-string keeps its name in place


def test_comprehension_and_lambda_scopes_are_renamed():
    rw = rewrite_python("def f(xs):\n    return [x for x in xs], (lambda y: y)(1)\n", seed=1)
    assert "x for x" not in rw.source and "lambda y: y" in rw.source  # lambda parameters are parameters
    assert verify_python("def f(xs):\n    return [x for x in xs], (lambda y: y)(1)\n", rw.source) is None


def test_module_level_names_are_never_renamed():
    src = "x = 1\nfor i in range(3):\n    x += i\nprint(x)\n"
    with pytest.raises(AssertionError):
        assert rewrite_python(src, seed=1).source != src
    assert rewrite_python(src, seed=1).renamed == {}


@pytest.mark.parametrize(
    "variant, reason",
    [
        ("def f(a):\n    total = a\n    return totl\n", "code_ast_mismatch"),  # a use no longer matches its definition
        ("def f(b):\n    total = b\n    return total\n", "code_ast_mismatch"),  # a parameter was renamed
        ("def f(a):\n    t = a\n    return t\n", None),  # a local, consistently
        ("def f(a):\n    total = a\n    return total.real\n", "code_ast_mismatch"),
        ("def f(a):\n    total = a\n    return total +\n", "code_does_not_compile"),
        ("def f(a):\n    total = 2\n    return total\n", "code_ast_mismatch"),
    ],
)
def test_verifier_reasons(variant, reason):
    assert verify_python("def f(a):\n    total = a\n    return total\n", variant) == reason


def test_verifier_rejects_renaming_globals_attributes_and_keywords():
    src = "import os\nG = 1\ndef f(a):\n    v = os.sep\n    return g(key=v, other=G)\n"
    assert verify_python(src, src.replace("G", "H")) == "code_ast_mismatch"
    assert verify_python(src, src.replace("os.sep", "os.pathsep")) == "code_ast_mismatch"
    assert verify_python(src, src.replace("key=v", "name=v")) == "code_ast_mismatch"
    assert verify_python(src, src.replace("v =", "w =").replace("key=v", "key=w")) is None


def test_verifier_rejects_non_bijective_and_capturing_renames():
    src = "def f(a):\n    x = a\n    y = a + 1\n    return x, y\n"
    assert verify_python(src, "def f(a):\n    z = a\n    z = a + 1\n    return z, z\n") == "code_ast_mismatch"
    # renaming a local to the name of a global that an inner function reads changes what it reads
    src2 = "g = 5\ndef f():\n    x = 1\n    def h():\n        return g\n    return x + h()\n"
    bad = "g = 5\ndef f():\n    g = 1\n    def h():\n        return g\n    return g + h()\n"
    assert verify_python(src2, bad) == "code_ast_mismatch"


def test_rewrite_refuses_syntax_errors():
    with pytest.raises(CodeError) as e:
        rewrite_python("def f(:\n  pass\n")
    assert e.value.reason == "syntax_error"
    with pytest.raises(CodeError):
        rewrite_python("print 'python 2'\n")


def test_docstring_only_bodies_get_pass():
    src = 'def f():\n    """Only a docstring."""\n\nclass C:\n    """Doc."""\n'
    for layout, comments in (("keep", "keep"), ("unparse", "remove")):
        rw = rewrite_python(src, rename=False, docstrings="remove", comments=comments, layout=layout)
        assert "pass" in rw.source and "docstring" not in rw.source
        assert verify_python(src, rw.source, docstrings_removed=True) is None


def test_non_ascii_lines_are_edited_at_the_right_place():
    src = 'def f(a):\n    café = "é" + a  # naïve\n    return café\n'
    rw = rewrite_python(src, seed=3)
    assert "café" not in rw.source and '"é" + a  # naïve' in rw.source
    assert verify_python(src, rw.source) is None


def test_stdlib_modules_rewrite_and_verify():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = ["bisect.py", "heapq.py", "textwrap.py", "shlex.py", "graphlib.py", "fnmatch.py", "queue.py", "sched.py", "string.py", "reprlib.py"]
    renamed = 0
    for name in files:
        src = (stdlib / name).read_text(encoding="utf-8")
        for layout, comments in (("keep", "keep"), ("unparse", "remove")):
            rw = rewrite_python(src, docstrings="remove", comments=comments, layout=layout, seed=11)
            assert verify_python(src, rw.source, docstrings_removed=True) is None, (name, layout)
            renamed += sum(len(v) for v in rw.renamed.values())
    assert renamed > 200
