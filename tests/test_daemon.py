"""gafferd end to end: real daemon subprocess, real signals, real sockets."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import gevent
import psutil
import pytest

from tests.gafferd import GAFFERD, Gafferd
from tests.helpers import CHILDREN, PYTHON, progress, wait_for, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "gaffer.ini",
        """
        [process:sleepers]
        cmd = sleep 600
        numprocesses = 20

        [process:web:echo]
        cmd = cat
        redirect_output = stdout, stderr
        redirect_input = true
        priority = 0
        """,
    )


@pytest.fixture
def daemon(config: Path) -> Iterator[Gafferd]:
    gafferd = Gafferd(config)
    yield gafferd
    gafferd.cleanup()


def test_sigterm_with_20_children_exits_0_and_leaves_nothing(daemon: Gafferd) -> None:
    wait_for(lambda: len(daemon.http.get("/processes?running=true").json()) == 21)
    children = daemon.children()
    assert len(children) == 21
    # priority 0 starts first: web:echo got pid 1
    assert daemon.http.get("/processes/web:echo/_pids").json()["pids"] == [1]
    port = int(daemon.url.rsplit(":", 1)[1])
    assert daemon.stop() == 0
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(daemon.proc.pid).status()
    listening = [c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port]
    assert all(c.status != psutil.CONN_LISTEN for c in listening)


def test_sighup_reloads_the_config_file(daemon: Gafferd, config: Path) -> None:
    wait_for(lambda: len(daemon.http.get("/processes?running=true").json()) == 21)
    echo_pids = daemon.http.get("/processes/web:echo/_pids").json()["pids"]
    write_config(
        config,
        """
        [process:sleepers]
        cmd = sleep 601
        numprocesses = 2

        [process:web:echo]
        cmd = cat
        redirect_output = stdout, stderr
        redirect_input = true
        priority = 0

        [process:newcomer]
        cmd = sleep 600
        """,
    )
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "newcomer" in daemon.http.get("/processes").json())
    wait_for(lambda: len(daemon.http.get("/processes/sleepers/_pids").json()["pids"]) == 2)
    assert daemon.http.get("/processes/sleepers").json()["cmd"] == "sleep 601"
    assert daemon.http.get("/processes/web:echo/_pids").json()["pids"] == echo_pids
    write_config(config, "[process:newcomer]\ncmd = sleep 600\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.http.get("/processes").json() == ["newcomer"])
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[process:a]\ncmd = x\nnumprocesses = many\n", "[process:a] numprocesses"),
        ("[process:a]\ncmd = x\ncolour = red\n", "[process:a] colour"),
        ("[gaffer]\nhttp_endpoints = nowhere\n", "nowhere"),
        ("not an ini file\n", "gaffer.ini"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, text: str, where: str) -> None:
    path = write_config(tmp_path / "gaffer.ini", text)
    result = subprocess.run([*GAFFERD, str(path)], capture_output=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and where in lines[0]
    assert "Traceback" not in result.stderr.decode()


def test_unreadable_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ini"
    result = subprocess.run([*GAFFERD, str(missing)], capture_output=True, timeout=30)
    assert result.returncode == 2
    assert str(missing) in result.stderr.decode()


def test_vv_echoes_children_output_with_name_and_pid(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "gaffer.ini",
        "[process:talker]\ncmd = sh\nargs = -c 'echo hello-from-child; sleep 600'\n"
        "redirect_output = stdout, stderr\n",
    )
    gafferd = Gafferd(path, "-vv")
    try:
        line = gafferd.log_line(r"^talker\[")  # stdout and stderr share the log file
        assert line == "talker[1] stdout | hello-from-child\n"
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_vv_with_an_unread_stdout_keeps_children_running_and_ping_answering(
    tmp_path: Path,
) -> None:
    """-vv echoes through a bounded cursor: a stdout nobody reads costs lines, not the daemon."""
    counter = tmp_path / "progress"
    path = write_config(
        tmp_path / "gaffer.ini",
        f"[process:flood]\ncmd = {PYTHON}\nargs = {CHILDREN / 'progress.py'} {counter}\n"
        "redirect_output = stdout\n",
    )
    # Its stdout is a pipe this test does not read for now.
    gafferd = Gafferd(path, "-vv", stdout=subprocess.PIPE)
    try:
        wait_for(lambda: progress(counter) >= 200, timeout=30)  # far past every pipe and ring
        assert gafferd.http.get("/ping", timeout=5).text == "OK"
        stalled_at = progress(counter)
        wait_for(lambda: progress(counter) >= stalled_at + 100, timeout=30)
        assert gafferd.http.get("/ping", timeout=5).text == "OK"
        assert gafferd.proc.stdout is not None
        notice = re.compile(
            rb"^flood\[1\] stdout \| \[gaffer: \d+ bytes of flood\[1\] stdout dropped\]$"
        )
        with gevent.Timeout(30, AssertionError("no gap notice on stdout")):
            while not notice.match(line := gafferd.proc.stdout.readline()):
                assert line, "gafferd closed its stdout"
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z gafferd: ")


def test_v_lines_carry_iso_timestamps_with_milliseconds(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "gaffer.ini",
        "[process:ghost]\ncmd = /nonexistent/program\n\n[process:s]\ncmd = sleep 600\n",
    )
    gafferd = Gafferd(path, "-v")
    try:
        lines = [
            gafferd.log_line("listening on"),
            gafferd.log_line(r"spawn s "),  # an event
            gafferd.log_line("cannot spawn ghost"),  # a logging record of the manager
        ]
        assert gafferd.stop() == 0
        assert all(TIMESTAMPED.match(line) for line in lines), lines
        assert all(TIMESTAMPED.match(line) for line in gafferd.log.lines), "after stop"
    finally:
        gafferd.cleanup()


def test_without_v_lines_are_bare(tmp_path: Path) -> None:
    gafferd = Gafferd(write_config(tmp_path / "gaffer.ini", ""))
    try:
        assert gafferd.log_line("listening on").startswith("gafferd: listening on ")
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_pidfile_is_written_refused_when_live_and_removed(tmp_path: Path, config: Path) -> None:
    pidfile = tmp_path / "gafferd.pid"
    gafferd = Gafferd(config, "--pidfile", str(pidfile))
    try:
        assert int(pidfile.read_text()) == gafferd.proc.pid
        second = subprocess.run(
            [*GAFFERD, "--bind", "127.0.0.1:0", "--pidfile", str(pidfile), str(config)],
            capture_output=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 1
        assert "already running" in second.stderr.decode()
        assert gafferd.stop() == 0
        assert not pidfile.exists()
    finally:
        gafferd.cleanup()


def test_importing_the_package_patches_nothing() -> None:
    code = (
        "import gaffer_gevent, gaffer_gevent.manager, gaffer_gevent.api, socket, gevent.monkey;"
        "print(gevent.monkey.is_module_patched('socket'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert result.stdout.decode().strip() == "False", result.stderr.decode()


def test_psutil_is_loaded_on_the_first_stats_request_only() -> None:
    """A daemon never asked for stats does not load psutil (its cost: bench/RESULTS.md)."""
    code = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import sys
        from gaffer_gevent.bootstrap import build_app, build_manager, load
        config = load(None)
        manager = build_manager(config)
        client = build_app(manager, config).test_client()
        assert client.get("/processes").status_code == 200
        print("psutil" in sys.modules)
        assert client.get("/stats").status_code == 200
        print("psutil" in sys.modules)
        manager.stop_all(timeout=5)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.stdout.decode().split() == ["False", "True"], result.stderr.decode()


def test_sigterm_during_a_spawn_storm_is_honoured(tmp_path: Path) -> None:
    """While 300 processes start, gafferd still answers and a SIGTERM stops it all."""
    marker = ["sleep", "987.654"]  # a command line no other test uses

    def ours() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            if p.info["cmdline"] == marker:
                found.append(p)
        return found

    gafferd = Gafferd(write_config(tmp_path / "gaffer.ini", ""))
    try:
        body = {"name": "storm", "cmd": marker[0], "args": marker[1:], "numprocesses": 300}
        assert gafferd.http.post("/processes", json=body).status_code == 200
        assert gafferd.http.get("/ping").text == "OK"
        wait_for(lambda: len(ours()) >= 50)
        gafferd.proc.send_signal(signal.SIGTERM)
        assert gafferd.proc.wait(timeout=30) == 0
        wait_for(lambda: not [p for p in ours() if p.status() != psutil.STATUS_ZOMBIE])
    finally:
        gafferd.cleanup()
        for p in ours():
            p.kill()


def test_gafferd_escapes_control_characters_in_its_own_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gaffer_gevent.console import EchoLayout
    from gaffer_gevent.daemon import Daemon, build_parser
    from gaffer_gevent.process import Process
    from gaffer_gevent.template import ProcessTemplate

    daemon = Daemon(build_parser().parse_args([]), None)
    daemon.log("reload\ngafferd: stopped")
    daemon._echo_event("spawn_error", {"event": "spawn_error", "name": "x", "error": "a\r\nb"})
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "gafferd: reload\\ngafferd: stopped",
        "gafferd: spawn_error x error=a\\r\\nb",
    ]
    process = Process(1, ProcessTemplate.from_json({"name": "n", "cmd": "true"}), on_exit=print)
    process.name = "n\x1b[2J"  # what a name could hold if the name rule ever let it through
    echo = EchoLayout()
    assert [echo.line(process, "out\n", text) for text in ("line one", "line two")] == [
        "n\\x1b[2J[1] out\\n | line one",
        "n\\x1b[2J[1] out\\n | line two",
    ]


# -- reload rules (issue 13) --------------------------------------------------------------------


def test_sighup_scales_a_numprocesses_change_and_keeps_the_pids(tmp_path: Path) -> None:
    config = write_config(tmp_path / "g.ini", "[process:s]\ncmd = sleep 600\nnumprocesses = 2\n")
    daemon = Gafferd(config)
    try:
        wait_for(lambda: daemon.pids("s") == [1, 2])
        write_config(config, "[process:s]\ncmd = sleep 600\nnumprocesses = 4\n")
        daemon.proc.send_signal(signal.SIGHUP)
        assert "scaled s to 4" in daemon.log_line("scaled s")
        wait_for(lambda: daemon.pids("s") == [1, 2, 3, 4])  # added two, restarted none
        write_config(config, "[process:s]\ncmd = sleep 600\nnumprocesses = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.pids("s") == [4])  # the oldest go first, as with _sub
        write_config(config, "[process:s]\ncmd = sleep 601\nnumprocesses = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.pids("s") == [5])  # any other change still updates
        assert "updated s" in daemon.log_line("updated s")
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()


def test_sighup_never_replaces_a_template_created_over_http(tmp_path: Path) -> None:
    config = write_config(tmp_path / "g.ini", "[process:other]\ncmd = sleep 600\n")
    daemon = Gafferd(config)
    try:
        created = daemon.http.post("/processes", json={"name": "api", "cmd": "sleep 600"})
        assert created.status_code == 200
        write_config(config, "[process:other]\ncmd = sleep 600\n[process:api]\ncmd = sleep 601\n")
        feed = {"feed": "continuous"}
        with daemon.http.stream("GET", "/watch/reload_conflict", params=feed) as watch:
            chunks = watch.iter_raw()
            assert next(chunks).strip() == b""  # the first heartbeat: subscribed
            daemon.proc.send_signal(signal.SIGHUP)
            line = daemon.log_line(r"\[process:api\] skipped")
            assert "created over HTTP and is kept" in line
            received = b""
            while not received.strip().endswith(b"}"):  # heartbeats are bare newlines
                received += next(chunks)
        event = json.loads(received)
        assert event == {"event": "reload_conflict", "name": "api", "section": "process:api"}
        assert daemon.http.get("/processes/api").json()["cmd"] == "sleep 600"
        assert daemon.pids("api") == [2]
        # Once the client's template is gone, the section applies.
        assert daemon.http.delete("/processes/api").status_code == 200
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.http.get("/processes/api").status_code == 200)
        assert daemon.http.get("/processes/api").json()["cmd"] == "sleep 601"
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()


ENDPOINT = "[gaffer]\nhttp_endpoints = main\n[endpoint:main]\nbind = {}\n"


def test_sighup_says_a_changed_bind_needs_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path / "g.ini", ENDPOINT.format("127.0.0.1:0"))
    daemon = Gafferd(config, bind=None)
    try:
        write_config(config, ENDPOINT.format("127.0.0.1:1"))
        daemon.proc.send_signal(signal.SIGHUP)
        line = daemon.log_line("endpoints changed")
        assert "(127.0.0.1:1); still listening on 127.0.0.1:0" in line
        assert "restart gafferd to apply them" in line
        assert daemon.http.get("/ping").status_code == 200  # and it still serves where it was
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()
    flagged = Gafferd(config)  # --bind given: the file's endpoints are not used at all
    try:
        write_config(config, ENDPOINT.format("127.0.0.1:2"))
        flagged.proc.send_signal(signal.SIGHUP)
        assert "--bind is in effect" in flagged.log_line("endpoints changed")
        assert flagged.stop() == 0
    finally:
        flagged.cleanup()


def test_args_with_semicolons_and_hashes_reach_the_child_whole(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "g.ini",
        "[process:sh]\ncmd = sh\nargs = -c 'echo \"a ; b # c\" ; exec sleep 600'\n"
        "numprocesses = 1 ; one\n"
        "redirect_output = out\n[gaffer]\nbackoff = 0.1 60 10 15  ; the defaults\n",
    )
    daemon = Gafferd(config)
    try:
        args = daemon.http.get("/processes/sh").json()["args"]
        assert args == "-c 'echo \"a ; b # c\" ; exec sleep 600'"
        stream = {"feed": "longpoll", "since": 0}
        wait_for(lambda: b"a ; b # c\n" in daemon.http.get("/streams/1/out", params=stream).content)
        write_config(config, config.read_text().replace("0.1 60 10 15", "0.2"))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.log_line("applied the new backoff settings")
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()
