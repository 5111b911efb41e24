"""``gafferd CONFIG --systemd-unit [PATH]``: a systemd service unit that runs this gafferd.

The unit starts the interpreter that is running now (``sys.executable -m
gaffer_gevent``: the one whose site-packages hold this gafferd, venv or not) on
the absolute config path, with the flags given beside ``--systemd-unit``. Why
each line is there:

* ``Type=notify`` + ``NotifyAccess=main``: gafferd says ``READY=1`` once every
  endpoint listens and the config's processes were applied (``sdnotify``), so
  units ordered ``After=`` this one start when its API answers.
* ``ExecReload=/bin/kill -HUP $MAINPID``: SIGHUP is gafferd's reload; it answers
  ``RELOADING=1`` then ``READY=1``.
* ``KillMode=mixed``: SIGTERM goes to gafferd alone, which stops its children in
  order (dependents first, each with its graceful timeout); whatever is still in
  the cgroup afterwards (a grandchild that double-forked) gets SIGKILL.
* ``TimeoutStopSec`` above the daemon's ``SHUTDOWN_TIMEOUT``, so systemd never
  cuts a graceful stop short; ``Restart=on-failure`` but not after exit 2 (a bad
  config or flag: restarting cannot help).
* ``RuntimeDirectory=gaffer/<name>``: the very dir ``runtime.py`` picks for this
  config (``/run/gaffer/<name>`` for root, ``$XDG_RUNTIME_DIR/gaffer/<name>`` in a
  user manager), created for the service and removed after it; only this
  config's dir, so other gafferds' locks under ``/run/gaffer`` are never touched.
  Left out when the config sets ``runtime_dir`` itself.
* Hardening is written commented out: a process manager runs programs whose
  needs it cannot know (``sudo`` and ``ping`` need new privileges, an installer
  writes ``/usr``, a backup reads ``/home``), so each is the operator's choice.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

from .daemon import SHUTDOWN_TIMEOUT
from .options import EXIT_CONFIG

#: What systemd waits for a stop beyond gafferd's own shutdown timeout.
STOP_MARGIN = 15
#: ``--watchdog`` bounds, in seconds.
MIN_WATCHDOG, MAX_WATCHDOG = 1.0, 86_400.0
#: Said when a template sets uid/gid (people expect NoNewPrivileges to break that).
USER_SWITCH_NOTE = " (root switching a template's uid/gid is not affected)."
_PLAIN = re.compile(r"[A-Za-z0-9_./:,=@+-]+")


class UnitError(ValueError):
    """Something the unit cannot say (a newline in a path, ``--daemon``); exit 2."""


def quote(arg: str) -> str:
    """``arg`` as one word of ``ExecStart=``, with systemd's ``%`` specifiers and ``$`` escaped."""
    if any(ord(c) < 32 or ord(c) == 127 for c in arg):
        raise UnitError(f"{arg!r} has a control character, which a unit line cannot hold")
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(arg):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_line(args: argparse.Namespace, config_path: str) -> list[str]:
    """The gafferd command the unit runs: absolute interpreter and paths, the given flags."""
    if args.daemon:
        raise UnitError("Type=notify runs gafferd in the foreground: drop --daemon")
    executable = sys.executable
    if not executable or not os.path.isabs(executable):
        raise UnitError("cannot tell which Python interpreter runs gafferd (sys.executable)")
    argv = [executable, "-m", "gaffer_gevent"]
    if args.bind is not None:
        argv += ["--bind", args.bind]
    for flag in ("certfile", "keyfile", "ca_certs", "pidfile", "plugins_dir"):
        value = getattr(args, flag)
        if value:
            argv += ["--" + flag.replace("_", "-"), os.path.abspath(value)]
    if args.client_cert != "none":
        argv += ["--client-cert", args.client_cert]
    if args.backlog != 128:
        argv += ["--backlog", str(args.backlog)]
    if args.allow_unauthenticated:
        argv.append("--allow-unauthenticated")
    if args.verbose:
        argv.append("-" + "v" * args.verbose)
    return [*argv, os.path.abspath(config_path)]


def runtime_directory(config_path: str, configured: str | None) -> str | None:
    """``RuntimeDirectory=`` for gafferd's default runtime dir of this config, or None."""
    from .runtime import runtime_dir_for

    if configured:
        return None
    return "gaffer/" + os.path.basename(runtime_dir_for(None, config_path, "gafferd"))


def render(
    argv: list[str],
    *,
    config_path: str,
    working_directory: str,
    runtime_dir: str | None,
    watchdog: float | None = None,
    switches_user: bool = False,
) -> str:
    """The unit's text (pure: everything it says comes in as arguments)."""
    config = os.path.abspath(config_path)
    lines = [
        f"# Written by `gafferd {quote(config)} --systemd-unit`: runs gafferd with this config.",
        "[Unit]",
        f"Description=gaffer process manager ({_path(config)})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={' '.join(quote(arg) for arg in argv)}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        f"WorkingDirectory={_path(working_directory)}",
        "# gafferd stops its children itself; what remains in the cgroup then gets SIGKILL.",
        "KillMode=mixed",
        f"TimeoutStopSec={math.ceil(SHUTDOWN_TIMEOUT) + STOP_MARGIN}",
        "Restart=on-failure",
        "# Exit 2 is a bad config or flag: restarting cannot fix it.",
        "RestartPreventExitStatus=2",
    ]
    if watchdog is not None:
        lines.append(f"WatchdogSec={_seconds(watchdog)}")
    if runtime_dir is not None:
        lines += [
            "# gafferd's lock and record of running process groups (runtime.py's default dir).",
            f"RuntimeDirectory={runtime_dir}",
            "RuntimeDirectoryMode=0700",
        ]
    lines += [
        "# Hardening, off: the programs gafferd runs may need what each line takes away.",
        "# NoNewPrivileges=yes: breaks children that run sudo, su, ping or other setuid/setcap",
        "#   programs" + (USER_SWITCH_NOTE if switches_user else "."),
        "#NoNewPrivileges=yes",
        "# /usr, /boot and /etc read-only: breaks children that install or configure things.",
        "#ProtectSystem=full",
        "#ProtectHome=read-only",
        "# A private /tmp: hides a unix socket gafferd listens on there, and children's files.",
        "#PrivateTmp=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _path(path: str) -> str:
    """A path as a unit value that is not split into words: only ``%`` is special."""
    quote(path)  # refuses control characters
    return path.replace("%", "%%")


def _seconds(value: float) -> str:
    if not (math.isfinite(value) and MIN_WATCHDOG <= value <= MAX_WATCHDOG):
        raise UnitError(f"--watchdog takes seconds from {MIN_WATCHDOG:g} to {MAX_WATCHDOG:g}")
    return f"{value:g}" if value == int(value) else f"{math.ceil(value * 1000)}ms"


def write(path: str, text: str, *, force: bool) -> None:
    """Create ``path`` (0644); an existing file is refused unless ``force``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    flags |= os.O_TRUNC if force else os.O_EXCL
    fd = os.open(path, flags, 0o644)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)


def unit_main(args: argparse.Namespace, config_path: str | None) -> int:
    """``gafferd CONFIG --systemd-unit [PATH] [--force] [--watchdog S]``: 0 once written."""
    from .config import load_config
    from .errors import ConfigError

    def fail(message: str) -> int:
        print(f"gafferd --systemd-unit: {message}", file=sys.stderr)
        return EXIT_CONFIG

    if config_path is None:
        return fail("needs the config file the unit runs: gafferd CONFIG --systemd-unit [PATH]")
    target = args.systemd_unit
    if target != "-" and os.path.abspath(target) == os.path.abspath(config_path):
        return fail(f"{target} is the config file itself: write the unit elsewhere")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return fail(str(exc))
    switches = any("uid" in p.body or "gid" in p.body for p in config.processes)
    try:
        text = render(
            command_line(args, config_path), config_path=config_path,
            working_directory=os.getcwd(),
            runtime_dir=runtime_directory(config_path, config.runtime_dir),
            watchdog=args.watchdog, switches_user=switches,
        )  # fmt: skip
    except UnitError as exc:
        return fail(str(exc))
    if target == "-":
        sys.stdout.write(text)
        return 0
    try:
        write(target, text, force=args.force)
    except FileExistsError:
        return fail(f"{target} exists: add --force to replace it")
    except OSError as exc:
        return fail(f"cannot write {target}: {exc.strerror or exc}")
    print(f"wrote {target}", file=sys.stderr)
    return 0
