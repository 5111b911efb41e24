"""Process templates: the validated form of a ``POST /processes`` body (spec section 7).

A template keeps two views of itself: ``settings``, exactly the keys the client
sent (what ``GET /processes/<name>`` echoes back), and typed attributes that
the manager uses to spawn. Validation raises ``InvalidProcessInfo`` (a wrong
type, a missing or unknown key) or ``BadValue`` (a value out of the bounds in
limits.py), each naming the offending field, never anything else.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .checks.spec import CheckSpec, parse_check
from .errors import BadValue, InvalidProcessInfo
from .flapping_settings import FlappingConfig as FlappingConfig  # its old home, still importable
from .lifecycle_settings import (
    Condition,
    RestartPolicy,
    parse_delay,
    parse_depends_on,
    parse_jitter,
    parse_restart,
)  # fmt: skip
from .limits import (
    ascii_digits,
    ascii_int,
    bounded_int,
    bounded_number,
    check_label,
    check_name,
    check_relative_path,
    check_text,
    printable,
)  # fmt: skip

DEFAULT_GRACEFUL_TIMEOUT = 10.0
MAX_REAL_LABELS = 2
#: The bound on numprocesses and buffer_size before the manager applies its own limits.
MAX_TOTAL_SANITY = 2**31 - 1


def _bool(settings: Mapping[str, Any], key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidProcessInfo(f"{key} must be a boolean", field=key)
    return value


def _number(
    settings: Mapping[str, Any], key: str, default: float, *, maximum: float = limits.MAX_TIMEOUT
) -> float:
    """A finite number from 0 to ``maximum``; null is not a number."""
    if key not in settings:
        return default
    return bounded_number(settings[key], key, 0, maximum)


def _int(
    settings: Mapping[str, Any], key: str, default: int, *, minimum: int = 0, maximum: int
) -> int:
    """An integer from ``minimum`` to ``maximum``; null is not an integer."""
    if key not in settings:
        return default
    return bounded_int(settings[key], key, minimum, maximum)


def _optional_str(settings: Mapping[str, Any], key: str, max_length: int) -> str | None:
    value = settings.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidProcessInfo(f"{key} must be a string", field=key)
    return check_text(value, key, max_length)


def _logfile(settings: Mapping[str, Any], key: str) -> str | None:
    value = _optional_str(settings, key, limits.MAX_PATH_LENGTH)
    return None if value is None else check_relative_path(value, key)


def _resolve_id(value: Any, key: str) -> int | None:
    """Resolve a user or group given by name or id; unknown ones are invalid.

    An id is an integer or a string of ASCII digits, from 0 to 2**32 - 2; any
    other string is a name (``"²"`` is a name, and no user has it).
    """
    if value is None:
        return None
    lookup_name, lookup_id = (
        (pwd.getpwnam, pwd.getpwuid) if key == "uid" else (grp.getgrnam, grp.getgrgid)
    )
    if isinstance(value, str) and ascii_digits(value):
        number = ascii_int(value)
        value = limits.MAX_ID + 1 if number is None else number
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidProcessInfo(f"{key} must be a name or an id", field=key)
    try:
        if isinstance(value, int):
            if not 0 <= value <= limits.MAX_ID:
                raise BadValue(f"{key} must be an id from 0 to {limits.MAX_ID}", field=key)
            lookup_id(value)
            return value
        check_text(value, key, limits.MAX_USER_NAME_LENGTH)
        if not value or not value.isprintable():
            raise BadValue(f"{key} must be a name of printable characters", field=key)
        entry = lookup_name(value)
        return entry.pw_uid if isinstance(entry, pwd.struct_passwd) else entry.gr_gid
    except KeyError as exc:
        raise BadValue(f"unknown {key} {printable(str(value))!r}", field=key) from exc


def _labels(settings: Mapping[str, Any], key: str) -> list[str]:
    labels = settings.get(key)
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise InvalidProcessInfo(f"{key} must be a list of labels", field=key)
    if len(labels) > limits.MAX_LABELS:
        raise BadValue(f"{key} takes at most {limits.MAX_LABELS} labels", field=key)
    return [check_label(label, key) for label in labels]


# Keys a client may send; anything else is refused so typos do not pass silently.
KNOWN_KEYS = frozenset(
    {
        "name", "cmd", "args", "env", "os_env", "cwd", "uid", "gid", "shell", "detach",
        "numprocesses", "start", "redirect_output", "redirect_input", "graceful_timeout",
        "flapping", "priority", "custom_streams", "group", "buffer_size",
        "stdout_logfile", "stderr_logfile", "logfile_maxbytes", "logfile_backups",
        "logfile_rotate_daily", "readiness", "liveness",
        "restart", "restart_delay", "max_restart_delay", "restart_jitter", "depends_on",
    }
)  # fmt: skip


@dataclass
class ProcessTemplate:
    """A named, validated process definition."""

    name: str
    cmd: str
    settings: dict[str, Any] = field(default_factory=dict)
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    os_env: bool = True
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    shell: bool = False
    detach: bool = False
    numprocesses: int = 1
    redirect_output: list[str] = field(default_factory=list)
    redirect_input: bool = False
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT
    flapping: FlappingConfig | None = None
    priority: int | None = None
    buffer_size: int | None = None
    stdout_logfile: str | None = None
    stderr_logfile: str | None = None
    logfile_maxbytes: int = 50 * 1024 * 1024
    logfile_backups: int = 10
    logfile_rotate_daily: bool = False
    #: Lifecycle (lifecycle_settings.py): which exits respawn, the backoff overrides (None:
    #: gafferd's [gaffer] backoff), and what must hold before the first spawn.
    restart: RestartPolicy = RestartPolicy.ALWAYS
    restart_delay: float | None = None
    max_restart_delay: float | None = None
    restart_jitter: float | None = None
    depends_on: dict[str, Condition] = field(default_factory=dict)
    #: Health checks (checks/spec.py): when a pid is ready, when it must be restarted.
    readiness: CheckSpec | None = None
    liveness: CheckSpec | None = None

    @property
    def group(self) -> str | None:
        return self.name.split(":", 1)[0] if ":" in self.name else None

    @property
    def labels(self) -> list[str]:
        """The real stream labels: stdout's, then stderr's (may repeat to merge)."""
        return self.redirect_output[:MAX_REAL_LABELS]

    @classmethod
    def from_json(cls, body: Any, *, name: str | None = None) -> ProcessTemplate:
        """Validate a JSON body; ``name`` (from the URL on PUT) overrides the body's.

        A wrong type, a missing or an unknown key is ``InvalidProcessInfo``; a value
        of the right type out of its bounds (limits.py) is ``BadValue``; both name
        the field.
        """
        if not isinstance(body, dict):
            raise InvalidProcessInfo("the body must be a JSON object")
        if "cmd" not in body:
            raise InvalidProcessInfo("cmd is required", field="cmd")
        name = name if name is not None else body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidProcessInfo("name is required", field="name")
        check_name(name)
        cmd = body["cmd"]
        if not isinstance(cmd, str) or not cmd.strip():
            raise InvalidProcessInfo("cmd must be a non-empty string", field="cmd")
        check_text(cmd, "cmd", limits.MAX_STRING_LENGTH)
        if not isinstance(body.get("start", False), bool | None):
            raise InvalidProcessInfo("start must be a boolean", field="start")
        unknown = set(body) - KNOWN_KEYS
        if unknown:
            key = printable(sorted(unknown)[0][: limits.MAX_NAME_LENGTH])
            raise InvalidProcessInfo(f"unknown key {key!r}", field=key)
        settings = {k: v for k, v in body.items() if k not in ("name", "cmd", "start", "group")}
        tpl = cls(name=name, cmd=cmd, settings=settings)
        tpl._validate(settings)
        if tpl.group:
            tpl.settings["group"] = tpl.group
        return tpl

    def _validate(self, s: Mapping[str, Any]) -> None:
        self.args = self._args(s.get("args"))
        self.env = self._env(s.get("env"))
        self.os_env = _bool(s, "os_env", True)
        self.cwd = _optional_str(s, "cwd", limits.MAX_PATH_LENGTH)
        self.uid = _resolve_id(s.get("uid"), "uid")
        self.gid = _resolve_id(s.get("gid"), "gid")
        self.shell = _bool(s, "shell", False)
        self.detach = _bool(s, "detach", False)
        # The manager holds numprocesses to its max_processes; this is only a sanity bound.
        self.numprocesses = _int(s, "numprocesses", 1, maximum=MAX_TOTAL_SANITY)
        self.redirect_output = _labels(s, "redirect_output")
        self.redirect_input = _bool(s, "redirect_input", False)
        self.graceful_timeout = _number(s, "graceful_timeout", DEFAULT_GRACEFUL_TIMEOUT)
        flapping = s.get("flapping")
        self.flapping = None if flapping is None else FlappingConfig.from_value(flapping)
        priority = s.get("priority")
        self.priority = (
            None if priority is None
            else bounded_int(priority, "priority", limits.MIN_PRIORITY, limits.MAX_PRIORITY)
        )  # fmt: skip
        if s.get("custom_streams") is not None and not isinstance(s["custom_streams"], list):
            raise InvalidProcessInfo("custom_streams must be a list", field="custom_streams")
        _labels(s, "custom_streams")
        buffer_size = s.get("buffer_size")
        self.buffer_size = (
            None if buffer_size is None
            else bounded_int(buffer_size, "buffer_size", limits.MIN_BUFFER_SIZE, MAX_TOTAL_SANITY)
        )  # fmt: skip
        self.stdout_logfile = _logfile(s, "stdout_logfile")
        self.stderr_logfile = _logfile(s, "stderr_logfile")
        self.logfile_maxbytes = _int(
            s, "logfile_maxbytes", self.logfile_maxbytes, maximum=limits.MAX_LOGFILE_BYTES
        )
        self.logfile_backups = _int(
            s, "logfile_backups", self.logfile_backups, maximum=limits.MAX_LOGFILE_BACKUPS
        )
        self.logfile_rotate_daily = _bool(s, "logfile_rotate_daily", False)
        self.restart = parse_restart(s.get("restart"))
        self.restart_delay = parse_delay(s, "restart_delay")
        self.max_restart_delay = parse_delay(s, "max_restart_delay")
        if (self.restart_delay or 0) > (self.max_restart_delay or limits.MAX_RESTART_DELAY):
            raise BadValue("restart_delay must be <= max_restart_delay", field="restart_delay")
        self.restart_jitter = parse_jitter(s)
        self.depends_on = parse_depends_on(s.get("depends_on"))
        self.readiness = parse_check(s.get("readiness"), "readiness")
        self.liveness = parse_check(s.get("liveness"), "liveness")
        check = self.readiness
        if check is not None and check.kind == "log" and check.label not in self.labels:
            raise BadValue(
                f"readiness.label {printable(check.label)!r} must be a label of "
                "redirect_output (a log check reads that stream)",
                field="readiness.label",
            )

    def _args(self, args: Any) -> list[str] | None:
        if isinstance(args, str):
            check_text(args, "args", limits.MAX_STRING_LENGTH)
            try:
                args = shlex.split(args)
            except ValueError as exc:
                raise InvalidProcessInfo(f"args: {exc}", field="args") from exc
        if args is not None and (
            not isinstance(args, list) or not all(isinstance(a, str) for a in args)
        ):
            raise InvalidProcessInfo("args must be a list of strings or a string", field="args")
        if args is None:
            try:
                if not shlex.split(self.cmd):
                    raise ValueError("empty command")
            except ValueError as exc:
                raise InvalidProcessInfo(f"cmd: {exc}", field="cmd") from exc
            return None
        if len(args) > limits.MAX_ARGS:
            raise BadValue(f"args takes at most {limits.MAX_ARGS} arguments", field="args")
        return [check_text(arg, "args", limits.MAX_STRING_LENGTH) for arg in args]

    @staticmethod
    def _env(env: Any) -> dict[str, str]:
        if env is None:
            return {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
            for k, v in env.items()
        ):
            raise InvalidProcessInfo("env must map names to strings", field="env")
        if len(env) > limits.MAX_ENV:
            raise BadValue(f"env takes at most {limits.MAX_ENV} variables", field="env")
        for key, value in env.items():
            check_text(key, "env", limits.MAX_PATH_LENGTH)
            if not key or "=" in key:
                raise BadValue("env names must be non-empty and without '='", field="env")
            if isinstance(value, str):
                check_text(value, "env", limits.MAX_STRING_LENGTH)
        return {k: str(v) for k, v in env.items()}

    def to_json(self) -> dict[str, Any]:
        """The template as ``GET /processes/<name>`` shows it: name, cmd, stored keys."""
        body: dict[str, Any] = {"name": self.name, "cmd": self.cmd}
        for key, value in self.settings.items():
            body[key] = value.to_json() if isinstance(value, FlappingConfig) else value
        return body

    # -- spawning helpers -------------------------------------------------

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment: the OS's (if os_env) overridden by the template's."""
        env = dict(os.environ if base is None else base) if self.os_env else {}
        env.pop("NOTIFY_SOCKET", None)  # gafferd's own service manager's (sd_notify): not a child's
        env.update(self.env)
        return env

    def argv(self, env: Mapping[str, str]) -> list[str]:
        """The argv to exec, with ``$VAR``/``${VAR}``/``$$`` substituted (spec section 7).

        Raises ``KeyError``/``ValueError`` for a variable that cannot be substituted;
        the manager turns that into a failed spawn (exit 127).
        """
        if self.args is None:
            exe, *args = shlex.split(self.cmd)
        else:
            exe, args = self.cmd, list(self.args)
        if self.shell:
            script = " ".join([self.cmd, *self.args] if self.args is not None else [self.cmd])
            return ["/bin/sh", "-c", script]
        return [exe, *(string.Template(a).substitute(env) for a in args)]
