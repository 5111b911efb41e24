"""How the client reports failures: the server's error codes as ``GafferError`` classes."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..errors import GafferError


class ServerUnreachable(GafferError):
    """gafferd could not be reached (refused, timed out, connection lost) at ``address``."""

    status, code = 503, "server_unreachable"

    def __init__(self, address: str, reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(f"cannot reach gafferd at {address}{detail}")
        self.address = address


# code -> class, from the catalogue in errors.py, so the catalogue lives in one place.
_ERRORS_BY_CODE: dict[str, type[GafferError]] = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, GafferError) and cls is not errors.ConfigError
}


def error_from_body(status: int, body: Any, context: str = "") -> GafferError:
    """The ``GafferError`` for an error response; unknown codes keep the server's code."""
    code = body.get("error") if isinstance(body, dict) else None
    reason = body.get("reason") if isinstance(body, dict) else None
    message = str(reason) if reason else context
    if not isinstance(code, str):
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, f"http_{status}")
    cls = _ERRORS_BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    error = GafferError(message or code)
    error.status, error.code = status, code
    return error


def describe(exc: Exception) -> str:
    """The first line of a transport error, for a one-line message."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else text
