"""gafferd's own side of systemd's notify protocol (``sd_notify(3)``), to its supervisor.

When a service manager starts gafferd with ``Type=notify`` it puts the address of
a datagram socket in ``NOTIFY_SOCKET``: a path, or ``@name`` for Linux's abstract
namespace. gafferd sends one datagram per state change (``READY=1``,
``RELOADING=1``, ``STOPPING=1``, ``STATUS=...``) and, when ``WATCHDOG_USEC`` is
set, ``WATCHDOG=1`` every half of that interval, so a stalled hub gets gafferd
restarted. Without ``NOTIFY_SOCKET`` everything here is a no-op.

Pure and non-blocking: a non-blocking socket per message (as ``sd_notify`` does),
a full or missing receiver is a ``False``, never a wait or an exception, because
a supervisor that does not listen must never stall the process it supervises.
The children's side (a socket per pid for templates) is not this module's.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

#: The variable naming the supervisor's socket; children must not inherit it.
NOTIFY_SOCKET = "NOTIFY_SOCKET"
#: Longest ``sun_path`` on Linux (with the abstract namespace's leading NUL).
MAX_ADDRESS = 108
#: A watchdog interval below this is treated as a mistake (pings would spin).
MIN_WATCHDOG_USEC = 1_000


class NotifyAddressError(ValueError):
    """``NOTIFY_SOCKET`` holds something that is not an address we can send to."""


def parse_address(value: str) -> str | bytes:
    """The ``sendto`` address of ``NOTIFY_SOCKET``: an absolute path, or ``@name`` (abstract)."""
    if value.startswith("@") and len(value) > 1:
        address = b"\0" + os.fsencode(value[1:])
        if len(address) > MAX_ADDRESS:
            raise NotifyAddressError(f"abstract name longer than {MAX_ADDRESS - 1} bytes")
        return address
    if value.startswith("/"):
        if "\0" in value or len(os.fsencode(value)) >= MAX_ADDRESS:
            raise NotifyAddressError(f"not a socket path of at most {MAX_ADDRESS - 1} bytes")
        return value
    raise NotifyAddressError("neither an absolute path nor an @abstract name")


def send(address: str | bytes, message: str) -> None:
    """One datagram to ``address``; raises ``OSError`` (a full receiver: ``BlockingIOError``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.setblocking(False)
        sock.sendto(message.encode("utf-8", "backslashreplace"), address)


def message(**fields: object) -> str:
    """``KEY=value`` lines; a newline inside a value would start a field of its own: spaced."""
    return "\n".join(f"{key}={' '.join(str(value).splitlines())}" for key, value in fields.items())


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, as ``RELOADING=1`` wants in ``MONOTONIC_USEC``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None for none.

    None too when ``WATCHDOG_PID`` names another process: the watchdog is not ours.
    """
    usec, owner = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    if not (usec.isascii() and usec.isdigit()) or int(usec) < MIN_WATCHDOG_USEC:
        return None
    if owner and owner != str(pid):
        return None
    return int(usec) / 2 / 1_000_000


class Notifier:
    """Sends to the supervisor named by ``NOTIFY_SOCKET``; says the first failure only.

    ``enabled`` is False without the variable; every method then returns False at once.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        say: Callable[[str], None] | None = None,
        pid: int | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.pid = os.getpid() if pid is None else pid
        self._say = say or log.warning
        self._failed = False
        self.address: str | bytes | None = None
        self.watchdog = watchdog_interval(environ, self.pid)
        value = environ.get(NOTIFY_SOCKET, "")
        if not value:
            return
        try:
            self.address = parse_address(value)
        except NotifyAddressError as exc:
            self._fail(f"{NOTIFY_SOCKET}={value!r} is unusable ({exc})")

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, text: str) -> bool:
        """Send ``text`` (``KEY=value`` lines); True if the datagram left."""
        if self.address is None:
            return False
        try:
            send(self.address, text)
        except OSError as exc:
            self._fail(f"cannot notify the service manager at {NOTIFY_SOCKET} ({exc})")
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(message(READY=1, STATUS=status, MAINPID=self.pid))

    def reloading(self) -> bool:
        return self.notify(message(RELOADING=1, MONOTONIC_USEC=monotonic_usec()))

    def stopping(self) -> bool:
        return self.notify(message(STOPPING=1, STATUS="stopping every process"))

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def run_watchdog(self, sleep: Callable[[float], object]) -> None:
        """Ping every ``watchdog`` seconds, forever (a greenlet with ``gevent.sleep``)."""
        if self.watchdog is None or self.address is None:
            return
        while True:
            self.ping()
            sleep(self.watchdog)

    def _fail(self, reason: str) -> None:
        if not self._failed:
            self._failed = True
            self._say(f"{reason}; further notifications fail silently")


def notify(text: str, environ: Mapping[str, str] | None = None) -> bool:
    """``sd_notify(0, text)``: True if sent; False without ``NOTIFY_SOCKET`` or on any error."""
    value = (os.environ if environ is None else environ).get(NOTIFY_SOCKET, "")
    try:
        send(parse_address(value), text)
    except (OSError, NotifyAddressError):
        return False
    return True
