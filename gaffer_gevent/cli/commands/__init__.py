"""gafferctl's commands, one module per area; the table that names them is in ``gafferctl``.

A handler gets a ``Context`` (the connected client and where to print) and the
parsed arguments, and returns the exit code; its docstring is both the summary
line of ``gafferctl help`` and the description of ``gafferctl help <command>``.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from ...client import Client


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
