"""gaffer under real gunicorn: ``gunicorn -c gunicorn.conf.py wsgi:application``.

gunicorn runs in its own process group with ``GAFFER_CONFIG`` pointing to a
temporary ini (an echo process and a ticking one). The tests check an SSE
stream and the websocket echo through gunicorn's gevent-websocket worker, and
that stopping the master with clients attached stops every child, ends the
streams cleanly and exits well before gunicorn's graceful timeout would SIGKILL
the worker. Binding port 0 and reading the port from gunicorn's log avoids
racing other tests for a "free" port.

One manager only (issue 13): with ``gunicorn.conf.py`` a TTIN is refused;
without it (run from another directory) a second worker (``-w 2`` or TTIN)
stands by, answering 503 ``not_the_manager``, and takes over with the
processes once the managing worker dies; SIGTERM leaves no child either way.
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

import psutil
import pytest
import websocket

from gaffer_gevent.runtime import STATE_FILE, read_record

from .helpers import CHILDREN, PYTHON, LoggedServer, alive, spawn_logged, wait_for

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None,
    reason="gunicorn is not installed (pip install 'gunicorn[gevent]')",
)

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
WORKER_CLASS = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
TIMEOUT = 10.0
#: Stopping must end well inside gunicorn.conf.py's graceful_timeout (30 s),
#: i.e. without the master SIGKILLing the worker.
STOP_WITHIN = 15.0
NORMAL_CLOSURE = 1000
STANDING_BY = "this worker answers 503 not_the_manager"

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

    #: ``GAFFER_CONFIG``: every process of this gunicorn (children included) has it in its env.
    ini: Path | None = None

    def leftovers(self) -> list[int]:
        """Processes still carrying this gunicorn's environment, seen by us or not."""
        marker = f"GAFFER_CONFIG={self.ini}\0".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if marker in Path(f"/proc/{entry}/environ").read_bytes():
                        found.append(int(entry))
        return alive(set(found))

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

    def answer(self, path: str) -> tuple[int, Any]:
        """(status, JSON body) of ``GET path`` on a new connection (any worker may answer)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def managed(self) -> dict[int, list[int]]:
        """Worker pid -> the OS pids of the processes it runs (the workers' children)."""
        workers = psutil.Process(self.proc.pid).children()
        found: dict[int, list[int]] = {}
        for worker in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                found[worker.pid] = [c.pid for c in worker.children()]
        self.child_pids.update(pid for pids in found.values() for pid in pids)
        return found

    def managers(self) -> list[int]:
        """The workers running processes right now."""
        return [worker for worker, children in self.managed().items() if children]

    def collect_child_pids(self) -> set[int]:
        """Every OS pid of every process (and their children), as /stats reports them."""
        for template in self.get("/stats"):
            for info in template["stats"]:
                self.child_pids.add(info["pid"])
                self.child_pids.update(c["pid"] for c in info.get("children", []))
        return self.child_pids


def start_gunicorn(tmp_path: Path, *extra: str, conf: bool = True, ini_text: str = INI) -> Gunicorn:
    """gunicorn with ``gunicorn.conf.py``, or (``conf=False``) run from another directory
    with only the flags a user would copy from wsgi.py's docstring."""
    ini = tmp_path / "gaffer.ini"
    ini.write_text(ini_text)
    runtime = tmp_path / "run"
    runtime.mkdir(exist_ok=True)
    log = tmp_path / "gunicorn.log"
    env = dict(os.environ, GAFFER_CONFIG=str(ini), HOME=str(tmp_path),
               XDG_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")  # fmt: skip
    settings = (
        ["-c", "gunicorn.conf.py"] if conf else ["--pythonpath", str(REPO), "-k", WORKER_CLASS]
    )
    proc = spawn_logged(
        [str(GUNICORN), *settings, "-b", "127.0.0.1:0", *extra, "wsgi:application"],
        log, cwd=REPO if conf else tmp_path, env=env,
    )  # fmt: skip
    server = Gunicorn(proc, log)
    server.ini = ini
    return server


def serving(server: Gunicorn, processes: int = 2) -> Gunicorn:
    """Wait for the port and for one worker running the processes; their pids are kept."""
    server.port = server.logged_port(LISTENING, "gunicorn", timeout=TIMEOUT)
    wait_for(lambda: max(map(len, server.managed().values()), default=0) == processes, TIMEOUT)
    return server


def recorded_groups(tmp_path: Path) -> int:
    """How many process groups the manager's record (``runtime.py``) lists now."""
    records = (read_record(str(state)) for state in (tmp_path / "run").rglob(STATE_FILE))
    return sum(len(record.groups) for record in records if record is not None)


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


def stop_leaves_nothing(server: Gunicorn) -> None:
    """SIGTERM to the master: it exits 0 and every process any worker ran is gone."""
    children = set(server.child_pids)
    assert children
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(STOP_WITHIN) == 0, server.log_text()
    wait_for(lambda: not alive(children), timeout=5)
    # Also what no request showed, e.g. processes a worker started while it was stopping.
    wait_for(lambda: not server.leftovers(), timeout=5)


def one_manager_answers(server: Gunicorn, echo: list[int]) -> list[int]:
    """Twenty requests on new connections: the manager's pids, or a stand-by's 503; never 404."""
    statuses = []
    for _ in range(20):
        status, body = server.answer("/processes/echo/_pids")
        assert (status, body.get("pids")) == (200, echo) or (
            status == 503 and body["error"] == "not_the_manager"
        ), (status, body)
        statuses.append(status)
    return statuses


def test_ttin_is_refused_with_the_conf(gunicorn: Gunicorn) -> None:
    echo = gunicorn.pids("echo")
    gunicorn.proc.send_signal(signal.SIGTTIN)
    wait_for(lambda: "refusing to grow to 2 (TTIN)" in gunicorn.log_text(), timeout=TIMEOUT)
    assert gunicorn.pids("echo") == echo
    stop_leaves_nothing(gunicorn)
    assert gunicorn.log_text().count("Booting worker") == 1


@pytest.mark.parametrize("grow", ["-w 2", "TTIN"])
def test_without_the_conf_a_second_worker_stands_by(tmp_path: Path, grow: str) -> None:
    server = start_gunicorn(tmp_path, *(["-w", "2"] if grow == "-w 2" else []), conf=False)
    try:
        serving(server)
        if grow == "TTIN":
            server.proc.send_signal(signal.SIGTTIN)
        wait_for(lambda: STANDING_BY in server.log_text(), timeout=TIMEOUT)
        wait_for(lambda: len(server.managed()) == 2, timeout=TIMEOUT)
        (manager,) = server.managers()
        assert len(server.managed()[manager]) == 2  # echo and ticker, once
        line = next(x for x in server.log_text().splitlines() if STANDING_BY in x)
        assert f"(pid {manager})" in line, line
        (echo,) = wait_for(lambda: server.answer("/processes/echo/_pids")[1].get("pids"))
        one_manager_answers(server, [echo])
        assert server.managers() == [manager]
        stop_leaves_nothing(server)
    finally:
        server.kill()


def test_the_standby_takes_over_when_the_manager_dies(tmp_path: Path) -> None:
    """SIGKILL the managing worker: the stand-by stops what it left, then runs the processes.

    ``cat`` and the ticker die by themselves once their pipes' other end is gone;
    a ``sleep`` that has no pipe lives on until the stand-by stops it.
    """
    sleeper = "[process:sleeper]\ncmd = sleep 600\n"
    server = start_gunicorn(tmp_path, "-w", "2", conf=False, ini_text=INI + sleeper)
    try:
        serving(server, processes=3)
        # The record is written WRITE_DELAY after a spawn: a kill before it has nothing to sweep.
        wait_for(lambda: recorded_groups(tmp_path) == 3, timeout=TIMEOUT)
        wait_for(lambda: STANDING_BY in server.log_text(), timeout=TIMEOUT)
        workers = set(server.managed())
        (manager,) = server.managers()
        orphans = set(server.managed()[manager])
        os.kill(manager, signal.SIGKILL)

        def taken_over() -> bool:
            managers = [w for w in server.managers() if w != manager]
            return len(managers) == 1 and not alive(orphans)

        wait_for(taken_over, timeout=TIMEOUT)
        (new_manager,) = server.managers()
        wait_for(lambda: len(server.managed()[new_manager]) == 3, timeout=TIMEOUT)
        # The dead worker's replacement stands by in turn (or manages, if it won the lock).
        # Wait for its boot: gunicorn loses a SIGTERM that comes before the worker's handlers.
        booted = f"(pid {new_manager}) runs the processes"
        wait_for(lambda: booted in server.log_text() or new_manager not in workers, TIMEOUT)
        stopped = re.search(r"did not stop cleanly: stopped (\d+) process", server.log_text())
        assert stopped and 1 <= int(stopped.group(1)) <= 3, server.log_text()
        (echo,) = wait_for(lambda: server.answer("/processes/echo/_pids")[1].get("pids"))
        one_manager_answers(server, [echo])
        stop_leaves_nothing(server)
    finally:
        server.kill()


def test_sighup_hands_the_processes_to_the_new_worker(gunicorn: Gunicorn) -> None:
    (old_worker,) = gunicorn.managers()
    old = set(gunicorn.managed()[old_worker])
    gunicorn.proc.send_signal(signal.SIGHUP)

    # The new worker stands by until the old one has stopped its children.
    def handed_over() -> bool:
        managers = gunicorn.managers()
        return managers != [old_worker] and len(managers) == 1 and not alive(old)

    wait_for(handed_over, timeout=STOP_WITHIN)
    (new_worker,) = gunicorn.managers()
    assert len(gunicorn.managed()[new_worker]) == 2
    assert "did not stop cleanly" not in gunicorn.log_text()

    def answered() -> bool:
        # For up to a second the old worker still accepts, and closes at once, as it stops.
        with contextlib.suppress(ConnectionError):
            return gunicorn.answer("/processes/echo/_pids")[0] == 200
        return False

    wait_for(answered, timeout=TIMEOUT)
    stop_leaves_nothing(gunicorn)
