"""gafferd's ini files read into sections, remembering which file wrote each key.

configparser does the lexing; this module adds what gafferd's files need on top:
includes merged per key (a later file wins), ``[DEFAULT]`` applied only to the
keys a section knows, inline comments cut per key (never in a command line),
and every error pointing at the file, section and key that hold the mistake.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T")

# configparser would fold [DEFAULT] into every section and hide where a key
# came from; we read it as an ordinary section and apply it ourselves.
_RAW_DEFAULT = "\0"
#: Keys whose values are taken whole: a command line uses `` ;`` and `` #`` (``sh -c 'a ; b'``),
#: so an inline comment there would be ambiguous. Everywhere else (``[env:NAME]`` values too, as
#: in the spec's own example) `` ;`` or `` #`` starts a comment.
VERBATIM_KEYS = frozenset({"cmd", "args"})
#: An inline comment: ``;`` or ``#`` after whitespace (or opening the value), to the line's end.
_INLINE_COMMENT = re.compile(r"(?:^|\s)[;#].*$")

Origins = dict[tuple[str, str | None], str]


def syntax_error(exc: configparser.Error, text: str, path: str) -> ConfigError:
    """Translate configparser's errors, naming the section and key where known."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return ConfigError(
            f"line {exc.lineno}: {exc.line.strip()!r} before any [section]", path=path
        )
    if isinstance(exc, configparser.DuplicateOptionError):
        message, section, key = f"line {exc.lineno}: key repeated", exc.section, exc.option
        return ConfigError(message, path=path, section=section, key=key)
    if isinstance(exc, configparser.DuplicateSectionError):
        message = f"line {exc.lineno}: section repeated"
        return ConfigError(message, path=path, section=exc.section)
    if isinstance(exc, configparser.ParsingError):
        lineno = exc.errors[0][0]
        lines = text.splitlines()[:lineno]
        found = (configparser.ConfigParser.SECTCRE.match(line) for line in lines)
        headers = [match.group("header") for match in found if match]
        message = f"line {lineno}: cannot parse {lines[-1].strip()!r}"
        return ConfigError(message, path=path, section=headers[-1].strip() if headers else "")
    return ConfigError(str(exc), path=path)


class IniSource:
    """Sections merged from one or more files, and which file wrote each key."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sections: dict[str, dict[str, str]] = {}
        self.origins: Origins = {}

    def read(self, text: str, path: str) -> None:
        """Parse one file's text and merge it in: a later file wins per key."""
        # Inline comments are cut here, per key, not by configparser: see VERBATIM_KEYS.
        parser = configparser.ConfigParser(interpolation=None, default_section=_RAW_DEFAULT)
        try:
            parser.read_string(text, source=path)
        except configparser.Error as exc:
            raise syntax_error(exc, text, path) from None
        seen: set[str] = set()
        for header in parser.sections():
            kind, colon, name = header.partition(":")
            section = f"{kind.strip()}:{name.strip()}" if colon else header.strip()
            if section in seen:  # e.g. [process:web] and [process: web]
                raise ConfigError("section repeated", path=path, section=section)
            seen.add(section)
            self.origins.setdefault((section, None), path)
            target = self.sections.setdefault(section, {})
            for key, value in parser.items(header):
                target[key] = value if key in VERBATIM_KEYS else uncomment(value)
                self.origins[(section, key)] = path

    def values(self, section: str, known: Callable[[str], bool]) -> dict[str, str]:
        """The section's keys, after those of [DEFAULT] that this kind of section knows."""
        own = self.sections.get(section, {})
        for key in own:
            if not known(key):
                raise self.error("unknown key", section, key)
        merged = {k: v for k, v in self.sections.get("DEFAULT", {}).items() if known(k)}
        merged.update(own)
        return merged

    def convert(
        self, section: str, values: dict[str, str], key: str, conv: Callable[[str], T], default: T
    ) -> T:
        """``conv(values[key])``, or ``default`` when absent; bad values are ConfigErrors."""
        if key not in values:
            return default
        try:
            return conv(values[key])
        except ValueError as exc:
            raise self.error(str(exc), section, key) from None

    def error(self, message: str, section: str = "", key: str | None = None) -> ConfigError:
        """A ConfigError pointing at the file and section that hold the key."""
        own, defaults = self.sections.get(section, {}), self.sections.get("DEFAULT", {})
        if key and key not in own and key in defaults:
            section = "DEFAULT"  # the value to fix is written there
        path = self.origins.get((section, key)) or self.origins.get((section, None)) or self.path
        return ConfigError(message, path=path, section=section, key=key)


def uncomment(value: str) -> str:
    """``value`` without its inline comments, line by line (``2 ; two workers`` -> ``2``)."""
    lines = (_INLINE_COMMENT.sub("", line).rstrip() for line in value.split("\n"))
    return "\n".join(line for line in lines if line)


def read_file(path: str) -> str:
    """The file's text; any failure to read it is a ConfigError."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the file: {reason}", path=path) from None
