"""Checks without children: the spec's rules and defaults, the ini form, notify datagrams."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaffer_gevent.checks.notify import MAX_STATUS_TEXT, NotifySocket
from gaffer_gevent.checks.spec import CheckSpec, parse_check
from gaffer_gevent.config import parse_config
from gaffer_gevent.errors import BadValue, ConfigError, GafferError
from gaffer_gevent.template import ProcessTemplate


def test_defaults_are_kubernetes_ones() -> None:
    spec = parse_check({"tcp": "127.0.0.1:6379"}, "readiness")
    assert spec == CheckSpec("tcp", "127.0.0.1:6379", initial_delay=0.0, period=10.0,
                             timeout=1.0, failure_threshold=3, success_threshold=1)  # fmt: skip
    assert parse_check(None, "readiness") is None


def test_variables_are_substituted_from_the_environment() -> None:
    spec = parse_check({"http": "http://127.0.0.1:${PORT}/$$x"}, "readiness")
    assert spec is not None
    assert spec.substituted({"PORT": "8080"}) == "http://127.0.0.1:8080/$x"
    with pytest.raises(KeyError):
        spec.substituted({})
    argv = parse_check({"exec": ["check", "--port=$PORT"]}, "liveness")
    assert argv is not None and argv.substituted({"PORT": "1"}) == ["check", "--port=1"]


@pytest.mark.parametrize(
    "address", ["[::1]:80", "localhost:1", "db.internal:65535", "127.0.0.1:$PORT"]
)
def test_tcp_addresses_that_parse(address: str) -> None:
    assert parse_check({"tcp": address}, "readiness") is not None


@pytest.mark.parametrize(
    "address",
    ["[::1]80", ":80", "host:0", "host:65536", "-host:1", "host:1:2", "hö:1", "h:\uff18\uff10"],
)
def test_tcp_addresses_that_do_not(address: str) -> None:
    with pytest.raises(BadValue) as info:
        parse_check({"tcp": address}, "readiness")
    assert info.value.field == "readiness.tcp"


def test_a_log_check_needs_its_label_redirected() -> None:
    body = {"name": "a", "cmd": "x", "readiness": {"log": "ready"}}
    with pytest.raises(BadValue) as info:
        ProcessTemplate.from_json(body)
    assert info.value.field == "readiness.label"
    template = ProcessTemplate.from_json({**body, "redirect_output": ["stdout"]})
    assert template.readiness is not None and template.readiness.pattern is not None


def test_the_ini_takes_one_json_object_per_check() -> None:
    config = parse_config(
        '[process:web]\ncmd = srv\nreadiness = {"http": "http://127.0.0.1:$PORT/", "period": 2}\n'
        'liveness = {"notify": true, "period": 30}\n[env:web]\nPORT = 8080\n'
    )  # fmt: skip
    (process,) = config.processes
    template = ProcessTemplate.from_json(process.body)
    assert template.readiness is not None and template.readiness.period == 2
    assert template.liveness is not None and template.liveness.kind == "notify"
    with pytest.raises(ConfigError) as info:
        parse_config("[process:web]\ncmd = srv\nreadiness = http://x/\n")
    assert "readiness" in str(info.value)


def test_notify_lines_are_applied_and_bounded() -> None:
    sock = NotifySocket("web", 1)
    try:
        assert sock.env_value.startswith("@gaffer-gevent/")
        sock.handle(b"STATUS=warming up\nWATCHDOG=1")
        assert (sock.status_text, sock.pings, sock.ready.is_set()) == ("warming up", 1, False)
        sock.handle(b"READY=1\nSTATUS=" + b"\x1b[2J" + b"x" * 5000)
        assert sock.ready.is_set()
        assert sock.status_text is not None and len(sock.status_text) <= MAX_STATUS_TEXT + 4
        assert "\x1b" not in sock.status_text  # escaped
    finally:
        sock.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
TARGETS = st.text(max_size=60) | st.sampled_from(
    ["http://[::1", "http://a:b@c/", "https://x:0/", "http://x:65536", "[::1]:", "a:-1", "$", "${"]
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from(["http", "tcp", "exec", "log", "notify"]),
    target=JSON | TARGETS,
    extra=st.dictionaries(st.sampled_from(["period", "timeout", "label", "failure_threshold"]),
                          JSON, max_size=2),
    key=st.sampled_from(["readiness", "liveness"]),
)  # fmt: skip
def test_any_value_is_a_check_or_a_named_400(kind: str, target: Any, extra: dict[str, Any],
                                             key: str) -> None:  # fmt: skip
    try:
        parse_check({kind: target, **extra}, key)
    except GafferError as exc:
        assert exc.status == 400 and exc.field is not None and exc.field.startswith(key)
