"""The pure checks behind every bound: names, ASCII integers, JSON depth, paths, log escaping."""

from __future__ import annotations

import json

import pytest

from gaffer_gevent.errors import BadValue
from gaffer_gevent.limits import (
    MAX_NAME_LENGTH,
    ProcessLimits,
    ascii_int,
    check_name,
    check_relative_path,
    json_too_deep,
    name_problem,
    printable,
)


@pytest.mark.parametrize(
    "name", ["a", "web:echo", "²", "with space", "ünï", "n" * MAX_NAME_LENGTH, "_pids", "%41"]
)
def test_names_that_follow_the_rule(name: str) -> None:
    assert name_problem(name) is None
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("n" * (MAX_NAME_LENGTH + 1), "at most 128"),
        ("0042", "all digits"),
        ("^", "'^'"),
        ("1^2", "'^'"),
        ("a/b", "'/'"),
        ("a.b", "'.'"),
        ("a\nb", "control"),
        ("\x1b[2J", "control"),
        ("a\u2028b", "control"),
        ("bidi\u202e", "control"),
        ("\ud800", "control"),
        (" a", "space"),
    ],
)
def test_names_that_break_the_rule(name: str, problem: str) -> None:
    assert problem in (name_problem(name) or "")
    with pytest.raises(BadValue) as info:
        check_name(name)
    assert info.value.field == "name"
    assert "\n" not in info.value.message  # the reason quotes the name escaped


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("-3", -3), ("0", 0), ("9" * 18, int("9" * 18)), ("²", None), ("\u0661", None),
     ("1_0", None), (" 1", None), ("1 ", None), ("+1", None), ("9" * 19, None), ("", None),
     ("1.0", None)],
)  # fmt: skip
def test_ascii_int_takes_only_ascii_digits(text: str, value: int | None) -> None:
    assert ascii_int(text) == value


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        (nested(32), False),
        (nested(33), True),
        ("[" * 100_000, True),
        ('{"a": ' * 32 + "1" + "}" * 32, False),
        ('{"a": [' * 17 + "]}" * 17, True),  # objects and arrays count alike
        (json.dumps({"s": "[" * 1000, "t": '"[{' * 50}), False),  # brackets inside strings
        (json.dumps([["[" * 40]] * 100), False),
        ("[1]" * 1000, False),  # wide is fine
    ],
)
def test_json_depth_is_measured_before_parsing(text: str, deep: bool) -> None:
    assert json_too_deep(text, 32) is deep


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain", "plain"),
        ("fake\ngafferd: stopped", "fake\\ngafferd: stopped"),
        ("\r\x1b[31mred", "\\r\\x1b[31mred"),
        ("a\u2028b\u0085c", "a\\u2028b\\x85c"),
        ("tab\t", "tab\\t"),
        ("\ud800", "\\ud800"),
        ("ünïcødé ✓", "ünïcødé ✓"),
    ],
)
def test_printable_escapes_control_characters(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(text).isprintable()


@pytest.mark.parametrize("path", ["a.log", "./a.log", "dir/sub/a.log", "a..b.log", "~/x"])
def test_relative_log_paths_that_stay_inside(path: str) -> None:
    assert check_relative_path(path, "stdout_logfile") == path


@pytest.mark.parametrize(
    "path", ["/abs", "..", "../x", "a/../../x", ".hidden", "a/.b", "", "a/", ".", "a\nb", "x\0"]
)
def test_relative_log_paths_that_could_leave(path: str) -> None:
    with pytest.raises(BadValue) as info:
        check_relative_path(path, "stdout_logfile")
    assert info.value.field == "stdout_logfile"


def test_process_limits() -> None:
    limits = ProcessLimits(max_processes=3, max_total_processes=5, max_buffer_size=4096)
    limits.check(3, 4096, others=2)
    for args, field in [((4, None, 0), "numprocesses"), ((3, None, 3), "numprocesses"),
                        ((1, 4097, 0), "buffer_size")]:  # fmt: skip
        with pytest.raises(BadValue) as info:
            limits.check(*args)
        assert info.value.field == field
