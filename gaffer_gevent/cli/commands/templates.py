"""gafferctl's template commands: create, change, start, stop, scale and signal templates.

Every handler is one or two calls of ``Client``; its arguments are declared in
gafferctl's table (``gaffer_gevent.cli.gafferctl``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ...client import signal_number
from .. import EXIT_OK, UsageError
from . import OK, Context

#: What ``add_process`` captures unless ``--no-output``: ``tail`` and ``logs`` need it.
CAPTURED = ["stdout", "stderr"]


def processes(ctx: Context, args: argparse.Namespace) -> int:
    """List template names, one per line (--running: the running internal pids)."""
    ctx.emit(ctx.client.running() if args.running else ctx.client.processes())
    return EXIT_OK


def _template_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": args.name, "cmd": args.cmd}
    if args.args:
        body["args"] = args.args
    return body


def _environment(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env takes KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def add_process(ctx: Context, args: argparse.Namespace) -> int:
    """Create a template (POST /processes); it is not started unless --start.

    Its stdout and stderr are captured (redirect_output), so tail and the
    status table work at once; --no-output leaves them alone, as gaffer 0.4
    did. Prints the template name.
    """
    body = _template_body(args)
    if args.numprocesses is not None:
        body["numprocesses"] = args.numprocesses
    if args.env:
        body["env"] = _environment(args.env)
    if args.cwd is not None:
        body["cwd"] = args.cwd
    if args.redirect_input:
        body["redirect_input"] = True
    if not args.no_output:
        body["redirect_output"] = CAPTURED
    ctx.client.create_process({**body, "start": args.start})
    ctx.emit(args.name, {"ok": True, "name": args.name})
    return EXIT_OK


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


def del_process(ctx: Context, args: argparse.Namespace) -> int:
    """Stop a template's processes and remove it."""
    ctx.client.remove_process(args.name)
    ctx.emit("ok", OK)
    return EXIT_OK


def get_process(ctx: Context, args: argparse.Namespace) -> int:
    """Show a template as stored, as JSON (indent 2, sorted keys)."""
    info = ctx.client.get_process(args.name)
    if ctx.as_json:
        ctx.emit(info)
    else:
        ctx.emit(json.dumps(info, indent=2, sort_keys=True))
    return EXIT_OK


def start(ctx: Context, args: argparse.Namespace) -> int:
    """Start a template's processes (clears a previous stop)."""
    ctx.client.start_process(args.name)
    ctx.emit("ok", OK)
    return EXIT_OK


def _spinner(ctx: Context) -> bool:
    """Whether ``--wait`` shows a spinner (a terminal, and no ``--json``). ``--wait``'s code
    (``waits``: a feed-reading thread) is imported in the branches that wait, only then."""
    from ..progress import progress_enabled

    return progress_enabled(ctx.as_json)


def stop(ctx: Context, args: argparse.Namespace) -> int:
    """Stop all processes of a template (SIGTERM, SIGKILL after its timeout)."""
    if args.wait:
        from .. import waits

        waits.stop_and_wait(ctx.client, args.name, spinner=_spinner(ctx))
    else:
        ctx.client.stop_process(args.name)
    ctx.emit("ok", OK)
    return EXIT_OK


def restart(ctx: Context, args: argparse.Namespace) -> int:
    """Start fresh processes for a template, then reap the old ones.

    With --rolling, a few at a time: each old pid is stopped only once its
    replacement is ready (--max-unavailable at once; a replacement not ready
    within --ready-timeout aborts the roll and keeps the remaining old pids).
    """
    options = {"max_unavailable": args.max_unavailable, "ready_timeout": args.ready_timeout}
    if args.wait:
        from .. import waits

        if args.rolling:
            waits.roll_and_wait(ctx.client, args.name, spinner=_spinner(ctx), **options)
        else:
            waits.restart_and_wait(ctx.client, args.name, spinner=_spinner(ctx))
    elif args.rolling:
        ctx.client.restart_process(args.name, rolling=True, **options)
    else:
        ctx.client.restart_process(args.name)
    ctx.emit("ok", OK)
    return EXIT_OK


def _scale(ctx: Context, args: argparse.Namespace, sign: int) -> int:
    if not args.wait or args.n < 0:  # a negative count: gafferd's answer, as without --wait
        return (ctx.client.add if sign > 0 else ctx.client.sub)(args.name, args.n)
    from .. import waits

    return waits.scale_and_wait(ctx.client, args.name, sign * args.n, spinner=_spinner(ctx))


def add(ctx: Context, args: argparse.Namespace) -> int:
    """Run N more processes of a template; prints the new numprocesses."""
    value = _scale(ctx, args, 1)
    ctx.emit(value, {"ok": True, "numprocesses": value})
    return EXIT_OK


def sub(ctx: Context, args: argparse.Namespace) -> int:
    """Run N fewer processes of a template (oldest first); prints the new numprocesses."""
    value = _scale(ctx, args, -1)
    ctx.emit(value, {"ok": True, "numprocesses": value})
    return EXIT_OK


def numprocesses(ctx: Context, args: argparse.Namespace) -> int:
    """Print how many processes a template is meant to run."""
    info = ctx.client.status(args.name)
    ctx.emit(info["max_processes"], info)
    return EXIT_OK


def running(ctx: Context, args: argparse.Namespace) -> int:
    """Print how many processes of a template are running now."""
    info = ctx.client.status(args.name)
    ctx.emit(info["running"], info)
    return EXIT_OK


def pids(ctx: Context, args: argparse.Namespace) -> int:
    """List the internal pids of a template's running processes, oldest first."""
    ctx.emit(ctx.client.pids(args.name))
    return EXIT_OK


def kill(ctx: Context, args: argparse.Namespace) -> int:
    """Send a signal to every process of a template, or to one internal pid."""
    try:
        number = signal_number(args.signal)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    ctx.client.send_signal(args.target, number)
    ctx.emit("ok", OK)
    return EXIT_OK


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


def rotate(ctx: Context, args: argparse.Namespace) -> int:
    """Rotate a template's log files now."""
    ctx.emit("ok", ctx.client.rotate_logs(args.name))
    return EXIT_OK
