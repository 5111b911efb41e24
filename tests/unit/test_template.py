"""Template validation and argv building (spec section 7)."""

import os

import pytest

from gaffer_gevent.errors import BadValue, InvalidProcessInfo
from gaffer_gevent.template import FlappingConfig, ProcessTemplate


def test_settings_echo_exactly_what_was_sent() -> None:
    body = {"name": "dummy", "cmd": "python", "args": ["-u", "d.py"], "cwd": "/tmp", "start": False}
    tpl = ProcessTemplate.from_json(body)
    assert tpl.to_json() == {
        "name": "dummy",
        "cmd": "python",
        "args": ["-u", "d.py"],
        "cwd": "/tmp",
    }


def test_group_comes_from_the_name_and_body_group_is_ignored() -> None:
    assert ProcessTemplate.from_json({"name": "ga:a", "cmd": "x"}).to_json()["group"] == "ga"
    assert (
        "group" not in ProcessTemplate.from_json({"name": "a", "cmd": "x", "group": "g"}).to_json()
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cmd": "x"}, "name"),
        ({"name": "a"}, "cmd"),
        ({"name": "a", "cmd": "x", "numprocesses": "2"}, "numprocesses"),
        ({"name": "a", "cmd": "x", "env": ["A"]}, "env"),
        ({"name": "a", "cmd": "x", "redirect_output": "stdout"}, "redirect_output"),
        ({"name": "a", "cmd": "x", "flapping": {"tries": 3}}, "flapping"),
        ({"name": "a", "cmd": "x", "bogus": 1}, "bogus"),
        # empty values of the wrong type are not the default (the schema refuses them too)
        ({"name": "a", "cmd": "x", "env": []}, "env"),
        ({"name": "a", "cmd": "x", "env": 0}, "env"),
        ({"name": "a", "cmd": "x", "redirect_output": ""}, "redirect_output"),
        ({"name": "a", "cmd": "x", "redirect_output": False}, "redirect_output"),
        ({"name": "a", "cmd": "x", "start": "no"}, "start"),
        ({"name": "a", "cmd": "x", "start": 0}, "start"),
    ],
)
def test_wrong_types_and_keys_are_invalid_process_info_naming_the_field(
    body: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidProcessInfo) as info:
        ProcessTemplate.from_json(body)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "cmd": "x", "graceful_timeout": -1}, "graceful_timeout"),
        ({"name": "a", "cmd": "x", "uid": "no-such-user-here"}, "uid"),
        ({"name": "12", "cmd": "x"}, "name"),
        ({"name": "a/b", "cmd": "x"}, "name"),
    ],
)
def test_values_out_of_bounds_are_bad_values_naming_the_field(
    body: dict[str, object], field: str
) -> None:
    with pytest.raises(BadValue) as info:
        ProcessTemplate.from_json(body)
    assert info.value.field == field
    assert field in info.value.message


def test_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidProcessInfo):
        ProcessTemplate.from_json(["name", "cmd"])


def test_cmd_is_split_when_args_is_absent_and_substituted() -> None:
    tpl = ProcessTemplate.from_json({"name": "a", "cmd": "echo $GREETING ${WHO} $$", "env": {
        "GREETING": "hi", "WHO": "you"}})  # fmt: skip
    env = tpl.child_env({"PATH": "/bin"})
    assert tpl.argv(env) == ["echo", "hi", "you", "$"]


def test_args_string_is_lexed_and_cmd_kept_whole() -> None:
    tpl = ProcessTemplate.from_json({"name": "a", "cmd": "my prog", "args": "-x 'a b'"})
    assert tpl.argv({}) == ["my prog", "-x", "a b"]


def test_unknown_variable_fails_at_spawn_time() -> None:
    tpl = ProcessTemplate.from_json({"name": "a", "cmd": "echo", "args": ["$NOPE_NOT_SET"]})
    with pytest.raises(KeyError):
        tpl.argv({})


def test_template_env_wins_over_os_env_and_os_env_false_isolates() -> None:
    tpl = ProcessTemplate.from_json({"name": "a", "cmd": "x", "env": {"HOME": "/nowhere"}})
    assert tpl.child_env({"HOME": "/root", "A": "1"}) == {"HOME": "/nowhere", "A": "1"}
    assert tpl.env == {"HOME": "/nowhere"}
    alone = ProcessTemplate.from_json({"name": "a", "cmd": "x", "os_env": False, "env": {"B": "2"}})
    assert alone.child_env(dict(os.environ)) == {"B": "2"}


def test_shell_runs_the_whole_command_line() -> None:
    tpl = ProcessTemplate.from_json({"name": "a", "cmd": "echo hi", "shell": True})
    assert tpl.argv({}) == ["/bin/sh", "-c", "echo hi"]


def test_flapping_forms() -> None:
    assert FlappingConfig.from_value("2, 1., 7., 5") == FlappingConfig(2, 1.0, 7.0, 5)
    assert FlappingConfig.from_value({"attempts": 3}) == FlappingConfig(3, 1.0, 7.0, 5)
    tpl = ProcessTemplate.from_json({"name": "a", "cmd": "x", "flapping": {"max_retry": 1}})
    assert tpl.flapping == FlappingConfig(max_retry=1)
    assert tpl.to_json()["flapping"] == {"max_retry": 1}
