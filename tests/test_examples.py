"""The examples, run as a user would: ``examples/echo_client.py`` against a real gafferd.

gafferd (the console script, run by ``tests/gafferd.py``'s ``Gafferd``) runs with a
temporary config holding the two processes of ``examples/gaffer.ini`` (pid 1 ``demo``,
pid 2 ``web:echo`` = ``cat``) but no endpoint, so ``--bind 127.0.0.1:0`` applies and
the port is read from gafferd's "listening on" line.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .gafferd import GAFFERD_SCRIPT, Gafferd
from .helpers import PYTHON, alive, wait_for

REPO = Path(__file__).resolve().parent.parent
ECHO_CLIENT = REPO / "examples" / "echo_client.py"
TIMEOUT = 10.0

INI = f"""\
[process:demo]
cmd = {PYTHON}
args = -u examples/demo.py
redirect_output = stdout, stderr
redirect_input = true
priority = 0

[process:web:echo]
cmd = cat
redirect_output = stdout, stderr
redirect_input = true
priority = 1
"""

#: What the seed's session shows, for Python 3 (typo fixed, repr of the reply).
SEED_OUTPUT = "Sent\nReceiving...\nReceived 'ECHO\\n'\n"


@pytest.fixture
def gafferd(tmp_path: Path) -> Iterator[Gafferd]:
    ini = tmp_path / "gaffer.ini"
    ini.write_text(INI)
    with Gafferd(ini, cwd=REPO, program=GAFFERD_SCRIPT) as daemon:

        def get(path: str) -> object:
            return daemon.http.get(path).json()

        wait_for(lambda: get("/processes/web:echo/_pids") == {"ok": True, "pids": [2]})
        stats = get("/stats")
        assert isinstance(stats, list)
        daemon.child_pids = {info["pid"] for template in stats for info in template["stats"]}
        yield daemon


def run_echo_client(daemon: Gafferd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ECHO_CLIENT), "--url", f"ws://127.0.0.1:{daemon.port}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT + 5,
    )  # fmt: skip


def test_echo_client_prints_what_the_seed_shows(gafferd: Gafferd) -> None:
    result = run_echo_client(gafferd)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SEED_OUTPUT
    assert result.stderr == ""
    assert gafferd.stop() == 0, gafferd.log_text()
    wait_for(lambda: not alive(gafferd.child_pids), timeout=5)


def test_echo_client_reports_a_refused_pid(gafferd: Gafferd) -> None:
    result = run_echo_client(gafferd, "99")
    assert result.returncode == 1
    assert 'Received \'{"error": "not_found"}\'' in result.stdout
    assert "refused: not_found" in result.stderr
    assert gafferd.stop() == 0, gafferd.log_text()


def test_echo_client_without_a_server_fails_cleanly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        result = subprocess.run(
            [sys.executable, str(ECHO_CLIENT), "--url", f"ws://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
    assert result.returncode == 1
    assert "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr
