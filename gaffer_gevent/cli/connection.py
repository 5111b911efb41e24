"""How both CLIs reach gafferd: the token and TLS options, and the ``Client`` they make.

A token comes from ``--token``, else ``--token-file`` (its first line), else
``GAFFER_TOKEN``; it is checked before anything is sent and never printed: a
bad one is a usage error (exit 2) that names the option or the file only.
This module imports no httpx or ssl until a client is made, so ``gaffer
start`` can still patch gevent first.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import UsageError, option

if TYPE_CHECKING:
    from ..client import Client

CONNECTION_OPTIONS = (
    option(
        "--token",
        metavar="TOKEN",
        help="bearer token (other users may see it in ps: prefer --token-file or GAFFER_TOKEN)",
    ),
    option("--token-file", metavar="PATH", help="read the token from the first line of PATH"),
    option(
        "--cacert",
        "--cafile",
        dest="cacert",
        metavar="FILE",
        help="CA certificate (PEM) that signed gafferd's certificate, for a private CA",
    ),
    option("--certfile", metavar="FILE", help="client certificate (PEM) for https (mTLS)"),
    option("--keyfile", metavar="FILE", help="key of --certfile, if not in the same file"),
)


def _check_readable(flag: str, path: str | None) -> None:
    """ssl's own message for a missing file does not say which one."""
    if path is None:
        return
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None


def connect(
    url: str,
    args: argparse.Namespace,
    *,
    timeout: float = 30.0,
    environ: Mapping[str, str] = os.environ,
) -> Client:
    """A ``Client`` for ``url`` with the token and TLS files of ``args``; UsageError if unusable."""
    from ..client import Client, TokenError, resolve_token  # httpx: only when connecting

    token_file = getattr(args, "token_file", None)
    certfile, keyfile = getattr(args, "certfile", None), getattr(args, "keyfile", None)
    cacert = getattr(args, "cacert", None)
    if keyfile and not certfile:
        raise UsageError("--keyfile needs --certfile")
    try:
        token = resolve_token(getattr(args, "token", None), token_file, environ)
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    for flag, path in (("--cacert", cacert), ("--certfile", certfile), ("--keyfile", keyfile)):
        _check_readable(flag, path)
    try:
        return Client(
            url, token=token, certfile=certfile, keyfile=keyfile, cacert=cacert, timeout=timeout
        )
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
