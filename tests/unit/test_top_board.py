"""The pure model of ``gafferctl top``: whole-tree figures, events, sorting, output lines."""

from __future__ import annotations

from gaffer_gevent.cli.top_board import (
    Board,
    format_bytes,
    format_uptime,
    human_bytes,
    last_line,
    tree_figures,
)


def test_human_bytes_reads_gafferds_units_back():
    assert human_bytes("9M") == 9 * 1024**2
    assert human_bytes("512B") == 512
    assert human_bytes("2G") == 2 * 1024**3
    assert human_bytes(4096) == 4096
    assert human_bytes("N/A") is None
    assert human_bytes("9Q") is None
    assert human_bytes(True) is None


def test_tree_figures_add_children_of_children():
    info = {
        "cpu": 1.5,
        "mem_info1": "10M",
        "children": [
            {"cpu": 2.0, "mem_info1": "50M", "children": [{"cpu": 0.5, "mem_info1": "1M"}]},
            {"cpu": "N/A", "mem_info1": "N/A", "children": []},
        ],
    }
    cpu, rss = tree_figures(info)
    assert cpu == 4.0
    assert rss == 61 * 1024**2


def test_tree_figures_prefer_an_exact_rss():
    assert tree_figures({"cpu": 0.0, "rss": 1234, "mem_info1": "1K"}) == (0.0, 1234)
    assert tree_figures({"cpu": "N/A", "mem_info1": "N/A"}) == (None, None)


def stats(*processes: tuple[int, int, str]) -> dict[str, object]:
    return {
        "stats": [
            {"id": pid, "pid": os_pid, "cpu": 0.0, "mem_info1": rss, "restarts": 0}
            for pid, os_pid, rss in processes
        ]
    }


def test_board_rows_idle_templates_and_sorting():
    board = Board()
    added = board.set_template("web", stats((1, 100, "5M"), (2, 101, "50M")), {"state": "running"})
    assert [row.pid for row in added] == [1, 2]
    board.set_template("idle", stats(), {"active": False, "state": "failed", "restarts": 3})
    assert [(r.name, r.pid, r.state) for r in board.rows()] == [
        ("idle", None, "failed"),
        ("web", 1, "running"),
        ("web", 2, "running"),
    ]
    assert [r.pid for r in board.rows("mem")] == [2, 1, None]
    assert board.apply_stat({"pid": 100, "cpu": 90.0, "mem_info1": "1G"})
    assert not board.apply_stat({"pid": 999, "cpu": 1.0})
    assert board.rows("cpu")[0].pid == 1
    assert board.rows("restarts")[0].pid is None  # idle: 3 restarts


def test_board_events_name_the_template_to_read_again():
    board = Board()
    board.set_template("web", stats((1, 100, "5M")), None)
    assert board.apply_event("spawn", {"name": "web", "pid": 2}) == "web"
    assert board.apply_event("proc.web.spawn", {"name": "web", "pid": 2}) is None  # the twin
    assert board.apply_event("stop_pid", {"name": "web", "pid": 1}) == "web"
    assert board.rows()[0].state == "stopping"
    assert board.apply_event("api.action", {"name": "web"}) is None
    assert board.apply_event("delete", {"name": "web"}) is None
    assert board.rows() == []
    assert not board.apply_stat({"pid": 100, "cpu": 1.0})


def test_set_template_keeps_rows_and_forgets_gone_pids():
    board = Board()
    board.set_template("web", stats((1, 100, "5M")), None)
    board.set_output(1, "hello")
    added = board.set_template("web", stats((1, 100, "5M"), (2, 101, "5M")), None)
    assert [row.pid for row in added] == [2]
    assert board.rows()[0].output == "hello"
    board.set_template("web", stats((2, 101, "5M")), None)
    assert not board.apply_stat({"pid": 100, "cpu": 1.0})
    assert board.apply_stat({"pid": 101, "cpu": 1.0})


def test_last_line_waits_for_the_end_of_a_line():
    line, rest = last_line("", b"one\ntwo\nthr")
    assert (line, rest) == ("two", "thr")
    line, rest = last_line(rest, b"ee\n")
    assert (line, rest) == ("three", "")
    assert last_line("", b"50%\r60%\r") == ("60%", "")
    assert last_line("", b"\n\n") == ("", "")
    assert len(last_line("", b"x" * 10_000)[1]) == 4096


def test_formats():
    assert format_bytes(None) == "-"
    assert format_bytes(512) == "512B"
    assert format_bytes(10 * 1024**2) == "10.0M"
    assert format_uptime(None) == "-"
    assert format_uptime(65) == "1:05"
    assert format_uptime(3 * 3600 + 5) == "3:00:05"
    assert format_uptime(2 * 86400 + 3600) == "2d01h"
