"""gaffer: run a Procfile app in the foreground, or manage it on a gafferd (spec 13).

``start`` runs an in-process Manager like foreman/honcho: gevent is patched
first, and only for that command, so the HTTP commands (``load``, ``unload``,
``scale``, ``ps``) stay plain programs around the typed client. ``run`` is a
plain subprocess with the app's environment and the terminal's stdio, so
interactive one-off commands (a shell, a migration) behave as if typed.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..defaults import DEFAULT_URL
from ..errors import GafferError
from ..limits import DEFAULT_MAX_PROCESSES, ascii_digits, ascii_int
from ..procfile import (
    ProcessType,
    ProcfileError,
    app_name,
    export_ini,
    export_json,
    export_systemd,
    merge_env,
    parse_concurrency,
    parse_env,
    parse_procfile,
    parse_scale_op,
    template_body,
)
from . import (
    EXIT_OK,
    EXIT_USAGE,
    CliParser,
    CommandFailed,
    Option,
    UsageError,
    add_colour_flags,
    add_global_options,
    option,
    run_command,
    want_colour,
)
from .connection import CONNECTION_OPTIONS, connect

if TYPE_CHECKING:
    from ..client import Client

PROG = "gaffer"
#: gaffer 0.4 tried ``g.0``, ``g.0.0``...; names may not contain dots here, so ``g-1``, ``g-2``.
LOAD_ATTEMPTS = 4


@dataclass
class App:
    """A Procfile app: where it lives, its process types and its environment."""

    root: str
    name: str
    ptypes: list[ProcessType]
    env: dict[str, str]
    concurrency: dict[str, int]

    def select(self, name: str | None) -> list[ProcessType]:
        if name is None:
            return self.ptypes
        found = [p for p in self.ptypes if p.name == name]
        if not found:
            raise UsageError(f"no process type {name!r} in the Procfile")
        return found

    def body(self, ptype: ProcessType, name: str) -> dict[str, Any]:
        count = self.concurrency.get(ptype.name, 1)
        return template_body(ptype, name=name, env=self.env, numprocesses=count, cwd=self.root)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_app(args: argparse.Namespace) -> App:
    """Procfile at ``<directory>/<procfile>``; its directory is the root (spec 13.1)."""
    path = os.path.join(args.directory, args.procfile)
    root = os.path.dirname(os.path.abspath(path))
    text = _read(path)
    if text is None:
        raise UsageError(f"no Procfile at {path}")
    try:
        ptypes = parse_procfile(text)
    except ProcfileError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    layers = [_read(os.path.join(root, ".env")) or ""]
    layers += [_read(env_file) or "" for env_file in args.env or [".env"]]
    env = merge_env(*(parse_env(text) for text in layers))
    return App(root, app_name(root), ptypes, env, parse_concurrency(args.concurrency or []))


def _client(args: argparse.Namespace) -> Client:
    """A client for the HTTP commands (``connect`` imports httpx and ssl only now)."""
    return connect(getattr(args, "url", None) or args.endpoint, args)


def _group(args: argparse.Namespace, app: App | None) -> str:
    group = getattr(args, "group", None)
    if group in (None, "."):
        return app.name if app is not None else app_name(args.directory)
    return str(group)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# -- commands ----------------------------------------------------------------


def cmd_start(args: argparse.Namespace) -> int:
    """Run the app's processes (or only NAME) in the foreground until Ctrl-C.

    Each output line is prefixed with the time and NAME.N; Ctrl-C, SIGTERM or
    SIGQUIT stops every process gracefully (SIGTERM, then SIGKILL after
    --timeout) and exits 0. If a process cannot be started, everything is
    stopped and the exit code is 1.
    """
    from ..template import ProcessTemplate
    from .foreground import run_foreground  # main() patched gevent before this import

    app = load_app(args)
    ptypes = app.select(args.name)
    try:
        templates = [
            ProcessTemplate.from_json({**app.body(p, p.name), "graceful_timeout": args.timeout})
            for p in ptypes
        ]
    except GafferError as exc:
        raise UsageError(f"Procfile: {exc.message}") from exc
    colour = want_colour(args.colour, sys.stdout)
    return run_foreground(
        templates, app.concurrency, colour=colour, out=sys.stdout, timeout=args.timeout
    )


def cmd_run(args: argparse.Namespace) -> int:
    """Run a one-off command with the app's environment, e.g. gaffer run python manage.py."""
    import signal

    app = load_app(args)
    counts = [ascii_int(c.strip()) for c in args.concurrency or [] if ascii_digits(c.strip())]
    count = counts[-1] if counts else 1
    if count is None or not 1 <= count <= DEFAULT_MAX_PROCESSES:
        raise UsageError(f"-c takes a count from 1 to {DEFAULT_MAX_PROCESSES}")
    env = {**os.environ, **app.env}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            children.append(subprocess.Popen(args.command, env=env))
    except OSError as exc:
        error = CommandFailed(f"cannot run {args.command[0]}: {exc.strerror or exc}")
        error.exit_code = 127  # what a shell answers for a command it cannot run
        raise error from exc

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, forward)
    codes = [child.wait() for child in children]
    failed = [code for code in codes if code != 0]
    code = failed[0] if failed else 0
    return 128 - code if code < 0 else code


def cmd_load(args: argparse.Namespace) -> int:
    """Create the app's processes on gafferd, grouped under the app name, and start them."""
    app = load_app(args)
    base = _group(args, app)
    with _client(args) as client:
        existing = set(client.groups())
        group = base
        for attempt in range(1, LOAD_ATTEMPTS + 2):
            if group not in existing:
                break
            if attempt > LOAD_ATTEMPTS:
                raise CommandFailed(f"'{base}' and {LOAD_ATTEMPTS} variants are already loaded")
            group = f"{base}-{attempt}"
        try:
            for ptype in app.ptypes:
                client.create_process({**app.body(ptype, f"{group}:{ptype.name}"), "start": True})
        except GafferError:
            _undo_load(client, group)
            raise
        _say(f"'{group}' has been loaded in {client.url}")
    return EXIT_OK


def _undo_load(client: Client, group: str) -> None:
    """A half-loaded app is worse than none: remove what was created."""
    with contextlib.suppress(GafferError):
        client.remove_group(group)


def cmd_unload(args: argparse.Namespace) -> int:
    """Stop and remove an app's processes from gafferd."""
    group = _group(args, None)
    with _client(args) as client:
        if group not in client.groups():
            raise CommandFailed(f"'{group}' not found")
        client.remove_group(group)
    _say(f"'{group}' unloaded")
    return EXIT_OK


def cmd_scale(args: argparse.Namespace) -> int:
    """Set (web=3), raise (web+1) or lower (web-1) the process counts of a loaded app."""
    app = load_app(args)
    words = list(args.ops)
    first = parse_scale_op(words[0])
    # The group comes first when there is more than one word and the first is not an
    # operation on a Procfile type ("shop-1" is a group loaded twice, not "shop" minus 1).
    is_group = first is None or first.name not in {p.name for p in app.ptypes}
    args.group = words.pop(0) if len(words) > 1 and is_group else None
    group = _group(args, app)
    ops = []
    for word in words:
        op = parse_scale_op(word)
        if op is None:
            raise UsageError(f"{word!r} is not NAME=N, NAME+N or NAME-N")
        app.select(op.name)
        ops.append(op)
    with _client(args) as client:
        for op in ops:
            name = f"{group}:{op.name}"
            sys.stdout.write(f"Scaling {op.name} processes... ")
            sys.stdout.flush()
            if op.op == "=":
                current = client.status(name)["max_processes"]
                diff = op.count - current
                change = client.add if diff > 0 else client.sub
                now = change(name, abs(diff)) if diff else current
            else:
                now = (client.add if op.op == "+" else client.sub)(name, op.count)
            _say(f"done, now running {now}")
    return EXIT_OK


def cmd_ps(args: argparse.Namespace) -> int:
    """Show the app's processes on gafferd: name, pid, os_pid, state, restarts, uptime, cpu, mem.

    A process type in a crash loop gets a row of its own saying ``backoff`` (a respawn
    waits) or ``failed`` (given up), with the type's restart count. UPTIME is the CPU
    time (M:SS.cc) when gafferd's stats carry no start time.
    """
    app = load_app(args)
    group = _group(args, app)
    rows = [("NAME", "PID", "OS_PID", "STATE", "RESTARTS", "UPTIME", "CPU", "MEM")]
    with _client(args) as client:
        names = set(client.get_group(group))
        for ptype in app.ptypes:
            name = f"{group}:{ptype.name}"
            if name not in names:
                continue
            procs = client.stats(name).get("stats") or []
            status = client.status(name)
            state = status.get("state") or "stopped"
            if not procs or state in ("backoff", "failed"):
                restarts = str(status.get("restarts", "-"))
                rows.append((ptype.name, "-", "-", state, restarts, "-", "-", "-"))
            for n, proc in enumerate(procs, 1):
                rows.append(
                    (
                        f"{ptype.name}.{n}",
                        str(proc.get("id", "-")),
                        str(proc.get("pid", "-")),
                        "running",
                        str(proc.get("restarts", "-")),
                        _uptime(proc),
                        _number(proc.get("cpu")),
                        _number(proc.get("mem")),
                    )
                )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        _say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _number(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else str(value or "-")


def _uptime(proc: dict[str, Any]) -> str:
    """Wall-clock age from ``started_at`` when gafferd reports it; else the CPU time
    (``ctime``), which is all gaffer 0.4's stats carry."""
    started = proc.get("started_at")
    if not isinstance(started, int | float):
        return str(proc.get("ctime", "-"))
    minutes, secs = divmod(max(0, int(time.time() - started)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cmd_export(args: argparse.Namespace) -> int:
    """Write the app as a gafferd ini, a POST /processes JSON, or systemd units."""
    app = load_app(args)
    if args.format == "json":
        if not args.target:
            raise UsageError("export json needs a process type: export json NAME [FILE]")
        (ptype,) = app.select(args.target[0])
        count = app.concurrency.get(ptype.name, 1)
        text = export_json(ptype, env=app.env, numprocesses=count, cwd=app.root)
        return _write(text, args.target[1] if len(args.target) > 1 else None)
    if args.format == "ini":
        if len(args.target) > 1:
            raise UsageError("export ini takes at most one FILE")
        text = export_ini(
            app.ptypes, group=app.name, concurrency=app.concurrency, env=app.env, cwd=app.root
        )
        return _write(text, args.target[0] if args.target else None)
    if len(args.target) != 1:
        raise UsageError("export systemd needs one DIRECTORY")
    directory = args.target[0]
    try:
        units = export_systemd(
            app.ptypes, app=app.name, concurrency=app.concurrency, env=app.env, cwd=app.root,
            settings=_lifecycle_settings(args.settings),
        )  # fmt: skip
    except (ValueError, GafferError) as exc:
        raise UsageError(f"{args.settings}: {getattr(exc, 'message', exc)}") from exc
    try:
        os.makedirs(directory, exist_ok=True)
        for filename, text in units.items():
            with open(os.path.join(directory, filename), "w", encoding="utf-8") as handle:
                handle.write(text)
    except OSError as exc:
        raise CommandFailed(f"cannot write to {directory}: {exc.strerror or exc}") from exc
    for filename in units:
        _say(os.path.join(directory, filename))
    return EXIT_OK


def _lifecycle_settings(path: str | None) -> dict[str, Any]:
    """``export systemd --settings FILE``: JSON, process type -> depends_on, restart, readiness."""
    if path is None:
        return {}
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise UsageError(f"{path} must map process types to objects of template keys")
    return value


def _write(text: str, path: str | None) -> int:
    if path is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CommandFailed(f"cannot write {path}: {exc.strerror or exc}") from exc
    return EXIT_OK


# -- parsing -----------------------------------------------------------------

GLOBAL_OPTIONS = (
    option("-c", "--concurrency", action="append", metavar="NAME=N,...",
           help="processes per type, e.g. web=2,worker=3 (for run: a number)"),
    option("-e", "--env", action="append", metavar="FILE",
           help=".env file(s) loaded after <root>/.env (default: ./.env)"),
    option("-f", "--procfile", default="Procfile", help="Procfile name (default %(default)s)"),
    option("-d", "--directory", default=".", metavar="ROOT", help="application root"),
    option("--endpoint", default=DEFAULT_URL, metavar="URL", help="gafferd URL"),
    *CONNECTION_OPTIONS,
)  # fmt: skip

URL = option("url", nargs="?", help="gafferd URL (wins over --endpoint)")
GROUP = option("group", nargs="?", help="group on gafferd (default: the root's basename)")
Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Handler, tuple[Option, ...]]] = {
    "start": (cmd_start, (
        option("name", nargs="?", help="only this process type"),
        option("-t", "--timeout", type=float, default=10.0, metavar="SECONDS",
               help="graceful stop: SIGKILL after this (default %(default)s)"),
    )),
    "run": (cmd_run, (option("command", nargs=argparse.REMAINDER, help="command and arguments"),)),
    "load": (cmd_load, (GROUP, URL)),
    "unload": (cmd_unload, (GROUP, URL)),
    "scale": (cmd_scale, (option("ops", nargs="+", metavar="ARG",
              help="[GROUP] then NAME=N (set), NAME+N (add) or NAME-N (remove), ..."),)),
    "ps": (cmd_ps, (GROUP,)),
    "export": (cmd_export, (
        option("format", choices=("ini", "json", "systemd")),
        option("target", nargs="*", default=[], metavar="ARG",
               help="ini: [FILE]; json: NAME [FILE]; systemd: DIRECTORY"),
        option("--settings", metavar="FILE", help="systemd: JSON of each type's depends_on, "
               "restart and readiness, as Requires=/After=, Restart= and Type="),
    )),
}  # fmt: skip


def build_parser() -> tuple[CliParser, dict[str, argparse.ArgumentParser]]:
    listing = "\n".join(
        f"  {name:<8} {(handler.__doc__ or '').strip().splitlines()[0]}"
        for name, (handler, _) in COMMANDS.items()
    )
    parser = CliParser(
        prog=PROG,
        description="Run a Procfile app in the foreground, or load it into gafferd.",
        epilog=f"commands:\n{listing}\n  {'help':<8} Show the description of a command.\n\n"
        "exit codes: 0 ok, 1 failed or refused, 2 bad usage, 3 gafferd unreachable",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, GLOBAL_OPTIONS, top=True)
    add_colour_flags(parser)
    parser.add_argument("--version", action="version", version=f"{PROG} (version {__version__})")
    subparsers = parser.add_subparsers(dest="command_name", metavar="<command>", help="see below")
    by_name: dict[str, argparse.ArgumentParser] = {}
    for name, (handler, arguments) in COMMANDS.items():
        sub = subparsers.add_parser(
            name,
            description=inspect.cleandoc(handler.__doc__ or ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for flags, settings in arguments:
            sub.add_argument(*flags, **settings)
        add_global_options(sub, GLOBAL_OPTIONS, top=False)
        add_colour_flags(sub, hidden=True)
        by_name[name] = sub
    help_parser = subparsers.add_parser("help", description="Show the description of a command.")
    help_parser.add_argument("topic", nargs="?", metavar="command")
    return parser, by_name


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gaffer`` console script; returns the exit code."""
    parser, by_name = build_parser()
    args = parser.parse_args(argv)
    if args.command_name == "start":
        # Patch before the manager, httpx or ssl are imported, and only for start.
        from gevent import monkey

        monkey.patch_all()

    def command() -> int:
        if args.command_name in (None, "help"):
            topic = getattr(args, "topic", None)
            if topic is not None and topic not in by_name:
                raise UsageError(f"unknown command {topic!r} (try '{PROG} help')")
            stream = sys.stderr if args.command_name is None else sys.stdout
            stream.write((by_name[topic] if topic else parser).format_help())
            return EXIT_USAGE if args.command_name is None else EXIT_OK
        if args.command_name == "run" and not args.command:
            raise UsageError("run needs a command")
        return COMMANDS[args.command_name][0](args)

    return run_command(PROG, command)


if __name__ == "__main__":
    sys.exit(main())
