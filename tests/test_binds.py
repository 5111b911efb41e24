"""Where gafferd listens, and who may: safe binds, unix socket modes, `gafferd token`.

Issue 11 point 1: anyone who reaches the API can run any command as gafferd's
user, so without a token or required client certificates gafferd listens on
loopback only, unless told ``--allow-unauthenticated``; ``bind = :8000`` no
longer means every interface; unix sockets are not left to the umask.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaffer_gevent.auth import Role, TokenSpec, hash_token, parse_hash
from gaffer_gevent.config import Address, EndpointConfig, parse_config
from gaffer_gevent.daemon import Daemon, refusal
from gaffer_gevent.errors import BindError
from gaffer_gevent.server import is_loopback, listen

from .gafferd import GAFFERD, Gafferd
from .helpers import wait_for, write_config

TOKEN_SECTION = "[token:ci]\nrole = admin\nhash = {}\n".format(hash_token("x" * 43))


def run_gafferd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GAFFERD, *args], capture_output=True, text=True, timeout=30)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in result.stderr
    return lines[0]


# -- which addresses need authentication -------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind", "loopback"),
    [
        ("127.0.0.1", "tcp", True),
        ("127.0.0.53", "tcp", True),
        ("localhost", "tcp", True),
        ("::1", "tcp6", True),
        ("::ffff:127.0.0.1", "tcp6", True),
        ("0.0.0.0", "tcp", False),
        ("::", "tcp6", False),
        ("192.168.1.10", "tcp", False),
        ("10.0.0.1", "tcp", False),
        ("fe80::1", "tcp6", False),
        ("::ffff:10.0.0.1", "tcp6", False),
    ],
)
def test_is_loopback(host: str, kind: str, loopback: bool) -> None:
    assert is_loopback(Address(kind, host, 8000, "")) is loopback


def test_a_name_that_does_not_resolve_is_a_bind_error() -> None:
    with pytest.raises(BindError, match=r"cannot listen on no-such-host\.invalid:8000"):
        is_loopback(Address("tcp", "no-such-host.invalid", 8000, ""))


def exposed(ini: str, *endpoints: EndpointConfig) -> list[str]:
    return [str(a) for a in Daemon._exposed(parse_config(ini), list(endpoints))]


ANY = EndpointConfig("any", [Address("tcp", "0.0.0.0", 8000, ""), Address("tcp6", "::1", 1, "")])
UNIX = EndpointConfig("unix", [Address("unix", "", 0, "/run/g.sock")])
MTLS = EndpointConfig("mtls", [Address("tcp", "0.0.0.0", 443, "")], "c", "k", 128, "ca", "required")
OPTIONAL = EndpointConfig(
    "opt", [Address("tcp", "0.0.0.0", 443, "")], "c", "k", 128, "ca", "optional"
)


def test_exposure_rule_per_address() -> None:
    assert exposed("", ANY, UNIX) == ["0.0.0.0:8000"]
    assert exposed("", OPTIONAL) == ["0.0.0.0:443"]  # a certificate that may be left out
    assert exposed("", MTLS) == []  # fine on its own
    assert exposed("", MTLS, ANY) == ["0.0.0.0:8000"]
    assert exposed(TOKEN_SECTION, ANY) == []
    assert exposed("[client:alice]\nrole = read\n", ANY) == []


# -- gafferd refuses, warns, or starts ---------------------------------------------------


@pytest.mark.parametrize("bind", ["0.0.0.0:0", "[::]:0", "127.0.0.1:0,0.0.0.0:0"])
def test_unauthenticated_network_bind_exits_2_with_one_line_naming_the_fix(
    tmp_path: Path, bind: str
) -> None:
    config = write_config(tmp_path / "gaffer.ini", "")
    result = run_gafferd("--bind", bind, str(config))
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("gafferd: refusing to listen on ")
    assert ("0.0.0.0:0" in line or "[::]:0" in line) and "127.0.0.1" not in line
    for fix in ("[token:NAME]", "gafferd token NAME --role admin", "client_cert = required",
                "--allow-unauthenticated"):  # fmt: skip
        assert fix in line


def test_the_ini_endpoints_are_checked_too(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gaffer.ini",
        "[gaffer]\nhttp_endpoints = lan\n[endpoint:lan]\nbind = 0.0.0.0:0\n",
    )
    result = run_gafferd(str(config))
    assert result.returncode == 2
    assert one_line(result) == "gafferd: " + refusal([Address("tcp", "0.0.0.0", 0, "")])


def test_empty_bind_host_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gaffer.ini", "")
    result = run_gafferd("--bind", ":0", str(config))
    assert result.returncode == 2
    assert one_line(result) == (
        "gafferd: --bind: ':0' has no host: write 127.0.0.1:0 (this machine only) "
        "or 0.0.0.0:0 (every interface)"
    )


@pytest.mark.parametrize(
    ("ini", "flags"),
    [("", ["--allow-unauthenticated"]), ("[gaffer]\nallow_unauthenticated = true\n", [])],
)
def test_allow_unauthenticated_starts_with_a_warning(
    tmp_path: Path, ini: str, flags: list[str]
) -> None:
    config = write_config(tmp_path / "gaffer.ini", ini)
    gafferd = Gafferd(config, "--bind", "0.0.0.0:0", *flags)
    try:
        warning = [line for line in gafferd.stderr_lines if "WARNING" in line]
        assert len(warning) == 1
        assert "0.0.0.0:0 without authentication" in warning[0]
        assert gafferd.url.startswith("http://0.0.0.0:")
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_a_token_lets_gafferd_listen_on_the_network_without_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gaffer.ini", TOKEN_SECTION)
    gafferd = Gafferd(config, "--bind", "0.0.0.0:0")
    try:
        assert not [line for line in gafferd.stderr_lines if "WARNING" in line]
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_a_reload_that_removes_the_last_token_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gaffer.ini", TOKEN_SECTION)
    gafferd = Gafferd(config, "--bind", "0.0.0.0:0")
    try:
        write_config(config, "[process:added]\ncmd = sleep 600\n")
        seen = len(gafferd.log.lines)
        gafferd.proc.send_signal(signal.SIGHUP)
        line = gafferd.log_line(".", after=seen)  # the next line it writes
        assert line.startswith("gafferd: reload refused, keeping the running config: refusing")
        assert "added" not in gafferd.http.get("/processes").text
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_bind_error_names_the_address(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gaffer.ini", "")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_gafferd("--bind", f"127.0.0.1:{port}", str(config))
    assert result.returncode == 1
    assert one_line(result) == (
        f"gafferd: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"
    )


def test_command_line_bind_wins_over_the_ini_endpoints(tmp_path: Path) -> None:
    sock_path = tmp_path / "ini.sock"
    config = write_config(
        tmp_path / "gaffer.ini",
        f"[gaffer]\nhttp_endpoints = local\n[endpoint:local]\nbind = unix:{sock_path}\n",
    )
    gafferd = Gafferd(config)  # passes --bind 127.0.0.1:0
    try:
        assert gafferd.url.startswith("http://127.0.0.1:")
        assert gafferd.http.get("/ping").text == "OK"
        assert not sock_path.exists()
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


def test_tls_flags_without_bind_are_refused_when_the_ini_has_endpoints(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "gaffer.ini", "[gaffer]\nhttp_endpoints = e\n[endpoint:e]\nbind = 127.0.0.1:0\n"
    )
    result = run_gafferd("--certfile", "cert.pem", str(config))
    assert result.returncode == 2
    assert one_line(result) == "gafferd: --certfile: applies to --bind's endpoint: add --bind"


# -- unix sockets --------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.mark.parametrize("mode", [0o600, 0o660])
def test_unix_socket_is_created_with_socket_mode_whatever_the_umask(
    tmp_path: Path, permissive_umask: None, mode: int
) -> None:
    path = tmp_path / "g.sock"
    sock = listen(Address("unix", "", 0, str(path)), socket_mode=mode)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert os.umask(0) == 0  # given back as it was
    finally:
        sock.close()


def test_gafferd_unix_socket_defaults_to_0600(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "g.sock"
    config = write_config(tmp_path / "gaffer.ini", "")
    gafferd = Gafferd(config, bind=f"unix:{path}")
    try:
        assert [line.strip() for line in gafferd.stderr_lines] == [
            f"gafferd: listening on unix:{path}"
        ]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()


# -- gafferd token ---------------------------------------------------------------------------


def test_token_prints_a_token_and_a_section_that_accepts_it() -> None:
    result = run_gafferd("token", "ci-deploy", "--role", "Operate", "--scope", "web:*",
                         "--scope", "worker,batch:?")  # fmt: skip
    assert result.returncode == 0, result.stderr
    token, *section = result.stdout.splitlines()
    assert len(token) >= 43 and token.replace("-", "").replace("_", "").isalnum()
    assert section == [
        "[token:ci-deploy]",
        "role = operate",
        f"hash = {hash_token(token)}",
        "scope = web:*, worker, batch:?",
    ]
    config = parse_config("\n".join(section) + "\n")
    assert config.tokens == [
        TokenSpec("ci-deploy", Role.OPERATE, parse_hash(hash_token(token)),
                  ("web:*", "worker", "batch:?")),
    ]  # fmt: skip


def test_each_token_is_new_and_unscoped_by_default() -> None:
    first, second = (run_gafferd("token", "t", "--role", "read").stdout for _ in range(2))
    assert first.splitlines()[0] != second.splitlines()[0]
    assert [line for line in first.splitlines() if line.startswith("scope")] == []
    assert parse_config(first.partition("\n")[2]).tokens[0].scope == ()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ci", "--role", "boss"], "'boss' is not a role (read|stdin|operate|admin)"),
        (["a b", "--role", "read"], "'a b' is not a token name"),
        (["x]", "--role", "read"], "'x]' is not a token name"),
        (["-x", "--role", "read"], "required: name"),
        (["ci"], "the following arguments are required: --role"),
        (["ci\n[process:evil]", "--role", "read"], "is not a token name"),
        (["ci", "--role", "read", "--scope", "web\nhash = x"], "is not a scope glob"),
        (["ci", "--role", "read", "--scope", "a b"], "is not a scope glob"),
    ],
)
def test_token_refuses_bad_input_with_exit_2(args: list[str], message: str) -> None:
    result = run_gafferd("token", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result)
    assert line.startswith("gafferd token: ") and message in line


def test_token_loads_neither_gevent_nor_flask() -> None:
    code = (
        "import sys\n"
        "from gaffer_gevent.daemon import main\n"
        "assert main(['token', 'x', '--role', 'admin']) == 0\n"
        "print([m for m in ('gevent', 'flask', 'werkzeug', 'psutil') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.stdout.splitlines()[-1] == "[]", result.stderr


def test_gafferd_still_takes_a_config_path_and_flags(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gaffer.ini", "[process:one]\ncmd = sleep 600\n")
    gafferd = Gafferd(config)
    try:
        wait_for(lambda: gafferd.http.get("/processes").json() == ["one"])
        assert gafferd.stop() == 0
    finally:
        gafferd.cleanup()
