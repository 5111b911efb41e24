"""gaffer's local commands: run the app in the foreground, run one command, export it.

``start`` runs an in-process Manager like foreman/honcho; ``gaffer.main`` has
patched gevent before this module imports the runner, and only for that command.
``run`` is a plain subprocess with the app's environment and the terminal's
stdio, so interactive one-off commands (a shell, a migration) behave as if typed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from ..errors import GafferError
from ..limits import DEFAULT_MAX_PROCESSES, ascii_digits, ascii_int
from ..procfile import export_ini, export_json, export_systemd
from . import EXIT_OK, CommandFailed, UsageError, want_colour
from .app import load_app, say


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

    if not args.command:
        raise UsageError("run needs a command")
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
        say(os.path.join(directory, filename))
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
