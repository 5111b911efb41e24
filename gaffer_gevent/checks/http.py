"""An HTTP check: GET the URL, pass on a 2xx or 3xx status (Kubernetes' httpGet).

A few lines over ``gevent.socket`` rather than a client library: the check only
needs the status line, gevent's sockets never block the hub whether or not the
process is monkey-patched, and importing nothing more keeps gafferd light. Like
Kubernetes, an https check does not verify the certificate (a probe asks "is it
up", not "is it who it says"). The caller bounds the whole run with its timeout.
"""

from __future__ import annotations

import contextlib
from typing import Any

from gevent import socket, ssl

from .spec import check_url

#: Most bytes read while looking for the status line.
MAX_STATUS_LINE = 8192
USER_AGENT = "gaffer-gevent-check"


def probe_http(url: str, timeout: float) -> tuple[bool, str]:
    """(passed, what was seen) for one GET of ``url``."""
    if not url.isprintable() or any(c.isspace() for c in url):
        # A $VAR may hold anything; nothing of it may reach the request line or Host header.
        return False, "the URL has spaces or control characters after substitution"
    parts = check_url(url, "url")
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: Any = socket.create_connection((host, port), timeout=timeout)
    try:
        if https:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = context.wrap_socket(conn, server_hostname=host)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        conn.sendall(request.encode("ascii", "backslashreplace"))
        status = _status(conn)
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    if status is None:
        return False, "no HTTP status line"
    return 200 <= status < 400, f"HTTP {status}"


def _status(conn: Any) -> int | None:
    data = b""
    while b"\r\n" not in data and len(data) < MAX_STATUS_LINE:
        part = conn.recv(MAX_STATUS_LINE - len(data))
        if not part:
            break
        data += part
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) < 2 or not line[0].startswith(b"HTTP/") or not line[1].isdigit():
        return None
    return int(line[1][:3])
