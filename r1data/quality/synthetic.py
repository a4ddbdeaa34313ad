"""Generated English junk: negatives for training quality classifiers and for measuring scorers.

Real English spam is scarce in any redistributable sample (the Common Crawl records r1data ships
are mostly Chinese), so the default models also learn from, and are measured on, three kinds of
junk that make up much of English web text, each made from real prose so that only the defect
differs:

- ``shuffled``: a real document's words in random order (fluent vocabulary, no syntax);
- ``link_list``: navigation boilerplate, menus, tag clouds and "related posts" lists;
- ``keyword_stuffing``: SEO pages repeating commercial keywords between scraps of real prose.

Everything is drawn from ``random.Random(seed)``: the same base texts and seed give the same junk.
The keyword lists come in two disjoint pools, so junk used for evaluation or calibration
(``pool="heldout"``) never shares its keywords with training junk (``pool="train"``).
"""

from __future__ import annotations

import random
import re

KINDS = ("shuffled", "link_list", "keyword_stuffing")

KEYWORDS = {
    "train": [
        "replica watches", "payday loans", "casino bonus", "weight loss pills", "cheap flights", "car insurance",
        "seo services", "bitcoin trading", "essay writing service", "hair extensions", "forex signals", "dating site",
        "designer handbags", "garage doors", "roof repair", "cbd oil",
    ],
    "heldout": [
        "vpn deals", "diet supplements", "online pharmacy", "sports betting", "crypto wallet", "mortgage rates",
        "phone cases", "web hosting", "ugg boots", "slot machines", "personal loans", "teeth whitening",
        "moving company", "wedding dresses", "solar panels", "gaming chairs",
    ],
}  # fmt: skip
_NAV = [
    "Home", "About Us", "Contact", "Contact Us", "Privacy Policy", "Terms of Use", "Sitemap", "Login", "Register",
    "Sign In", "My Account", "Cart", "Checkout", "Blog", "News", "FAQ", "Help", "Search", "Categories", "Archives",
    "Tags", "Recent Posts", "Popular Posts", "Related Posts", "Read More", "Next", "Previous", "Page 2", "Older Entries",
    "Newsletter", "Subscribe", "Follow Us", "Share", "Tweet", "Pin It", "Careers", "Advertise", "Shop", "Deals",
    "Top Rated", "New Arrivals", "Best Sellers", "Gift Cards", "Store Locator", "Support", "Downloads", "Forum",
]  # fmt: skip
_SEO_TEMPLATES = [
    "best {kw}", "cheap {kw}", "buy {kw} online", "{kw} for sale", "discount {kw}", "{kw} near me", "top 10 {kw}",
    "{kw} reviews", "{kw} coupon code", "free {kw}", "{kw} {year}", "affordable {kw}", "{kw} best price guaranteed",
    "order {kw} today", "{kw} free shipping", "official {kw} store", "{kw} deals",
]  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def _words(text: str) -> list[str]:
    return text.split()


def shuffled(rng: random.Random, base: list[str]) -> str:
    """A real document's words in random order, keeping its line lengths."""
    doc = rng.choice(base)
    lines = [ln.split() for ln in doc.splitlines() if ln.strip()]
    words = [w for ln in lines for w in ln]
    rng.shuffle(words)
    out, i = [], 0
    for ln in lines:
        out.append(" ".join(words[i : i + len(ln)]))
        i += len(ln)
    return "\n".join(out)


def _phrases(rng: random.Random, base: list[str], n: int) -> list[str]:
    """Short title-cased spans of real text: what menu items and post titles look like."""
    out = []
    for _ in range(n):
        words = _WORD.findall(rng.choice(base))
        if len(words) < 4:
            continue
        k = rng.randint(1, 4)
        start = rng.randrange(0, len(words) - k)
        out.append(" ".join(w.capitalize() for w in words[start : start + k]))
    return out or ["Home"]


def link_list(rng: random.Random, base: list[str]) -> str:
    """Navigation, tag-cloud and related-links boilerplate."""
    titles = _phrases(rng, base, 40)
    lines = []
    for _ in range(rng.randint(12, 40)):
        r = rng.random()
        if r < 0.3:
            lines.append(" | ".join(rng.sample(_NAV, rng.randint(3, 7))))
        elif r < 0.55:
            lines.append(rng.choice(titles) + rng.choice(["", f" ({rng.randint(1, 250)})", " »", " - Read More"]))
        elif r < 0.7:
            lines.append(f"{rng.choice(['January', 'March', 'June', 'October'])} {rng.randint(1, 28)}, {rng.randint(2009, 2021)}")
        elif r < 0.85:
            lines.append(" ".join(rng.sample(titles, min(len(titles), rng.randint(4, 9)))))
        else:
            lines.append(rng.choice(_NAV))
    return "\n".join(lines)


def keyword_stuffing(rng: random.Random, base: list[str], pool: str = "train") -> str:
    """Commercial keyword phrases repeated around scraps of real prose."""
    kws = rng.sample(KEYWORDS[pool], rng.randint(1, 3))
    lines = []
    for _ in range(rng.randint(5, 15)):
        parts = []
        for _ in range(rng.randint(3, 9)):
            parts.append(rng.choice(_SEO_TEMPLATES).format(kw=rng.choice(kws), year=rng.randint(2015, 2021)))
        if rng.random() < 0.5:  # a scrap of real prose, as spinners paste in
            words = _words(rng.choice(base))
            if len(words) > 12:
                s = rng.randrange(0, len(words) - 10)
                parts.insert(rng.randrange(len(parts) + 1), " ".join(words[s : s + rng.randint(5, 10)]))
        sep = rng.choice([". ", ", ", " ", " | ", " - "])
        line = sep.join(parts)
        lines.append(line[0].upper() + line[1:] + ("." if sep == ". " else ""))
    return "\n".join(lines)


def make_junk(base: list[str], kinds: list[tuple[str, int]], seed: int = 0, pool: str = "train") -> list[str]:
    """``count`` documents of each ``kind``, made from the real texts ``base`` (deterministic)."""
    if pool not in KEYWORDS:
        raise ValueError(f"pool must be one of {', '.join(KEYWORDS)}")
    usable = [t for t in base if len(t.split()) >= 30]
    if not usable:
        raise ValueError("synthetic junk needs base documents of at least 30 words")
    out = []
    for kind, count in kinds:
        rng = random.Random(f"{seed}:{kind}")
        for _ in range(count):
            if kind == "shuffled":
                out.append(shuffled(rng, usable))
            elif kind == "link_list":
                out.append(link_list(rng, usable))
            elif kind == "keyword_stuffing":
                out.append(keyword_stuffing(rng, usable, pool))
            else:
                raise ValueError(f"unknown junk kind {kind!r} (known: {', '.join(KINDS)})")
    return out
