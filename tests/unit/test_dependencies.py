"""depends_on: the pure graph (order, cycles, unknown names), its JSON and ini forms."""

from __future__ import annotations

from typing import Any

import pytest

from gaffer_gevent import dependencies
from gaffer_gevent.config import parse_config
from gaffer_gevent.errors import (
    BadValue,
    ConfigError,
    DependencyCycle,
    InvalidProcessInfo,
    UnknownDependency,
)  # fmt: skip
from gaffer_gevent.lifecycle_settings import Condition, depends_on_from_ini
from gaffer_gevent.template import ProcessTemplate


def test_start_order_puts_dependencies_first_and_keeps_the_rest_in_order() -> None:
    graph = {"web": {"migrate": "completed"}, "other": {}, "migrate": {"db": "ready"}, "db": {}}
    assert dependencies.start_order(graph) == ["db", "migrate", "web", "other"]


def test_a_group_key_stands_for_every_member() -> None:
    graph = {"app:web": {"infra:*": "ready"}, "infra:db": {}, "infra:cache": {}}
    assert dependencies.edges(graph)["app:web"] == ["infra:db", "infra:cache"]
    assert dependencies.start_order(graph) == ["infra:db", "infra:cache", "app:web"]
    assert dependencies.dependents(graph, "infra:db") == ["app:web"]


def test_a_cycle_is_named() -> None:
    graph = {"web": {"migrate": "completed"}, "migrate": {"web": "ready"}}
    with pytest.raises(DependencyCycle) as caught:
        dependencies.check(graph)
    assert caught.value.message == "web -> migrate -> web"
    assert caught.value.to_json() == {
        "error": "dependency_cycle",
        "reason": "web -> migrate -> web",
    }


def test_a_self_dependency_through_its_group_is_a_cycle() -> None:
    with pytest.raises(DependencyCycle, match="g:a -> g:a"):
        dependencies.check({"g:a": {"g:*": "started"}})


def test_a_long_chain_needs_no_recursion() -> None:
    graph: dict[str, dict[str, str]] = {f"t{i}": {f"t{i + 1}": "started"} for i in range(20_000)}
    graph["t20000"] = {}
    assert dependencies.start_order(graph)[0] == "t20000"
    graph["t20000"] = {"t0": "ready"}
    with pytest.raises(DependencyCycle):
        dependencies.check(graph)


def test_unknown_names_and_empty_groups_are_refused() -> None:
    with pytest.raises(UnknownDependency, match="'db'"):
        dependencies.check({"web": {"db": "ready"}})
    with pytest.raises(UnknownDependency, match="no template in group 'infra'"):
        dependencies.check({"web": {"infra:*": "ready"}})


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (["db"], InvalidProcessInfo),
        ("db", InvalidProcessInfo),
        ({"db": 1}, InvalidProcessInfo),
        ({"db": "healthy"}, BadValue),
        ({"d\nb": "ready"}, BadValue),
        ({"a/b": "ready"}, BadValue),
        ({"": "ready"}, BadValue),
        ({"x" * 129: "ready"}, BadValue),
        ({f"t{i}": "ready" for i in range(10_000)}, BadValue),
    ],
)
def test_hostile_depends_on_is_refused_naming_the_key(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        ProcessTemplate.from_json({"name": "web", "cmd": "true", "depends_on": value})
    assert getattr(caught.value, "field", None) == "depends_on"
    assert "\n" not in str(caught.value)


def test_template_reads_conditions() -> None:
    tpl = ProcessTemplate.from_json(
        {"name": "web", "cmd": "true", "depends_on": {"db": "ready", "g:*": "started"}}
    )
    assert tpl.depends_on == {"db": Condition.READY, "g:*": Condition.STARTED}
    assert tpl.to_json()["depends_on"] == {"db": "ready", "g:*": "started"}


def test_ini_forms() -> None:
    assert depends_on_from_ini('{"db": "ready"}') == {"db": "ready"}
    assert depends_on_from_ini("db ready, migrate completed\ncache") == {
        "db": "ready",
        "migrate": "completed",
        "cache": "started",
    }


CHAIN = """\
[process:web]
cmd = sleep 1
priority = 1
depends_on = migrate completed, db ready
restart_delay = 0.5

[process:migrate]
cmd = true
priority = 2
restart = never
depends_on = db ready

[process:db]
cmd = sleep 1
priority = 3
"""


def test_config_starts_dependencies_first_whatever_the_priorities() -> None:
    config = parse_config(CHAIN)
    assert [p.name for p in config.processes] == ["db", "migrate", "web"]
    web = config.processes[2].body
    assert web["depends_on"] == {"migrate": "completed", "db": "ready"}
    assert web["restart_delay"] == 0.5
    assert config.processes[1].body["restart"] == "never"


def test_config_with_a_cycle_fails_with_a_clear_message() -> None:
    text = CHAIN.replace("[process:db]\ncmd = sleep 1", "[process:db]\ncmd = sleep 1\n"
                         "depends_on = web started")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path="gafferd.ini")
    assert str(caught.value) == (
        "gafferd.ini: [process:web] depends_on: dependency cycle: web -> migrate -> db -> web"
    )
    assert caught.value.key == "depends_on"


def test_config_with_an_unknown_dependency_fails() -> None:
    with pytest.raises(ConfigError, match="unknown dependency"):
        parse_config("[process:web]\ncmd = true\ndepends_on = nosuch ready\n")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("restart = sometimes", "restart must be always, on-failure or never"),
        ("restart_delay = nan", "finite number"),
        ("depends_on = {not json", "not a JSON object"),
        ("depends_on = db healthy", "condition must be"),
    ],
)
def test_config_refuses_bad_lifecycle_keys(line: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_config(f"[process:db]\ncmd = true\n\n[process:web]\ncmd = true\n{line}\n")


def test_strict_names_whose_unknown_dependencies_count() -> None:
    graph = {"web": {"db": "ready"}, "cache": {}}
    dependencies.check(graph, strict=["cache"])  # web's deleted db is not cache's concern
    assert dependencies.start_order(graph, strict=()) == ["web", "cache"]
    with pytest.raises(UnknownDependency):
        dependencies.check(graph, strict=["web"])
