"""Request parsing shared by the blueprints: pids, integers, JSON bodies.

A feed's own parameters (``feed``, ``heartbeat``, ``since``...) are parsed in
``feeds.options``, next to the feeds that use them.

Digits are ASCII digits everywhere (``"²"`` passes ``str.isdigit`` and then
fails ``int``), integers have at most 18 of them, and a JSON body is bounded
in size (413) and depth before it is parsed.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from flask import Response, g, request

from ..errors import BadValue, GafferError, InvalidJson, PayloadTooLarge
from ..limits import (
    MAX_JSON_DEPTH,
    MAX_TEMPLATE_BODY,
    ascii_digits,
    ascii_int,
    json_too_deep,
    optional_int_of,
    shown,
)  # fmt: skip
from ..limits import parse_int as parse_int


def is_pid_segment(segment: str) -> bool:
    """Spec 2.4: a segment of ASCII digits, or one with a ``^``, addresses a pid, never a name."""
    return ascii_digits(segment) or "^" in segment


def pid_of(segment: str) -> int | None:
    """The pid a segment of ASCII digits names, or None (not digits, or too many)."""
    return ascii_int(segment) if ascii_digits(segment) else None


def parse_pid(segment: str) -> int:
    pid = pid_of(segment)
    if pid is None:
        raise BadValue(f"{shown(segment)} is not a pid")
    return pid


def optional_int(name: str) -> int | None:
    return optional_int_of(request.args.get(name), name)


def json_body(limit: int = MAX_TEMPLATE_BODY) -> Any:
    """The request's JSON: at most ``limit`` bytes (413), nested at most 32 deep, no NaN.

    Kept for the request once parsed: the guard reads a new template's name from it
    before the view does, and the body stream can be read only once.
    """
    if "gaffer_json_body" not in g:
        try:
            g.gaffer_json_body = _parse_body(limit)
        except GafferError as exc:
            g.gaffer_json_body = exc
    if isinstance(g.gaffer_json_body, GafferError):
        raise g.gaffer_json_body
    return g.gaffer_json_body


def _parse_body(limit: int) -> Any:
    text = _text(_bounded_body(limit))
    if json_too_deep(text, MAX_JSON_DEPTH):
        raise InvalidJson(f"arrays and objects nest deeper than {MAX_JSON_DEPTH}")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise InvalidJson() from None


def _bounded_body(limit: int) -> bytes:
    """The body, read no further than ``limit`` + 1 bytes, whatever Content-Length says."""
    too_large = PayloadTooLarge(f"the body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    while size <= limit and (part := request.stream.read(min(65536, limit + 1 - size))):
        parts.append(part)
        size += len(part)
    if size > limit:
        raise too_large
    return b"".join(parts)


def _text(data: bytes) -> str:
    try:
        return data.decode(json.detect_encoding(data))
    except (UnicodeDecodeError, LookupError):
        raise InvalidJson("the body is not UTF-8, UTF-16 or UTF-32 text") from None


def _no_constant(name: str) -> NoReturn:
    raise InvalidJson(f"{name} is not a JSON number")


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def ok(**extra: Any) -> Response:
    return json_response({"ok": True, **extra})
