"""Reading GSM8K solutions: exact numbers and expressions, calculator annotations, arithmetic
written in prose, question numbers (digits and words) and the constants a solution may use.

This is the parsing half of ``r1data.augment.math`` (which links, generates and verifies); both
the generator and the verifier read texts through these functions.

    sol = parse_solution("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 24")
    sol.steps[0].expr, sol.steps[0].exact, sol.final.value     # '48/2', Fraction(24, 1), Fraction(24, 1)
    evaluate("2 x 60")                                           # Fraction(120, 1)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

# --------------------------------------------------------------------------------------------
# numbers and expressions

ANNOTATION = re.compile(r"<<([^<>]*)>>")
FINAL = re.compile(r"^####[ \t]*\$?[ \t]*(-?[\d,]*\.?\d+)[ \t]*\.?[ \t]*$", re.M)
FINAL_LINE = re.compile(r"^####(.*)$", re.M)
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
#: a number in a question: not inside a word, a time or ratio (3:00, 2:5), a fraction (1/2), an ordinal (1st)
Q_NUMBER = re.compile(rf"(?<![\w.,:/])(?:{_NUM})(?![\w:/]|[.,]\d)")
#: a number in solution prose: may touch operators (``48/2`` restates an expression)
P_NUMBER = re.compile(rf"(?<![\w.,])(?:{_NUM})(?!\w|[.,]\d)")
E_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_NUM_RE = re.compile(_NUM)
FRACTION = re.compile(r"(?<![\w.,/])(\d+)/(\d+)(?![\w/]|[.,]\d)")
RATIO = re.compile(r"(?<![\w.,:])(\d+)(?::(\d+))+(?![\w:])")
#: tokens of arithmetic written in prose (``$40 − $4 = $36``, ``2 x 60 = 120``); see ``implicit_steps``
_ARITH_TOKEN = re.compile(rf"(?P<num>\$?(?:{_NUM}))|(?P<op>//|\*\*|[-+*/×−÷])|(?P<par>[()])|(?P<eq>=)|(?P<ws>[ \t]+)|(?P<word>\w+)|(?P<other>.)", re.S)

_UNITS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_ONES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORD_NUMBER = re.compile(
    r"\b(?:(" + "|".join(_TENS) + r")(?:-(" + "|".join(_ONES) + r"))?|(" + "|".join(_UNITS) + r"))\b(?!-(?:" + "|".join(_ONES) + r")\b)",
    re.I,
)


def parse_number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").replace("$", "").strip())


class ExprError(ValueError):
    pass


def compile_expr(expr: str):
    """Parse a calculator expression into a tree whose leaves are operand indices (in text order).

    Numbers, ``+ - * / // **``, parentheses and unary minus; prose spellings too (``x``/``×`` for
    ``*``, ``−`` for ``-``, ``÷`` for ``/``, ``$`` and thousands commas). Returns ``(tree, numbers)``."""
    norm = expr.replace("×", "*").replace("x", "*").replace("−", "-").replace("÷", "/").replace("$", "").replace(",", "")
    tokens = re.findall(r"\d+(?:\.\d+)?|\.\d+|\*\*|//|[-+*/()]|\S", norm)
    numbers: list[str] = []
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        if pos >= len(tokens):
            raise ExprError("unexpected end")
        pos += 1
        return tokens[pos - 1]

    def atom():
        t = peek()
        if t is None:
            raise ExprError("unexpected end")
        if t == "(":
            take()
            v = add()
            if take() != ")":
                raise ExprError("unbalanced parenthesis")
            return v
        if t in ("-", "+"):
            take()
            v = power()
            return ("neg", v) if t == "-" else v
        if E_NUMBER.fullmatch(t):
            take()
            numbers.append(t)
            return len(numbers) - 1
        raise ExprError(f"unexpected {t!r}")

    def power():
        base = atom()
        if peek() == "**":
            take()
            return ("**", base, power())
        return base

    def mul():
        v = power()
        while peek() in ("*", "/", "//"):
            v = (take(), v, power())
        return v

    def add():
        v = mul()
        while peek() in ("+", "-"):
            v = (take(), v, mul())
        return v

    if not tokens:
        raise ExprError("empty expression")
    tree = add()
    if pos != len(tokens):
        raise ExprError(f"unexpected {tokens[pos]!r}")
    return tree, numbers


def eval_tree(tree, values: list[Fraction]) -> Fraction:
    """Exact value of a compiled expression with ``values`` as its operands."""
    if isinstance(tree, int):
        return values[tree]
    if tree[0] == "neg":
        return -eval_tree(tree[1], values)
    op, a, b = tree
    x, y = eval_tree(a, values), eval_tree(b, values)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op in ("/", "//"):
        if y == 0:
            raise ExprError("division by zero")
        return x / y if op == "/" else Fraction(math.floor(x / y))
    if y.denominator != 1 or abs(y) > 64 or (x == 0 and y < 0):
        raise ExprError("unsupported power")
    return x ** int(y)


def evaluate(expr: str) -> Fraction:
    """Exact value of a calculator expression (see ``compile_expr``)."""
    tree, numbers = compile_expr(expr)
    return eval_tree(tree, [Fraction(n) for n in numbers])


def decimals_of(text: str) -> int:
    t = text.replace(",", "")
    return len(t.split(".", 1)[1]) if "." in t else 0


def finite_decimals(v: Fraction) -> int | None:
    """How many decimal places ``v`` needs exactly, or None when it has no finite decimal form."""
    d, twos, fives = v.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    return max(twos, fives) if d == 1 else None


def format_number(v: Fraction, like: str = "") -> str:
    """Write ``v`` exactly, in the style of ``like`` (thousands commas, ``2.50`` keeps two places, ``.5``)."""
    need = finite_decimals(v)
    if need is None:
        raise ValueError(f"{v} has no finite decimal form")
    keep = decimals_of(like) if "." in like and like.endswith("0") else 0
    d = max(keep, need)
    sign = "-" if v < 0 else ""
    v = abs(v)
    whole = v.numerator // v.denominator
    head = f"{whole:,}" if "," in like and whole >= 1000 else str(whole)
    if head == "0" and like.startswith(".") and d:
        head = ""
    if d == 0:
        return sign + head
    digits = str(int((v - whole) * 10**d)).rjust(d, "0")
    return f"{sign}{head}.{digits}"


def number_to_words(n: int) -> str | None:
    """English words for 2..99 (``twenty-one``); None otherwise."""
    if 2 <= n < 20:
        return next(w for w, v in _UNITS.items() if v == n)
    if 20 <= n < 100:
        tens = next(w for w, v in _TENS.items() if v == n - n % 10)
        return tens if n % 10 == 0 else f"{tens}-{_ONES[n % 10 - 1]}"
    return None


# --------------------------------------------------------------------------------------------
# constants a solution may use without them being numbers of the question

_CONST_WORDS = {
    "one": [1], "half": [2, Fraction(1, 2)], "halves": [2], "twice": [2], "double": [2], "doubles": [2],
    "doubled": [2], "pair": [2], "pairs": [2], "couple": [2], "triple": [3], "tripled": [3], "thrice": [3],
    "third": [3], "thirds": [3], "quarter": [4], "quarters": [4, 25], "fourth": [4], "fifth": [5], "sixth": [6],
    "seventh": [7], "eighth": [8], "ninth": [9], "tenth": [10], "dozen": [12], "dozens": [12], "score": [20],
    "hundred": [100], "thousand": [1000], "million": [10**6], "percent": [100], "%": [100], "cents": [100],
    "cent": [100], "dollar": [100], "dollars": [100], "nickel": [5], "nickels": [5], "dime": [10], "dimes": [10],
    "pennies": [100], "week": [7], "weeks": [7, 52], "weekly": [7, 52], "hour": [60, 24], "hours": [60, 24],
    "minute": [60], "minutes": [60], "second": [60], "seconds": [60], "day": [24, 7, 30, 365], "days": [24, 7, 30, 365],
    "daily": [7, 30, 365], "month": [12, 30], "months": [12, 30], "monthly": [12], "year": [12, 52, 365],
    "years": [12, 52, 365], "yearly": [12, 52], "annual": [12], "decade": [10], "decades": [10], "century": [100],
    "feet": [12, 3], "foot": [12, 3], "inch": [12], "inches": [12], "yard": [3, 36], "yards": [3, 36],
    "mile": [5280], "miles": [5280], "gallon": [4, 128], "gallons": [4, 128], "quart": [4, 2], "quarts": [4, 2],
    "pint": [2], "pints": [2], "cup": [8], "cups": [8], "pound": [16], "pounds": [16], "ounce": [16], "ounces": [16],
    "kilogram": [1000], "kilograms": [1000], "kg": [1000], "gram": [1000], "grams": [1000], "meter": [100, 1000],
    "meters": [100, 1000], "centimeters": [100], "cm": [100], "kilometers": [1000], "km": [1000], "liter": [1000],
    "liters": [1000], "milliliters": [1000], "ml": [1000], "ton": [2000], "tons": [2000],
}
_ALWAYS = {Fraction(0), Fraction(1), Fraction(2)}


def allowed_constants(question: str, prose: str = "") -> set[Fraction]:
    """Values a solution may use that are not question numbers: unit and multiplier words (of the
    question or the solution prose), fractions and ratios written in the question."""
    out = set(_ALWAYS)
    for w in re.findall(r"[a-z]+|%", (question + " " + prose).lower()):
        out.update(Fraction(v) for v in _CONST_WORDS.get(w, ()))
    text = question
    for m in FRACTION.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if b:
            out.update({Fraction(a, b), Fraction(a), Fraction(b), Fraction(abs(b - a), b), Fraction(b, a) if a else Fraction(0)})
    for m in RATIO.finditer(text):
        parts = [int(x) for x in m.group(0).split(":")]
        out.update(Fraction(x) for x in parts)
        out.add(Fraction(sum(parts)))
    for v in list(out):  # 60 -> 1/60 of an hour, 4 -> 1/4, 100 -> a percentage
        if v and v.denominator == 1 and v <= 1000:
            out.add(1 / v)
    return out


# --------------------------------------------------------------------------------------------
# parsing


class MalformedProblem(ValueError):
    """The record is not a well-formed GSM8K problem; ``reason`` is the drop reason."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class Num:
    """A number in a text: its span, how it was written and its exact value."""

    start: int
    end: int
    text: str
    value: Fraction
    word: bool = False  # written as words (``twenty-one``)


@dataclass
class QNumber(Num):
    percent: bool = False
    frozen: str | None = None  # why it never changes (year, zero_or_one, ...)


@dataclass
class Step:
    """One computation: ``<<expr=result>>`` (annotation) or ``expr = result`` written in the prose (implicit)."""

    kind: str
    operands: list[Num]  # spans in the solution
    result: Num
    exact: Fraction  # what the expression computes
    expr: str
    expr_start: int  # where ``expr`` starts in the solution
    tree: object = None  # the compiled expression (``compile_expr``)
    #: the expression restated in the prose before an annotation (``48/2 = <<48/2=24>>``), aligned with operands
    restated: list[Num] = field(default_factory=list)
    #: the result written right after ``>>``
    echo: Num | None = None
    #: per operand: where its value may come from: ("q", v) question number, ("qp", v) question
    #: percentage / 100, ("r", i) result of step i, ("c", v) constant
    sources: list[list[tuple[str, object]]] = field(default_factory=list)


@dataclass
class Solution:
    steps: list[Step]
    prose: list[Num]  # every other number before the final line
    final: Num


def _mask_annotations(text: str) -> str:
    return ANNOTATION.sub(lambda m: "\0" * len(m.group(0)), text)


def parse_solution(solution: str) -> Solution:
    """Steps, other prose numbers and the final answer of a solution (no linking)."""
    if not isinstance(solution, str) or not solution.strip():
        raise MalformedProblem("math_missing_solution")
    lines = list(FINAL_LINE.finditer(solution))
    if not lines:
        raise MalformedProblem("math_no_final_answer", "no '#### answer' line")
    fm = FINAL.match(solution, lines[-1].start())
    if not fm or fm.end() != lines[-1].end():
        raise MalformedProblem("math_bad_final_answer", f"{lines[-1].group(0).strip()!r} is not a number")
    final = Num(fm.start(1), fm.end(1), fm.group(1), parse_number(fm.group(1)))
    body_end = lines[-1].start()
    steps: list[Step] = []
    taken: set[int] = set()
    for m in ANNOTATION.finditer(solution, 0, body_end):
        inner = m.group(1)
        if "=" not in inner:
            raise MalformedProblem("math_bad_annotation", f"no '=' in <<{inner}>>")
        expr, res = inner.rsplit("=", 1)
        base = m.start(1)
        rm = re.fullmatch(rf"\s*\$?\s*(-?(?:{_NUM}))\s*%?\s*", res)
        try:
            if not rm:
                raise ValueError(f"result {res!r} is not a number")
            exact = evaluate(expr)
        except (ValueError, ExprError) as e:
            raise MalformedProblem("math_bad_annotation", f"<<{inner}>>: {e}") from None
        rs = base + len(expr) + 1 + rm.start(1)
        result = Num(rs, rs + len(rm.group(1)), rm.group(1), parse_number(rm.group(1)))
        ops = [Num(base + o.start(), base + o.end(), o.group(0), parse_number(o.group(0))) for o in _NUM_RE.finditer(expr)]
        steps.append(Step("annotation", ops, result, exact, expr, base, compile_expr(expr)[0]))
        taken.update(range(m.start(), m.end()))
    masked = _mask_annotations(solution[:body_end])
    for start, end, ops, result in implicit_steps(masked):
        expr = masked[start:end]
        try:
            exact = evaluate(expr)
        except ExprError:
            continue
        if exact != result.value:
            continue  # rounded or wrong prose arithmetic is not a step; its numbers stay prose numbers
        steps.append(Step("implicit", ops, result, exact, expr, start, compile_expr(expr)[0]))
        taken.update(range(start, result.end))
    steps.sort(key=lambda s: s.result.start)
    prose = []
    for m in P_NUMBER.finditer(masked):
        if m.start() not in taken:
            prose.append(Num(m.start(), m.end(), m.group(0), parse_number(m.group(0))))
    prose += [n for n in word_numbers(masked) if n.start not in taken]
    prose.sort(key=lambda n: n.start)
    # restated expressions and echoed results around annotations
    by_pos = {n.start: n for n in prose}
    for s in steps:
        if s.kind != "annotation":
            continue
        ann_start = solution.rfind("<<", 0, s.result.start)
        line_start = solution.rfind("\n", 0, ann_start) + 1
        before = [n for n in prose if line_start <= n.start < ann_start]
        k = len(s.operands)
        if k and len(before) >= k:
            tail = before[-k:]
            gap = masked[tail[-1].end : ann_start]
            if [n.value for n in tail] == [o.value for o in s.operands] and re.fullmatch(r"[\s=$]*", gap):
                s.restated = tail
        ann_end = solution.find(">>", s.result.end) + 2
        echo = by_pos.get(ann_end) or by_pos.get(ann_end + 1 if solution[ann_end : ann_end + 1] in "$ " else -1)
        if echo is not None and echo.value == s.result.value:
            s.echo = echo
    claimed = {id(n) for s in steps for n in s.restated + ([s.echo] if s.echo else [])}
    prose = [n for n in prose if id(n) not in claimed]
    return Solution(steps, prose, final)


def implicit_steps(text: str) -> list[tuple[int, int, list[Num], Num]]:
    """Arithmetic written in prose, ``a op b [op c ...] = r``: (expr start, expr end, operands, result).

    A linear scan over tokens (a regular expression for this backtracks badly on long sums)."""
    toks = []
    for m in _ARITH_TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "word" and m.group(0) == "x":
            kind = "op"
        if kind != "ws":
            toks.append((kind, m.start(), m.end(), m.group(0)))
    out = []
    run: list[tuple] = []
    i = 0
    while i < len(toks):
        kind, a, b, t = toks[i]
        if kind in ("num", "op", "par"):
            run.append(toks[i])
            i += 1
            continue
        if kind == "eq" and run and i + 1 < len(toks) and toks[i + 1][0] == "num":
            nxt = toks[i + 2] if i + 2 < len(toks) else None
            expr = _trim_run(run)
            if expr and not (nxt and nxt[0] == "op" and i + 3 < len(toks) and toks[i + 3][0] == "num"):
                ops = [Num(x[1] + (x[3][0] == "$"), x[2], x[3].lstrip("$"), parse_number(x[3])) for x in expr if x[0] == "num"]
                r = toks[i + 1]
                result = Num(r[1] + (r[3][0] == "$"), r[2], r[3].lstrip("$"), parse_number(r[3]))
                out.append((expr[0][1], expr[-1][2], ops, result))
                i += 2  # the result does not start the next expression
                run = []
                continue
        run = []
        i += 1
    return out


def _trim_run(run: list[tuple]) -> list[tuple] | None:
    """The longest tail of ``run`` that reads as an expression: number (op number)+, balanced parentheses."""
    toks = list(run)
    while toks and toks[0][0] == "op":
        toks.pop(0)
    depth = 0
    for k in range(len(toks) - 1, -1, -1):  # drop an unmatched "(" prefix: "(so 3 + 4 = 7"
        depth += {")": 1, "(": -1}.get(toks[k][3], 0) if toks[k][0] == "par" else 0
        if depth < 0:
            toks = toks[k + 1 :]
            break
    while toks and toks[-1][0] == "par" and toks[-1][3] == ")" and sum(1 if x[3] == "(" else -1 for x in toks if x[0] == "par") < 0:
        toks.pop()
    nums = sum(1 for x in toks if x[0] == "num")
    ops = sum(1 for x in toks if x[0] == "op")
    if nums < 2 or ops < 1 or toks[-1][0] == "op":
        return None
    for x, y in zip(toks, toks[1:]):  # two numbers in a row are a list, not arithmetic
        if x[0] == "num" and y[0] == "num":
            return None
    return toks


def _freeze_reason(q: str, start: int, end: int, value: Fraction) -> str | None:
    if value in (0, 1):
        return "zero_or_one"
    if q[max(0, start - 1) : start] == "#":
        return "label"
    text = q[start:end]
    if value.denominator == 1 and 1800 <= value <= 2100 and "," not in text and "." not in text:
        return "year"
    if re.match(r"\s*(?:am|pm|a\.m|p\.m|o'clock)\b", q[end : end + 9], re.I):
        return "time"
    return None


def word_numbers(text: str) -> list[Num]:
    """Numbers written as words, two to ninety-nine."""
    out = []
    for m in WORD_NUMBER.finditer(text):
        if m.group(3):
            value = _UNITS[m.group(3).lower()]
        else:
            value = _TENS[m.group(1).lower()] + (_ONES.index(m.group(2).lower()) + 1 if m.group(2) else 0)
        out.append(Num(m.start(), m.end(), m.group(0), Fraction(value), word=True))
    return out


def question_numbers(question: str) -> list[QNumber]:
    """Numbers of a question, written as digits or as words (``five``, ``twenty-one``).

    A value written more than once is frozen: the solution's uses of it cannot be told apart
    (``three hours more`` and ``these three days``), so changing it could change the wrong one."""
    out = []
    for m in Q_NUMBER.finditer(question):
        value = parse_number(m.group(0))
        pct = bool(re.match(r"\s*(?:%|percent\b|per cent\b)", question[m.end() : m.end() + 9], re.I))
        out.append(QNumber(m.start(), m.end(), m.group(0), value, False, pct, _freeze_reason(question, m.start(), m.end(), value)))
    for n in word_numbers(question):
        pct = bool(re.match(r"\s*(?:percent\b|per cent\b)", question[n.end : n.end + 9], re.I))
        out.append(QNumber(n.start, n.end, n.text, n.value, True, pct, "zero_or_one" if n.value == 0 else None))
    counts: dict[Fraction, int] = {}
    for q in out:
        counts[q.value] = counts.get(q.value, 0) + 1
    for q in out:
        if counts[q.value] > 1 and not q.frozen:
            q.frozen = "repeated"
    # a number the question itself derives from repeated ones ("five girls and five boys ... the
    # ten students") must move with them, which value-level linking cannot express: freeze it
    for q in out:
        if not q.frozen and any(counts[v] > 1 and q.value in (v * counts[v], v * 2) for v in counts if v != q.value):
            q.frozen = "derived"
    return sorted(out, key=lambda q: q.start)
