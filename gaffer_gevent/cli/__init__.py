"""Console plumbing shared by ``gafferctl`` and ``gaffer``: exit codes, errors, colours.

Both tools promise the same contract: 0 success, 1 the server (or a managed
process) refused, 2 bad usage or bad input, 3 gafferd unreachable, and always a
single line on stderr instead of a traceback. This module imports neither httpx
nor ssl, so ``gaffer start`` can still monkey-patch gevent after importing it.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import GafferError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments or bad local input (a file, a signal name): exit code 2."""

    exit_code = EXIT_USAGE


class CommandFailed(Exception):
    """The command ran and did not succeed for a reason of its own: exit code 1."""

    exit_code = EXIT_REFUSED


def exit_code_for(exc: BaseException) -> int:
    """The exit code the CLIs promise for an error raised by a command."""
    if isinstance(exc, GafferError):
        return EXIT_UNREACHABLE if exc.code == "server_unreachable" else EXIT_REFUSED
    return int(getattr(exc, "exit_code", EXIT_REFUSED))


#: What a 401 adds when no token was given (the client's ``Unauthorized.token_sent``).
TOKEN_HINT = "(--token, --token-file or GAFFER_TOKEN)"


def error_line(prog: str, exc: BaseException) -> str:
    """One line for stderr: ``prog: code: message`` for server errors, else ``prog: message``."""
    if isinstance(exc, GafferError) and exc.code != "server_unreachable":
        text = f"{prog}: {exc.code}: {exc.message}"
        if exc.code == "unauthorized" and getattr(exc, "token_sent", True) is False:
            text += f" {TOKEN_HINT}"
    else:
        text = f"{prog}: {exc}"
    return " ".join(text.split())


# Bright ANSI foregrounds that read on dark and light terminals; red is kept for errors.
PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")
ERROR_COLOUR = "31"


def want_colour(option: bool | None, stream: TextIO) -> bool:
    """Explicit flag wins; otherwise colour only on a terminal and without ``NO_COLOR``."""
    if option is not None:
        return option
    return stream.isatty() and "NO_COLOR" not in os.environ


def colour_for(name: str) -> str:
    """A stable colour per name (crc32, not ``hash``, so it is the same on every run)."""
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or not colour:
        return text
    return f"\033[{colour}m{text}\033[0m"


Option = tuple[tuple[str, ...], dict[str, Any]]


def option(*flags: str, **settings: Any) -> Option:
    """An ``add_argument`` call kept as data, so a table of options can be reused."""
    return flags, settings


#: ``--colorize`` / ``--no-color``; the default (None) means "if stdout is a tty" (the last wins).
COLOUR_OPTIONS = (
    option(
        "--colorize",
        "--color",
        dest="colour",
        action="store_const",
        const=True,
        default=None,
        help="colour the output even when it is not a terminal",
    ),
    option(
        "--no-color",
        "--no-colour",
        dest="colour",
        action="store_const",
        const=False,
        default=None,
        help="never colour (also: NO_COLOR in the environment)",
    ),
)


def silence_broken_pipe() -> None:
    """After ``| head`` closed our stdout, point it at /dev/null so exit is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def run_command(prog: str, body: Callable[[], int], *, interrupted: int = EXIT_INTERRUPTED) -> int:
    """Run a CLI's command ``body`` and turn what it raises into the promised exit code.

    Ctrl-C returns ``interrupted`` (130 unless the command is one that Ctrl-C ends),
    a closed stdout exits quietly with 0, known errors print one ``error_line``, and
    anything else prints one ``internal error`` line instead of a traceback.
    """
    try:
        return body()
    except KeyboardInterrupt:
        return interrupted
    except BrokenPipeError:
        silence_broken_pipe()
        return EXIT_OK
    except (GafferError, UsageError, CommandFailed) as exc:
        sys.stderr.write(error_line(prog, exc) + "\n")
        return exit_code_for(exc)
    except Exception as exc:  # never a traceback: one line, and the type to report it
        sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {exc}\n")
        return EXIT_REFUSED
