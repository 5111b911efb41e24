"""The typed client against a real gafferd: one call per endpoint, feeds, errors, transports."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from gevent.pywsgi import WSGIServer

from gaffer_gevent import __version__, errors
from gaffer_gevent.client import Client, SSEEvent

from ..helpers import self_signed_cert
from .conftest import ECHO, TICKER, start_gafferd, stop_process, wait_for

PY = sys.executable


def test_server_and_template_calls(client):
    assert client.version() == __version__
    assert client.ping() is True
    assert client.processes() == [] and client.running() == [] and client.groups() == []
    client.add_process("ga:a", PY, args=[TICKER], graceful_timeout=1)
    client.add_process("ga:b", PY, args=[TICKER], start=False)
    assert client.processes() == ["ga:a", "ga:b"]
    assert client.is_process("ga:a") and not client.is_process("nope")
    assert client.get_process("ga:a") == {
        "name": "ga:a", "cmd": PY, "args": [TICKER], "graceful_timeout": 1, "group": "ga",
    }  # fmt: skip
    (pid,) = client.pids("ga:a")
    assert client.running() == [pid] and client.is_process(pid)
    assert client.get_process_by_pid(pid)["name"] == "ga:a"
    assert client.status("ga:a") == {
        "active": True, "running": 1, "max_processes": 1,
        "state": "running", "restarts": 0, "failures": 0, "retry_in": None, "ready": 1,
    }  # fmt: skip
    assert client.add("ga:a", 2) == 3 and client.sub("ga:a") == 2  # reaps the oldest: pid
    victim = client.pids("ga:a")[0]
    assert pid != victim
    client.stop_pid(victim)
    wait_for(lambda: victim not in client.pids("ga:a") and len(client.pids("ga:a")) == 2)
    client.send_signal("ga:a", "HUP")
    client.stop_process("ga:a")
    assert client.status("ga:a")["running"] == 0
    client.start_process("ga:a")
    client.restart_process("ga:a")
    client.update_process("ga:a", PY, args=[TICKER, "x"], start=False)
    assert client.get_process("ga:a")["args"] == [TICKER, "x"]
    client.remove_process("ga:b")
    assert client.processes() == ["ga:a"]
    client.update_process("ga:new", PY, create=True, args=[TICKER], start=False)  # upsert
    assert client.processes() == ["ga:a", "ga:new"]


def test_group_calls(client):
    for name in ("g:a", "g:b", "g:c"):
        client.add_process(name, PY, args=[TICKER], graceful_timeout=1)
    assert client.groups() == ["g"] and client.get_group("g") == ["g:a", "g:b", "g:c"]
    client.stop_group("g")
    assert [client.status(n)["running"] for n in client.get_group("g")] == [0, 0, 0]
    client.start_group("g")
    client.restart_group("g")
    wait_for(lambda: [client.status(n)["running"] for n in client.get_group("g")] == [1, 1, 1])
    client.remove_group("g")
    assert client.processes() == []


def test_stats(client):
    client.add_process("s", PY, args=[TICKER], numprocesses=2)
    (all_stats,) = client.stats()
    assert all_stats["name"] == "s" and len(all_stats["stats"]) == 2
    one = client.stats("s")
    assert [p["id"] for p in one["stats"]] == client.pids("s")
    proc = client.stats("s", client.pids("s")[0])
    assert proc["pid"] == one["stats"][0]["pid"] and "id" not in proc
    with client.stats_feed("s", heartbeat=1) as feed:
        info = next(feed)
    assert info["pid"] in {p["pid"] for p in one["stats"]}


def test_errors_carry_the_server_codes(client):
    client.add_process("e", PY, args=[TICKER], redirect_output=["out"])
    cases = [
        (errors.NotFound, lambda: client.get_process("missing")),
        (errors.NotFound, lambda: client.status("missing")),
        (errors.Conflict, lambda: client.add_process("e", PY)),
        (errors.InvalidProcessInfo, lambda: client.create_process({"name": "x"})),
        (errors.InvalidProcessInfo, lambda: client.add_process("y", PY, numprocesses="2")),
        (errors.Forbidden, lambda: client.write_stdin(client.pids("e")[0], b"x")),
        (errors.IoNotFound, lambda: client.stream(client.pids("e")[0], "nolabel")),
        (errors.NotFound, lambda: client.stream(99999, "out")),
        (errors.NotFound, lambda: client.write_stdin(99999, b"x")),
    ]
    for error, call in cases:
        with pytest.raises(error) as info:
            call()
        assert info.value.code == error.code and info.value.status == error.status


def test_stream_feeds(client):
    client.add_process("t", PY, args=["-u", TICKER], redirect_output=["stdout", "stderr"])
    (pid,) = client.pids("t")
    with client.stream(pid, "stdout", "longpoll") as longpoll:
        assert b"".join(longpoll).startswith((b"tick", b"start"))
    with client.stream(pid, "stderr", heartbeat=0) as continuous:
        data = b""
        for chunk in continuous:
            data += chunk
            if data.count(b"\n") >= 3:
                break
    lines = [line for line in data.split(b"\n")[:-1] if line]  # a "\n" may be a heartbeat
    assert lines and all(line.startswith(b"tock ") for line in lines), data
    with client.stream(pid, "stdout", "eventsource", heartbeat=1) as events:
        event = next(events)
    assert isinstance(event, SSEEvent) and event.event == "stdout"
    assert event.data.startswith("tick ") and not event.data.endswith("\n")


def test_follow_gives_the_exact_output_and_replays_lines(client):
    client.add_process("t", PY, args=["-u", TICKER], redirect_output=["out"])
    (pid,) = client.pids("t")
    wait_for(lambda: re.match(rb"tick ([3-9]|\d\d)", _longpoll(client, pid, "out")))
    with client.follow(pid, "out", heartbeat=1, tail=2) as chunks:
        data = b""
        for chunk in chunks:
            data += chunk
            if data.count(b"\n") >= 4:
                break
    first, second, *_ = data.split(b"\n")
    assert re.fullmatch(rb"tick \d+", first) and re.fullmatch(rb"tick \d+", second)
    assert int(second[5:]) == int(first[5:]) + 1


def _longpoll(client, pid, label):
    with client.stream(pid, label, "longpoll") as feed:
        return b"".join(feed)


def test_stream_ends_when_the_process_exits(client):
    client.add_process("t", PY, args=["-u", TICKER], redirect_output=["out"], graceful_timeout=1)
    (pid,) = client.pids("t")
    with client.stream(pid, "out", heartbeat=1) as chunks:
        client.stop_process("t")
        b"".join(chunks)  # returns only because the server ends the response (spec 4.11 [R])
    assert not client.is_process(pid)


def test_write_stdin_and_websocket(client):
    client.add_process("echo", PY, args=["-u", ECHO], redirect_output=["out"], redirect_input=True)
    (pid,) = client.pids("echo")
    with client.stream(pid, "out", heartbeat=0) as chunks:
        client.write_stdin(pid, b"one\n")
        data = b""
        for chunk in chunks:
            data += chunk
            if b"echo: one\n" in data:
                break
    with client.websocket(pid, timeout=10) as ws:
        ws.send("two\n")
        received = ""
        while "echo: two" not in received:
            message = ws.recv()
            assert message is not None
            received += message


def test_watch_yields_matching_events(client):
    with client.watch("proc.w", heartbeat=1) as events:
        client.add_process("other", PY, args=[TICKER], graceful_timeout=1)
        client.add_process("w", PY, args=[TICKER], graceful_timeout=1)
        name, payload = next(events)
    assert name == "proc.w.start" and payload == {"event": "proc.w.start", "name": "w"}


def test_unix_socket_transport(tmp_path: Path):
    sock = tmp_path / "g.sock"
    daemon = start_gafferd(tmp_path, bind=f"unix:{sock}")
    try:
        assert daemon.url == f"unix:{sock}"
        with Client(daemon.url) as client:
            client.add_process(
                "u", PY, args=["-u", ECHO], redirect_output=["o"], redirect_input=True
            )
            assert client.processes() == ["u"]
            with client.websocket(client.pids("u")[0], timeout=10) as ws:
                ws.send(b"hi\n")
                received = ""
                while "echo: hi\n" not in received:
                    message = ws.recv()
                    assert message is not None
                    received += message
    finally:
        stop_process(daemon.proc)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
def test_https_with_a_ca_file(tmp_path: Path):
    cert, key = self_signed_cert(tmp_path)
    config = "[gaffer]\nhttp_endpoints = tls\n\n[endpoint:tls]\nbind = 127.0.0.1:0\n"
    config += f"certfile = {cert}\nkeyfile = {key}\n"
    daemon = start_gafferd(tmp_path, bind=None, config=config)  # --bind would replace it
    try:
        assert daemon.url.startswith("https://")
        with Client(daemon.url, cafile=str(cert)) as client:
            assert client.processes() == []
        with Client(daemon.url) as client, pytest.raises(errors.GafferError) as info:
            client.processes()  # not signed by a known CA
        assert info.value.code == "server_unreachable"
    finally:
        stop_process(daemon.proc)


def test_daemon_webhooks_post_events(tmp_path: Path):
    received: list[dict] = []

    def app(environ, start_response):
        received.append(json.loads(environ["wsgi.input"].read()))
        start_response("200 OK", [])
        return [b""]

    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
    server.start()
    hook = f"http://127.0.0.1:{server.server_port}/hook"
    daemon = start_gafferd(tmp_path, config=f"[webhooks]\ncreate = {hook}\nproc.h = {hook}\n")
    try:
        with Client(daemon.url) as client:
            client.add_process("h", PY, args=[TICKER], start=False)
            wait_for(lambda: received)
        assert received == [{"event": "create", "name": "h"}]
    finally:
        stop_process(daemon.proc)
        server.stop(timeout=1)
