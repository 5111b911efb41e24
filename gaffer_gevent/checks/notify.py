"""systemd's notify protocol for one pid: ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``.

Each pid gets its own datagram socket in Linux's abstract namespace (nothing on
disk to clean up or to collide with; it disappears when closed), named in the
child's ``NOTIFY_SOCKET`` as systemd does (``@`` for the leading NUL), so a
program that already supports ``Type=notify`` works unchanged. ``SO_PASSCRED``
makes the kernel attach the sender's pid to each datagram; only a sender in the
pid's own process group is heard (anyone on the host can reach an abstract
socket). Others are counted and logged once. Datagrams are bounded; file
descriptors passed along (``FDSTORE``) are closed at once.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import secrets
import socket as stdlib_socket
import struct
import time
from typing import Any

from gevent import socket
from gevent.event import Event

from ..limits import printable

log = logging.getLogger(__name__)

#: Longest datagram heard (systemd allows more, but no state line needs it); longer is dropped.
MAX_DATAGRAM = 4096
#: Longest ``STATUS=`` text kept.
MAX_STATUS_TEXT = 1024
_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid
_ANCILLARY = stdlib_socket.CMSG_SPACE(_CREDENTIALS.size) + stdlib_socket.CMSG_SPACE(4 * 16)


class NotifySocket:
    """The socket of one pid and what its process group said on it."""

    def __init__(self, name: str, pid: int) -> None:
        self.address = f"\0gaffer-gevent/{os.getpid()}/{printable(name)[:40]}/{pid}/" + (
            secrets.token_hex(8)
        )
        self.ready = Event()
        self.status_text: str | None = None
        self.pings = 0
        self.last_ping: float | None = None
        self.ignored = 0
        self.os_pid = 0
        self._sock: Any = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._sock.bind(self.address)
        except OSError:
            self._sock.close()
            raise

    @property
    def env_value(self) -> str:
        """What ``NOTIFY_SOCKET`` says: the abstract name with ``@`` for its NUL."""
        return "@" + self.address[1:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def serve(self) -> None:
        """Read datagrams until closed (the runner's greenlet; killed with the pid)."""
        while True:
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except OSError:
                return  # closed
            sender = self._sender(ancillary)
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                self._ignore(sender, "an oversized datagram")
            elif sender is None or not self._in_group(sender):
                self._ignore(sender, "a datagram from outside the process group")
            else:
                self.handle(data)

    def handle(self, data: bytes) -> None:
        """Apply one datagram's ``KEY=value`` lines."""
        for line in data.decode("utf-8", "replace").split("\n"):
            key, _, value = line.partition("=")
            if key == "READY" and value == "1":
                self.ready.set()
            elif key == "STATUS":
                self.status_text = printable(value[:MAX_STATUS_TEXT])
            elif key == "WATCHDOG" and value == "1":
                self.pings += 1
                self.last_ping = time.monotonic()

    @staticmethod
    def _sender(ancillary: list[tuple[int, int, bytes]]) -> int | None:
        sender = None
        for level, kind, payload in ancillary:
            if level != socket.SOL_SOCKET:
                continue
            if kind == socket.SCM_CREDENTIALS and len(payload) >= _CREDENTIALS.size:
                sender = _CREDENTIALS.unpack_from(payload)[0]
            elif kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        return sender

    def _in_group(self, sender: int) -> bool:
        if not self.os_pid or sender <= 0:
            return False
        try:
            return os.getpgid(sender) == self.os_pid
        except OSError:
            return False  # gone already: it cannot be vouched for

    def _ignore(self, sender: int | None, what: str) -> None:
        self.ignored += 1
        if self.ignored == 1:
            log.warning("NOTIFY_SOCKET of pid group %d: ignored %s (sender pid %s); "
                        "further ones are only counted", self.os_pid, what, sender)  # fmt: skip
