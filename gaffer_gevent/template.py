"""Process templates: the validated form of a ``POST /processes`` body (spec section 7).

A template keeps two views of itself: ``settings``, exactly the keys the client
sent (what ``GET /processes/<name>`` echoes back), and typed attributes that
the manager uses to spawn. Validation raises ``InvalidProcessInfo`` naming the
offending field, never anything else.
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

from .errors import InvalidProcessInfo

DEFAULT_GRACEFUL_TIMEOUT = 10.0
MAX_REAL_LABELS = 2


@dataclass(frozen=True)
class FlappingConfig:
    """Parameters of flapping detection (spec 8.8); the policy lives in flapping.py."""

    attempts: int = 2
    window: float = 1.0
    retry_in: float = 7.0
    max_retry: int = 5

    @classmethod
    def from_value(cls, value: Any) -> FlappingConfig:
        """Build from a JSON object, or the ini form ``"2 1. 7. 5"`` / ``"2, 1., 7., 5"``."""
        if isinstance(value, FlappingConfig):
            return value
        if isinstance(value, str):
            parts = value.replace(",", " ").split()
            names = ("attempts", "window", "retry_in", "max_retry")
            if len(parts) > len(names):
                raise InvalidProcessInfo("flapping takes at most 4 numbers", field="flapping")
            value = dict(zip(names, parts, strict=False))
        if not isinstance(value, Mapping):
            raise InvalidProcessInfo("flapping must be an object", field="flapping")
        unknown = set(value) - {"attempts", "window", "retry_in", "max_retry"}
        if unknown:
            raise InvalidProcessInfo(
                f"unknown flapping key {sorted(unknown)[0]!r}", field="flapping"
            )
        try:
            attempts = int(float(value.get("attempts", cls.attempts)))
            window = float(value.get("window", cls.window))
            retry_in = float(value.get("retry_in", cls.retry_in))
            max_retry = int(float(value.get("max_retry", cls.max_retry)))
        except (TypeError, ValueError) as exc:
            raise InvalidProcessInfo("flapping values must be numbers", field="flapping") from exc
        if attempts < 1 or window < 0 or retry_in < 0 or max_retry < 0:
            raise InvalidProcessInfo("flapping values out of range", field="flapping")
        return cls(attempts, window, retry_in, max_retry)

    def to_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "window": self.window,
            "retry_in": self.retry_in,
            "max_retry": self.max_retry,
        }


def _bool(settings: Mapping[str, Any], key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidProcessInfo(f"{key} must be a boolean", field=key)
    return value


def _number(settings: Mapping[str, Any], key: str, default: float, *, minimum: float = 0) -> float:
    value = settings.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise InvalidProcessInfo(f"{key} must be a number >= {minimum}", field=key)
    return float(value)


def _int(settings: Mapping[str, Any], key: str, default: int, *, minimum: int = 0) -> int:
    value = settings.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidProcessInfo(f"{key} must be an integer >= {minimum}", field=key)
    return value


def _optional_str(settings: Mapping[str, Any], key: str) -> str | None:
    value = settings.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidProcessInfo(f"{key} must be a string", field=key)
    return value


def _resolve_id(value: Any, key: str) -> int | None:
    """Resolve a user or group given by name or id; unknown ones are invalid."""
    if value is None:
        return None
    lookup_name, lookup_id = (
        (pwd.getpwnam, pwd.getpwuid) if key == "uid" else (grp.getgrnam, grp.getgrgid)
    )
    try:
        if isinstance(value, bool):
            raise InvalidProcessInfo(f"{key} must be a name or an id", field=key)
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            lookup_id(int(value))
            return int(value)
        if isinstance(value, str):
            entry = lookup_name(value)
            return entry.pw_uid if isinstance(entry, pwd.struct_passwd) else entry.gr_gid
    except KeyError as exc:
        raise InvalidProcessInfo(f"unknown {key} {value!r}", field=key) from exc
    raise InvalidProcessInfo(f"{key} must be a name or an id", field=key)


# Keys a client may send; anything else is refused so typos do not pass silently.
KNOWN_KEYS = frozenset(
    {
        "name", "cmd", "args", "env", "os_env", "cwd", "uid", "gid", "shell", "detach",
        "numprocesses", "start", "redirect_output", "redirect_input", "graceful_timeout",
        "flapping", "priority", "custom_streams", "group", "buffer_size",
        "stdout_logfile", "stderr_logfile", "logfile_maxbytes", "logfile_backups",
        "logfile_rotate_daily",
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

    @property
    def group(self) -> str | None:
        return self.name.split(":", 1)[0] if ":" in self.name else None

    @property
    def labels(self) -> list[str]:
        """The real stream labels: stdout's, then stderr's (may repeat to merge)."""
        return self.redirect_output[:MAX_REAL_LABELS]

    @classmethod
    def from_json(cls, body: Any, *, name: str | None = None) -> ProcessTemplate:
        """Validate a JSON body; ``name`` (from the URL on PUT) overrides the body's."""
        if not isinstance(body, dict):
            raise InvalidProcessInfo("the body must be a JSON object")
        if "cmd" not in body:
            raise InvalidProcessInfo("cmd is required", field="cmd")
        name = name if name is not None else body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidProcessInfo("name is required", field="name")
        if "/" in name or "." in name or name.isdigit():
            raise InvalidProcessInfo(
                "name must not contain '/' or '.' nor be all digits", field="name"
            )
        cmd = body["cmd"]
        if not isinstance(cmd, str) or not cmd.strip():
            raise InvalidProcessInfo("cmd must be a non-empty string", field="cmd")
        unknown = set(body) - KNOWN_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise InvalidProcessInfo(f"unknown key {key!r}", field=key)
        settings = {k: v for k, v in body.items() if k not in ("name", "cmd", "start", "group")}
        tpl = cls(name=name, cmd=cmd, settings=settings)
        tpl._validate(settings)
        if tpl.group:
            tpl.settings["group"] = tpl.group
        return tpl

    def _validate(self, s: Mapping[str, Any]) -> None:
        args = s.get("args")
        if isinstance(args, str):
            try:
                args = shlex.split(args)
            except ValueError as exc:
                raise InvalidProcessInfo(f"args: {exc}", field="args") from exc
        if args is not None and (
            not isinstance(args, list) or not all(isinstance(a, str) for a in args)
        ):
            raise InvalidProcessInfo("args must be a list of strings or a string", field="args")
        self.args = args
        if args is None:
            try:
                if not shlex.split(self.cmd):
                    raise ValueError("empty command")
            except ValueError as exc:
                raise InvalidProcessInfo(f"cmd: {exc}", field="cmd") from exc
        env = s.get("env") or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in env.items()
        ):
            raise InvalidProcessInfo("env must map names to strings", field="env")
        self.env = {k: str(v) for k, v in env.items()}
        self.os_env = _bool(s, "os_env", True)
        self.cwd = _optional_str(s, "cwd")
        self.uid = _resolve_id(s.get("uid"), "uid")
        self.gid = _resolve_id(s.get("gid"), "gid")
        self.shell = _bool(s, "shell", False)
        self.detach = _bool(s, "detach", False)
        self.numprocesses = _int(s, "numprocesses", 1)
        labels = s.get("redirect_output") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise InvalidProcessInfo(
                "redirect_output must be a list of labels", field="redirect_output"
            )
        self.redirect_output = labels
        self.redirect_input = _bool(s, "redirect_input", False)
        self.graceful_timeout = _number(s, "graceful_timeout", DEFAULT_GRACEFUL_TIMEOUT)
        flapping = s.get("flapping")
        self.flapping = None if flapping is None else FlappingConfig.from_value(flapping)
        priority = s.get("priority")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise InvalidProcessInfo("priority must be an integer", field="priority")
        self.priority = priority
        custom = s.get("custom_streams") or []
        if not isinstance(custom, list):
            raise InvalidProcessInfo("custom_streams must be a list", field="custom_streams")
        buffer_size = s.get("buffer_size")
        self.buffer_size = None if buffer_size is None else _int(s, "buffer_size", 0, minimum=1024)
        self.stdout_logfile = _optional_str(s, "stdout_logfile")
        self.stderr_logfile = _optional_str(s, "stderr_logfile")
        self.logfile_maxbytes = _int(s, "logfile_maxbytes", self.logfile_maxbytes)
        self.logfile_backups = _int(s, "logfile_backups", self.logfile_backups)
        self.logfile_rotate_daily = _bool(s, "logfile_rotate_daily", False)

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
