"""Procfile and ``.env`` parsing, and the exports built from them (spec section 13).

Everything here is pure: parsers take text, exporters return text, so the
``gaffer`` tool can be tested without files or processes. The rules are
gaffer 0.4's (13.2, 13.3) with two safety fixes: a duplicate process type or
an unbalanced quote is reported with its line number instead of silently
winning or crashing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .limits import ascii_int
from .systemd_lifecycle import Settings, unit_lines

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_]+):\s*(.+)$")
SCALE_OP = re.compile(r"^([A-Za-z0-9_]+)([=+-])([0-9]{1,18})$")
#: The Procfile tool captures both pipes under these labels (13.5).
REDIRECT_OUTPUT = ["out", "err"]


class ProcfileError(ValueError):
    """A Procfile line that cannot be used, with its 1-based line number."""

    def __init__(self, lineno: int, message: str) -> None:
        super().__init__(f"Procfile line {lineno}: {message}")
        self.lineno = lineno


@dataclass(frozen=True)
class ProcessType:
    """One Procfile entry: ``name: cmd args...``."""

    name: str
    cmd: str
    args: tuple[str, ...]

    @property
    def command_line(self) -> str:
        return shlex.join([self.cmd, *self.args])


def parse_procfile(text: str) -> list[ProcessType]:
    """Entries in file order; lines that are not ``name: command`` are ignored."""
    entries: dict[str, ProcessType] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        match = PROCFILE_LINE.match(line)
        if match is None:
            continue
        name, command = match.groups()
        try:
            tokens = shlex.split(command)
        except ValueError as exc:
            raise ProcfileError(lineno, f"{name}: {exc}") from exc
        if not tokens:
            raise ProcfileError(lineno, f"{name}: empty command")
        if name in entries:
            raise ProcfileError(lineno, f"duplicate process type {name!r}")
        entries[name] = ProcessType(name, tokens[0], tuple(tokens[1:]))
    return list(entries.values())


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` lines: split at the first ``=``, key verbatim, double quotes deleted.

    No comments and no escapes, exactly as gaffer 0.4 read ``.env`` files;
    lines without ``=`` are ignored.
    """
    env: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value.rstrip("\r\n").replace('"', "")
    return env


def merge_env(*layers: Mapping[str, str]) -> dict[str, str]:
    """Later layers override earlier ones (``<root>/.env`` first, then each ``-e`` file)."""
    merged: dict[str, str] = {}
    for layer in layers:
        merged.update(layer)
    return merged


def parse_concurrency(specs: Iterable[str]) -> dict[str, int]:
    """``["web=2,worker=3"]`` -> counts; malformed items are skipped, as in gaffer 0.4."""
    counts: dict[str, int] = {}
    for spec in specs:
        for item in spec.split(","):
            name, sep, number = item.strip().partition("=")
            count = ascii_int(number.strip()) if sep else None  # "²".isdigit(), int("²") fails
            if name.strip() and count is not None and count >= 0:
                counts[name.strip()] = count
    return counts


@dataclass(frozen=True)
class ScaleOp:
    """``web=3`` (set), ``web+1`` (add) or ``web-2`` (sub)."""

    name: str
    op: str
    count: int


def parse_scale_op(text: str) -> ScaleOp | None:
    """The operation written in ``text``, or None if it is not one (then it is a group)."""
    match = SCALE_OP.match(text.strip())
    if match is None:
        return None
    name, op, count = match.groups()
    return ScaleOp(name, op, int(count))


def app_name(root: str) -> str:
    """The group of an app: its root's basename, made safe for template names.

    gafferd refuses ``.`` and ``/`` in names and reads ``:`` as the group
    separator, so anything but letters, digits, ``_`` and ``-`` becomes ``_``.
    """
    base = os.path.basename(os.path.abspath(root)) or "app"
    return re.sub(r"[^A-Za-z0-9_-]", "_", base)


def template_body(
    ptype: ProcessType,
    *,
    name: str,
    env: Mapping[str, str],
    numprocesses: int,
    cwd: str,
) -> dict[str, Any]:
    """The ``POST /processes`` body for one process type (keys in spec 13.5's order)."""
    return {
        "name": name,
        "cmd": ptype.cmd,
        "args": list(ptype.args),
        "env": dict(env),
        "numprocesses": numprocesses,
        "redirect_output": list(REDIRECT_OUTPUT),
        "cwd": cwd,
    }


def export_json(ptype: ProcessType, *, env: Mapping[str, str], numprocesses: int, cwd: str) -> str:
    """One template as a JSON document ready for ``gafferctl load_process``."""
    body = template_body(ptype, name=ptype.name, env=env, numprocesses=numprocesses, cwd=cwd)
    return json.dumps(body, indent=1) + "\n"


def export_ini(
    ptypes: Iterable[ProcessType],
    *,
    group: str,
    concurrency: Mapping[str, int],
    env: Mapping[str, str],
    cwd: str,
) -> str:
    """A gafferd config: ``[process:<group>:<name>]`` sections in file order, plus env.

    Keys follow 13.5 (cmd, args, priority, numprocesses) with cwd and the
    output labels added so the exported app runs where it was exported from.
    """
    out: list[str] = []
    for priority, ptype in enumerate(ptypes):
        section = f"{group}:{ptype.name}"
        out += [
            f"[process:{section}]",
            f"cmd = {ptype.cmd}",
            *([f"args = {shlex.join(ptype.args)}"] if ptype.args else []),
            f"priority = {priority}",
            f"numprocesses = {concurrency.get(ptype.name, 1)}",
            f"cwd = {cwd}",
            f"redirect_output = {', '.join(REDIRECT_OUTPUT)}",
            "",
        ]
        if env:
            out += [f"[env:{section}]", *(f"{k} = {v}" for k, v in env.items()), ""]
    return "\n".join(out)


def _systemd_escape(text: str) -> str:
    """Quote one word for a unit file; ``%`` is a specifier there, so it is doubled."""
    text = text.replace("%", "%%")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./${}-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def export_systemd(
    ptypes: Iterable[ProcessType],
    *,
    app: str,
    concurrency: Mapping[str, int],
    env: Mapping[str, str],
    cwd: str,
    settings: Settings | None = None,
) -> dict[str, str]:
    """Unit files by file name: one template unit per process type, plus ``<app>.target``.

    Each type becomes ``<app>-<name>@.service``; the target wants instances
    1..N of each (N from the concurrency), so ``systemctl start <app>.target``
    runs the whole app. ``$VAR`` in arguments is left for systemd to expand
    from ``Environment=``, like gaffer substitutes it from the env. ``settings`` gives
    a type's lifecycle keys (depends_on, restart, readiness): see systemd_lifecycle.
    """
    ptypes = list(ptypes)
    types = [ptype.name for ptype in ptypes]
    units: dict[str, str] = {}
    wants: list[str] = []
    environment = [f"Environment={_systemd_escape(f'{k}={v}')}" for k, v in env.items()]
    for ptype in ptypes:
        unit = f"{app}-{ptype.name}@.service"
        exec_start = " ".join(_systemd_escape(word) for word in (ptype.cmd, *ptype.args))
        ordering, service = unit_lines(
            ptype.name, app=app, settings=settings or {}, concurrency=concurrency, types=types
        )
        units[unit] = "\n".join(
            [
                "[Unit]",
                f"Description={app} {ptype.name} %i",
                f"PartOf={app}.target",
                *ordering,
                "",
                "[Service]",
                service[0],
                f"WorkingDirectory={cwd.replace('%', '%%')}",
                *environment,
                f"ExecStart=/usr/bin/env {exec_start}",
                *service[1:],
                "KillMode=mixed",
                "TimeoutStopSec=10",
                "",
                "[Install]",
                f"WantedBy={app}.target",
                "",
            ]
        )
        count = concurrency.get(ptype.name, 1)
        wants += [f"{app}-{ptype.name}@{i}.service" for i in range(1, count + 1)]
    units[f"{app}.target"] = "\n".join(
        [
            "[Unit]",
            f"Description={app} (exported by gaffer)",
            *([f"Wants={' '.join(wants)}"] if wants else []),
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )
    return units
