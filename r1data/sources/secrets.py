"""Find and redact secrets and personal data in text: API keys, tokens, private keys, passwords, e-mails.

    from r1data.sources.secrets import redact
    text, counts = redact('key = "AKIAIOSFODNN7EXAMPLE"')
    # text == 'key = "<AWS_ACCESS_KEY_ID>"', counts == {"aws_access_key_id": 1}

Only counts per kind are returned: the secrets themselves are never kept, logged or written.
Patterns are the formats the issuers document (AWS, GitHub, GitLab, Slack, Google, Stripe,
OpenAI, Hugging Face, npm, PyPI, SendGrid, Azure storage, JWT, PEM private keys) plus assignments of a quoted literal to a
name like ``password``/``secret``/``api_key`` (after StarCoder's PII redaction). Kinds are applied
in a fixed order, each on the text the previous ones left, so a private key block is one private
key and not also a handful of tokens.

Secrets without a telling variable name are found by their surroundings (``by_content``, on by
default), the way gitleaks and detect-secrets pair a key id with its secret:

- ``aws_secret_access_key``: besides ``aws_secret_access_key = "..."``, any 40-character run of the
  base64 alphabet with letters of both cases, a digit or ``/``/``+`` and a Shannon entropy of at
  least 3.5 bits a character, within ``NEAR`` characters of an AWS access key id (``AKIA...``, or
  the ``<AWS_ACCESS_KEY_ID>`` an earlier pass left): ``return 'AKIA...', 'wJalr...'``.
- ``high_entropy_string``: a quoted literal of 20-200 characters of that kind (both cases and a
  digit, not hexadecimal, entropy >= 3.5, not words joined by ``-``/``_``/``/``: ``X-Amz-Content-SHA256``)
  within ``NEAR`` characters of a key id: an AWS access
  key id or an identifier ending in ``key_id``/``client_id``/``app_id``/``consumer_key`` (any
  case, ``_``/``-`` or none). A lone high-entropy string is *not* redacted: hashes in lock files,
  git SHAs, test vectors and identifiers in ordinary code are left alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

# kind -> (cheap substring that must appear, pattern, group to replace: 0 = whole match)
_PATTERNS: dict[str, tuple[tuple[str, ...], re.Pattern, int]] = {
    "private_key": (
        ("PRIVATE KEY",),
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.S,
        ),
        0,
    ),
    # long-term (AKIA) and temporary (ASIA) access key ids; other prefixes name users and roles
    "aws_access_key_id": (("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), 0),
    "aws_secret_access_key": (
        ("aws", "AWS", "Aws"),
        re.compile(r"(?i)aws.{0,20}?(?:secret|private)?.{0,20}?key['\"]?\s*[:=]\s*['\"]?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
        1,
    ),
    "github_token": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
                     re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 0),
    "gitlab_token": (("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), 0),
    "slack_token": (("xox", "hooks.slack.com"),
                    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"), 0),
    "google_api_key": (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 0),
    "stripe_key": (("sk_live_", "sk_test_", "rk_live_", "rk_test_"), re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{24,}\b"), 0),
    "openai_key": (("sk-",), re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9]{48}\b"), 0),
    "huggingface_token": (("hf_",), re.compile(r"\bhf_[A-Za-z]{34}\b"), 0),
    "npm_token": (("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0),
    "pypi_token": (("pypi-",), re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"), 0),
    "jwt": (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), 0),
    "google_oauth_client_secret": (("GOCSPX-",), re.compile(r"\bGOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])"), 0),
    "sendgrid_key": (("SG.",), re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"), 0),
    # the account key in an Azure storage connection string (base64 of 64 bytes)
    "azure_storage_key": (("AccountKey=",), re.compile(r"AccountKey=([A-Za-z0-9+/]{86}==)"), 1),
    # "password" and "email" are found from the positions of their keywords / "@" (see below)
    "password": ((), None, 2),
    # found near key ids (see the module docstring): after every named format, so those win
    "high_entropy_string": ((), None, 2),
    "email": ((), None, 0),
    "ip_address": (
        (".",),
        re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"),
        0,
    ),
}

KINDS: tuple[str, ...] = tuple(_PATTERNS)
#: kinds added after the code-v1 policy was released (it lists its kinds, so it does not get them)
CONTENT_KINDS: tuple[str, ...] = ("google_oauth_client_secret", "sendgrid_key", "azure_storage_key", "high_entropy_string")
#: what ``redact`` looks for unless told otherwise (IP addresses are mostly examples in code)
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "ip_address")
#: RFC 2606 / 6761 names for examples: addresses there are not anyone's
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", "example.edu", "localhost", "test", "invalid", "example")

# values that are placeholders, not secrets
_PLACEHOLDER = re.compile(r"^(?:x+|\*+|\.+|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|%\(?\w*\)?s|your[_-].*|changeme|password\d*|secret\d*|example\w*|dummy\w*|test\w*|none|null)$", re.I)
_PRIVATE_IP = re.compile(r"^(?:0\.|10\.|127\.|169\.254\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|255\.|224\.)")


# a name like password/secret/api_key (inside an identifier too: db_password), then an assignment
# of a quoted literal of 8+ characters; found from where the keywords occur, as scanning the whole
# text with a case-insensitive alternation is ~50x slower
_SECRET_NAMES = ("password", "passwd", "pwd", "secret", "apikey", "api_key", "api-key", "access_token", "accesstoken",
                 "auth_token", "authtoken", "private_key", "privatekey")
_ASSIGNMENT = re.compile(r"[A-Za-z0-9_-]*['\"]?\s*(?::=|=>|=|:)\s*(['\"])([^'\"\s]{8,200})\1")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,64}\Z")  # \Z: "$" would also match before a newline
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")


def _password_spans(text: str) -> list[tuple[int, int]]:
    low = text.lower()
    spans = set()
    for name in _SECRET_NAMES:
        i = low.find(name)
        while i != -1:
            m = _ASSIGNMENT.match(text, i + len(name))
            if m and not _PLACEHOLDER.match(m.group(2)):
                spans.add(m.span(2))
            i = low.find(name, i + 1)
    return sorted(spans)


def _email_spans(text: str, keep: tuple[str, ...]) -> list[tuple[int, int]]:
    spans = []
    i = text.find("@")
    while i != -1:
        local = _EMAIL_LOCAL.search(text, max(0, i - 64), i)
        dom = _EMAIL_DOMAIN.match(text, i + 1)
        if local and dom and not (local.start() > 0 and (text[local.start() - 1] in _LOCAL_CHARS or text[local.start() - 1] == "\\")):
            domain = dom.group(0).lower()
            if not any(domain == d or domain.endswith("." + d) for d in keep):
                spans.append((local.start(), dom.end()))
        i = text.find("@", i + 1)
    return spans


# -- secrets found by their surroundings ------------------------------------------------------------

#: how far (characters, either side) from a key id a secret is looked for
NEAR = 300
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|<AWS_ACCESS_KEY_ID>")
# identifiers ending like this (any case) name a key id; found with str.find on the lower-cased
# text, as a case-insensitive regex scan is far slower
_KEY_ID_NAMES = tuple(f"{a}{sep}{b}" for a, b in (("key", "id"), ("client", "id"), ("app", "id"), ("consumer", "key")) for sep in ("", "_", "-"))
_AWS_SECRET_RUN = re.compile(r"(?<![A-Za-z0-9/+=_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])")
_QUOTED = re.compile(r"(['\"`])([A-Za-z0-9+/=_-]{20,200})\1")
_SEPARATORS = re.compile(r"[-_/+=]+")
_HEX = re.compile(r"[0-9a-fA-F]+$")
MIN_ENTROPY = 3.5


def entropy(s: str) -> float:
    """Shannon entropy of ``s`` in bits per character."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def random_looking(s: str) -> bool:
    """Letters of both cases, a digit or ``/``/``+``, not hexadecimal, entropy >= ``MIN_ENTROPY``."""
    if _HEX.match(s) or s.isalpha() or s.islower() or s.isupper():
        return False
    if not any(c.isdigit() or c in "/+" for c in s):
        return False
    return entropy(s) >= MIN_ENTROPY


def _windows(text: str, anchors: re.Pattern) -> list[tuple[int, int]]:
    """Merged ``[start, end)`` ranges of ``NEAR`` characters around every match of ``anchors``."""
    out: list[list[int]] = []
    for m in anchors.finditer(text):
        a, b = max(0, m.start() - NEAR), m.end() + NEAR
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _aws_secret_near_key_id(text: str) -> list[tuple[int, int]]:
    if "AKIA" not in text and "ASIA" not in text and "<AWS_ACCESS_KEY_ID>" not in text:
        return []
    spans = []
    for a, b in _windows(text, _AWS_KEY_ID):
        for m in _AWS_SECRET_RUN.finditer(text, a, min(b, len(text))):
            if random_looking(m.group(0)) and not _AWS_KEY_ID.fullmatch(m.group(0)):
                spans.append(m.span())
    return spans


def _near_key_id(text: str, start: int, end: int) -> bool:
    """Whether an AWS access key id or a key-id name is within ``NEAR`` characters of ``text[start:end]``."""
    lo = max(0, start - NEAR)
    window = text[lo : end + NEAR]
    if ("AKIA" in window or "ASIA" in window or "<AWS_" in window) and _AWS_KEY_ID.search(window):
        return True
    low = window.lower()
    for name in _KEY_ID_NAMES:
        i = low.find(name)
        while i != -1:
            j = i + len(name)
            if j >= len(low) or not low[j].isalnum():
                return True
            i = low.find(name, j)
    return False


def wordlike(s: str) -> bool:
    """Separated words, not a token: ``X-Amz-Content-SHA256``, ``before_call_CreateToken``."""
    pieces = [p for p in _SEPARATORS.split(s) if p]
    return len(pieces) >= 3 and 2 * sum(p.isalpha() and len(p) >= 3 for p in pieces) >= len(pieces)


def _high_entropy_spans(text: str) -> list[tuple[int, int]]:
    # the candidates (quoted, random-looking) are rare: find them first, then look around each
    spans = []
    for m in _QUOTED.finditer(text):
        value = m.group(2)
        if (
            random_looking(value) and not wordlike(value) and not _AWS_KEY_ID.fullmatch(value) and not _PLACEHOLDER.match(value)
            and _near_key_id(text, *m.span(2))
        ):
            spans.append(m.span(2))
    return spans


def placeholder(kind: str) -> str:
    return f"<{kind.upper()}>"


def find_spans(
    text: str, kind: str, keep_email_domains: tuple[str, ...] = EXAMPLE_DOMAINS, by_content: bool = True
) -> list[tuple[int, int]]:
    """Where the secrets of ``kind`` are in ``text``: sorted ``(start, end)`` (overlaps are skipped by ``redact``).

    ``by_content`` False finds AWS secret keys by their variable name only and no
    ``high_entropy_string`` (the behaviour of the code-v1 policy)."""
    if kind == "password":
        return _password_spans(text)
    if kind == "high_entropy_string":
        return _high_entropy_spans(text) if by_content else []
    if kind == "email":
        return _email_spans(text, tuple(d.lower().lstrip(".") for d in keep_email_domains))
    hints, pattern, group = _PATTERNS[kind]
    out = []
    if any(h in text for h in hints):
        for m in pattern.finditer(text):
            value = m.group(group)
            if kind == "ip_address" and _PRIVATE_IP.match(value):
                continue
            out.append(m.span(group))
    if kind == "aws_secret_access_key" and by_content:
        out = sorted(set(out) | set(_aws_secret_near_key_id(text)))
    return out


def redact(
    text: str, kinds: Iterable[str] = DEFAULT_KINDS, keep_email_domains: Iterable[str] = EXAMPLE_DOMAINS, by_content: bool = True
) -> tuple[str, dict[str, int]]:
    """Replace each secret of ``kinds`` by ``<KIND>``; returns the new text and counts per kind.

    ``by_content``: also find secrets by their surroundings (see the module docstring)."""
    counts: dict[str, int] = {}
    keep = tuple(keep_email_domains)
    wanted = set(kinds)
    for kind in KINDS:
        if kind not in wanted:
            continue
        spans = find_spans(text, kind, keep, by_content)
        if not spans:
            continue
        parts, pos, n = [], 0, 0
        for a, b in spans:
            if a < pos:  # overlaps the previous one
                continue
            parts += [text[pos:a], placeholder(kind)]
            pos = b
            n += 1
        parts.append(text[pos:])
        text = "".join(parts)
        counts[kind] = n
    return text, counts
