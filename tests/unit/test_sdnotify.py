"""sdnotify: address parsing, message framing, the watchdog interval, sends that never wait."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

from gaffer_gevent import sdnotify
from gaffer_gevent.sdnotify import Notifier, NotifyAddressError


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    name = f"gaffer-unit-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    yield sock, "@" + name
    sock.close()


def test_parse_address() -> None:
    assert sdnotify.parse_address("/run/systemd/notify") == "/run/systemd/notify"
    assert sdnotify.parse_address("@abc") == b"\0abc"
    for bad in ("", "@", "relative/path", "vsock:2:1234", "/" + "x" * 200, "@" + "y" * 200):
        with pytest.raises(NotifyAddressError):
            sdnotify.parse_address(bad)


def test_message_keeps_one_field_per_line() -> None:
    assert sdnotify.message(READY=1, STATUS="a\nFAKE=1") == "READY=1\nSTATUS=a FAKE=1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "200000"}, 0.1),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "42"}, 0.1),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "43"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "٣٠٠٠٠٠"}, None),  # non-ASCII digits
        ({"WATCHDOG_USEC": "1e9"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert sdnotify.watchdog_interval(env, 42) == expected


def test_disabled_without_the_variable() -> None:
    notifier = Notifier({}, say=pytest.fail)
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert sdnotify.notify("READY=1", {}) is False


def test_sends_to_an_abstract_socket(receiver: tuple[socket.socket, str]) -> None:
    sock, address = receiver
    notifier = Notifier({"NOTIFY_SOCKET": address}, pid=7, say=pytest.fail)
    assert notifier.ready("listening on x")
    assert sock.recv(4096) == b"READY=1\nSTATUS=listening on x\nMAINPID=7"
    assert sdnotify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": address})
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_a_full_receiver_never_blocks_and_is_said_once(
    receiver: tuple[socket.socket, str],
) -> None:
    _sock, address = receiver
    said: list[str] = []
    notifier = Notifier({"NOTIFY_SOCKET": address}, say=said.append)
    started = time.monotonic()
    results = [notifier.ping() for _ in range(5000)]  # nobody reads: the queue fills
    assert time.monotonic() - started < 5
    assert results[0] is True and results[-1] is False
    assert len(said) == 1 and "NOTIFY_SOCKET" in said[0]


def test_a_missing_path_is_said_once() -> None:
    directory = tempfile.mkdtemp(prefix="gn-", dir="/tmp")
    os.rmdir(directory)
    said: list[str] = []
    notifier = Notifier({"NOTIFY_SOCKET": f"{directory}/gone"}, say=said.append)
    assert notifier.enabled
    assert not notifier.ready("x") and not notifier.stopping()
    assert len(said) == 1


def test_garbage_is_said_once_at_start() -> None:
    said: list[str] = []
    notifier = Notifier({"NOTIFY_SOCKET": "garbage"}, say=said.append)
    assert not notifier.enabled and not notifier.ready("x")
    assert len(said) == 1 and "'garbage'" in said[0]


def test_run_watchdog_pings_between_sleeps(receiver: tuple[socket.socket, str]) -> None:
    sock, address = receiver
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"}
    notifier = Notifier(env, say=pytest.fail)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise StopIteration

    with pytest.raises(StopIteration):
        notifier.run_watchdog(sleep)
    assert slept == [1.0, 1.0, 1.0]
    assert [sock.recv(64) for _ in range(3)] == [b"WATCHDOG=1"] * 3


def test_child_env_drops_gafferds_notify_socket_not_a_templates_own() -> None:
    from gaffer_gevent.template import ProcessTemplate

    base = {"NOTIFY_SOCKET": "/run/systemd/notify", "PATH": "/bin"}
    plain = ProcessTemplate.from_json({"name": "a", "cmd": "true"})
    assert plain.child_env(base) == {"PATH": "/bin"}
    own = ProcessTemplate.from_json({"name": "b", "cmd": "true", "env": {"NOTIFY_SOCKET": "@x"}})
    assert own.child_env(base)["NOTIFY_SOCKET"] == "@x"
