"""A Procfile app as ``gaffer`` sees it: its root, process types and environment (spec 13.1).

Both halves of ``gaffer`` start here: the local commands (``app_local``) and
the ones that talk to a gafferd (``app_remote``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..procfile import (
    ProcessType,
    ProcfileError,
    app_name,
    merge_env,
    parse_concurrency,
    parse_env,
    parse_procfile,
    template_body,
)
from . import UsageError
from .connection import connect

if TYPE_CHECKING:
    from ..client import Client


@dataclass
class App:
    """A Procfile app: where it lives, its process types and its environment."""

    root: str
    name: str
    ptypes: list[ProcessType]
    env: dict[str, str]
    concurrency: dict[str, int]

    def select(self, name: str | None) -> list[ProcessType]:
        if name is None:
            return self.ptypes
        found = [p for p in self.ptypes if p.name == name]
        if not found:
            raise UsageError(f"no process type {name!r} in the Procfile")
        return found

    def body(self, ptype: ProcessType, name: str) -> dict[str, Any]:
        count = self.concurrency.get(ptype.name, 1)
        return template_body(ptype, name=name, env=self.env, numprocesses=count, cwd=self.root)


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def load_app(args: argparse.Namespace) -> App:
    """Procfile at ``<directory>/<procfile>``; its directory is the root (spec 13.1)."""
    path = os.path.join(args.directory, args.procfile)
    root = os.path.dirname(os.path.abspath(path))
    text = read_text(path)
    if text is None:
        raise UsageError(f"no Procfile at {path}")
    try:
        ptypes = parse_procfile(text)
    except ProcfileError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    layers = [read_text(os.path.join(root, ".env")) or ""]
    layers += [read_text(env_file) or "" for env_file in args.env or [".env"]]
    env = merge_env(*(parse_env(text) for text in layers))
    return App(root, app_name(root), ptypes, env, parse_concurrency(args.concurrency or []))


def client_for(args: argparse.Namespace) -> Client:
    """A client for the HTTP commands (``connect`` imports httpx and ssl only now)."""
    return connect(getattr(args, "url", None) or args.endpoint, args)


def group_of(args: argparse.Namespace, app: App | None) -> str:
    group = getattr(args, "group", None)
    if group in (None, "."):
        return app.name if app is not None else app_name(args.directory)
    return str(group)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
