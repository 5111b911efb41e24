"""How the client reports failures: the server's error codes as ``GafferError`` classes.

The classes are the catalogue of ``gaffer_gevent.errors`` (which the server
renders), so ``except errors.NotAllowed`` works on both sides of the wire; for
gafferd's authentication answers (401, 403, 429) the client raises subclasses
that add what it knows (was a token sent? when to retry?), so a refused token
or a throttled address is one line in the CLIs, not a traceback. None of them
ever holds the token: messages come from the server's ``reason`` or from here.
"""

from __future__ import annotations

from collections.abc import Mapping
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


class TokenError(ValueError):
    """A token (or token file) that cannot be sent; the message never contains the token."""


class Unauthorized(errors.Unauthorized):
    """401: no token, or one gafferd does not know (never issued, or removed from its config).

    ``token_sent`` tells the two apart, so the CLIs can say how to give a token
    only when none was given. The message is the client's own: it knows which
    of the two happened, and the server's reason speaks HTTP, not options.
    """

    def __init__(self, message: str = "", *, token_sent: bool = False) -> None:
        if not message:
            message = (
                "gafferd did not accept the token (unknown, or removed from its config)"
                if token_sent
                else "this gafferd needs a token"
            )
        super().__init__(message)
        self.token_sent = token_sent


class AccessForbidden(errors.NotAllowed):
    """403 ``forbidden``: the token is known, but its role or scope does not allow this."""


#: 403 ``forbidden_origin`` and 421 ``misdirected_request``: the catalogue's own classes.
ForbiddenOrigin = errors.ForbiddenOrigin
MisdirectedRequest = errors.MisdirectedRequest


class TooManyFailures(errors.TooManyFailures):
    """429: too many failed authentications from this address; ``retry_after`` in seconds."""

    def __init__(self, message: str = "", *, retry_after: int | None = None) -> None:
        if retry_after is not None:
            message = f"{message or 'too many failed authentications'} (retry in {retry_after} s)"
        super().__init__(message)
        self.retry_after = retry_after


#: Default messages when the server sends no ``reason`` (the request line says little here).
_AUTH_MESSAGES: dict[str, str] = {
    AccessForbidden.code: "the token's role or scope does not allow this",
    ForbiddenOrigin.code: "gafferd does not accept requests from this origin",
    MisdirectedRequest.code: "gafferd does not answer to this host name (server_names)",
    TooManyFailures.code: "too many failed authentications from this address",
}

# code -> class, from the catalogue in errors.py, so the catalogue lives in one place; the
# client's subclasses above (which carry what the client knows) replace their bases.
_ERRORS_BY_CODE: dict[str, type[GafferError]] = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, GafferError) and cls is not errors.ConfigError
}
_ERRORS_BY_CODE.update(
    {cls.code: cls for cls in (Unauthorized, AccessForbidden, ForbiddenOrigin, MisdirectedRequest)}
)


def retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` as whole seconds; an HTTP date or garbage gives None."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        return None
    return int(value)


def error_from_body(
    status: int,
    body: Any,
    context: str = "",
    *,
    headers: Mapping[str, str] | None = None,
    token_sent: bool = False,
) -> GafferError:
    """The ``GafferError`` for an error response; unknown codes keep the server's code.

    ``headers`` gives ``Retry-After`` to a 429; ``token_sent`` says whether the
    request carried a token, which changes what a 401 means.
    """
    code = body.get("error") if isinstance(body, dict) else None
    reason = body.get("reason") if isinstance(body, dict) else None
    reason = str(reason) if reason else ""
    if not isinstance(code, str):
        code = {
            401: Unauthorized.code,
            403: AccessForbidden.code,  # a HEAD answer has no body to say which 403
            404: "not_found",
            405: "method_not_allowed",
            421: MisdirectedRequest.code,
            429: TooManyFailures.code,
        }.get(status, f"http_{status}")
    if code == Unauthorized.code:
        return Unauthorized(token_sent=token_sent)
    if code == TooManyFailures.code:
        retry = retry_after_seconds((headers or {}).get("retry-after"))
        return TooManyFailures(reason or _AUTH_MESSAGES[code], retry_after=retry)
    message = reason or _AUTH_MESSAGES.get(code, context)
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
