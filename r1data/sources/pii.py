"""Personal data in web text: IP addresses (v4, v6) and phone numbers, found with precision in mind.

E-mail addresses and secrets are found by ``r1data.sources.secrets``; this module adds what web
pages carry and code mostly does not. Precision rules, because a redacted version number or code
identifier damages exactly the technical text a reasoning model needs:

- IPv4: four dotted octets not inside a longer dotted number (``1.2.3.4.5``), not after a version
  word (``version 1.2.3.4``, ``v1.2.3.4``, ``Python 3.11.2.1``) and, when every octet is below 32
  (``3.11.2.1``, ``1.0.0.1``), only after an address word (``IP``, ``address``, ``host``, ``server``);
  private, loopback, link-local and documentation ranges are examples, not anyone's address, and
  are kept unless ``keep_private=False``.
- IPv6: at least three groups, validated by ``ipaddress``; ``::``-only and C++ scope operators
  (``std::vector``) never validate.
- Phone numbers: libphonenumber's matcher (the ``phonenumbers`` package) at its ``VALID`` leniency,
  in a default region (``US``), only where a cheap pre-check sees 7+ digits with separators — so
  dates, ISBNs, version strings and long ids are not numbers it accepts.
"""

from __future__ import annotations

import ipaddress
import re

_IPV4 = re.compile(r"(?<![\w.])((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})(?![\w]|\.\d)")
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|version\s*|release\s*|python\s*|build\s*|ver\.?\s*|rev\.?\s*)$")
_ADDRESS_BEFORE = re.compile(r"(?i)\b(?:ip|ipv4|address|addr|host|server|dns|gateway)\b[^\n]{0,24}$")
_IPV6 = re.compile(r"(?<![\w:.])((?:[0-9A-Fa-f]{1,4}|(?=::))(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w:])")
#: cheap necessary conditions (a match of the full pattern contains one): most pages have none
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
_SEPARATED = re.compile(r"\d+")
_AREA_CODE = re.compile(r"\(\d{2,4}\)")
#: a number glued to code or a path (``aix-5307-0747-32``, ``0x...``) is not written for people to dial
_CODE_AROUND = re.compile(r"[A-Za-z_]|-\d|\.\d")
_PHONE_HINT = re.compile(r"(?:\+\d|\(\d{2,4}\)|\d)[\d\s().-]{6,}\d")


def ipv4_spans(text: str, keep_private: bool = True) -> list[tuple[int, int]]:
    if "." not in text or not _IPV4_HINT.search(text):
        return []
    out = []
    for m in _IPV4.finditer(text):
        value = m.group(1)
        before = text[max(0, m.start() - 24) : m.start()]
        if _VERSION_BEFORE.search(before):
            continue
        octets = [int(x) for x in value.split(".")]
        if max(octets) < 32 and not _ADDRESS_BEFORE.search(text[max(0, m.start() - 40) : m.start()]):
            continue
        if keep_private:
            ip = ipaddress.IPv4Address(value)
            if not ip.is_global:
                continue
        out.append(m.span(1))
    return out


def ipv6_spans(text: str, keep_private: bool = True) -> list[tuple[int, int]]:
    if text.count(":") < 2 or not _IPV6_HINT.search(text):
        return []
    out = []
    for m in _IPV6.finditer(text):
        value = m.group(1)
        if value.count(":") < 2 or sum(1 for g in value.split(":") if g) < 3:
            continue
        try:
            ip = ipaddress.IPv6Address(value)
        except ValueError:
            continue
        if keep_private and not ip.is_global:
            continue
        out.append(m.span(1))
    return out


def phone_spans(text: str, region: str = "US") -> list[tuple[int, int]]:
    """Phone numbers: libphonenumber's matcher, run only on short windows around digit runs."""
    out: list[tuple[int, int]] = []
    last_end = -1
    for hint in _PHONE_HINT.finditer(text):
        if hint.start() < last_end:
            continue
        lo = max(0, hint.start() - 4)
        hi = min(len(text), hint.end() + 4)
        for s, e in _phone_in(text[lo:hi], region, text, lo):
            out.append((s, e))
            last_end = e
    return out


def _phone_in(window: str, region: str, text: str, offset: int):
    import phonenumbers

    for m in phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID, max_tries=100):
        start, end = m.start + offset, m.end + offset
        raw = m.raw_string
        if raw.count(".") >= 3 and not any(c in raw for c in " -()+"):
            continue  # dotted quads are addresses or versions, not phone numbers
        groups = _SEPARATED.findall(raw)
        body = groups[1:] if raw.startswith("+") else groups
        if any(len(g) == 1 for g in body) or (raw.count(".") >= 2 and raw.count(" ")):
            continue  # "1 2 3 4 5 ...", "165 192.168.0.1": counting or an address, not a phone number
        parens = bool(_AREA_CODE.search(raw))
        if not raw.startswith("+") and not parens and len(groups) < 3:
            continue  # a bare digit run (an id, an integer) or a decimal number, not a written phone number
        if _CODE_AROUND.match(text, end) or (start and text[start - 1] in "_-.'\"/\\"):
            continue
        yield start, end


def merge_spans(spans_by_kind: dict[str, list[tuple[int, int]]]) -> list[tuple[int, int, str]]:
    """Non-overlapping spans, earliest first; of two overlapping spans the longer one wins."""
    allspans = sorted(((s, e, k) for k, spans in spans_by_kind.items() for s, e in spans), key=lambda x: (x[0], -(x[1] - x[0])))
    out: list[tuple[int, int, str]] = []
    for s, e, k in allspans:
        if out and s < out[-1][1]:
            continue
        out.append((s, e, k))
    return out


def apply(text: str, spans: list[tuple[int, int, str]], placeholder) -> str:
    parts, last = [], 0
    for s, e, k in spans:
        parts.append(text[last:s])
        parts.append(placeholder(k))
        last = e
    parts.append(text[last:])
    return "".join(parts)
