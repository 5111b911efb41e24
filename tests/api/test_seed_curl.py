"""The seed document's curl examples (http-api.txt), run with the real curl against gafferd.

As in the seed and examples/gaffer.ini: pid 1 ticks ``STDOUT n`` / ``STDERR n``
(here every 50 ms instead of every second) and pid 2 is ``cat``, echoing stdin.
Every curl gets ``--max-time`` so no wait is unbounded; streaming ones get
``-N`` so curl passes bytes on as they come.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess  # patched by the test entry point: waits are cooperative
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer
from tests.helpers import child, wait_for

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")

CURL = ["curl", "-sS", "--max-time", "20"]


@pytest.fixture
def seed(server: LiveServer) -> Iterator[str]:
    """The seed's two processes on a live server; yields the server's base URL."""
    with httpx.Client(base_url=server.url, timeout=10, verify=False) as client:
        demo = {**child("ticker", "0.05"), "redirect_output": ["stdout", "stderr"]}
        echo = {"cmd": "cat", "redirect_output": ["stdout", "stderr"], "redirect_input": True}
        for name, fields in (("demo", demo), ("web:echo", echo)):
            r = client.post("/processes", json={"name": name, **fields})
            assert r.status_code == 200, r.text
        assert client.get("/processes", params={"running": "true"}).json() == [1, 2]
    yield server.url


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([*CURL, *args], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done


def start_curl(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CURL, "-N", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_lines(proc: subprocess.Popen[bytes], count: int) -> list[str]:
    """The next ``count`` non-blank lines curl printed (blank ones are heartbeats)."""
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < count:
        line = proc.stdout.readline()
        assert line, f"curl ended early: {proc.stderr.read() if proc.stderr else b''!r}"
        if line.strip():
            lines.append(line.decode().rstrip("\r\n"))
    return lines


def stop(base: str, name: str) -> None:
    r = httpx.post(f"{base}/processes/{name}/_stop", timeout=10)
    assert r.status_code == 200


def finish(proc: subprocess.Popen[bytes]) -> bytes:
    """The rest of curl's output once the stream ended; curl must exit 0 (a clean end)."""
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out


def numbers(lines: list[str], prefix: str) -> list[int]:
    for line in lines:
        assert re.fullmatch(rf"{prefix} \d+", line), line
    return [int(line.split()[1]) for line in lines]


def test_continuous_stderr(seed: str) -> None:
    # $ curl localhost:5000/streams/1/stderr?feed=continuous
    proc = start_curl(f"{seed}/streams/1/stderr?feed=continuous")
    lines = read_lines(proc, 5)
    stop(seed, "demo")
    lines += [line for line in finish(proc).decode().splitlines() if line.strip()]
    counts = numbers(lines, "STDERR")
    assert counts == list(range(counts[0], counts[0] + len(counts)))  # nothing lost


def test_longpoll_stderr(seed: str) -> None:
    # $ curl localhost:5000/streams/1/stderr?feed=longpoll
    out = curl(f"{seed}/streams/1/stderr?feed=longpoll").stdout
    assert re.fullmatch(rb"(STDERR \d+\n)+", out), out  # one chunk: usually one line


def test_eventsource_stderr(seed: str) -> None:
    # $ curl localhost:5000/streams/1/stderr?feed=eventsource
    proc = start_curl(f"{seed}/streams/1/stderr?feed=eventsource")
    assert proc.stdout is not None
    head = b""
    while head.count(b"event: ") < 3 or not head.endswith(b"\r\n\r\n"):
        line = proc.stdout.readline()
        assert line, "curl ended early"
        head += line
    stop(seed, "demo")
    text = (head + finish(proc)).decode()
    events = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.startswith("event:")]
    assert len(events) >= 3
    for block in events:
        # What the seed shows (event, data, blank line), plus the id of the chunk; a
        # chunk is one pipe read, which holds several lines when the child wrote faster.
        assert re.fullmatch(r"event: stderr\nid: \d+(\ndata: STDERR \d+)+", block), block


def test_longpoll_stdout(seed: str) -> None:
    # $ curl localhost:5000/streams/1/stdout?feed=longpoll
    out = curl(f"{seed}/streams/1/stdout?feed=longpoll").stdout
    assert re.fullmatch(rb"(STDOUT \d+\n)+", out), out


def test_write_to_stdin_then_read_it_back(seed: str, server: LiveServer) -> None:
    # The longpoll answers with the first chunk read after it arrived, so (as in two
    # terminals) it is waiting when the POST comes.
    # $ curl localhost:5000/streams/2/stdout?feed=longpoll
    waiting = start_curl(f"{seed}/streams/2/stdout?feed=longpoll")
    stream = server.manager.running[2].streams["stdout"]
    wait_for(lambda: len(stream.subscriptions) == 1)
    # $ curl -XPOST -d $'ECHO\n' localhost:5000/streams/2/stdin
    posted = curl("-XPOST", "-d", "ECHO\n", f"{seed}/streams/2/stdin").stdout
    assert posted == b'{"ok": true}'
    assert json.loads(posted) == {"ok": True}
    assert finish(waiting) == b"ECHO\n"


def test_ttin_spelling_is_accepted(seed: str, server: LiveServer) -> None:
    # The seed's prose says POST /streams/<pid>/ttin.
    waiting = start_curl(f"{seed}/streams/2/stdout?feed=longpoll")
    stream = server.manager.running[2].streams["stdout"]
    wait_for(lambda: len(stream.subscriptions) == 1)
    posted = curl("-XPOST", "-d", "ECHO\n", f"{seed}/streams/2/ttin").stdout
    assert json.loads(posted) == {"ok": True}
    assert finish(waiting) == b"ECHO\n"


def test_pids_to_find_the_stdin_target(seed: str) -> None:
    # "<pid> is an internal process id that you can retrieve by calling GET /processes/<name>/_pids"
    out = curl(f"{seed}/processes/web:echo/_pids").stdout
    assert json.loads(out) == {"ok": True, "pids": [2]}


def test_heartbeat_sends_empty_lines(seed: str) -> None:
    # "heartbeat: true or seconds, send an empty line each sec": cat is quiet here.
    proc = start_curl(f"{seed}/streams/2/stdout?feed=continuous&heartbeat=1")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"\n"  # sent at once
    assert proc.stdout.readline() == b"\n"  # a heartbeat
    stop(seed, "web:echo")
    assert finish(proc) == b""


def test_same_label_twice_merges_stderr_into_stdout(seed: str, server: LiveServer) -> None:
    # "to redirect stderr to stdout just use the same name" in redirect_output.
    fields = {**child("ticker", "0.05"), "redirect_output": ["stdout", "stdout"]}
    r = httpx.post(f"{seed}/processes", json={"name": "merged", **fields}, timeout=10)
    assert r.status_code == 200
    proc = start_curl(f"{seed}/streams/3/stdout?feed=continuous")
    lines = read_lines(proc, 6)
    stop(seed, "merged")
    finish(proc)
    assert {line.split()[0] for line in lines} == {"STDOUT", "STDERR"}
