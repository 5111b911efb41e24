"""One log file on disk: writes rotated at line boundaries, its backups, and reading them back.

``LogFile`` keeps ``name.log`` and its backups ``name.log.1`` ... (newest first,
like supervisord and logrotate), rotating by size at a line boundary and, if
asked, when the local date changes. ``History`` reads a snapshot of the backups
and the file forward from any line. Both are plain blocking calls: the daemon
runs them on a thread (see ``logfiles``), never on the hub.

Both reach the disk through an ``Opener``: the plain one never follows a
symlink in the last component and creates files 0640; ``logdir.LogDir`` gives
one that also confines them to the log directory and to files gafferd created.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import stat
import time
from collections.abc import Callable
from typing import BinaryIO

Clock = Callable[[], float]

#: Bytes read per call when serving history.
READ_BLOCK = 64 * 1024
#: Log files are created readable by their group, never by everyone.
FILE_MODE = 0o640
DIR_MODE = 0o750
_APPEND = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class Opener:
    """How a ``LogFile`` and a ``History`` open files: no symlink followed, created 0640."""

    def append(self, path: str) -> int:
        """A descriptor for appending (and ``pread``) to ``path``, created if missing."""
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, DIR_MODE, exist_ok=True)
        return regular(os.open(path, _APPEND | os.O_CREAT, FILE_MODE))

    def read(self, path: str) -> BinaryIO | None:
        """``path`` opened for reading, or None when it does not exist."""
        try:
            fd = os.open(path, _READ)
        except FileNotFoundError:
            return None
        return os.fdopen(regular(fd), "rb")

    def check(self, path: str) -> None:
        """Raise ``PermissionError`` if ``path`` may not be renamed or removed (here: never)."""


def regular(fd: int) -> int:
    """``fd`` if it is a regular file; a FIFO or a device is closed and refused."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PermissionError(f"not a regular file (fd {fd})")
    if not os.get_blocking(fd):  # opened O_NONBLOCK so that a FIFO could not hold the open
        os.set_blocking(fd, True)
    return fd


def line_cut(data: bytes, size: int, line_len: int, maxbytes: int) -> tuple[int, bool]:
    """Where a write meets size rotation: (bytes for the current file, rotate after them).

    A file ends at a line boundary whenever it can: lines that fit go in and
    the file rotates before the first line that does not. A line the file
    already started is finished there (overshooting ``maxbytes`` by its
    rest), so no line is split across files, unless that line alone is longer
    than ``maxbytes``: only such a line is cut. ``maxbytes`` 0 means no limit.
    ``line_len`` is the length of the unfinished last line of the file (0 at a
    line boundary).
    """
    if maxbytes <= 0 or size + len(data) <= maxbytes:
        return len(data), False
    room = maxbytes - size
    if room > 0:
        end = data.rfind(b"\n", 0, room)
        if end >= 0:
            return end + 1, True
    if line_len == 0:
        # At a line boundary: rotate first, unless the file is empty (the line is too long).
        return (0, True) if size > 0 else (maxbytes, True)
    end = data.find(b"\n", 0, max(0, maxbytes - line_len))
    if end >= 0:
        return end + 1, True
    return max(room, 0), True  # a line longer than a whole file: cut at maxbytes


def backup_paths(path: str, backups: int) -> list[str]:
    """The history of ``path``, oldest first: ``path.N`` ... ``path.1``, ``path``."""
    return [f"{path}.{n}" for n in range(backups, 0, -1)] + [path]


class LogFile:
    """One log file and its backups. Blocking: called from a thread, one call at a time."""

    def __init__(
        self,
        path: str,
        *,
        maxbytes: int = 50 * 1024 * 1024,
        backups: int = 10,
        daily: bool = False,
        clock: Clock = time.time,
        opener: Opener | None = None,
    ) -> None:
        self.path = path
        self.opener = opener or Opener()
        self.maxbytes = maxbytes
        self.backups = backups
        self.daily = daily
        self.clock = clock
        self.fd = -1
        self.size = 0
        self.line_len = 0
        self.day: datetime.date | None = None

    def today(self) -> datetime.date:
        return datetime.date.fromtimestamp(self.clock())

    def open(self) -> None:
        """Open for appending: a daemon restart continues the file it left."""
        if self.fd >= 0:
            return
        self.fd = self.opener.append(self.path)
        st = os.fstat(self.fd)
        self.size = st.st_size
        self.line_len = 0 if self.size == 0 or os.pread(self.fd, 1, self.size - 1) == b"\n" else 1
        # A file last written on an earlier day rotates at its first write today.
        self.day = datetime.date.fromtimestamp(st.st_mtime) if self.size else self.today()

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def write(self, data: bytes) -> None:
        """Append ``data``, rotating at line boundaries as size and date require."""
        self.open()
        if self.daily and self.size and self.today() != self.day:
            if self.line_len:  # the open line belongs to the old day's file
                end = data.find(b"\n")
                if end < 0:
                    self._append(data)
                    return
                self._append(data[: end + 1])
                data = data[end + 1 :]
            self.rotate()
        while data:
            cut, rotate = line_cut(data, self.size, self.line_len, self.maxbytes)
            if cut:
                self._append(data[:cut])
                data = data[cut:]
            if rotate:
                self.rotate()

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)
        end = data.rfind(b"\n")
        self.line_len = self.line_len + len(data) if end < 0 else len(data) - end - 1

    def rotate(self) -> bool:
        """``path`` becomes ``path.1`` (``.1`` -> ``.2`` ...); False if the file was empty."""
        self.open()
        if self.size == 0:
            self.day = self.today()
            return False
        self.close()
        self.opener.check(self.path)
        if self.backups > 0:
            for n in range(self.backups - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)  # no backups kept: rotating drops the history
        extra = self.backups + 1
        while os.path.exists(f"{self.path}.{extra}"):  # backups was lowered since last time
            os.unlink(f"{self.path}.{extra}")
            extra += 1
        self.open()
        self.day = self.today()
        return True


class History:
    """A snapshot of a log file and its backups, read forward from any line.

    The files are opened (and their sizes fixed) at once, so a rotation or a
    write while the history is served neither repeats nor skips anything.
    Blocking: ``tail_start`` and ``read`` run in a thread.
    """

    def __init__(self, path: str | None, backups: int, opener: Opener | None = None) -> None:
        """``path`` None: an empty history (nothing that may be read)."""
        self.files: list[tuple[BinaryIO, int]] = []
        opener = opener or Opener()
        try:
            for name in backup_paths(path, backups) if path is not None else []:
                f = opener.read(name)
                if f is not None:
                    self.files.append((f, os.fstat(f.fileno()).st_size))
        except BaseException:
            self.close()
            raise
        self._index = 0
        self._offset = 0

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)

    def tail_start(self, lines: int) -> None:
        """Position the reader at the start of the last ``lines`` lines."""
        self._index, self._offset = len(self.files), 0
        if lines <= 0:
            return
        newlines = 0
        last = True  # a newline ending the whole history ends the last line, starts none
        for index in range(len(self.files) - 1, -1, -1):
            f, size = self.files[index]
            end = size
            while end > 0:
                start = max(0, end - READ_BLOCK)
                f.seek(start)
                block = f.read(end - start)
                pos = len(block)
                if last and block.endswith(b"\n"):
                    pos -= 1
                last = False
                while (pos := block.rfind(b"\n", 0, pos)) >= 0:
                    newlines += 1
                    if newlines == lines:
                        self._index, self._offset = index, start + pos + 1
                        return
                end = start
        self._index, self._offset = 0, 0

    def read(self, size: int = READ_BLOCK) -> bytes:
        """The next block, b"" at the end of the snapshot."""
        while self._index < len(self.files):
            f, end = self.files[self._index]
            if self._offset < end:
                f.seek(self._offset)
                data = f.read(min(size, end - self._offset))
                self._offset += len(data)
                if data:
                    return data
            self._index, self._offset = self._index + 1, 0
        return b""

    def close(self) -> None:
        for f, _ in self.files:
            f.close()
        self.files = []
