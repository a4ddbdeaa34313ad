"""LaTeX normalisation for math prose: one spelling for what authors write many ways.

    canonical_latex(r"Let \\(x \\le \\dfrac{1}{2}\\) and \\[ \\left( a^{2} \\right) \\]")
    # -> "Let $x \\leq \\frac{1}{2}$ and $$(a^2)$$"
    render_prose_math("She has 2 x 3 = 6 apples.")   # -> "She has $2 \\times 3 = 6$ apples."

``canonical_latex`` rewrites delimiters (``\\( \\)`` -> ``$ $``, ``\\[ \\]`` and ``displaymath`` ->
``$$ $$``), command aliases (``\\dfrac``/``\\tfrac`` -> ``\\frac``, ``\\le`` -> ``\\leq``, ...),
drops sizing and thin-space commands (``\\left``, ``\\right``, ``\\,``, ``\\!``), unwraps
one-character groups in scripts (``a^{2}`` -> ``a^2``), turns Unicode operators inside math into
commands (``×`` -> ``\\times``) and collapses whitespace inside math. Text outside math and the
environments (``equation``, ``align``) are left alone. ``render_prose_math`` writes the arithmetic
of GSM8K-style prose (``48/2 = 24``, ``$40 − $4 = $36``) as inline LaTeX.
"""

from __future__ import annotations

import re

_ALIASES = {
    r"\dfrac": r"\frac", r"\tfrac": r"\frac", r"\dbinom": r"\binom", r"\tbinom": r"\binom", r"\le": r"\leq",
    r"\ge": r"\geq", r"\ne": r"\neq", r"\lbrace": r"\{", r"\rbrace": r"\}", r"\lvert": "|", r"\rvert": "|",
    r"\land": r"\wedge", r"\lor": r"\vee", r"\gets": r"\leftarrow", r"\implies": r"\Rightarrow",
}
_ALIAS_RE = re.compile(r"(" + "|".join(re.escape(k) for k in sorted(_ALIASES, key=len, reverse=True)) + r")(?![A-Za-z])")
_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?:[lrm])?(?![A-Za-z])\s*")
_THIN = re.compile(r"\\[,;:!](?![A-Za-z])|\\(?:thinspace|negthinspace)(?![A-Za-z])")
_SCRIPT_GROUP = re.compile(r"([_^])\{\s*([A-Za-z0-9])\s*\}")
_UNICODE = {"×": r"\times ", "÷": r"\div ", "≤": r"\leq ", "≥": r"\geq ", "≠": r"\neq ", "−": "-", "·": r"\cdot ", "π": r"\pi ", "∞": r"\infty ", "±": r"\pm "}
_PROSE = re.compile(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}")
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)", re.S)


def _norm_math(body: str) -> str:
    body = _ALIAS_RE.sub(lambda m: _ALIASES[m.group(1)], body)
    body = _SIZING.sub("", body)
    body = _THIN.sub(" ", body)
    body = _SCRIPT_GROUP.sub(r"\1\2", body)
    for u, cmd in _UNICODE.items():
        body = body.replace(u, cmd)
    return " ".join(body.split())


def canonical_latex(text: str) -> str:
    """Normalise the LaTeX math of ``text`` (see the module docstring); text outside math is kept.

    Text without a single backslash command is returned as is: its ``$`` signs are far more
    likely currency (``$5 and $3``) than math delimiters."""
    if "\\" not in text:
        return text
    text = re.sub(r"\\\[(.+?)\\\]", lambda m: f"$${m.group(1)}$$", text, flags=re.S)
    text = re.sub(r"\\begin\{displaymath\}(.+?)\\end\{displaymath\}", lambda m: f"$${m.group(1)}$$", text, flags=re.S)
    text = re.sub(r"\\\((.+?)\\\)", lambda m: f"${m.group(1)}$", text, flags=re.S)

    def sub(m: re.Match) -> str:
        body = m.group(1) if m.group(1) is not None else m.group(2)
        if _PROSE.search(re.sub(r"\\(?:text|mathrm|textbf|mbox)\{[^}]*\}", "", body)):
            return m.group(0)  # "$5 and some $3": prose between two currency signs, not math
        if m.group(2) is not None and body[:1].isdigit() and (body[-1:].isspace() or m.string[m.end() : m.end() + 1].isdigit()):
            return m.group(0)  # "$5 or $3"
        if m.group(1) is not None:
            return f"$${_norm_math(body)}$$"
        return f"${_norm_math(body)}$"

    text = _MATH.sub(sub, text)

    def env(m: re.Match) -> str:
        body = m.group(2)
        lead, trail = body[: len(body) - len(body.lstrip())], body[len(body.rstrip()) :]
        return m.group(1) + lead + _norm_math(body) + trail + m.group(3)

    return re.sub(r"(\\begin\{(?:equation|align|gather|multline)\*?\})(.+?)(\\end\{(?:equation|align|gather|multline)\*?\})", env, text, flags=re.S)


def render_prose_math(text: str) -> str:
    """Write prose arithmetic (``2 x 3 = 6``, ``$40 − $4 = $36``) as inline LaTeX."""
    from r1data.augment.math import ANNOTATION, implicit_steps

    masked = ANNOTATION.sub(lambda m: "\0" * len(m.group(0)), text)
    out, last = [], 0
    for start, _end, _ops, result in implicit_steps(masked):
        if "$" in text[max(0, start - 1) : start] and text[max(0, start - 2) : start - 1] == "$":
            continue
        expr = text[start : result.end]
        expr = re.sub(r"\$\s?(?=\d)", "", expr)  # currency signs become plain numbers inside math
        expr = re.sub(r"(?<=[\d)])\s*[x×*]\s*(?=[\d(])", r" \\times ", expr)
        expr = re.sub(r"\s*÷\s*", r" \\div ", expr).replace("−", "-")
        out.append(text[last:start])
        out.append(f"${' '.join(expr.split())}$")
        last = result.end
    out.append(text[last:])
    return "".join(out)
