"""Request parsing shared by the blueprints: pids, feeds, heartbeats, JSON bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, request

from ..errors import BadValue, InvalidJson
from ..feeds import Feed

_PID_SEGMENT = re.compile(r"[0-9^]+")
DEFAULT_HEARTBEAT = 60.0


def is_pid_segment(segment: str) -> bool:
    """Spec 2.4: a segment of digits (and ``^``) addresses a pid, never a name."""
    return bool(_PID_SEGMENT.fullmatch(segment))


def parse_pid(segment: str) -> int:
    if not segment.isdigit():
        raise BadValue(f"{segment!r} is not a pid")
    return int(segment)


def parse_int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadValue(f"{what} must be an integer, not {value!r}") from None


def feed() -> Feed:
    return Feed.parse(request.args.get("feed"))


def heartbeat() -> float | None:
    """``true`` (default) is 60 s, a number is seconds, ``0``/``false`` disables."""
    value = request.args.get("heartbeat", "true").strip().lower()
    if value == "true":
        return DEFAULT_HEARTBEAT
    if value == "false":
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise BadValue(f"heartbeat must be true, false or seconds, not {value!r}") from None
    if seconds < 0 or seconds != seconds:
        raise BadValue("heartbeat must be >= 0")
    return seconds or None


def optional_int(name: str) -> int | None:
    value = request.args.get(name)
    return None if value is None or value == "" else parse_int(value, name)


def json_body() -> Any:
    try:
        return json.loads(request.get_data() or b"")
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson() from None


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def ok(**extra: Any) -> Response:
    return json_response({"ok": True, **extra})


STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
