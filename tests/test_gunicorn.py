"""gaffer under real gunicorn: ``gunicorn -c gunicorn.conf.py wsgi:application``.

gunicorn runs in its own process group with ``GAFFER_CONFIG`` pointing to a
temporary ini (an echo process and a ticking one). The tests check an SSE
stream and the websocket echo through gunicorn's gevent-websocket worker, and
that stopping the master with clients attached stops every child, ends the
streams cleanly and exits well before gunicorn's graceful timeout would SIGKILL
the worker. Binding port 0 and reading the port from gunicorn's log avoids
racing other tests for a "free" port.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import signal
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from .helpers import CHILDREN, PYTHON, LoggedServer, alive, spawn_logged, wait_for

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None,
    reason="gunicorn is not installed (pip install 'gunicorn[gevent]')",
)

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
TIMEOUT = 10.0
#: Stopping must end well inside gunicorn.conf.py's graceful_timeout (30 s),
#: i.e. without the master SIGKILLing the worker.
STOP_WITHIN = 15.0
NORMAL_CLOSURE = 1000

INI = f"""\
[process:echo]
cmd = cat
redirect_output = stdout
redirect_input = true

[process:ticker]
cmd = {PYTHON}
args = -u {CHILDREN / "counter.py"} 0 0.1
redirect_output = stdout
"""


class Gunicorn(LoggedServer):
    """A running gunicorn master, its log, and every OS pid gaffer reported."""

    def get(self, path: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200, (path, response.status, response.read())
            return json.loads(response.read())
        finally:
            conn.close()

    def pids(self, name: str) -> list[int]:
        pids: list[int] = self.get(f"/processes/{name}/_pids")["pids"]
        return pids

    def collect_child_pids(self) -> set[int]:
        """Every OS pid of every process (and their children), as /stats reports them."""
        for template in self.get("/stats"):
            for info in template["stats"]:
                self.child_pids.add(info["pid"])
                self.child_pids.update(c["pid"] for c in info.get("children", []))
        return self.child_pids


def start_gunicorn(tmp_path: Path, *extra: str) -> Gunicorn:
    ini = tmp_path / "gaffer.ini"
    ini.write_text(INI)
    runtime = tmp_path / "run"
    runtime.mkdir(exist_ok=True)
    log = tmp_path / "gunicorn.log"
    env = dict(os.environ, GAFFER_CONFIG=str(ini), HOME=str(tmp_path),
               XDG_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")  # fmt: skip
    proc = spawn_logged(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "-b", "127.0.0.1:0", *extra, "wsgi:application"],
        log, cwd=REPO, env=env,
    )  # fmt: skip
    return Gunicorn(proc, log)


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    """A booted gunicorn serving wsgi.py; whatever is left is killed in teardown."""
    server = start_gunicorn(tmp_path)
    try:
        server.port = server.logged_port(LISTENING, "gunicorn", timeout=TIMEOUT)
        wait_for(lambda: server.get("/processes") == ["echo", "ticker"], timeout=TIMEOUT)
        wait_for(lambda: server.pids("echo") and server.pids("ticker"), timeout=TIMEOUT)
        server.collect_child_pids()
        yield server
    finally:
        server.kill()


@contextlib.contextmanager
def open_sse(server: Gunicorn, pid: int) -> Iterator[http.client.HTTPResponse]:
    """An eventsource feed of ``pid``'s stdout; the connection is closed on exit."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", f"/streams/{pid}/stdout?feed=eventsource")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        yield response
    finally:
        conn.close()


def read_event(response: http.client.HTTPResponse) -> tuple[str, str]:
    """The next SSE event with data, as (event, data); comments and retry lines skipped."""
    event, data = "", []
    while True:
        line = response.readline().decode().rstrip("\r\n")
        if not line:
            if data:
                return event, "\n".join(data)
            continue
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def ws_connect(server: Gunicorn, pid: int) -> websocket.WebSocket:
    url = f"ws://127.0.0.1:{server.port}/wstreams/{pid}"
    return websocket.create_connection(url, timeout=TIMEOUT)


def close_status(ws: websocket.WebSocket) -> int:
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, frame.data
    (status,) = struct.unpack("!H", frame.data[:2])
    return int(status)


def test_sse_stream_delivers_through_gunicorn(gunicorn: Gunicorn) -> None:
    (ticker,) = gunicorn.pids("ticker")
    with open_sse(gunicorn, ticker) as response:
        event, data = read_event(response)
    assert event == "stdout"
    assert re.fullmatch(r"(line \d+\n)+", data + "\n"), data


def test_websocket_echo_through_gunicorn(gunicorn: Gunicorn) -> None:
    (echo,) = gunicorn.pids("echo")
    ws = ws_connect(gunicorn, echo)
    try:
        ws.send("ECHO\n")
        assert ws.recv() == "ECHO\n"
    finally:
        ws.close(timeout=1)
        ws.shutdown()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stop_signal_with_clients_attached_stops_every_child(
    gunicorn: Gunicorn, sig: signal.Signals
) -> None:
    (echo,), (ticker,) = gunicorn.pids("echo"), gunicorn.pids("ticker")
    ws = ws_connect(gunicorn, echo)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(ws.shutdown)
        sse = cleanup.enter_context(open_sse(gunicorn, ticker))
        # An idle keep-alive connection must not hold the worker either.
        idle = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=TIMEOUT)
        cleanup.callback(idle.close)
        idle.request("GET", "/ping")
        assert idle.getresponse().read() == b"OK"
        assert read_event(sse)[0] == "stdout"  # attached and flowing
        ws.send("still here\n")
        assert ws.recv() == "still here\n"
        children = gunicorn.collect_child_pids()
        assert len(children) >= 2 and set(alive(children)) == children

        started = time.monotonic()
        gunicorn.proc.send_signal(sig)
        # The streams end cleanly: the SSE body finishes its chunked encoding
        # (no IncompleteRead) and the websocket gets a normal close.
        rest = sse.read()
        assert rest == b"" or rest.endswith(b"\r\n\r\n"), rest[-200:]
        assert close_status(ws) == NORMAL_CLOSURE
        assert gunicorn.proc.wait(STOP_WITHIN) == 0
        elapsed = time.monotonic() - started
    wait_for(lambda: not alive(children), timeout=5)
    log = gunicorn.log_text()
    assert "stopping every child first" in log, log
    assert "graceful timeout" not in log.lower() and "SIGKILL" not in log, log
    assert elapsed < STOP_WITHIN


def test_no_control_socket_is_created(gunicorn: Gunicorn, tmp_path: Path) -> None:
    """gunicorn 27 would create $XDG_RUNTIME_DIR/gunicorn.ctl (or ~/.gunicorn/) by default."""
    assert not (tmp_path / "run" / "gunicorn.ctl").exists()
    assert not (tmp_path / ".gunicorn").exists()


def test_more_than_one_worker_is_refused(tmp_path: Path) -> None:
    server = start_gunicorn(tmp_path, "-w", "2")
    try:
        assert server.proc.wait(TIMEOUT) != 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(5)
    assert "exactly one worker" in server.log_text()
