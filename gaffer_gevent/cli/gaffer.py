"""gaffer: run a Procfile app in the foreground, or manage it on a gafferd (spec 13).

This module is gaffer's command table (the same ``command_table.Cli`` as
gafferctl's): ``start``, ``run`` and ``export`` work locally (``app_local``),
``load``, ``unload``, ``scale`` and ``ps`` on a gafferd (``app_remote``). gevent
is patched here first, and only for ``start``, so the HTTP commands stay plain
programs around the typed client.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..defaults import DEFAULT_URL
from . import COLOUR_OPTIONS, option
from .command_table import Cli, Command
from .connection import CONNECTION_OPTIONS

PROG = "gaffer"

GLOBAL_OPTIONS = (
    option("-c", "--concurrency", action="append", metavar="NAME=N,...",
           help="processes per type, e.g. web=2,worker=3 (for run: a number)"),
    option("-e", "--env", action="append", metavar="FILE",
           help=".env file(s) loaded after <root>/.env (default: ./.env)"),
    option("-f", "--procfile", default="Procfile", help="Procfile name (default %(default)s)"),
    option("-d", "--directory", default=".", metavar="ROOT", help="application root"),
    option("--endpoint", default=DEFAULT_URL, metavar="URL", help="gafferd URL"),
    *CONNECTION_OPTIONS,
    *COLOUR_OPTIONS,
)  # fmt: skip

URL = option("url", nargs="?", help="gafferd URL (wins over --endpoint)")
WAIT = option(
    "--wait",
    action="store_true",
    help="return once the processes started (or exited); a spinner on a terminal",
)
GROUP = option("group", nargs="?", help="group on gafferd (default: the root's basename)")
COMMANDS = (
    Command("start", "app_local:cmd_start", (
        option("name", nargs="?", help="only this process type"),
        option("-t", "--timeout", type=float, default=10.0, metavar="SECONDS",
               help="graceful stop: SIGKILL after this (default %(default)s)"),
    )),
    Command("run", "app_local:cmd_run",
            (option("command", nargs=argparse.REMAINDER, help="command and arguments"),)),
    Command("load", "app_remote:cmd_load", (GROUP, URL, WAIT)),
    Command("unload", "app_remote:cmd_unload", (GROUP, URL)),
    Command("scale", "app_remote:cmd_scale", (option("ops", nargs="+", metavar="ARG",
            help="[GROUP] then NAME=N (set), NAME+N (add) or NAME-N (remove), ..."), WAIT)),
    Command("ps", "app_remote:cmd_ps", (GROUP,)),
    Command("export", "app_local:cmd_export", (
        option("format", choices=("ini", "json", "systemd")),
        option("target", nargs="*", default=[], metavar="ARG",
               help="ini: [FILE]; json: NAME [FILE]; systemd: DIRECTORY"),
        option("--settings", metavar="FILE", help="systemd: JSON of each type's depends_on, "
               "restart and readiness, as Requires=/After=, Restart= and Type="),
    )),
)  # fmt: skip

CLI = Cli(
    prog=PROG,
    description="Run a Procfile app in the foreground, or load it into gafferd.",
    exit_codes="exit codes: 0 ok, 1 failed or refused, 2 bad usage, 3 gafferd unreachable",
    commands=COMMANDS,
    global_options=GLOBAL_OPTIONS,
    version=__version__,
)


def run(command: Command, args: argparse.Namespace) -> int:
    """Run the parsed command; ``start`` patches gevent before its module is imported."""
    if command.name == "start":
        # Patch before the manager, httpx or ssl are imported, and only for start.
        from gevent import monkey

        monkey.patch_all()
    return command.load()(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gaffer`` console script; returns the exit code."""
    return CLI.main(argv, run)


if __name__ == "__main__":
    sys.exit(main())
