"""The ``/wstreams/<pid>`` websocket: opened with the client's token and TLS, as ``StreamSocket``.

Opened like the HTTP calls are sent: the token in the handshake's
``Authorization`` header, no ``Origin`` (this is not a browser), no proxy from
the environment and no redirect (the token goes only where it was told to).
A handshake gafferd refuses raises the same ``GafferError`` as a refused call.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import GafferError
from .errors import ServerUnreachable, describe, error_from_body

if TYPE_CHECKING:
    import ssl

    import websocket as websocket_client


def open_stream_socket(
    url: str,
    address: str,
    *,
    uds: str | None,
    ssl_context: ssl.SSLContext | None,
    authorization: str | None,
    timeout: float | None,
) -> StreamSocket:
    """A websocket on ``url`` (``ws://`` or ``wss://``; over ``uds`` when given).

    ``address`` is the gafferd address to name in errors.
    """
    try:
        import websocket as websocket_client
    except ImportError:
        raise ImportError(
            "Client.websocket needs the websocket-client package (pip install websocket-client)"
        ) from None
    options: dict[str, Any] = {
        "timeout": timeout,
        "suppress_origin": True,
        "http_no_proxy": ["*"],
        "redirect_limit": 0,
    }
    if authorization is not None:
        options["header"] = {"Authorization": authorization}
    if uds is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(uds)
        except OSError as exc:
            sock.close()
            raise ServerUnreachable(address, describe(exc)) from exc
        options["socket"] = sock
    elif ssl_context is not None:
        # Repeat the context's own settings: websocket-client rewrites them otherwise.
        options["sslopt"] = {
            "context": ssl_context,
            "cert_reqs": ssl_context.verify_mode,
            "check_hostname": ssl_context.check_hostname,
        }
    try:
        ws = websocket_client.create_connection(url, **options)
    except websocket_client.WebSocketBadStatusException as exc:
        context = f"GET {urlsplit(url).path}"
        raise handshake_error(exc, address, context, authorization is not None) from None
    except (OSError, websocket_client.WebSocketException) as exc:
        raise ServerUnreachable(address, describe(exc)) from exc
    return StreamSocket(ws)


def handshake_error(exc: Any, address: str, context: str, token_sent: bool) -> GafferError:
    """The ``GafferError`` of a websocket handshake answered with an HTTP status."""
    status = int(exc.status_code)
    if status < 400:  # e.g. a 200 from something that is not gafferd
        return ServerUnreachable(address, f"websocket handshake answered {status}")
    try:
        body = json.loads(exc.resp_body or b"")
    except ValueError:
        body = None
    headers = {str(k).lower(): str(v) for k, v in (exc.resp_headers or {}).items()}
    return error_from_body(status, body, context, headers=headers, token_sent=token_sent)


class StreamSocket:
    """A websocket on ``/wstreams/<pid>``: messages in are stdin, messages out are output."""

    def __init__(self, ws: websocket_client.WebSocket) -> None:
        self.ws = ws

    def send(self, data: bytes | str) -> None:
        """Write ``data`` to the process's stdin (no newline is added)."""
        if isinstance(data, bytes):
            self.ws.send_binary(data)
        else:
            self.ws.send_text(data)

    def recv(self) -> str | None:
        """The next output chunk, or None once the server closed the socket."""
        import websocket as websocket_client

        try:
            opcode, data = self.ws.recv_data()
        except websocket_client.WebSocketConnectionClosedException:
            return None
        if opcode == websocket_client.ABNF.OPCODE_CLOSE:
            return None
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def close(self) -> None:
        self.ws.close()
        # close() skips the socket once the server closed first (as gafferd does on a refusal).
        self.ws.shutdown()  # type: ignore[no-untyped-call]

    def __enter__(self) -> StreamSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
