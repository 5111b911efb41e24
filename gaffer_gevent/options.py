"""gafferd's command line: its flags, ``--bind``'s endpoint, and ``gafferd token``.

Apart from the daemon so that ``gafferd token`` and ``--help`` load neither
gevent nor Flask, and so that the daemon module is about running, not parsing.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, NoReturn

from .defaults import DEFAULT_BIND

if TYPE_CHECKING:
    from .config import EndpointConfig

#: A bad flag or config: the exit code of every usage error.
EXIT_CONFIG = 2
#: A token's name: it becomes a section header and shows in audit events and logs.
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")
#: A scope glob: template-name characters and glob syntax, nothing that ends an ini value.
SCOPE_GLOB = re.compile(r"[A-Za-z0-9_.:@*?!\[\]-]{1,200}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gafferd", description="Run the gaffer process manager and its HTTP API."
    )
    parser.add_argument("config", nargs="?", help="ini config file")
    parser.add_argument("-c", "--config", dest="config_opt", metavar="CONFIG", help="ini file")
    parser.add_argument("-p", "--plugins-dir", help="plugins directory (accepted, unused)")
    parser.add_argument(
        "--bind", metavar="ADDR[,ADDR...]",
        help=f"listen here instead of the config's endpoints (default without any: {DEFAULT_BIND})",
    )  # fmt: skip
    parser.add_argument("--certfile", help="TLS certificate for --bind's endpoint")
    parser.add_argument("--keyfile", help="TLS key for --bind's endpoint")
    parser.add_argument("--ca-certs", help="CA bundle that client certificates must chain to")
    parser.add_argument(
        "--client-cert", choices=("none", "optional", "required"), default="none",
        help="ask TLS clients for a certificate signed by --ca-certs (default: none)",
    )  # fmt: skip
    parser.add_argument("--backlog", type=int, default=128, help="listen backlog")
    parser.add_argument(
        "--allow-unauthenticated", action="store_true",
        help="listen beyond loopback even with no token or client certificate configured",
    )  # fmt: skip
    parser.add_argument("--daemon", action="store_true", help="run in the background")
    parser.add_argument("--pidfile", help="write the daemon's pid here")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="-v prints lifecycle events, -vv also the children's output",
    )  # fmt: skip
    unit = parser.add_argument_group("systemd unit (written, then exit; gafferd does not start)")
    unit.add_argument(
        "--systemd-unit", nargs="?", const="-", metavar="PATH",
        help="print (or write to PATH) a Type=notify service unit that runs this gafferd "
        "with this config and these flags: gafferd CONFIG --systemd-unit [PATH]",
    )  # fmt: skip
    unit.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    unit.add_argument(
        "--watchdog", type=float, metavar="SECONDS",
        help="add WatchdogSec=SECONDS: systemd restarts gafferd if its pings stop that long",
    )  # fmt: skip
    return parser


def command_line_endpoint(args: argparse.Namespace) -> EndpointConfig:
    """The endpoint of ``--bind`` and its TLS flags (``DEFAULT_BIND`` without ``--bind``)."""
    from .config import EndpointConfig, parse_address
    from .errors import ConfigError

    try:
        binds = (args.bind or DEFAULT_BIND).split(",")
        addresses = [parse_address(a) for a in binds if a.strip()]
    except ValueError as exc:
        raise ConfigError(str(exc), path="--bind") from exc
    if not addresses:
        raise ConfigError("needs an address", path="--bind")
    if args.keyfile and not args.certfile:
        raise ConfigError("needs --certfile", path="--keyfile")
    if (args.ca_certs or args.client_cert != "none") and not args.certfile:
        raise ConfigError("client certificates need TLS: add --certfile", path="--ca-certs")
    if args.client_cert != "none" and not args.ca_certs:
        raise ConfigError("needs --ca-certs to verify them", path="--client-cert")
    return EndpointConfig("command line", addresses, args.certfile, args.keyfile,
                          args.backlog, args.ca_certs, args.client_cert)  # fmt: skip


class _OneLineParser(argparse.ArgumentParser):
    """An argument error is one line (``gafferd token: ...``) and exit 2, like a bad value."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see --help)\n")


def token_main(argv: list[str]) -> int:
    """``gafferd token NAME --role ROLE [--scope GLOB]...``: a new token and its section."""
    from .auth import Role, hash_token, mint_token

    parser = _OneLineParser(
        prog="gafferd token",
        description="Print a new random token, then the [token:NAME] section that accepts it.",
    )
    parser.add_argument("name", help="the token's name (letters, digits, _ . : @ -)")
    parser.add_argument("--role", required=True, help="read, stdin, operate or admin")
    parser.add_argument(
        "--scope", action="append", default=[], metavar="GLOB",
        help="template names the token may see and act on (repeatable; default: all)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not TOKEN_NAME.fullmatch(args.name):
        return _usage_error(f"{args.name!r} is not a token name ({TOKEN_NAME.pattern})")
    try:
        role = Role.parse(args.role)
    except ValueError as exc:
        return _usage_error(str(exc))
    globs = [glob.strip() for value in args.scope for glob in value.split(",") if glob.strip()]
    for glob in globs:
        if not SCOPE_GLOB.fullmatch(glob):
            return _usage_error(f"{glob!r} is not a scope glob ({SCOPE_GLOB.pattern})")
    token = mint_token()
    lines = [token, f"[token:{args.name}]", f"role = {role.label}", f"hash = {hash_token(token)}"]
    if globs:
        lines.append(f"scope = {', '.join(globs)}")
    print("\n".join(lines))
    return 0


def _usage_error(message: str) -> int:
    print(f"gafferd token: {message}", file=sys.stderr)
    return EXIT_CONFIG
