"""GSM8K-style math augmentation: change the numbers of a problem, recompute its solution, verify it.

A GSM8K solution carries calculator annotations (``48/2 = <<48/2=24>>24 clips``) and ends with a
``#### 72`` line. They make the solution a *chain*: every step is an expression over numbers
that come from the question, from earlier results or from constants ("half" is 2, an hour is
60 minutes). Arithmetic written in the prose without an annotation (``4+6=10``) is read as a
step too. ``analyze`` links every operand to its possible sources; ``generate`` picks new values
for question numbers, recomputes the chain exactly (``Fraction``) and rewrites the question,
the steps, the prose around them and the final answer; ``verify`` re-reads the variant *from
its text alone* and checks it against the original. A variant is kept only when ``verify``
returns no reason.

    problem = analyze(question, solution)          # raises MalformedProblem for a broken record
    if problem.augmentable:
        cand = generate(problem, random.Random(0))  # Candidate, or why none could be written
        reason = verify(problem, cand.question, cand.solution)   # None: keep it

Soundness rules (a wrong variant is worse than none):

- an operand that could come from more than one source (a question number and an earlier result
  with the same value, say) is accepted only when every source gives the same new value;
- a number the solution uses without any source (an intermediate computed in the reader's head)
  makes the problem non-augmentable instead of being kept as a constant;
- years, times, ratios, fractions written ``1/2``, labels (``#3``) and the numbers 0 and 1 never change;
- every intermediate result and the final answer keep their type: whole stays whole, a decimal
  stays a short decimal, nothing positive becomes zero or negative.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from fractions import Fraction

from r1data.augment.mathchain import (  # noqa: F401 - parsing lives there; this module re-exports it
    allowed_constants,
    ANNOTATION,
    compile_expr,
    decimals_of,
    eval_tree,
    evaluate,
    ExprError,
    finite_decimals,
    format_number,
    implicit_steps,
    MalformedProblem,
    Num,
    number_to_words,
    parse_number,
    parse_solution,
    QNumber,
    question_numbers,
    Solution,
    Step,
)

# --------------------------------------------------------------------------------------------
# analysis


@dataclass
class MathProblem:
    question: str
    solution: str
    qnumbers: list[QNumber]
    parsed: Solution
    final_sources: list[tuple[str, object]]
    #: question values that may change: linked to the chain, never frozen, never ambiguous
    variables: list[Fraction]
    constants: set[Fraction] = field(default_factory=set)  # values the solution may use as constants
    skip: str | None = None  # why it cannot be augmented; None when it can

    @property
    def steps(self) -> list[Step]:
        return self.parsed.steps

    @property
    def augmentable(self) -> bool:
        return self.skip is None


def _rounded_ok(exact: Fraction, stated: Num) -> bool:
    """A stated result that rounds the exact one (3.33 for 10/3; 33 people for 100/3)."""
    d = decimals_of(stated.text)
    return abs(exact - stated.value) < (Fraction(1, 10**d) if d else 1)


def analyze(question: str, solution: str) -> MathProblem:
    """Parse and link a problem. Raises ``MalformedProblem`` for a record that is not GSM8K-shaped."""
    if not isinstance(question, str) or not question.strip():
        raise MalformedProblem("math_missing_question")
    parsed = parse_solution(solution)
    steps = parsed.steps
    for s in steps:
        if s.kind == "annotation" and s.exact != s.result.value and not _rounded_ok(s.exact, s.result):
            raise MalformedProblem(
                "math_original_inconsistent", f"<<{s.expr}={s.result.text}>> computes {_show(s.exact)}"
            )
    qnums = question_numbers(question)
    consts = allowed_constants(question, ANNOTATION.sub(" ", solution))
    live = {q.value for q in qnums if not q.frozen}
    frozen = {q.value for q in qnums if q.frozen}
    percents = {q.value / 100: q.value for q in qnums if q.percent and not q.frozen}
    frozen |= {q.value / 100 for q in qnums if q.percent and q.frozen}
    skip = None
    linked: set[Fraction] = set()
    pinned: set[Fraction] = set()
    for i, s in enumerate(steps):
        s.sources = []
        for op in s.operands:
            v = op.value
            src: list[tuple[str, object]] = [("r", j) for j in range(i) if steps[j].result.value == v]
            if v in live:
                src.append(("q", v))
            if v in percents:
                src.append(("qp", percents[v]))
            if v in consts or v in frozen:
                src.append(("c", v))
            s.sources.append(src)
            if not src:
                skip = skip or "unexplained_operand"
            qs = {key for k, key in src if k in ("q", "qp")}
            linked |= qs
            if qs and len(src) > len(qs):  # also a constant or a result: changing it would be ambiguous
                pinned |= qs
    final = parsed.final.value
    fsrc: list[tuple[str, object]] = [("r", j) for j in range(len(steps)) if steps[j].result.value == final]
    if not fsrc and final in live:  # the final answer is the last computation's when one matches
        fsrc.append(("q", final))
    if not steps:
        skip = skip or "no_steps"
    elif any(s.exact != s.result.value for s in steps):
        skip = skip or "rounded_step"
    elif not fsrc:
        skip = skip or "final_answer_unlinked"
    variables = sorted(linked - pinned)
    if not variables and not skip:
        skip = "ambiguous_numbers" if linked else "no_changeable_numbers"
    return MathProblem(question, solution, qnums, parsed, fsrc, variables, consts, skip)


def _show(v: Fraction) -> str:
    try:
        return format_number(v)
    except ValueError:
        return f"{float(v):.6g}"


# --------------------------------------------------------------------------------------------
# generation


@dataclass
class Candidate:
    question: str
    solution: str
    changes: dict[str, str]  # old value -> new value of the question numbers that changed
    tries: int = 1


def _granularity(n: int) -> int:
    """Step between new values of the integer ``n``: keeps its small divisors (48 -> multiples of 24)."""
    step = 1
    for k in (2, 3, 4, 5, 6, 8, 10, 12, 25, 50, 100, 1000):
        if n % k == 0:
            step = math.lcm(step, k)
    if n >= 4:
        step = min(step, n // 2)
    return step if n % step == 0 else 1


def new_value(v: Fraction, rng: random.Random, percent: bool = False, avoid: set[Fraction] = frozenset()) -> Fraction | None:
    """A different value near ``v`` with its granularity (48 -> 24, 72, 96; 0.25 -> 0.5, 0.75).

    Values in ``avoid`` (the problem's other numbers and constants) are never chosen: two
    quantities that became equal could no longer be told apart in the variant."""
    scale = 10 ** (finite_decimals(v) or 0)
    n = int(v * scale)
    step = _granularity(n)
    lo, hi = max(step, n // 2), max(n * 2, n + 3 * step)
    if percent:
        hi = min(hi, 100 * scale)
    start = max(step, lo - lo % step)
    count = (hi - start) // step + 1
    if count <= 0:  # e.g. a percentage above 100: no room below the cap
        return None
    banned = {n} | {a.numerator * (scale // a.denominator) for a in avoid if scale % a.denominator == 0}
    for _ in range(8):  # a few random draws; enumerate only when the range is crowded
        x = start + step * rng.randrange(count)
        if x not in banned:
            return Fraction(x, scale)
    options = [x for x in range(start, hi + 1, step) if x not in banned]
    return Fraction(rng.choice(options), scale) if options else None


class _Ambiguous(Exception):
    pass


def _resolve(sources, qmap: dict[Fraction, Fraction], results: list[Fraction]) -> Fraction:
    """The new value of an operand: every possible source must agree, else the link is ambiguous."""
    vals = set()
    for kind, key in sources:
        if kind == "r":
            vals.add(results[key])
        elif kind == "q":
            vals.add(qmap.get(key, key))
        elif kind == "qp":
            vals.add(qmap.get(key, key) / 100)
        else:
            vals.add(key)
    if len(vals) != 1:
        raise _Ambiguous()
    return vals.pop()


def types_kept(problem: MathProblem, results: list[Fraction], final: Fraction) -> str | None:
    """The verifier's type rules applied to computed values (used to screen proposals)."""
    for s, r in zip(problem.steps, results):
        if not same_type(s.result.value, r):
            return "math_intermediate_type_changed"
    if not same_type(problem.parsed.final.value, final, final=True):
        return "math_answer_type_changed"
    return None


def recompute(problem: MathProblem, qmap: dict[Fraction, Fraction]):
    """The chain with question numbers replaced by ``qmap``: each step's operands, each step's
    result and the final answer, or the reason it cannot be recomputed."""
    results: list[Fraction] = []
    operands: list[list[Fraction]] = []
    try:
        for s in problem.steps:
            ops = [_resolve(src, qmap, results) for src in s.sources]
            results.append(eval_tree(s.tree, ops))
            operands.append(ops)
        final = _resolve(problem.final_sources, qmap, results)
    except _Ambiguous:
        return "ambiguous_link"
    except ExprError:
        return "division_by_zero"
    return operands, results, final


def propose(problem: MathProblem, rng: random.Random, pool: list[Fraction] | None = None):
    """New values for a random subset of ``pool`` (default: all variables) and the recomputed
    chain, or the reason the proposal failed."""
    pool = pool or problem.variables
    pcts = {q.value for q in problem.qnumbers if q.percent}
    k = rng.randint(1, len(pool))
    chosen = rng.sample(pool, k)
    avoid = {q.value for q in problem.qnumbers if q.value not in chosen} | problem.constants
    avoid |= {s.result.value for s in problem.steps}
    qmap = {}
    for v in chosen:
        nv = new_value(v, rng, percent=v in pcts, avoid=avoid)
        if nv is not None:
            qmap[v] = nv
            avoid.add(nv)
    if not qmap:
        return "no_new_value"
    chain = recompute(problem, qmap)
    return chain if isinstance(chain, str) else (qmap, *chain)


def _fmt_num(n: Num, v: Fraction) -> str:
    """``v`` written the way ``n`` was: words stay words (while they can), digits keep their style."""
    if not n.word:
        return _fmt_like(v, n.text)
    if v == n.value:
        return n.text
    words = number_to_words(int(v)) if v.denominator == 1 else None
    text = words or format_number(v)
    return text.capitalize() if n.text[:1].isupper() else text


def _fmt_like(v: Fraction, like: str) -> str:
    if parse_number(like) == v:
        return like
    try:
        return format_number(v, like.replace("$", ""))
    except ValueError:  # no finite decimal form: written rounded, and the verifier drops the variant
        return f"{float(v):.4f}".rstrip("0")


def render(problem: MathProblem, qmap, operands, results, final) -> Candidate | str:
    """Write the variant: every number of the question and solution that depends on a change."""
    edits_q: dict[tuple[int, int], str] = {}
    for q in problem.qnumbers:
        if not q.frozen and q.value in qmap:
            edits_q[(q.start, q.end)] = _fmt_num(q, qmap[q.value])
    edits: dict[tuple[int, int], str] = {}

    def put(n: Num, v: Fraction, signed: bool = False) -> None:
        t = _fmt_num(n, v)
        edits[(n.start, n.end)] = f"({t})" if signed and v < 0 else t

    for s, ops, r in zip(problem.steps, operands, results):
        for o, v in zip(s.operands, ops):
            put(o, v, signed=True)
        put(s.result, r)
        for o, v in zip(s.restated, ops):
            put(o, v)
        if s.echo:
            put(s.echo, r)
    put(problem.parsed.final, final)
    vmap: dict[Fraction, set[Fraction]] = {}
    for q in problem.qnumbers:
        vmap.setdefault(q.value, set()).add(q.value if q.frozen else qmap.get(q.value, q.value))
    for s, r in zip(problem.steps, results):
        vmap.setdefault(s.result.value, set()).add(r)
        for o, src in zip(s.operands, s.sources):
            if any(k == "c" for k, _ in src):  # a constant stays what it is wherever the prose says it
                vmap.setdefault(o.value, set()).add(o.value)
    for n in problem.parsed.prose:
        options = vmap.get(n.value)
        if not options:
            continue
        if len(options) > 1:
            return "ambiguous_prose"
        put(n, next(iter(options)))
    question = _apply(problem.question, edits_q)
    solution = _apply(problem.solution, edits)
    changes = {format_number(k): format_number(v) for k, v in sorted(qmap.items())}
    return Candidate(question, solution, changes)


def _apply(text: str, edits: dict[tuple[int, int], str]) -> str:
    out, last = [], 0
    for (a, b), t in sorted(edits.items()):
        out.append(text[last:a])
        out.append(t)
        last = b
    out.append(text[last:])
    return "".join(out)


def apply_changes(problem: MathProblem, changes: dict) -> Candidate | str:
    """The variant for chosen new values of question numbers (``{48: 120}``), or why none exists.

    Values are numbers or strings (``"0.25"``); every one must be a changeable number of the
    problem (``problem.variables``). The result is not verified: pass it to ``verify``."""
    qmap = {Fraction(str(k)): Fraction(str(v)) for k, v in changes.items()}
    unknown = [k for k in qmap if k not in problem.variables]
    if unknown:
        return "not_a_variable"
    chain = recompute(problem, qmap)
    return chain if isinstance(chain, str) else render(problem, qmap, *chain)


def generate(problem: MathProblem, rng: random.Random, *, tries: int = 32, screen: bool = True) -> Candidate | str:
    """One variant, or the most common reason none could be written in ``tries`` proposals.

    ``screen`` applies the verifier's type rules to each proposal's computed numbers before
    writing it (cheap), so that the proposals that reach the verifier are worth checking."""
    if not problem.augmentable:
        return problem.skip or "not_augmentable"
    why: dict[str, int] = {}
    for t in range(1, tries + 1):
        p = propose(problem, rng)
        if isinstance(p, str):
            why[p] = why.get(p, 0) + 1
            continue
        qmap, operands, results, final = p
        if screen:
            bad = types_kept(problem, results, final)
            if bad:
                why[bad] = why.get(bad, 0) + 1
                continue
        c = render(problem, qmap, operands, results, final)
        if isinstance(c, str):
            why[c] = why.get(c, 0) + 1
            continue
        c.tries = t
        return c
    return max(why.items(), key=lambda kv: kv[1])[0] if why else "no_proposal"


# --------------------------------------------------------------------------------------------
# verification: from the variant's text alone


def value_class(v: Fraction) -> tuple[str, int]:
    """("whole", 0), ("decimal", places) or ("inexact", -1)."""
    if v.denominator == 1:
        return ("whole", 0)
    d = finite_decimals(v)
    return ("decimal", d) if d is not None else ("inexact", -1)


def same_type(orig: Fraction, new: Fraction, final: bool = False) -> bool:
    """Whole stays whole; a decimal stays a decimal of at most max(places, 2); signs are kept."""
    if (orig > 0) != (new > 0) or (orig < 0) != (new < 0):
        return False
    oc, od = value_class(orig)
    nc, nd = value_class(new)
    if nc == "inexact":
        return False
    if oc == "whole":
        return nc == "whole"
    if final and nc != "decimal":
        return False
    return nd <= max(od, 2)


def verify(problem: MathProblem, question: str, solution: str) -> str | None:
    """Check a variant against its original; returns a drop reason or None.

    The variant is re-parsed from its text; nothing the generator computed is trusted. In order:
    it parses into the same steps; every step and the final answer keep their type
    (``math_intermediate_type_changed``, ``math_answer_type_changed``); every step computes its
    stated result, the final answer is the same step's result and every restated result matches
    (``math_chain_inconsistent``); every operand is a number of the new question, an earlier
    result, or the constant the original used there (``math_unsupported_operand``); no number
    that changed survives anywhere (``math_stale_number``); something changed (``math_unchanged``).
    """
    try:
        v = parse_solution(solution)
    except MalformedProblem:
        return "math_chain_inconsistent"
    osteps = problem.steps
    if [s.kind for s in v.steps] != [s.kind for s in osteps]:
        return "math_chain_inconsistent"
    if not same_type(problem.parsed.final.value, v.final.value, final=True):
        return "math_answer_type_changed"
    for os_, vs in zip(osteps, v.steps):
        if not same_type(os_.result.value, vs.exact):
            return "math_intermediate_type_changed"
    for vs in v.steps:
        if vs.result.value != vs.exact:
            return "math_chain_inconsistent"
    for kind, key in problem.final_sources:
        if kind == "r" and v.final.value != v.steps[key].exact:
            return "math_chain_inconsistent"
    for os_, vs in zip(osteps, v.steps):  # what the prose restated around a step still matches it
        if (os_.echo and not vs.echo) or (os_.restated and not vs.restated):
            return "math_chain_inconsistent"
    qnums = question_numbers(question)
    if len(qnums) != len(problem.qnumbers):
        return "math_chain_inconsistent"
    qvals = {q.value for q in qnums}
    qvals |= {x / 100 for x in qvals}
    old_q = {q.value for q in problem.qnumbers}
    exact = [s.exact for s in v.steps]
    changed = (old_q - qvals) | ({s.result.value for s in osteps} - set(exact))
    for i, (os_, vs) in enumerate(zip(osteps, v.steps)):
        if len(os_.operands) != len(vs.operands):
            return "math_chain_inconsistent"
        earlier = set(exact[:i])
        for oo, vo, src in zip(os_.operands, vs.operands, os_.sources):
            x = vo.value
            if x in qvals or x in earlier:
                continue
            if x == oo.value and (x not in changed or all(k == "c" for k, _ in src)):
                continue  # a constant of the original (5/6 of them, twice), or a number that did not change
            return "math_unsupported_operand"
    legit = qvals | set(exact) | {v.final.value} | {o.value for s in v.steps for o in s.operands}
    for n in v.prose + [q for q in qnums]:
        if n.value in changed and n.value not in legit:
            return "math_stale_number"
    if question == problem.question and solution == problem.solution:
        return "math_unchanged"
    return None


def strip_annotations(text: str) -> str:
    """A GSM8K solution without its calculator annotations (``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``)."""
    return ANNOTATION.sub("", text)
