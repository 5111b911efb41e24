"""Integers as clients write them: ASCII digits only, bounded in length (pure, light).

Its own module so that the CLI's signal parsing (``signals.py``) reads a number
without importing the limits and their dataclasses (an import on every command).
``limits`` re-exports these names.
"""

from __future__ import annotations

import re

#: Longest integer accepted anywhere (a query parameter, a pid, a signal number).
MAX_INT_DIGITS = 18

_ASCII_INT = re.compile(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}")


def ascii_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits only ("²" and other scripts' digits are not)."""
    return text.isascii() and text.isdigit()


def ascii_int(text: str) -> int | None:
    """The integer written in ASCII digits (an optional ``-``), or None; no ``_``, no spaces."""
    return int(text) if _ASCII_INT.fullmatch(text) else None
