"""``gafferctl top`` in a pseudo-terminal against a real gafferd with real children.

The frames are read from the pty's master side (escape sequences stripped);
piped, the command prints one plain table and exits.
"""

from __future__ import annotations

import json
import re
import sys
import time

from .conftest import TICKER, Daemon, SecuredDaemon, run_script, wait_for
from .terminal import Terminal

PY = sys.executable


def start_top(terminals: list[Terminal], url: str, *extra: str, token: str = "") -> Terminal:
    env = {"GAFFER_TOKEN": token} if token else {}
    terminal = Terminal("gafferctl", "--connect", url, *extra, "top", env=env)
    terminals.append(terminal)
    return terminal


def two_templates(gafferd: Daemon) -> list[int]:
    """``ticker`` (2 pids, output captured) and ``idle`` (never started); the tickers' os pids."""
    with gafferd.client() as client:
        client.add_process(
            "ticker", PY, args=["-u", TICKER], numprocesses=2, redirect_output=["stdout"]
        )
        client.add_process("idle", "sleep", args=["60"], start=False)
        stats = wait_for(
            lambda: len(client.stats("ticker")["stats"]) == 2 and client.stats("ticker")
        )
    return [int(info["pid"]) for info in stats["stats"]]


def test_top_draws_templates_pids_states_and_output_then_q_quits(gafferd, terminals):
    os_pids = two_templates(gafferd)
    top = start_top(terminals, gafferd.url)
    top.wait_for(r"NAME\s+PID\s+OS_PID\s+STATE")
    for os_pid in os_pids:
        top.wait_for(rf"ticker\s+\d+\s+{os_pid}\s+running")
    top.wait_for(r"idle\s+-\s+-\s+stopped")
    top.wait_for(r"running.*tick \d+")  # the last output line, from the output feed
    # Two tickers bring 20 stat events and 40 lines a second; frames stay at 4 a second at most.
    before, started = top.text.count("gafferctl top "), time.monotonic()
    top.read(2.0)
    frames = top.text.count("gafferctl top ") - before
    assert 1 <= frames <= 4 * (time.monotonic() - started) + 1, frames
    top.send("q")
    assert top.exit_code(timeout=10) == 0


def test_top_follows_a_new_pid_and_sort_keys(gafferd, terminals):
    two_templates(gafferd)
    top = start_top(terminals, gafferd.url)
    top.wait_for(r"sort: name")
    mark = len(top.text)
    top.send("m")
    top.wait_for(r"sort: mem", since=mark)
    top.send("s")
    top.wait_for(r"sort: restarts", since=mark)
    with gafferd.client() as client:
        client.add("ticker", 1)
        third = wait_for(
            lambda: len(client.stats("ticker")["stats"]) == 3 and client.stats("ticker")
        )
    newest = max(third["stats"], key=lambda info: info["id"])
    top.wait_for(rf"ticker\s+{newest['id']}\s+{newest['pid']}\s+running")  # /watch said spawn
    top.send("q")
    assert top.exit_code(timeout=10) == 0


def test_top_restart_key_replaces_the_selected_pid(gafferd, terminals):
    two_templates(gafferd)
    with gafferd.client() as client:
        first = min(client.pids("ticker"))
        top = start_top(terminals, gafferd.url)
        top.wait_for(rf"ticker\s+{first}\s")
        top.send("\x1b[B")  # idle sorts first by name: the first ticker pid is one row down
        top.send("r")
        top.wait_for(rf"pid {first} of ticker stopped")
        wait_for(lambda: first not in client.pids("ticker") and len(client.pids("ticker")) == 2)
    top.send("q")
    assert top.exit_code(timeout=10) == 0


def test_top_read_token_r_shows_forbidden_and_restarts_nothing(secured_gafferd, terminals):
    daemon: SecuredDaemon = secured_gafferd
    with daemon.client("admin") as admin:
        (pid,) = wait_for(lambda: admin.pids("x"))
        top = start_top(terminals, daemon.url, token=daemon.tokens["read"])
        top.wait_for(rf"x\s+{pid}\s+\d+\s+running")
        mark = len(top.text)
        top.send("r")
        top.wait_for(r"top: forbidden: needs role operate", since=mark)  # the footer
        mark = len(top.text)
        top.send("k")
        top.wait_for(r"top: forbidden: needs role operate", since=mark)
        assert "Traceback" not in top.text
        assert admin.pids("x") == [pid]
        assert admin.status("x")["active"]
    top.send("q")
    assert top.exit_code(timeout=10) == 0


def test_top_piped_prints_one_table_and_exits(gafferd):
    os_pids = two_templates(gafferd)
    result = run_script("gafferctl", "--connect", gafferd.url, "top", timeout=20)
    assert result.code == 0, result.err
    assert result.err == ""
    assert "\x1b" not in result.out  # plain text: no colours, no cursor moves
    assert len(re.findall(r"\bNAME\b", result.out)) == 1
    for os_pid in os_pids:
        assert re.search(rf"ticker\s+\d+\s+{os_pid}\s+running", result.out), result.out
    assert re.search(r"idle\s+-\s+-\s+stopped", result.out)


def test_top_json_is_one_array_of_rows(gafferd):
    os_pids = two_templates(gafferd)
    result = run_script("gafferctl", "--connect", gafferd.url, "--json", "top", timeout=20)
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert sorted(row["os_pid"] for row in rows if row["name"] == "ticker") == sorted(os_pids)
    assert {row["state"] for row in rows if row["name"] == "ticker"} == {"running"}
    assert all(isinstance(row["rss"], int) and row["rss"] > 0 for row in rows if row["pid"])
    assert next(row for row in rows if row["name"] == "idle")["state"] == "stopped"


def test_top_over_a_unix_socket(tmp_path, terminals):
    from .conftest import start_gafferd, stop_process

    sock = tmp_path / "g.sock"
    daemon = start_gafferd(tmp_path, bind=f"unix:{sock}")
    try:
        assert daemon.url == f"unix:{sock}"
        with daemon.client() as client:
            client.add_process("ticker", PY, args=["-u", TICKER], redirect_output=["stdout"])
            (pid,) = wait_for(lambda: client.pids("ticker"))
        top = start_top(terminals, f"unix:{sock}")
        top.wait_for(rf"ticker\s+{pid}\s+\d+\s+running")
        top.send("q")
        assert top.exit_code(timeout=10) == 0
    finally:
        stop_process(daemon.proc)


def test_top_over_tls_with_a_private_ca(tmp_path, terminals):
    from ..certs import TestCA
    from .conftest import start_gafferd, stop_process

    ca = TestCA(tmp_path)
    cert, key = ca.issue("127.0.0.1", server=True)
    config = (
        "[gaffer]\nhttp_endpoints = tls\n\n[endpoint:tls]\nbind = 127.0.0.1:0\n"
        f"certfile = {cert}\nkeyfile = {key}\n\n"
        f"[process:ticker]\ncmd = {PY}\nargs = -u {TICKER}\nredirect_output = stdout\n"
    )
    daemon = start_gafferd(tmp_path, bind=None, config=config)
    try:
        assert daemon.url.startswith("https://")
        top = start_top(terminals, daemon.url, "--cacert", str(ca.path))
        top.wait_for(r"ticker\s+1\s+\d+\s+running.*tick \d+")  # stats and output feeds over TLS
        top.send("q")
        assert top.exit_code(timeout=10) == 0
    finally:
        stop_process(daemon.proc)
