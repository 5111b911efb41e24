"""The client's bearer token against a real recording server: every request carries it.

Calls, HEAD, feeds (``/watch``, streams), the websocket handshake, over TCP,
a unix socket and TLS with a private CA; gafferd's refusals (401, 403, 421,
429) as their own error classes; and the token never in a URL, a message or a
repr. gafferd's own token checks are tested end to end in test_auth_e2e.py.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from gaffer_gevent.auth import mint_token
from gaffer_gevent.client import (
    AccessForbidden,
    Client,
    ForbiddenOrigin,
    MisdirectedRequest,
    ServerUnreachable,
    TokenError,
    TooManyFailures,
    Unauthorized,
    read_token_file,
    resolve_token,
)
from gaffer_gevent.client.errors import retry_after_seconds

from ..helpers import self_signed_cert
from .recorder import Answer, Recorder

TOKEN = mint_token()
BEARER = f"Bearer {TOKEN}"


def every_kind_of_request(client: Client) -> None:
    """One call of each shape: JSON GET, HEAD, POST, two feeds, the websocket, auth calls."""
    assert client.version() == "9.9"
    assert client.processes() == []
    assert client.is_process("x")
    client.stop_process("x")
    with client.watch(heartbeat=1) as events:
        assert next(events) == ("create", {"event": "create", "name": "x"})
    with client.stream(1, "stdout", heartbeat=0) as chunks:
        assert b"".join(chunks) == b"hello\n"
    with client.websocket(1, timeout=10) as ws:
        assert ws.recv() == "hello"
    assert client.whoami() == {"name": "ops", "role": "operate", "scope": ["web:*", "w"]}
    assert client.ticket() == {"ticket": "t1", "expires_in": 30}
    assert client.health() == {"status": "ok"}


def assert_all_carried_the_token(recorder: Recorder) -> None:
    assert {(s.method, s.path, s.websocket) for s in recorder.seen} == {
        ("GET", "/", False), ("GET", "/processes", False), ("HEAD", "/processes/x", False),
        ("POST", "/processes/x/_stop", False), ("GET", "/watch", False),
        ("GET", "/streams/1/stdout", False), ("GET", "/wstreams/1", True),
        ("GET", "/auth/whoami", False), ("POST", "/auth/ticket", False),
        ("GET", "/health", False),
    }  # fmt: skip
    assert recorder.authorizations() == {BEARER}
    assert all(TOKEN not in seen.query for seen in recorder.seen)  # a header, never the URL
    assert all(seen.origin is None for seen in recorder.seen)  # not a browser


def test_every_request_over_tcp_carries_the_token(recorder: Recorder):
    with Client(f"http://127.0.0.1:{recorder.port}", token=TOKEN, timeout=10) as client:
        every_kind_of_request(client)
    assert_all_carried_the_token(recorder)


def test_every_request_over_a_unix_socket_carries_the_token(tmp_path: Path):
    path = tmp_path / "r.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    recorder = Recorder(listener)
    try:
        with Client(f"unix:{path}", token=TOKEN, timeout=10) as client:
            every_kind_of_request(client)
        assert_all_carried_the_token(recorder)
    finally:
        recorder.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a cert")
def test_https_with_a_private_ca_carries_the_token(tmp_path: Path):
    cert, key = self_signed_cert(tmp_path)
    recorder = Recorder(("127.0.0.1", 0), certfile=str(cert), keyfile=str(key))
    url = f"https://127.0.0.1:{recorder.port}"
    try:
        with Client(url, token=TOKEN, cacert=str(cert), timeout=10) as client:
            every_kind_of_request(client)
        assert_all_carried_the_token(recorder)
        count = len(recorder.seen)
        with Client(url, token=TOKEN, timeout=10) as client, pytest.raises(ServerUnreachable):
            client.processes()  # the private CA is not trusted by default: nothing is sent
        assert len(recorder.seen) == count
    finally:
        recorder.stop()


def test_without_a_token_no_authorization_header_is_sent(recorder: Recorder):
    with Client(f"http://127.0.0.1:{recorder.port}", timeout=10) as client:
        client.processes()
        with client.websocket(1, timeout=10) as ws:
            assert ws.recv() == "hello"
    assert recorder.authorizations() == {None}


@pytest.mark.parametrize(
    "token",
    ["", "two words", "line\nX-Injected: 1", "tab\there", "caf\u00e9", "x" * 5000],
    ids=["empty", "space", "newline", "tab", "non-ascii", "huge"],
)
def test_a_token_that_would_break_the_header_is_refused_without_quoting_it(token: str):
    with pytest.raises(TokenError) as info:
        Client("http://127.0.0.1:1", token=token)
    if token:
        assert token not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_the_token_is_in_no_repr_and_no_error(recorder: Recorder):
    recorder.answers["/processes"] = Answer.json({"error": "unauthorized"}, "401 Unauthorized")
    with Client(f"http://127.0.0.1:{recorder.port}", token=TOKEN, timeout=10) as client:
        assert TOKEN not in repr(client) and "token=<set>" in repr(client)
        assert TOKEN not in repr(client._http.headers)
        with pytest.raises(Unauthorized) as info:
            client.processes()
    error = info.value
    assert TOKEN not in f"{error!s} {error!r} {error.message} {error.to_json()}"


def refusals() -> list[tuple[Answer, type[Exception], str]]:
    return [
        (Answer.json({"error": "unauthorized"}, "401 Unauthorized", **{
            "WWW-Authenticate": "Bearer"}), Unauthorized, "did not accept the token"),
        (Answer.json({"error": "forbidden", "reason": "needs role operate"}, "403 Forbidden"),
         AccessForbidden, "needs role operate"),
        (Answer.json({"error": "forbidden_origin"}, "403 Forbidden"), ForbiddenOrigin, "origin"),
        (Answer.json({"error": "misdirected_request"}, "421 Misdirected Request"),
         MisdirectedRequest, "host name"),
        (Answer.json({"error": "too_many_failures"}, "429 Too Many Requests",
                     **{"Retry-After": "17"}), TooManyFailures, "retry in 17 s"),
    ]  # fmt: skip


@pytest.mark.parametrize(("answer", "error", "text"), refusals())
def test_refusals_map_to_their_classes_on_calls_feeds_and_websockets(
    recorder: Recorder, answer: Answer, error: type[Exception], text: str
):
    for path in ("/processes", "/watch", "/wstreams/1"):
        recorder.answers[path] = answer
    with Client(f"http://127.0.0.1:{recorder.port}", token=TOKEN, timeout=10) as client:
        calls = (client.processes, client.watch, lambda: client.websocket(1, timeout=10))
        for call in calls:
            with pytest.raises(error, match=text) as info:
                call()
            assert info.value.status == int(answer.status[:3])  # type: ignore[attr-defined]
    assert {seen.path for seen in recorder.seen} == {"/processes", "/watch", "/wstreams/1"}


def test_429_keeps_retry_after_and_401_says_whether_a_token_was_sent(recorder: Recorder):
    recorder.answers["/processes"] = Answer.json(
        {"error": "too_many_failures"}, "429 Too Many Requests", **{"Retry-After": "60"}
    )
    recorder.answers["/groups"] = Answer(status="401 Unauthorized", body=b"")  # no JSON body
    url = f"http://127.0.0.1:{recorder.port}"
    with Client(url, token=TOKEN, timeout=10) as client:
        with pytest.raises(TooManyFailures) as throttled:
            client.processes()
        with pytest.raises(Unauthorized) as refused:
            client.groups()
    assert throttled.value.retry_after == 60
    assert refused.value.token_sent is True
    with Client(url, timeout=10) as client, pytest.raises(Unauthorized) as info:
        client.groups()
    assert info.value.token_sent is False
    assert info.value.message == "this gafferd needs a token"


def test_a_bodiless_head_refusal_still_maps(recorder: Recorder):
    recorder.answers["/processes/x"] = Answer.json({"error": "forbidden"}, "403 Forbidden")
    with Client(f"http://127.0.0.1:{recorder.port}", token=TOKEN, timeout=10) as client:
        with pytest.raises(AccessForbidden):
            client.is_process("x")
        recorder.answers["/processes/x"] = Answer.json({}, "401 Unauthorized")
        with pytest.raises(Unauthorized):
            client.is_process("x")


# -- the pure parts: where a token comes from ------------------------------------------


def test_resolve_token_order_and_empty_environment(tmp_path: Path):
    token_file = tmp_path / "t"
    token_file.write_text("from-file\n")
    env = {"GAFFER_TOKEN": "from-env"}
    assert resolve_token("from-opt", str(token_file), env) == "from-opt"
    assert resolve_token(None, str(token_file), env) == "from-file"
    assert resolve_token(None, None, env) == "from-env"
    assert resolve_token(None, None, {"GAFFER_TOKEN": ""}) is None
    assert resolve_token(None, None, {}) is None


def test_read_token_file_takes_the_first_line_stripped(tmp_path: Path):
    path = tmp_path / "t"
    path.write_bytes(b"\t abc.DEF_-~+/= \r\nnext\n")
    assert read_token_file(str(path)) == "abc.DEF_-~+/="
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(TokenError, match="is not UTF-8 text"):
        read_token_file(str(path))
    path.write_text("x" * 100_000)  # one huge line: refused after reading a header's worth
    with pytest.raises(TokenError, match="longer than 4096"):
        read_token_file(str(path))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("17", 17), (" 5 ", 5), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-1", None),
     ("1e3", None), ("\u0661", None), ("9" * 40, None), (None, None)],
)  # fmt: skip
def test_retry_after_is_whole_seconds_or_nothing(value: str | None, seconds: int | None):
    assert retry_after_seconds(value) == seconds


def test_cacert_and_its_older_name_cafile_cannot_disagree():
    with pytest.raises(ValueError, match="same setting"):
        Client("https://127.0.0.1:1", cacert="a.pem", cafile="b.pem")
