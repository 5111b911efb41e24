"""gafferctl: drive a running gafferd from a terminal (spec section 12).

This module is gafferctl's command table: each row names a command, its handler
(``"module:function"`` under ``cli/``, imported only when it runs) and its
arguments; ``command_table.Cli`` makes the parser and ``help`` from it. The
handlers live in ``commands/`` by area (templates, status, feeds, server).
Output is the spec's human form (with its [R] fixes), or JSON with ``--json``
before or after the command. Exit codes: 0 ok, 1 the server refused (its error
on one line), 2 bad usage, 3 gafferd unreachable.

Adding a command is one row: ``Command("name", "commands.area:function", (option(...),))``.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..defaults import DEFAULT_URL
from . import COLOUR_OPTIONS, option
from .command_table import Cli, Command
from .commands.status import describe_status as describe_status  # gafferctl's public helper
from .connection import CONNECTION_OPTIONS, connect

PROG = "gafferctl"

NAME = option("name", help="template name")
START = option("--start", action="store_true", help="start the processes at once")
CMD = option("cmd", help="program to run (shell-lexed when no ARGS follow)")
ARGS = option(
    "args", nargs="*", default=[], help="arguments (put -- before ones that start with -)"
)
COUNT = option("n", nargs="?", type=int, default=1, help="how many (default 1)")
WAIT = option(
    "--wait",
    action="store_true",
    help="return once it is done (processes exited or started); a spinner on a terminal",
)
HEARTBEAT = option(
    "--heartbeat", type=int, default=60, metavar="N", help="seconds between heartbeats (0: none)"
)

ADD_PROCESS_OPTIONS = (
    START,
    option("-n", "--numprocesses", type=int, metavar="N", help="how many processes (default 1)"),
    option("--env", action="append", default=[], metavar="KEY=VALUE",
           help="environment variable of the processes (repeatable)"),
    option("--cwd", metavar="DIR", help="working directory of the processes"),
    option("--redirect-input", action="store_true", help="accept stdin writes (gafferctl send)"),
    option("--no-output", action="store_true",
           help="do not capture stdout and stderr (then tail has nothing to show)"),
)  # fmt: skip

T = "commands.templates"
COMMANDS = (
    # templates
    Command("processes", f"{T}:processes",
            (option("--running", action="store_true", help="list running pids instead"),)),
    Command("add_process", f"{T}:add_process", (*ADD_PROCESS_OPTIONS, NAME, CMD, ARGS)),
    Command("load_process", f"{T}:load_process",
            (START, option("file", help="JSON file with the template, or - for stdin"))),
    Command("update_process", f"{T}:update_process", (
        option("--no-start", dest="start", action="store_false",
               help="leave it stopped afterwards"),
        NAME, CMD, ARGS,
    )),
    Command("del_process", f"{T}:del_process", (NAME,)),
    Command("get_process", f"{T}:get_process", (NAME,)),
    Command("start", f"{T}:start", (NAME,)),
    Command("stop", f"{T}:stop", (NAME, WAIT)),
    Command("restart", f"{T}:restart", (
        NAME, WAIT,
        option("--rolling", action="store_true",
               help="a few pids at a time, each old one stopped once its replacement is ready"),
        option("--max-unavailable", type=int, metavar="N", help="--rolling: pids at once (1)"),
        option("--ready-timeout", type=float, metavar="SECONDS",
               help="--rolling: a replacement not ready by then aborts the roll (30)"),
    )),
    Command("add", f"{T}:add", (NAME, COUNT, WAIT)),
    Command("sub", f"{T}:sub", (NAME, COUNT, WAIT)),
    Command("numprocesses", f"{T}:numprocesses", (NAME,)),
    Command("running", f"{T}:running", (NAME,)),
    Command("pids", f"{T}:pids", (NAME,)),
    Command("kill", f"{T}:kill", (
        option("target", metavar="name_or_pid", help="template name, or internal pid"),
        option("signal", help="number or name: 15, TERM, SIGTERM, hup"),
    )),
    Command("logs", f"{T}:logs", (
        NAME,
        option("label", nargs="?", default="stdout", help="output label (default stdout)"),
        option("-n", "--lines", type=int, metavar="N", help="only the last N lines"),
    )),
    Command("rotate", f"{T}:rotate", (NAME,)),
    # the table of every pid
    Command("status", "commands.status:status",
            (option("name", nargs="?", help="template name (default: the table of every pid)"),)),
    # feeds
    Command("watch", "commands.feeds:watch", (
        option("pattern", nargs="?", default=".",
               help="event pattern, e.g. proc.web (default: all)"),
        HEARTBEAT,
        *COLOUR_OPTIONS,
    ), ends_with_ctrl_c=True),
    Command("tail", "commands.feeds:tail", (
        option("pid", type=int, help="internal pid"),
        option("label", nargs="?",
               help="output label (default: the process's first, e.g. stdout)"),
        option("-n", "--lines", type=int, metavar="N", help="first show the last N lines kept"),
        option("--feed", choices=("continuous", "eventsource"), default="continuous",
               help="continuous: the exact output (default); eventsource: one line per chunk"),
        HEARTBEAT,
    ), ends_with_ctrl_c=True),
    Command("send", "commands.feeds:send", (
        option("pid", type=int, help="internal pid (its template needs redirect_input)"),
        option("data", nargs="?", help="text to send; without it, stdin is sent as-is"),
        option("-n", "--no-newline", action="store_true", help="do not add a newline after DATA"),
    )),
    # deploy scripts
    Command("wait", "wait:wait", (
        NAME,
        option("--ready", action="store_true", help="until every pid is ready (the default)"),
        option("--exited", action="store_true", help="until no pid runs (stopped, completed)"),
    )),
    # the live view
    Command("top", "commands.top:top", ends_with_ctrl_c=True),
    # gafferd itself
    Command("version", "commands.server:version"),
    Command("whoami", "commands.server:whoami"),
    Command("health", "commands.server:health"),
)  # fmt: skip

GLOBAL_OPTIONS = (
    option(
        "--connect",
        metavar="URL",
        default=DEFAULT_URL,
        help="gafferd: http://, https:// or unix:/path",
    ),
    *CONNECTION_OPTIONS,
    option("--timeout", type=float, default=30.0, metavar="SECONDS", help="wait for answers"),
    option("--json", action="store_true", default=False, help="machine-readable output"),
)

CLI = Cli(
    prog=PROG,
    description="Control a running gafferd over its HTTP API.",
    exit_codes="exit codes: 0 ok, 1 refused by gafferd, 2 bad usage, 3 gafferd unreachable",
    commands=COMMANDS,
    global_options=GLOBAL_OPTIONS,
    version=__version__,
    version_flags=("-v", "--version"),
)

command_named_in = CLI.command_named_in


def run(command: Command, args: argparse.Namespace) -> int:
    """Connect and run the parsed command; errors propagate to ``Cli.main``."""
    from .commands import Context

    handler = command.load()
    with connect(args.connect, args, timeout=args.timeout) as client:
        return handler(Context(client, sys.stdout, args.json), args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gafferctl`` console script; returns the exit code."""
    return CLI.main(argv, run)


if __name__ == "__main__":
    sys.exit(main())
