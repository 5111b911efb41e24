"""Runs in the bench venv: forwards JSON commands from stdin to circusd, replies on stdout.

circus's client needs pyzmq and circus itself, which live in `.venv-bench`, not in the project
venv that runs the bench driver. Starting `circusctl` for every status poll would cost a
Python start-up (~0.3 s) per call and swamp the timings, so the driver keeps this one process
open and talks to it line by line: one JSON command in, one JSON reply out.

Usage: `.venv-bench/bin/python bench/circus_bridge.py tcp://127.0.0.1:PORT`
"""

from __future__ import annotations

import json
import sys

from circus.client import CircusClient


def main() -> None:
    """Serve commands until stdin closes."""
    client = CircusClient(endpoint=sys.argv[1], timeout=30.0)
    try:
        for line in sys.stdin:
            request = json.loads(line)
            try:
                reply = client.call(
                    {"command": request["command"], "properties": request.get("properties", {})}
                )
                answer = {"reply": reply}
            except Exception as exc:  # a failed call is reported, the bridge keeps serving
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        client.stop()


if __name__ == "__main__":
    main()
