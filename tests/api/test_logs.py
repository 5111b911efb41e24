"""Log files over real HTTP: _rotate, _logs (also once the process and the manager are gone),
rotation that keeps the configured number of files and loses no line, /debug/subscriptions,
and files confined to log_dir: no absolute path, no `..`, no symlink, only gafferd's own files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import httpx
import pytest

from gaffer_gevent.api import create_app
from gaffer_gevent.api.logs import install_logfiles
from gaffer_gevent.logfiles import LogFiles
from gaffer_gevent.manager import Manager
from gaffer_gevent.template import ProcessTemplate
from tests.conftest import LiveServer
from tests.helpers import child, files_of, numbers_in, on_disk, wait_for


@pytest.fixture
def client(server: LiveServer, logfiles: LogFiles) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def counter(name: str, *args: str, **settings: Any) -> dict[str, Any]:
    return {"name": name, **child("counter", *args), "redirect_output": ["out", "err"],
            "stdout_logfile": f"{name}.log", **settings}  # fmt: skip


def create(client: httpx.Client, body: dict[str, Any]) -> None:
    r = client.post("/processes", json=body)
    assert r.status_code == 200, r.text


def logs(client: httpx.Client, name: str, **params: Any) -> httpx.Response:
    r = client.get(f"/processes/{name}/_logs", params=params)
    assert r.status_code == 200, r.text
    return r


def test_logs_serve_the_last_lines(client: httpx.Client, tmp_path: Path) -> None:
    create(client, counter("t", "50", "0", "stdout", "wait"))
    wait_for(lambda: numbers_in(logs(client, "t").content)[-1:] == [50])
    r = logs(client, "t", tail=5)
    assert r.headers["content-type"].startswith("text/plain")
    assert r.content == b"line 46\nline 47\nline 48\nline 49\nline 50\n"
    assert numbers_in(logs(client, "t", label="out").content) == list(range(1, 51))
    assert client.get("/processes/t/_logs/out", params={"tail": 1}).content == b"line 50\n"


def test_stderr_has_its_own_log(client: httpx.Client) -> None:
    create(client, counter("e", "3", "0", "stderr", "wait", stderr_logfile="e.err"))
    wait_for(lambda: logs(client, "e", label="stderr").content == b"line 1\nline 2\nline 3\n")
    assert logs(client, "e", label="err").content == b"line 1\nline 2\nline 3\n"


def test_logs_errors(client: httpx.Client) -> None:
    create(client, {"name": "nolog", **child("counter", "0", "1"), "redirect_output": ["out"]})
    create(client, counter("withlog", "0", "1"))
    for path, status, code in [
        ("/processes/nolog/_logs", 404, "io_not_found"),
        ("/processes/withlog/_logs?label=stderr", 404, "io_not_found"),
        ("/processes/withlog/_logs?label=nope", 404, "io_not_found"),
        ("/processes/withlog/_logs?tail=-1", 400, "bad_value"),
        ("/processes/withlog/_logs?tail=x", 400, "bad_value"),
        ("/processes/missing/_logs", 404, "not_found"),
        ("/processes/withlog/_unknown", 404, "resource_not_found"),
    ]:
        r = client.get(path)
        assert (r.status_code, r.json()["error"]) == (status, code), path


def test_rotate_now(client: httpx.Client, tmp_path: Path) -> None:
    create(client, counter("r", "3", "0", "stdout", "wait"))
    path = tmp_path / "r.log"
    wait_for(lambda: path.exists() and path.read_bytes() == b"line 1\nline 2\nline 3\n")
    r = client.post("/processes/r/_rotate")
    assert r.json() == {"ok": True, "rotated": [str(path)]}
    assert (tmp_path / "r.log.1").read_bytes() == b"line 1\nline 2\nline 3\n"
    assert path.read_bytes() == b""
    assert client.post("/processes/r/_rotate").json() == {"ok": True, "rotated": []}
    assert numbers_in(logs(client, "r").content) == [1, 2, 3]
    assert client.post("/processes/nothere/_rotate").status_code == 404


def test_rotation_under_a_flood_loses_no_line(client: httpx.Client, tmp_path: Path) -> None:
    """Size rotation and _rotate calls while the child writes: every line once, in order."""
    lines = 20000
    create(client, counter("f", str(lines), "0.0001", "stdout", "wait",
                           logfile_maxbytes=16384, logfile_backups=1000))  # fmt: skip
    path = tmp_path / "f.log"
    rotated = 0
    while not on_disk(path, 1000).endswith(b"line %d\n" % lines):
        r = client.post("/processes/f/_rotate")
        assert r.status_code == 200, r.text
        rotated += len(r.json()["rotated"])
        gevent.sleep(0.01)  # let the child write between two rotations
    assert rotated > 0
    files = files_of(path, 1000)
    assert len(files) > 10
    for f in files:
        data = f.read_bytes()
        assert not data or data.endswith(b"\n")
        assert len(data) <= 16384
    assert numbers_in(on_disk(path, 1000)) == list(range(1, lines + 1))
    assert numbers_in(logs(client, "f").content) == list(range(1, lines + 1))


def test_rotation_keeps_the_configured_number_of_files(
    client: httpx.Client, tmp_path: Path
) -> None:
    lines = 5000
    create(client, counter("k", str(lines), "0", "stdout", "wait",
                           logfile_maxbytes=2048, logfile_backups=3))  # fmt: skip
    path = tmp_path / "k.log"
    wait_for(lambda: on_disk(path, 0).endswith(b"line %d\n" % lines))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".gaffer-logfiles.json", "k.log", "k.log.1", "k.log.2", "k.log.3",
    ]  # fmt: skip
    kept = numbers_in(on_disk(path, 3))
    assert kept == list(range(kept[0], lines + 1))
    assert numbers_in(logs(client, "k").content) == kept


def test_logs_after_the_process_exited(client: httpx.Client, server: LiveServer) -> None:
    create(client, counter("x", "20", "0", "stdout", "wait"))
    wait_for(lambda: numbers_in(logs(client, "x").content)[-1:] == [20])
    assert client.post("/processes/x/_stop").status_code == 200
    wait_for(lambda: not server.manager.all_processes())
    assert numbers_in(logs(client, "x", tail=3).content) == [18, 19, 20]


def test_logs_after_a_restart_of_the_manager(
    client: httpx.Client, server: LiveServer, tmp_path: Path
) -> None:
    body = counter("p", "40", "0", "stdout", "wait")
    create(client, body)
    wait_for(lambda: numbers_in(logs(client, "p").content)[-1:] == [40])
    server.manager.stop_all(timeout=10)

    second = Manager()
    files = LogFiles(second, str(tmp_path))
    app = create_app(second)
    install_logfiles(app, files)
    try:
        second.add_template(ProcessTemplate.from_json(body), start=False)
        reply = app.test_client().get("/processes/p/_logs?tail=2")
        assert reply.status_code == 200
        assert reply.data == b"line 39\nline 40\n"
        assert numbers_in(app.test_client().get("/processes/p/_logs").data) == list(range(1, 41))
    finally:
        second.stop_all(timeout=10)
        files.close()
        second.bus.close()


def test_removing_a_template_closes_its_file(
    client: httpx.Client, server: LiveServer, logfiles: LogFiles
) -> None:
    create(client, counter("gone", "2", "0", "stdout", "wait"))
    wait_for(lambda: logfiles.writers)
    (writer,) = logfiles.writers.values()
    assert client.delete("/processes/gone").status_code == 200
    wait_for(lambda: writer.greenlet.dead)
    assert writer.file.fd == -1 and not logfiles.writers


def test_debug_subscriptions_show_log_writers(client: httpx.Client, tmp_path: Path) -> None:
    create(client, counter("s", "10", "0", "stdout", "wait"))
    wait_for(lambda: numbers_in(logs(client, "s").content)[-1:] == [10])
    body = client.get("/debug/subscriptions").json()
    (writer,) = [s for s in body["subscriptions"] if s["owner"].startswith("logfile")]
    assert writer["name"] == "s" and writer["label"] == "out"
    assert writer["dropped_bytes"] == 0 and writer["lag_chunks"] == 0
    (out,) = [s for s in body["streams"] if s["label"] == "out"]
    assert out["total_bytes"] == len(b"".join(b"line %d\n" % n for n in range(1, 11)))
    (stats,) = body["logfiles"]
    assert stats["path"] == str(tmp_path / "s.log") and stats["owners"] == ["s/out"]


# -- confined to log_dir (issue 12, defect 1) ---------------------------------------------------


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory beside log_dir holding a file no template may read, change or remove."""
    directory = tmp_path_factory.mktemp("outside")
    (directory / "secret").write_bytes(b"secret\n")
    return directory


def writes_refused(logfiles: LogFiles, path: Path) -> bool:
    """The writer of ``path`` tried to write and was refused (its bytes counted as failed)."""
    return any(s["path"] == str(path) and s["failed_bytes"] > 0 for s in logfiles.stats())


@pytest.mark.parametrize("field", ["stdout_logfile", "stderr_logfile"])
@pytest.mark.parametrize(
    "value",
    ["/etc/shadow", "../../x.log", "a/../../x.log", "..", ".hidden.log", "sub/.x",
     ".gaffer-logfiles.json", "", "a\nb.log", "dir/", "./", "x\u0000.log"],
)  # fmt: skip
def test_log_paths_outside_log_dir_are_refused(
    client: httpx.Client, tmp_path: Path, field: str, value: str
) -> None:
    body = counter("lf", "1", **{field: value})
    for r in (client.post("/processes", json=body), client.put("/processes/lf", json=body)):
        assert (r.status_code, r.json()["error"]) == (400, "bad_value"), r.text
        assert field in r.json()["reason"]
    assert client.get("/processes").json() == []
    assert sorted(p.name for p in tmp_path.parent.glob("x.log*")) == []


def test_a_symlink_in_log_dir_is_not_followed(
    client: httpx.Client, logfiles: LogFiles, tmp_path: Path, outside: Path
) -> None:
    link = tmp_path / "evil.log"
    link.symlink_to(outside / "secret")
    create(client, counter("ev", "3", "0", "stdout", "wait", stdout_logfile="evil.log",
                           logfile_backups=0))  # fmt: skip
    wait_for(lambda: writes_refused(logfiles, link))
    r = client.get("/processes/ev/_logs")
    assert (r.status_code, r.json()["error"]) == (404, "io_not_found")
    assert client.post("/processes/ev/_rotate").json() == {"ok": True, "rotated": []}
    assert link.is_symlink() and (outside / "secret").read_bytes() == b"secret\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_symlinked_directory_in_log_dir_is_not_followed(
    client: httpx.Client, logfiles: LogFiles, tmp_path: Path, outside: Path
) -> None:
    (tmp_path / "sub").symlink_to(outside, target_is_directory=True)
    create(client, counter("sd", "3", "0", "stdout", "wait", stdout_logfile="sub/x.log"))
    wait_for(lambda: writes_refused(logfiles, tmp_path / "sub" / "x.log"))
    assert client.post("/processes/sd/_rotate").json() == {"ok": True, "rotated": []}
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_file_gafferd_did_not_create_is_never_touched(
    client: httpx.Client, logfiles: LogFiles, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.log"
    victim.write_bytes(b"precious\n")
    (tmp_path / "victim.log.1").write_bytes(b"older\n")
    create(client, counter("v", "3", "0", "stdout", "wait", stdout_logfile="victim.log",
                           logfile_backups=0))  # fmt: skip
    wait_for(lambda: writes_refused(logfiles, victim))
    r = client.get("/processes/v/_logs?tail=3")
    assert (r.status_code, r.json()["error"]) == (404, "io_not_found")
    assert client.post("/processes/v/_rotate").json() == {"ok": True, "rotated": []}
    assert victim.read_bytes() == b"precious\n"
    assert (tmp_path / "victim.log.1").read_bytes() == b"older\n"


def test_a_file_belongs_to_the_template_it_was_created_for(
    client: httpx.Client, tmp_path: Path
) -> None:
    create(client, counter("a", "3", "0", "stdout", "wait", stdout_logfile="shared.log"))
    wait_for(lambda: numbers_in(logs(client, "a").content) == [1, 2, 3])
    create(client, counter("b", "5", "0", "stdout", "wait", stdout_logfile="shared.log"))
    r = client.get("/processes/b/_logs")
    assert (r.status_code, r.json()["error"]) == (404, "io_not_found")
    assert client.post("/processes/b/_rotate").json() == {"ok": True, "rotated": []}
    assert (tmp_path / "shared.log").read_bytes() == b"line 1\nline 2\nline 3\n"


def test_log_files_are_created_0640(client: httpx.Client, tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        create(client, counter("m", "1", "0", "stdout", "wait", stdout_logfile="deep/er/m.log"))
        path = tmp_path / "deep" / "er" / "m.log"
        wait_for(lambda: path.exists() and path.read_bytes() == b"line 1\n")
        assert client.post("/processes/m/_rotate").json()["rotated"] == [str(path)]
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "deep/er/m.log.1").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "deep/er").stat().st_mode) == 0o750
