"""Event patterns (spec 6.3): which dotted event names a ``/watch`` pattern selects.

Pure, so the event bus (server side) and the client (which filters a feed by
pattern) share one implementation without the client importing gevent.
"""

from __future__ import annotations


def normalize_pattern(pattern: str) -> str:
    """``.`` is the wildcard; a trailing dot is ignored (``a.b.`` == ``a.b``)."""
    if pattern in ("", "."):
        return "."
    return pattern.rstrip(".") or "."


def matches(pattern: str, event: str) -> bool:
    """Whole-segment prefix match from the left (spec 6.3)."""
    pattern = normalize_pattern(pattern)
    return pattern == "." or event == pattern or event.startswith(pattern + ".")
