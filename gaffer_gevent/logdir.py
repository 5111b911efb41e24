"""The log directory: where log files may live, and which of them gafferd created.

Template paths are relative to the directory (``limits.check_relative_path``
refuses absolute paths, ``..`` and hidden names when a template is created).
At every open they are checked again against the filesystem as it is then: the
last component is opened with ``O_NOFOLLOW`` and the resolved parent directory
must lie inside the log directory, so a symlink planted there leads no write,
read or rotation elsewhere.

The ledger (``.gaffer-logfiles.json`` in the directory) records every file
gafferd created and the template it created it for. A file is written, read
back (``_logs``) and rotated (``_rotate``) only for that template: a file that
was there before, or that belongs to another template, is never touched. The
ledger survives restarts, so a template's history is still served after one.

Blocking calls (every method but ``path`` and ``owner``): run them on the log
files' I/O threads.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
from typing import BinaryIO

from gevent.monkey import get_original

from .logfile import _APPEND, DIR_MODE, FILE_MODE, Opener, regular

log = logging.getLogger(__name__)

#: The ledger's file name; template paths cannot name it (no component may start with a dot).
LEDGER_NAME = ".gaffer-logfiles.json"
#: The ledger is a hint-free JSON object; a bigger one is not ours and is ignored.
MAX_LEDGER_BYTES = 16 * 1024 * 1024

# A real lock: the ledger is saved from the I/O threads, where gevent's locks do not belong.
_allocate_lock = get_original("_thread", "allocate_lock")


class NotOurs(PermissionError):
    """A log path outside the log directory, or a file gafferd did not create for the template."""


class LogDir:
    """One log directory and its ledger."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(os.path.expanduser(root))
        self._prefix = os.path.join(self.root, "")  # "/var/log/" (and "/" for the root)
        self.ledger_path = os.path.join(self.root, LEDGER_NAME)
        self.owners: dict[str, str] = {}  # path relative to root -> template name
        self._lock = _allocate_lock()
        self._tmp_ids = itertools.count()

    # -- pure lookups (safe on the hub) -------------------------------------------------

    def path(self, relative: str) -> str:
        """The absolute path of a template's log file (already validated as relative)."""
        path = os.path.normpath(os.path.join(self.root, relative))
        if not path.startswith(self._prefix) or path == self.root:
            raise NotOurs(f"{relative!r} is outside the log directory {self.root}")
        return path

    def owner(self, path: str) -> str | None:
        """The template gafferd created ``path`` for, if it did."""
        return self.owners.get(os.path.relpath(path, self.root))

    def opener(self, template: str) -> ConfinedOpener:
        return ConfinedOpener(self, template)

    # -- blocking: the I/O threads ------------------------------------------------------

    def load(self) -> None:
        """Read the ledger; a missing one is empty, a broken one is reported and ignored."""
        try:
            fd = os.open(self.ledger_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read %s: %s", self.ledger_path, exc)
            return
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_LEDGER_BYTES + 1)
        try:
            files = json.loads(data)["files"]
            if not isinstance(files, dict) or len(data) > MAX_LEDGER_BYTES:
                raise ValueError("not a ledger")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s: %s", self.ledger_path, exc)
            return
        self.owners = {
            path: name
            for path, name in files.items()
            if isinstance(path, str) and isinstance(name, str)
        }

    def save(self) -> None:
        """Write the ledger atomically (a temporary file renamed over it)."""
        with self._lock:
            data = json.dumps({"files": dict(self.owners)}, indent=0).encode()
            tmp = f"{self.ledger_path}.{os.getpid()}.{next(self._tmp_ids)}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp, flags, FILE_MODE)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.ledger_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def check_inside(self, path: str) -> None:
        """``NotOurs`` unless the directory of ``path``, all symlinks resolved, is inside."""
        parent = os.path.realpath(os.path.dirname(path))
        if parent != self.root and not parent.startswith(self._prefix):
            raise NotOurs(f"{path} resolves outside the log directory {self.root}")


class ConfinedOpener(Opener):
    """Opens log files of one template inside the log directory only, and only its own."""

    def __init__(self, logdir: LogDir, template: str) -> None:
        self.logdir = logdir
        self.template = template

    def append(self, path: str) -> int:
        logdir = self.logdir
        logdir.check_inside(path)  # before makedirs: a symlinked parent must not be followed
        os.makedirs(os.path.dirname(path), DIR_MODE, exist_ok=True)
        logdir.check_inside(path)
        try:
            fd = os.open(path, _APPEND | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            self.check(path)
            return regular(os.open(path, _APPEND))
        fd = regular(fd)
        if logdir.owner(path) != self.template:
            logdir.owners[os.path.relpath(path, logdir.root)] = self.template
            logdir.save()
        return fd

    def read(self, path: str) -> BinaryIO | None:
        self.logdir.check_inside(path)
        return super().read(path)

    def check(self, path: str) -> None:
        """``NotOurs`` unless gafferd created ``path`` for this template, inside the directory."""
        self.logdir.check_inside(path)
        owner = self.logdir.owner(path)
        if owner != self.template:
            whose = "was not created by gafferd" if owner is None else f"belongs to {owner!r}"
            raise NotOurs(f"{path} {whose}, not to {self.template!r}")
