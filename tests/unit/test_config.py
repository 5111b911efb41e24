"""gafferd's ini config parsed into dataclasses: pure text in, DaemonConfig or ConfigError out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gaffer_gevent.config import (
    Address,
    ConnectionLimits,
    DaemonConfig,
    EndpointConfig,
    load_config,
    parse_address,
    parse_config,
)
from gaffer_gevent.errors import ConfigError
from gaffer_gevent.flapping import BackoffConfig
from gaffer_gevent.limits import ProcessLimits
from gaffer_gevent.signing import Secret
from gaffer_gevent.template import ProcessTemplate

SPEC_EXAMPLE = """\
[gaffer]
http_endpoints = public

[endpoint:public]
bind = 127.0.0.1:5000

[webhooks]
create = http://127.0.0.1:8080/hook

[process:dummy]
cmd = ./dummy.py
numprocesses = 1
redirect_output = stdout, stderr

[process:web:echo]
cmd = ./echo.py
redirect_output = stdout, stderr
redirect_input = true
priority = 0

[env:dummy]
port = 80           ; child sees PORT=80
"""


def parse(text: str) -> DaemonConfig:
    return parse_config(text, path="gafferd.ini")


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def bodies(text: str) -> dict[str, dict[str, object]]:
    return {p.name: p.body for p in parse(text).processes}


# -- the spec's example -------------------------------------------------------


def test_spec_example_parses_as_documented() -> None:
    config = parse(SPEC_EXAMPLE)

    assert config.path == "gafferd.ini"
    assert config.endpoints == [
        EndpointConfig("public", [Address("tcp", "127.0.0.1", 5000, "")], None, None, 128)
    ]
    assert config.webhooks == [("create", "http://127.0.0.1:8080/hook")]
    # web:echo has priority 0; dummy has none, so it starts last
    assert [p.name for p in config.processes] == ["web:echo", "dummy"]
    echo, dummy = config.processes
    assert echo.section == "process:web:echo"
    assert echo.priority == 0
    assert echo.body == {
        "name": "web:echo",
        "cmd": "./echo.py",
        "start": True,
        "redirect_output": ["stdout", "stderr"],
        "redirect_input": True,
        "priority": 0,
    }
    assert dummy.priority is None
    assert dummy.body == {
        "name": "dummy",
        "cmd": "./dummy.py",
        "start": True,
        "numprocesses": 1,
        "redirect_output": ["stdout", "stderr"],
        "env": {"PORT": "80"},
    }
    assert config.cors_origins is None
    assert config.stream_buffer_size == config.stdin_max_body == 1024 * 1024
    assert config.log_dir is None and config.plugins_dir is None


def test_parse_config_without_a_path_reports_none() -> None:
    config = parse_config("[process:a]\ncmd = true\n")
    assert config.path is None
    assert config.endpoints == [] and config.webhooks == []


def test_empty_text_gives_defaults() -> None:
    config = parse("")
    assert (config.endpoints, config.processes, config.webhooks) == ([], [], [])


# -- processes ------------------------------------------------------------------


def test_priority_orders_processes_stably_with_unprioritised_last() -> None:
    config = parse(
        """
[process:none1]
cmd = true
[process:ten]
cmd = true
priority = 10
[process:minus]
cmd = true
priority = -1
[process:ten_b]
cmd = true
priority = 10
[process:none2]
cmd = true
[process:zero]
cmd = true
priority = 0
"""
    )
    assert [p.name for p in config.processes] == ["minus", "zero", "ten", "ten_b", "none1", "none2"]


def test_section_without_cmd_is_ignored() -> None:
    assert bodies("[process:a]\nnumprocesses = 2\n[process:b]\ncmd =\n[process:c]\ncmd = x\n") == {
        "c": {"name": "c", "cmd": "x", "start": True}
    }


def test_every_process_key_is_typed() -> None:
    body = bodies(
        """
[process:all]
CMD = ./run
args = --port $PORT "two words"
cwd = /tmp
uid = 0
gid = 0
detach = yes
shell = off
os_env = 0
start = false
redirect_input = on
numprocesses = 3
redirect_output = out ,err
graceful_timeout = 2.5
priority = 7
flapping = 3
buffer_size = 64KB
stdout_logfile = out.log
stderr_logfile = logs/err.log
logfile_maxbytes = 50MB
logfile_backups = 3
logfile_rotate_daily = true
"""
    )["all"]
    assert body == {
        "name": "all",
        "cmd": "./run",
        "start": False,
        "args": '--port $PORT "two words"',
        "cwd": "/tmp",
        "uid": 0,
        "gid": 0,
        "detach": True,
        "shell": False,
        "os_env": False,
        "redirect_input": True,
        "numprocesses": 3,
        "redirect_output": ["out", "err"],
        "graceful_timeout": 2.5,
        "priority": 7,
        "flapping": {"attempts": 3},
        "buffer_size": 65536,
        "stdout_logfile": "out.log",
        "stderr_logfile": "logs/err.log",
        "logfile_maxbytes": 50 * 1024 * 1024,
        "logfile_backups": 3,
        "logfile_rotate_daily": True,
    }


def test_uid_given_by_name_stays_a_string() -> None:
    assert bodies("[process:a]\ncmd = x\nuid = root\ngid = root\n")["a"]["uid"] == "root"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2 1. 7. 5", {"attempts": 2, "window": 1.0, "retry_in": 7.0, "max_retry": 5}),
        ("2, 1., 7., 5", {"attempts": 2, "window": 1.0, "retry_in": 7.0, "max_retry": 5}),
        ("2,1.5,7,5.0", {"attempts": 2, "window": 1.5, "retry_in": 7.0, "max_retry": 5}),
        ("3", {"attempts": 3}),
        ("3 0.5", {"attempts": 3, "window": 0.5}),
    ],
)
def test_flapping_forms(value: str, expected: dict[str, object]) -> None:
    flapping = bodies(f"[process:a]\ncmd = x\nflapping = {value}\n")["a"]["flapping"]
    assert flapping == expected
    assert all(type(flapping[k]) is int for k in ("attempts", "max_retry") if k in flapping)


@pytest.mark.parametrize("word", ["1", "yes", "true", "on", "YES", "True"])
def test_true_words(word: str) -> None:
    assert bodies(f"[process:a]\ncmd = x\nshell = {word}\n")["a"]["shell"] is True


@pytest.mark.parametrize("word", ["0", "no", "false", "off", "Off"])
def test_false_words(word: str) -> None:
    assert bodies(f"[process:a]\ncmd = x\nstart = {word}\n")["a"]["start"] is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [("stdout, stderr", ["stdout", "stderr"]), ("out", ["out"]), ("o ,o", ["o", "o"]), ("", [])],
)
def test_redirect_output_is_trimmed(value: str, expected: list[str]) -> None:
    assert bodies(f"[process:a]\ncmd = x\nredirect_output = {value}\n")["a"]["redirect_output"] == (
        expected
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("1024", 1024), ("2kb", 2048), ("3 MB", 3 << 20), ("1GB", 1 << 30)]
)
def test_sizes_accept_suffixes(value: str, expected: int) -> None:
    body = bodies(f"[process:a]\ncmd = x\nlogfile_maxbytes = {value}\n")["a"]
    assert body["logfile_maxbytes"] == expected


def test_default_section_applies_process_keys_only() -> None:
    config = parse(
        """
[DEFAULT]
numprocesses = 2
bind = 127.0.0.1:6000

[gaffer]
http_endpoints = main

[endpoint:main]

[process:a]
cmd = x
[process:b]
cmd = y
numprocesses = 5
"""
    )
    assert {p.name: p.body["numprocesses"] for p in config.processes} == {"a": 2, "b": 5}
    assert "bind" not in config.processes[0].body
    assert config.endpoints[0].addresses == [Address("tcp", "127.0.0.1", 6000, "")]


def test_default_cmd_gives_every_process_section_a_cmd() -> None:
    assert set(bodies("[DEFAULT]\ncmd = x\n[process:a]\n[process:b]\n")) == {"a", "b"}


def test_interpolation_is_off_and_inline_comments_are_stripped() -> None:
    body = bodies(
        "[process:a]\ncmd = echo %(x)s $HOME\nargs = 100%\n"
        "stdout_logfile = a;b.log ; only the spaced ; starts a comment\n"
        "numprocesses = 2 # two\ngraceful_timeout = 3 ; seconds\n"
        "redirect_output = out,\n  err  ; a comment on a continuation line\n"
    )["a"]
    assert body["cmd"] == "echo %(x)s $HOME"
    assert body["args"] == "100%"
    assert body["stdout_logfile"] == "a;b.log"
    assert (body["numprocesses"], body["graceful_timeout"]) == (2, 3.0)
    assert body["redirect_output"] == ["out", "err"]


def test_cmd_and_args_keep_semicolons_and_hashes() -> None:
    """Issue 13: ``args = -c 'a ; b'`` was cut at `` ;``, taken as an inline comment."""
    text = (
        "[DEFAULT]\nargs = -c 'echo default ; echo # too'\n"
        "[process:a]\ncmd = sh\nargs = -c 'echo a ; echo b # not a comment'\n"
        "[process:b]\ncmd = sh -c 'true ; true' # all of it is the command\n"
        "[process:c]\ncmd = sh\n"
        "[env:a]\nX = 1 ; a comment, as in the spec's example\n"
    )
    result = bodies(text)
    assert result["a"]["args"] == "-c 'echo a ; echo b # not a comment'"
    assert result["b"]["cmd"] == "sh -c 'true ; true' # all of it is the command"
    assert result["c"]["args"] == "-c 'echo default ; echo # too'"  # from [DEFAULT]
    assert result["a"]["env"] == {"X": "1"}
    template = ProcessTemplate.from_json(result["a"])
    assert template.argv(template.child_env())[1:] == ["-c", "echo a ; echo b # not a comment"]


def test_a_value_that_is_only_a_comment_is_empty() -> None:
    config = parse("[gaffer]\nhttp_endpoints = ; none yet\n[process:a]\ncmd = true\n")
    assert config.endpoints == []


# -- env sections ----------------------------------------------------------------


def test_env_section_upper_cases_keys_and_replaces_env() -> None:
    result = bodies(
        """
[process:web:api]
cmd = x
[process:web]
cmd = y
[env:web:api]
Port = 80
db_url = postgres://h/db
[env:web]
"""
    )
    assert result["web:api"]["env"] == {"PORT": "80", "DB_URL": "postgres://h/db"}
    assert result["web"]["env"] == {}


def test_env_section_ignores_default_keys() -> None:
    result = bodies("[DEFAULT]\nnumprocesses = 2\n[process:a]\ncmd = x\n[env:a]\nk = v\n")
    assert result["a"]["env"] == {"K": "v"}


def test_env_for_unknown_template_is_an_error() -> None:
    err = error("[process:web]\ncmd = x\n[env:web:api]\nport = 1\n")
    assert str(err).startswith("gafferd.ini: [env:web:api]: ")
    assert err.section == "env:web:api"


def test_env_for_a_section_without_cmd_is_an_error() -> None:
    assert error("[process:a]\n[env:a]\nk = v\n").section == "env:a"


# -- webhooks and [gaffer] ------------------------------------------------------------


def test_webhooks_keep_file_order() -> None:
    config = parse(
        "[webhooks]\nproc.dummy.spawn = http://a/1\n. = http://a/all\ncreate = http://a/2\n"
    )
    assert config.webhooks == [
        ("proc.dummy.spawn", "http://a/1"),
        (".", "http://a/all"),
        ("create", "http://a/2"),
    ]


def test_webhooks_ignore_default_keys() -> None:
    assert parse("[DEFAULT]\nnumprocesses = 2\n[webhooks]\ncreate = http://x\n").webhooks == [
        ("create", "http://x")
    ]


# -- signed webhooks: event = URL [secret_file=PATH | secret_env=NAME | secret=VALUE] ------

KEY = "k3y-Zx9-do-not-leak"


def test_webhook_secrets_from_a_file_an_env_var_or_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hook.key").write_text(f"  {KEY}\n")  # whitespace around is ignored
    monkeypatch.setenv("HOOK_SECRET", "from-env")
    ini = tmp_path / "gafferd.ini"
    ini.write_text(
        "[webhooks]\n"
        "proc.web.exit = http://h/file   secret_file=keys/hook.key\n"  # relative to the ini
        "create = http://h/env secret_env=HOOK_SECRET\n"
        "delete = http://h/inline secret=inline-one\n"
        "update = http://h/file secret_file=" + str(tmp_path / "keys" / "hook.key") + "\n"
        ". = http://h/plain\n"
    )
    config = load_config(str(ini))
    assert config.webhooks == [
        ("proc.web.exit", "http://h/file"),
        ("create", "http://h/env"),
        ("delete", "http://h/inline"),
        ("update", "http://h/file"),
        (".", "http://h/plain"),
    ]
    assert config.webhook_secrets == {
        "http://h/file": Secret(KEY.encode()),
        "http://h/env": Secret(b"from-env"),
        "http://h/inline": Secret(b"inline-one"),
    }
    assert KEY not in repr(config) and "inline-one" not in repr(config)


def test_unsigned_webhook_lines_keep_their_meaning() -> None:
    config = parse("[webhooks]\ncreate =   http://x/hook?a=b&c=d  \n")
    assert config.webhooks == [("create", "http://x/hook?a=b&c=d")]
    assert config.webhook_secrets == {}


def test_secret_file_of_an_included_file_is_relative_to_that_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "hook.key").write_text(KEY)
    (tmp_path / "conf.d" / "hooks.ini").write_text(
        "[webhooks]\ncreate = http://h/1 secret_file=hook.key\n"
    )
    (tmp_path / "gafferd.ini").write_text("[gaffer]\ninclude_dir = conf.d\n")
    config = load_config(str(tmp_path / "gafferd.ini"))
    assert config.webhook_secrets == {"http://h/1": Secret(KEY.encode())}


def webhook_error(tmp_path: Path, line: str) -> ConfigError:
    ini = tmp_path / "gafferd.ini"
    ini.write_text(f"[process:a]\ncmd = a\n[webhooks]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(ini))
    return info.value


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("create = http://h secret_file=missing.key", "secret_file '{d}/missing.key' cannot be "
         "read: No such file or directory"),
        ("create = http://h secret_file=empty.key", "secret_file '{d}/empty.key' is empty"),
        ("create = http://h secret_file=blank.key", "secret_file '{d}/blank.key' is empty"),
        ("create = http://h secret_file=big.key", "secret_file '{d}/big.key' is longer than 4096"),
        ("create = http://h secret_file=.", "secret_file '{d}/.' is not a regular file"),
        ("create = http://h secret_file=", "secret_file= is empty"),
        ("create = http://h secret_env=NO_SUCH_VAR_HERE", "secret_env: the environment variable "
         "'NO_SUCH_VAR_HERE' is not set"),
        ("create = http://h secret_env=EMPTY_HOOK_SECRET", "secret_env 'EMPTY_HOOK_SECRET' is "
         "empty"),
        ("create = http://h secret=", "secret= is empty"),
        (f"create = secret={KEY}", "needs a URL"),  # the secret must not become the URL
        (f"create = http://h secret={KEY} secret=b", "takes at most one of secret_file=PATH"),
        (f"create = http://h {KEY}", "after the URL, expected one of secret_file=PATH"),
        (f"create = http://h token={KEY}", "after the URL, expected one of secret_file=PATH"),
        (f"create = http://h secret=a\nexit = http://h secret={KEY}",
         "the same URL as 'create' needs the same secret (or none on both)"),
        (f"create = http://h\nexit = http://h secret={KEY}", "the same URL as 'create' needs"),
    ],
)  # fmt: skip
def test_webhook_secret_mistakes_name_section_and_key_and_never_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, message: str
) -> None:
    (tmp_path / "empty.key").write_bytes(b"")
    (tmp_path / "blank.key").write_bytes(b" \n\t\n")
    (tmp_path / "big.key").write_bytes(b"k" * 4097)
    monkeypatch.setenv("EMPTY_HOOK_SECRET", "")
    err = webhook_error(tmp_path, line)
    key = line.splitlines()[-1].split(" = ")[0]
    assert (err.path, err.section, err.key) == (str(tmp_path / "gafferd.ini"), "webhooks", key)
    where = f"{tmp_path}/gafferd.ini: [webhooks] {key}: "
    assert str(err).startswith(where + message.format(d=tmp_path))
    assert KEY not in str(err)


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    key = tmp_path / "hook.key"
    key.write_text(KEY)
    key.chmod(0)
    if os.access(key, os.R_OK):
        pytest.skip("running as root: mode 0 does not stop reading")
    err = webhook_error(tmp_path, "create = http://h secret_file=hook.key")
    assert str(err) == (
        f"{tmp_path}/gafferd.ini: [webhooks] create: "
        f"secret_file '{key}' cannot be read: Permission denied"
    )


def test_a_fifo_as_secret_file_fails_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "hook.key")  # nobody writes it: a blocking read would hang
    err = webhook_error(tmp_path, "create = http://h secret_file=hook.key")
    assert str(err).endswith("is not a regular file")


def test_gaffer_keys() -> None:
    config = parse(
        """
[gaffer]
cors_origins = http://a.example, https://b.example
stream_buffer_size = 64KB
stdin_max_body = 2048
stdin_queue_size = 1MB
log_dir = /var/log/gaffer
plugins_dir = /opt/plugins
"""
    )
    assert config.cors_origins == ["http://a.example", "https://b.example"]
    assert config.stream_buffer_size == 65536
    assert config.stdin_max_body == 2048
    assert config.stdin_queue_size == 1 << 20
    assert config.log_dir == "/var/log/gaffer"
    assert config.plugins_dir == "/opt/plugins"


@pytest.mark.parametrize("value", ["*", "http://a, *"])
def test_cors_any_origin(value: str) -> None:
    assert parse(f"[gaffer]\ncors_origins = {value}\n").cors_origins == ["*"]


def test_cors_not_set() -> None:
    assert parse("[gaffer]\ncors_origins =\n").cors_origins is None


# -- addresses and endpoints --------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected", "text"),
    [
        ("127.0.0.1:5000", Address("tcp", "127.0.0.1", 5000, ""), "127.0.0.1:5000"),
        ("LocalHost:80", Address("tcp", "localhost", 80, ""), "localhost:80"),
        ("example.org", Address("tcp", "example.org", 8000, ""), "example.org:8000"),
        ("0.0.0.0:5000", Address("tcp", "0.0.0.0", 5000, ""), "0.0.0.0:5000"),
        ("[::1]:5000", Address("tcp6", "::1", 5000, ""), "[::1]:5000"),
        ("[::]", Address("tcp6", "::", 8000, ""), "[::]:8000"),
        ("unix:/tmp/g.sock", Address("unix", "", 0, "/tmp/g.sock"), "unix:/tmp/g.sock"),
        (" 10.0.0.1:1 ", Address("tcp", "10.0.0.1", 1, ""), "10.0.0.1:1"),
    ],
)
def test_parse_address(uri: str, expected: Address, text: str) -> None:
    assert parse_address(uri) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    "uri",
    ["host:http", "host:", "host:99999", "host:-1", "::1", "[::1", "[::1]x", "[nope]:1", "unix:"],
)
def test_parse_address_refuses(uri: str) -> None:
    with pytest.raises(ValueError):
        parse_address(uri)


@pytest.mark.parametrize("uri", ["", ":5000", " :80 ", "[]:5000"])
def test_an_empty_host_is_an_error_not_every_interface(uri: str) -> None:
    """gaffer 0.4 read ``:8000`` as 0.0.0.0: a network-wide API nobody asked for."""
    with pytest.raises(ValueError, match=r"127\.0\.0\.1|IPv6"):
        parse_address(uri)


def test_endpoints_listed_in_order_with_their_options() -> None:
    config = parse(
        """
[gaffer]
http_endpoints = tls, local, nobind

[endpoint:local]
bind = unix:/tmp/gaffer.sock, [::1]:5001, example.org

[endpoint:tls]
bind = 0.0.0.0:443
certfile = /etc/cert.pem
keyfile = /etc/key.pem
backlog = 1024

[endpoint:nobind]
backlog = 5

[endpoint:unlisted]
bind = 127.0.0.1:1
"""
    )
    assert config.endpoints == [
        EndpointConfig(
            "tls", [Address("tcp", "0.0.0.0", 443, "")], "/etc/cert.pem", "/etc/key.pem", 1024
        ),
        EndpointConfig(
            "local",
            [
                Address("unix", "", 0, "/tmp/gaffer.sock"),
                Address("tcp6", "::1", 5001, ""),
                Address("tcp", "example.org", 8000, ""),
            ],
        ),
    ]


def test_connection_limits_have_defaults_and_can_be_set() -> None:
    assert parse("").connections == ConnectionLimits(10.0, 60.0, 10_000, 20.0, 60.0)
    config = parse(
        "[gaffer]\nheader_timeout = 2.5\nkeepalive_timeout = 5\nmax_connections = 50\n"
        "websocket_ping_interval = 1\nwebsocket_idle_timeout = 3\n"
    )
    assert config.connections == ConnectionLimits(2.5, 5.0, 50, 1.0, 3.0)


# -- include / include_dir ---------------------------------------------------------------


def test_include_and_include_dir_merge_later_files_win(tmp_path: Path) -> None:
    (tmp_path / "conf.d" / "sub").mkdir(parents=True)
    (tmp_path / "extra.ini").write_text(
        "[process:a]\nnumprocesses = 3\n[process:b]\ncmd = b\npriority = 1\n"
    )
    (tmp_path / "conf.d" / "z.ini").write_text("[process:c]\ncmd = c\npriority = 0\n")
    (tmp_path / "conf.d" / "sub" / "d.ini").write_text("[webhooks]\nexit = http://h/d\n")
    (tmp_path / "conf.d" / "ignored.conf").write_text("[process:nope]\ncmd = x\n")
    main = tmp_path / "gafferd.ini"
    main.write_text(
        "[gaffer]\ninclude = extra.ini\ninclude_dir = conf.d\n"
        "[process:a]\ncmd = a\nnumprocesses = 1\n[webhooks]\ncreate = http://h/main\n"
    )

    config = load_config(str(main))

    assert config.path == str(main)
    assert [p.name for p in config.processes] == ["c", "b", "a"]
    assert config.processes[2].body["numprocesses"] == 3
    assert config.webhooks == [("create", "http://h/main"), ("exit", "http://h/d")]


def test_parse_config_does_not_follow_includes() -> None:
    assert parse("[gaffer]\ninclude = /nonexistent.ini\ninclude_dir = /nope\n").processes == []


def test_include_dir_holding_the_main_file_reads_it_once(tmp_path: Path) -> None:
    main = tmp_path / "main.ini"
    main.write_text("[gaffer]\ninclude_dir = .\n[process:a]\ncmd = a\n")
    (tmp_path / "more.ini").write_text("[process:b]\ncmd = b\n")
    assert [p.name for p in load_config(str(main)).processes] == ["a", "b"]


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "bad.ini").write_text("[process:a]\nnumprocesses = many\n")
    main = tmp_path / "main.ini"
    main.write_text("[gaffer]\ninclude = bad.ini\n[process:a]\ncmd = a\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(main))
    assert str(info.value) == (
        f"{tmp_path / 'bad.ini'}: [process:a] numprocesses: 'many' is not an integer"
    )


def test_missing_include_file_is_an_error(tmp_path: Path) -> None:
    main = tmp_path / "main.ini"
    main.write_text("[gaffer]\ninclude = gone.ini\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(main))
    assert info.value.path == str(tmp_path / "gone.ini")


def test_missing_include_dir_is_an_error(tmp_path: Path) -> None:
    main = tmp_path / "main.ini"
    main.write_text("[gaffer]\ninclude_dir = gone\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(main))
    assert str(info.value).startswith(f"{main}: [gaffer] include_dir: ")


# -- errors: each names file, section and key ------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.ini")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: cannot read the file")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.ini"
    path.write_bytes(b"[gaffer]\n\xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.path == str(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.ini"
    path.write_text("[gaffer]\n")
    path.chmod(0)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert "Permission denied" in str(info.value)


A = "[process:a]\ncmd = x\n"  # a valid process section to append a bad key to
E = "[gaffer]\nhttp_endpoints = e\n[endpoint:e]\n"  # a listed endpoint to fill in


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        # syntax
        ("cmd = x\n", "", "line 1: 'cmd = x' before any [section]"),
        (A + "[process:a]\n", "[process:a]", "line 3: section repeated"),
        (A + "CMD = y\n", "[process:a] cmd", "line 3: key repeated"),
        (A + "junk\n", "[process:a]", "line 3: cannot parse 'junk'"),
        # a duplicate template name once the section header is trimmed
        (A + "[process: a ]\ncmd = y\n", "[process:a]", "section repeated"),
        # unknown keys and sections
        (A + "numproc = 2\n", "[process:a] numproc", "unknown key"),
        ("[gaffer]\nhttp_endpoint = a\n", "[gaffer] http_endpoint", "unknown key"),
        ("[endpoint:e]\nbnd = x\n", "[endpoint:e] bnd", "unknown key"),
        ("[DEFAULT]\ncmnd = x\n", "[DEFAULT] cmnd", "unknown key"),
        ("[proces:a]\ncmd = x\n", "[proces:a]", "unknown section kind"),
        ("[gaffer:x]\n", "[gaffer:x]", "unknown section kind"),
        ("[default]\n", "[default]", "unknown section kind"),
        ("[process:]\ncmd = x\n", "[process:]", "[process:NAME] needs a name"),
        # bad values
        (A + "numprocesses = 1.5\n", "[process:a] numprocesses", "'1.5' is not an integer"),
        (A + "priority = high\n", "[process:a] priority", "'high' is not an integer"),
        (A + "graceful_timeout = soon\n", "[process:a] graceful_timeout", "'soon' is not a finite"),
        (A + "graceful_timeout = inf\n", "[process:a] graceful_timeout", "'inf' is not a finite"),
        (A + "shell = maybe\n", "[process:a] shell", "'maybe' is not a boolean"),
        (A + "logfile_maxbytes = 5TB\n", "[process:a] logfile_maxbytes", "'5TB' is not a size"),
        (A + "flapping = 1 2 3 4 5\n", "[process:a] flapping", "takes 1 to 4 numbers"),
        (A + "flapping =\n", "[process:a] flapping", "takes 1 to 4 numbers"),
        (A + "flapping = 2.5\n", "[process:a] flapping", "attempts must be a whole number"),
        (A + "flapping = 2 fast\n", "[process:a] flapping", "'fast' is not a finite number"),
        ("[DEFAULT]\nnumprocesses = x\n" + A, "[DEFAULT] numprocesses", "'x' is not an integer"),
        ("[gaffer]\nstdin_max_body = big\n", "[gaffer] stdin_max_body", "'big' is not a size"),
        ("[webhooks]\ncreate =\n", "[webhooks] create", "needs a URL"),
        # refused by ProcessTemplate.from_json, named by its field
        (A + "numprocesses = -1\n", "[process:a] numprocesses", "numprocesses must be between"),
        (A + "uid = no-such-user-here\n", "[process:a] uid", "unknown uid"),
        (A + "redirect_output = out,,err\n", "[process:a] redirect_output", "redirect_output"),
        (A + "args = 'unclosed\n", "[process:a] args", "args: "),
        ("[process:a]\ncmd = 'unclosed\n", "[process:a] cmd", "cmd: "),
        (A + "buffer_size = 10\n", "[process:a] buffer_size", "buffer_size must be"),
        ("[process:a.b]\ncmd = x\n", "[process:a.b]", "name 'a.b' must not contain '.'"),
        ("[process:123]\ncmd = x\n", "[process:123]", "name '123' must not be all digits"),
        # bounds (issue 12): confined log files, ASCII digits, finite numbers, the limits
        (A + "stdout_logfile = /etc/shadow\n", "[process:a] stdout_logfile", "stdout_logfile must"),
        (A + "stderr_logfile = ../x.log\n", "[process:a] stderr_logfile", "stderr_logfile must"),
        (
            A + "numprocesses = \u0661\u0662\n",
            "[process:a] numprocesses",
            "'\u0661\u0662' is not an",
        ),
        (A + "numprocesses = 1_0\n", "[process:a] numprocesses", "'1_0' is not an integer"),
        (A + "graceful_timeout = 1_0\n", "[process:a] graceful_timeout", "'1_0' is not a finite"),
        (A + "graceful_timeout = 1e308\n", "[process:a] graceful_timeout", "graceful_timeout must"),
        (A + "uid = \u00b2\n", "[process:a] uid", "unknown uid '\u00b2'"),
        (A + "gid = 18446744073709551616\n", "[process:a] gid", "gid must be an id from 0"),
        (A + "numprocesses = 1025\n", "[process:a] numprocesses", "numprocesses must be <= 1024"),
        (A + "buffer_size = 65MB\n", "[process:a] buffer_size", "buffer_size must be <= 67108864"),
        (
            "[gaffer]\nmax_processes = 2\n" + A + "numprocesses = 3\n",
            "[process:a] numprocesses",
            "numprocesses must be <= 2 (max_processes)",
        ),
        (
            "[gaffer]\nmax_total_processes = 3\n" + A + "numprocesses = 2\n"
            "[process:b]\ncmd = x\nnumprocesses = 2\n",
            "[process:b] numprocesses",
            "numprocesses 2 would make 4 processes in all",
        ),
        ("[gaffer]\nmax_processes = 0\n", "[gaffer] max_processes", "must be >= 1"),
        (
            "[gaffer]\nmax_total_processes = \u00b2\n",
            "[gaffer] max_total_processes",
            "'\u00b2' is not",
        ),
        ("[gaffer]\nmax_buffer_size = 10\n", "[gaffer] max_buffer_size", "must be >= 1024"),
        # backoff
        ("[gaffer]\nbackoff = 0\n", "[gaffer] backoff", "needs 0 < first delay <= max"),
        ("[gaffer]\nbackoff = 2 1\n", "[gaffer] backoff", "needs 0 < first delay <= max"),
        ("[gaffer]\nbackoff = nan\n", "[gaffer] backoff", "'nan' is not a finite number"),
        ("[gaffer]\nbackoff = 1 2 3 4 5\n", "[gaffer] backoff", "takes 1 to 4 numbers"),
        ("[gaffer]\nbackoff = 1 2 1e308\n", "[gaffer] backoff", "the reset time must be 0"),
        ("[gaffer]\nbackoff = 1 2 3 2.5\n", "[gaffer] backoff", "give_up_after must be a whole"),
        ("[gaffer]\nbackoff = 1 2 3 1001\n", "[gaffer] backoff", "give up after 0 (never)"),
        # endpoints
        ("[gaffer]\nhttp_endpoints = e\n", "[gaffer] http_endpoints", "lists 'e' but there is no"),
        (
            "[gaffer]\nhttp_endpoints = e,e\n[endpoint:e]\n",
            "[gaffer] http_endpoints",
            "lists 'e' twice",
        ),
        (E + "bind = a:1, host:http\n", "[endpoint:e] bind", "'http' is not a valid port"),
        (E + "bind = :1\n", "[endpoint:e] bind", "':1' has no host: write 127.0.0.1:1"),
        (E + "bind = h:1\nbacklog = x\n", "[endpoint:e] backlog", "'x' is not an integer"),
        (E + "bind = h:1\nbacklog = -1\n", "[endpoint:e] backlog", "must be >= 0"),
        (E + "bind = h:1\nkeyfile = k\n", "[endpoint:e] keyfile", "keyfile given without certfile"),
        # connection limits
        ("[gaffer]\nheader_timeout = 0\n", "[gaffer] header_timeout", "must be between"),
        ("[gaffer]\nkeepalive_timeout = nan\n", "[gaffer] keepalive_timeout", "'nan' is not a"),
        ("[gaffer]\nmax_connections = 0\n", "[gaffer] max_connections", "must be between 1"),
        (
            "[gaffer]\nmax_connections = 1e3\n",
            "[gaffer] max_connections",
            "'1e3' is not an integer",
        ),
        (
            "[gaffer]\nwebsocket_ping_interval = 30\nwebsocket_idle_timeout = 30\n",
            "[gaffer] websocket_idle_timeout",
            "must be longer than websocket_ping_interval",
        ),
    ],
)
def test_errors_name_file_section_and_key(text: str, where: str, message: str) -> None:
    expected = f"gafferd.ini: {where}: {message}" if where else f"gafferd.ini: {message}"
    assert str(error(text)).startswith(expected)


def test_process_limits_come_from_the_gaffer_section() -> None:
    assert parse("").limits == ProcessLimits(1024, 4096, 64 * 1024 * 1024)
    text = "[gaffer]\nmax_processes = 10\nmax_total_processes = 20\nmax_buffer_size = 2MB\n"
    assert parse(text).limits == ProcessLimits(10, 20, 2 * 1024 * 1024)


def test_backoff_comes_from_the_gaffer_section() -> None:
    assert parse("").backoff == BackoffConfig(0.1, 60.0, 10.0, 15)
    assert parse("[gaffer]\nbackoff = 0.5\n").backoff == BackoffConfig(first_delay=0.5)
    text = "[gaffer]\nbackoff = 1, 30, 5, 0  ; never give up\n"
    assert parse(text).backoff == BackoffConfig(1.0, 30.0, 5.0, 0)


def test_error_carries_its_location_as_attributes() -> None:
    err = error("[process:a]\ncmd = x\nnumprocesses = two\n")
    assert (err.path, err.section, err.key) == ("gafferd.ini", "process:a", "numprocesses")
    assert err.status == 400 and err.code == "bad_config"


@pytest.mark.parametrize(
    "text",
    [
        "[",
        "]\n",
        "[process:a]\n  indented = first\n",
        "[process:a]\ncmd\n",
        "[process:a]\n= x\n",
        "\x00",
        "[process:a]\ncmd = x\nflapping = , ,\n",
        "[process:a]\ncmd = x\nuid = 4294967296000\n",
        "[process:a]\ncmd = x\nnumprocesses = 99999999999999999999999\n",
        "[env:]\n",
        "[webhooks]\n[webhooks]\n",
    ],
)
def test_junk_only_ever_raises_config_error(text: str) -> None:
    """Junk is refused, and only ever as a ConfigError (any other exception fails the test)."""
    with pytest.raises(ConfigError):
        parse(text)


def test_process_keys_are_the_templates_keys() -> None:
    """One key table: every [process:NAME] key is one POST /processes takes, read the same way."""
    from gaffer_gevent.config import PROCESS_KEYS
    from gaffer_gevent.template import KNOWN_KEYS

    assert set(PROCESS_KEYS) <= KNOWN_KEYS
    assert KNOWN_KEYS - set(PROCESS_KEYS) == {"name", "env", "custom_streams", "group"}


@pytest.mark.parametrize("value", ["0", "2 -1", "2 1 7 -3"])
def test_flapping_out_of_bounds_is_refused_as_the_api_refuses_it(value: str) -> None:
    """One flapping parser: the ini form is checked by FlappingConfig's own rules."""
    from gaffer_gevent.errors import GafferError
    from gaffer_gevent.template import FlappingConfig

    names = ("attempts", "window", "retry_in", "max_retry")
    with pytest.raises(GafferError) as api:
        FlappingConfig.from_value(dict(zip(names, map(float, value.split()), strict=False)))
    assert api.value.message.removeprefix("flapping ") in str(
        error(f"[process:a]\ncmd = x\nflapping = {value}\n")
    )
