"""The gaffer Procfile tool as a subprocess: start in the foreground, run, and the gafferd side."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from ..helpers import CHILDREN, progress
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

PY = sys.executable


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """An app directory with a two-type Procfile and a .env file."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "Procfile").write_text(
        f"web: {PY} -u {TICKER} web\nworker: {PY} -u {TICKER} worker\n# not a process\n"
    )
    (root / ".env").write_text('GREETING="hello there"\n')
    return root


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_prefixes_output_and_stops_cleanly_on_ctrl_c(app):
    proc = spawn_script("gaffer", "start", "-c", "web=2", "-t", "2", cwd=app)
    out = collect(proc.stdout)
    try:
        for who in ("web.1", "web.2", "worker.1"):
            wait_for(lambda who=who: out.has(rf"^\d\d:\d\d:\d\d {re.escape(who)} +\| tick \d+$"))
        assert out.has(r"^\d\d:\d\d:\d\d web\.1 +\| start web hello there$")  # .env applied
        assert out.has(r"^\d\d:\d\d:\d\d worker\.1 +\| tock \d+$")  # stderr too
    finally:
        code = stop_process(proc, signal.SIGINT)
    assert code == 0, out.text() + proc.stderr.read()
    os_pids = [int(p) for p in re.findall(r"started with pid (\d+)", out.text())]
    assert len(os_pids) == 3
    assert not [pid for pid in os_pids if pid_alive(pid)]
    assert out.has(r"system +\| all processes stopped$")
    assert len(re.findall(r"\| (killed by signal 15|exited with code)", out.text())) == 3


def test_start_one_type_and_sigterm(app):
    proc = spawn_script("gaffer", "--no-color", "start", "worker", cwd=app)
    out = collect(proc.stdout)
    wait_for(lambda: out.has(r"worker\.1 +\| tick"))
    assert stop_process(proc, signal.SIGTERM) == 0
    assert not out.has(r" web\.")


def test_start_fails_when_a_process_cannot_start(app):
    (app / "Procfile").write_text(f"web: {PY} -u {TICKER}\nbroken: ./no-such-program\n")
    proc = spawn_script("gaffer", "start", cwd=app)
    out = collect(proc.stdout)
    try:
        code = proc.wait(timeout=30)
    finally:
        stop_process(proc)
    assert code == 1, out.text()
    assert out.has(r"broken\.1 +\| failed to start")


def test_start_keeps_children_running_when_its_stdout_is_not_read(tmp_path):
    """A terminal that stops reading must not stall the children (issue 14 point 4)."""
    counter = tmp_path / "progress"
    (tmp_path / "Procfile").write_text(f"web: {PY} {CHILDREN / 'progress.py'} {counter}\n")
    proc = spawn_script("gaffer", "start", cwd=tmp_path)  # nobody reads its stdout for now
    try:
        # 200 blocks of 64 KiB: far more than its stdout pipe, the child's pipe and the ring hold.
        wait_for(lambda: progress(counter) >= 200, timeout=30)
        assert proc.poll() is None
        stalled_at = progress(counter)
        wait_for(lambda: progress(counter) >= stalled_at + 100, timeout=30)  # and goes on
        out = collect(proc.stdout)
        notice = r"^\d\d:\d\d:\d\d web\.1 +\| \[gaffer: \d+ bytes of web\.1 out dropped\]$"
        wait_for(lambda: out.has(notice), timeout=30)
        assert proc.poll() is None
    finally:
        code = stop_process(proc, signal.SIGINT)
    assert code == 0, proc.stderr.read()
    assert out.has(r"system +\| all processes stopped$")


def test_start_stops_in_bounded_time_when_its_stdout_is_never_read(tmp_path):
    """The last lines are given up on, not waited for: Ctrl-C still ends everything."""
    counter = tmp_path / "progress"
    (tmp_path / "Procfile").write_text(f"web: {PY} {CHILDREN / 'progress.py'} {counter}\n")
    proc = spawn_script("gaffer", "start", cwd=tmp_path)
    try:
        wait_for(lambda: progress(counter) >= 200, timeout=30)  # the console is stuck by now
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        stop_process(proc)
    first = proc.stdout.readline()  # the first write was taken by the pipe
    match = re.fullmatch(r"\d\d:\d\d:\d\d web\.1 +\| started with pid (\d+)\n", first)
    assert match, first
    assert not pid_alive(int(match.group(1)))  # stopped, not left behind with the console


def test_start_without_procfile_is_bad_usage(tmp_path):
    result = run_script("gaffer", "start", cwd=tmp_path)
    assert result.code == 2
    assert one_line(result.err) == "gaffer: no Procfile at ./Procfile"


def test_run_uses_the_app_environment_and_its_exit_code(app):
    code = "import os, sys; print(os.environ['GREETING']); sys.exit(3)"
    result = run_script("gaffer", "run", PY, "-c", code, cwd=app)
    assert (result.code, result.out) == (3, "hello there\n")
    extra = app / "extra.env"
    extra.write_text("GREETING=overridden\n")
    result = run_script("gaffer", "-e", str(extra), "run", PY, "-c", code, cwd=app)
    assert result.out == "overridden\n"
    missing = run_script("gaffer", "run", "./no-such-program", cwd=app)
    assert missing.code == 127
    assert one_line(missing.err).startswith("gaffer: cannot run ./no-such-program")


def test_run_refuses_an_unbounded_count(app):
    result = run_script("gaffer", "run", "-c", "100000", "true", cwd=app)
    assert result.code == 2
    assert one_line(result.err) == "gaffer: -c takes a count from 1 to 1024"


def test_load_scale_ps_unload(app, gafferd, client):
    url = gafferd.url
    loaded = run_script("gaffer", "load", ".", url, cwd=app)
    assert (loaded.code, loaded.out) == (0, f"'shop' has been loaded in {url}\n")
    assert client.get_group("shop") == ["shop:web", "shop:worker"]
    info = client.get_process("shop:web")
    assert info["cwd"] == str(app) and info["env"] == {"GREETING": "hello there"}
    assert info["redirect_output"] == ["out", "err"]
    again = run_script("gaffer", "--endpoint", url, "load", cwd=app)
    assert again.out == f"'shop-1' has been loaded in {url}\n"

    scaled = run_script("gaffer", "--endpoint", url, "scale", "web=3", "worker+1", cwd=app)
    assert scaled.code == 0, scaled.err
    assert scaled.out == (
        "Scaling web processes... done, now running 3\n"
        "Scaling worker processes... done, now running 2\n"
    )
    down = run_script("gaffer", "--endpoint", url, "scale", "shop-1", "web-1", cwd=app)
    assert down.out == "Scaling web processes... done, now running 0\n"
    assert client.status("shop-1:web")["max_processes"] == 0
    bad = run_script("gaffer", "--endpoint", url, "scale", "nosuch=2", cwd=app)
    assert bad.code == 2 and one_line(bad.err) == "gaffer: no process type 'nosuch' in the Procfile"

    wait_for(lambda: len(client.pids("shop:web")) == 3 and len(client.pids("shop:worker")) == 2)
    ps = run_script("gaffer", "--endpoint", url, "ps", cwd=app)
    assert ps.code == 0, ps.err
    header, *rows = ps.out.splitlines()
    assert header.split() == [
        "NAME", "PID", "OS_PID", "STATE", "RESTARTS", "UPTIME", "CPU", "MEM",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == ["web.1", "web.2", "web.3", "worker.1", "worker.2"]
    assert {row.split()[3] for row in rows} == {"running"}
    assert {row.split()[4] for row in rows} == {"0"}
    assert {int(row.split()[1]) for row in rows} <= set(client.running())
    stopped = run_script("gaffer", "--endpoint", url, "ps", "shop-1", cwd=app)
    assert re.search(r"^web +- +- +stopped +0 ", stopped.out, re.M)

    assert run_script("gaffer", "unload", "shop-1", url, cwd=app).out == "'shop-1' unloaded\n"
    assert run_script("gaffer", "--endpoint", url, "unload", cwd=app).out == "'shop' unloaded\n"
    assert client.processes() == []
    gone = run_script("gaffer", "--endpoint", url, "unload", cwd=app)
    assert gone.code == 1 and one_line(gone.err) == "gaffer: 'shop' not found"


def test_unreachable_gafferd_exits_3(app):
    result = run_script("gaffer", "--endpoint", "http://127.0.0.1:9", "load", cwd=app)
    assert result.code == 3
    assert one_line(result.err).startswith("gaffer: cannot reach gafferd at http://127.0.0.1:9")


def test_export_ini_json_and_systemd(app, tmp_path):
    ini = run_script("gaffer", "-c", "worker=2", "export", "ini", cwd=app)
    assert ini.code == 0
    assert "[process:shop:web]\n" in ini.out and "numprocesses = 2\n" in ini.out
    as_json = run_script("gaffer", "export", "json", "web", str(tmp_path / "web.json"), cwd=app)
    assert as_json.code == 0
    body = json.loads((tmp_path / "web.json").read_text())
    assert list(body)[:5] == ["name", "cmd", "args", "env", "numprocesses"]
    assert body["env"] == {"GREETING": "hello there"}
    units = run_script("gaffer", "export", "systemd", str(tmp_path / "units"), cwd=app)
    assert units.code == 0
    assert sorted(os.listdir(tmp_path / "units")) == [
        "shop-web@.service",
        "shop-worker@.service",
        "shop.target",
    ]
    assert run_script("gaffer", "export", "json", "nope", cwd=app).code == 2
    assert run_script("gaffer", "export", cwd=app).code == 2


def test_help_of_every_command(app):
    listing = run_script("gaffer", "help")
    assert listing.code == 0
    for name in ("start", "run", "load", "unload", "scale", "ps", "export"):
        assert re.search(rf"^  {name} ", listing.out, re.M)
        topic = run_script("gaffer", "help", name)
        assert topic.code == 0 and topic.out.startswith(f"usage: gaffer {name}")
    unknown = run_script("gaffer", "frobnicate")
    assert unknown.code == 2
    assert one_line(unknown.err) == "gaffer: unknown command 'frobnicate' (try 'gaffer help')"


def test_ps_shows_a_crash_loop_and_its_restarts(tmp_path):
    app = tmp_path / "loop"
    app.mkdir()
    (app / "Procfile").write_text(f"crash: false\nfine: {PY} -u {TICKER} fine\n")
    daemon = start_gafferd(tmp_path, config="[gaffer]\nbackoff = 0.02 0.1 0.5 3\n")
    try:
        assert run_script("gaffer", "load", ".", daemon.url, cwd=app).code == 0
        with daemon.client() as client:
            wait_for(lambda: client.status("loop:crash").get("state") == "failed", timeout=10)
            wait_for(lambda: client.status("loop:fine")["running"] == 1)
        ps = run_script("gaffer", "--endpoint", daemon.url, "ps", cwd=app)
        assert ps.code == 0, ps.err
        rows = [row.split()[:5] for row in ps.out.splitlines()[1:]]
        assert rows[0] == ["crash", "-", "-", "failed", "2"]
        assert rows[1][0] == "fine.1" and rows[1][3:] == ["running", "0"]
    finally:
        stop_process(daemon.proc)
