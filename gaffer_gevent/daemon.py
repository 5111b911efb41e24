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
    """One gafferd run: owns the manager, the servers and the webhooks."""

    def __init__(self, args: argparse.Namespace, config_path: str | None) -> None:
        self.args = args
        self.config_path = config_path
        self.servers: list[Any] = []
        self.webhooks: Any = None
        self.logfiles: Any = None
        self.config_names: dict[str, dict[str, Any]] = {}

    def log(self, message: str) -> None:
        print(f"gafferd: {message}", file=sys.stderr, flush=True)

    def load(self) -> DaemonConfig:
        from .config import DaemonConfig, load_config

        if self.config_path is None:
            return DaemonConfig(path=None, endpoints=[], processes=[], webhooks=[])
        return load_config(self.config_path)

    def run(self) -> int:
        import signal

        import gevent
        from gevent.event import Event

        from .errors import ConfigError

        try:
            config = self.load()
            endpoints = config.endpoints or [self._default_endpoint()]
        except ConfigError as exc:
            print(f"gafferd: {exc}", file=sys.stderr)
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
            print(f"gafferd: {exc}", file=sys.stderr)
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
        from .api import create_app
        from .manager import Manager
        from .server import make_servers

        echo = self._echo_output if self.args.verbose >= 2 else None
        manager = Manager(
            buffer_size=config.stream_buffer_size,
            stdin_queue_size=config.stdin_queue_size,
            output_listener=echo,
        )
        if self.args.verbose >= 1:
            manager.bus.subscribe(".", self._echo_event)
        app = create_app(
            manager, cors_origins=config.cors_origins, stdin_max_body=config.stdin_max_body
        )
        self._extend(app, manager, config)
        for server, url in make_servers(app, endpoints):
            server.start()
            self.servers.append(server)
            self.log(f"listening on {url}")
        self._apply(manager, config)
        return manager

    def _extend(self, app: Any, manager: Manager, config: DaemonConfig) -> None:
        """Optional parts: log files, webhooks (anything else that hooks into the manager)."""
        from .api.logs import install_logfiles
        from .logfiles import LogFiles

        self.logfiles = LogFiles(manager, config.log_dir)
        install_logfiles(app, self.logfiles)
        if config.webhooks:
            from .webhooks import WebhookDispatcher

            self.webhooks = WebhookDispatcher(manager.bus, config.webhooks)
            self.webhooks.start()

    def _apply(self, manager: Manager, config: DaemonConfig) -> None:
        """Bring the manager's templates in line with the config (start-up and SIGHUP)."""
        from .template import ProcessTemplate

        wanted = {p.name: p for p in config.processes}
        for name in list(self.config_names):
            if name not in wanted and name in manager.states:
                manager.remove_template(name)
                self.log(f"removed {name}")
        for proc in config.processes:  # already in priority order
            body = proc.body
            template = ProcessTemplate.from_json(body)
            start = body.get("start", True) is not False
            if proc.name not in manager.states:
                manager.add_template(template, start=start)
            elif self.config_names.get(proc.name) != body:
                manager.update_template(template, start=start)
                self.log(f"updated {proc.name}")
        self.config_names = {p.name: p.body for p in config.processes}

    def _reload(self, manager: Manager) -> None:
        from .errors import ConfigError

        try:
            config = self.load()
        except ConfigError as exc:
            self.log(f"reload refused, keeping the running config: {exc}")
            return
        self.log("reloading the config")
        self._apply(manager, config)

    def _shutdown(self, manager: Manager) -> None:
        self.log("stopping every process")
        manager.stop_all(SHUTDOWN_TIMEOUT)
        if self.logfiles is not None:
            self.logfiles.close()  # write what the last processes printed
        for server in self.servers:
            server.stop(timeout=1)
        if self.webhooks is not None:
            self.webhooks.stop(2.0)
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
        text = data.decode(errors="replace")
        for line in text.splitlines():
            sys.stdout.write(f"{name}[{pid}] {label} | {line}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
