"""The CLIs import only what their command needs: no gevent, Flask or httpx for plain calls.

Each CLI runs in a fresh interpreter through a small wrapper that reports, at exit,
which top-level packages were loaded.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import Daemon

#: Never loaded by a client-side command (`gaffer start` is the server-side exception).
SERVER_SIDE = {"gevent", "flask", "werkzeug", "geventwebsocket", "flask_cors", "psutil"}

WRAPPER = """
import atexit, sys

def report() -> None:
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    sys.stderr.write("\\nMODULES " + " ".join(loaded) + "\\n")

atexit.register(report)
script, *sys.argv = sys.argv[1:]
if script == "gafferctl":
    from gaffer_gevent.cli.gafferctl import main
else:
    from gaffer_gevent.cli.gaffer import main
sys.exit(main())
"""


def loaded_by(script: str, *args: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, script, script, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    line = next(line for line in proc.stderr.splitlines() if line.startswith("MODULES "))
    return proc.returncode, set(line.split()[1:])


@pytest.mark.parametrize(("script", "args"), [("gafferctl", ["--help"]), ("gaffer", ["--help"])])
def test_help_imports_no_server_side_and_no_httpx(script: str, args: list[str]) -> None:
    code, loaded = loaded_by(script, *args)
    assert code == 0
    assert "gaffer_gevent" in loaded  # the wrapper saw the CLI run
    assert not loaded & (SERVER_SIDE | {"httpx", "httpcore"}), sorted(loaded)


def test_gafferctl_status_and_processes_import_no_server_side_and_no_httpx(gafferd: Daemon) -> None:
    with gafferd.client() as client:
        client.add_process("sleeper", "sleep", args=["30"])
    for args in (["status", "sleeper"], ["processes"]):
        code, loaded = loaded_by("gafferctl", "--connect", gafferd.url, *args)
        assert code == 0, args
        assert not loaded & (SERVER_SIDE | {"httpx", "httpcore"}), (args, sorted(loaded))
        # Plain HTTP: the one-shot calls go over client/wire.py, not http.client (email, ssl).
        assert not loaded & {"ssl", "email", "http"}, (args, sorted(loaded))


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["processes"], "processes"),
        (["--connect", "processes", "status", "x"], "status"),  # a value, then the command
        (["--json", "--connect=http://h:1", "pids", "web"], "pids"),
        (["help", "status"], None),  # help needs every command's parser
        (["--help"], None),
        (["nope"], None),
        (["--", "processes"], None),
    ],
)
def test_only_the_command_run_gets_its_parser_built(argv: list[str], command: str | None) -> None:
    from gaffer_gevent.cli.gafferctl import command_named_in

    assert command_named_in(argv) == command
