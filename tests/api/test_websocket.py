"""/wstreams/<pid> (spec 4.13) over a real server, with a real websocket client.

The test process is monkey-patched (conftest), so websocket-client's blocking
socket calls yield to the server running in the same hub. Every call has a
timeout; a reply that never comes fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from gaffer_gevent.process import Process
from gaffer_gevent.template import ProcessTemplate

from ..helpers import PYTHON, child, wait_for

TIMEOUT = 5.0
NORMAL_CLOSURE = 1000

#: Reads a line at a time; answers each on stdout (``O``-prefixed) and stderr (``E``).
BOTH_STREAMS = (
    "import sys\n"
    "for line in sys.stdin:\n"
    "    sys.stderr.write('E' + line); sys.stderr.flush()\n"
    "    sys.stdout.write('O' + line); sys.stdout.flush()\n"
)
#: Answers one line in upper case, then exits.
ONE_SHOT = "import sys; sys.stdout.write(sys.stdin.readline().upper())"

Connect = Callable[[str | int], websocket.WebSocket]


@pytest.fixture
def connect(server: Any) -> Iterator[Connect]:
    """Open ``/wstreams/<segment>`` on the live server; every socket is closed at the end."""
    opened: list[websocket.WebSocket] = []

    def open_socket(segment: str | int) -> websocket.WebSocket:
        url = f"ws://{server.host}:{server.port}/wstreams/{segment}"
        ws = websocket.create_connection(url, timeout=TIMEOUT)
        opened.append(ws)
        return ws

    yield open_socket
    for ws in opened:
        ws.close(timeout=1)
        ws.shutdown()  # close() skips the socket once a close frame was answered


def start(server: Any, name: str, **fields: Any) -> Process:
    """Add a one-process template to the server's manager and return its process."""
    server.manager.add_template(ProcessTemplate.from_json({"name": name, **fields}))
    (pid,) = server.manager.pids(name)
    process: Process = server.manager.get_process(pid)
    return process


def echo(server: Any, name: str = "echo", **fields: Any) -> Process:
    return start(server, name, **child("echo"), redirect_input=True,
                 redirect_output=["stdout"], **fields)  # fmt: skip


def receive_text(ws: websocket.WebSocket, expected_len: int) -> str:
    """Concatenate text messages until ``expected_len`` characters arrived.

    A child's output may be cut into chunks anywhere, so messages are joined
    before comparing; every message must be a text frame.
    """
    received = ""
    while len(received) < expected_len:
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_TEXT, f"not a text frame: {opcode} {data!r}"
        received += data.decode("utf-8")
    return received


def close_status(ws: websocket.WebSocket) -> int:
    """Read until the server's close frame; its status code (fails on any other frame)."""
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, f"expected a close, got {frame.data!r}"
    (status,) = struct.unpack("!H", frame.data[:2])
    return int(status)


def subscriptions(process: Process, label: str = "stdout") -> int:
    return len(process.streams[label].subscriptions)


def test_messages_go_to_stdin_and_stdout_comes_back_as_text(server: Any, connect: Connect) -> None:
    process = echo(server)
    ws = connect(process.pid)
    message = "héllo wörld ✓\n"
    ws.send(message)
    assert receive_text(ws, len(message)) == message


def test_binary_message_is_written_verbatim_and_answered_as_utf8_text(
    server: Any, connect: Connect
) -> None:
    process = echo(server)
    ws = connect(process.pid)
    ws.send_binary(b"\x00\x01bin\xc3\xa9\n")
    assert receive_text(ws, 7) == "\x00\x01biné\n"
    ws.send_binary(b"bad \xff\n")  # not UTF-8: decoded with replacement
    assert receive_text(ws, 6) == "bad \ufffd\n"


def test_text_is_not_given_a_newline(server: Any, connect: Connect) -> None:
    process = echo(server)
    ws = connect(process.pid)
    ws.send("no newline")
    assert receive_text(ws, 10) == "no newline"


@pytest.mark.parametrize(
    ("segment", "error"),
    [("abc", "bad_value"), ("-1", "bad_value"), ("%C2%B2", "bad_value"), ("99", "not_found")],
)
def test_refused_pid_sends_an_error_then_closes(
    server: Any, connect: Connect, segment: str, error: str
) -> None:
    ws = connect(segment)
    assert json.loads(ws.recv()) == {"error": error}
    assert close_status(ws) == NORMAL_CLOSURE


def test_process_without_redirect_input_is_forbidden_write(server: Any, connect: Connect) -> None:
    process = start(server, "reader", **child("echo"), redirect_output=["stdout"])
    ws = connect(process.pid)
    assert json.loads(ws.recv()) == {"error": "forbidden_write"}
    assert close_status(ws) == NORMAL_CLOSURE
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)


def test_process_exit_delivers_its_output_then_closes_normally(
    server: Any, connect: Connect
) -> None:
    process = start(server, "oneshot", cmd=PYTHON, args=["-c", ONE_SHOT],
                    redirect_input=True, redirect_output=["stdout"])  # fmt: skip
    ws = connect(process.pid)
    ws.send("bye\n")
    assert receive_text(ws, 4) == "BYE\n"
    assert close_status(ws) == NORMAL_CLOSURE
    wait_for(lambda: not process.alive, timeout=TIMEOUT)
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)


def test_server_drops_a_silent_client_after_its_close(server: Any, connect: Connect) -> None:
    """A client that never answers the close frame must not hold the connection forever."""
    process = echo(server)
    ws = connect(process.pid)
    wait_for(lambda: subscriptions(process) == 1, timeout=TIMEOUT)
    server.manager.stop_process(process.pid)
    raw = ws.sock  # read below the client library, so no close reply is sent
    received = b""
    while chunk := raw.recv(4096):  # the socket timeout (TIMEOUT) bounds each read
        received += chunk
    assert received == b"\x88\x02" + struct.pack("!H", NORMAL_CLOSURE)
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)


def test_stopping_the_process_closes_normally(server: Any, connect: Connect) -> None:
    process = echo(server)
    ws = connect(process.pid)
    wait_for(lambda: subscriptions(process) == 1, timeout=TIMEOUT)
    server.manager.stop_process(process.pid)
    assert close_status(ws) == NORMAL_CLOSURE


def test_only_the_first_label_is_relayed(server: Any, connect: Connect) -> None:
    process = start(server, "both", cmd=PYTHON, args=["-u", "-c", BOTH_STREAMS],
                    redirect_input=True, redirect_output=["stdout", "stderr"])  # fmt: skip
    ws = connect(process.pid)
    ws.send("a\n")
    ws.send("b\n")
    assert receive_text(ws, 6) == "Oa\nOb\n"


def test_stderr_is_relayed_when_it_shares_the_first_label(server: Any, connect: Connect) -> None:
    process = start(server, "merged", cmd=PYTHON, args=["-u", "-c", BOTH_STREAMS],
                    redirect_input=True, redirect_output=["out", "out"])  # fmt: skip
    ws = connect(process.pid)
    ws.send("a\n")
    assert sorted(receive_text(ws, 6).splitlines()) == ["Ea", "Oa"]


def test_client_close_frees_the_subscription(server: Any, connect: Connect) -> None:
    process = echo(server)
    ws = connect(process.pid)
    wait_for(lambda: subscriptions(process) == 1, timeout=TIMEOUT)
    ws.close(timeout=1)
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)
    assert process.alive


def test_client_vanishing_frees_the_subscription(server: Any, connect: Connect) -> None:
    """A client that drops the TCP connection without a close frame."""
    process = echo(server)
    sockets = [connect(process.pid) for _ in range(3)]
    wait_for(lambda: subscriptions(process) == 3, timeout=TIMEOUT)
    for ws in sockets:
        ws.shutdown()
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)
    # The process and the route are unharmed: a new client still gets its echo.
    ws = connect(process.pid)
    ws.send("still here\n")
    assert receive_text(ws, 11) == "still here\n"


def test_round_trip_of_200_messages_is_complete_and_in_order(server: Any, connect: Connect) -> None:
    process = echo(server)
    ws = connect(process.pid)
    messages = [f"message {n:03d} {'x' * (n % 17)}\n" for n in range(200)]
    for message in messages:
        ws.send(message)
    expected = "".join(messages)
    assert receive_text(ws, len(expected)) == expected


def test_two_clients_both_receive_the_output(server: Any, connect: Connect) -> None:
    process = echo(server)
    first, second = connect(process.pid), connect(process.pid)
    wait_for(lambda: subscriptions(process) == 2, timeout=TIMEOUT)
    first.send("shared\n")
    assert receive_text(first, 7) == "shared\n"
    assert receive_text(second, 7) == "shared\n"


def test_full_stdin_queue_sends_stdin_full_then_closes(server: Any, connect: Connect) -> None:
    """A child that never reads: the write is refused, the server and child are unharmed."""
    process = start(server, "deaf", cmd=PYTHON, args=["-c", "import time; time.sleep(60)"],
                    redirect_input=True, redirect_output=["stdout"])  # fmt: skip
    ws = connect(process.pid)
    ws.send_binary(b"x" * (server.manager.stdin_queue_size + 1))
    assert json.loads(ws.recv()) == {"error": "stdin_full"}
    assert close_status(ws) == NORMAL_CLOSURE
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)
    assert process.alive


# -- keep-alive: pings, and the idle limit (issue 12, defect 7) -----------------------------


def test_server_pings_and_a_client_that_answers_stays_connected(
    server: Any, connect: Connect
) -> None:
    server.app.config.update(GAFFER_WEBSOCKET_PING_INTERVAL=0.1, GAFFER_WEBSOCKET_IDLE_TIMEOUT=0.5)
    process = echo(server)
    ws = connect(process.pid)
    pings = 0
    deadline = time.monotonic() + 1.5  # three idle limits
    while time.monotonic() < deadline:
        opcode, frame = ws.recv_data_frame(control_frame=True)  # websocket-client answers pongs
        assert opcode == websocket.ABNF.OPCODE_PING, f"not a ping: {opcode} {frame.data!r}"
        pings += 1
    assert pings >= 5
    ws.send("still here\n")
    assert receive_text(ws, 11) == "still here\n"


def test_a_client_that_never_answers_is_closed_after_the_idle_limit(
    server: Any, connect: Connect
) -> None:
    server.app.config.update(GAFFER_WEBSOCKET_PING_INTERVAL=0.1, GAFFER_WEBSOCKET_IDLE_TIMEOUT=0.5)
    process = echo(server)
    ws = connect(process.pid)
    wait_for(lambda: subscriptions(process) == 1, timeout=TIMEOUT)
    raw = ws.sock  # read below the client library, so no pong is ever sent
    received = b""
    while chunk := raw.recv(4096):  # the socket timeout (TIMEOUT) bounds each read
        received += chunk
    assert received.startswith(b"\x89\x00")  # pinged first
    assert received.endswith(b"\x88\x02" + struct.pack("!H", 1001))  # then closed: going away
    wait_for(lambda: subscriptions(process) == 0, timeout=TIMEOUT)
    assert process.alive  # only the connection ends
