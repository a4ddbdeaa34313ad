"""Domain of a document (math, code, prose, ...): rules first, an optional fastText classifier.

    tagger = DomainRules()
    domain, by, score = tagger.classify(text, metadata)      # ("code", "meta:language", 1.0)

Evidence, strongest first:

1. the reader's ``source`` mapped by the recipe (``source_domains: {gsm8k: math}``);
2. metadata a reader attached: a programming ``language`` (or a code file extension in
   ``path``), a GSM8K ``answer`` with a ``####`` line;
3. a fastText classifier, when given and at least ``classifier_threshold`` sure;
4. text rules: the fraction of lines that read as code, and math signals (calculator
   annotations, ``####`` answers, LaTeX math, equations, arithmetic density).
"""

from __future__ import annotations

import re

CODE_EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".c": "c", ".h": "c", ".cc": "c++", ".cpp": "c++", ".hpp": "c++", ".cxx": "c++",
    ".java": "java", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go",
    ".rs": "rust", ".rb": "ruby", ".php": "php", ".cs": "c#", ".kt": "kotlin", ".swift": "swift", ".scala": "scala",
    ".sh": "shell", ".bash": "shell", ".pl": "perl", ".lua": "lua", ".r": "r", ".jl": "julia", ".hs": "haskell",
    ".sql": "sql", ".m": "objective-c", ".f90": "fortran", ".zig": "zig", ".ex": "elixir", ".erl": "erlang",
}
_NOT_CODE_LANGUAGES = {"markdown", "text", "plaintext", "restructuredtext", "rst", "tex", "latex", "html", "json", "yaml", "csv"}

_CODE_LINE = re.compile(
    r"""^\s*(?:(?:def|class|import|from\s+[\w.]+\s+import|return|elif|else:|try:|except\b|finally:|with\s|raise\b|yield\b|
    async\s+def|await\s|lambda\b|assert\b|pass$|break$|continue$|global\s|nonlocal\s|@\w|
    \#include|\#define|\#if|\#endif|public\s|private\s|protected\s|static\s|void\s|int\s+\w+\s*[=(;]|
    func\s|fn\s|let\s|const\s|var\s|package\s|using\s|namespace\s|struct\s|enum\s|impl\s|match\s.*\{|
    if\s*\(|for\s*\(|while\s*\(|switch\s*\(|\}\s*else|[{}]\s*$|//|/\*|\*/)
    |del\s|.*[;{}]\s*$|.*\)\s*:\s*$|\s*[\w.]+(?:\[[^\]]*\])*\s*(?:[-+*/|&]?=)\s*[\w\[\]{}("'-].*$|.*\w\(.*\)\s*$
    |\s{2,}[(\["'].*[,)\]]\s*$)""",
    re.X,
)
_ANNOTATION = re.compile(r"<<[^<>=]+=[^<>]+>>")
_FINAL = re.compile(r"^####\s*-?[\d,.$]+\s*$", re.M)
_LATEX_MATH = re.compile(r"\\(?:frac|sqrt|sum|int|prod|lim|binom|cdot|times|leq|geq|neq|alpha|beta|theta|pi|infty|mathbb|begin\{(?:equation|align))|\$[^$\n]{1,200}\$")
_EQUATION = re.compile(r"\d\s*[-+*/×÷^]\s*\(?\d[\d.]*\)?\s*=\s*-?\d|[a-z]\s*[=<>≤≥]\s*-?\d|\b\d+\s*%")
_MATH_WORDS = re.compile(
    r"\b(?:how many|how much|calculate|compute|solve|equation|theorem|lemma|proof|integer|prime|probability|"
    r"divisible|remainder|sum of|product of|average|percent|ratio|fraction|perimeter|area of|volume|polynomial|"
    r"derivative|integral|matrix|vector|triangle|circle|angle)\b",
    re.I,
)


_TRIPLE = re.compile(r'("""|\'\'\')(?:.|\n)*?\1')
_COMMENT_LINE = re.compile(r"^\s*(?:#(?!include|define|if|endif)|//|\*|/\*)")
_TRAILING_COMMENT = re.compile(r"\s+(?:#|//).*$")
_NUMBER = re.compile(r"(?<![\w:.])\d+(?:[.,]\d+)?%?(?![\w:])")


def code_score(text: str, max_lines: int = 400) -> float:
    """Fraction of lines that read as code (Python, C-family, shell, ...), docstrings and comments aside."""
    body = _TRIPLE.sub("", text[:200_000]) if ('"""' in text or "\'\'\'" in text) else text
    lines = [ln for ln in body.splitlines()[:max_lines] if ln.strip() and not _COMMENT_LINE.match(ln)]
    if len(lines) < 2:
        return 0.0
    hits = sum(1 for ln in lines if _CODE_LINE.match(_TRAILING_COMMENT.sub("", ln)))
    return hits / len(lines)


def math_score(text: str) -> float:
    """0..1 evidence that a text is mathematical (a word problem, a solution, LaTeX math)."""
    head = text[:20_000]
    score = 0.0
    if _ANNOTATION.search(head):
        score += 0.6
    if _FINAL.search(head):
        score += 0.4
    words = max(1, len(head.split()))
    score += min(0.5, 25 * len(_LATEX_MATH.findall(head)) / words)
    score += min(0.4, 15 * len(_EQUATION.findall(head)) / words)
    numbers = len(_NUMBER.findall(head))
    math_words = len(_MATH_WORDS.findall(head))
    score += min(0.3, 6 * numbers / words)
    score += min(0.4, 0.2 * math_words)
    if math_words and numbers >= 2 and "?" in head[-400:]:
        score += 0.2  # a question about quantities: a word problem
    return min(1.0, score)


class DomainRules:
    """Rules (and an optional fastText model) deciding a document's domain."""

    def __init__(
        self,
        *,
        source_domains: dict[str, str] | None = None,
        code_threshold: float = 0.5,
        math_threshold: float = 0.5,
        default: str = "prose",
        classifier=None,
        classifier_threshold: float = 0.5,
        max_chars: int = 20_000,
    ):
        self.source_domains = dict(source_domains or {})
        self.code_threshold, self.math_threshold = code_threshold, math_threshold
        self.default = default
        self.classifier, self.classifier_threshold = classifier, classifier_threshold
        self.max_chars = max_chars

    def from_metadata(self, md: dict) -> tuple[str, str] | None:
        src = md.get("source")
        if src in self.source_domains:
            return self.source_domains[src], "source"
        lang = md.get("language") or md.get("programming_language")
        if isinstance(lang, str) and lang.strip() and lang.lower() not in _NOT_CODE_LANGUAGES:
            return "code", "meta:language"
        path = md.get("path")
        if isinstance(path, str):
            ext = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
            if ext in CODE_EXTENSIONS:
                return "code", "meta:path"
        answer = md.get("answer")
        if isinstance(answer, str) and _FINAL.search(answer):
            return "math", "meta:answer"
        return None

    def classify(self, text: str, md: dict) -> tuple[str, str, float]:
        """``(domain, decided_by, score)``."""
        hit = self.from_metadata(md)
        if hit:
            return hit[0], hit[1], 1.0
        head = text[: self.max_chars]
        if self.classifier is not None:
            labels, probs = self.classifier.predict(" ".join(head.split()), k=1)
            if labels and float(probs[0]) >= self.classifier_threshold:
                return labels[0].removeprefix("__label__"), "classifier", round(float(min(probs[0], 1.0)), 4)
        cs = code_score(head)
        if cs >= self.code_threshold:
            return "code", "rules:code", round(cs, 4)
        ms = math_score(head)
        if ms >= self.math_threshold:
            return "math", "rules:math", round(ms, 4)
        return self.default, "rules:default", round(1.0 - max(cs, ms), 4)


def train_domain_classifier(
    samples: list[tuple[str, str]], out_path: str, *, epoch: int = 25, lr: float = 0.5, dim: int = 32, seed: int = 0
) -> str:
    """Train a fastText domain classifier on ``(text, domain)`` pairs; writes ``out_path`` (.bin)."""
    import os
    import tempfile

    from r1data.quality.fasttext_train import train_supervised

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for text, label in samples:
            f.write(f"__label__{label} {' '.join(text.split())}\n")
        train = f.name
    try:
        model = train_supervised(input=train, epoch=epoch, lr=lr, dim=dim, wordNgrams=2, minCount=1, seed=seed, thread=1, verbose=0)
    finally:
        os.unlink(train)
    model.save_model(out_path)
    return out_path
