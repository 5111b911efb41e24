"""gafferctl's command table: each command registers its handler, arguments and help text.

A handler gets a ``Context`` (the connected client and where to print) and the
parsed arguments, and returns the exit code; its docstring is both the summary
line of ``gafferctl help`` and the description of ``gafferctl help <command>``.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable
from typing import Any, NamedTuple, TextIO

from ..client import Client
from . import Option

Handler = Callable[["Context", argparse.Namespace], int]


class Command(NamedTuple):
    name: str
    handler: Handler
    arguments: tuple[Option, ...]

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or "").strip().splitlines()[0]

    @property
    def description(self) -> str:
        # inspect.cleandoc's rule, without importing inspect (a third of a command's imports).
        first, _, rest = (self.handler.__doc__ or "").expandtabs().partition("\n")
        return f"{first.strip()}\n{textwrap.dedent(rest)}".strip()


COMMANDS: dict[str, Command] = {}


def command(name: str, *arguments: Option) -> Callable[[Handler], Handler]:
    """Register a command; its docstring is both the summary line and ``help <command>``."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, handler, arguments)
        return handler

    return register


class Context:
    """What a command needs: a connected client and where/how to print."""

    def __init__(self, client: Client, out: TextIO, as_json: bool) -> None:
        self.client = client
        self.out = out
        self.as_json = as_json

    def emit(self, text: object, data: Any = None) -> None:
        """Print ``text`` (a list prints one item per line), or ``data`` as JSON with --json."""
        if self.as_json:
            self.out.write(json.dumps(text if data is None else data) + "\n")
        elif isinstance(text, list):
            self.out.write("".join(f"{item}\n" for item in text))
        else:
            self.out.write(f"{text}\n")
        self.out.flush()


#: What commands that only act print with --json.
OK = {"ok": True}
