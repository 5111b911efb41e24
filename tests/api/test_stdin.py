"""POST /streams/<pid>/stdin over real HTTP: raw bytes in, limits, and a child that never reads."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gaffer_gevent.api import create_app
from gaffer_gevent.config import Address, EndpointConfig
from gaffer_gevent.manager import Manager
from gaffer_gevent.server import make_servers
from tests.api.support import ECHO, create_one, error
from tests.conftest import LiveServer
from tests.helpers import child, wait_for

#: Never reads its stdin: prints one line, then sleeps.
DEAF = {**child("counter", "1", "0", "stdout", "wait"), "redirect_input": True}


@pytest.fixture
def small_client(manager: Manager) -> Iterator[httpx.Client]:
    """A server whose stdin body limit is 1 KiB (the default is 1 MiB)."""
    app = create_app(manager, stdin_max_body=1024)
    endpoint = EndpointConfig("small", [Address("tcp", "127.0.0.1", 0, "")])
    ((wsgi, url),) = make_servers(app, [endpoint])
    wsgi.start()
    with httpx.Client(base_url=url, timeout=10, verify=False) as c:
        yield c
    manager.stop_all(timeout=10)
    wsgi.stop(timeout=2)


def echoed(manager: Manager, pid: int) -> bytes:
    """Everything the echo child wrote back so far (its stream keeps the last 1 MiB)."""
    return b"".join(chunk.data for chunk in manager.running[pid].streams["out"].chunks)


def test_post_writes_the_raw_body(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    data = b"no newline added" + bytes(range(256))
    r = client.post(f"/streams/{pid}/stdin", content=data)
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert r.headers["content-type"].startswith("application/json")
    wait_for(lambda: echoed(server.manager, pid) == data)


def test_writes_keep_their_order(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    parts = [f"part {n};".encode() for n in range(50)]
    for part in parts:
        assert client.post(f"/streams/{pid}/stdin", content=part).status_code == 200
    wait_for(lambda: echoed(server.manager, pid) == b"".join(parts))


def test_ttin_is_an_alias_and_an_empty_body_is_fine(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = create_one(client, "echo", ECHO)
    assert client.post(f"/streams/{pid}/stdin", content=b"").json() == {"ok": True}
    r = client.post(f"/streams/{pid}/ttin", content=b"ECHO\n")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    wait_for(lambda: echoed(server.manager, pid) == b"ECHO\n")


def test_a_form_encoded_body_is_written_as_is(client: httpx.Client, server: LiveServer) -> None:
    # What `curl -d` sends: application/x-www-form-urlencoded, still raw bytes for us.
    pid = create_one(client, "echo", ECHO)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = client.post(f"/streams/{pid}/stdin", content=b"a=1&b=2\n", headers=headers)
    assert r.status_code == 200
    wait_for(lambda: echoed(server.manager, pid) == b"a=1&b=2\n")


def test_stdin_errors(client: httpx.Client) -> None:
    no_input = create_one(client, "reader", {**child("echo"), "redirect_output": ["out"]})
    error(client.post(f"/streams/{no_input}/stdin", content=b"x"), 403, "forbidden_write")
    error(client.post(f"/streams/{no_input}/ttin", content=b"x"), 403, "forbidden_write")
    pid = create_one(client, "echo", ECHO)
    error(client.post("/streams/99/stdin", content=b"x"), 404, "not_found")
    for label in ("out", "stdout", "STDIN", "stdin2"):
        error(client.post(f"/streams/{pid}/{label}", content=b"x"), 404, "not_found")
    error(client.post("/streams/abc/stdin", content=b"x"), 400, "bad_value")
    error(client.post("/streams/%5E/stdin", content=b"x"), 400, "bad_value")


def test_stdin_of_a_stopped_process_is_not_found(client: httpx.Client, server: LiveServer) -> None:
    pid = create_one(client, "echo", ECHO)
    assert client.post("/processes/echo/_stop").status_code == 200
    wait_for(lambda: not server.manager.stopping)
    error(client.post(f"/streams/{pid}/stdin", content=b"x"), 404, "not_found")


def test_body_limit(small_client: httpx.Client, manager: Manager) -> None:
    pid = create_one(small_client, "echo", ECHO)
    url = f"/streams/{pid}/stdin"
    error(small_client.post(url, content=b"x" * 1025), 413, "payload_too_large")
    assert small_client.post(url, content=b"a" * 1024).status_code == 200
    wait_for(lambda: echoed(manager, pid) == b"a" * 1024)


def test_body_limit_applies_to_chunked_bodies(small_client: httpx.Client, manager: Manager) -> None:
    pid = create_one(small_client, "echo", ECHO)
    url = f"/streams/{pid}/stdin"

    def body(size: int) -> Iterator[bytes]:  # no Content-Length: chunked transfer
        for _ in range(size // 100):
            yield b"c" * 100

    error(small_client.post(url, content=body(2000)), 413, "payload_too_large")
    assert small_client.post(url, content=body(300)).status_code == 200
    wait_for(lambda: echoed(manager, pid) == b"c" * 300)


def test_a_child_that_never_reads_fills_its_queue_without_blocking_the_server(
    client: httpx.Client, server: LiveServer
) -> None:
    deaf = create_one(client, "deaf", DEAF)
    echo = create_one(client, "echo", ECHO)
    block = b"z" * (512 * 1024)
    statuses = []
    for _ in range(8):  # the queue (1 MiB) plus the pipe buffer hold a few blocks at most
        r = client.post(f"/streams/{deaf}/stdin", content=block, timeout=5)
        statuses.append(r.status_code)
        if r.status_code != 200:
            break
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    error(r, 503, "stdin_full")
    # Everything else still answers: the server, and other processes' stdin.
    for _ in range(3):
        r = client.get("/ping", timeout=5)
        assert (r.status_code, r.text) == (200, "OK")
    error(client.post(f"/streams/{deaf}/stdin", content=block, timeout=5), 503, "stdin_full")
    assert client.post(f"/streams/{echo}/stdin", content=b"fine\n", timeout=5).status_code == 200
    wait_for(lambda: echoed(server.manager, echo) == b"fine\n")
    # A full queue does not stop the process from being stopped.
    assert client.post("/processes/deaf/_stop", timeout=5).status_code == 200
