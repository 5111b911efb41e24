"""The one way both CLIs declare a command: a row in a table, parsed with argparse.

A row (``Command``) names the command, where its handler lives (``"module:function"``
under ``gaffer_gevent.cli``), its arguments as data (``option(...)``) and whether
Ctrl-C is how it ends. The handler module is imported only when its command runs,
or for help, so a command never pays for another's imports (the latency of
``gafferctl status`` is measured in ``bench/cli_latency.py``). The handler's
docstring is the help: its first line is the summary in the listing, all of it
the description of ``help <command>``. ``Cli`` turns a table into the parser, the
``help`` command, one-line usage errors that suggest the closest command, and
the exit code. This is pip's shape (a table of module paths), not click's
decorators, which would cost an import of click and of every command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, NoReturn

from . import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Option, UsageError, run_command

#: What a handler is: gafferctl's take ``(Context, Namespace)``, gaffer's ``(Namespace)``.
Handler = Callable[..., int]

HELP = "help"
HELP_SUMMARY = "Show the description of a command."


class Command(NamedTuple):
    """One row of a command table."""

    name: str
    #: ``"module:function"``, the module relative to ``gaffer_gevent.cli``.
    handler: str
    arguments: tuple[Option, ...] = ()
    #: Ctrl-C is how the command is meant to end (``watch``, ``tail``): exit 0, not 130.
    ends_with_ctrl_c: bool = False

    def load(self) -> Handler:
        module, _, function = self.handler.partition(":")
        handler: Handler = getattr(importlib.import_module(f"gaffer_gevent.cli.{module}"), function)
        return handler

    @property
    def summary(self) -> str:
        return (self.load().__doc__ or "").strip().splitlines()[0]

    @property
    def description(self) -> str:
        # inspect.cleandoc's rule, without importing inspect (a third of a command's imports).
        first, _, rest = (self.load().__doc__ or "").expandtabs().partition("\n")
        return f"{first.strip()}\n{textwrap.dedent(rest)}".strip()


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the terminal's width the way ``shutil`` finds it.

    argparse asks ``shutil.get_terminal_size`` each time it makes a formatter (every
    ``add_argument``), and ``shutil`` imports ``bz2`` and ``lzma`` on the way: a cost
    on every command, for a width only help and usage lines use.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """``$COLUMNS``, else the width of the terminal on stdout, else 80 (``shutil``'s rule)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class CliParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``prog: message`` and exit 2, no usage dump."""

    #: Set on the root parser: names an unknown command is compared with.
    unknown_command: Callable[[str], str] | None = None

    def error(self, message: str) -> NoReturn:
        match = re.search(r"invalid choice: '?([^' ]+)'?", message)
        if match and message.startswith("argument <command>") and self.unknown_command:
            message = self.unknown_command(match.group(1))
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def add_global_options(
    parser: argparse.ArgumentParser, options: Iterable[Option], *, top: bool
) -> None:
    """Global options work before and after the command.

    On the root parser they are ordinary; on each command's parser they are
    hidden and default to SUPPRESS, so a value given before the command is not
    overwritten by the sub-parser's default.
    """
    for flags, settings in options:
        if not top:
            settings = {**settings, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
        parser.add_argument(*flags, **settings)


class Cli(NamedTuple):
    """A console script made of a command table and options that go before or after it."""

    prog: str
    description: str
    #: The last line of ``--help``: what each exit code means.
    exit_codes: str
    commands: tuple[Command, ...]
    global_options: tuple[Option, ...]
    version: str
    version_flags: tuple[str, ...] = ("--version",)

    def find(self, name: str | None) -> Command | None:
        return next((command for command in self.commands if command.name == name), None)

    def suggestion(self, name: str) -> str | None:
        """The command (or ``help``) closest to a mistyped ``name``, if one is close."""
        import difflib  # only on a mistake

        names = [command.name for command in self.commands] + [HELP]
        # 0.7: "stauts" -> status, "hlep" -> help; "frobnicate" (0.62 to rotate) -> nothing.
        found = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
        return found[0] if found else None

    def unknown(self, name: str) -> str:
        closest = self.suggestion(name)
        hint = f"; did you mean {closest!r}?" if closest else ""
        return f"unknown command {name!r}{hint} (try '{self.prog} help')"

    def command_named_in(self, argv: Sequence[str]) -> str | None:
        """The command ``argv`` runs, when it is one of the table's (not ``help``), else None."""
        takes_value = {
            flag
            for flags, settings in self.global_options
            for flag in flags
            if settings.get("action") in (None, "store", "append")
        }
        after_option = False
        for token in argv:
            if after_option:
                after_option = False
            elif token in ("--", "-h", "--help"):
                return None  # the root's help lists every command
            elif token.startswith("-"):
                after_option = token in takes_value
            else:
                return token if self.find(token) is not None else None
        return None

    def parser(
        self, only: str | None = None
    ) -> tuple[CliParser, dict[str, argparse.ArgumentParser]]:
        """The root parser and one sub-parser per command (for ``help <command>``).

        With ``only``, the sub-parser of that one command: a run does not import every
        handler module nor pay for building the other parsers.
        """
        width = max(len(command.name) for command in self.commands) + 2
        listing = (
            ""
            if only
            else "".join(
                f"  {command.name:<{width}}{command.summary}\n" for command in self.commands
            )
        )
        parser = CliParser(
            prog=self.prog,
            description=self.description,
            epilog=f"commands:\n{listing}  {HELP:<{width}}{HELP_SUMMARY}\n\n{self.exit_codes}",
            formatter_class=Formatter,
        )
        parser.unknown_command = self.unknown
        add_global_options(parser, self.global_options, top=True)
        parser.add_argument(
            *self.version_flags, action="version", version=f"{self.prog} (version {self.version})"
        )
        subparsers = parser.add_subparsers(
            dest="command_name", metavar="<command>", help="one of the commands below"
        )
        by_name: dict[str, argparse.ArgumentParser] = {}
        for command in self.commands:
            if only is not None and command.name != only:
                continue
            sub = subparsers.add_parser(
                command.name,
                description=command.description,
                formatter_class=Formatter,
            )
            for flags, settings in command.arguments:
                sub.add_argument(*flags, **settings)
            add_global_options(sub, self.global_options, top=False)
            by_name[command.name] = sub
        topic = subparsers.add_parser(HELP, description=HELP_SUMMARY, formatter_class=Formatter)
        topic.add_argument("topic", nargs="?", metavar="command")
        return parser, by_name

    def main(
        self, argv: list[str] | None, run: Callable[[Command, argparse.Namespace], int]
    ) -> int:
        """Parse ``argv``, answer ``help`` or call ``run`` with the command's row; the exit code."""
        argv = sys.argv[1:] if argv is None else argv
        parser, by_name = self.parser(only=self.command_named_in(argv))
        args = parser.parse_args(argv)
        command = self.find(args.command_name)

        def body() -> int:
            if command is not None:
                return run(command, args)
            if args.command_name is None:
                sys.stderr.write(parser.format_help())
                return EXIT_USAGE
            topic: str | None = args.topic
            if topic is not None and topic not in by_name:
                raise UsageError(self.unknown(topic))
            sys.stdout.write((by_name[topic] if topic else parser).format_help())
            return EXIT_OK

        interrupted = EXIT_OK if command and command.ends_with_ctrl_c else EXIT_INTERRUPTED
        return run_command(self.prog, body, interrupted=interrupted)
