"""gafferd's ini config file, parsed into plain dataclasses (spec 11.2).

Parsing is kept apart from starting anything (the daemon does that), so the
daemon, the tests and any ``--check`` tool share one pure function, and every
mistake in a file surfaces as one ``ConfigError`` naming the file, section and
key, before a single process is spawned, instead of as a traceback later.
"""

from __future__ import annotations

import configparser
import fnmatch
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from .auth import ClientSpec, Role, TokenSpec, parse_hash, parse_scope
from .defaults import BARE_HOST_PORT
from .errors import ConfigError, GafferError
from .flapping import BackoffConfig
from .limits import (
    DEFAULT_MAX_BUFFER_SIZE,
    DEFAULT_MAX_PROCESSES,
    DEFAULT_MAX_TOTAL_PROCESSES,
    MIN_BUFFER_SIZE,
    ProcessLimits,
)  # fmt: skip
from .signing import Secret, parse_hook
from .template import KNOWN_KEYS, FlappingConfig, ProcessTemplate

T = TypeVar("T")

DEFAULT_BACKLOG = 128
DEFAULT_BUFFER = 1024 * 1024
DEFAULT_SOCKET_MODE = 0o600
CLIENT_CERT_MODES = ("none", "optional", "required")
# configparser would fold [DEFAULT] into every section and hide where a key
# came from; we read it as an ordinary section and apply it ourselves.
_RAW_DEFAULT = "\0"
_SIZE = re.compile(r"\s*([0-9]{1,18})\s*(kb|mb|gb)?\s*", re.IGNORECASE)
_INT = re.compile(r"\s*-?[0-9]{1,18}\s*")
_SIZE_UNITS = {None: 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_BACKOFF_KEYS = ("first_delay", "max_delay", "reset_after", "give_up_after")
#: Keys whose values are taken whole: a command line uses `` ;`` and `` #`` (``sh -c 'a ; b'``),
#: so an inline comment there would be ambiguous. Everywhere else (``[env:NAME]`` values too, as
#: in the spec's own example) `` ;`` or `` #`` starts a comment.
VERBATIM_KEYS = frozenset({"cmd", "args"})
#: An inline comment: ``;`` or ``#`` after whitespace (or opening the value), to the line's end.
_INLINE_COMMENT = re.compile(r"(?:^|\s)[;#].*$")


@dataclass(frozen=True)
class Address:
    """One bind URI, as ``parse_address`` understood it."""

    kind: str  # "tcp", "tcp6" or "unix"
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if self.kind == "tcp6" else f"{self.host}:{self.port}"


def parse_address(uri: str) -> Address:
    """Parse a bind URI (spec 2.1); raise ``ValueError`` if it is not one."""
    uri = uri.strip()
    if uri.startswith("unix:"):
        if not uri[5:]:
            raise ValueError(f"{uri!r} has no socket path")
        return Address("unix", "", 0, uri[5:])
    kind, host, port = "tcp", uri, ""
    if uri.startswith("["):
        host, bracket, port = uri[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise ValueError(f"{uri!r} is not a valid [ipv6]:port address")
        kind, port = "tcp6", port[1:] if port else ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in uri:
        host, _, port = uri.partition(":")
        if ":" in port:
            raise ValueError(f"{uri!r}: write IPv6 addresses as [addr]:port")
    if (port or uri.endswith(":")) and (
        not (port.isascii() and port.isdigit()) or int(port) > 65535
    ):
        raise ValueError(f"{port!r} is not a valid port number")
    if not host:  # gaffer 0.4 read ":8000" as every interface; say which one is meant
        raise ValueError(
            f"{uri!r} has no host: write 127.0.0.1:{port or BARE_HOST_PORT} (this machine only) "
            f"or 0.0.0.0:{port or BARE_HOST_PORT} (every interface)"
        )
    return Address(kind, host.lower(), int(port) if port else BARE_HOST_PORT, "")


@dataclass
class EndpointConfig:
    """One ``[endpoint:NAME]`` listed in ``http_endpoints``."""

    name: str
    addresses: list[Address]
    certfile: str | None = None
    keyfile: str | None = None
    backlog: int = DEFAULT_BACKLOG
    ca_certs: str | None = None  # CA bundle that client certificates must chain to
    client_cert: str = "none"  # "none", "optional" or "required"


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how many: the ``[gaffer]`` keys bounding what a client can hold open."""

    header_timeout: float = 10.0  # from connect (TLS included) to the end of a request's headers
    keepalive_timeout: float = 60.0  # idle between two requests on one connection
    max_connections: int = 10_000  # open HTTP connections, all endpoints together
    websocket_ping_interval: float = 20.0
    websocket_idle_timeout: float = 60.0  # nothing from the client, not even a pong


@dataclass
class ProcessConfig:
    """One ``[process:NAME]``: the ``POST /processes`` body it stands for."""

    name: str
    section: str
    body: dict[str, Any]
    priority: int | None


@dataclass
class DaemonConfig:
    """Everything gafferd reads from its config file."""

    path: str | None
    endpoints: list[EndpointConfig]
    processes: list[ProcessConfig]
    webhooks: list[tuple[str, str]]
    cors_origins: list[str] | None = None  # None: not set; ["*"]: any origin
    tokens: list[TokenSpec] = field(default_factory=list)
    clients: list[ClientSpec] = field(default_factory=list)
    server_names: list[str] = field(default_factory=list)
    allow_unauthenticated: bool = False
    socket_mode: int = DEFAULT_SOCKET_MODE
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    stream_buffer_size: int = DEFAULT_BUFFER
    stdin_max_body: int = DEFAULT_BUFFER
    stdin_queue_size: int = DEFAULT_BUFFER
    log_dir: str | None = None
    plugins_dir: str | None = None
    #: The lock and the record of running process groups (``runtime.py``); None: the default.
    runtime_dir: str | None = None
    #: URL -> the secret that signs every POST to it (``[webhooks]`` lines with a secret).
    webhook_secrets: dict[str, Secret] = field(default_factory=dict)
    limits: ProcessLimits = field(default_factory=ProcessLimits)
    #: ``[gaffer] backoff``: how every template is restarted after a crash.
    backoff: BackoffConfig = field(default_factory=BackoffConfig)


# -- value converters: each raises ValueError with a message for the user ----


def _as(parse: Callable[[str], T], what: str) -> Callable[[str], T]:
    """Wrap ``parse`` so any failure reads "'x' is not <what>"."""

    def convert(value: str) -> T:
        try:
            return parse(value)
        except (ValueError, KeyError):
            raise ValueError(f"{value!r} is not {what}") from None

    return convert


def _finite(value: str) -> float:
    if not value.isascii() or "_" in value:
        raise ValueError(value)  # float() takes other scripts' digits and "1_0"
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _bytes(value: str) -> int:
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(value)
    number, unit = match.groups()
    return int(number) * _SIZE_UNITS[unit.lower() if unit else None]


_bool = _as(lambda v: configparser.ConfigParser.BOOLEAN_STATES[v.strip().lower()], "a boolean")


def _ascii_int(value: str) -> int:
    if not _INT.fullmatch(value):
        raise ValueError(value)  # int() takes other scripts' digits, "1_000", 5,000 digits
    return int(value)


_int = _as(_ascii_int, "an integer")
_float = _as(_finite, "a finite number")
_size = _as(_bytes, "a size in bytes (e.g. 4096, 64KB, 50MB, 1GB)")


def _user(value: str) -> int | str:
    return int(value) if value.isascii() and value.isdigit() else value


def _octal_mode(value: str) -> int:
    mode = int(value.strip(), 8)
    if not 0 <= mode <= 0o777:
        raise ValueError(value)
    return mode


_mode = _as(_octal_mode, "an octal file mode such as 0600 or 0660")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _labels(value: str) -> list[str]:
    return [label.strip() for label in value.split(",")] if value.strip() else []


def _flapping(value: str) -> dict[str, Any]:
    """``flapping = ATTEMPTS [WINDOW [RETRY_IN [MAX_RETRY]]]``: the numbers given, checked by
    ``FlappingConfig``'s own rules so the ini and the API accept the same settings."""
    names = [item.name for item in fields(FlappingConfig)]
    parts = value.replace(",", " ").split()
    if not 1 <= len(parts) <= len(names):
        raise ValueError("takes 1 to 4 numbers: " + " ".join(names))
    given = {key: _float(part) for key, part in zip(names, parts, strict=False)}
    try:
        settings = FlappingConfig.from_value(given).to_json()
    except GafferError as exc:
        raise ValueError(exc.message.removeprefix("flapping ")) from None  # the key is named
    return {key: settings[key] for key in given}


def _check(value: str) -> Any:
    """``readiness = {"http": "http://127.0.0.1:$PORT/health", "period": 2}``: the API's JSON
    object on one line, checked by the template like a ``POST /processes`` body."""
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValueError(f"must be a JSON object on one line ({exc})") from None


def _backoff(value: str) -> BackoffConfig:
    """``backoff = FIRST_DELAY [MAX_DELAY [RESET_AFTER [GIVE_UP_AFTER]]]``, like ``flapping``."""
    parts = value.replace(",", " ").split()
    if not 1 <= len(parts) <= len(_BACKOFF_KEYS):
        raise ValueError("takes 1 to 4 numbers: first_delay max_delay reset_after give_up_after")
    numbers = [_float(part) for part in parts]
    if len(numbers) == 4 and not numbers[3].is_integer():
        raise ValueError(f"give_up_after must be a whole number, not {parts[3]!r}")
    settings: dict[str, Any] = dict(zip(_BACKOFF_KEYS, numbers, strict=False))
    if "give_up_after" in settings:
        settings["give_up_after"] = int(settings["give_up_after"])
    return BackoffConfig(**settings)


#: ``[gaffer]`` key -> (converter, smallest, largest) of each ``ConnectionLimits`` field.
CONNECTION_KEYS: dict[str, tuple[Callable[[str], Any], float, float]] = {
    "header_timeout": (_float, 0.001, 3600), "keepalive_timeout": (_float, 0.001, 86400),
    "max_connections": (_int, 1, 1_000_000), "websocket_ping_interval": (_float, 0.001, 3600),
    "websocket_idle_timeout": (_float, 0.001, 86400),
}  # fmt: skip

#: How the ini reads a [process:NAME] key that is not plain text; see PROCESS_KEYS.
_PROCESS_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "uid": _user, "gid": _user, "detach": _bool, "shell": _bool, "os_env": _bool, "start": _bool,
    "redirect_input": _bool, "numprocesses": _int, "redirect_output": _labels,
    "graceful_timeout": _float, "priority": _int, "flapping": _flapping,
    "buffer_size": _size, "logfile_maxbytes": _size, "logfile_backups": _int,
    "logfile_rotate_daily": _bool, "readiness": _check, "liveness": _check,
}  # fmt: skip
#: Template keys the ini writes elsewhere: the name is the section's, env is [env:NAME], and
#: custom_streams and group have no ini form.
_NOT_PROCESS_KEYS = frozenset({"name", "env", "custom_streams", "group"})
#: [process:NAME] key -> converter: the template's keys (one table, in template.py), so a key
#: the API learns is a key the ini reads; text unless _PROCESS_CONVERTERS says otherwise.
PROCESS_KEYS: dict[str, Callable[[str], Any]] = {
    key: _PROCESS_CONVERTERS.get(key, str) for key in sorted(KNOWN_KEYS - _NOT_PROCESS_KEYS)
}
GAFFER_KEYS = frozenset(
    {
        "http_endpoints", "plugins_dir", "include", "include_dir", "cors_origins",
        "stream_buffer_size", "stdin_max_body", "stdin_queue_size", "log_dir",
        "server_names", "allow_unauthenticated", "socket_mode", "runtime_dir", *CONNECTION_KEYS,
        "max_processes", "max_total_processes", "max_buffer_size", "backoff",
    }
)  # fmt: skip
ENDPOINT_KEYS = frozenset({"bind", "certfile", "keyfile", "backlog", "ca_certs", "client_cert"})
TOKEN_KEYS = frozenset({"role", "hash", "scope"})
CLIENT_KEYS = frozenset({"role", "scope"})

Origins = dict[tuple[str, str | None], str]


def _syntax_error(exc: configparser.Error, text: str, path: str) -> ConfigError:
    """Translate configparser's errors, naming the section and key where known."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return ConfigError(
            f"line {exc.lineno}: {exc.line.strip()!r} before any [section]", path=path
        )
    if isinstance(exc, configparser.DuplicateOptionError):
        message, section, key = f"line {exc.lineno}: key repeated", exc.section, exc.option
        return ConfigError(message, path=path, section=section, key=key)
    if isinstance(exc, configparser.DuplicateSectionError):
        message = f"line {exc.lineno}: section repeated"
        return ConfigError(message, path=path, section=exc.section)
    if isinstance(exc, configparser.ParsingError):
        lineno = exc.errors[0][0]
        lines = text.splitlines()[:lineno]
        found = (configparser.ConfigParser.SECTCRE.match(line) for line in lines)
        headers = [match.group("header") for match in found if match]
        message = f"line {lineno}: cannot parse {lines[-1].strip()!r}"
        return ConfigError(message, path=path, section=headers[-1].strip() if headers else "")
    return ConfigError(str(exc), path=path)


class _Source:
    """Sections merged from one or more files, and which file wrote each key."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sections: dict[str, dict[str, str]] = {}
        self.origins: Origins = {}

    def read(self, text: str, path: str) -> None:
        """Parse one file's text and merge it in: a later file wins per key."""
        # Inline comments are cut here, per key, not by configparser: see VERBATIM_KEYS.
        parser = configparser.ConfigParser(interpolation=None, default_section=_RAW_DEFAULT)
        try:
            parser.read_string(text, source=path)
        except configparser.Error as exc:
            raise _syntax_error(exc, text, path) from None
        seen: set[str] = set()
        for header in parser.sections():
            kind, colon, name = header.partition(":")
            section = f"{kind.strip()}:{name.strip()}" if colon else header.strip()
            if section in seen:  # e.g. [process:web] and [process: web]
                raise ConfigError("section repeated", path=path, section=section)
            seen.add(section)
            self.origins.setdefault((section, None), path)
            target = self.sections.setdefault(section, {})
            for key, value in parser.items(header):
                target[key] = value if key in VERBATIM_KEYS else _uncomment(value)
                self.origins[(section, key)] = path

    def values(self, section: str, known: Callable[[str], bool]) -> dict[str, str]:
        """The section's keys, after those of [DEFAULT] that this kind of section knows."""
        own = self.sections.get(section, {})
        for key in own:
            if not known(key):
                raise self.error("unknown key", section, key)
        merged = {k: v for k, v in self.sections.get("DEFAULT", {}).items() if known(k)}
        merged.update(own)
        return merged

    def convert(
        self, section: str, values: dict[str, str], key: str, conv: Callable[[str], T], default: T
    ) -> T:
        """``conv(values[key])``, or ``default`` when absent; bad values are ConfigErrors."""
        if key not in values:
            return default
        try:
            return conv(values[key])
        except ValueError as exc:
            raise self.error(str(exc), section, key) from None

    def error(self, message: str, section: str = "", key: str | None = None) -> ConfigError:
        """A ConfigError pointing at the file and section that hold the key."""
        own, defaults = self.sections.get(section, {}), self.sections.get("DEFAULT", {})
        if key and key not in own and key in defaults:
            section = "DEFAULT"  # the value to fix is written there
        path = self.origins.get((section, key)) or self.origins.get((section, None)) or self.path
        return ConfigError(message, path=path, section=section, key=key)


def _uncomment(value: str) -> str:
    """``value`` without its inline comments, line by line (``2 ; two workers`` -> ``2``)."""
    lines = (_INLINE_COMMENT.sub("", line).rstrip() for line in value.split("\n"))
    return "\n".join(line for line in lines if line)


def _read_file(path: str) -> str:
    """The file's text; any failure to read it is a ConfigError."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the file: {reason}", path=path) from None


def _check_sections(src: _Source) -> None:
    """Refuse unknown section kinds, nameless sections and unknown keys in [DEFAULT]."""
    for section in src.sections:
        kind, colon, name = section.partition(":")
        if section in ("DEFAULT", "gaffer", "webhooks"):
            continue
        if not colon or kind not in ("endpoint", "process", "env", "token", "client"):
            expected = (
                "gaffer, webhooks, DEFAULT, endpoint:NAME, process:NAME, env:NAME, "
                "token:NAME, client:SUBJECT"
            )
            raise src.error(f"unknown section kind (expected one of {expected})", section)
        if not name:
            raise src.error(f"[{kind}:NAME] needs a name", section)
        if kind == "endpoint":  # catch typos even in endpoints not listed
            src.values(section, ENDPOINT_KEYS.__contains__)
    known = GAFFER_KEYS | ENDPOINT_KEYS | PROCESS_KEYS.keys()
    src.values("DEFAULT", known.__contains__)


def _endpoints(src: _Source, names: list[str]) -> list[EndpointConfig]:
    """The endpoints named by ``http_endpoints``, in that order."""
    endpoints: list[EndpointConfig] = []
    for name in names:
        section = f"endpoint:{name}"
        if section not in src.sections:
            raise src.error(
                f"lists {name!r} but there is no [{section}]", "gaffer", "http_endpoints"
            )
        if names.count(name) > 1:
            raise src.error(f"lists {name!r} twice", "gaffer", "http_endpoints")
        values = src.values(section, ENDPOINT_KEYS.__contains__)
        binds = _list(values.get("bind", ""))
        if not binds:
            continue  # spec: a section without bind is skipped
        try:
            addresses = [parse_address(bind) for bind in binds]
        except ValueError as exc:
            raise src.error(str(exc), section, "bind") from None
        certfile, keyfile = values.get("certfile") or None, values.get("keyfile") or None
        if keyfile and not certfile:
            raise src.error("keyfile given without certfile", section, "keyfile")
        backlog = src.convert(section, values, "backlog", _int, DEFAULT_BACKLOG)
        if backlog < 0:
            raise src.error("must be >= 0", section, "backlog")
        ca_certs = values.get("ca_certs") or None
        client_cert = values.get("client_cert", "none").strip().lower() or "none"
        if client_cert not in CLIENT_CERT_MODES:
            raise src.error(
                f"must be one of {', '.join(CLIENT_CERT_MODES)}", section, "client_cert"
            )
        if (ca_certs or client_cert != "none") and not certfile:
            raise src.error("client certificates need TLS: set certfile", section, "ca_certs")
        if client_cert != "none" and not ca_certs:
            raise src.error("needs ca_certs to verify client certificates", section, "client_cert")
        endpoints.append(
            EndpointConfig(name, addresses, certfile, keyfile, backlog, ca_certs, client_cert)
        )
    return endpoints


def _credentials(src: _Source) -> tuple[list[TokenSpec], list[ClientSpec]]:
    """The ``[token:NAME]`` and ``[client:SUBJECT]`` sections."""
    tokens: list[TokenSpec] = []
    clients: list[ClientSpec] = []
    seen_hashes: dict[bytes, str] = {}
    for section in src.sections:
        kind, _, name = section.partition(":")
        if kind not in ("token", "client"):
            continue
        own = src.sections[section]
        for key in own:  # [DEFAULT] never applies to credentials
            if key not in (TOKEN_KEYS if kind == "token" else CLIENT_KEYS):
                raise src.error("unknown key", section, key)
        if "role" not in own:
            raise src.error("needs a role (read, stdin, operate or admin)", section, "role")
        role = src.convert(section, own, "role", Role.parse, Role.READ)
        scope = parse_scope(own.get("scope", ""))
        if kind == "client":
            clients.append(ClientSpec(name, role, scope))
            continue
        if "hash" not in own:
            raise src.error("needs hash = sha256:<hex> (gafferd token NAME prints it)", section)
        digest = src.convert(section, own, "hash", parse_hash, b"")
        if digest in seen_hashes:
            raise src.error(f"same hash as [{seen_hashes[digest]}]", section, "hash")
        seen_hashes[digest] = section
        tokens.append(TokenSpec(name, role, digest, scope))
    return tokens, clients


def _connection_limits(src: _Source, gaffer: dict[str, str]) -> ConnectionLimits:
    """The ``[gaffer]`` connection keys, each within its range."""
    values: dict[str, Any] = {}
    for key, (conv, low, high) in CONNECTION_KEYS.items():
        value = src.convert("gaffer", gaffer, key, conv, None)
        if value is not None:
            if not low <= value <= high:
                raise src.error(f"must be between {low:g} and {high:g}", "gaffer", key)
            values[key] = value
    limits = ConnectionLimits(**values)
    if limits.websocket_idle_timeout <= limits.websocket_ping_interval:
        raise src.error(
            "must be longer than websocket_ping_interval, or no pong could ever arrive in time",
            "gaffer",
            "websocket_idle_timeout",
        )
    return limits


def _process(src: _Source, section: str) -> ProcessConfig | None:
    """The POST body for one [process:NAME], or None when it has no cmd (spec)."""
    name = section.partition(":")[2]
    values = src.values(section, PROCESS_KEYS.__contains__)
    parsed = {key: src.convert(section, values, key, PROCESS_KEYS[key], None) for key in values}
    if not (parsed.get("cmd") or "").strip():
        return None
    body: dict[str, Any] = {"name": name, "cmd": parsed.pop("cmd")}
    body["start"] = parsed.pop("start", True)
    body.update(parsed)
    return ProcessConfig(name, section, body, body.get("priority"))


def _apply_env(src: _Source, processes: dict[str, ProcessConfig]) -> None:
    """Each [env:NAME] replaces the env of the template named exactly NAME."""
    for section, values in src.sections.items():
        if section.startswith("env:"):
            name = section.partition(":")[2]
            if name not in processes:
                raise src.error(f"no [process:{name}] with a cmd to apply it to", section)
            processes[name].body["env"] = {key.upper(): value for key, value in values.items()}


def _validate(src: _Source, process: ProcessConfig) -> ProcessTemplate:
    """Refuse here what POST /processes would refuse, naming the key."""
    try:
        return ProcessTemplate.from_json(process.body)
    except GafferError as exc:
        key = exc.field if exc.field in PROCESS_KEYS else None
        section = f"env:{process.name}" if exc.field == "env" else process.section
        raise src.error(exc.message, section, key) from None
    except Exception as exc:  # a config mistake must stay a ConfigError, whatever raised it
        raise src.error(f"invalid: {exc}", process.section) from None


def _webhooks(src: _Source) -> tuple[list[tuple[str, str]], dict[str, Secret]]:
    """``[webhooks]``: ``event = URL [secret_file=PATH | secret_env=NAME | secret=VALUE]``.

    Returns the (event, URL) pairs in file order and each signed URL's secret.
    One URL has one secret (or none) on every line naming it: it is one receiver.
    """
    hooks: list[tuple[str, str]] = []
    secrets: dict[str, Secret] = {}
    first: dict[str, tuple[str, Secret | None]] = {}
    for event, value in src.sections.get("webhooks", {}).items():
        origin = src.origins.get(("webhooks", event), src.path)
        base_dir = os.path.dirname(os.path.abspath(origin))
        try:
            url, secret = parse_hook(value, base_dir=base_dir, environ=os.environ)
        except ValueError as exc:
            raise src.error(str(exc), "webhooks", event) from None
        other, other_secret = first.setdefault(url, (event, secret))
        if other_secret != secret:
            message = f"the same URL as {other!r} needs the same secret (or none on both)"
            raise src.error(message, "webhooks", event)
        hooks.append((event, url))
        if secret is not None:
            secrets[url] = secret
    return hooks, secrets


def _build(src: _Source, path: str | None) -> DaemonConfig:
    """Turn merged sections into a DaemonConfig, validating everything."""
    _check_sections(src)
    gaffer = src.values("gaffer", GAFFER_KEYS.__contains__)
    processes: dict[str, ProcessConfig] = {}
    for section in src.sections:
        if section.startswith("process:"):
            process = _process(src, section)
            if process is not None:
                processes[process.name] = process
    _apply_env(src, processes)
    limits = _limits(src, gaffer)
    total = 0
    for process in processes.values():
        template = _validate(src, process)
        try:
            limits.check(template.numprocesses, template.buffer_size, total)
        except GafferError as exc:
            raise src.error(exc.message, process.section, exc.field) from None
        total += template.numprocesses
    webhooks, webhook_secrets = _webhooks(src)
    cors = _list(gaffer.get("cors_origins", ""))
    tokens, clients = _credentials(src)

    def size(key: str) -> int:
        return src.convert("gaffer", gaffer, key, _size, DEFAULT_BUFFER)

    return DaemonConfig(
        path=path,
        endpoints=_endpoints(src, _list(gaffer.get("http_endpoints", ""))),
        # stable sort: equal priorities keep file order; no priority goes last
        processes=sorted(processes.values(), key=lambda p: (p.priority is None, p.priority or 0)),
        webhooks=webhooks,
        webhook_secrets=webhook_secrets,
        cors_origins=None if not cors else ["*"] if "*" in cors else cors,
        tokens=tokens,
        clients=clients,
        server_names=[name.lower() for name in _list(gaffer.get("server_names", ""))],
        allow_unauthenticated=src.convert("gaffer", gaffer, "allow_unauthenticated", _bool, False),
        socket_mode=src.convert("gaffer", gaffer, "socket_mode", _mode, DEFAULT_SOCKET_MODE),
        connections=_connection_limits(src, gaffer),
        stream_buffer_size=size("stream_buffer_size"),
        stdin_max_body=size("stdin_max_body"),
        stdin_queue_size=size("stdin_queue_size"),
        log_dir=gaffer.get("log_dir") or None,
        plugins_dir=gaffer.get("plugins_dir") or None,
        limits=limits,
        backoff=src.convert("gaffer", gaffer, "backoff", _backoff, BackoffConfig()),
        runtime_dir=_beside(path, gaffer.get("runtime_dir", "").strip()),
    )


def _limits(src: _Source, gaffer: dict[str, str]) -> ProcessLimits:
    """``max_processes``, ``max_total_processes`` and ``max_buffer_size`` of [gaffer]."""
    values = {
        "max_processes": src.convert("gaffer", gaffer, "max_processes", _int,
                                     DEFAULT_MAX_PROCESSES),
        "max_total_processes": src.convert("gaffer", gaffer, "max_total_processes", _int,
                                           DEFAULT_MAX_TOTAL_PROCESSES),
        "max_buffer_size": src.convert("gaffer", gaffer, "max_buffer_size", _size,
                                       DEFAULT_MAX_BUFFER_SIZE),
    }  # fmt: skip
    for key, minimum in (("max_processes", 1), ("max_total_processes", 1),
                         ("max_buffer_size", MIN_BUFFER_SIZE)):  # fmt: skip
        if values[key] < minimum:
            raise src.error(f"must be >= {minimum}", "gaffer", key)
    return ProcessLimits(**values)


def _beside(config_path: str | None, path: str) -> str | None:
    """``path`` relative to the config file's directory (not to gafferd's cwd); None if empty."""
    if not path:
        return None
    base = os.path.dirname(os.path.abspath(config_path)) if config_path else ""
    return os.path.join(base, os.path.expanduser(path))


def parse_config(text: str, *, path: str = "<config>") -> DaemonConfig:
    """Parse config text; ``include``/``include_dir`` are not followed."""
    src = _Source(path)
    src.read(text, path)
    return _build(src, None if path == "<config>" else path)


def _includes(src: _Source) -> list[str]:
    """Files named by the main file's include/include_dir, relative to its directory."""
    gaffer = src.values("gaffer", GAFFER_KEYS.__contains__)
    base = os.path.dirname(os.path.abspath(src.path))
    files = [os.path.join(base, name) for name in gaffer.get("include", "").split()]
    for directory in gaffer.get("include_dir", "").split():
        top = os.path.join(base, directory)
        if not os.path.isdir(top):
            raise src.error(f"{top!r} is not a directory", "gaffer", "include_dir")
        for root, dirnames, filenames in os.walk(top):
            dirnames.sort()  # a stable merge order, whatever the filesystem says
            files += [os.path.join(root, f) for f in sorted(fnmatch.filter(filenames, "*.ini"))]
    return files


def load_config(path: str) -> DaemonConfig:
    """Read a config file, merge its includes (later files win per key), and parse it."""
    src = _Source(path)
    src.read(_read_file(path), path)
    seen = {os.path.realpath(path)}
    for include in _includes(src):
        if os.path.realpath(include) not in seen:
            seen.add(os.path.realpath(include))
            src.read(_read_file(include), include)
    return _build(src, path)
