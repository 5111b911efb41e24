"""gafferctl: drive a running gafferd from a terminal (spec section 12).

Every command is one or two calls of ``gaffer_gevent.client.Client``; these
modules only parse arguments and shape output: the template and server
commands are here, the feeds (watch, tail, send) in ``feed_commands``, the
command table in ``commands``. Output is the spec's human form
(with its [R] fixes), or JSON with ``--json``. Exit codes: 0 ok, 1 the server
refused (its error on one line), 2 bad usage, 3 gafferd unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..client import DEFAULT_URL, Client, Status, signal_number
from . import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliParser,
    UsageError,
    add_colour_flags,
    add_global_options,
    feed_commands,  # noqa: F401  (registers watch, tail and send)
    option,
    run_command,
    wait,  # noqa: F401  (registers wait)
)
from .commands import COMMANDS, OK, Context, command
from .connection import CONNECTION_OPTIONS, connect

PROG = "gafferctl"

NAME = option("name", help="template name")

# -- templates ---------------------------------------------------------------


@command("processes", option("--running", action="store_true", help="list running pids instead"))
def processes(ctx: Context, args: argparse.Namespace) -> int:
    """List template names, one per line (--running: the running internal pids)."""
    ctx.emit(ctx.client.running() if args.running else ctx.client.processes())
    return EXIT_OK


def _template_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": args.name, "cmd": args.cmd}
    if args.args:
        body["args"] = args.args
    return body


START = option("--start", action="store_true", help="start the processes at once")
CMD = option("cmd", help="program to run (shell-lexed when no ARGS follow)")
ARGS = option(
    "args", nargs="*", default=[], help="arguments (put -- before ones that start with -)"
)


@command("add_process", START, NAME, CMD, ARGS)
def add_process(ctx: Context, args: argparse.Namespace) -> int:
    """Create a template (POST /processes); it is not started unless --start.

    Prints the template name.
    """
    ctx.client.create_process({**_template_body(args), "start": args.start})
    ctx.emit(args.name, {"ok": True, "name": args.name})
    return EXIT_OK


@command("load_process", START, option("file", help="JSON file with the template, or - for stdin"))
def load_process(ctx: Context, args: argparse.Namespace) -> int:
    """Create a template from a JSON object with at least name and cmd.

    The object is read from FILE or, with -, from stdin; it is not started
    unless --start (a "start" key in the file is overridden). Prints the name.
    """
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from exc
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{args.file} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or not body.get("name") or not body.get("cmd"):
        raise UsageError(f"{args.file} must hold a JSON object with 'name' and 'cmd'")
    ctx.client.create_process({**body, "start": args.start})
    ctx.emit(body["name"], {"ok": True, "name": body["name"]})
    return EXIT_OK


@command(
    "update_process",
    option("--no-start", dest="start", action="store_false", help="leave it stopped afterwards"),
    NAME,
    CMD,
    ARGS,
)
def update_process(ctx: Context, args: argparse.Namespace) -> int:
    """Change a template's command (PUT /processes/<name>); prints ok.

    Its other settings are kept (read first with GET). Its processes are
    stopped and new ones started with the new command, unless --no-start.
    """
    current = ctx.client.get_process(args.name)
    body = {k: v for k, v in current.items() if k not in ("name", "group", "args")}
    body.update(_template_body(args))
    del body["name"]
    if not args.start:
        body["start"] = False
    ctx.client.update_process(args.name, **body)
    ctx.emit("ok", OK)
    return EXIT_OK


@command("del_process", NAME)
def del_process(ctx: Context, args: argparse.Namespace) -> int:
    """Stop a template's processes and remove it."""
    ctx.client.remove_process(args.name)
    ctx.emit("ok", OK)
    return EXIT_OK


@command("get_process", NAME)
def get_process(ctx: Context, args: argparse.Namespace) -> int:
    """Show a template as stored, as JSON (indent 2, sorted keys)."""
    info = ctx.client.get_process(args.name)
    if ctx.as_json:
        ctx.emit(info)
    else:
        ctx.emit(json.dumps(info, indent=2, sort_keys=True))
    return EXIT_OK


def _simple(name: str, doc: str, call: Callable[[Client, str], None]) -> None:
    def handler(ctx: Context, args: argparse.Namespace) -> int:
        call(ctx.client, args.name)
        ctx.emit("ok", OK)
        return EXIT_OK

    handler.__doc__ = doc
    command(name, NAME)(handler)


_simple("start", "Start a template's processes (clears a previous stop).", Client.start_process)
_simple(
    "stop",
    "Stop all processes of a template (SIGTERM, SIGKILL after its timeout).",
    Client.stop_process,
)
_simple(
    "restart",
    "Start fresh processes for a template, then reap the old ones.",
    Client.restart_process,
)

COUNT = option("n", nargs="?", type=int, default=1, help="how many (default 1)")


@command("add", NAME, COUNT)
def add(ctx: Context, args: argparse.Namespace) -> int:
    """Run N more processes of a template; prints the new numprocesses."""
    value = ctx.client.add(args.name, args.n)
    ctx.emit(value, {"ok": True, "numprocesses": value})
    return EXIT_OK


@command("sub", NAME, COUNT)
def sub(ctx: Context, args: argparse.Namespace) -> int:
    """Run N fewer processes of a template (oldest first); prints the new numprocesses."""
    value = ctx.client.sub(args.name, args.n)
    ctx.emit(value, {"ok": True, "numprocesses": value})
    return EXIT_OK


@command("status", NAME)
def status(ctx: Context, args: argparse.Namespace) -> int:
    """Print "active" (running), "stopped", "backoff" (a crash loop waits to respawn) or
    "failed" (given up: start or restart retries), with the restart count once there is one."""
    info = ctx.client.status(args.name)
    ctx.emit(describe_status(info), info)
    return EXIT_OK


def describe_status(info: Status) -> str:
    """``active`` / ``stopped`` as gaffer 0.4 printed, or ``backoff, 6 restarts, next in 3.2 s``."""
    state = info.get("state") or ("running" if info["active"] else "stopped")
    words = ["active" if state == "running" else state]
    restarts = info.get("restarts") or 0
    if restarts:
        words.append(f"{restarts} restart{'s' if restarts != 1 else ''}")
    retry_in = info.get("retry_in")
    if state == "backoff" and retry_in is not None:
        words.append(f"next in {retry_in:.1f} s")
    text = ", ".join(words)
    return text + ": start or restart it to try again" if state == "failed" else text


@command("numprocesses", NAME)
def numprocesses(ctx: Context, args: argparse.Namespace) -> int:
    """Print how many processes a template is meant to run."""
    info = ctx.client.status(args.name)
    ctx.emit(info["max_processes"], info)
    return EXIT_OK


@command("running", NAME)
def running(ctx: Context, args: argparse.Namespace) -> int:
    """Print how many processes of a template are running now."""
    info = ctx.client.status(args.name)
    ctx.emit(info["running"], info)
    return EXIT_OK


@command("pids", NAME)
def pids(ctx: Context, args: argparse.Namespace) -> int:
    """List the internal pids of a template's running processes, oldest first."""
    ctx.emit(ctx.client.pids(args.name))
    return EXIT_OK


@command(
    "kill",
    option("target", metavar="name_or_pid", help="template name, or internal pid"),
    option("signal", help="number or name: 15, TERM, SIGTERM, hup"),
)
def kill(ctx: Context, args: argparse.Namespace) -> int:
    """Send a signal to every process of a template, or to one internal pid."""
    try:
        number = signal_number(args.signal)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    ctx.client.send_signal(args.target, number)
    ctx.emit("ok", OK)
    return EXIT_OK


@command(
    "logs",
    NAME,
    option("label", nargs="?", default="stdout", help="output label (default stdout)"),
    option("-n", "--lines", type=int, metavar="N", help="only the last N lines"),
)
def logs(ctx: Context, args: argparse.Namespace) -> int:
    """Print a template's log file history (needs stdout_logfile/stderr_logfile)."""
    data = ctx.client.logs(args.name, args.label, tail=args.lines)
    if ctx.as_json:
        ctx.emit(
            None, {"name": args.name, "label": args.label, "data": data.decode("utf-8", "replace")}
        )
    else:
        ctx.out.buffer.write(data)
        ctx.out.flush()
    return EXIT_OK


@command("rotate", NAME)
def rotate(ctx: Context, args: argparse.Namespace) -> int:
    """Rotate a template's log files now."""
    ctx.emit("ok", ctx.client.rotate_logs(args.name))
    return EXIT_OK


@command("version")
def version(ctx: Context, args: argparse.Namespace) -> int:
    """Print the version gafferd reports: "gaffer (version X)"."""
    value = ctx.client.version()
    ctx.emit(f"gaffer (version {value})", {"version": value})
    return EXIT_OK


@command("whoami")
def whoami(ctx: Context, args: argparse.Namespace) -> int:
    """Print the name, role and scope of the token in use: "NAME ROLE SCOPE".

    SCOPE is the token's template globs joined by commas, "*" when it has no
    limit; a nameless identity (no auth configured) prints "-" as NAME.
    """
    info = ctx.client.whoami()
    scope = info.get("scope")
    if isinstance(scope, list):
        scope = ",".join(str(glob) for glob in scope)
    fields = (info.get("name") or "-", info.get("role") or "-", scope or "*")
    ctx.emit(" ".join(str(field) for field in fields), info)
    return EXIT_OK


@command("health")
def health(ctx: Context, args: argparse.Namespace) -> int:
    """Print gafferd's health ("ok"); needs no token, exit 1 if gafferd answers unhealthy."""
    info = ctx.client.health()
    ctx.emit(info.get("status", "ok"), info)
    return EXIT_OK


# -- parsing -----------------------------------------------------------------

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


#: Options that take a value (``--connect URL``): the token after one is not a command.
_TAKES_VALUE = {
    flag
    for flags, settings in GLOBAL_OPTIONS
    for flag in flags
    if settings.get("action") in (None, "store")
}


def command_named_in(argv: list[str]) -> str | None:
    """The command ``argv`` runs, when it is one of ``COMMANDS`` (not ``help``), else None."""
    after_option = False
    for token in argv:
        if after_option:
            after_option = False
        elif token == "--":
            return None
        elif token.startswith("-"):
            after_option = token in _TAKES_VALUE
        else:
            return token if token in COMMANDS else None
    return None


def build_parser(
    only: str | None = None,
) -> tuple[CliParser, dict[str, argparse.ArgumentParser]]:
    """The root parser and one sub-parser per command (for ``help <command>``).

    With ``only``, the sub-parser of that one command: a command run does not pay
    for building the other two dozen (argparse looks up translations for each).
    """
    listing = "\n".join(f"  {name:<15} {COMMANDS[name].summary}" for name in sorted(COMMANDS))
    parser = CliParser(
        prog=PROG,
        description="Control a running gafferd over its HTTP API.",
        epilog=f"commands:\n{listing}\n  {'help':<15} Show the description of a command.\n\n"
        "exit codes: 0 ok, 1 refused by gafferd, 2 bad usage, 3 gafferd unreachable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, GLOBAL_OPTIONS, top=True)
    parser.add_argument(
        "-v", "--version", action="version", version=f"{PROG} (version {__version__})"
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="<command>", help="one of the commands below"
    )
    by_name: dict[str, argparse.ArgumentParser] = {}
    for cmd in COMMANDS.values():
        if only is not None and cmd.name != only:
            continue
        sub = subparsers.add_parser(
            cmd.name,
            description=cmd.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for flags, options in cmd.arguments:
            sub.add_argument(*flags, **options)
        if cmd.name == "watch":
            add_colour_flags(sub)
        add_global_options(sub, GLOBAL_OPTIONS, top=False)
        by_name[cmd.name] = sub
    help_parser = subparsers.add_parser("help", description="Show the description of a command.")
    help_parser.add_argument("topic", nargs="?", metavar="command")
    return parser, by_name


def run(args: argparse.Namespace) -> int:
    """Connect and run the parsed command; errors propagate to ``main``."""
    with connect(args.connect, args, timeout=args.timeout) as client:
        return COMMANDS[args.command].handler(Context(client, sys.stdout, args.json), args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gafferctl`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser, by_name = build_parser(only=command_named_in(argv))
    args = parser.parse_args(argv)

    def command() -> int:
        if args.command is None:
            sys.stderr.write(parser.format_help())
            return EXIT_USAGE
        if args.command == "help":
            if args.topic is None:
                sys.stdout.write(parser.format_help())
            elif args.topic in by_name:
                sys.stdout.write(by_name[args.topic].format_help())
            else:
                raise UsageError(f"unknown command {args.topic!r} (try '{PROG} help')")
            return EXIT_OK
        return run(args)

    # Ctrl-C is how watch and tail are meant to end.
    interrupted = EXIT_OK if args.command in ("watch", "tail") else EXIT_INTERRUPTED
    return run_command(PROG, command, interrupted=interrupted)


if __name__ == "__main__":
    sys.exit(main())
