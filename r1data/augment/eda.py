"""Random replacement, EDA-style (Wei & Zou, 2019): synonym replacement from WordNet, random
insertion, swap and deletion, with a rate and a seed.

    wn = WordNet("/usr/share/wordnet")              # Debian's wordnet-base: the WordNet 3.0 database
    wn.synonyms("quick")                            # ['agile', 'fast', 'flying', 'nimble', 'ready', ...]
    text, n = augment(text, "synonym", rate=0.1, rng=random.Random(0), wordnet=wn)

Unlike the original EDA code this keeps the text's layout: only word tokens change, punctuation,
whitespace and line breaks stay where they were, and numbers (and words holding digits) are never
touched, so a math problem keeps its quantities. WordNet's database files are read directly (index
files into a dictionary, synset lines by byte offset), so nothing is downloaded.
"""

from __future__ import annotations

import os
import random
import re

DEFAULT_WORDNET = "/usr/share/wordnet"
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

#: the stop-word list of the EDA reference implementation: never replaced, never a source of synonyms
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all any both each few more most other
    some such no nor not only own same so than too very s t can will just don should now""".split()
)

OPERATIONS = ("synonym", "insert", "swap", "delete")
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*|\S|\s+")


class WordNetError(RuntimeError):
    pass


class WordNet:
    """A reader of WordNet 3.0 database files (``index.*``, ``data.*``) for synonym lookup."""

    def __init__(self, root: str = DEFAULT_WORDNET, senses: int = 3):
        self.root, self.senses = root, senses
        self._index: dict[str, list[tuple[str, int]]] | None = None
        self._data: dict[str, object] = {}
        self._cache: dict[str, tuple[str, ...]] = {}

    @staticmethod
    def check(root: str) -> str | None:
        """Why ``root`` is not a WordNet database (missing files), or None."""
        missing = [f"{k}.{p}" for p in POS_FILES.values() for k in ("index", "data") if not os.path.isfile(os.path.join(root, f"{k}.{p}"))]
        if missing:
            return f"WordNet database not found in {root} (missing {', '.join(missing[:3])}): apt-get install wordnet-base"
        return None

    def _load(self) -> dict[str, list[tuple[str, int]]]:
        if self._index is None:
            problem = self.check(self.root)
            if problem:
                raise WordNetError(problem)
            index: dict[str, list[tuple[str, int]]] = {}
            for pos, name in POS_FILES.items():
                with open(os.path.join(self.root, f"index.{name}"), encoding="latin-1") as f:
                    for line in f:
                        if line.startswith(" "):  # licence header
                            continue
                        parts = line.split()
                        n_synsets, n_ptrs = int(parts[2]), int(parts[3])
                        offsets = parts[6 + n_ptrs : 6 + n_ptrs + n_synsets]
                        # synsets are listed most frequent sense first
                        index.setdefault(parts[0], []).extend((pos, int(o)) for o in offsets[: self.senses])
            self._index = index
        return self._index

    def _synset_words(self, pos: str, offset: int) -> tuple[str, ...]:
        f = self._data.get(pos)
        if f is None:
            f = self._data[pos] = open(os.path.join(self.root, f"data.{POS_FILES[pos]}"), "rb")
        f.seek(offset)
        parts = f.readline().decode("latin-1").split()
        n = int(parts[3], 16)
        words = parts[4 : 4 + 2 * n : 2]
        return tuple(re.sub(r"\([a-z]+\)$", "", w).replace("_", " ") for w in words)

    def synonyms(self, word: str) -> tuple[str, ...]:
        """Lemmas sharing a synset with ``word`` (its most frequent senses), sorted, without ``word``."""
        key = word.lower()
        hit = self._cache.get(key)
        if hit is None:
            out = set()
            for pos, off in self._load().get(key, ()):
                out.update(w for w in self._synset_words(pos, off) if w.lower() != key)
            hit = self._cache[key] = tuple(sorted(out))
        return hit

    def close(self) -> None:
        for f in self._data.values():
            f.close()
        self._data.clear()


def _is_word(tok: str) -> bool:
    """A word EDA may touch: letters only (``3rd``, ``x2`` and numbers are never changed)."""
    return tok.replace("'", "").replace("’", "").isalpha()


def _match_case(new: str, old: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def augment(text: str, operation: str, *, rate: float, rng: random.Random, wordnet: WordNet | None = None) -> tuple[str, int]:
    """Apply one EDA operation to about ``rate`` of the words; returns (text, words changed)."""
    toks = _TOKEN.findall(text)
    words = [i for i, t in enumerate(toks) if _is_word(t)]
    if not words:
        return text, 0
    n = max(1, round(rate * len(words)))
    changed = 0
    # stop words and capitalised words (names, months: "May" is not a hawthorn) are never replaced
    cands = [i for i in words if toks[i].lower() not in STOP_WORDS and not toks[i][:1].isupper()]
    if operation == "synonym":
        rng.shuffle(cands)
        for i in cands:
            syns = wordnet.synonyms(toks[i]) if wordnet else ()
            if syns:
                toks[i] = _match_case(rng.choice(syns), toks[i])
                changed += 1
                if changed >= n:
                    break
    elif operation == "insert":
        for _ in range(n):
            if not cands:
                break
            for _attempt in range(10):
                syns = wordnet.synonyms(toks[rng.choice(cands)]) if wordnet else ()
                if syns:
                    break
            else:
                continue
            at = rng.choice(words)
            toks[at] = toks[at] + " " + rng.choice(syns).lower()
            changed += 1
    elif operation == "swap":
        if len(words) >= 2:
            for _ in range(n):
                a, b = rng.sample(words, 2)
                toks[a], toks[b] = toks[b], toks[a]
                changed += 1
    elif operation == "delete":
        keep_one = rng.choice(words)  # a document never loses every word
        for i in words:
            if i != keep_one and rng.random() < rate:
                toks[i] = ""
                # drop one neighbouring space so no double space is left behind
                if i + 1 < len(toks) and toks[i + 1] == " ":
                    toks[i + 1] = ""
                elif i > 0 and toks[i - 1] == " ":
                    toks[i - 1] = ""
                changed += 1
    else:
        raise ValueError(f"unknown EDA operation {operation!r} (known: {', '.join(OPERATIONS)})")
    return "".join(toks), changed
