"""A real HTTP server that records what clients send, to test the client side of auth.

gafferd's own checks are tested against gafferd; this server answers canned
bodies and records each request's method, path, query and ``Authorization``
and ``Origin`` headers, so a test can prove that the token went out on every
kind of request (calls, feeds, the websocket handshake) over TCP, TLS and unix
sockets, and that gafferd's refusals (401, 403, 421, 429) come out right.
It is gevent's WSGI server with gevent-websocket's handler, as gafferd uses.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

from gaffer_gevent.server import tls_context


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    authorization: str | None
    origin: str | None
    websocket: bool


@dataclass
class Answer:
    """A canned response: status line, body and extra headers."""

    status: str = "200 OK"
    body: bytes = b"[]"
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, value: Any, status: str = "200 OK", **headers: str) -> Answer:
        return cls(status, json.dumps(value).encode(), headers=list(headers.items()))


def _sse(event: str, data: dict[str, Any]) -> Answer:
    return Answer(body=f"event: {event}\ndata: {json.dumps(data)}\n\n".encode(),
                  content_type="text/event-stream")  # fmt: skip


def default_answers() -> dict[str, Answer]:
    """What the tests' clients ask for; a websocket path (``/wstreams/...``) is not here."""
    return {
        "/": Answer.json({"gaffer": "welcome", "version": "9.9"}),
        "/processes": Answer.json([]),
        "/processes/x": Answer.json({"name": "x", "cmd": "true"}),
        "/processes/x/_stop": Answer.json({"ok": True}),
        "/groups": Answer.json(["grp"]),
        "/groups/grp": Answer.json({"ok": True}),
        "/auth/whoami": Answer.json({"name": "ops", "role": "operate", "scope": ["web:*", "w"]}),
        "/auth/ticket": Answer.json({"ticket": "t1", "expires_in": 30}),
        "/health": Answer.json({"status": "ok"}),
        "/watch": _sse("create", {"event": "create", "name": "x"}),
        "/streams/1/stdout": Answer(body=b"hello\n", content_type="application/octet-stream"),
    }


class Recorder:
    """The server; ``seen`` lists the requests, ``answers`` may be changed by a test.

    A websocket handshake is upgraded (then the server sends ``hello`` and
    closes) unless its path has an answer, which is then sent instead: that is
    how a refused handshake looks.
    """

    def __init__(
        self,
        listener: socket.socket | tuple[str, int],
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.answers = default_answers()
        self.seen: list[Seen] = []
        ssl_args = {} if certfile is None else {"ssl_context": tls_context(certfile, keyfile)}
        self.server = WSGIServer(
            listener, self.app, handler_class=WebSocketHandler, log=None, error_log=None,
            **ssl_args,
        )  # fmt: skip
        self.server.pre_start_hook = self._refuse_upgrade
        self.server.start()

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def _refuse_upgrade(self, handler: Any) -> bool:
        return str(handler.environ.get("PATH_INFO", "")) in self.answers

    def app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        ws = environ.get("wsgi.websocket")
        self.seen.append(
            Seen(
                str(environ["REQUEST_METHOD"]),
                path,
                str(environ.get("QUERY_STRING", "")),
                environ.get("HTTP_AUTHORIZATION"),
                environ.get("HTTP_ORIGIN"),
                ws is not None,
            )
        )
        if ws is not None:
            ws.send("hello")
            ws.close()
            return []
        answer = self.answers.get(path, Answer.json({"error": "not_found"}, "404 Not Found"))
        headers = [("Content-Type", answer.content_type), *answer.headers]
        start_response(answer.status, headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [answer.body]

    def authorizations(self) -> set[str | None]:
        return {seen.authorization for seen in self.seen}

    def stop(self) -> None:
        self.server.stop(timeout=1)
