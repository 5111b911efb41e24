"""One client's connection to gafferd: address, token, TLS, and how a call becomes a request.

Plain calls go through the standard library's one-shot transport (a CLI command
starts fast); feeds open an httpx client on first use. Every refusal becomes the
package's own ``GafferError``, and an unreachable daemon a ``ServerUnreachable``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

from ..defaults import DEFAULT_URL
from ..errors import GafferError
from .credentials import check_token
from .errors import ServerUnreachable, describe, error_from_body
from .feeds import Feed
from .oneshot import OneShotHTTP, Response, TransportError

if TYPE_CHECKING:
    import ssl

    import httpx

T = TypeVar("T")


def segment(value: str | int) -> str:
    """``value`` as one URL path segment: a name with ``/`` or ``?`` stays one segment."""
    return quote(str(value), safe="")


class Session:
    """gafferd at ``url``: the plumbing every call of ``Client`` goes through (see ``Client``)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        cacert: str | None = None,
        cafile: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
    ) -> None:
        if cacert is not None and cafile is not None and cacert != cafile:
            raise ValueError("cacert and cafile are the same setting: give one")
        cacert = cacert if cacert is not None else cafile
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {check_token(token)}"
        self.url = url
        self.timeout = timeout
        self._token_sent = token is not None
        self._ssl: ssl.SSLContext | None = None
        self._uds: str | None = None
        if url.startswith("unix:"):
            self._uds = url.removeprefix("unix:").removeprefix("//")
            base = "http://localhost"
        elif url.startswith(("http://", "https://")):
            base = url.rstrip("/")
            if url.startswith("https://"):
                from .transport import ssl_context  # ssl: only for https

                self._ssl = ssl_context(certfile, keyfile, cacert, verify)
        else:
            raise ValueError(f"unsupported gafferd address {url!r} (http://, https:// or unix:)")
        self._base = base
        # Plain calls: the standard library (a CLI command starts fast); feeds: httpx.
        self._http = OneShotHTTP(
            base,
            uds=self._uds,
            ssl_context=self._ssl,
            headers=headers,
            timeout=timeout,
            connect_timeout=min(timeout, 5.0),
        )
        self._feeds: httpx.Client | None = None

    def __repr__(self) -> str:
        # Says whether a token is set, never which one.
        token = ", token=<set>" if self._token_sent else ""
        return f"Client({self.url!r}{token})"

    # -- plumbing ------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        if self._feeds is not None:
            self._feeds.close()
            self._feeds = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
        body: Any = None,
        content: bytes | None = None,
        ok_statuses: Iterable[int] = (),
    ) -> Response:
        """Send one request; a 4xx/5xx (not in ``ok_statuses``) raises its ``GafferError``."""
        if body is not None:
            content = json.dumps(body).encode()
        elif content is None and method in ("POST", "PUT", "PATCH"):
            content = b""  # spec 14: bodiless writes still send an (empty) body
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            response = self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except TransportError as exc:
            raise ServerUnreachable(self.url, describe(exc)) from exc
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            raise self._error(response, f"{method} {path}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise GafferError(f"{method} {path}: the server sent invalid JSON") from exc

    def _error(self, response: Response | httpx.Response, context: str) -> GafferError:
        try:
            body = response.json()
        except ValueError:
            body = None
        return error_from_body(
            response.status_code,
            body,
            context,
            headers=response.headers,
            token_sent=self._token_sent,
        )

    def _open_feed(
        self,
        path: str,
        params: dict[str, str | int],
        heartbeat: int,
        items: Callable[[Iterator[bytes]], Iterator[T]],
    ) -> Feed[T]:
        # A silent server is noticed after two missed heartbeats; without heartbeats, wait.
        import httpx  # only now: plain calls never need it

        from .stdlib_transport import StdlibTransport

        read = None if heartbeat <= 0 else 2.0 * heartbeat + 5.0
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0), read=read)
        if self._feeds is None:
            self._feeds = httpx.Client(
                base_url=self._base,
                transport=StdlibTransport(self._http),
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                headers=self._http.headers,
                trust_env=False,
            )
        request = self._feeds.build_request("GET", path, params=params, timeout=timeout)
        try:
            response = self._feeds.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, describe(exc)) from exc
        if response.status_code >= 400:
            try:
                response.read()
            finally:
                response.close()
            raise self._error(response, f"GET {path}")
        return Feed(response, items, self.url)
