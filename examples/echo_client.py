"""Talk to a process's stdin/stdout over gaffer's websocket (``/wstreams/<pid>``).

Try it: start gafferd with the example config, where pid 2 is ``web:echo``
(``cat``, with its stdin and stdout redirected), then run this client::

    .venv/bin/gafferd examples/gaffer.ini &
    .venv/bin/python examples/echo_client.py
    Sent
    Receiving...
    Received 'ECHO\\n'

Every message sent goes verbatim to the child's stdin; every chunk the child
writes on its first output label comes back as one text message. This is the
seed's Python 2 ``echo_client.py`` for Python 3 (with the "Receiving" typo
fixed), using ``websocket-client``. Any other pid or server:
``echo_client.py --url ws://HOST:PORT PID``. It exits 1 if the server refuses
(``{"error": ...}``, e.g. an unknown pid) or nothing comes back in time.

A gafferd with tokens wants one with the stdin role or above: pass
``--token TOKEN`` or set ``GAFFER_TOKEN``; it goes in the handshake's
``Authorization: Bearer`` header (a browser, which cannot set headers, would
use a ``?ticket=`` from ``POST /auth/ticket`` instead)::

    GAFFER_TOKEN=$(cat ~/.gaffer-token) .venv/bin/python examples/echo_client.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import websocket


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pid", nargs="?", type=int, default=2, help="gaffer pid (default 2)")
    parser.add_argument("--url", default="ws://127.0.0.1:5000", help="server base URL")
    parser.add_argument("--message", default="ECHO\n", help="text to send (default 'ECHO\\n')")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a reply")
    parser.add_argument("--token", help="bearer token (default: $GAFFER_TOKEN)")
    return parser.parse_args(argv)


def auth_header(token: str | None) -> dict[str, str]:
    """The handshake's Authorization header; a token that would break a header is refused."""
    if not token:
        return {}
    if not all("\x21" <= char <= "\x7e" for char in token):
        raise ValueError("the token must be printable ASCII without spaces")  # never echo it
    return {"Authorization": f"Bearer {token}"}


def refusal(reply: str) -> str | None:
    """The error code if ``reply`` is the server refusing the connection."""
    try:
        payload = json.loads(reply)
    except ValueError:
        return None
    return payload.get("error") if isinstance(payload, dict) else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = f"{args.url.rstrip('/')}/wstreams/{args.pid}"
    try:
        header = auth_header(args.token or os.environ.get("GAFFER_TOKEN"))
    except ValueError as exc:
        print(f"echo_client: {exc}", file=sys.stderr)
        return 2
    try:
        # No Origin header: this is not a browser page.
        ws = websocket.create_connection(
            url, timeout=args.timeout, header=header, suppress_origin=True
        )
    except websocket.WebSocketBadStatusException as exc:
        code = refusal((exc.resp_body or b"").decode("utf-8", "replace")) or exc.status_code
        print(f"the server refused: {code}", file=sys.stderr)
        return 1
    except (OSError, websocket.WebSocketException) as exc:
        print(f"cannot connect to {url}: {exc}", file=sys.stderr)
        return 1
    try:
        ws.send(args.message)
        print("Sent")
        print("Receiving...")
        result = ws.recv()
        print(f"Received {result!r}")
    except (OSError, websocket.WebSocketException) as exc:
        print(f"no reply from {url}: {exc}", file=sys.stderr)
        return 1
    finally:
        ws.close()
        ws.shutdown()  # type: ignore[no-untyped-call]  # close() skips it after a server close
    error = refusal(result) if isinstance(result, str) else None
    if error is not None:
        print(f"the server refused: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
