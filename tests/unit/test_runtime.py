"""The runtime dir without children: its default place, its checks, the lock, the record file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gaffer_gevent.errors import ConfigError, NotTheManager
from gaffer_gevent.leftovers import Group
from gaffer_gevent.runtime import (
    LOCK_FILE,
    MAX_GROUPS,
    Record,
    Runtime,
    default_runtime_dir,
    ensure_dir,
    read_record,
    runtime_dir_for,
    write_record,
)


def test_default_dir_is_per_config_under_xdg_then_run_then_tmp(tmp_path: Path) -> None:
    xdg = {"XDG_RUNTIME_DIR": str(tmp_path)}
    one = default_runtime_dir("/etc/a/gaffer.ini", "gaffer", environ=xdg, uid=1000)
    assert one.startswith(f"{tmp_path}/gaffer/gaffer-")
    assert one == default_runtime_dir("/etc/a/gaffer.ini", "gaffer", environ=xdg, uid=1000)
    assert one != default_runtime_dir("/etc/b/gaffer.ini", "gaffer", environ=xdg, uid=1000)
    assert default_runtime_dir("x", "web", environ={}, uid=0).startswith("/run/gaffer/web-")
    assert default_runtime_dir("x", "web", environ={}, uid=1000).startswith("/tmp/gaffer-1000/")
    for unusable in ("relative/dir", str(tmp_path / "missing")):
        got = default_runtime_dir("x", "web", environ={"XDG_RUNTIME_DIR": unusable}, uid=1000)
        assert got.startswith("/tmp/gaffer-1000/web-")


def test_default_dir_name_keeps_only_safe_characters() -> None:
    name = os.path.basename(default_runtime_dir("x", "../../a b\n", environ={}, uid=0))
    assert name.startswith("a_b-") and "/" not in name and "\n" not in name


def test_configured_dir_wins_and_the_default_follows_the_config_s_real_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert runtime_dir_for("/srv/run", "g.ini", "gafferd:x") == "/srv/run"
    real = tmp_path / "web.ini"
    real.write_text("")
    link = tmp_path / "link.ini"
    link.symlink_to(real)
    assert runtime_dir_for(None, str(link), "x") == runtime_dir_for(None, str(real), "x")
    assert "/gaffer/web-" in runtime_dir_for(None, str(link), "x")
    assert "/gaffer/gafferd-" in runtime_dir_for(None, None, "gafferd:127.0.0.1:5000")


def test_record_round_trips_and_skips_hostile_entries() -> None:
    record = Record(42, [Group(100, 5000, "web"), Group(200, 6000)])
    assert Record.from_json(json.loads(json.dumps(record.to_json()))) == record
    hostile = {
        "manager_pid": "1",
        "groups": [
            {"pgid": 1, "start": 0}, {"pgid": 0, "start": 0}, {"pgid": -5, "start": 1},
            {"pgid": True, "start": 1}, {"pgid": 5.0, "start": 1}, {"pgid": "7", "start": 1},
            {"pgid": 8, "start": -1}, {"pgid": 9}, "junk", None,
            {"pgid": 10, "start": 11, "name": ["x"]},
        ],
    }  # fmt: skip
    assert Record.from_json(hostile) == Record(0, [Group(10, 11, "")])
    many = {"groups": [{"pgid": 10, "start": 1}] * (MAX_GROUPS + 5)}
    assert len(Record.from_json(many).groups) == MAX_GROUPS
    with pytest.raises(ValueError):
        Record.from_json([])


def test_record_file_is_replaced_whole_and_private(tmp_path: Path) -> None:
    path = str(tmp_path / "processes.json")
    assert read_record(path) is None
    write_record(path, Record(1, [Group(100, 5)]))
    write_record(path, Record(2, [Group(200, 6)]))
    assert read_record(path) == Record(2, [Group(200, 6)])
    assert os.listdir(tmp_path) == ["processes.json"]  # no temp file left
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_unreadable_record_finds_nothing_but_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    path.write_text("{not json")
    assert read_record(str(path)) == Record(0)


def test_unsafe_dirs_are_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    unsticky = tmp_path / "unsticky"
    unsticky.mkdir()
    unsticky.chmod(0o777)
    cases = {
        str(open_dir): "others may write to it (mode 0777)",
        str(link): "not a directory (a symlink is refused)",
        str(unsticky / "gaffer"): "others may write to its parent, which is not sticky",
    }
    for path, why in cases.items():
        with pytest.raises(ConfigError) as caught:
            ensure_dir(path)
        assert str(caught.value) == f"<config>: [gaffer] runtime_dir: cannot use {path!r}: {why}"
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    ensure_dir(str(sticky / "gaffer"))
    assert stat.S_IMODE(os.stat(sticky / "gaffer").st_mode) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="giving a dir away needs root")
def test_a_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        ensure_dir(str(theirs))
    with pytest.raises(ConfigError, match="its parent belongs to uid 65534"):
        ensure_dir(str(theirs / "mine"))


def test_a_lock_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    (directory / LOCK_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"cannot use .*: lock: Too many levels of symbolic"):
        Runtime(str(directory))
    assert not (tmp_path / "elsewhere").exists()


def test_one_lock_holder_at_a_time(tmp_path: Path) -> None:
    directory = str(tmp_path / "run")
    first = Runtime(directory)
    lock = os.path.join(directory, LOCK_FILE)
    assert Path(lock).read_text() == f"{os.getpid()}\n"
    with pytest.raises(NotTheManager) as caught:
        Runtime(directory)
    assert caught.value.holder == os.getpid() and caught.value.lock == lock
    assert caught.value.status == 503 and caught.value.code == "not_the_manager"
    assert str(caught.value).startswith(f"already running with pid {os.getpid()}, which holds ")
    first.close()
    assert not os.path.exists(lock)  # a clean stop leaves no lock file
    second = Runtime(directory)
    second.close()
    assert os.path.isdir(directory)  # a configured dir is kept...
    default = Runtime(str(tmp_path / "default"), remove=True)
    default.close()
    assert not os.path.exists(tmp_path / "default")  # ...a default one is removed


def test_a_previous_record_survives_until_it_is_swept(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    write_record(str(directory / "processes.json"), Record(7, [Group(123456789, 1)]))
    runtime = Runtime(str(directory))
    assert runtime.previous == Record(7, [Group(123456789, 1)])
    runtime.close()  # never swept: the next start must still find it
    kept = read_record(str(directory / "processes.json"))
    assert kept == Record(os.getpid(), [Group(123456789, 1)])
