"""A webhook receiver that checks gafferd's signature and refuses stale or replayed POSTs.

Try it: make a secret, name it on a ``[webhooks]`` line, and run this receiver
with the same secret::

    python3 -c 'import secrets; print(secrets.token_hex(32))' > hook.key
    chmod 600 hook.key
    # in gafferd's ini:
    #   [webhooks]
    #   . = http://127.0.0.1:9000/hook secret_file=hook.key
    .venv/bin/python examples/verify_webhook.py hook.key --port 9000
    listening on http://127.0.0.1:9000/
    verified create 5f0c... {"event": "create", "name": "ticker", ...}

Anything not signed with the secret, older than ``MAX_AGE`` or already seen
(same ``webhook_id``) gets a 403 and a ``refused:`` line. ``verify`` uses only
the standard library: copy it into your own receiver (the README shows it).
"""

import hashlib
import hmac
import json
import time

MAX_AGE = 300  # seconds; an older (or future) delivery is refused


def verify(secret: bytes, body: bytes, signature: str, now: float | None = None) -> dict:
    """The event in a gafferd webhook POST; ValueError unless signed with secret and fresh.

    body: the raw request body; signature: its X-Gaffer-Signature header.
    """
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise ValueError("bad signature")
    event = json.loads(body)  # signed, so webhook_timestamp is gafferd's
    if abs((time.time() if now is None else now) - event["webhook_timestamp"]) > MAX_AGE:
        raise ValueError("stale timestamp")
    return event


MAX_BODY = 1024 * 1024


def receiver(secret: bytes):
    """A WSGI app printing each verified event; ids seen within MAX_AGE are refused."""
    seen: dict[str, float] = {}

    def app(environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if not 0 <= length <= MAX_BODY:
                raise ValueError("body too large")
            body = environ["wsgi.input"].read(length)
            event = verify(secret, body, environ.get("HTTP_X_GAFFER_SIGNATURE", ""))
            now = time.time()
            for old in [i for i, t in seen.items() if now - t > MAX_AGE]:
                del seen[old]
            if event["webhook_id"] in seen:
                raise ValueError("replayed delivery")
            seen[event["webhook_id"]] = now
        except ValueError as exc:  # json and unicode errors are ValueErrors too
            print(f"refused: {exc}", flush=True)
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"refused\n"]
        print(f"verified {event['event']} {event['webhook_id']} {json.dumps(event)}", flush=True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]

    return app


def main(argv: list[str] | None = None) -> int:
    import argparse
    import contextlib
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):  # no access log: the verdicts are the output
            pass

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("secret_file", help="file holding the webhook secret")
    parser.add_argument("--port", type=int, default=9000, help="port on 127.0.0.1 (0: any)")
    args = parser.parse_args(argv)
    with open(args.secret_file, "rb") as file:
        secret = file.read().strip()  # as gafferd reads it
    if not secret:
        parser.error(f"{args.secret_file}: the secret is empty")
    with make_server("127.0.0.1", args.port, receiver(secret), handler_class=QuietHandler) as s:
        print(f"listening on http://127.0.0.1:{s.server_port}/", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it quietly
            s.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
