"""Signal names and numbers: the one parser the manager and the client share.

It lives apart from both so the client (which must not import gevent) and the
manager read ``15``, ``TERM`` and ``sigterm`` the same way.
"""

from __future__ import annotations

import signal

from .ascii_numbers import MAX_INT_DIGITS, ascii_int
from .errors import BadValue


def parse_signal(value: int | str) -> int:
    """A signal by number or name (``15``, ``TERM``, ``sigterm``); BadValue otherwise."""
    if isinstance(value, str):
        text = value.strip().upper()
        number = ascii_int(text)
        if number is not None:
            value = number
        elif len(text) > MAX_INT_DIGITS or not text.isascii() or not text.isalnum():
            raise BadValue(f"unknown signal {value[:MAX_INT_DIGITS]!r}")
        else:
            name = text if text.startswith("SIG") else "SIG" + text
            try:
                return int(signal.Signals[name])
            except KeyError as exc:
                raise BadValue(f"unknown signal {value!r}") from exc
    try:
        return int(signal.Signals(value))
    except ValueError as exc:
        raise BadValue(f"unknown signal {value!r}") from exc
