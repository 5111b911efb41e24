"""One check of a template (``readiness`` or ``liveness``), validated like every other key.

The value is a JSON object with exactly one kind and optional timings, Kubernetes'
names and defaults (``initialDelaySeconds`` 0, ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``failureThreshold`` 3, ``successThreshold`` 1)::

    {"http": "http://127.0.0.1:$PORT/health", "period": 2}
    {"tcp": "127.0.0.1:6379"}
    {"exec": ["pg_isready", "-q"], "timeout": 5}
    {"log": "listening on", "label": "stdout"}     (readiness only)
    {"notify": true}                               (systemd's NOTIFY_SOCKET protocol)

``$VAR``/``${VAR}`` are substituted from the child's environment at each run, as
in ``args``; here they are checked with a stand-in digit so that the rest of the
value can be checked now. A wrong type or a missing/unknown key is
``InvalidProcessInfo``, a value out of bounds ``BadValue``; both name the field
(``readiness.period``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ..errors import BadValue, InvalidProcessInfo
from ..limits import bounded_int, bounded_number, check_label, check_text, printable

KINDS = ("http", "tcp", "exec", "log", "notify")
TIMING_KEYS = ("initial_delay", "period", "timeout", "failure_threshold", "success_threshold")
#: Longest URL, ``host:port`` or regex; most items (and characters each) of an exec argv.
MAX_TARGET_LENGTH = 2048
MAX_EXEC_ARGS = 64
MAX_EXEC_ARG_LENGTH = 4096
#: Bounds of the timings, in seconds; thresholds are counts.
MAX_DELAY = 86400.0
MIN_PERIOD, MAX_PERIOD = 0.05, 86400.0
MIN_TIMEOUT, MAX_TIMEOUT = 0.01, 3600.0
MAX_THRESHOLD = 1000

_VARIABLE = re.compile(r"\$(?:\$|[_a-zA-Z][_a-zA-Z0-9]*|\{[_a-zA-Z][_a-zA-Z0-9]*\})")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class CheckSpec:
    """A validated check; ``target`` is the URL, ``host:port``, argv, regex or True."""

    kind: str
    target: Any
    label: str = "stdout"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def substituted(self, env: Mapping[str, str]) -> Any:
        """The target with ``$VAR`` taken from ``env`` (KeyError/ValueError if it cannot be)."""
        if isinstance(self.target, str) and self.kind in ("http", "tcp"):
            return string.Template(self.target).substitute(env)
        if self.kind == "exec":
            return [string.Template(arg).substitute(env) for arg in self.target]
        return self.target


def parse_check(value: Any, key: str) -> CheckSpec | None:
    """Validate the value of ``readiness`` or ``liveness`` (``key``); None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidProcessInfo(f"{key} must be an object such as {{\"tcp\": \"host:port\"}}",
                                 field=key)  # fmt: skip
    kinds = [kind for kind in KINDS if kind in value]
    if len(kinds) != 1:
        raise InvalidProcessInfo(f"{key} takes exactly one of {', '.join(KINDS)}", field=key)
    kind = kinds[0]
    allowed = {kind, *TIMING_KEYS, *(("label",) if kind == "log" else ())}
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        name = printable(unknown[0][:64])
        raise InvalidProcessInfo(f"{key}: unknown key {name!r}", field=f"{key}.{name}")
    where = f"{key}.{kind}"
    if kind == "log" and key == "liveness":
        raise BadValue(f"{where}: a log check is for readiness only", field=where)
    timings = _timings(value, key)
    if key == "liveness" and timings.get("success_threshold", 1) != 1:
        raise BadValue("liveness.success_threshold must be 1", field=f"{key}.success_threshold")
    target = value[kind]
    pattern = None
    label = "stdout"
    if kind == "http":
        target = _http(target, where)
    elif kind == "tcp":
        target = _tcp(target, where)
    elif kind == "exec":
        target = _exec(target, where)
    elif kind == "log":
        target, pattern = _log(target, where)
        raw_label = value.get("label", "stdout")
        if not isinstance(raw_label, str):
            raise InvalidProcessInfo(f"{key}.label must be a string", field=f"{key}.label")
        label = check_label(raw_label, f"{key}.label")
    elif target is not True:
        raise BadValue(f"{where} must be true", field=where)
    return CheckSpec(kind, target, label, pattern=pattern, **timings)


def _timings(value: Mapping[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    bounds = {"initial_delay": (0.0, MAX_DELAY), "period": (MIN_PERIOD, MAX_PERIOD),
              "timeout": (MIN_TIMEOUT, MAX_TIMEOUT)}  # fmt: skip
    for name, (low, high) in bounds.items():
        if name in value:
            found[name] = bounded_number(value[name], f"{key}.{name}", low, high)
    for name in ("failure_threshold", "success_threshold"):
        if name in value:
            found[name] = bounded_int(value[name], f"{key}.{name}", 1, MAX_THRESHOLD)
    return found


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidProcessInfo(f"{where} must be a string", field=where)
    check_text(value, where, MAX_TARGET_LENGTH)
    if not value or not value.isprintable() or any(c.isspace() for c in value):
        raise BadValue(f"{where} must be printable, without spaces or newlines", field=where)
    if not string.Template(value).is_valid():
        raise BadValue(f"{where}: a '$' must start $NAME, ${{NAME}} or $$", field=where)
    return value


def _stand_in(value: str) -> str:
    """The value with every variable replaced by a digit, to check its shape now."""
    return _VARIABLE.sub(lambda m: "$" if m.group() == "$$" else "1", value)


def check_url(url: str, where: str) -> SplitResult:
    """An http(s) URL with a host, an optional port and no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadValue(f"{where}: {exc}", field=where) from None
    if parts.scheme not in ("http", "https"):
        raise BadValue(f"{where} must be an http:// or https:// URL", field=where)
    if "@" in parts.netloc:
        raise BadValue(f"{where} must not carry credentials", field=where)
    if not parts.hostname or (port is not None and not 1 <= port <= 65535):
        raise BadValue(f"{where} needs a host (and a port from 1 to 65535)", field=where)
    return parts


def _http(value: Any, where: str) -> str:
    check_url(_stand_in(_text(value, where)), where)
    return str(value)


def split_host_port(value: str, where: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``, strictly: ASCII host, port 1 to 65535."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid_host = bool(host) and all(c in "0123456789abcdefABCDEF:." for c in host)
    else:
        valid_host = bool(_HOST.fullmatch(host))
    if not sep or not valid_host or not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise BadValue(f"{where} must be host:port (port 1 to 65535)", field=where)
    return host, int(port)


def _tcp(value: Any, where: str) -> str:
    split_host_port(_stand_in(_text(value, where)), where)
    return str(value)


def _exec(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise InvalidProcessInfo(f"{where} must be a list of strings", field=where)
    if not 1 <= len(value) <= MAX_EXEC_ARGS:
        raise BadValue(f"{where} takes 1 to {MAX_EXEC_ARGS} arguments", field=where)
    for arg in value:
        check_text(arg, where, MAX_EXEC_ARG_LENGTH)
        if not string.Template(arg).is_valid():
            raise BadValue(f"{where}: a '$' must start $NAME, ${{NAME}} or $$", field=where)
    if not value[0]:
        raise BadValue(f"{where} must name a program", field=where)
    return list(value)


def _log(value: Any, where: str) -> tuple[str, re.Pattern[str]]:
    if not isinstance(value, str):
        raise InvalidProcessInfo(f"{where} must be a regular expression", field=where)
    check_text(value, where, MAX_TARGET_LENGTH)
    try:
        return value, re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise BadValue(f"{where}: not a regular expression ({exc})", field=where) from None
