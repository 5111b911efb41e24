"""The flapping settings of a template (spec 8.8), parsed from JSON or the ini form.

Pure data shared by ``template`` (which stores them) and ``flapping`` (the policy
that applies them), so neither of those two imports the other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import limits
from .errors import BadValue, InvalidProcessInfo
from .limits import check_text, printable


@dataclass(frozen=True)
class FlappingConfig:
    """Parameters of flapping detection (spec 8.8); the policy lives in flapping.py."""

    attempts: int = 2
    window: float = 1.0
    retry_in: float = 7.0
    max_retry: int = 5

    @classmethod
    def from_value(cls, value: Any) -> FlappingConfig:
        """Build from a JSON object, or the ini form ``"2 1. 7. 5"`` / ``"2, 1., 7., 5"``."""
        if isinstance(value, FlappingConfig):
            return value
        if isinstance(value, str):
            check_text(value, "flapping", limits.MAX_PATH_LENGTH)
            parts = value.replace(",", " ").split()
            names = ("attempts", "window", "retry_in", "max_retry")
            if len(parts) > len(names):
                raise InvalidProcessInfo("flapping takes at most 4 numbers", field="flapping")
            value = dict(zip(names, parts, strict=False))
        if not isinstance(value, Mapping):
            raise InvalidProcessInfo("flapping must be an object", field="flapping")
        unknown = set(value) - {"attempts", "window", "retry_in", "max_retry"}
        if unknown:
            raise InvalidProcessInfo(
                f"unknown flapping key {printable(str(sorted(unknown)[0]))!r}", field="flapping"
            )
        return cls(
            _flapping_count(value, "attempts", cls.attempts, minimum=1),
            _flapping_seconds(value, "window", cls.window),
            _flapping_seconds(value, "retry_in", cls.retry_in),
            _flapping_count(value, "max_retry", cls.max_retry, minimum=0),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "window": self.window,
            "retry_in": self.retry_in,
            "max_retry": self.max_retry,
        }


def _flapping_number(value: Mapping[str, Any], key: str, default: float) -> int | float:
    """A flapping value as a number: JSON numbers as they are, strings (the ini form) parsed."""
    number = value.get(key, default)
    if isinstance(number, str):
        try:
            number = float(number) if number.isascii() and "_" not in number else None
        except ValueError:
            number = None
    if number is None or isinstance(number, bool) or not isinstance(number, int | float):
        raise InvalidProcessInfo(f"flapping {key} must be a number", field="flapping")
    if isinstance(number, float) and not math.isfinite(number):
        raise BadValue(f"flapping {key} must be a finite number", field="flapping")
    return number


def _flapping_count(value: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    number = _flapping_number(value, key, default)
    if not minimum <= number <= limits.MAX_FLAPPING_COUNT or int(number) != number:
        raise BadValue(
            f"flapping {key} must be a whole number from {minimum} to {limits.MAX_FLAPPING_COUNT}",
            field="flapping",
        )
    return int(number)


def _flapping_seconds(value: Mapping[str, Any], key: str, default: float) -> float:
    number = _flapping_number(value, key, default)
    if not 0 <= number <= limits.MAX_TIMEOUT:
        message = f"flapping {key} must be 0 to {limits.MAX_TIMEOUT:g} seconds"
        raise BadValue(message, field="flapping")
    return float(number)
