"""Calibrate any model (r1data's, CCNet's, DCLM's) and inspect model cards: ``r1data models calibrate|info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1data.errors import ConfigError
from r1data.paths import resolve_path, sha256_file
from r1data.quality.calibration import CalibrationError
from r1data.quality.cards import CARD_FORMAT, card_path_for, check_model_file, file_entry, load_card, sniff_model, write_card


def _existing_card(model: Path, out: Path | None) -> dict[str, Any] | None:
    for p in (out, card_path_for(model)):
        if p is not None and p.is_file():
            try:
                card = load_card(p)
            except CalibrationError as e:
                raise ConfigError(str(e)) from None
            if card.get("card_format") == CARD_FORMAT:
                return card
    return None


def calibrate_model(
    model: str | Path,
    sample: list[str],
    *,
    out: str | Path | None = None,
    sp_model: str | Path | None = None,
    mode: str | None = None,
    positive_label: str | None = None,
    preprocess: str | None = None,
    limit: int | None = None,
) -> tuple[dict[str, Any], Path]:
    """Score ``sample`` with ``model``, store the percentile table in its card; returns ``(card, card path)``.

    A model without a card (CCNet's, DCLM's) gets a minimal one: its file's sha256, the settings
    used to score it and the calibration."""
    mp = resolve_path(model)
    problem = check_model_file(mp, ("kenlm-binary", "kenlm-arpa", "fasttext"), "model file")
    if problem:
        raise ConfigError(problem)
    out_path = Path(out) if out else card_path_for(mp)
    card = _existing_card(mp, Path(out) if out else None)
    kind = "fasttext_quality" if sniff_model(mp) == "fasttext" else "kenlm"
    if card is not None and card.get("kind") != kind:
        raise ConfigError(f"{out_path}: the card describes a {card.get('kind')} model, but {mp} is a {kind} model")
    if card is None:
        card = {"card_format": CARD_FORMAT, "kind": kind, "name": mp.name.split(".")[0], "files": {}, "calibration": None}
        card["description"] = f"Card written by `r1data models calibrate` for a model built elsewhere ({mp.name})."
    if kind == "kenlm":
        from r1data.quality.kenlm_model import KenLMScorer, calibrate_kenlm, sp_model_for

        scoring = card.setdefault("scoring", {"normalization": "ccnet"})
        scoring["mode"] = mode or scoring.get("mode") or "lines"
        if scoring["mode"] not in ("lines", "document"):
            raise ConfigError(f"--mode {scoring['mode']}: choose lines or document")
        sp = resolve_path(sp_model) if sp_model else sp_model_for(mp)
        if not sp.is_file():
            raise ConfigError(f"SentencePiece model not found: {sp} (pass --sp-model)")
        card["files"].setdefault("lm", file_entry(mp, out_path.parent))
        card["files"].setdefault("sp_model", file_entry(sp, out_path.parent))
        scorer = KenLMScorer(mp, sp, mode=scoring["mode"])
        cal = calibrate_kenlm(scorer, sample, limit=limit)
    else:
        from r1data.quality.fasttext_model import FastTextScorer, calibrate_fasttext

        label = positive_label or card.get("positive_label")
        if not label:
            raise ConfigError(f"{mp} has no model card naming its positive label: pass --positive-label (DCLM's: __label__hq)")
        pre = preprocess or card.get("preprocess") or "oneline"
        if pre not in ("oneline", "normalized"):
            raise ConfigError(f"--preprocess {pre}: choose normalized or oneline")
        card["positive_label"], card["preprocess"] = label, pre
        card["files"].setdefault("model", file_entry(mp, out_path.parent))
        scorer = FastTextScorer(mp, label, preprocess=pre)
        cal = calibrate_fasttext(scorer, sample, limit=limit)
    card["calibration"] = cal.to_dict()
    write_card(card, out_path)
    return card, out_path


def model_info(model: str | Path) -> tuple[dict[str, Any], Path, list[str]]:
    """``(card, card path, file checks)`` for a model file or folder; each check is ``ok ...`` or ``MISMATCH ...``."""
    p = resolve_path(model)
    if p.is_dir():
        cards = sorted(p.glob("*.card.json"))
        if not cards:
            raise ConfigError(f"{p}: no *.card.json in this folder")
        card_path = cards[0]
    elif p.name.endswith(".card.json"):
        card_path = p
    elif p.is_file():
        card_path = card_path_for(p)
    else:
        raise ConfigError(f"model not found: {p}")
    if not card_path.is_file():
        raise ConfigError(f"no model card for {p} (expected {card_path}); `r1data models calibrate` writes one")
    try:
        card = load_card(card_path)
    except CalibrationError as e:
        raise ConfigError(str(e)) from None
    checks = []
    for role, f in (card.get("files") or {}).items():
        fp = Path(f["path"])
        fp = fp if fp.is_absolute() else card_path.parent / fp
        if not fp.is_file():
            checks.append(f"MISMATCH {role}: {fp} is missing")
        elif f.get("sha256") and sha256_file(fp) != f["sha256"]:
            checks.append(f"MISMATCH {role}: {fp} does not match the sha256 in the card")
        else:
            checks.append(f"ok {role}: {fp}")
    return card, card_path, checks
