"""Reusable steps: each step's output folder remembers the key of what made it.

A step's key is a hash of its parameters and of the fingerprints (content hashes) of the steps it
reads. A rerun skips a step whose folder holds a finished result with the same key, so changing
one parameter reruns that step and what depends on it, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

MARKER = ".repro-step.json"


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def _version() -> str:
    """A result made by another r1data release is not reused."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("r1data")
    except PackageNotFoundError:
        return "unknown"


@dataclass
class StepResult:
    name: str
    out: Path
    key: str
    fingerprint: str
    seconds: float
    reused: bool
    info: dict[str, Any] = field(default_factory=dict)


class Steps:
    """Runs steps in order, reusing finished ones; ``force`` names steps to redo regardless.

    ``root`` / ``write_root`` / ``lookup``: a sweep writes the steps that change into its own folder
    (``write_root``) while any step whose key is already finished under ``root`` or one of the
    ``lookup`` folders (same relative path) is reused from there. Without them, a step runs where
    it is asked to."""

    def __init__(self, log: Callable[[str], None], force: set[str] | None = None, dry_run: bool = False,
                 root: Path | None = None, write_root: Path | None = None, lookup: list[Path] | tuple = ()):
        self.log = log
        self.force = force or set()
        self.dry_run = dry_run
        self.root = root
        self.write_root = write_root
        self.lookup = list(lookup)
        self.results: dict[str, StepResult] = {}

    def _places(self, out: Path) -> tuple[list[Path], Path]:
        """Where a finished result may already be, and where a new one is written."""
        if self.root is None or self.write_root is None:
            return [out], out
        rel = out.relative_to(self.root)
        places = [self.root / rel, self.write_root / rel] + [base / rel for base in self.lookup]
        seen: list[Path] = []
        for p in places:
            if p not in seen:
                seen.append(p)
        return seen, self.write_root / rel

    def done(self, out: Path, key: str) -> dict | None:
        marker = out / MARKER
        if not marker.is_file():
            return None
        rec = json.loads(marker.read_text())
        return rec if rec.get("key") == key and rec.get("finished") else None

    def run(self, name: str, out: Path, params: dict[str, Any], fn: Callable[[Path], tuple[str, dict]], *, clean: bool = True) -> StepResult:
        """Run ``fn(out) -> (fingerprint, info)`` unless ``out`` already holds this key's result.

        ``clean``: empty ``out`` before a run whose key changed (steps that resume by themselves,
        such as pipeline runs, pass False and handle their folder)."""
        key = digest({"step": name, "r1data": _version(), **params})
        places, write_to = self._places(out)
        prev = None
        if name not in self.force:
            for place in places:
                prev = self.done(place, key)
                if prev is not None:
                    out = place
                    break
        if prev is None:
            out = write_to
        if prev is not None:
            res = StepResult(name, out, key, prev["fingerprint"], prev["seconds"], True, prev.get("info", {}))
            self.log(f"{name}: reused ({out}, key {key[:12]})")
            self.results[name] = res
            return res
        if self.dry_run:
            self.log(f"{name}: would run -> {out} (key {key[:12]})")
            res = StepResult(name, out, key, "", 0.0, False)
            self.results[name] = res
            return res
        marker = out / MARKER
        if clean and out.exists():
            old = json.loads(marker.read_text()).get("key") if marker.is_file() else None
            if old != key:
                shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        self.log(f"{name}: running -> {out}")
        t0 = time.perf_counter()
        fingerprint, info = fn(out)
        seconds = round(time.perf_counter() - t0, 2)
        marker.write_text(
            json.dumps({"step": name, "key": key, "params": params, "fingerprint": fingerprint, "seconds": seconds, "info": info, "finished": True}, indent=1, default=str)
        )
        self.log(f"{name}: done in {seconds:.1f} s")
        res = StepResult(name, out, key, fingerprint, seconds, False, info)
        self.results[name] = res
        return res
