"""gafferd's own log lines: escaped always, ISO-8601 UTC timestamps with milliseconds under -v."""

import calendar
import logging
import re

import pytest

from gaffer_gevent.daemonlog import DaemonLog, timestamp

NOON = calendar.timegm((2026, 12, 4, 15, 50, 1)) + 0.1237


def test_timestamp_is_iso_8601_utc_with_milliseconds() -> None:
    assert timestamp(NOON) == "2026-12-04T15:50:01.123Z"
    assert timestamp(calendar.timegm((2027, 1, 1, 0, 0, 0))) == "2027-01-01T00:00:00.000Z"


def test_lines_are_bare_without_v_and_timestamped_with_it() -> None:
    assert DaemonLog(timestamps=False).line("listening on x", NOON) == "gafferd: listening on x"
    line = DaemonLog(timestamps=True).line("fake\ngafferd: stopped", NOON)
    assert line == "2026-12-04T15:50:01.123Z gafferd: fake\\ngafferd: stopped"


def test_the_package_warnings_take_the_same_form(capsys: pytest.CaptureFixture[str]) -> None:
    handler = DaemonLog(timestamps=True).take_over_logging()
    try:
        logging.getLogger("gaffer_gevent.manager").warning("%s failed: %s", "web", "a\nb")
        logging.getLogger("gaffer_gevent.process").info("not shown: below WARNING")
    finally:
        logging.getLogger("gaffer_gevent").removeHandler(handler)
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z gafferd: web failed: a\\nb", line)
