"""A tiny HTTP server whose ``/health`` answers 503 until it is healthy, then 200.

health_server.py PORT [READY_AFTER] [FAIL_FILE]: healthy READY_AFTER seconds after
start (default 0), or, when READY_AFTER is a path, once that file exists (a test then
decides the moment); while FAIL_FILE exists, ``/health`` answers 500 again (a test
makes a liveness check fail by creating it). Any other path answers 404. With
$HEALTH_CERT and $HEALTH_KEY set it speaks HTTPS with that certificate.
"""

import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

port = int(sys.argv[1])
ready_after = sys.argv[2] if len(sys.argv) > 2 else "0"
gate = None if ready_after.replace(".", "", 1).isdigit() else ready_after
ready_at = time.monotonic() + (0.0 if gate else float(ready_after))
fail_file = sys.argv[3] if len(sys.argv) > 3 else None


def healthy() -> bool:
    if gate is not None:
        return os.path.exists(gate)
    return time.monotonic() >= ready_at


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/health":
            status = 404
        elif fail_file and os.path.exists(fail_file):
            status = 500
        else:
            status = 200 if healthy() else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


server = HTTPServer(("127.0.0.1", port), Handler)
if os.environ.get("HEALTH_CERT"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["HEALTH_CERT"], os.environ["HEALTH_KEY"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
