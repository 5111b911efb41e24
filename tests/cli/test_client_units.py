"""The client's pure parts: SSE parsing, error mapping, signal names; no server needed."""

import signal
import sys
import time

import pytest

from gaffer_gevent import errors
from gaffer_gevent.client import (
    Client,
    ServerUnreachable,
    SSEEvent,
    SSEParser,
    error_from_body,
    signal_number,
)

from ..helpers import free_port


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_sse_gaffer_framing_crlf():
    body = b"event: stdout\r\ndata: hello\r\n\r\nevent: stderr\r\ndata: a\r\ndata: b\r\n\r\n"
    assert parse(body) == [SSEEvent("stdout", "hello"), SSEEvent("stderr", "a\nb")]


def test_sse_byte_by_byte_gives_the_same_events():
    body = b"event: x\r\ndata: 1\r\n\r\n:comment\ndata:2\rid: 7\r\rdata: \xc3\xa9\n\n"
    whole = parse(body)
    assert whole == [
        SSEEvent("x", "1"),
        SSEEvent("message", "2", id="7"),
        SSEEvent("message", "é", id="7"),
    ]
    assert parse(*(body[i : i + 1] for i in range(len(body)))) == whole


def test_sse_cr_at_chunk_end_then_lf_is_one_line_end():
    assert parse(b"data: a\r", b"\n\r", b"\n") == [SSEEvent("message", "a")]


def test_sse_heartbeats_and_dataless_events_dispatch_nothing():
    assert parse(b"\n\n\r\n", b"event: ping\n\n", b": keepalive\n\n") == []


def test_sse_fields_bom_retry_and_odd_lines():
    events = parse(b"\xef\xbb\xbfdata\nretry: 1500\nretry: x\nid: a\0b\nfoo: bar\ndata:  two\n\n")
    assert events == [SSEEvent("message", "\n two", id=None, retry=1500)]


def test_sse_event_name_resets_after_dispatch():
    assert parse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [
        SSEEvent("a", "1"),
        SSEEvent("message", "2"),
    ]


def test_sse_one_8_mib_line_in_small_chunks_parses_in_linear_time():
    # Each chunk must be scanned once: a parser that rescans its whole buffer per
    # chunk (or for a CR per line) takes minutes here, a linear one well under a second.
    line = b"data: " + b"x" * (8 * 1024 * 1024) + b"\n\n"
    parser = SSEParser()
    started = time.perf_counter()
    events = [event for i in range(0, len(line), 128) for event in parser.feed(line[i : i + 128])]
    elapsed = time.perf_counter() - started
    assert [len(event.data) for event in events] == [8 * 1024 * 1024]
    assert elapsed < 5.0, f"{elapsed:.1f} s for one 8 MiB line"


def test_sse_many_short_lines_without_cr_parse_in_linear_time():
    body = b"data: x\n" * (1024 * 1024) + b"\n"  # 8 MiB of LF-only lines in one chunk
    started = time.perf_counter()
    events = SSEParser().feed(body)
    elapsed = time.perf_counter() - started
    assert len(events) == 1 and len(events[0].data) == 2 * 1024 * 1024 - 1
    assert elapsed < 5.0, f"{elapsed:.1f} s for 8 MiB of short lines"


def test_error_from_body_maps_codes_to_the_package_classes():
    error = error_from_body(404, {"error": "not_found"}, "GET /processes/x")
    assert type(error) is errors.NotFound
    assert (error.status, error.code, error.message) == (404, "not_found", "GET /processes/x")
    error = error_from_body(409, {"error": "conflict", "reason": "exists"})
    assert isinstance(error, errors.Conflict) and error.message == "exists"
    assert isinstance(error_from_body(503, {"error": "stdin_full"}), errors.StdinFull)


def test_error_from_body_keeps_unknown_codes_and_statuses():
    error = error_from_body(418, {"error": "teapot"}, "POST /x")
    assert type(error) is errors.GafferError
    assert (error.status, error.code) == (418, "teapot")
    assert error_from_body(404, None).code == "not_found"
    error = error_from_body(502, "<html>")
    assert (error.status, error.code) == (502, "http_502")


@pytest.mark.parametrize(
    ("given", "number"),
    [(15, 15), ("9", 9), ("hup", signal.SIGHUP), ("SIGTERM", signal.SIGTERM), (" Usr1 ", 10)],
)
def test_signal_number(given, number):
    assert signal_number(given) == number


def test_signal_number_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown signal 'FOO'"):
        signal_number("FOO")


def test_unreachable_server_names_the_address(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, timeout=2) as client, pytest.raises(ServerUnreachable) as info:
        client.processes()
    assert info.value.address == url
    assert str(info.value).startswith(f"cannot reach gafferd at {url} (")
    assert info.value.code == "server_unreachable"
    sock = f"unix:{tmp_path}/nothing.sock"
    with Client(sock) as client, pytest.raises(ServerUnreachable, match=r"nothing\.sock"):
        client.watch()


def test_client_refuses_unknown_schemes():
    with pytest.raises(ValueError, match="unsupported gafferd address 'ftp://x'"):
        Client("ftp://x")


def test_websocket_helper_explains_a_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "websocket", None)  # as if not installed
    with Client("http://127.0.0.1:1") as client, pytest.raises(ImportError, match="pip install"):
        client.websocket(1)


@pytest.mark.parametrize("given", ["hup", " SIGTERM ", "9", "Usr1"])
def test_signal_number_reads_names_as_the_manager_does(given):
    """One parser: the client converts a name to the number the manager would read it as."""
    from gaffer_gevent.signals import parse_signal

    assert signal_number(given) == parse_signal(given)
