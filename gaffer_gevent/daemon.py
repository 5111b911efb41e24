"""gafferd: patch first, read the config, serve every endpoint, shut down cleanly.

Signal handlers only hand the signal to the main greenlet (stop or reload);
the main greenlet does the work. SIGTERM/SIGINT/SIGQUIT stop every child
gracefully and exit 0; SIGHUP reloads the config file: new templates are
added, removed ones deleted, changed ones updated, unchanged ones untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bootstrap import Extras
    from .config import DaemonConfig
    from .manager import Manager

EXIT_CONFIG = 2
SHUTDOWN_TIMEOUT = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gafferd", description="Run the gaffer process manager and its HTTP API."
    )
    parser.add_argument("config", nargs="?", help="ini config file")
    parser.add_argument("-c", "--config", dest="config_opt", metavar="CONFIG", help="ini file")
    parser.add_argument("-p", "--plugins-dir", help="plugins directory (accepted, unused)")
    parser.add_argument("--bind", default="127.0.0.1:5000", help="default endpoint address")
    parser.add_argument("--certfile", help="TLS certificate for the default endpoint")
    parser.add_argument("--keyfile", help="TLS key for the default endpoint")
    parser.add_argument("--backlog", type=int, default=128, help="listen backlog")
    parser.add_argument("--daemon", action="store_true", help="run in the background")
    parser.add_argument("--pidfile", help="write the daemon's pid here")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="-v prints lifecycle events, -vv also the children's output",
    )  # fmt: skip
    return parser


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
    args = build_parser().parse_args(argv)
    config_path = args.config or args.config_opt
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
        self.extras: Extras | None = None
        self.applied: dict[str, dict[str, Any]] = {}

    def log(self, message: str) -> None:
        """One line of gafferd's own log; control characters in it are escaped."""
        from .limits import printable

        print(f"gafferd: {printable(message)}", file=sys.stderr, flush=True)

    def load(self) -> DaemonConfig:
        from .bootstrap import load

        return load(self.config_path)

    def run(self) -> int:
        import signal

        import gevent
        from gevent.event import Event

        from .errors import ConfigError

        try:
            config = self.load()
            endpoints = config.endpoints or [self._default_endpoint()]
        except ConfigError as exc:
            self.log(str(exc))
            return EXIT_CONFIG
        if self.args.pidfile and not self._write_pidfile(self.args.pidfile):
            return 1
        self.stop_requested, self.reload_requested = Event(), Event()
        # The handles must stay referenced: a collected handle stops its watcher.
        self.signal_handles = [
            gevent.signal_handler(sig, self.stop_requested.set)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
        ]
        self.signal_handles.append(gevent.signal_handler(signal.SIGHUP, self.reload_requested.set))
        try:
            manager = self._start(config, endpoints)
        except (ConfigError, OSError) as exc:
            self.log(str(exc))
            self._cleanup_pidfile()
            return EXIT_CONFIG if isinstance(exc, ConfigError) else 1
        try:
            while not self.stop_requested.is_set():
                gevent.wait([self.stop_requested, self.reload_requested], count=1)
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self._reload(manager)
        finally:
            self._shutdown(manager)
        return 0

    def _default_endpoint(self) -> Any:
        from .config import EndpointConfig, parse_address
        from .errors import ConfigError

        try:
            addresses = [parse_address(a) for a in self.args.bind.split(",") if a.strip()]
        except ValueError as exc:
            raise ConfigError(str(exc), path="--bind") from exc
        return EndpointConfig("default", addresses, self.args.certfile, self.args.keyfile,
                              self.args.backlog)  # fmt: skip

    def _start(self, config: DaemonConfig, endpoints: list[Any]) -> Manager:
        from . import bootstrap
        from .server import make_servers

        echo = self._echo_output if self.args.verbose >= 2 else None
        manager = bootstrap.build_manager(config, output_listener=echo)
        if self.args.verbose >= 1:
            manager.bus.subscribe(".", self._echo_event)
        app = bootstrap.build_app(manager, config)
        self.extras = bootstrap.start_extras(app, manager, config)
        for server, url in make_servers(app, endpoints):
            server.start()
            self.servers.append(server)
            self.log(f"listening on {url}")
        self.applied = bootstrap.apply_templates(manager, config, log=self.log)
        return manager

    def _reload(self, manager: Manager) -> None:
        from . import bootstrap
        from .errors import ConfigError

        try:
            config = self.load()
        except ConfigError as exc:
            self.log(f"reload refused, keeping the running config: {exc}")
            return
        self.log("reloading the config")
        try:
            self.applied = bootstrap.apply_templates(manager, config, self.applied, log=self.log)
        except ConfigError as exc:
            self.log(f"reload stopped part way: {exc}")

    def _shutdown(self, manager: Manager) -> None:
        self.log("stopping every process")
        manager.stop_all(SHUTDOWN_TIMEOUT)
        if self.extras is not None:
            self.extras.close()
        for server in self.servers:
            server.stop(timeout=1)
        self._cleanup_pidfile()
        self.log("stopped")

    def _write_pidfile(self, path: str) -> bool:
        try:
            with open(path) as f:
                old = int(f.read().strip() or 0)
            if old and old != os.getpid():
                os.kill(old, 0)
                print(f"gafferd: already running with pid {old} ({path})", file=sys.stderr)
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

    def _echo_output(self, name: str, pid: int, label: str, data: bytes) -> None:
        from .limits import printable

        prefix = f"{printable(name)}[{pid}] {printable(label)} | "
        text = data.decode(errors="replace")
        for line in text.splitlines():
            sys.stdout.write(f"{prefix}{line}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
