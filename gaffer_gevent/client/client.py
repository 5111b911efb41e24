"""The ``Client`` class: every call of gafferd's HTTP API as a typed method."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, TypeVar, cast, overload
from urllib.parse import quote

from ..defaults import DEFAULT_URL
from ..errors import BadValue, GafferError
from ..patterns import matches
from ..signals import parse_signal
from .credentials import check_token
from .errors import ServerUnreachable, describe, error_from_body
from .feeds import Feed, ndjson_output, raw_chunks, sse_events
from .oneshot import OneShotHTTP, Response, TransportError
from .sse import SSEEvent
from .stream_socket import StreamSocket, open_stream_socket
from .transport import ssl_context

if TYPE_CHECKING:
    import httpx

FeedName = Literal["longpoll", "continuous", "eventsource"]
T = TypeVar("T")


class Status(TypedDict):
    """The body of ``GET /status/<name>`` (spec 4.9), then our keys (absent from gaffer 0.4)."""

    active: bool
    running: int
    max_processes: int
    state: NotRequired[str]  # "running", "backoff", "failed" or "stopped"
    restarts: NotRequired[int]
    failures: NotRequired[int]
    retry_in: NotRequired[float | None]


class Ticket(TypedDict):
    """The body of ``POST /auth/ticket``: a single-use ``?ticket=`` for a browser's feed."""

    ticket: str
    expires_in: int


class WhoAmI(TypedDict):
    """The body of ``GET /auth/whoami``: the token's name, role and scope (globs)."""

    name: str | None
    role: str
    scope: Any


def signal_number(sig: int | str) -> int:
    """``15``, ``"15"``, ``"term"``, ``"SIGTERM"`` -> 15; an unknown name is a ValueError.

    The API wants numbers (spec 12, ``kill``): names are converted here, on the client, by
    the parser the manager uses. A number is sent as given: the server judges it.
    """
    if isinstance(sig, int):
        return sig
    try:
        return parse_signal(sig)
    except BadValue as exc:
        raise ValueError(exc.message) from None


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


class Client:
    """gafferd over ``http://``, ``https://`` or ``unix:/path/to.sock``.

    ``token`` is sent as ``Authorization: Bearer <token>`` on every request,
    feed and websocket (never in a URL: ``?ticket=`` is for browsers, which
    cannot set headers). ``certfile``/``keyfile`` are a client certificate
    (mTLS); ``cacert`` is the CA that signed the server's certificate, for a
    private CA (``cafile`` is its older name; ``verify=False`` skips the check).
    Proxy environment variables are ignored: a control connection to a daemon
    must go where it was told to, and so must its token. Redirects are not
    followed, for the same reason.
    """

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

    def __enter__(self) -> Client:
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
            headers=cast("Mapping[str, str]", response.headers),
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

    # -- server --------------------------------------------------------------

    def version(self) -> str:
        """The server's version string (``GET /``)."""
        return str(self._json("GET", "/")["version"])

    def ping(self) -> bool:
        """True when ``GET /ping`` answers ``OK``."""
        return self.request("GET", "/ping").text.strip() == "OK"

    def health(self) -> dict[str, Any]:
        """``GET /health`` (answered without a token, for load balancers), as a dict.

        A body that is not a JSON object (a bare ``OK``) becomes ``{"status": <text>}``;
        an unhealthy answer (4xx/5xx) raises its ``GafferError`` like any other call.
        """
        response = self.request("GET", "/health")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        return {"status": response.text.strip() or "ok"}

    # -- auth ----------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        """``GET /auth/whoami``: the name, role and scope of this client's token."""
        return cast(WhoAmI, self._json("GET", "/auth/whoami"))

    def ticket(self) -> Ticket:
        """``POST /auth/ticket``: a single-use ticket for a browser's EventSource or websocket.

        This client never needs one (it sends its token in a header); it is
        here for programs that hand a feed URL to a browser.
        """
        return cast(Ticket, self._json("POST", "/auth/ticket"))

    # -- templates -----------------------------------------------------------

    def processes(self) -> list[str]:
        """Template names in creation order."""
        return cast(list[str], self._json("GET", "/processes"))

    def running(self) -> list[int]:
        """Internal pids of every running OS process, in spawn order."""
        return cast(list[int], self._json("GET", "/processes", params={"running": "true"}))

    def get_process(self, name: str) -> dict[str, Any]:
        """The template as stored: name, cmd and exactly the keys it was created with."""
        return cast(dict[str, Any], self._json("GET", f"/processes/{_segment(name)}"))

    def get_process_by_pid(self, pid: int) -> dict[str, Any]:
        """The template that owns running internal ``pid``."""
        return cast(dict[str, Any], self._json("GET", f"/processes/{int(pid)}"))

    def is_process(self, name_or_pid: str | int) -> bool:
        """HEAD: does the template exist (name), or is the process running (pid)?"""
        path = f"/processes/{_segment(name_or_pid)}"
        return self.request("HEAD", path, ok_statuses=(404,)).status_code == 200

    def create_process(self, body: dict[str, Any]) -> None:
        """``POST /processes`` with a full template body (``start`` defaults to true)."""
        self.request("POST", "/processes", body=body)

    def add_process(self, name: str, cmd: str, *, start: bool = True, **settings: Any) -> None:
        """Create template ``name``; raises ``Conflict`` if it exists."""
        self.create_process({"name": name, "cmd": cmd, "start": start, **settings})

    def update_process(self, name: str, cmd: str, *, create: bool = False, **settings: Any) -> None:
        """``PUT /processes/<name>``: replace the template and restart it (spec 4.5 [R]).

        With ``create=True`` a missing template is created instead, like the
        original client's update.
        """
        if create and not self.is_process(name):
            self.add_process(name, cmd, **settings)
            return
        body = {"cmd": cmd, **settings}
        self.request("PUT", f"/processes/{_segment(name)}", body=body)

    def remove_process(self, name: str) -> None:
        """Stop and remove a template."""
        self.request("DELETE", f"/processes/{_segment(name)}")

    def _action(self, name: str, action: str, arg: str | int | None = None) -> Any:
        path = f"/processes/{_segment(name)}/{action}"
        if arg is not None:
            path += f"/{_segment(arg)}"
        return self._json("POST", path)

    def start_process(self, name: str) -> None:
        self._action(name, "_start")

    def stop_process(self, name: str) -> None:
        self._action(name, "_stop")

    def restart_process(self, name: str) -> None:
        self._action(name, "_restart")

    def add(self, name: str, n: int = 1) -> int:
        """numprocesses += n; returns the new numprocesses."""
        return int(self._action(name, "_add", int(n))["numprocesses"])

    def sub(self, name: str, n: int = 1) -> int:
        """numprocesses -= n (the server clamps at 0); returns the new numprocesses."""
        return int(self._action(name, "_sub", int(n))["numprocesses"])

    def send_signal(self, name_or_pid: str | int, sig: int | str) -> None:
        """Signal every process of a template, or one process by internal pid."""
        self._action(str(name_or_pid), "_signal", signal_number(sig))

    def pids(self, name: str) -> list[int]:
        """Internal pids of the template's running processes, oldest first."""
        body = self._json("GET", f"/processes/{_segment(name)}/_pids")
        return cast(list[int], body["pids"])

    def status(self, name: str) -> Status:
        return cast(Status, self._json("GET", f"/status/{_segment(name)}"))

    def stop_pid(self, pid: int) -> None:
        """Stop one OS process; the template respawns a replacement (spec 4.6)."""
        self._json("POST", f"/processes/{int(pid)}/_stop")

    def rotate_logs(self, name: str) -> dict[str, Any]:
        """Reopen the template's log files (our extension: ``_rotate``)."""
        return cast(dict[str, Any], self._action(name, "_rotate"))

    def logs(self, name: str, label: str = "stdout", tail: int | None = None) -> bytes:
        """The end of a template's log file (our extension: ``GET .../_logs``)."""
        params: dict[str, str | int] = {"label": label}
        if tail is not None:
            params["tail"] = tail
        return self.request("GET", f"/processes/{_segment(name)}/_logs", params=params).content

    # -- groups --------------------------------------------------------------

    def groups(self) -> list[str]:
        return cast(list[str], self._json("GET", "/groups"))

    def get_group(self, group: str) -> list[str]:
        """Template names in the group, in insertion order."""
        return cast(list[str], self._json("GET", f"/groups/{_segment(group)}"))

    def start_group(self, group: str) -> None:
        self._json("POST", f"/groups/{_segment(group)}/_start")

    def stop_group(self, group: str) -> None:
        self._json("POST", f"/groups/{_segment(group)}/_stop")

    def restart_group(self, group: str) -> None:
        self._json("POST", f"/groups/{_segment(group)}/_restart")

    def remove_group(self, group: str) -> None:
        self._json("DELETE", f"/groups/{_segment(group)}")

    # -- stats ---------------------------------------------------------------

    @overload
    def stats(self) -> list[dict[str, Any]]: ...
    @overload
    def stats(self, name: str) -> dict[str, Any]: ...
    @overload
    def stats(self, name: str, pid: int) -> dict[str, Any]: ...
    def stats(self, name: str | None = None, pid: int | None = None) -> Any:
        """All templates' stats, one template's (spec 9.2), or one process's (9.1)."""
        path = "/stats"
        if name is not None:
            path += f"/{_segment(name)}"
            if pid is not None:
                path += f"/{int(pid)}"
        return self._json("GET", path)

    def stats_feed(
        self, name: str, pid: int | None = None, *, heartbeat: int = 30
    ) -> Feed[dict[str, Any]]:
        """Periodic ``stat`` events of a template's (or one) process(es), as dicts."""
        path = f"/stats/{_segment(name)}" + (f"/{int(pid)}" if pid is not None else "")
        params: dict[str, str | int] = {"feed": "eventsource", "heartbeat": heartbeat}

        def items(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
            for event in sse_events(chunks):
                yield cast(dict[str, Any], json.loads(event.data))

        return self._open_feed(path, params, heartbeat, items)

    # -- streams -------------------------------------------------------------

    @overload
    def stream(
        self,
        pid: int,
        label: str = ...,
        feed: Literal["continuous", "longpoll"] = ...,
        *,
        heartbeat: int = ...,
        **query: str | int,
    ) -> Feed[bytes]: ...
    @overload
    def stream(
        self,
        pid: int,
        label: str,
        feed: Literal["eventsource"],
        *,
        heartbeat: int = ...,
        **query: str | int,
    ) -> Feed[SSEEvent]: ...
    def stream(
        self,
        pid: int,
        label: str = "stdout",
        feed: FeedName = "continuous",
        *,
        heartbeat: int = 30,
        **query: str | int,
    ) -> Feed[bytes] | Feed[SSEEvent]:
        """Follow output ``label`` of internal ``pid``: raw chunks, or SSE events.

        With ``continuous`` each item is one pipe read as bytes (a heartbeat is
        a lone ``b"\\n"``; pass ``heartbeat=0`` for the exact output). With
        ``eventsource`` each item is an ``SSEEvent`` named after the label.
        """
        path = f"/streams/{int(pid)}/{_segment(label)}"
        params: dict[str, str | int] = {"feed": feed, "heartbeat": heartbeat, **query}
        if feed == "eventsource":
            return self._open_feed(path, params, heartbeat, sse_events)
        return self._open_feed(path, params, heartbeat, raw_chunks)

    def follow(
        self, pid: int, label: str = "stdout", *, heartbeat: int = 30, tail: int | None = None
    ) -> Feed[bytes]:
        """Output of ``label`` exactly as the process wrote it (as UTF-8), heartbeats removed.

        Asks for gafferd's JSON chunk records (``format=json``), where heartbeats
        cannot be mistaken for output; a server without them sends raw bytes,
        which are passed on as they come. ``tail`` first replays the last lines
        the server kept.
        """
        params: dict[str, str | int] = {"feed": "continuous", "heartbeat": heartbeat}
        params["format"] = "json"
        if tail is not None:
            params["tail"] = tail

        def items(chunks: Iterator[bytes]) -> Iterator[bytes]:
            # A generator, so this runs at the first next(), once ``feed`` is bound.
            content_type = feed.response.headers.get("content-type", "")
            if content_type.startswith("application/x-ndjson"):
                yield from ndjson_output(chunks)
            else:
                yield from raw_chunks(chunks)

        feed = self._open_feed(f"/streams/{int(pid)}/{_segment(label)}", params, heartbeat, items)
        return feed

    def write_stdin(self, pid: int, data: bytes) -> None:
        """Queue ``data`` for the process's stdin, as-is (no newline added)."""
        self.request("POST", f"/streams/{int(pid)}/stdin", content=data)

    def watch(self, pattern: str = ".", *, heartbeat: int = 60) -> Feed[tuple[str, dict[str, Any]]]:
        """Events matching ``pattern`` (spec 6.3, matched here) as ``(name, payload)``."""

        def items(chunks: Iterator[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
            for event in sse_events(chunks):
                if matches(pattern, event.event):
                    yield event.event, cast(dict[str, Any], json.loads(event.data))

        params: dict[str, str | int] = {"feed": "eventsource", "heartbeat": heartbeat}
        return self._open_feed("/watch", params, heartbeat, items)

    def websocket(self, pid: int, *, timeout: float | None = None) -> StreamSocket:
        """A websocket on ``/wstreams/<pid>`` (needs the ``websocket-client`` package).

        The handshake carries the token like any request. A handshake answered
        with an HTTP error (401, 403, 421, 429...) raises the same ``GafferError``
        as a refused call; gafferd itself refuses after the upgrade (gevent-websocket
        upgrades before the app runs), so there the first message is
        ``{"error": code}`` and the socket closes with 1008, as for an unknown pid.
        """
        path = f"/wstreams/{int(pid)}"
        base = "http://localhost" if self._uds is not None else self._base
        return open_stream_socket(
            "ws" + base.removeprefix("http") + path,
            self.url,
            uds=self._uds,
            ssl_context=self._ssl,
            authorization=self._http.headers.get("Authorization"),
            timeout=timeout,
        )
