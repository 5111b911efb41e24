"""Converters from an ini value's text to the typed value a config key holds.

Each raises ``ValueError`` with a message for the user ("'x' is not an
integer"); the config parser adds the file, section and key. Numbers are ASCII
digits only and finite, by the same rules as the API's bounds (``limits``), so a
value the ini accepts is one ``POST /processes`` would accept too.
"""

from __future__ import annotations

import configparser
import json
import math
import re
from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

from .errors import GafferError
from .flapping import BackoffConfig
from .template import FlappingConfig

T = TypeVar("T")

_SIZE = re.compile(r"\s*([0-9]{1,18})\s*(kb|mb|gb)?\s*", re.IGNORECASE)
_INT = re.compile(r"\s*-?[0-9]{1,18}\s*")
_SIZE_UNITS = {None: 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_BACKOFF_KEYS = ("first_delay", "max_delay", "reset_after", "give_up_after")


def converter(parse: Callable[[str], T], what: str) -> Callable[[str], T]:
    """Wrap ``parse`` so any failure reads "'x' is not <what>"."""

    def convert(value: str) -> T:
        try:
            return parse(value)
        except (ValueError, KeyError):
            raise ValueError(f"{value!r} is not {what}") from None

    return convert


def _finite(value: str) -> float:
    if not value.isascii() or "_" in value:
        raise ValueError(value)  # float() takes other scripts' digits and "1_0"
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _bytes(value: str) -> int:
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(value)
    number, unit = match.groups()
    return int(number) * _SIZE_UNITS[unit.lower() if unit else None]


def _ascii_int(value: str) -> int:
    if not _INT.fullmatch(value):
        raise ValueError(value)  # int() takes other scripts' digits, "1_000", 5,000 digits
    return int(value)


def _octal_mode(value: str) -> int:
    mode = int(value.strip(), 8)
    if not 0 <= mode <= 0o777:
        raise ValueError(value)
    return mode


as_bool = converter(
    lambda v: configparser.ConfigParser.BOOLEAN_STATES[v.strip().lower()], "a boolean"
)
as_int = converter(_ascii_int, "an integer")
as_float = converter(_finite, "a finite number")
as_size = converter(_bytes, "a size in bytes (e.g. 4096, 64KB, 50MB, 1GB)")
as_mode = converter(_octal_mode, "an octal file mode such as 0600 or 0660")


def as_user(value: str) -> int | str:
    """A uid or gid as a number when it is all digits, else a name to look up."""
    return int(value) if value.isascii() and value.isdigit() else value


def as_list(value: str) -> list[str]:
    """``a, b,, c`` -> ``["a", "b", "c"]``: empty items dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def as_labels(value: str) -> list[str]:
    """Stream labels, comma separated; empty items kept for the template to refuse."""
    return [label.strip() for label in value.split(",")] if value.strip() else []


def as_flapping(value: str) -> dict[str, Any]:
    """``flapping = ATTEMPTS [WINDOW [RETRY_IN [MAX_RETRY]]]``: the numbers given, checked by
    ``FlappingConfig``'s own rules so the ini and the API accept the same settings."""
    names = [item.name for item in fields(FlappingConfig)]
    parts = value.replace(",", " ").split()
    if not 1 <= len(parts) <= len(names):
        raise ValueError("takes 1 to 4 numbers: " + " ".join(names))
    given = {key: as_float(part) for key, part in zip(names, parts, strict=False)}
    try:
        settings = FlappingConfig.from_value(given).to_json()
    except GafferError as exc:
        raise ValueError(exc.message.removeprefix("flapping ")) from None  # the key is named
    return {key: settings[key] for key in given}


def as_backoff(value: str) -> BackoffConfig:
    """``backoff = FIRST_DELAY [MAX_DELAY [RESET_AFTER [GIVE_UP_AFTER]]]``, like ``flapping``."""
    parts = value.replace(",", " ").split()
    if not 1 <= len(parts) <= len(_BACKOFF_KEYS):
        raise ValueError("takes 1 to 4 numbers: first_delay max_delay reset_after give_up_after")
    numbers = [as_float(part) for part in parts]
    if len(numbers) == 4 and not numbers[3].is_integer():
        raise ValueError(f"give_up_after must be a whole number, not {parts[3]!r}")
    settings: dict[str, Any] = dict(zip(_BACKOFF_KEYS, numbers, strict=False))
    if "give_up_after" in settings:
        settings["give_up_after"] = int(settings["give_up_after"])
    return BackoffConfig(**settings)


def as_check(value: str) -> Any:
    """``readiness = {"http": "http://127.0.0.1:$PORT/health", "period": 2}``: the API's JSON
    object on one line, checked by the template like a ``POST /processes`` body."""
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"must be a JSON object on one line ({exc})") from None
