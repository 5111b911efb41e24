"""The bounds on everything a client sends, and the checks that enforce them.

Every input is hostile: each field has a type, a range and a maximum, numbers
are finite, digits are ASCII digits, names follow one rule wherever they are
used. The bounds live here once so the template, the manager, the API, the
config file and the README all state the same numbers. Everything here is pure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .ascii_numbers import MAX_INT_DIGITS as MAX_INT_DIGITS
from .ascii_numbers import ascii_digits as ascii_digits
from .ascii_numbers import ascii_int as ascii_int
from .errors import BadValue, InvalidProcessInfo

# -- names ------------------------------------------------------------------------------

#: Longest template name (the group prefix included).
MAX_NAME_LENGTH = 128
#: Characters no name may hold: ``/`` (a URL segment), ``.`` (dotted event patterns), ``^`` (a pid).
NAME_FORBIDDEN_CHARS = "/.^"
#: Longest stream label (``redirect_output``, ``custom_streams``); at most MAX_LABELS of them.
MAX_LABEL_LENGTH = 128
MAX_LABELS = 16

# -- strings ----------------------------------------------------------------------------

#: Longest ``cmd``, argument, ``args`` string or environment value (Linux's MAX_ARG_STRLEN).
MAX_STRING_LENGTH = 128 * 1024
#: Longest ``cwd``, log file path or environment variable name.
MAX_PATH_LENGTH = 4096
#: Most items in ``args`` and entries in ``env``.
MAX_ARGS = 4096
MAX_ENV = 1024
#: Longest user or group name given to ``uid``/``gid``.
MAX_USER_NAME_LENGTH = 256

# -- numbers ----------------------------------------------------------------------------

#: Largest uid/gid: 2**32 - 1 is (uid_t)-1, "no change", so it is not an id.
MAX_ID = 2**32 - 2
#: Largest ``graceful_timeout``, flapping ``window`` and ``retry_in``, in seconds (a day).
MAX_TIMEOUT = 86400.0
#: Largest flapping ``attempts`` and ``max_retry``.
MAX_FLAPPING_COUNT = 1000
#: Range of ``priority`` (gaffer 0.4 clients send sys.maxsize for "no priority").
MIN_PRIORITY, MAX_PRIORITY = -(2**63), 2**63 - 1
#: Smallest ``buffer_size``; the largest is the manager's ``max_buffer_size``.
MIN_BUFFER_SIZE = 1024
#: Largest ``logfile_maxbytes`` (1 TiB) and ``logfile_backups``.
MAX_LOGFILE_BYTES = 2**40
MAX_LOGFILE_BACKUPS = 1000
#: Most entries in a template's ``depends_on``.
MAX_DEPENDENCIES = 64
#: Largest ``restart_delay``/``max_restart_delay``, in seconds (a day, like the backoff's).
MAX_RESTART_DELAY = 86400.0
#: Most pids a rolling restart replaces at once, and its longest ``ready_timeout`` (an hour).
MAX_UNAVAILABLE = 1024
MAX_READY_TIMEOUT = 3600.0

# -- the manager's limits (gafferd's [gaffer] section) -----------------------------------

DEFAULT_MAX_PROCESSES = 1024
DEFAULT_MAX_TOTAL_PROCESSES = 4096
DEFAULT_MAX_BUFFER_SIZE = 64 * 1024 * 1024

# -- request bodies ---------------------------------------------------------------------

#: Largest ``POST``/``PUT /processes`` body (413 beyond); stdin has its own stdin_max_body.
MAX_TEMPLATE_BODY = 1024 * 1024
#: Deepest nesting of arrays and objects in a JSON body.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class ProcessLimits:
    """How many processes a manager runs and how much output it keeps per stream.

    ``max_processes`` bounds one template's ``numprocesses``; ``max_total_processes`` the
    sum of ``numprocesses`` over every template, started or not (a restart briefly runs
    the old set and the new one side by side).
    """

    max_processes: int = DEFAULT_MAX_PROCESSES
    max_total_processes: int = DEFAULT_MAX_TOTAL_PROCESSES
    max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE

    def check(self, numprocesses: int, buffer_size: int | None, others: int = 0) -> None:
        """Refuse a template wanting more than these limits; ``others``: the other templates'."""
        if numprocesses > self.max_processes:
            raise BadValue(
                f"numprocesses must be <= {self.max_processes} (max_processes), not {numprocesses}",
                field="numprocesses",
            )
        if others + numprocesses > self.max_total_processes:
            raise BadValue(
                f"numprocesses {numprocesses} would make {others + numprocesses} processes "
                f"in all; at most {self.max_total_processes} (max_total_processes)",
                field="numprocesses",
            )
        if buffer_size is not None and buffer_size > self.max_buffer_size:
            raise BadValue(
                f"buffer_size must be <= {self.max_buffer_size} (max_buffer_size)",
                field="buffer_size",
            )


# -- checks -----------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a template name, or None when it can.

    The one name rule: 1 to 128 characters, no control or other unprintable
    character, no ``/`` (a URL segment), no ``.`` (event patterns are dotted),
    no ``^`` and not all ASCII digits (both address pids), no space at either end.
    """
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    if ascii_digits(name):
        return "must not be all digits (a pid)"
    for char in NAME_FORBIDDEN_CHARS:
        if char in name:
            return f"must not contain {char!r}"
    if not name.isprintable():
        return "must not contain control or unprintable characters"
    if name != name.strip():
        return "must not start or end with a space"
    return None


def check_name(name: str, field: str = "name") -> str:
    """``name`` if it follows the name rule; BadValue naming ``field`` otherwise."""
    problem = name_problem(name)
    if problem is not None:
        raise BadValue(f"{field} {printable(name[:MAX_NAME_LENGTH])!r} {problem}", field=field)
    return name


def check_label(label: str, field: str) -> str:
    """A stream label: 1 to 128 printable characters, no ``/`` (it is a URL segment)."""
    if not label or len(label) > MAX_LABEL_LENGTH or "/" in label or not label.isprintable():
        raise BadValue(
            f"{field}: a label is 1 to {MAX_LABEL_LENGTH} printable characters without '/'",
            field=field,
        )
    return label


def check_text(value: str, field: str, max_length: int) -> str:
    """A string of at most ``max_length`` characters, no NUL, valid Unicode (no surrogates)."""
    if len(value) > max_length:
        raise BadValue(f"{field} must be at most {max_length} characters", field=field)
    if "\0" in value:
        raise BadValue(f"{field} must not contain NUL characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadValue(f"{field} must be valid Unicode (no lone surrogates)", field=field) from None
    return value


def parse_int(value: str, what: str) -> int:
    """A query parameter's integer: at most ``MAX_INT_DIGITS`` ASCII digits, else a BadValue."""
    number = ascii_int(value)
    if number is None:
        raise BadValue(f"{what} must be an integer of at most {MAX_INT_DIGITS} ASCII digits, "
                       f"not {shown(value)}")  # fmt: skip
    return number


def optional_int_of(value: str | None, what: str) -> int | None:
    """``parse_int`` of a parameter that may be absent (None or empty)."""
    return None if value is None or value == "" else parse_int(value, what)


def shown(value: str) -> str:
    """A client's value quoted in a reason, cut short."""
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def bounded_int(value: Any, field: str, minimum: int, maximum: int) -> int:
    """A JSON integer (not a bool) within [minimum, maximum]; the bound is a BadValue."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProcessInfo(f"{field} must be an integer", field=field)
    if not minimum <= value <= maximum:
        raise BadValue(f"{field} must be between {minimum} and {maximum}", field=field)
    return value


def bounded_number(value: Any, field: str, minimum: float, maximum: float) -> float:
    """A finite JSON number (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidProcessInfo(f"{field} must be a number", field=field)
    # Compare before converting: float() of a 400-digit integer raises OverflowError.
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(f"{field} must be a finite number", field=field)
    if not minimum <= value <= maximum:
        raise BadValue(f"{field} must be between {minimum:g} and {maximum:g}", field=field)
    return float(value)


# -- JSON bodies ------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SAME_BRACKETS = str.maketrans("{}", "[]")


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does ``text`` nest arrays/objects deeper than ``limit``? Checked before parsing.

    Only C-speed string operations: strings are cut out, every bracket other
    than ``[``/``]`` removed, then innermost ``[]`` pairs are peeled off one
    level per pass. Unbalanced brackets beyond ``limit`` count as too deep
    (the text is not valid JSON anyway).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).translate(_SAME_BRACKETS)
    for _ in range(limit):
        if not skeleton:
            return False
        peeled = skeleton.replace("[]", "")
        if peeled == skeleton:
            return True
        skeleton = peeled
    return bool(skeleton)


# -- gafferd's own log ------------------------------------------------------------------


def printable(text: str) -> str:
    """``text`` with every control or unprintable character escaped (``\\n``, ``\\x1b``...).

    For gafferd's own log lines: a name, label or message can then never start a
    fake line or move the terminal's cursor.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


# -- paths ------------------------------------------------------------------------------


def check_relative_path(path: str, field: str) -> str:
    """A path confined to its directory: relative, no ``..``, no component starting with a dot.

    ``.`` components are allowed (``./app.log``); hidden names are not, which also keeps
    gafferd's own files in the directory (``.gaffer-logfiles.json``) out of reach.
    """
    check_text(path, field, MAX_PATH_LENGTH)
    if not path or not path.isprintable():
        raise BadValue(f"{field} must be a non-empty path of printable characters", field=field)
    if path.startswith("/"):
        raise BadValue(f"{field} must be relative to log_dir, not absolute", field=field)
    for part in path.split("/"):
        if part.startswith(".") and part != ".":
            raise BadValue(
                f"{field} must stay inside log_dir: no '..' and no component starting with '.'",
                field=field,
            )
    if path.endswith("/") or all(part in ("", ".") for part in path.split("/")):
        raise BadValue(f"{field} must name a file", field=field)
    return path
