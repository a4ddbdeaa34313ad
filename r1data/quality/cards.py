"""Model cards: what a model is, what it was built from, how good it is, and its calibration.

A model built by r1data sits in a folder named after it, beside its card::

    models/kenlm/en/en.arpa.bin     KenLM binary (CCNet's naming, so CCNet pairs drop in)
    models/kenlm/en/en.sp.model     its SentencePiece model
    models/kenlm/en/en.card.json    the model card: corpus files + sha256, commands, calibration
    models/kenlm/en/en.card.md      the same, for people

A model from elsewhere (CCNet's ``en.arpa.bin`` + ``en.sp.model``, DCLM's fastText ``.bin``) has no
card; ``r1data models calibrate`` writes one beside it (or where ``--out`` says), holding only the
calibration table and the model's sha256.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from r1data.quality.calibration import Calibration, CalibrationError

CARD_FORMAT = "r1data.model_card.v1"
FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin/.ftz
KENLM_BINARY_MAGIC = b"mmap lm "


def model_stem(path: str | Path) -> str:
    """``en.arpa.bin`` -> ``en`` (CCNet names a language's files ``<lang>.<kind>``)."""
    return Path(path).name.split(".")[0]


def card_path_for(model: str | Path) -> Path:
    """Where the card of a model file lives: ``<folder>/<stem>.card.json``."""
    p = Path(model)
    return p.with_name(f"{model_stem(p)}.card.json")


def sniff_model(path: str | Path) -> str | None:
    """``kenlm-binary``, ``kenlm-arpa``, ``fasttext`` or None, from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(KENLM_BINARY_MAGIC):
        return "kenlm-binary"
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] == FASTTEXT_MAGIC:
        return "fasttext"
    if head.lstrip().startswith(b"\\data\\"):
        return "kenlm-arpa"
    return None


def check_model_file(path: Path, expected: tuple[str, ...], what: str) -> str | None:
    """None when ``path`` is a readable model of one of the ``expected`` kinds, else the problem."""
    if not path.exists():
        return f"{what} not found: {path}"
    if not path.is_file():
        return f"{what} is not a file: {path}"
    try:
        kind = sniff_model(path)
    except OSError as e:
        return f"{what} cannot be read: {path} ({e.strerror or e})"
    if kind not in expected:
        names = {"kenlm-binary": "a KenLM binary", "kenlm-arpa": "an ARPA file", "fasttext": "a fastText model"}
        found = names.get(kind or "", "none of the known model formats")
        return f"{what} {path} is {found}; expected {' or '.join(names[e] for e in expected)}"
    return None


def load_card(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise CalibrationError(f"model card cannot be read: {p} ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise CalibrationError(f"model card is not valid JSON: {p}:{e.lineno} ({e.msg})") from None
    if not isinstance(card, dict):
        raise CalibrationError(f"model card {p}: expected a JSON object")
    return card


def load_calibration_file(path: str | Path) -> Calibration:
    """A calibration from a model card (its ``calibration`` entry) or from a bare table file."""
    card = load_card(path)
    table = card.get("calibration") if card.get("card_format") == CARD_FORMAT else card
    if table is None:
        raise CalibrationError(f"{path} has no calibration table")
    return Calibration.from_dict(table, where=str(path))


def find_calibration(model: Path, calibration: str | Path | None) -> tuple[Calibration | None, Path | None, str | None]:
    """``(calibration, file it came from, problem)`` for a model: the explicit file, else its card."""
    from r1data.paths import resolve_path

    if calibration is not None:
        p = resolve_path(calibration)
        if not p.is_file():
            return None, p, f"calibration file not found: {p}"
        try:
            return load_calibration_file(p), p, None
        except CalibrationError as e:
            return None, p, str(e)
    card = card_path_for(model)
    hint = (
        f"scores must be calibrated against raw text: run `r1data models calibrate {model} --sample RAW_TEXT...` "
        f"(writes {card.name} beside the model, or use --out and set calibration: FILE)"
    )
    if not card.is_file():
        return None, None, f"no calibration for {model} (no model card {card}); {hint}"
    try:
        c = load_card(card)
    except CalibrationError as e:
        return None, card, str(e)
    if c.get("calibration") is None:
        return None, card, f"model card {card} has no calibration table; {hint}"
    try:
        return Calibration.from_dict(c["calibration"], where=f"{card}: calibration"), card, None
    except CalibrationError as e:
        return None, card, str(e)


def write_card(card: dict[str, Any], json_path: Path) -> tuple[Path, Path]:
    """Write ``<stem>.card.json`` and its markdown rendering ``<stem>.card.md``."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(json_path)
    md_path = json_path.with_suffix(".md")
    md_path.write_text(render_markdown(card), encoding="utf-8")
    return json_path, md_path


def _files_table(files: list[dict[str, Any]]) -> list[str]:
    lines = ["| file | documents | bytes | sha256 |", "|---|---:|---:|---|"]
    for f in files:
        lines.append(f"| `{f['path']}` | {f.get('documents', '')} | {f.get('bytes', '')} | `{f.get('sha256', '')[:16]}…` |")
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    """A short human-readable model card."""
    kind = card.get("kind", "?")
    out = [f"# Model card: {card.get('name', '?')} ({kind})", ""]
    if card.get("description"):
        out += [card["description"], ""]
    out.append("## Files")
    for role, f in (card.get("files") or {}).items():
        out.append(f"- {role}: `{f['path']}` ({f.get('bytes', '?')} bytes, sha256 `{f.get('sha256', '?')}`)")
    out.append("")
    if kind == "kenlm":
        m = card.get("model", {})
        out += [
            "## Model",
            f"- order {m.get('order')}, SentencePiece vocabulary {m.get('sp_vocab_size')}, n-grams {m.get('ngrams')}",
            f"- binary: {m.get('binary_type')}, scoring mode `{card.get('scoring', {}).get('mode')}`"
            " (CCNet normalisation; perplexity = 10^(-sum log10 p / tokens), tokens = pieces + </s> per line)",
            "",
        ]
    if kind == "fasttext_quality":
        m = card.get("model", {})
        out += [
            "## Model",
            f"- labels: positive `{card.get('positive_label')}`, negative `{card.get('negative_label')}`",
            f"- hyperparameters: {json.dumps(m.get('hyperparameters', {}))}",
            f"- text preprocessing: `{card.get('preprocess')}`",
            "",
        ]
        ev = card.get("evaluation")
        if ev:
            out += [
                "## Held-out evaluation",
                f"{ev.get('heldout_fraction', 0) * 100:.0f} % of the documents, never trained on "
                f"({ev.get('positives')} positive, {ev.get('negatives')} negative): precision {ev.get('precision')}, "
                f"recall {ev.get('recall')}, F1 {ev.get('f1')} at P(positive) >= {ev.get('threshold')}; ROC AUC {ev.get('roc_auc')}.",
                "",
            ]
    tr = card.get("training") or {}
    for key, title in (("corpus", "Training corpus"), ("positive", "Positive documents"), ("negative", "Negative documents")):
        if tr.get(key):
            out += [f"## {title}", *_files_table(tr[key]), ""]
    if tr.get("synthetic_negatives"):
        out += ["Generated negatives: " + json.dumps(tr["synthetic_negatives"]), ""]
    cal = card.get("calibration")
    out.append("## Calibration")
    if cal:
        better = "higher" if cal.get("higher_is_better") else "lower"
        out.append(
            f"Percentile ranks against {cal.get('n_documents')} documents of raw text ({better} raw score is better); "
            "a calibrated score of 0.7 means better than 70 % of that sample."
        )
        try:
            summ = Calibration.from_dict(cal).summary()
            out.append("Raw score at percentiles: " + ", ".join(f"{k} = {v}" for k, v in summ.items()))
        except CalibrationError:
            pass
        if cal.get("sample"):
            out += ["", *_files_table(cal["sample"])]
    else:
        out.append("None yet: run `r1data models calibrate MODEL --sample RAW_TEXT...`.")
    out.append("")
    if card.get("commands"):
        out += ["## Commands", "```", *card["commands"], "```", ""]
    if card.get("versions"):
        out += ["## Versions", ", ".join(f"{k} {v}" for k, v in card["versions"].items()), ""]
    return "\n".join(out)


def file_entry(path: Path, base: Path) -> dict[str, Any]:
    """A card's record of one of the model's own files (path relative to the card's folder)."""
    from r1data.paths import sha256_file

    try:
        rel = str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        rel = str(path)
    return {"path": rel, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def versions(*packages: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("r1data", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
