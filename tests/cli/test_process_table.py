"""The table of `gafferctl status` and `gaffer ps`, from scripted answers (no server)."""

from __future__ import annotations

from gaffer_gevent.cli.process_table import HEADER, duration, render, template_rows

NOW = 1_000_000.0
PROC = {
    "id": 7,
    "pid": 4242,
    "started_at": NOW - 3725,
    "restarts": 2,
    "cpu": 12.345,
    "mem_info1": "9M",
}


def test_a_running_pid_is_one_row():
    (row,) = template_rows("web", {"state": "running", "active": True}, [PROC], now=NOW)
    assert row == {
        "name": "web", "pid": 7, "os_pid": 4242, "state": "running", "restarts": 2,
        "started_at": NOW - 3725, "uptime": 3725.0, "cpu": 12.345, "mem": "9M",
    }  # fmt: skip
    assert render([row]).splitlines()[1].split() == [
        "web", "7", "4242", "running", "2", "1:02:05", "12.3%", "9M",
    ]  # fmt: skip


def test_a_crash_loop_keeps_a_template_row_beside_its_running_pids():
    status = {"state": "backoff", "active": True, "restarts": 6}
    rows = template_rows("web", status, [PROC, {**PROC, "id": 8}], numbered=True, now=NOW)
    assert [(r["name"], r["pid"], r["state"]) for r in rows] == [
        ("web", None, "backoff"), ("web.1", 7, "running"), ("web.2", 8, "running"),
    ]  # fmt: skip
    assert rows[0]["restarts"] == 6


def test_a_gaffer_04_status_and_stats_without_start_times():
    (stopped,) = template_rows("old", {"active": False, "running": 0}, [], now=NOW)
    assert (stopped["state"], stopped["restarts"]) == ("stopped", 0)
    (row,) = template_rows("old", {"active": True}, [{"id": 1, "pid": 9, "cpu": "N/A"}], now=NOW)
    assert (row["uptime"], row["state"]) == (None, "running")
    assert render([row]).splitlines()[1].split()[5:] == ["-", "N/A", "-"]


def test_render_aligns_columns_and_an_empty_table_is_its_header():
    assert render([]) == "  ".join(HEADER) + "\n"
    text = render(template_rows("a-long-name", {"state": "stopped"}, [], now=NOW))
    header, line = text.splitlines()
    assert header.index("PID") == line.index(" -") + 1


def test_duration():
    assert [duration(s) for s in (0, 59.9, 61, 3600, 86399, 90061)] == [
        "0:00", "0:59", "1:01", "1:00:00", "23:59:59", "1d 1:01:01",
    ]  # fmt: skip
