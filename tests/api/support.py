"""Helpers shared by the API tests: child templates, creating processes, checking errors."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import child

#: A quiet child that lives until it is told to stop (one line a second, to /dev/null).
SLEEPER = child("counter", "0", "1")
#: Echoes its stdin back on its ``out`` stream.
ECHO = {**child("echo"), "redirect_output": ["out"], "redirect_input": True}


def late_ready(when: str) -> dict[str, Any]:
    """A child ready (a readiness log check) ``when`` seconds after start, or once the gate
    file ``when`` exists: a real readiness check for dependency and rolling tests."""
    return {
        **child("late_ready", when),
        "redirect_output": ["stdout"],
        "readiness": {"log": "ready", "label": "stdout"},
    }


def create(client: httpx.Client, name: str, **fields: Any) -> None:
    """Create a SLEEPER template ``name`` (``fields`` override or add settings)."""
    r = client.post("/processes", json={"name": name, **SLEEPER, **fields})
    assert r.status_code == 200, r.text


def create_one(client: httpx.Client, name: str, fields: dict[str, Any]) -> int:
    """Create a one-process template ``name`` from ``fields`` and return its pid."""
    r = client.post("/processes", json={"name": name, **fields})
    assert r.status_code == 200, r.text
    (pid,) = client.get(f"/processes/{name}/_pids").json()["pids"]
    return int(pid)


def error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
