"""Generated English junk: negatives for training quality classifiers and for measuring scorers.

Real English spam is scarce in any redistributable sample (the Common Crawl records r1data ships
are mostly Chinese), so the default models also learn from, and are measured on, three kinds of
junk that make up much of English web text, each made from real prose so that only the defect
differs:

- ``shuffled``: a real document's words in random order (fluent vocabulary, no syntax);
- ``link_list``: navigation boilerplate, menus, tag clouds and "related posts" lists;
- ``keyword_stuffing``: SEO pages repeating commercial keywords between scraps of real prose;
- ``gibberish``: a real document's layout, punctuation and digits with every word replaced by a
  random string (of Latin, Cyrillic, Greek or CJK letters): garbled or unknown-script text, which
  teaches a classifier that punctuation alone is no evidence of quality.

Everything is drawn from ``random.Random(seed)``: the same base texts and seed give the same junk.
As a command (what scripts/build_default_models.sh runs)::

    python -m r1data.quality.synthetic --base data/reference/books.eval.jsonl.gz \\
        --kinds shuffled=100,link_list=100,keyword_stuffing=100 --seed 12 --pool heldout --out junk.jsonl.gz

The keyword lists come in two disjoint pools, so junk used for evaluation or calibration
(``pool="heldout"``) never shares its keywords with training junk (``pool="train"``).
"""

from __future__ import annotations

import random
import re

KINDS = ("shuffled", "link_list", "keyword_stuffing", "gibberish")

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


_SCRIPTS = [
    "abcdefghijklmnopqrstuvwxyz",
    "абвгдежзийклмнопрстуфхцчшщыэюя",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴急",
]


def gibberish(rng: random.Random, base: list[str]) -> str:
    """A real document with every word replaced by a random string of one script."""
    alphabet = rng.choice(_SCRIPTS)
    cjk = len(alphabet) > 100

    def fake(m: re.Match) -> str:
        n = len(m.group())
        return "".join(rng.choice(alphabet) for _ in range(max(1, n // 2 if cjk else n)))

    return re.sub(r"[^\W\d_]+", fake, rng.choice(base))


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
            elif kind == "gibberish":
                out.append(gibberish(rng, usable))
            else:
                raise ValueError(f"unknown junk kind {kind!r} (known: {', '.join(KINDS)})")
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse
    import gzip
    import json

    from r1data.quality.corpus import read_texts

    ap = argparse.ArgumentParser(prog="python -m r1data.quality.synthetic", description="Write generated junk as JSON Lines.")
    ap.add_argument("--base", nargs="+", required=True, help="real text the junk is made from (.txt/.jsonl/.parquet)")
    ap.add_argument("--kinds", required=True, help="KIND=COUNT,... with KIND in " + ", ".join(KINDS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", choices=sorted(KEYWORDS), default="train", help="keyword pool (heldout for calibration/evaluation)")
    ap.add_argument("--out", required=True, help="output .jsonl or .jsonl.gz")
    args = ap.parse_args(argv)
    kinds = []
    for item in args.kinds.split(","):
        kind, _, n = item.partition("=")
        if kind not in KINDS or not n.isdigit():
            ap.error(f"--kinds: {item!r} is not KIND=COUNT")
        kinds.append((kind, int(n)))
    base, _ = read_texts(args.base, "base")
    docs = make_junk(base, kinds, seed=args.seed, pool=args.pool)
    labels = [k for k, n in kinds for _ in range(n)]
    with open(args.out, "wb") as raw:
        # mtime=0: the same input gives byte-identical output
        fh = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if args.out.endswith(".gz") else raw
        for i, (kind, text) in enumerate(zip(labels, docs)):
            fh.write((json.dumps({"id": f"{kind}#{i}", "kind": kind, "seed": args.seed, "text": text}) + "\n").encode())
        if fh is not raw:
            fh.close()
    print(f"wrote {len(docs)} documents to {args.out}")


if __name__ == "__main__":
    main()
