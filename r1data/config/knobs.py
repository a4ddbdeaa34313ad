"""The command-line knobs, each declared once: ``r1data run/validate`` options, their range
checks, ``repro`` source fields and ``--sweep`` values, and the manifest's ``knobs`` all come from
``KNOBS``. A stage consumes a knob by naming it with the parameter it sets::

    class QualityFilter(Stage):
        knobs = {"filter_threshold": "threshold"}

A knob given on the command line overrides that parameter in every stage of the recipe that
declares it, and is an error when no stage does (it must never be silently ignored).

Adding a knob: add a ``Knob`` here and name it in the stages it drives; nothing else changes.
Stdlib only: the CLI reads this to build ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from r1data.errors import ConfigError


@dataclass(frozen=True)
class Knob:
    name: str  # python / recipe / manifest name, e.g. filter_threshold
    type: type  # int or float
    help: str  # the CLI option's help
    minimum: float | None = None
    maximum: float | None = None
    range_text: str = ""  # what a bad value is told, after "--flag VALUE: "

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this knob (``None``: it is)."""
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool) and (self.type is float or isinstance(value, int))
        if ok_type and (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum):
            return None
        return f"{self.flag} {value}: {self.range_text}"


KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob(
            "filter_threshold", float, "Keep documents whose calibrated quality scores are all >= T (0..1).", minimum=0.0, maximum=1.0,
            range_text="must be between 0 and 1 (a calibrated percentile)",
        ),
        Knob(
            "dedup_window", int, "Near-dedup within windows of W consecutive input shards; 0 = one global window.", minimum=0,
            range_text="must be an integer >= 0 (0 = one global window)",
        ),
    )
}


def validate_knobs(values: dict[str, Any]) -> dict[str, Any]:
    """Range-check knob values (``None`` = not given); ``ConfigError`` listing every bad one.

    Returns every knob, ``None`` for those not given."""
    unknown = [k for k in values if k not in KNOBS]
    if unknown:
        raise ConfigError(f"unknown knob(s) {', '.join(unknown)}; known: {', '.join(KNOBS)}")
    problems = [p for k, v in values.items() if v is not None and (p := KNOBS[k].problem(v))]
    if problems:
        raise ConfigError(problems)
    return {k: values.get(k) for k in KNOBS}
