"""gafferd under a Type=notify supervisor: the datagrams it sends to ``$NOTIFY_SOCKET``.

The test plays systemd: it binds the datagram socket, starts a real gafferd with
``NOTIFY_SOCKET`` pointing at it, and reads what arrives, each read bounded.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gafferd import GAFFERD, Gafferd
from tests.helpers import CHILDREN, PYTHON, wait_for, write_config


class Supervisor:
    """A bound notify socket: ``address`` for ``NOTIFY_SOCKET``; ``expect`` reads on."""

    def __init__(self, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"gaffer-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
            self._dir: str | None = None
        else:  # a short dir: sun_path holds 107 bytes, pytest's tmp_path can be longer
            self._dir = tempfile.mkdtemp(prefix="gn-", dir="/tmp")
            self.address = os.path.join(self._dir, "notify")
            self.sock.bind(self.address)
        self.received: list[dict[str, str]] = []

    def expect(self, key: str, timeout: float = 10.0, skip: tuple[str, ...] = ()) -> dict[str, str]:
        """The next datagram holding ``key``; those holding only ``skip`` keys are passed over."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {key} within {timeout}s; got {self.received}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.received.append(fields)
            if key in fields:
                return fields
            assert set(fields) <= set(skip), f"{fields} before {key}"

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            os.unlink(self.address)
            os.rmdir(self._dir)


@pytest.fixture(params=["path", "abstract"])
def supervisor(request: pytest.FixtureRequest) -> Iterator[Supervisor]:
    sup = Supervisor(abstract=request.param == "abstract")
    yield sup
    sup.close()


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    return tmp_path / "env.json"


@pytest.fixture
def config(tmp_path: Path, dump: Path) -> Path:
    names = "NOTIFY_SOCKET WATCHDOG_USEC"
    return write_config(
        tmp_path / "gaffer.ini",
        f"""
        [process:plain]
        cmd = {PYTHON} {CHILDREN / "env_dump.py"} {dump} {names}

        [process:keeps]
        cmd = {PYTHON} {CHILDREN / "env_dump.py"} {dump}.keeps {names}

        [env:keeps]
        NOTIFY_SOCKET = /run/its-own.sock
        """,
    )


def start(config: Path, *extra: str, **env: str) -> Gafferd:
    return Gafferd(config, *extra, env={**os.environ, **env})


def test_ready_reloading_stopping_in_order(supervisor: Supervisor, config: Path) -> None:
    gafferd = start(config, NOTIFY_SOCKET=supervisor.address)
    try:
        ready = supervisor.expect("READY")
        # When READY arrives the API answers at once and the config's processes exist.
        url = ready["STATUS"].removeprefix("listening on ")
        assert url == gafferd.url
        assert httpx.get(f"{url}/ping", timeout=2).text == "OK"
        assert httpx.get(f"{url}/processes/plain/_pids", timeout=2).json()["pids"]
        assert ready["READY"] == "1" and ready["MAINPID"] == str(gafferd.proc.pid)

        gafferd.proc.send_signal(signal.SIGHUP)
        reloading = supervisor.expect("RELOADING")
        assert reloading["RELOADING"] == "1"
        assert reloading["MONOTONIC_USEC"].isdigit()
        usec = int(reloading["MONOTONIC_USEC"])
        assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 10_000_000
        assert supervisor.expect("READY")["STATUS"] == f"listening on {url}"

        gafferd.proc.send_signal(signal.SIGTERM)
        assert supervisor.expect("STOPPING")["STOPPING"] == "1"
        assert gafferd.proc.wait(timeout=30) == 0
    finally:
        gafferd.cleanup()


def test_watchdog_pings_every_half_interval(supervisor: Supervisor, config: Path) -> None:
    gafferd = start(config, NOTIFY_SOCKET=supervisor.address, WATCHDOG_USEC="200000")
    try:
        supervisor.expect("READY", skip=("WATCHDOG",))
        first = time.monotonic()
        for _ in range(5):
            assert supervisor.expect("WATCHDOG", timeout=2)["WATCHDOG"] == "1"
        # 5 pings 0.1 s apart: not a burst, not stalled (generous bounds on a busy machine).
        assert 0.3 < time.monotonic() - first < 3.0
    finally:
        gafferd.cleanup()


def test_no_watchdog_for_another_pid(supervisor: Supervisor, config: Path) -> None:
    gafferd = start(
        config, NOTIFY_SOCKET=supervisor.address, WATCHDOG_USEC="200000", WATCHDOG_PID="1"
    )
    try:
        supervisor.expect("READY")  # no ping before it either
        with pytest.raises(AssertionError, match="no WATCHDOG"):
            supervisor.expect("WATCHDOG", timeout=0.5)  # 5 intervals of 0.1 s
        gafferd.proc.send_signal(signal.SIGTERM)  # STOPPING must be next: no ping in between
        supervisor.expect("STOPPING")
        assert all("WATCHDOG" not in fields for fields in supervisor.received)
        assert gafferd.proc.wait(timeout=30) == 0
    finally:
        gafferd.cleanup()


def test_children_do_not_inherit_gafferds_notify_socket(
    supervisor: Supervisor, config: Path, dump: Path
) -> None:
    gafferd = start(config, NOTIFY_SOCKET=supervisor.address)
    try:
        supervisor.expect("READY")
        seen = wait_for(lambda: dump.exists() and json.loads(dump.read_text()))
        assert seen["NOTIFY_SOCKET"] is None
        keeps = Path(f"{dump}.keeps")
        seen = wait_for(lambda: keeps.exists() and json.loads(keeps.read_text()))
        assert seen["NOTIFY_SOCKET"] == "/run/its-own.sock"  # a template's own env wins
    finally:
        gafferd.cleanup()


@pytest.mark.parametrize(
    "value", ["/nonexistent/gaffer/notify", "garbage", "@", "/" + "x" * 200, "@" + "y" * 200]
)
def test_unusable_notify_socket_is_said_once_and_harmless(config: Path, value: str) -> None:
    gafferd = start(config, "-v", NOTIFY_SOCKET=value, WATCHDOG_USEC="100000")
    try:
        assert gafferd.http.get("/ping").text == "OK"
        wait_for(lambda: gafferd.http.get("/processes/plain/_pids").json()["pids"])
        gafferd.proc.send_signal(signal.SIGHUP)
        gafferd.log_line("reloading the config")
        gafferd.proc.send_signal(signal.SIGTERM)
        assert gafferd.proc.wait(timeout=30) == 0
        log = gafferd.log.text()
        assert log.count("NOTIFY_SOCKET") == 1, log
        assert "Traceback" not in log
    finally:
        gafferd.cleanup()


def test_the_units_exec_start_runs_a_notifying_gafferd(
    supervisor: Supervisor, config: Path, tmp_path: Path
) -> None:
    """What systemd would run: ExecStart's command in WorkingDirectory, with NOTIFY_SOCKET."""
    made = subprocess.run(
        [*GAFFERD, str(config), "--bind", "127.0.0.1:0", "--systemd-unit"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    unit = configparser.RawConfigParser(strict=False, comment_prefixes=("#",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(made.stdout)
    service = unit["Service"]
    proc = subprocess.Popen(
        shlex.split(service["ExecStart"]), cwd=service["WorkingDirectory"],
        env={**os.environ, "NOTIFY_SOCKET": supervisor.address},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        ready = supervisor.expect("READY", timeout=30)
        assert ready["MAINPID"] == str(proc.pid)
        url = ready["STATUS"].removeprefix("listening on ")
        assert httpx.get(f"{url}/ping", timeout=2).text == "OK"
        proc.send_signal(signal.SIGTERM)  # what KillMode=mixed sends first
        supervisor.expect("STOPPING")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
