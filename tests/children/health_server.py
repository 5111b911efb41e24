"""A tiny HTTP server whose ``/health`` answers 503 until it is healthy, then 200.

health_server.py PORT [READY_AFTER] [FAIL_FILE]: healthy READY_AFTER seconds after
start (default 0); while FAIL_FILE exists, ``/health`` answers 500 again (a test
makes a liveness check fail by creating it). Any other path answers 404.
"""

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

port = int(sys.argv[1])
ready_at = time.monotonic() + (float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
fail_file = sys.argv[3] if len(sys.argv) > 3 else None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/health":
            status = 404
        elif fail_file and os.path.exists(fail_file):
            status = 500
        else:
            status = 200 if time.monotonic() >= ready_at else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
