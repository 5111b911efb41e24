"""Embedding: a host Flask app mounts the API under ``/gaffer`` (``Gaffer.init_app``).

Two levels: ``examples/embed_in_flask.py`` run as a real program (its own
route, the prefixed API, a clean stop on SIGTERM), and an in-process host app
served by pywsgi with gafferd's handler, to check prefixed routes, streams, the
websocket, CORS and JSON errors under the prefix.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import websocket
from flask import Flask
from gevent.pywsgi import WSGIServer

from gaffer_gevent.api import Gaffer, GafferSettings
from gaffer_gevent.manager import Manager
from gaffer_gevent.server import GafferHandler
from gaffer_gevent.template import ProcessTemplate

from .helpers import LoggedServer, child, spawn_logged, wait_for

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "embed_in_flask.py"
LISTENING = re.compile(r"embed_in_flask: listening on http://127\.0\.0\.1:(\d+)")
TIMEOUT = 10.0
ORIGIN = "http://app.example"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def read_sse_data(port: int, path: str) -> str:
    """The data of the first SSE event with data on ``path``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        while True:
            line = response.readline().decode()
            if line.startswith("data:"):
                return line[5:].strip()
            assert line, "stream ended without data"
    finally:
        conn.close()


# -- the example, as a program ------------------------------------------------


class Example(LoggedServer):
    """The embedding example, run as a program."""


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Example]:
    log = tmp_path / "embed.log"
    proc = spawn_logged([sys.executable, str(EXAMPLE), "--port", "0"], log, cwd=REPO)
    running = Example(proc, log)
    try:
        running.port = running.logged_port(LISTENING, "the example", timeout=TIMEOUT)
        wait_for(lambda: request(running.port, "GET", "/gaffer/status/clock").json()["running"])
        for template in request(running.port, "GET", "/gaffer/stats").json():
            running.child_pids.update(info["pid"] for info in template["stats"])
        yield running
    finally:
        running.kill()  # the demo child runs in its own session


def test_example_serves_its_own_route_and_the_api_under_the_prefix(example: Example) -> None:
    home = request(example.port, "GET", "/")
    assert home.status == 200 and b"hello from the host app" in home.body
    assert request(example.port, "GET", "/about").json() == {"app": "host", "gaffer": "/gaffer"}
    assert request(example.port, "GET", "/gaffer/processes").json() == ["clock"]
    assert request(example.port, "GET", "/gaffer/ping").body == b"OK"
    assert request(example.port, "GET", "/processes").status == 404  # only under the prefix
    (pid,) = request(example.port, "GET", "/gaffer/processes/clock/_pids").json()["pids"]
    data = read_sse_data(example.port, f"/gaffer/streams/{pid}/stdout?feed=eventsource")
    assert re.fullmatch(r"tick \d+", data), data


def test_example_stops_its_children_on_sigterm(example: Example) -> None:
    stats = request(example.port, "GET", "/gaffer/stats/clock").json()
    os_pids = [info["pid"] for info in stats["stats"]]
    assert os_pids and all(psutil.pid_exists(pid) for pid in os_pids)
    example.proc.send_signal(signal.SIGTERM)
    assert example.proc.wait(TIMEOUT) == 0, example.log_text()
    assert "embed_in_flask: stopped" in example.log_text()

    def gone(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(lambda: all(gone(pid) for pid in os_pids), timeout=5)


# -- a host app in this process -----------------------------------------------


@dataclass
class Host:
    port: int
    manager: Manager


@pytest.fixture
def host(manager: Manager) -> Iterator[Host]:
    """A host app with its own routes and the API under ``/gaffer``, on a real socket."""
    app = Flask("host")

    @app.route("/")
    def index() -> str:
        return "host index"

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("the host's own bug")

    @app.errorhandler(404)
    def host_not_found(exc: Exception) -> tuple[str, int]:
        return "host 404", 404

    settings = GafferSettings(cors_origins=[ORIGIN])
    Gaffer(manager, url_prefix="/gaffer", settings=settings).init_app(app)
    server = WSGIServer(("127.0.0.1", 0), app, handler_class=GafferHandler, log=None)
    server.start()
    try:
        yield Host(server.server_port, manager)
    finally:
        manager.stop_all(timeout=10)
        server.stop(timeout=2)


def echo_body(name: str = "echo") -> bytes:
    fields = {"name": name, **child("echo"), "redirect_input": True, "redirect_output": ["stdout"]}
    return json.dumps(fields).encode()


def test_prefixed_routes_create_and_list(host: Host) -> None:
    created = request(host.port, "POST", "/gaffer/processes", echo_body(),
                      {"Content-Type": "application/json"})  # fmt: skip
    assert created.status in (200, 201), created.body
    assert request(host.port, "GET", "/gaffer/processes").json() == ["echo"]
    assert request(host.port, "GET", "/gaffer/").json()["welcome"] == "gaffer"
    assert request(host.port, "GET", "/").body == b"host index"
    assert request(host.port, "GET", "/processes").status == 404


def test_prefixed_stdin_and_stream(host: Host) -> None:
    host.manager.add_template(ProcessTemplate.from_json(json.loads(echo_body())))
    (pid,) = host.manager.pids("echo")
    conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=TIMEOUT)
    try:
        conn.request("GET", f"/gaffer/streams/{pid}/stdout?feed=continuous")
        stream = conn.getresponse()
        assert stream.status == 200
        wait_for(lambda: host.manager.get_process(pid).streams["stdout"].subscriptions)
        written = request(host.port, "POST", f"/gaffer/streams/{pid}/stdin", b"prefixed\n")
        assert written.status == 200, written.body
        received = b""
        while b"prefixed\n" not in received:
            line = stream.readline()
            assert line, "stream ended early"
            received += line
    finally:
        conn.close()


def test_prefixed_websocket(host: Host) -> None:
    host.manager.add_template(ProcessTemplate.from_json(json.loads(echo_body())))
    (pid,) = host.manager.pids("echo")
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{host.port}/gaffer/wstreams/{pid}", timeout=TIMEOUT
    )
    try:
        ws.send("over the prefix\n")
        assert ws.recv() == "over the prefix\n"
    finally:
        ws.close(timeout=1)
        ws.shutdown()


def test_cors_under_the_prefix(host: Host) -> None:
    reply = request(host.port, "GET", "/gaffer/processes", headers={"Origin": ORIGIN})
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Credentials" not in reply.headers
    preflight = request(host.port, "OPTIONS", "/gaffer/processes", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type",
    })  # fmt: skip
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    missing = request(host.port, "GET", "/gaffer/processes/nope", headers={"Origin": ORIGIN})
    assert missing.status == 404
    assert missing.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/gaffer/processes/nope", 404, "not_found"),
        ("GET", "/gaffer/no/such/route", 404, "not_found"),
        ("DELETE", "/gaffer/ping", 405, "method_not_allowed"),
        ("GET", "/gaffer/stats/x/notapid", 400, "bad_value"),
    ],
)
def test_json_errors_under_the_prefix(
    host: Host, method: str, path: str, status: int, error: str
) -> None:
    reply = request(host.port, method, path)
    assert reply.status == status
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"] == error


# The extension's CORS completion, 204 preflight and JSON error handlers are
# registered on the whole app but act only under its prefix: the host's own
# routes keep Flask's behaviour.


def test_host_routes_get_no_gaffer_cors_headers(host: Host) -> None:
    reply = request(host.port, "GET", "/")
    assert reply.status == 200
    assert "Access-Control-Allow-Origin" not in reply.headers


def test_host_options_are_flask_defaults(host: Host) -> None:
    reply = request(host.port, "OPTIONS", "/")
    assert reply.status == 200  # Flask's automatic OPTIONS, not gaffer's 204
    assert "GET" in reply.headers["Allow"]


def test_host_errors_are_not_rendered_as_gaffer_json(host: Host) -> None:
    missing = request(host.port, "GET", "/no/such/page")
    assert missing.status == 404
    assert not missing.headers["Content-Type"].startswith("application/json")
    crashed = request(host.port, "GET", "/boom")
    assert crashed.status == 500
    assert not crashed.headers["Content-Type"].startswith("application/json")


def test_the_hosts_404_handler_never_answers_under_the_prefix(host: Host) -> None:
    """The host registers its own 404 page; the API's unknown routes stay JSON."""
    assert request(host.port, "GET", "/no/such/page").body == b"host 404"
    reply = request(host.port, "GET", "/gaffer/no/such/route")
    assert (reply.status, reply.json()) == (404, {"error": "not_found"})


def test_the_hosts_exceptions_propagate_in_its_tests(manager: Manager) -> None:
    """No app-wide error handler: a host's own bug reaches its test client, as Flask intends."""
    app = Flask("host")
    app.testing = True

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("the host's own bug")

    Gaffer(manager, url_prefix="/gaffer").init_app(app)
    with pytest.raises(RuntimeError, match="host's own bug"):
        app.test_client().get("/boom")
    assert app.test_client().get("/gaffer/processes").json == []


def test_init_app_refuses_an_unpatched_process(tmp_path: Path) -> None:
    """Under a threaded server the children could not be watched: refuse before spawning."""
    marker = tmp_path / "spawned"
    script = (
        "from flask import Flask\n"
        "from gaffer_gevent import Gaffer, Manager\n"
        "from gaffer_gevent.template import ProcessTemplate\n"
        "manager = Manager()\n"
        "try:\n"
        "    Gaffer(manager).init_app(Flask('host'))\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        f"    manager.add_template(ProcessTemplate.from_json({{'name': 't', 'cmd': 'touch', "
        f"'args': [{str(marker)!r}]}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert "gevent.monkey.patch_all()" in done.stdout, done.stderr
    assert not marker.exists()
