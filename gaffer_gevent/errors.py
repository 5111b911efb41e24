"""The error catalogue: each class carries its HTTP status and the spec's error code.

The API renders any ``GafferError`` as ``{"error": code}`` with ``status``; the
CLIs map the same classes to exit codes. Codes live here once.
"""

from __future__ import annotations


class GafferError(Exception):
    """Base of every error the manager or the API reports to a caller."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self, message: str = "", *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.field = field
        #: Response headers the error needs (``WWW-Authenticate``, ``Retry-After``).
        self.headers = headers or {}

    def to_json(self) -> dict[str, str]:
        body = {"error": self.code}
        if self.message != self.code:
            body["reason"] = self.message
        return body


class NotFound(GafferError):
    status, code = 404, "not_found"


class ResourceNotFound(GafferError):
    status, code = 404, "resource_not_found"


class BadEventType(GafferError):
    status, code = 404, "bad_event_type"


class IoNotFound(GafferError):
    status, code = 404, "io_not_found"


class IoNotRedirected(GafferError):
    status, code = 400, "io_not_redirected"


class InvalidJson(GafferError):
    status, code = 400, "invalid_json"


class InvalidProcessInfo(GafferError):
    status, code = 400, "invalid_process_info"


class BadValue(GafferError):
    status, code = 400, "bad_value"


class NoSignalNumber(GafferError):
    status, code = 400, "no_signal_number"


class Forbidden(GafferError):
    status, code = 403, "forbidden_write"


class Unauthorized(GafferError):
    """No credential, or one gafferd does not know."""

    status, code = 401, "unauthorized"


class NotAllowed(GafferError):
    """A known credential whose role or scope does not cover the request."""

    status, code = 403, "forbidden"


class ForbiddenOrigin(GafferError):
    """A browser request from a web page on another origin that is not listed in cors_origins."""

    status, code = 403, "forbidden_origin"


class MisdirectedRequest(GafferError):
    """A Host header that names none of gafferd's addresses: DNS rebinding, or a wrong name."""

    status, code = 421, "misdirected_request"


class TooManyFailures(GafferError):
    """Too many failed authentications from one address: it waits for ``Retry-After``."""

    status, code = 429, "too_many_failures"


class DependencyCycle(GafferError):
    """``depends_on`` would make templates wait for each other forever; the reason is the loop."""

    status, code = 400, "dependency_cycle"


class UnknownDependency(GafferError):
    """``depends_on`` names a template (or a ``group:*`` with no template) that does not exist."""

    status, code = 400, "unknown_dependency"


class MethodNotAllowed(GafferError):
    status, code = 405, "method_not_allowed"


class Conflict(GafferError):
    status, code = 409, "conflict"


class PayloadTooLarge(GafferError):
    status, code = 413, "payload_too_large"


class StdinFull(GafferError):
    """The child is not reading its stdin fast enough: the bounded queue is full."""

    status, code = 503, "stdin_full"


class NotTheManager(GafferError):
    """Another manager holds the runtime dir's lock: this one must not start processes.

    gafferd exits 1 with this one line; a gunicorn worker that stands by answers it as 503.
    """

    status, code = 503, "not_the_manager"

    def __init__(self, message: str, *, holder: int | None = None, lock: str = "") -> None:
        super().__init__(message, headers={"Retry-After": "1"})
        #: The pid written in the lock file by the manager holding it (None when unreadable).
        self.holder, self.lock = holder, lock


class ConfigError(GafferError):
    """A gafferd config file that cannot be used; gafferd exits 2 with one line."""

    status, code = 400, "bad_config"

    def __init__(
        self, message: str, *, path: str = "", section: str = "", key: str | None = None
    ) -> None:
        super().__init__(message, field=key)
        self.path, self.section, self.key = path, section, key

    def __str__(self) -> str:
        where = self.path or "<config>"
        if self.section:
            where += f": [{self.section}]"
        if self.key:
            where += f" {self.key}"
        return f"{where}: {self.message}"


class BindError(OSError):
    """gafferd cannot listen on an address; the message names it. Not an HTTP error."""
