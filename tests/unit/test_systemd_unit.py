"""``gafferd CONFIG --systemd-unit [PATH]``: the unit it writes, run as a real command."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from gaffer_gevent import systemd_unit
from gaffer_gevent.daemon import SHUTDOWN_TIMEOUT
from gaffer_gevent.runtime import runtime_dir_for
from tests.gafferd import GAFFERD
from tests.helpers import write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "my gaffer.ini", "[process:web]\ncmd = sleep 600\n")


def gafferd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GAFFERD, *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )  # fmt: skip


def parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_prints_a_notify_unit_that_runs_this_gafferd(config: Path, tmp_path: Path) -> None:
    result = gafferd(str(config), "--systemd-unit", "--watchdog", "30", "-v", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    unit = parse(result.stdout)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > SHUTDOWN_TIMEOUT
    assert service["Restart"] == "on-failure"
    assert service["WatchdogSec"] == "30"
    assert service["WorkingDirectory"] == str(tmp_path)
    expected_dir = os.path.basename(runtime_dir_for(None, str(config), "gafferd"))
    assert service["RuntimeDirectory"] == f"gaffer/{expected_dir}"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    argv = shlex.split(service["ExecStart"])  # systemd's quoting agrees with the shell's here
    assert os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK)
    assert argv[1:3] == ["-m", "gaffer_gevent"]
    assert argv[-1] == str(config) and os.path.isabs(argv[-1])
    assert "-v" in argv and "--systemd-unit" not in " ".join(argv)
    for line in result.stdout.splitlines():  # hardening stays a choice: commented out
        assert not line.startswith(("NoNewPrivileges", "ProtectSystem", "PrivateTmp"))


def test_writes_path_and_refuses_to_overwrite_without_force(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "gafferd.service"
    first = gafferd(str(config), "--systemd-unit", str(target))
    assert first.returncode == 0 and first.stdout == ""
    text = target.read_text()
    assert "Type=notify" in text
    target.write_text("mine\n")
    again = gafferd(str(config), "--systemd-unit", str(target))
    assert again.returncode == 2 and "--force" in again.stderr
    assert target.read_text() == "mine\n"
    forced = gafferd(str(config), "--systemd-unit", str(target), "--force")
    assert forced.returncode == 0
    assert target.read_text() == text


def test_never_writes_over_the_config(config: Path) -> None:
    before = config.read_text()
    result = gafferd("--systemd-unit", str(config))  # the config taken for PATH
    assert result.returncode == 2 and "needs the config file" in result.stderr
    result = gafferd(str(config), "--systemd-unit", str(config), "--force")
    assert result.returncode == 2 and "config file itself" in result.stderr
    assert config.read_text() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--daemon"], "drop --daemon"),
        (["--watchdog", "nan"], "--watchdog"),
        (["--watchdog", "0"], "--watchdog"),
        (["--watchdog", "1e12"], "--watchdog"),
    ],
)
def test_refused_flags(config: Path, args: list[str], message: str) -> None:
    result = gafferd(str(config), "--systemd-unit", *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_a_bad_config_writes_no_unit(tmp_path: Path) -> None:
    bad = write_config(tmp_path / "bad.ini", "[process:a]\ncmd = x\ncolour = red\n")
    target = tmp_path / "u.service"
    result = gafferd(str(bad), "--systemd-unit", str(target))
    assert result.returncode == 2 and "colour" in result.stderr
    assert not target.exists()


def test_a_configured_runtime_dir_gets_no_runtime_directory(tmp_path: Path) -> None:
    path = write_config(tmp_path / "g.ini", f"[gaffer]\nruntime_dir = {tmp_path}/rt\n")
    result = gafferd(str(path), "--systemd-unit")
    assert result.returncode == 0, result.stderr
    assert "RuntimeDirectory" not in parse(result.stdout)["Service"]


@pytest.mark.parametrize(
    ("arg", "word"),
    [
        ("/usr/bin/x", "/usr/bin/x"),
        ("/a b/c", '"/a b/c"'),
        ("50%", '"50%%"'),
        ("$HOME", '"$$HOME"'),
        ('say "hi" \\', '"say \\"hi\\" \\\\"'),
    ],
)
def test_quote(arg: str, word: str) -> None:
    assert systemd_unit.quote(arg) == word


def test_quote_refuses_a_newline() -> None:
    with pytest.raises(systemd_unit.UnitError):
        systemd_unit.quote("/a\nExecStartPre=/bin/evil")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_it(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "gafferd-test.service"
    odd = write_config(tmp_path / "50% $odd.ini", "[process:web]\ncmd = sleep 600\n")
    for path in (config, odd):
        result = gafferd(str(path), "--systemd-unit", str(target), "--force", "--watchdog", "1.5")
        assert result.returncode == 0, result.stderr
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=60
        )  # fmt: skip
        assert verify.returncode == 0, verify.stderr
        assert "gafferd-test.service" not in verify.stderr, verify.stderr


@pytest.mark.parametrize("flag", [["--force"], ["--watchdog", "5"]])
def test_unit_flags_without_systemd_unit_are_refused(config: Path, flag: list[str]) -> None:
    result = gafferd(str(config), *flag)
    assert result.returncode == 2 and "go with --systemd-unit" in result.stderr
