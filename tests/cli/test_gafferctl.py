"""gafferctl as a subprocess against a real gafferd: every command, --json, exit codes."""

from __future__ import annotations

import json
import re
import signal
import sys

from gaffer_gevent import __version__
from gaffer_gevent.cli.gafferctl import describe_status

from ..helpers import free_port
from .conftest import (
    ECHO,
    TICKER,
    collect,
    one_line,
    run_script,
    spawn_script,
    start_gafferd,
    stop_process,
    wait_for,
)

PY = sys.executable


def add_ticker(client, name="tick", **settings):
    body = {"redirect_output": ["stdout", "stderr"], "graceful_timeout": 2, **settings}
    client.add_process(name, PY, args=["-u", TICKER, name], **body)


def test_add_process_then_every_query(ctl, client):
    result = ctl("add_process", "--start", "tick", PY, "--", "-u", TICKER)
    assert (result.code, result.out, result.err) == (0, "tick\n", "")
    assert ctl("processes").out == "tick\n"
    info = json.loads(ctl("get_process", "tick").out)
    # Output is captured by default (issue 16); --no-output keeps gaffer 0.4's bare template.
    assert info == {
        "name": "tick", "cmd": PY, "args": ["-u", TICKER], "redirect_output": ["stdout", "stderr"],
    }  # fmt: skip
    assert ctl("get_process", "tick").out == json.dumps(info, indent=2, sort_keys=True) + "\n"
    wait_for(lambda: client.status("tick")["running"] == 1)
    assert ctl("status", "tick").out == "active\n"
    assert ctl("numprocesses", "tick").out == "1\n"
    assert ctl("running", "tick").out == "1\n"
    (pid,) = client.pids("tick")
    assert ctl("pids", "tick").out == f"{pid}\n"
    assert ctl("processes", "--running").out == f"{pid}\n"


def test_add_process_does_not_start_by_default(ctl, client):
    assert ctl("add_process", "idle", PY, "--", TICKER).code == 0
    assert client.status("idle")["running"] == 0
    assert ctl("status", "idle").out == "stopped\n"
    assert ctl("pids", "idle").out == ""


def test_add_sub_start_stop_restart(ctl, client):
    add_ticker(client)
    assert ctl("add", "tick", "2").out == "3\n"
    wait_for(lambda: len(client.pids("tick")) == 3)
    assert ctl("sub", "tick").out == "2\n"
    wait_for(lambda: len(client.pids("tick")) == 2)
    assert ctl("stop", "tick").out == "ok\n"
    assert ctl("status", "tick").out == "stopped\n"
    assert ctl("start", "tick").out == "ok\n"
    wait_for(lambda: len(client.pids("tick")) == 2)
    before = set(client.pids("tick"))
    assert ctl("restart", "tick").out == "ok\n"
    wait_for(lambda: len(client.pids("tick")) == 2 and not before & set(client.pids("tick")))


def test_kill_by_name_and_by_pid_with_signal_names(ctl, client):
    add_ticker(client)
    (first,) = client.pids("tick")
    assert ctl("kill", "tick", "term").out == "ok\n"
    wait_for(lambda: client.pids("tick") not in ([], [first]))
    (second,) = client.pids("tick")
    assert ctl("kill", str(second), "SIGKILL").out == "ok\n"
    wait_for(lambda: client.pids("tick") not in ([], [second]))
    assert ctl("kill", "tick", "9").out == "ok\n"


def test_update_process_puts_a_new_command_and_keeps_settings(ctl, client):
    add_ticker(client)
    (old,) = client.pids("tick")
    result = ctl("update_process", "tick", PY, "--", "-u", TICKER, "updated")
    assert (result.code, result.out) == (0, "ok\n")
    info = client.get_process("tick")
    assert info["args"] == ["-u", TICKER, "updated"]
    assert info["redirect_output"] == ["stdout", "stderr"]
    wait_for(lambda: client.pids("tick") not in ([], [old]))
    assert ctl("update_process", "--no-start", "tick", PY, "--", TICKER).out == "ok\n"
    assert client.status("tick")["running"] == 0


def test_load_process_from_a_file_and_from_stdin(ctl, client, tmp_path):
    path = tmp_path / "tpl.json"
    path.write_text(json.dumps({"name": "fromfile", "cmd": PY, "args": [TICKER], "start": True}))
    result = ctl("load_process", str(path))
    assert (result.code, result.out) == (0, "fromfile\n")
    assert client.status("fromfile")["running"] == 0  # "start" comes from --start only
    body = json.dumps({"name": "fromstdin", "cmd": PY, "args": [TICKER]})
    assert ctl("load_process", "--start", "-", input=body).out == "fromstdin\n"
    wait_for(lambda: client.status("fromstdin")["running"] == 1)


def test_del_process(ctl, client):
    add_ticker(client)
    assert ctl("del_process", "tick").out == "ok\n"
    assert client.processes() == []


def test_json_output(ctl, client):
    add_ticker(client)
    assert json.loads(ctl("--json", "processes").out) == ["tick"]
    assert json.loads(ctl("status", "tick", "--json").out) == {
        "active": True,
        "running": 1,
        "max_processes": 1,
        "state": "running",
        "restarts": 0,
        "failures": 0,
        "retry_in": None,
        "ready": 1,
    }
    assert json.loads(ctl("--json", "add", "tick").out) == {"ok": True, "numprocesses": 2}
    assert json.loads(ctl("--json", "stop", "tick").out) == {"ok": True}
    assert json.loads(ctl("--json", "get_process", "tick").out)["name"] == "tick"
    assert json.loads(ctl("--json", "version").out) == {"version": __version__}


def test_version_and_help(ctl):
    assert ctl("version").out == f"gaffer (version {__version__})\n"
    assert run_script("gafferctl", "--version").out == f"gafferctl (version {__version__})\n"
    listing = ctl("help")
    assert listing.code == 0
    for name in ("add_process", "load_process", "update_process", "watch", "tail", "send"):
        assert re.search(rf"^  {name} ", listing.out, re.M)
    topic = ctl("help", "kill")
    assert topic.code == 0 and "name_or_pid" in topic.out and "signal" in topic.out


def test_watch_prints_events_until_ctrl_c(gafferd, client):
    watch = spawn_script("gafferctl", "--connect", gafferd.url, "watch", "--no-color")
    out = collect(watch.stdout)
    try:
        # The watch subscribes some time after it starts: create events until one shows.
        n = 0

        def shows_create() -> bool:
            nonlocal n
            n += 1
            client.add_process(f"w{n}", PY, args=[TICKER], start=False)
            return out.has(r"create w\d+")

        wait_for(shows_create)
        assert re.match(r"\d\d:\d\d:\d\d w\d+ \| create w\d+\n", out.lines[0])
    finally:
        assert stop_process(watch, signal.SIGINT) == 0
    assert watch.stderr.read() == ""


def test_watch_pattern_and_json(gafferd, client):
    watch = spawn_script("gafferctl", "--connect", gafferd.url, "--json", "watch", "proc.keep")
    out = collect(watch.stdout)
    try:
        wait_for(lambda: add_and_remove(client) and out.lines)
        events = [json.loads(line)["event"] for line in out.lines]
        assert events and all(e.startswith("proc.keep.") for e in events)
    finally:
        assert stop_process(watch, signal.SIGINT) == 0


def add_and_remove(client) -> bool:
    client.add_process("other", PY, args=[TICKER], start=False)
    client.remove_process("other")
    client.add_process("keep", PY, args=[TICKER], graceful_timeout=1)
    client.remove_process("keep")
    return True


def test_tail_follows_output_until_the_process_exits(gafferd, client):
    add_ticker(client)
    (pid,) = client.pids("tick")
    tail = spawn_script("gafferctl", "--connect", gafferd.url, "tail", str(pid))
    out = collect(tail.stdout)
    wait_for(lambda: out.has(r"^tick \d+\n$"))
    assert not out.has("tock")  # stdout only
    client.stop_process("tick")
    assert tail.wait(timeout=10) == 0  # the stream ends with the process


def test_tail_replays_the_last_lines(gafferd, client):
    add_ticker(client)
    (pid,) = client.pids("tick")
    wait_for(lambda: re.match(rb"tick ([5-9]|\d\d)", _longpoll(client, pid)))
    tail = spawn_script("gafferctl", "--connect", gafferd.url, "tail", "-n", "3", str(pid))
    out = collect(tail.stdout)
    wait_for(lambda: len(out.lines) >= 3)
    assert stop_process(tail, signal.SIGINT) == 0
    numbers = [int(line.split()[1]) for line in out.lines[:3]]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]
    assert out.lines[0].startswith("tick ")


def _longpoll(client, pid) -> bytes:
    with client.stream(pid, "stdout", "longpoll") as feed:
        return b"".join(feed)


def test_tail_stderr_label_eventsource_and_ctrl_c(gafferd, client):
    add_ticker(client)
    (pid,) = client.pids("tick")
    tail = spawn_script(
        "gafferctl", "--connect", gafferd.url, "tail", str(pid), "stderr", "--feed", "eventsource"
    )
    out = collect(tail.stdout)
    wait_for(lambda: out.has(r"^tock \d+\n$"))
    assert stop_process(tail, signal.SIGINT) == 0


def test_send_writes_stdin_from_argument_and_from_stdin(ctl, client):
    client.add_process("echo", PY, args=["-u", ECHO], redirect_output=["out"], redirect_input=True)
    (pid,) = client.pids("echo")
    with client.stream(pid, "out", heartbeat=0) as chunks:
        assert ctl("send", str(pid), "hello").out == "ok\n"
        assert ctl("send", str(pid), input="from stdin\n").out == "ok\n"
        seen = b""
        for chunk in chunks:
            seen += chunk
            if b"echo: from stdin\n" in seen:
                break
    assert b"echo: hello\n" in seen


def test_exit_codes_and_one_line_errors(ctl, gafferd, tmp_path):
    unknown = ctl("frobnicate")
    assert unknown.code == 2
    assert one_line(unknown.err) == "gafferctl: unknown command 'frobnicate' (try 'gafferctl help')"
    missing = ctl("add_process", "onlyname")
    assert missing.code == 2
    assert one_line(missing.err) == (
        "gafferctl add_process: the following arguments are required: cmd"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "cmd": ')
    malformed = ctl("load_process", str(bad))
    assert malformed.code == 2
    assert one_line(malformed.err).startswith(f"gafferctl: {bad} is not valid JSON: ")
    notfound = ctl("status", "nope")
    assert notfound.code == 1
    assert one_line(notfound.err).startswith("gafferctl: not_found: ")
    assert ctl("get_process", "nope").code == 1
    assert ctl("kill", "nope", "NOSUCHSIG").code == 2
    conflict = ctl("add_process", "dup", PY), ctl("add_process", "dup", PY)
    assert conflict[1].code == 1 and one_line(conflict[1].err).startswith("gafferctl: conflict")


def test_unreachable_server_exits_3_naming_the_address():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("processes",), ("watch",), ("tail", "1"), ("send", "1", "x")):
        result = run_script("gafferctl", "--connect", url, *args)
        assert result.code == 3
        assert one_line(result.err).startswith(f"gafferctl: cannot reach gafferd at {url} (")


def test_logs_and_rotate(ctl, client, tmp_path):
    logfile = tmp_path / "tick.log"  # gafferd runs in tmp_path and has no log_dir
    add_ticker(client, stdout_logfile="tick.log")
    wait_for(lambda: logfile.exists() and logfile.read_text().count("\n") >= 4)
    last = ctl("logs", "tick", "-n", "2")
    assert last.code == 0, last.err
    lines = last.out.splitlines()
    assert len(lines) == 2 and all(line.startswith("tick ") for line in lines)
    assert ctl("logs", "tick").out.startswith("start tick\ntick 1\n")
    rotated = ctl("--json", "rotate", "tick")
    assert rotated.code == 0 and json.loads(rotated.out)["ok"] is True
    assert ctl("rotate", "nope").code == 1


#: Backs off 20 ms doubling to 0.1 s and gives up at the 3rd quick failure in a row.
FAST_BACKOFF = "[gaffer]\nbackoff = 0.02 0.1 0.5 3\n"


def test_status_of_a_crash_loop_says_failed_with_its_restarts(tmp_path):
    daemon = start_gafferd(tmp_path, config=FAST_BACKOFF)
    try:
        with daemon.client() as client:
            client.add_process("crash", "false", start=True)
            wait_for(lambda: client.status("crash").get("state") == "failed", timeout=10)
            ctl = run_script("gafferctl", "--connect", daemon.url, "status", "crash")
            assert ctl.out == "failed, 2 restarts: start or restart it to try again\n"
            client.start_process("crash")
            assert client.status("crash")["state"] != "failed"
    finally:
        stop_process(daemon.proc)


def test_describe_status_keeps_gaffer_04_words_for_healthy_templates():
    base = {"active": True, "running": 1, "max_processes": 1}
    assert describe_status(base) == "active"  # a gaffer 0.4 server: no state key
    assert describe_status({**base, "active": False, "running": 0}) == "stopped"
    assert describe_status({**base, "state": "running", "restarts": 0}) == "active"
    assert describe_status({**base, "state": "running", "restarts": 1}) == "active, 1 restart"
    backoff = {**base, "active": False, "state": "backoff", "restarts": 6, "retry_in": 3.21}
    assert describe_status(backoff) == "backoff, 6 restarts, next in 3.2 s"
