"""URL blocklists: drop documents whose URL is on a domain or URL list, or whose words are banned.

The rules follow datatrove's ``URLFilter`` (same list files, same word normalisation, same soft-ban
count), with these deliberate differences (see docs/urlfilter.md):

- a blocked domain blocks every subdomain at any depth (``example.com`` blocks ``a.b.example.com``)
  without a public-suffix list; datatrove checks only the registered domain and the full host;
- hosts are compared lowercased, without port, userinfo or trailing dot, and in punycode
  (``bücher.example`` and ``xn--bcher-kva.example`` are the same entry);
- URL entries match without scheme, fragment or default port (``example.com/a`` blocks
  ``https://EXAMPLE.com:443/a#top``); datatrove compares the raw string;
- words are matched case-insensitively (datatrove lowercases the lists but not the URL);
- ``allow_domains`` exempts hosts (and their subdomains) from every rule;
- a document without a URL is kept and counted (datatrove raises).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datatrove.data import Document
from pydantic import Field

from r1data.paths import REPO_ROOT
from r1data.stages.base import StageConfig, TaggerStage
from r1data.stages.registry import register

BUNDLED_DIR = REPO_ROOT / "data" / "blocklists"
#: list kind -> bundled file (word lists as shipped in datatrove 0.10.1, Apache-2.0; see data/blocklists/SOURCE.md)
BUNDLED = {
    "banned_words": "banned_words.txt",
    "banned_subwords": "banned_subwords.txt",
    "soft_banned_words": "soft_banned_words.txt",
}
FILE_PARAMS = ("domains_file", "urls_file", "banned_words_file", "banned_subwords_file", "soft_banned_words_file")

_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def normalize_word(text: str) -> str:
    """A list entry or URL reduced to lowercase letters and digits (datatrove's ``normalize``)."""
    return _NON_ALNUM.sub("", text).lower()


def read_list(path: str | Path) -> list[str]:
    """Entries of a list file: one per line; blank lines and lines starting with ``#`` are skipped."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if s and not s.startswith("#"):
                out.append(s)
    return out


def canonical_host(host: str) -> str:
    """Lowercase ASCII (punycode) host without trailing dot; labels that IDNA refuses stay as they are."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    labels = []
    for label in host.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if not label.isascii() else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def split_url(url: str) -> tuple[str, int | None, str] | None:
    """``(host, port, rest)`` of a URL, with or without a scheme: host canonical, port None when it is the
    scheme's default, rest = path + query (no fragment)."""
    url = url.strip()
    if not url:
        return None
    if not _SCHEME.match(url) and not url.startswith("//"):
        url = "//" + url  # scheme-less entry such as example.com/a
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    host = canonical_host(host)
    rest = parts.path or "/"
    if parts.query:
        rest += "?" + parts.query
    if port is not None and port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        port = None
    return host, port, rest


def domain_entry(entry: str) -> str:
    """A domains-file line as a canonical host (a URL or ``host:port`` is reduced to its host)."""
    s = entry.strip()
    if "/" in s or ":" in s:
        parsed = split_url(s)
        if parsed:
            return parsed[0]
    return canonical_host(s.lstrip("*.").lstrip("."))


def suffixes(host: str):
    """``a.b.example.com`` -> ``a.b.example.com``, ``b.example.com``, ``example.com``, ``com``."""
    yield host
    i = host.find(".")
    while i >= 0:
        host = host[i + 1:]
        yield host
        i = host.find(".")


def trie_pattern(words: set[str]) -> str:
    """A regex matching any of ``words``, shaped as a trie (shared prefixes factored out): an alternation of
    a hundred words then costs one branch per character instead of one try per word at each position."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node and len(node) == 1:
            return ""
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        # a word ending here is found already: any match will do, so the shorter one is accepted
        return "" if "" in node else body

    return build(trie)


class UrlFilterConfig(StageConfig):
    domains_file: str | None = Field(None, description="blocked domains, one a line; each also blocks its subdomains")
    urls_file: str | None = Field(None, description="blocked URLs, one a line (scheme, fragment and default port ignored)")
    banned_words_file: str | None = Field(None, description="words that block a URL containing one of them as a whole word")
    banned_subwords_file: str | None = Field(None, description="strings that block a URL containing them anywhere (letters and digits only, case-insensitive)")
    soft_banned_words_file: str | None = Field(None, description="words of which soft_ban_threshold distinct ones in a URL block it")
    soft_ban_threshold: int = Field(2, ge=1, description="distinct soft-banned words a URL needs to be blocked (datatrove: soft_word_threshold)")
    use_bundled: bool = Field(True, description="add the bundled adult word lists (data/blocklists, from datatrove; Apache-2.0) to the user lists")
    allow_domains: list[str] = Field(default_factory=list, description="domains (and their subdomains) never blocked, whatever the lists say")


@register
class UrlFilter(TaggerStage):
    """Drop documents whose URL is on a domain/URL blocklist or carries banned words (soft-ban score as datatrove)."""

    name = "url_filter"
    Config = UrlFilterConfig
    columns = {"url_rule": "string"}
    batch_size = 256
    example = """\
- stage: url_filter
  use_bundled: true               # adult word lists shipped in data/blocklists
  # domains_file: lists/blocked-domains.txt   # one domain a line; blocks subdomains too
  # urls_file: lists/blocked-urls.txt
  # banned_subwords_file: lists/subwords.txt
  # soft_banned_words_file: lists/soft-words.txt
  soft_ban_threshold: 2
  allow_domains: [wikipedia.org]
"""

    @classmethod
    def check_config(cls, config: UrlFilterConfig) -> list[tuple[str, str]]:
        from r1data.paths import resolve_path

        problems = []
        for param in FILE_PARAMS:
            value = getattr(config, param)
            if value is None:
                continue
            p = resolve_path(value)
            if not p.is_file():
                problems.append((param, f"list file not found: {p}"))
        return problems

    def _files(self) -> dict[str, list[Path]]:
        from r1data.paths import resolve_path

        c = self.config
        files: dict[str, list[Path]] = {k: [] for k in ("domains", "urls", "banned_words", "banned_subwords", "soft_banned_words")}
        if c.use_bundled:
            for kind, name in BUNDLED.items():
                files[kind].append(BUNDLED_DIR / name)
        for param in FILE_PARAMS:
            value = getattr(c, param)
            if value is not None:
                files[param[: -len("_file")]].append(resolve_path(value))
        return files

    def describe(self) -> dict[str, Any]:
        from r1data.paths import sha256_file

        d = super().describe()
        d["lists"] = {kind: [{"path": str(p), "sha256": sha256_file(p)} for p in paths if p.is_file()] for kind, paths in self._files().items() if paths}
        return d

    def setup(self) -> None:
        files = self._files()
        self._domains: set[str] = set()
        for p in files["domains"]:
            self._domains.update(filter(None, (domain_entry(e) for e in read_list(p))))
        self._urls: set[tuple[str, int | None, str]] = set()
        for p in files["urls"]:
            for e in read_list(p):
                parsed = split_url(e)
                if parsed:
                    self._urls.add(parsed)
        self._allow = {domain_entry(d) for d in self.config.allow_domains if d.strip()}

        def words(kind: str) -> set[str]:
            return {w for p in files[kind] for w in map(normalize_word, read_list(p)) if w}

        self._banned = words("banned_words")
        self._soft = words("soft_banned_words")
        subwords = words("banned_subwords")
        self._subword_re = re.compile(trie_pattern(subwords)) if subwords else None

    def rule(self, url: str) -> str | None:
        """The first rule that blocks ``url`` (``"domain:example.com"``, ``"soft:a+b"``, ...) or None."""
        parsed = split_url(url)
        if parsed is not None:
            host, port, rest = parsed
            if self._allow and any(h in self._allow for h in suffixes(host)):
                self.stat_update("allowed")
                return None
            if self._domains:
                for h in suffixes(host):
                    if h in self._domains:
                        return f"domain:{h}"
            if parsed in self._urls:
                return f"url:{host}{'' if port is None else f':{port}'}{rest}"
        url_words = {w.lower() for w in _NON_ALNUM.split(url) if w}
        hit = self._banned & url_words
        if hit:
            return f"word:{min(hit)}"
        soft = self._soft & url_words
        if len(soft) >= self.config.soft_ban_threshold:
            return "soft:" + "+".join(sorted(soft))
        if self._subword_re is not None:
            m = self._subword_re.search(normalize_word(url))
            if m:
                return f"subword:{m.group(0)}"
        return None

    def tag(self, doc: Document) -> str | None:
        url = doc.metadata.get("url")
        if not isinstance(url, str) or not url.strip():
            self.stat_update("no_url")
            return None
        r = self.rule(url)
        if r is None:
            return None
        doc.metadata["url_rule"] = r
        self.stat_update(f"blocked_{r.split(':', 1)[0]}")
        return "url_blocked"
