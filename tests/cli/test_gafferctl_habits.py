"""What supervisorctl and pm2 users type first (issue 16, point 5), against a real gafferd.

`status` with no name is one table of every pid, `watch` prints each event once,
`add_process` takes the usual options and captures output, an unknown command
suggests the closest one, and `--json` goes before or after the command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys

from ..helpers import free_port
from .conftest import (
    TICKER,
    collect,
    one_line,
    run_script,
    spawn_script,
    start_gafferd,
    stop_process,
    wait_for,
)
from .test_cli_imports import SERVER_SIDE, loaded_by

PY = sys.executable
HEADER = ["NAME", "PID", "OS_PID", "STATE", "RESTARTS", "UPTIME", "CPU", "MEM"]
ROW_KEYS = {"name", "pid", "os_pid", "state", "restarts", "started_at", "uptime", "cpu", "mem"}


def add_ticker(client, name, **settings):
    body = {"redirect_output": ["stdout", "stderr"], "graceful_timeout": 2, **settings}
    client.add_process(name, PY, args=["-u", TICKER, name], **body)


def rows_of(text: str) -> list[list[str]]:
    header, *rows = text.splitlines()
    assert header.split() == HEADER
    return [row.split() for row in rows]


def test_status_without_a_name_is_one_table_of_every_pid(ctl, client):
    add_ticker(client, "web", numprocesses=2)
    add_ticker(client, "idle", start=False)
    wait_for(lambda: len(client.pids("web")) == 2)
    result = ctl("status")
    assert result.code == 0 and result.err == ""
    rows = rows_of(result.out)
    web = [row for row in rows if row[0] == "web"]
    assert sorted(int(row[1]) for row in web) == sorted(client.pids("web"))
    os_pids = {s["id"]: s["pid"] for s in client.stats("web")["stats"]}
    assert {int(row[1]): int(row[2]) for row in web} == os_pids
    assert {(row[3], row[4]) for row in web} == {("running", "0")}
    assert all(re.fullmatch(r"\d+:\d\d(:\d\d)?", row[5]) for row in web)
    assert all(re.fullmatch(r"\d+\.\d%", row[6]) for row in web)
    assert all(re.fullmatch(r"\d+[KMG]?B?", row[7]) for row in web)
    assert ["idle", "-", "-", "stopped", "0", "-", "-", "-"] in rows
    assert [row[0] for row in rows] == ["web", "web", "idle"]  # templates in creation order


def test_status_table_as_json_before_or_after_the_command(ctl, client):
    add_ticker(client, "web")
    add_ticker(client, "idle", start=False)
    wait_for(lambda: len(client.pids("web")) == 1)
    for argv in (("--json", "status"), ("status", "--json")):
        result = ctl(*argv)
        assert result.code == 0, result.err
        rows = json.loads(result.out)
        assert [row["name"] for row in rows] == ["web", "idle"]
        assert all(set(row) == ROW_KEYS for row in rows)
        running, stopped = rows
        assert running["pid"] == client.pids("web")[0] and running["state"] == "running"
        assert isinstance(running["os_pid"], int) and running["restarts"] == 0
        assert running["uptime"] >= 0 and isinstance(running["cpu"], float)
        assert stopped == {
            "name": "idle", "pid": None, "os_pid": None, "state": "stopped", "restarts": 0,
            "started_at": None, "uptime": None, "cpu": None, "mem": None,
        }  # fmt: skip


def test_status_table_shows_a_failed_crash_loop(tmp_path):
    daemon = start_gafferd(tmp_path, config="[gaffer]\nbackoff = 0.02 0.1 0.5 3\n")
    try:
        with daemon.client() as client:
            client.add_process("crash", "false", start=True)
            wait_for(lambda: client.status("crash").get("state") == "failed", timeout=10)
        result = run_script("gafferctl", "--connect", daemon.url, "status")
        assert result.code == 0, result.err
        assert rows_of(result.out) == [["crash", "-", "-", "failed", "2", "-", "-", "-"]]
    finally:
        stop_process(daemon.proc)


def test_status_table_of_an_empty_gafferd_is_its_header(ctl):
    result = ctl("status")
    assert (result.code, rows_of(result.out)) == (0, [])
    assert json.loads(ctl("status", "--json").out) == []


def test_status_table_imports_no_server_side_and_no_httpx(gafferd, client):
    add_ticker(client, "web")
    code, loaded = loaded_by("gafferctl", "--connect", gafferd.url, "status")
    assert code == 0
    assert "gaffer_gevent" in loaded
    assert not loaded & (SERVER_SIDE | {"httpx", "httpcore"}), sorted(loaded)


def test_watch_prints_each_event_once(gafferd, client):
    watch = spawn_script("gafferctl", "--connect", gafferd.url, "watch")
    out = collect(watch.stdout)
    try:
        n = 0

        def subscribed() -> bool:  # the watch subscribes some time after it starts
            nonlocal n
            n += 1
            client.add_process(f"w{n}", PY, args=[TICKER], start=False)
            return out.has(r"create w\d+")

        wait_for(subscribed)
        add_ticker(client, "echo")
        wait_for(lambda: out.has(r"\| spawn echo "))
        client.stop_process("echo")
        # The exit twin is published right after the global exit: once both are in, so is it.
        wait_for(lambda: out.has(r"\| exit echo ") and out.has(r"\| stop echo"))
        client.add_process("last", PY, args=[TICKER], start=False)
        wait_for(lambda: out.has(r"\| create last"))
    finally:
        assert stop_process(watch, signal.SIGINT) == 0
    events = [line.split(" | ")[1].split()[0] for line in out.lines if " | " in line]
    assert not [event for event in events if event.startswith("proc.")], out.text()
    echo = [line for line in out.lines if re.search(r"\| \w+ echo\b", line)]
    assert [line.split(" | ")[1].split()[0] for line in echo].count("spawn") == 1, echo


def test_watch_json_prints_each_event_once_and_a_pattern_still_selects_twins(gafferd, client):
    everything = spawn_script("gafferctl", "--connect", gafferd.url, "watch", "--json")
    only_echo = spawn_script("gafferctl", "--connect", gafferd.url, "watch", "proc.echo", "--json")
    out, echo_out = collect(everything.stdout), collect(only_echo.stdout)
    try:
        n = 0

        def subscribed() -> bool:
            nonlocal n
            n += 1
            add_ticker(client, f"echo{n}", start=False)  # not proc.echo: another name
            client.add_process("echo", PY, args=[TICKER], graceful_timeout=1)
            client.remove_process("echo")
            return out.has(r'"create"') and echo_out.has(r"proc\.echo\.")

        wait_for(subscribed)
        wait_for(lambda: echo_out.has(r'"proc\.echo\.exit"') and out.has(r'"delete"'))
    finally:
        assert stop_process(everything, signal.SIGINT) == 0
        assert stop_process(only_echo, signal.SIGINT) == 0
    events = [json.loads(line)["event"] for line in out.lines]
    assert "spawn" in events and not [e for e in events if e.startswith("proc.")]
    twins = [json.loads(line)["event"] for line in echo_out.lines]
    assert twins and all(e.startswith("proc.echo.") for e in twins)


def test_add_process_options_and_output_captured_by_default(ctl, gafferd, client, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = ctl(
        "add_process", "-n", "2", "--env", "GREETING=hi there", "--env", "EXTRA=a=b",
        "--cwd", str(workdir), "--redirect-input", "--start", "web", PY, "--", "-u", TICKER, "web",
    )  # fmt: skip
    assert (result.code, result.out, result.err) == (0, "web\n", "")
    info = client.get_process("web")
    assert info["numprocesses"] == 2
    assert info["env"] == {"GREETING": "hi there", "EXTRA": "a=b"}
    assert info["cwd"] == str(workdir) and info["redirect_input"] is True
    assert info["redirect_output"] == ["stdout", "stderr"]
    wait_for(lambda: len(client.pids("web")) == 2)
    pid = client.pids("web")[0]
    os_pid = client.stats("web", pid)["pid"]
    assert os.readlink(f"/proc/{os_pid}/cwd") == str(workdir)
    tail = spawn_script("gafferctl", "--connect", gafferd.url, "tail", "-n", "50", str(pid))
    out = collect(tail.stdout)
    try:
        wait_for(lambda: out.has(r"^start web hi there$") and out.has(r"^tick \d+$"))
    finally:
        assert stop_process(tail, signal.SIGINT) == 0


def test_add_process_no_output_keeps_gaffer_04s_template(ctl, client):
    assert ctl("add_process", "--no-output", "quiet", PY, "--", TICKER).code == 0
    assert client.get_process("quiet") == {"name": "quiet", "cmd": PY, "args": [TICKER]}


def test_add_process_refuses_a_bad_env_or_count(ctl, client):
    bad_env = ctl("add_process", "--env", "NOEQUALS", "x", PY)
    assert bad_env.code == 2
    assert one_line(bad_env.err) == "gafferctl: --env takes KEY=VALUE, got 'NOEQUALS'"
    empty_key = ctl("add_process", "--env", "=v", "x", PY)
    assert empty_key.code == 2 and "--env takes KEY=VALUE" in one_line(empty_key.err)
    bad_count = ctl("add_process", "-n", "many", "x", PY)
    assert bad_count.code == 2 and "numprocesses" in one_line(bad_count.err)
    huge = ctl("add_process", "-n", "10" * 20, "x", PY)
    assert huge.code == 1 and one_line(huge.err).startswith("gafferctl: bad_value: ")
    assert client.processes() == []


def test_an_unknown_command_suggests_the_closest_one():
    url = f"http://127.0.0.1:{free_port()}"  # never contacted
    typo = run_script("gafferctl", "--connect", url, "stauts")
    assert typo.code == 2
    assert one_line(typo.err) == (
        "gafferctl: unknown command 'stauts'; did you mean 'status'? (try 'gafferctl help')"
    )
    topic = run_script("gafferctl", "help", "add_proces")
    assert topic.code == 2 and "did you mean 'add_process'?" in one_line(topic.err)
    gaffer = run_script("gaffer", "strat")
    assert gaffer.code == 2
    assert one_line(gaffer.err) == (
        "gaffer: unknown command 'strat'; did you mean 'start'? (try 'gaffer help')"
    )


def test_json_goes_before_or_after_the_command(ctl, client):
    add_ticker(client, "web")
    wait_for(lambda: len(client.pids("web")) == 1)
    (pid,) = client.pids("web")
    for argv in (("--json", "pids", "web"), ("pids", "web", "--json"), ("pids", "--json", "web")):
        assert json.loads(ctl(*argv).out) == [pid], argv
    assert json.loads(ctl("processes", "--json").out) == ["web"]
    assert json.loads(ctl("version", "--json").out)["version"]
    created = ctl("add_process", "other", PY, "--json")
    assert json.loads(created.out) == {"ok": True, "name": "other"}
    assert json.loads(ctl("stop", "web", "--json").out) == {"ok": True}
