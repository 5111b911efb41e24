"""gafferd's ini config file, parsed into plain dataclasses (spec 11.2).

Parsing is kept apart from starting anything (the daemon does that), so the
daemon, the tests and any ``--check`` tool share one pure function, and every
mistake in a file surfaces as one ``ConfigError`` naming the file, section and
key, before a single process is spawned, instead of as a traceback later.

This module reads the ``[gaffer]`` section and assembles the ``DaemonConfig``;
each other kind of section has its own module (``config_endpoints``,
``config_processes``, ``config_credentials``, ``config_webhooks``), on top of
``ini_source`` (files, includes, where each key came from) and ``ini_values``
(one converter per kind of value).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from typing import Any

from . import dependencies
from .address import Address, parse_address
from .auth import ClientSpec, TokenSpec
from .config_credentials import parse_credentials
from .config_endpoints import (
    CONNECTION_KEYS,
    DEFAULT_SOCKET_MODE,
    ENDPOINT_KEYS,
    ConnectionLimits,
    EndpointConfig,
    parse_connection_limits,
    parse_endpoints,
)
from .config_processes import (
    PROCESS_KEYS,
    ProcessConfig,
    apply_env,
    parse_process,
    validate_process,
)
from .config_webhooks import parse_webhooks
from .errors import GafferError
from .flapping import BackoffConfig
from .ini_source import IniSource, read_file
from .ini_values import as_backoff, as_bool, as_int, as_list, as_mode, as_size
from .limits import (
    DEFAULT_MAX_BUFFER_SIZE,
    DEFAULT_MAX_PROCESSES,
    DEFAULT_MAX_TOTAL_PROCESSES,
    MIN_BUFFER_SIZE,
    ProcessLimits,
)  # fmt: skip
from .signing import Secret

#: The parts of the config other modules, the tests and the README import from here.
__all__ = [
    "CONNECTION_KEYS", "DEFAULT_BUFFER", "DEFAULT_SOCKET_MODE", "ENDPOINT_KEYS", "GAFFER_KEYS",
    "PROCESS_KEYS", "Address", "ConnectionLimits", "DaemonConfig", "EndpointConfig",
    "ProcessConfig", "load_config", "parse_address", "parse_config",
]  # fmt: skip

DEFAULT_BUFFER = 1024 * 1024
GAFFER_KEYS = frozenset(
    {
        "http_endpoints", "plugins_dir", "include", "include_dir", "cors_origins",
        "stream_buffer_size", "stdin_max_body", "stdin_queue_size", "log_dir",
        "server_names", "allow_unauthenticated", "socket_mode", "runtime_dir", *CONNECTION_KEYS,
        "max_processes", "max_total_processes", "max_buffer_size", "backoff",
    }
)  # fmt: skip


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


def _check_sections(src: IniSource) -> None:
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


def _build(src: IniSource, path: str | None) -> DaemonConfig:
    """Turn merged sections into a DaemonConfig, validating everything."""
    _check_sections(src)
    gaffer = src.values("gaffer", GAFFER_KEYS.__contains__)
    processes: dict[str, ProcessConfig] = {}
    for section in src.sections:
        if section.startswith("process:"):
            process = parse_process(src, section)
            if process is not None:
                processes[process.name] = process
    apply_env(src, processes)
    limits = _limits(src, gaffer)
    total = 0
    graph = {}
    for process in processes.values():
        template = validate_process(src, process)
        graph[process.name] = template.depends_on
        try:
            limits.check(template.numprocesses, template.buffer_size, total)
        except GafferError as exc:
            raise src.error(exc.message, process.section, exc.field) from None
        total += template.numprocesses
    start_order = _start_order(src, processes, graph)
    webhooks, webhook_secrets = parse_webhooks(src)
    cors = as_list(gaffer.get("cors_origins", ""))
    tokens, clients = parse_credentials(src)

    def size(key: str) -> int:
        return src.convert("gaffer", gaffer, key, as_size, DEFAULT_BUFFER)

    return DaemonConfig(
        path=path,
        endpoints=parse_endpoints(src, as_list(gaffer.get("http_endpoints", ""))),
        processes=start_order,
        webhooks=webhooks,
        webhook_secrets=webhook_secrets,
        cors_origins=None if not cors else ["*"] if "*" in cors else cors,
        tokens=tokens,
        clients=clients,
        server_names=[name.lower() for name in as_list(gaffer.get("server_names", ""))],
        allow_unauthenticated=src.convert(
            "gaffer", gaffer, "allow_unauthenticated", as_bool, False
        ),
        socket_mode=src.convert("gaffer", gaffer, "socket_mode", as_mode, DEFAULT_SOCKET_MODE),
        connections=parse_connection_limits(src, gaffer),
        stream_buffer_size=size("stream_buffer_size"),
        stdin_max_body=size("stdin_max_body"),
        stdin_queue_size=size("stdin_queue_size"),
        log_dir=gaffer.get("log_dir") or None,
        plugins_dir=gaffer.get("plugins_dir") or None,
        limits=limits,
        backoff=src.convert("gaffer", gaffer, "backoff", as_backoff, BackoffConfig()),
        runtime_dir=_beside(path, gaffer.get("runtime_dir", "").strip()),
    )


def _start_order(
    src: IniSource, processes: dict[str, ProcessConfig], graph: dict[str, Any]
) -> list[ProcessConfig]:
    """Priority order (stable: equal priorities keep file order; none goes last), then every
    template moved after what it ``depends_on``; an unknown name or a cycle is refused."""
    by_priority = sorted(processes.values(), key=lambda p: (p.priority is None, p.priority or 0))
    try:
        order = dependencies.start_order({p.name: graph[p.name] for p in by_priority})
    except GafferError as exc:
        what = "dependency cycle" if exc.code == "dependency_cycle" else "unknown dependency"
        name = exc.message.split(" -> ")[0].split(" depends on ")[0]
        section = processes[name].section if name in processes else ""
        raise src.error(f"{what}: {exc.message}", section, "depends_on") from None
    return [processes[name] for name in order]


def _limits(src: IniSource, gaffer: dict[str, str]) -> ProcessLimits:
    """``max_processes``, ``max_total_processes`` and ``max_buffer_size`` of [gaffer]."""
    values = {
        "max_processes": src.convert("gaffer", gaffer, "max_processes", as_int,
                                     DEFAULT_MAX_PROCESSES),
        "max_total_processes": src.convert("gaffer", gaffer, "max_total_processes", as_int,
                                           DEFAULT_MAX_TOTAL_PROCESSES),
        "max_buffer_size": src.convert("gaffer", gaffer, "max_buffer_size", as_size,
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
    src = IniSource(path)
    src.read(text, path)
    return _build(src, None if path == "<config>" else path)


def _includes(src: IniSource) -> list[str]:
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
    src = IniSource(path)
    src.read(read_file(path), path)
    seen = {os.path.realpath(path)}
    for include in _includes(src):
        if os.path.realpath(include) not in seen:
            seen.add(os.path.realpath(include))
            src.read(read_file(include), include)
    return _build(src, path)
