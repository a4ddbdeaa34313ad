"""Calibrated scores: a raw model score -> "better than this fraction of raw text", in [0, 1].

A ``Calibration`` is a quantile table of a model's raw scores on a *calibration sample* of raw,
unfiltered text (what the scorer sees in production: after extraction and language ID, before any
quality filter). It is stored with the model, in its model card, so a score means the same thing
whichever model produced it::

    cal = Calibration.fit(perplexities, higher_is_better=False, space="log")
    cal.score(340.0)   # 0.71: lower perplexity than 71 % of the calibration sample

``--filter-threshold 0.7`` therefore keeps text better than 70 % of raw text by every scorer, as
CCNet's head bucket keeps the 30 % of pages with the lowest perplexity.

The table holds the 0th..100th percentiles; a score is read off it by linear interpolation
(in log space for perplexities, which span orders of magnitude), so it is monotone by
construction: a worse raw score never gets a higher calibrated score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

FORMAT = "r1data.percentile_rank.v1"
DEFAULT_POINTS = 101  # percentiles 0, 1, ..., 100


def _interp(x: np.ndarray, xs: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """Piecewise-linear ``ps`` over increasing knots ``xs``, flat outside them.

    Like ``np.interp``, but it scales by the fraction of the segment covered instead of by a slope:
    knots a subnormal distance apart (probabilities such as 1e-310 do occur) give ``np.interp`` an
    infinite slope and a non-monotone result; a fraction of the segment stays in [0, 1]."""
    j = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2)
    x0, x1 = xs[j], xs[j + 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = np.clip((x - x0) / (x1 - x0), 0.0, 1.0)
    t = np.where(np.isnan(t), 0.0, t)
    return np.minimum(ps[j] + (ps[j + 1] - ps[j]) * t, ps[j + 1])


class CalibrationError(ValueError):
    """A calibration table is malformed (the message names what is wrong)."""


@dataclass(frozen=True)
class Calibration:
    higher_is_better: bool
    #: cumulative fractions, strictly increasing from 0 to 1
    probs: tuple[float, ...]
    #: raw-score quantiles at ``probs``, non-decreasing
    values: tuple[float, ...]
    n_documents: int
    space: Literal["linear", "log"] = "linear"
    #: where the calibration sample came from (files with sha256), for the model card
    sample: list[dict[str, Any]] = field(default_factory=list, compare=False)
    #: documents of the sample the model could not score (empty ones), left out of the table
    skipped: int = 0

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        raw_scores,
        *,
        higher_is_better: bool,
        space: Literal["linear", "log"] = "linear",
        points: int = DEFAULT_POINTS,
        sample: list[dict[str, Any]] | None = None,
        skipped: int = 0,
    ) -> "Calibration":
        """Quantiles of ``raw_scores`` (non-finite values are left out and counted in ``skipped``)."""
        x = np.asarray(list(raw_scores), dtype=np.float64)
        finite = np.isfinite(x) & ((x > 0) if space == "log" else True)
        skipped += int((~finite).sum())
        x = x[finite]
        if x.size < 2:
            raise CalibrationError(f"a calibration sample needs at least 2 scorable documents, got {x.size}")
        probs = np.linspace(0.0, 1.0, points)
        values = np.quantile(x, probs)
        return cls(
            higher_is_better=higher_is_better,
            probs=tuple(float(p) for p in probs),
            values=tuple(float(v) for v in np.maximum.accumulate(values)),
            n_documents=int(x.size),
            space=space,
            sample=list(sample or []),
            skipped=skipped,
        )

    # -- scoring -----------------------------------------------------------------------------
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        cached = self.__dict__.get("_knots_cache")
        if cached is not None:
            return cached
        xs = np.asarray(self.values, dtype=np.float64)
        ps = np.asarray(self.probs, dtype=np.float64)
        if self.space == "log":
            xs = np.log10(xs)
        # Equal quantiles (a tie in the sample) collapse to one knot at their mid-rank: np.interp
        # needs increasing knots, and a tied value is better than half of its tie group. The lowest
        # and highest knots stay at 0 and 1: the worst value of the sample is better than nothing.
        ux, start = np.unique(xs, return_index=True)
        ends = np.append(start[1:], len(xs)) - 1
        up = (ps[start] + ps[ends]) / 2
        up[0], up[-1] = (ps[0] if len(ux) > 1 else up[0]), (ps[-1] if len(ux) > 1 else up[-1])
        knots = (ux, up)
        object.__setattr__(self, "_knots_cache", knots)
        return knots

    def score_array(self, raw) -> np.ndarray:
        """Calibrated scores of an array of raw scores (NaN and non-positive log-space values -> 0)."""
        x = np.asarray(raw, dtype=np.float64)
        xs, ps = self._knots()
        bad = ~np.isfinite(x)
        if self.space == "log":
            bad |= x <= 0
            with np.errstate(divide="ignore", invalid="ignore"):
                x = np.log10(np.where(bad, 1.0, x))
        if len(xs) == 1:  # every calibration document scored the same
            frac = np.where(x < xs[0], 0.0, np.where(x > xs[0], 1.0, 0.5))
        else:
            frac = _interp(np.where(bad, 0.0, x), xs, ps)  # fraction of the sample scoring <= x
        out = frac if self.higher_is_better else 1.0 - frac
        # +inf perplexity (or NaN anything) is worse than everything
        if not self.higher_is_better:
            out = np.where(np.isposinf(np.asarray(raw, dtype=np.float64)), 0.0, out)
        return np.clip(np.where(bad, 0.0, out), 0.0, 1.0)

    def score(self, raw: float) -> float:
        return float(self.score_array([raw])[0])

    def raw_at(self, percentile: float) -> float:
        """The raw score at a percentile of the calibration sample (e.g. CCNet's p30 perplexity)."""
        return float(np.interp(percentile / 100.0, self.probs, self.values))

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {
            "format": FORMAT,
            "meaning": (
                "calibrated score = fraction of the calibration sample this raw score is better than"
                + (" (higher raw is better)" if self.higher_is_better else " (lower raw is better)")
            ),
            "higher_is_better": self.higher_is_better,
            "space": self.space,
            "n_documents": self.n_documents,
            "skipped_documents": self.skipped,
            "sample": self.sample,
            "percentiles": [round(p * 100, 6) for p in self.probs],
            "values": list(self.values),  # exact: rounding could merge close quantiles into a tie
        }
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "calibration") -> "Calibration":
        """Validate and load a table written by ``to_dict``; ``CalibrationError`` says what is wrong."""
        if not isinstance(d, dict):
            raise CalibrationError(f"{where}: expected a mapping, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise CalibrationError(f"{where}: unknown format {d.get('format')!r} (expected {FORMAT})")
        try:
            probs = [float(p) / 100.0 for p in d["percentiles"]]
            values = [float(v) for v in d["values"]]
            hib = d["higher_is_better"]
            n = int(d["n_documents"])
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"{where}: missing or malformed field {e}") from None
        if not isinstance(hib, bool):
            raise CalibrationError(f"{where}: higher_is_better must be true or false")
        if len(probs) != len(values) or len(probs) < 2:
            raise CalibrationError(f"{where}: percentiles and values must be two lists of the same length (>= 2)")
        if not all(math.isfinite(v) for v in values) or any(b < a for a, b in zip(values, values[1:])):
            raise CalibrationError(f"{where}: values must be finite and non-decreasing")
        if any(b <= a for a, b in zip(probs, probs[1:])) or probs[0] < 0 or probs[-1] > 1:
            raise CalibrationError(f"{where}: percentiles must increase within 0..100")
        space = d.get("space", "linear")
        if space not in ("linear", "log"):
            raise CalibrationError(f"{where}: space must be linear or log")
        if space == "log" and values[0] <= 0:
            raise CalibrationError(f"{where}: log-space values must be positive")
        return cls(
            higher_is_better=hib,
            probs=tuple(probs),
            values=tuple(values),
            n_documents=n,
            space=space,
            sample=list(d.get("sample") or []),
            skipped=int(d.get("skipped_documents", 0)),
        )

    def summary(self) -> dict[str, float]:
        """A few percentiles of the raw score, for cards and ``r1data models info``."""
        return {f"p{p}": _round(self.raw_at(p)) for p in (10, 30, 50, 60, 70, 90)}


def _round(v: float) -> float:
    """Six significant digits: enough for any threshold, short in JSON."""
    return float(f"{v:.6g}")
