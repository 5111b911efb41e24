"""gafferd: patch first, read the config, serve every endpoint, shut down cleanly.

Signal handlers only hand the signal to the main greenlet (stop or reload);
the main greenlet does the work. SIGTERM/SIGINT/SIGQUIT stop every child
gracefully and exit 0; SIGHUP reloads the config file: new templates are
added, removed ones deleted, changed ones updated, unchanged ones untouched.

Anyone who can reach gafferd's API can run any command as gafferd's user, so
gafferd refuses to listen beyond loopback unless callers must authenticate
(a ``[token:NAME]``, a ``[client:SUBJECT]``, or ``client_cert = required`` on
that endpoint), or it is told ``--allow-unauthenticated``. ``gafferd token``
mints a token without loading gevent or Flask.

The command line is parsed in ``options``, the log lines are made in
``daemonlog`` and ``-vv``'s echo of the children's output is a ``console``:
this module runs a gafferd, from the lock to the last child stopped.
Under a ``Type=notify`` service manager (``NOTIFY_SOCKET`` set) it reports
ready, reloading and stopping, and pings the watchdog (``sdnotify``);
``gafferd CONFIG --systemd-unit`` writes such a unit and exits (``systemd_unit``).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from typing import TYPE_CHECKING, Any

from .daemonlog import DaemonLog
from .defaults import DEFAULT_BIND
from .options import EXIT_CONFIG, build_parser, command_line_endpoint, token_main
from .sdnotify import Notifier

if TYPE_CHECKING:
    import gevent

    from .bootstrap import Extras
    from .config import Address, DaemonConfig, EndpointConfig
    from .console import Console, Terminal
    from .manager import Manager
    from .runtime import Runtime

#: Another manager holds the runtime dir's lock (the same config, or the same runtime_dir).
EXIT_RUNNING = 1
SHUTDOWN_TIMEOUT = 30.0


def daemonize() -> None:
    """Classic double fork, before gevent's hub exists; stdio goes to /dev/null."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["token"]:  # a config file named "token" is still `gafferd ./token`
        return token_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    config_path = args.config or args.config_opt
    if args.systemd_unit is None and (args.force or args.watchdog is not None):
        parser.error("--force and --watchdog go with --systemd-unit")
    if args.systemd_unit is not None:  # writes a file, starts nothing
        from .systemd_unit import unit_main

        return unit_main(args, config_path)
    if args.daemon:
        daemonize()
    from gevent import monkey

    monkey.patch_all()
    return Daemon(args, config_path).run()


class Daemon:
    """One gafferd run: owns the manager, the servers, the log files and the webhooks."""

    def __init__(self, args: argparse.Namespace, config_path: str | None) -> None:
        self.args = args
        self.config_path = config_path
        self.servers: list[Any] = []
        self.endpoints: list[EndpointConfig] = []
        #: The config file's endpoints as last read (a change needs a restart).
        self.config_endpoints: list[EndpointConfig] = []
        self.extras: Extras | None = None
        self.app: Any = None
        self.applied: dict[str, dict[str, Any]] = {}
        self.runtime: Runtime | None = None
        self._log = DaemonLog(timestamps=args.verbose >= 1)
        #: ``-vv``'s echo of the children's output (its own greenlet and thread).
        self.console: Console | None = None
        self.terminal: Terminal | None = None
        #: systemd's ``Type=notify`` (no-op without ``NOTIFY_SOCKET``); after ``--daemon``'s forks.
        self.notifier = Notifier(say=self.log)
        self.urls: list[str] = []
        self.watchdog: gevent.Greenlet[Any] | None = None

    def log(self, message: str) -> None:
        """One line of gafferd's own log (see ``daemonlog``)."""
        self._log(message)

    def load(self) -> DaemonConfig:
        from .bootstrap import load

        config = load(self.config_path)
        config.allow_unauthenticated = self._allow_unauthenticated(config)
        return config

    def run(self) -> int:
        import signal

        import gevent
        from gevent.event import Event

        from .errors import BindError, ConfigError, NotTheManager

        if self.args.verbose >= 1:
            self._log.take_over_logging()
        try:
            config = self.load()
            endpoints = self._endpoints(config)
            exposed = self._exposed(config, endpoints)
        except (ConfigError, BindError) as exc:
            self.log(str(exc))
            return EXIT_CONFIG
        if exposed and not self._allow_unauthenticated(config):
            self.log(refusal(exposed))
            return EXIT_CONFIG
        if exposed:
            self.log(
                f"WARNING: listening on {', '.join(map(str, exposed))} without authentication "
                f"(allow_unauthenticated): anyone who can reach it can run any command as "
                f"{_user_name()}"
            )
        self.endpoints, self.config_endpoints = endpoints, config.endpoints
        try:  # before binding: a second gafferd must say who runs, not "address in use"
            self.runtime = self._claim(config)
        except (ConfigError, NotTheManager) as exc:
            self.log(str(exc))
            return EXIT_RUNNING if isinstance(exc, NotTheManager) else EXIT_CONFIG
        if self.args.pidfile and not self._write_pidfile(self.args.pidfile):
            self.runtime.close()
            return 1
        self.stop_requested, self.reload_requested = Event(), Event()
        # The handles must stay referenced: a collected handle stops its watcher.
        self.signal_handles = [
            gevent.signal_handler(sig, self.stop_requested.set)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
        ]
        self.signal_handles.append(gevent.signal_handler(signal.SIGHUP, self.reload_requested.set))
        self.watchdog = gevent.spawn(self.notifier.run_watchdog, gevent.sleep)
        try:
            manager = self._start(config, endpoints)
        except (ConfigError, OSError) as exc:
            self.log(str(exc))
            self.watchdog.kill(block=False)
            self._cleanup_pidfile()
            self.runtime.close()
            return EXIT_CONFIG if isinstance(exc, ConfigError) else 1
        self.notifier.ready(self._status())  # every endpoint listens, the config is applied
        try:
            while not self.stop_requested.is_set():
                gevent.wait([self.stop_requested, self.reload_requested], count=1)
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.notifier.reloading()
                    self._reload(manager)
                    self.notifier.ready(self._status())  # applied, refused or stopped part way
        finally:
            self._shutdown(manager)
        return 0

    def _endpoints(self, config: DaemonConfig) -> list[EndpointConfig]:
        """``--bind``'s endpoint when given, else the config's, else DEFAULT_BIND."""
        from .errors import ConfigError

        args = self.args
        if args.bind is None and config.endpoints:
            for flag in ("certfile", "keyfile", "ca_certs"):
                if getattr(args, flag):
                    option = "--" + flag.replace("_", "-")
                    raise ConfigError("applies to --bind's endpoint: add --bind", path=option)
            return config.endpoints
        return [command_line_endpoint(args)]

    @staticmethod
    def _exposed(config: DaemonConfig, endpoints: list[EndpointConfig]) -> list[Address]:
        """The addresses beyond loopback where a caller would not have to authenticate."""
        from .server import is_loopback

        if config.tokens or config.clients:
            return []
        return [address for endpoint in endpoints if endpoint.client_cert != "required"
                for address in endpoint.addresses if not is_loopback(address)]  # fmt: skip

    def _claim(self, config: DaemonConfig) -> Runtime:
        """The runtime dir's lock (one manager per config); raises NotTheManager if taken."""
        from .runtime import Runtime

        bind = f"gafferd:{self.args.bind or DEFAULT_BIND}"
        return Runtime.claim(config.runtime_dir, config.path, bind)

    def _allow_unauthenticated(self, config: DaemonConfig) -> bool:
        return bool(self.args.allow_unauthenticated or config.allow_unauthenticated)

    def _start(self, config: DaemonConfig, endpoints: list[Any]) -> Manager:
        from . import bootstrap
        from .server import make_servers

        manager = bootstrap.build_manager(config)
        if self.args.verbose >= 2:
            from .console import Console, EchoLayout, Terminal

            sys.stdout.flush()
            self.terminal = Terminal(sys.stdout.fileno())
            self.console = Console(manager, EchoLayout(), self.terminal.write)
        if self.args.verbose >= 1:
            manager.bus.subscribe(".", self._echo_event)
        app = bootstrap.build_app(manager, config)
        self.app = app
        self._warn_about(config)
        self.extras = bootstrap.start_extras(app, manager, config)
        assert self.runtime is not None
        self.runtime.attach(manager, say=self.log)  # before anything new starts
        servers = make_servers(app, endpoints, limits=config.connections,
                               socket_mode=config.socket_mode, log=self.log)  # fmt: skip
        for server, url in servers:
            server.start()
            self.servers.append(server)
            self.urls.append(url)
            self.log(f"listening on {url}")
        app.extensions["gaffer"].settings.bound_hosts = [
            address.host for endpoint in endpoints for address in endpoint.addresses
        ]
        self.applied = bootstrap.apply_templates(manager, config, log=self.log)
        return manager

    def _reload(self, manager: Manager) -> None:
        from . import bootstrap
        from .errors import BindError, ConfigError

        try:
            config = self.load()
        except ConfigError as exc:
            self.log(f"reload refused, keeping the running config: {exc}")
            return
        try:  # removing the last token must not leave a network address open to anyone
            exposed = self._exposed(config, self.endpoints)
        except BindError as exc:
            self.log(f"reload refused, keeping the running config: {exc}")
            return
        if exposed and not self._allow_unauthenticated(config):
            self.log(f"reload refused, keeping the running config: {refusal(exposed)}")
            return
        self.log("reloading the config")
        self._note_endpoint_change(config)
        if config.backoff != manager.backoff:
            manager.set_backoff(config.backoff)
            self.log("applied the new backoff settings")
        closed = bootstrap.apply_security(self.app, config)
        self._warn_about(config)
        if closed:
            self.log(f"closed {closed} feeds and websockets of removed or changed tokens")
        try:
            self.applied = bootstrap.apply_templates(manager, config, self.applied, log=self.log)
        except ConfigError as exc:
            self.log(f"reload stopped part way: {exc}")
        if self.runtime is not None and config.runtime_dir not in (None, self.runtime.directory):
            self.log(f"runtime_dir {config.runtime_dir} applies at the next start")

    def _note_endpoint_change(self, config: DaemonConfig) -> None:
        """Endpoints are bound once: a changed ``bind`` (or TLS file) is said to need a restart."""
        if config.endpoints == self.config_endpoints:
            return
        self.config_endpoints = config.endpoints
        if self.args.bind is not None:
            self.log("the config's endpoints changed; --bind is in effect, so they are not used")
            return
        wanted = ", ".join(str(a) for e in config.endpoints for a in e.addresses) or DEFAULT_BIND
        serving = ", ".join(str(a) for e in self.endpoints for a in e.addresses)
        self.log(
            f"the config's endpoints changed ({wanted}); still listening on {serving} with the "
            "old settings: restart gafferd to apply them"
        )

    def _warn_about(self, config: DaemonConfig) -> None:
        if config.cors_origins == ["*"]:
            self.log(
                "warning: cors_origins = * lets a page on any web site read this API from"
                " its visitors' browsers" + ("" if config.tokens else " (no token is configured)")
            )

    def _status(self) -> str:
        return f"listening on {', '.join(self.urls)}"

    def _shutdown(self, manager: Manager) -> None:
        self.notifier.stopping()
        self.log("stopping every process")
        manager.stop_all(SHUTDOWN_TIMEOUT)
        if self.runtime is not None:
            self.runtime.close()  # no child left: no record; the lock is free
        if self.extras is not None:
            self.extras.close()
        if self.console is not None and self.terminal is not None:
            self.console.close()  # what is left, unless stdout does not read
            self.terminal.close()
        for server in self.servers:
            server.stop(timeout=1)
            server.connections.close()
        self._cleanup_pidfile()
        if self.watchdog is not None:
            self.watchdog.kill(block=False)
        self.log("stopped")

    def _write_pidfile(self, path: str) -> bool:
        try:
            with open(path) as f:
                old = int(f.read().strip() or 0)
            if old and old != os.getpid():
                os.kill(old, 0)
                self.log(f"already running with pid {old} ({path})")
                return False
        except (OSError, ValueError):
            pass
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True

    def _cleanup_pidfile(self) -> None:
        if self.args.pidfile:
            with contextlib.suppress(OSError):
                os.unlink(self.args.pidfile)

    def _echo_event(self, event: str, payload: dict[str, Any]) -> None:
        if event.startswith("proc."):
            return
        details = " ".join(f"{k}={v}" for k, v in payload.items() if k not in ("event", "name"))
        self.log(f"{event} {payload.get('name', '')} {details}".rstrip())


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (a container with an arbitrary uid)
        return f"uid {os.getuid()}"


def refusal(exposed: list[Address]) -> str:
    """The one line gafferd exits with when it would serve a network without authentication."""
    return (
        f"refusing to listen on {', '.join(map(str, exposed))} without authentication: "
        "add a [token:NAME] section (gafferd token NAME --role admin prints one), "
        "require client certificates (client_cert = required), or pass --allow-unauthenticated"
    )


if __name__ == "__main__":
    sys.exit(main())
