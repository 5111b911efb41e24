"""The two CLIs' command tables: every row names a handler that exists and says what it does."""

from __future__ import annotations

import pytest

from gaffer_gevent.cli import gaffer, gafferctl
from gaffer_gevent.cli.command_table import Cli


@pytest.mark.parametrize("cli", [gafferctl.CLI, gaffer.CLI], ids=["gafferctl", "gaffer"])
def test_every_row_resolves_to_a_documented_handler(cli: Cli) -> None:
    names = [command.name for command in cli.commands]
    assert len(names) == len(set(names)) and "help" not in names
    for command in cli.commands:
        handler = command.load()
        assert callable(handler), command.name
        assert command.summary and "\n" not in command.summary, command.name
        assert command.description.startswith(command.summary)


@pytest.mark.parametrize("cli", [gafferctl.CLI, gaffer.CLI], ids=["gafferctl", "gaffer"])
def test_help_lists_every_row_in_table_order(cli: Cli) -> None:
    parser, by_name = cli.parser()
    text = parser.format_help()
    listing = text[text.index("\ncommands:\n") :].split("\n\n")[0].splitlines()[2:]
    assert [line.split()[0] for line in listing] == [c.name for c in cli.commands] + ["help"]
    assert set(by_name) == {command.name for command in cli.commands}


def test_a_typo_is_suggested_and_nonsense_is_not() -> None:
    assert gafferctl.CLI.suggestion("stauts") == "status"
    assert gafferctl.CLI.suggestion("hlep") == "help"
    assert gafferctl.CLI.suggestion("frobnicate") is None
    assert gaffer.CLI.suggestion("strat") == "start"
