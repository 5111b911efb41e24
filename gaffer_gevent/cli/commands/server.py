"""gafferctl's questions about gafferd itself: its version, its health, who the token is."""

from __future__ import annotations

import argparse

from .. import EXIT_OK
from . import Context


def version(ctx: Context, args: argparse.Namespace) -> int:
    """Print the version gafferd reports: "gaffer (version X)"."""
    value = ctx.client.version()
    ctx.emit(f"gaffer (version {value})", {"version": value})
    return EXIT_OK


def whoami(ctx: Context, args: argparse.Namespace) -> int:
    """Print the name, role and scope of the token in use: "NAME ROLE SCOPE".

    SCOPE is the token's template globs joined by commas, "*" when it has no
    limit; a nameless identity (no auth configured) prints "-" as NAME.
    """
    info = ctx.client.whoami()
    scope = info.get("scope")
    if isinstance(scope, list):
        scope = ",".join(str(glob) for glob in scope)
    fields = (info.get("name") or "-", info.get("role") or "-", scope or "*")
    ctx.emit(" ".join(str(field) for field in fields), info)
    return EXIT_OK


def health(ctx: Context, args: argparse.Namespace) -> int:
    """Print gafferd's health ("ok"); needs no token, exit 1 if gafferd answers unhealthy."""
    info = ctx.client.health()
    ctx.emit(info.get("status", "ok"), info)
    return EXIT_OK
