"""Log files: the line-boundary rule, rotation by size and by day (fake clock), history reads,
and writers following real children of a real Manager."""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaffer_gevent.logfile import History, LogFile, line_cut
from gaffer_gevent.logfiles import LogFiles
from gaffer_gevent.manager import Manager
from gaffer_gevent.streams import Stream
from gaffer_gevent.template import ProcessTemplate

from ..helpers import FakeClock, child, files_of, numbered, numbers_in, on_disk, wait_for

DAY = 86400.0


#: The fake clock's start: noon, so a test knows how far midnight is.
NOON = datetime.datetime(2030, 5, 17, 12, 0).timestamp()


# -- the line-boundary rule --------------------------------------------------------


def test_line_cut_writes_everything_that_fits() -> None:
    assert line_cut(b"abc\n", 10, 0, 100) == (4, False)
    assert line_cut(b"abc\n" * 100, 10, 0, 0) == (400, False)  # 0: no limit


def test_line_cut_rotates_before_the_first_line_that_does_not_fit() -> None:
    assert line_cut(b"aaaa\nbbbb\ncccc\n", 0, 0, 12) == (10, True)


def test_line_cut_rotates_first_when_no_whole_line_fits() -> None:
    assert line_cut(b"aaaa\n", 10, 0, 12) == (0, True)


def test_line_cut_finishes_a_line_the_file_started() -> None:
    assert line_cut(b"xyz\nmore\n", 10, 4, 12) == (4, True)


def test_line_cut_cuts_only_a_line_longer_than_a_file() -> None:
    assert line_cut(b"x" * 50, 0, 0, 12) == (12, True)
    assert line_cut(b"x" * 50, 10, 10, 12) == (2, True)


# -- LogFile --------------------------------------------------------------------------


def test_size_rotation_keeps_every_line_whole_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=100, backups=200)
    for first in range(1, 995, 7):  # writes that straddle rotation points
        log.write(numbered(first, first + 6))
    log.close()
    files = files_of(path, 200)
    assert 50 < len(files) < 200
    for p in files:
        data = p.read_bytes()
        assert len(data) <= 100 and data.endswith(b"\n")
    assert numbers_in(on_disk(path, 200)) == list(range(1, 995))


def test_size_rotation_keeps_the_configured_number_of_backups(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=64, backups=3)
    log.write(numbered(1, 500))
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "app.log", "app.log.1", "app.log.2", "app.log.3",
    ]  # fmt: skip
    kept = numbers_in(on_disk(path, 3))
    assert kept == list(range(kept[0], 501))


def test_a_line_split_across_writes_stays_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=20, backups=5)
    log.write(b"line 1\nline 2\nline")  # 18 bytes, the file ends mid-line
    log.write(b" 3 is long\nline 4\n")
    log.close()
    assert (tmp_path / "app.log.1").read_bytes() == b"line 1\nline 2\nline 3 is long\n"
    assert path.read_bytes() == b"line 4\n"


def test_lowering_backups_removes_the_extra_files(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=10, backups=5)
    log.write(numbered(1, 20))
    log.backups = 2
    log.write(b"line 21\n")
    log.rotate()
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log", "app.log.1", "app.log.2"]


def test_no_backups_means_rotation_drops_history(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=10, backups=0)
    log.write(numbered(1, 5))
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["app.log"]
    assert path.read_bytes() == b"line 5\n"


def test_daily_rotation_happens_when_the_date_changes(tmp_path: Path) -> None:
    clock = FakeClock(NOON)
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=0, backups=5, daily=True, clock=clock)
    log.write(b"monday 1\nmonday 2\n")
    log.write(b"monday 3\n")
    clock.now += DAY
    log.write(b"tuesday 1\n")
    clock.now += 3600  # same day
    log.write(b"tuesday 2\n")
    log.close()
    assert (tmp_path / "app.log.1").read_bytes() == b"monday 1\nmonday 2\nmonday 3\n"
    assert path.read_bytes() == b"tuesday 1\ntuesday 2\n"


def test_daily_rotation_waits_for_the_end_of_an_open_line(tmp_path: Path) -> None:
    clock = FakeClock(NOON)
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=0, backups=5, daily=True, clock=clock)
    log.write(b"late at ni")
    clock.now += DAY
    log.write(b"ght\nnext morning\n")
    log.close()
    assert (tmp_path / "app.log.1").read_bytes() == b"late at night\n"
    assert path.read_bytes() == b"next morning\n"


def test_a_file_from_an_earlier_day_rotates_at_its_first_write(tmp_path: Path) -> None:
    clock = FakeClock(NOON)
    path = tmp_path / "app.log"
    path.write_bytes(b"old day\n")
    os.utime(path, (clock.now - 2 * DAY, clock.now - 2 * DAY))
    log = LogFile(str(path), maxbytes=0, backups=5, daily=True, clock=clock)
    log.write(b"today\n")
    log.close()
    assert (tmp_path / "app.log.1").read_bytes() == b"old day\n"
    assert path.read_bytes() == b"today\n"


def test_reopening_appends(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "app.log"
    for n in (1, 2):
        log = LogFile(str(path), maxbytes=1000, backups=2)
        log.write(b"run %d\n" % n)
        log.close()
    assert path.read_bytes() == b"run 1\nrun 2\n"


def test_rotating_an_empty_file_does_nothing(tmp_path: Path) -> None:
    log = LogFile(str(tmp_path / "app.log"), backups=2)
    assert log.rotate() is False
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["app.log"]


# -- History ----------------------------------------------------------------------------


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    log = LogFile(str(path), maxbytes=50, backups=100)
    log.write(numbered(1, 60))
    log.close()
    return path


def read_all(history: History) -> bytes:
    out = b""
    while block := history.read(7):
        out += block
    history.close()
    return out


def test_history_reads_backups_then_the_current_file(rotated: Path) -> None:
    assert numbers_in(read_all(History(str(rotated), 100))) == list(range(1, 61))


@pytest.mark.parametrize("lines", [0, 1, 2, 7, 33, 60, 500])
def test_history_tail_spans_files(rotated: Path, lines: int) -> None:
    history = History(str(rotated), 100)
    history.tail_start(lines)
    assert numbers_in(read_all(history)) == list(range(61 - min(lines, 60), 61))


def test_history_tail_counts_an_unfinished_last_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"a\nb\nc")
    history = History(str(path), 2)
    history.tail_start(2)
    assert read_all(history) == b"b\nc"


def test_history_is_a_snapshot(rotated: Path) -> None:
    history = History(str(rotated), 100)
    before = history.size
    with open(rotated, "ab") as f:
        f.write(b"line 61\n")
    assert len(read_all(history)) == before


def test_history_of_missing_files_is_empty(tmp_path: Path) -> None:
    assert read_all(History(str(tmp_path / "none.log"), 3)) == b""


# -- writers over real children -----------------------------------------------------------


@pytest.fixture
def logs(manager: Manager, tmp_path: Path) -> Iterator[LogFiles]:
    files = LogFiles(manager, str(tmp_path))
    yield files
    manager.stop_all(timeout=10)
    files.close()


def counter_template(name: str, *args: str, **settings: object) -> ProcessTemplate:
    body = {"name": name, **child("counter", *args), "redirect_output": ["stdout", "stderr"]}
    return ProcessTemplate.from_json({**body, **settings})


def test_writer_records_every_line_of_a_child(manager: Manager, logs: LogFiles) -> None:
    template = counter_template("c", "2000", "0", "stdout", "wait", stdout_logfile="c.log")
    manager.add_template(template)
    path = Path(logs.log_dir or "") / "c.log"
    wait_for(lambda: path.exists() and numbers_in(path.read_bytes())[-1:] == [2000])
    assert numbers_in(path.read_bytes()) == list(range(1, 2001))


def test_stderr_goes_to_its_own_file(manager: Manager, logs: LogFiles, tmp_path: Path) -> None:
    template = counter_template(
        "e", "5", "0", "stderr", "wait", stdout_logfile="out.log", stderr_logfile="err.log"
    )
    manager.add_template(template)
    wait_for(lambda: (tmp_path / "err.log").exists()
             and numbers_in((tmp_path / "err.log").read_bytes()) == [1, 2, 3, 4, 5])  # fmt: skip
    assert not (tmp_path / "out.log").exists()  # opened at its first write


def test_one_file_stays_open_across_respawns(manager: Manager, logs: LogFiles) -> None:
    manager.add_template(counter_template("r", "3", stdout_logfile="r.log"))
    path = Path(logs.log_dir or "") / "r.log"
    wait_for(lambda: path.exists() and len(numbers_in(path.read_bytes())) >= 9)
    assert numbers_in(path.read_bytes())[:9] == [1, 2, 3] * 3
    assert len(logs.writers) == 1


def test_writer_closes_when_the_template_is_removed(manager: Manager, logs: LogFiles) -> None:
    manager.add_template(counter_template("d", "3", "0", "stdout", "wait", stdout_logfile="d.log"))
    wait_for(lambda: logs.writers)
    (writer,) = logs.writers.values()
    manager.remove_template("d")
    wait_for(lambda: writer.greenlet.dead and not logs.writers)
    assert writer.file.fd == -1


def test_a_writer_left_behind_records_a_gap_line(tmp_path: Path) -> None:
    """The cursor fell off the ring buffer (as a stuck disk would make it): a gap is noted."""
    files = LogFiles(Manager(), str(tmp_path))
    template = counter_template("g", stdout_logfile="g.log")
    writer = files._writer("g", "stdout", files.resolve("g.log"), template)
    stream = Stream("stdout", buffer_size=1024)
    sub = stream.subscribe(since=0)
    writer.subscriptions.append(sub)
    for n in range(1, 1001):  # appended without yielding: the writer cannot keep up
        stream.append(b"line %d\n" % n)
    stream.close()
    files.close()
    data = (tmp_path / "g.log").read_bytes()
    gap = re.search(rb"\[gaffer: (\d+) chunks, (\d+) bytes not written", data)
    assert gap is not None
    kept = numbers_in(data)
    assert int(gap.group(1)) == kept[0] - 1
    assert int(gap.group(2)) == len(numbered(1, kept[0] - 1))
    assert kept == list(range(kept[0], 1001))


def test_log_dir_paths_stay_inside_even_at_the_filesystem_root(tmp_path: Path) -> None:
    from gaffer_gevent.logdir import LogDir, NotOurs

    assert LogDir("/").path("a/b.log") == "/a/b.log"
    logdir = LogDir(str(tmp_path))
    assert logdir.path("./x.log") == str(tmp_path / "x.log")
    for escape in ("../x.log", "a/../../x.log", "."):
        with pytest.raises(NotOurs):
            logdir.path(escape)
