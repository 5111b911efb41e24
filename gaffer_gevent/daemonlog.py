"""gafferd's own log: one escaped line per message on stderr, timestamped under ``-v``.

``-v`` is how an operator watches gafferd from a terminal or a service
manager's journal; its lines then start with when they happened, in UTC
ISO-8601 with milliseconds (``2026-12-04T15:50:01.123Z gafferd: ...``), so
that two lines can be told apart and lined up with a child's own log. Without
``-v`` gafferd says little (where it listens, why it exits) and says it bare.
Control characters in a message are escaped (``limits.printable``): a name or a
path can never start a fake line or move the terminal's cursor.
"""

from __future__ import annotations

import logging
import sys
import time

from .limits import printable

#: The logging level whose records gafferd's log shows under ``-v`` (as Python's default).
LOGGING_LEVEL = logging.WARNING


def timestamp(now: float) -> str:
    """``now`` (seconds since the epoch) as ``2026-12-04T15:50:01.123Z``."""
    millis = int(now * 1000)
    seconds, fraction = divmod(millis, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{fraction:03d}Z"


class DaemonLog:
    """Writes gafferd's log lines; with ``timestamps``, also the package's logging records."""

    def __init__(self, *, timestamps: bool) -> None:
        self.timestamps = timestamps

    def line(self, message: str, now: float | None = None) -> str:
        text = f"gafferd: {printable(message)}"
        if not self.timestamps:
            return text
        return f"{timestamp(time.time() if now is None else now)} {text}"

    def __call__(self, message: str) -> None:
        print(self.line(message), file=sys.stderr, flush=True)

    def take_over_logging(self) -> logging.Handler:
        """Show the package's warnings (a spawn that failed, a template given up) the same way.

        Without it they go to Python's last-resort handler, bare. Returns the
        handler, for ``logging.getLogger("gaffer_gevent").removeHandler``.
        """
        handler = _Handler(self)
        handler.setLevel(LOGGING_LEVEL)
        package = logging.getLogger("gaffer_gevent")
        package.addHandler(handler)
        return handler


class _Handler(logging.Handler):
    def __init__(self, log: DaemonLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.log.line(record.getMessage(), record.created)
            print(line, file=sys.stderr, flush=True)
        except Exception:  # a bad format string must not take the daemon down
            self.handleError(record)
